#include <stdint.h>
#include <stdio.h>

uint64_t r11_keep_across_call(uint64_t value);
int r11_tail(uint64_t value);

int main(void) {
    int failures = 0;
    for (int round = 0; round < 3; round++) {
        uint64_t value = 0x1122334455667700ull + (uint64_t)round;
        /* (value + 1) * 2 + value */
        uint64_t got = r11_keep_across_call(value);
        uint64_t want = (value + 1) * 2 + value;
        printf("round %d: keep across call %s\n", round, got == want ? "ok" : "CLOBBERED");
        failures += got != want;
        int kept = r11_tail(value ^ 0xabcdef);
        printf("round %d: keep across tail call %s\n", round, kept ? "ok" : "CLOBBERED");
        failures += !kept;
    }
    return failures == 0 ? 11 : 1;
}
