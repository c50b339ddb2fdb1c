/*
 * The C half of lazyrt-linker's runtime support for linked programs:
 *
 *  - the static TLS block programs' thread-local variables live in
 *    (local-exec and initial-exec TLS need a fixed offset from the thread
 *    pointer in every thread, which only the executable's own TLS segment
 *    gives a JIT); glibc copies the block's initialisation image into every
 *    thread it creates, and the linker writes the programs' .tdata into that
 *    image (see src/static_tls.rs);
 *  - the __tls_get_addr emulation general- and local-dynamic TLS calls reach;
 *  - what libc_nonshared.a gives natively linked programs (atexit,
 *    at_quick_exit, pthread_atfork) and __dso_handle, which libc.so does not
 *    export.
 */
#include <stddef.h>
#include <stdint.h>

#define LAZYRT_LINKER_TLS_BYTES (32 * 1024)

/* The first 64 bytes are a marker the linker finds the image by; programs'
 * variables start after it. Initialised (not .tbss), so the whole block is in
 * the executable's TLS initialisation image. */
__attribute__((aligned(64))) __thread unsigned char lazyrt_linker_tls_block[LAZYRT_LINKER_TLS_BYTES] = {
    'l', 'a', 'z', 'y', 'r', 't', '-', 'l', 'i', 'n', 'k', 'e', 'r', '-', 't', 'l',
    's', '-', 'b', 'l', 'o', 'c', 'k', '-', 'v', '1', 0x5a, 0xa5, 0x3c, 0xc3, 0x96, 0x69,
};

/* extern "C" fn lazyrt_linker_tls_block_size() -> usize */
size_t lazyrt_linker_tls_block_size(void) { return LAZYRT_LINKER_TLS_BYTES; }

/* extern "C" fn lazyrt_linker_tls_block() -> *mut u8: this thread's block. */
unsigned char *lazyrt_linker_tls_block_address(void) { return lazyrt_linker_tls_block; }

/* extern "C" fn lazyrt_linker_thread_pointer() -> usize: %fs:0. */
uintptr_t lazyrt_linker_thread_pointer(void) {
    uintptr_t tp;
    __asm__("movq %%fs:0, %0" : "=r"(tp));
    return tp;
}

/* A `tls_index` the linker writes into a program's GOT: `offset` is the
 * variable's (or the TLS image's, for local-dynamic) offset from the thread
 * pointer, the same in every thread because the block is static TLS. */
typedef struct {
    uint64_t module;
    uint64_t offset;
} lazyrt_linker_tls_index;

/* What the program's calls to __tls_get_addr reach. */
void *lazyrt_linker_tls_get_addr(lazyrt_linker_tls_index *index) {
    return (void *)(lazyrt_linker_thread_pointer() + index->offset);
}

/* __dso_handle for linked programs: what their atexit registrations are
 * tagged with (crtbegin's copy in the host is hidden). */
void *lazyrt_linker_dso_handle = &lazyrt_linker_dso_handle;

extern int __cxa_atexit(void (*function)(void *), void *argument, void *dso_handle);
extern int __cxa_at_quick_exit(void (*function)(void *), void *dso_handle);
extern int __register_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void),
                             void *dso_handle);

int lazyrt_linker_atexit(void (*function)(void)) {
    return __cxa_atexit((void (*)(void *))function, NULL, &lazyrt_linker_dso_handle);
}

int lazyrt_linker_at_quick_exit(void (*function)(void)) {
    return __cxa_at_quick_exit((void (*)(void *))function, &lazyrt_linker_dso_handle);
}

int lazyrt_linker_pthread_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void)) {
    return __register_atfork(prepare, parent, child, &lazyrt_linker_dso_handle);
}
