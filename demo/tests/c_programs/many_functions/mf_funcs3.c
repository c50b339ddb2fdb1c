/* Generated: functions f200..f299; some call others. */
int f004(int x);
int f009(int x);
int f014(int x);
int f019(int x);
int f024(int x);
int f029(int x);
int f034(int x);
int f039(int x);
int f044(int x);
int f049(int x);
int f054(int x);
int f059(int x);
int f064(int x);
int f069(int x);
int f074(int x);
int f079(int x);
int f084(int x);
int f089(int x);
int f094(int x);
int f099(int x);
int f202(int x);
int f207(int x);
int f212(int x);
int f217(int x);
int f222(int x);
int f227(int x);
int f232(int x);
int f237(int x);
int f242(int x);
int f247(int x);
int f252(int x);
int f257(int x);
int f262(int x);
int f267(int x);
int f272(int x);
int f277(int x);
int f282(int x);
int f287(int x);
int f292(int x);
int f297(int x);

int f200(int x)
{
    return x * 49 + 1494;
}

int f201(int x)
{
    return f202(x) ^ 8706;
}

int f202(int x)
{
    static const int t[4] = { 389, 81, 239, 393 };
    return t[x & 3] + x * 90;
}

int f203(int x)
{
    return f004(x + 1) - 5272;
}

int f204(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 82 + (x >> 4);
    return s + 4666;
}

int f205(int x)
{
    return x * 36 + 4571;
}

int f206(int x)
{
    return f207(x) ^ 5038;
}

int f207(int x)
{
    static const int t[4] = { -169, 10, 252, -257 };
    return t[x & 3] + x * 59;
}

int f208(int x)
{
    return f009(x + 1) - 7620;
}

int f209(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 60 + (x >> 1);
    return s + 8784;
}

int f210(int x)
{
    return x * 42 + 5632;
}

int f211(int x)
{
    return f212(x) ^ 2356;
}

int f212(int x)
{
    static const int t[4] = { -43, -486, -27, -77 };
    return t[x & 3] + x * 39;
}

int f213(int x)
{
    return f014(x + 1) - 5174;
}

int f214(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 92 + (x >> 4);
    return s + 7803;
}

int f215(int x)
{
    return x * 62 + 5596;
}

int f216(int x)
{
    return f217(x) ^ 4252;
}

int f217(int x)
{
    static const int t[4] = { 485, -63, 469, -93 };
    return t[x & 3] + x * 27;
}

int f218(int x)
{
    return f019(x + 1) - 8787;
}

int f219(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 85 + (x >> 1);
    return s + 8052;
}

int f220(int x)
{
    return x * 88 + 2471;
}

int f221(int x)
{
    return f222(x) ^ 2425;
}

int f222(int x)
{
    static const int t[4] = { 314, 18, -200, -179 };
    return t[x & 3] + x * 38;
}

int f223(int x)
{
    return f024(x + 1) - 2160;
}

int f224(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 23 + (x >> 1);
    return s + 7046;
}

int f225(int x)
{
    return x * 67 + 9384;
}

int f226(int x)
{
    return f227(x) ^ 3822;
}

int f227(int x)
{
    static const int t[4] = { 154, 131, -160, -495 };
    return t[x & 3] + x * 53;
}

int f228(int x)
{
    return f029(x + 1) - 3951;
}

int f229(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 69 + (x >> 4);
    return s + 5094;
}

int f230(int x)
{
    return x * 5 + 5106;
}

int f231(int x)
{
    return f232(x) ^ 1239;
}

int f232(int x)
{
    static const int t[4] = { -155, 340, -418, 14 };
    return t[x & 3] + x * 11;
}

int f233(int x)
{
    return f034(x + 1) - 7674;
}

int f234(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 56 + (x >> 2);
    return s + 1345;
}

int f235(int x)
{
    return x * 46 + 8296;
}

int f236(int x)
{
    return f237(x) ^ 4381;
}

int f237(int x)
{
    static const int t[4] = { -67, 215, -426, -443 };
    return t[x & 3] + x * 71;
}

int f238(int x)
{
    return f039(x + 1) - 5819;
}

int f239(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 26 + (x >> 4);
    return s + 2394;
}

int f240(int x)
{
    return x * 43 + 4265;
}

int f241(int x)
{
    return f242(x) ^ 3828;
}

int f242(int x)
{
    static const int t[4] = { -390, 312, -217, 323 };
    return t[x & 3] + x * 88;
}

int f243(int x)
{
    return f044(x + 1) - 927;
}

