/* Generated: functions f100..f199; some call others. */
int f204(int x);
int f209(int x);
int f214(int x);
int f219(int x);
int f224(int x);
int f229(int x);
int f234(int x);
int f239(int x);
int f244(int x);
int f249(int x);
int f254(int x);
int f259(int x);
int f264(int x);
int f269(int x);
int f274(int x);
int f279(int x);
int f284(int x);
int f289(int x);
int f294(int x);
int f299(int x);
int f102(int x);
int f107(int x);
int f112(int x);
int f117(int x);
int f122(int x);
int f127(int x);
int f132(int x);
int f137(int x);
int f142(int x);
int f147(int x);
int f152(int x);
int f157(int x);
int f162(int x);
int f167(int x);
int f172(int x);
int f177(int x);
int f182(int x);
int f187(int x);
int f192(int x);
int f197(int x);

int f100(int x)
{
    return x * 54 + 2938;
}

int f101(int x)
{
    return f102(x) ^ 4427;
}

int f102(int x)
{
    static const int t[4] = { -408, -332, -469, 211 };
    return t[x & 3] + x * 93;
}

int f103(int x)
{
    return f204(x + 1) - 7419;
}

int f104(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 9 + (x >> 3);
    return s + 1247;
}

int f105(int x)
{
    return x * 20 + 3792;
}

int f106(int x)
{
    return f107(x) ^ 9851;
}

int f107(int x)
{
    static const int t[4] = { 250, 307, 110, -356 };
    return t[x & 3] + x * 63;
}

int f108(int x)
{
    return f209(x + 1) - 1218;
}

int f109(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 66 + (x >> 1);
    return s + 4804;
}

int f110(int x)
{
    return x * 54 + 7301;
}

int f111(int x)
{
    return f112(x) ^ 8517;
}

int f112(int x)
{
    static const int t[4] = { 23, 312, 0, 494 };
    return t[x & 3] + x * 71;
}

int f113(int x)
{
    return f214(x + 1) - 8147;
}

int f114(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 63 + (x >> 4);
    return s + 5940;
}

int f115(int x)
{
    return x * 74 + 1548;
}

int f116(int x)
{
    return f117(x) ^ 9619;
}

int f117(int x)
{
    static const int t[4] = { 387, 430, -493, -142 };
    return t[x & 3] + x * 62;
}

int f118(int x)
{
    return f219(x + 1) - 7583;
}

int f119(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 42 + (x >> 3);
    return s + 5605;
}

int f120(int x)
{
    return x * 93 + 8581;
}

int f121(int x)
{
    return f122(x) ^ 5219;
}

int f122(int x)
{
    static const int t[4] = { -26, -40, 67, 373 };
    return t[x & 3] + x * 22;
}

int f123(int x)
{
    return f224(x + 1) - 7289;
}

int f124(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 47 + (x >> 2);
    return s + 6324;
}

int f125(int x)
{
    return x * 94 + 3860;
}

int f126(int x)
{
    return f127(x) ^ 2211;
}

int f127(int x)
{
    static const int t[4] = { 204, 378, -491, 186 };
    return t[x & 3] + x * 25;
}

int f128(int x)
{
    return f229(x + 1) - 2554;
}

int f129(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 95 + (x >> 1);
    return s + 8568;
}

int f130(int x)
{
    return x * 77 + 9737;
}

int f131(int x)
{
    return f132(x) ^ 614;
}

int f132(int x)
{
    static const int t[4] = { 154, 497, -376, 242 };
    return t[x & 3] + x * 64;
}

int f133(int x)
{
    return f234(x + 1) - 3631;
}

int f134(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 35 + (x >> 1);
    return s + 3104;
}

int f135(int x)
{
    return x * 88 + 6469;
}

int f136(int x)
{
    return f137(x) ^ 1456;
}

int f137(int x)
{
    static const int t[4] = { 287, 177, 44, -47 };
    return t[x & 3] + x * 41;
}

int f138(int x)
{
    return f239(x + 1) - 3420;
}

int f139(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 25 + (x >> 1);
    return s + 3481;
}

int f140(int x)
{
    return x * 68 + 7054;
}

int f141(int x)
{
    return f142(x) ^ 6017;
}

int f142(int x)
{
    static const int t[4] = { -305, -76, -167, 112 };
    return t[x & 3] + x * 78;
}

int f143(int x)
{
    return f244(x + 1) - 2959;
}

int f144(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 73 + (x >> 2);
    return s + 5209;
}

