/* Generated: functions f000..f099; some call others. */
int f104(int x);
int f109(int x);
int f114(int x);
int f119(int x);
int f124(int x);
int f129(int x);
int f134(int x);
int f139(int x);
int f144(int x);
int f149(int x);
int f154(int x);
int f159(int x);
int f164(int x);
int f169(int x);
int f174(int x);
int f179(int x);
int f184(int x);
int f189(int x);
int f194(int x);
int f199(int x);
int f002(int x);
int f007(int x);
int f012(int x);
int f017(int x);
int f022(int x);
int f027(int x);
int f032(int x);
int f037(int x);
int f042(int x);
int f047(int x);
int f052(int x);
int f057(int x);
int f062(int x);
int f067(int x);
int f072(int x);
int f077(int x);
int f082(int x);
int f087(int x);
int f092(int x);
int f097(int x);

int f000(int x)
{
    return x * 80 + 5531;
}

int f001(int x)
{
    return f002(x) ^ 2455;
}

int f002(int x)
{
    static const int t[4] = { -158, -483, -263, 217 };
    return t[x & 3] + x * 49;
}

int f003(int x)
{
    return f104(x + 1) - 4986;
}

int f004(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 79 + (x >> 1);
    return s + 2036;
}

int f005(int x)
{
    return x * 55 + 5868;
}

int f006(int x)
{
    return f007(x) ^ 9859;
}

int f007(int x)
{
    static const int t[4] = { -373, -469, -293, -166 };
    return t[x & 3] + x * 13;
}

int f008(int x)
{
    return f109(x + 1) - 3849;
}

int f009(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 41 + (x >> 4);
    return s + 4934;
}

int f010(int x)
{
    return x * 54 + 3443;
}

int f011(int x)
{
    return f012(x) ^ 6135;
}

int f012(int x)
{
    static const int t[4] = { 376, 227, -443, 467 };
    return t[x & 3] + x * 55;
}

int f013(int x)
{
    return f114(x + 1) - 4235;
}

int f014(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 50 + (x >> 4);
    return s + 4569;
}

int f015(int x)
{
    return x * 32 + 3571;
}

int f016(int x)
{
    return f017(x) ^ 2476;
}

int f017(int x)
{
    static const int t[4] = { 337, 385, 181, 372 };
    return t[x & 3] + x * 57;
}

int f018(int x)
{
    return f119(x + 1) - 496;
}

int f019(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 45 + (x >> 4);
    return s + 8501;
}

int f020(int x)
{
    return x * 49 + 1562;
}

int f021(int x)
{
    return f022(x) ^ 6801;
}

int f022(int x)
{
    static const int t[4] = { -161, 308, 400, -439 };
    return t[x & 3] + x * 94;
}

int f023(int x)
{
    return f124(x + 1) - 9251;
}

int f024(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 80 + (x >> 1);
    return s + 2945;
}

int f025(int x)
{
    return x * 87 + 4762;
}

int f026(int x)
{
    return f027(x) ^ 5336;
}

int f027(int x)
{
    static const int t[4] = { 498, 33, 434, -489 };
    return t[x & 3] + x * 92;
}

int f028(int x)
{
    return f129(x + 1) - 8881;
}

int f029(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 5 + (x >> 2);
    return s + 3891;
}

int f030(int x)
{
    return x * 49 + 6100;
}

int f031(int x)
{
    return f032(x) ^ 6979;
}

int f032(int x)
{
    static const int t[4] = { 64, 285, -351, 437 };
    return t[x & 3] + x * 92;
}

int f033(int x)
{
    return f134(x + 1) - 4143;
}

int f034(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 36 + (x >> 5);
    return s + 162;
}

int f035(int x)
{
    return x * 96 + 7436;
}

int f036(int x)
{
    return f037(x) ^ 2213;
}

int f037(int x)
{
    static const int t[4] = { 379, 471, -179, -144 };
    return t[x & 3] + x * 14;
}

int f038(int x)
{
    return f139(x + 1) - 7657;
}

int f039(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 51 + (x >> 1);
    return s + 794;
}

int f040(int x)
{
    return x * 39 + 3636;
}

int f041(int x)
{
    return f042(x) ^ 8079;
}

int f042(int x)
{
    static const int t[4] = { -310, -312, -209, 137 };
    return t[x & 3] + x * 81;
}

int f043(int x)
{
    return f144(x + 1) - 9095;
}

int f044(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 9 + (x >> 3);
    return s + 7297;
}