int f244(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 66 + (x >> 5);
    return s + 9554;
}

int f245(int x)
{
    return x * 20 + 829;
}

int f246(int x)
{
    return f247(x) ^ 5164;
}

int f247(int x)
{
    static const int t[4] = { -365, 4, -188, -6 };
    return t[x & 3] + x * 3;
}

int f248(int x)
{
    return f049(x + 1) - 8399;
}

int f249(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 22 + (x >> 5);
    return s + 1468;
}

int f250(int x)
{
    return x * 16 + 1777;
}

int f251(int x)
{
    return f252(x) ^ 2598;
}

int f252(int x)
{
    static const int t[4] = { 90, 22, -414, 24 };
    return t[x & 3] + x * 6;
}

int f253(int x)
{
    return f054(x + 1) - 1637;
}

int f254(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 39 + (x >> 1);
    return s + 1801;
}

int f255(int x)
{
    return x * 81 + 6686;
}

int f256(int x)
{
    return f257(x) ^ 2866;
}

int f257(int x)
{
    static const int t[4] = { -325, -498, 467, 403 };
    return t[x & 3] + x * 18;
}

int f258(int x)
{
    return f059(x + 1) - 299;
}

int f259(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 79 + (x >> 5);
    return s + 5877;
}

int f260(int x)
{
    return x * 62 + 2956;
}

int f261(int x)
{
    return f262(x) ^ 7037;
}

int f262(int x)
{
    static const int t[4] = { 366, -320, -276, 160 };
    return t[x & 3] + x * 75;
}

int f263(int x)
{
    return f064(x + 1) - 418;
}

int f264(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 48 + (x >> 5);
    return s + 6757;
}

int f265(int x)
{
    return x * 5 + 2553;
}

int f266(int x)
{
    return f267(x) ^ 5315;
}

int f267(int x)
{
    static const int t[4] = { -495, -494, 64, -324 };
    return t[x & 3] + x * 50;
}

int f268(int x)
{
    return f069(x + 1) - 2100;
}

int f269(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 20 + (x >> 5);
    return s + 300;
}

int f270(int x)
{
    return x * 74 + 3240;
}

int f271(int x)
{
    return f272(x) ^ 4775;
}

int f272(int x)
{
    static const int t[4] = { -109, -226, -399, -207 };
    return t[x & 3] + x * 96;
}

int f273(int x)
{
    return f074(x + 1) - 9067;
}

int f274(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 81 + (x >> 5);
    return s + 9684;
}

int f275(int x)
{
    return x * 41 + 4144;
}

int f276(int x)
{
    return f277(x) ^ 942;
}

int f277(int x)
{
    static const int t[4] = { 345, 282, 56, 371 };
    return t[x & 3] + x * 33;
}

int f278(int x)
{
    return f079(x + 1) - 2586;
}

int f279(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 49 + (x >> 2);
    return s + 6112;
}

int f280(int x)
{
    return x * 68 + 8944;
}

int f281(int x)
{
    return f282(x) ^ 3791;
}

int f282(int x)
{
    static const int t[4] = { 230, 4, 131, 410 };
    return t[x & 3] + x * 46;
}

int f283(int x)
{
    return f084(x + 1) - 6726;
}

int f284(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 13 + (x >> 5);
    return s + 7389;
}

int f285(int x)
{
    return x * 11 + 8220;
}

int f286(int x)
{
    return f287(x) ^ 1354;
}

int f287(int x)
{
    static const int t[4] = { -174, -184, -286, -227 };
    return t[x & 3] + x * 25;
}

int f288(int x)
{
    return f089(x + 1) - 657;
}

int f289(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 33 + (x >> 1);
    return s + 9059;
}

int f290(int x)
{
    return x * 40 + 9995;
}

int f291(int x)
{
    return f292(x) ^ 2690;
}

int f292(int x)
{
    static const int t[4] = { 382, -43, -92, 146 };
    return t[x & 3] + x * 65;
}

int f293(int x)
{
    return f094(x + 1) - 5434;
}

int f294(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 15 + (x >> 5);
    return s + 4756;
}

int f295(int x)
{
    return x * 78 + 4781;
}

int f296(int x)
{
    return f297(x) ^ 6553;
}

int f297(int x)
{
    static const int t[4] = { -363, 209, -250, 313 };
    return t[x & 3] + x * 76;
}

int f298(int x)
{
    return f099(x + 1) - 7807;
}

int f299(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 25 + (x >> 4);
    return s + 9534;
}
