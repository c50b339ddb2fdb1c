int bt_at_bottom(int depth);
int bt_step(int depth, int left);

/* Not inlined and not tail calls, so every level keeps a frame. */
__attribute__((noinline)) int bt_descend(int depth) {
    int r = bt_step(depth, depth);
    __asm__ volatile("" ::: "memory");
    return r;
}

__attribute__((noinline)) int bt_step(int depth, int left) {
    int r = left == 0 ? bt_at_bottom(depth) : bt_step(depth, left - 1);
    __asm__ volatile("" ::: "memory");
    return r;
}