int f045(int x)
{
    return x * 89 + 1169;
}

int f046(int x)
{
    return f047(x) ^ 6086;
}

int f047(int x)
{
    static const int t[4] = { 466, 212, -206, -498 };
    return t[x & 3] + x * 56;
}

int f048(int x)
{
    return f149(x + 1) - 3165;
}

int f049(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 24 + (x >> 3);
    return s + 3554;
}

int f050(int x)
{
    return x * 21 + 6672;
}

int f051(int x)
{
    return f052(x) ^ 1224;
}

int f052(int x)
{
    static const int t[4] = { -175, -65, 311, 428 };
    return t[x & 3] + x * 47;
}

int f053(int x)
{
    return f154(x + 1) - 1302;
}

int f054(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 82 + (x >> 4);
    return s + 676;
}

int f055(int x)
{
    return x * 76 + 7779;
}

int f056(int x)
{
    return f057(x) ^ 4894;
}

int f057(int x)
{
    static const int t[4] = { -75, 221, 55, -334 };
    return t[x & 3] + x * 41;
}

int f058(int x)
{
    return f159(x + 1) - 4980;
}

int f059(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 41 + (x >> 2);
    return s + 8427;
}

int f060(int x)
{
    return x * 25 + 7136;
}

int f061(int x)
{
    return f062(x) ^ 6089;
}

int f062(int x)
{
    static const int t[4] = { 293, -67, 311, 181 };
    return t[x & 3] + x * 90;
}

int f063(int x)
{
    return f164(x + 1) - 428;
}

int f064(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 34 + (x >> 1);
    return s + 126;
}

int f065(int x)
{
    return x * 49 + 9364;
}

int f066(int x)
{
    return f067(x) ^ 5177;
}

int f067(int x)
{
    static const int t[4] = { 454, 235, -257, 39 };
    return t[x & 3] + x * 79;
}

int f068(int x)
{
    return f169(x + 1) - 6989;
}

int f069(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 70 + (x >> 5);
    return s + 362;
}

int f070(int x)
{
    return x * 10 + 8977;
}

int f071(int x)
{
    return f072(x) ^ 7197;
}

int f072(int x)
{
    static const int t[4] = { -468, 449, 32, -215 };
    return t[x & 3] + x * 26;
}

int f073(int x)
{
    return f174(x + 1) - 6878;
}

int f074(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 86 + (x >> 2);
    return s + 4659;
}

int f075(int x)
{
    return x * 3 + 7360;
}

int f076(int x)
{
    return f077(x) ^ 3012;
}

int f077(int x)
{
    static const int t[4] = { 387, 319, -111, -457 };
    return t[x & 3] + x * 26;
}

int f078(int x)
{
    return f179(x + 1) - 2708;
}

int f079(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 82 + (x >> 1);
    return s + 1626;
}

int f080(int x)
{
    return x * 45 + 2440;
}

int f081(int x)
{
    return f082(x) ^ 1728;
}

int f082(int x)
{
    static const int t[4] = { 461, 8, -121, 227 };
    return t[x & 3] + x * 74;
}

int f083(int x)
{
    return f184(x + 1) - 4150;
}

int f084(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 50 + (x >> 2);
    return s + 3570;
}

int f085(int x)
{
    return x * 53 + 9397;
}

int f086(int x)
{
    return f087(x) ^ 2576;
}

int f087(int x)
{
    static const int t[4] = { 411, -490, -6, 365 };
    return t[x & 3] + x * 81;
}

int f088(int x)
{
    return f189(x + 1) - 6560;
}

int f089(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 11 + (x >> 4);
    return s + 3995;
}

int f090(int x)
{
    return x * 96 + 7098;
}

int f091(int x)
{
    return f092(x) ^ 4747;
}

int f092(int x)
{
    static const int t[4] = { -21, 47, 348, -5 };
    return t[x & 3] + x * 39;
}

int f093(int x)
{
    return f194(x + 1) - 9534;
}

int f094(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 48 + (x >> 5);
    return s + 5309;
}

int f095(int x)
{
    return x * 84 + 5073;
}

int f096(int x)
{
    return f097(x) ^ 9285;
}

int f097(int x)
{
    static const int t[4] = { 387, 457, -497, -327 };
    return t[x & 3] + x * 18;
}

int f098(int x)
{
    return f199(x + 1) - 8992;
}

int f099(int x)
{
    int s = 0;
    for (int k = 0; k < (x & 7); k++)
        s += k * 56 + (x >> 3);
    return s + 140;
}
