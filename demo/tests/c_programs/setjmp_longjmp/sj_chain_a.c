#include "sj.h"

int sj_frames;

int chain_a(int depth, int throw_at)
{
    volatile char pad[24];
    pad[depth % 24] = (char)depth;
    sj_frames++;
    if (depth == throw_at)
        sj_throw(depth * 3 + 1);
    if (depth <= 0)
        return 1;
    return chain_b(depth - 1, throw_at) + pad[depth % 24] % 2;
}
