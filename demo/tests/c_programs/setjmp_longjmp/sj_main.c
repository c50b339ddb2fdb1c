/* setjmp in main, longjmp from deep call chains through other objects, many
 * times; a nested handler in another object catches some values and
 * rethrows others. */
#include <stdio.h>
#include "sj.h"

jmp_buf sj_outer;

int main(void)
{
    volatile int caught = 0, returned = 0;
    volatile long sum = 0;
    for (volatile int round = 0; round < 12; round++) {
        sj_frames = 0;
        int v = setjmp(sj_outer);
        if (v == 0) {
            int depth = 20 + round * 9;
            int throw_at = round % 4 == 3 ? -1 : round / 2;   /* -1: no throw */
            int r = round % 2 ? guarded(depth, throw_at) : chain_a(depth, throw_at);
            returned++;
            sum += r;
            printf("round %2d: returned %d after %d frames\n", round, r, sj_frames);
        } else {
            caught++;
            sum += v;
            printf("round %2d: longjmp value %d after %d frames\n", round, v, sj_frames);
        }
    }
    printf("caught %d, returned %d, sum %ld\n", caught, returned, sum);
    return caught == 0 ? 1 : 5;
}
