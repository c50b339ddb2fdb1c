#include <stdio.h>
#include "sj.h"

void sj_throw(int value)
{
    fprintf(stderr, "throwing %d\n", value);
    longjmp(sj_outer, value);
}