int f145(int x)
{
    return x * 72 + 1906;
}

int f146(int x)
{
    return f147(x) ^ 5598;
}

int f147(int x)
{
    static const int t[4] = { 320, -283, -43, -119 };
    return t[x & 3] + x * 35;
}

int f148(int x)
{
    return f249(x + 1) - 8343;
}

int f149(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 9 + (x >> 5);
    return s + 7305;
}

int f150(int x)
{
    return x * 31 + 7552;
}

int f151(int x)
{
    return f152(x) ^ 2334;
}

int f152(int x)
{
    static const int t[4] = { -90, 441, -306, 310 };
    return t[x & 3] + x * 27;
}

int f153(int x)
{
    return f254(x + 1) - 645;
}

int f154(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 19 + (x >> 5);
    return s + 6415;
}

int f155(int x)
{
    return x * 61 + 4630;
}

int f156(int x)
{
    return f157(x) ^ 6889;
}

int f157(int x)
{
    static const int t[4] = { -498, -437, -45, 94 };
    return t[x & 3] + x * 45;
}

int f158(int x)
{
    return f259(x + 1) - 511;
}

int f159(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 52 + (x >> 5);
    return s + 8812;
}

int f160(int x)
{
    return x * 91 + 407;
}

int f161(int x)
{
    return f162(x) ^ 8205;
}

int f162(int x)
{
    static const int t[4] = { -177, -498, -76, 417 };
    return t[x & 3] + x * 58;
}

int f163(int x)
{
    return f264(x + 1) - 275;
}

int f164(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 5 + (x >> 1);
    return s + 8097;
}

int f165(int x)
{
    return x * 59 + 3606;
}

int f166(int x)
{
    return f167(x) ^ 5141;
}

int f167(int x)
{
    static const int t[4] = { -459, 165, 444, 412 };
    return t[x & 3] + x * 34;
}

int f168(int x)
{
    return f269(x + 1) - 5548;
}

int f169(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 9 + (x >> 4);
    return s + 3244;
}

int f170(int x)
{
    return x * 37 + 1015;
}

int f171(int x)
{
    return f172(x) ^ 598;
}

int f172(int x)
{
    static const int t[4] = { -168, -68, 130, -408 };
    return t[x & 3] + x * 76;
}

int f173(int x)
{
    return f274(x + 1) - 3175;
}

int f174(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 95 + (x >> 1);
    return s + 7002;
}

int f175(int x)
{
    return x * 89 + 793;
}

int f176(int x)
{
    return f177(x) ^ 6793;
}

int f177(int x)
{
    static const int t[4] = { 0, -471, -132, -195 };
    return t[x & 3] + x * 96;
}

int f178(int x)
{
    return f279(x + 1) - 1187;
}

int f179(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 42 + (x >> 1);
    return s + 4682;
}

int f180(int x)
{
    return x * 89 + 8343;
}

int f181(int x)
{
    return f182(x) ^ 1794;
}

int f182(int x)
{
    static const int t[4] = { 253, -291, 297, 414 };
    return t[x & 3] + x * 20;
}

int f183(int x)
{
    return f284(x + 1) - 2571;
}

int f184(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 46 + (x >> 1);
    return s + 6111;
}

int f185(int x)
{
    return x * 45 + 6692;
}

int f186(int x)
{
    return f187(x) ^ 1829;
}

int f187(int x)
{
    static const int t[4] = { 268, 173, 393, -462 };
    return t[x & 3] + x * 11;
}

int f188(int x)
{
    return f289(x + 1) - 6271;
}

int f189(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 38 + (x >> 3);
    return s + 7826;
}

int f190(int x)
{
    return x * 27 + 2683;
}

int f191(int x)
{
    return f192(x) ^ 8802;
}

int f192(int x)
{
    static const int t[4] = { -142, -70, -11, 214 };
    return t[x & 3] + x * 86;
}

int f193(int x)
{
    return f294(x + 1) - 2773;
}

int f194(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 41 + (x >> 4);
    return s + 2009;
}

int f195(int x)
{
    return x * 68 + 8963;
}

int f196(int x)
{
    return f197(x) ^ 5902;
}

int f197(int x)
{
    static const int t[4] = { -141, -349, -125, 220 };
    return t[x & 3] + x * 29;
}

int f198(int x)
{
    return f299(x + 1) - 688;
}

int f199(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 95 + (x >> 1);
    return s + 4016;
}
