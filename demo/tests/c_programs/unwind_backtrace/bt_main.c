/* Unwinding through lazily linked code: glibc's backtrace() walks the
 * stack with libgcc's unwinder, which finds linked functions' frames only
 * if their .eh_frame was registered. A recursion across two objects must
 * show every frame; so must _Unwind_Backtrace. Also a libgcc helper
 * (__popcountdi2, called for __builtin_popcountll without -mpopcnt). */
#include <execinfo.h>
#include <stdio.h>
#include <unwind.h>

int bt_descend(int depth);

static _Unwind_Reason_Code count_frame(struct _Unwind_Context *context, void *argument) {
    (void)context;
    ++*(int *)argument;
    return _URC_NO_REASON;
}

int bt_at_bottom(int depth) {
    void *frames[256];
    int found = backtrace(frames, 256);
    int unwound = 0;
    _Unwind_Backtrace(count_frame, &unwound);
    /* bt_at_bottom, depth+1 frames of bt_descend/bt_step, main. */
    int expected = depth + 3;
    printf("backtrace: %s\n", found >= expected ? "every frame" : "frames missing");
    printf("_Unwind_Backtrace: %s\n", unwound >= expected ? "every frame" : "frames missing");
    return (found >= expected) + (unwound >= expected);
}

int main(int argc, char **argv) {
    (void)argv;
    int ok = bt_descend(20 + argc);
    unsigned long long bits = 0xf0f0f0f0f0f0f0f0ull >> argc;
    printf("popcount: %d\n", __builtin_popcountll(bits));
    return ok == 2 ? 13 : 1;
}
