struct set_entry {
    const char *name;
    int (*function)(int);
    int order;
};

#define REGISTER(f, order)                                                              \
    static const struct set_entry entry_##f __attribute__((section("lazyrt_tests"), used, \
                                                           aligned(8))) = {#f, f, order}
