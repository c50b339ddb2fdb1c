/*
 * A stand-in for the Rust `lazyrt_resolve_implementation`, for the AArch64
 * fallback harness (see harness.c and run.sh).
 *
 * It returns the implementation registered for the entry's global index,
 * optionally patches the entry's slot (as the real runtime does), counts its
 * calls, and -- the point of the exercise -- first overwrites every register a
 * callee may clobber under AAPCS64 on Linux (x0-x18, all 128 bits of v0-v31, NZCV), so
 * that any argument register the reentry asm forgets to save shows up as a
 * wrong result in the harness.
 */
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>

#include "harness.h"

struct harness_entry harness_entries[HARNESS_CAPACITY];
uint32_t harness_first_index;
uint32_t harness_last_index;
unsigned long harness_resolve_calls;

static void clobber_caller_saved(void)
{
    __asm__ volatile(
        "movz x0, #0xdead\n\t"
        "movz x1, #0xbeef\n\t"
        "mov  x2, x0\n\t"
        "mov  x3, x1\n\t"
        "mov  x4, x0\n\t"
        "mov  x5, x1\n\t"
        "mov  x6, x0\n\t"
        "mov  x7, x1\n\t"
        "mov  x8, x0\n\t"
        "mov  x9, x1\n\t"
        "mov  x10, x0\n\t"
        "mov  x11, x1\n\t"
        "mov  x12, x0\n\t"
        "mov  x13, x1\n\t"
        "mov  x14, x0\n\t"
        "mov  x15, x1\n\t"
        "mov  x16, x0\n\t"
        "mov  x17, x1\n\t"
        "mov  x18, x0\n\t"
        "movi v0.16b, #0xa5\n\t"
        "movi v1.16b, #0x5a\n\t"
        "mov  v2.16b, v0.16b\n\t"
        "mov  v3.16b, v1.16b\n\t"
        "mov  v4.16b, v0.16b\n\t"
        "mov  v5.16b, v1.16b\n\t"
        "mov  v6.16b, v0.16b\n\t"
        "mov  v7.16b, v1.16b\n\t"
        "mov  v8.16b, v0.16b\n\t"
        "mov  v9.16b, v1.16b\n\t"
        "mov  v10.16b, v0.16b\n\t"
        "mov  v11.16b, v1.16b\n\t"
        "mov  v12.16b, v0.16b\n\t"
        "mov  v13.16b, v1.16b\n\t"
        "mov  v14.16b, v0.16b\n\t"
        "mov  v15.16b, v1.16b\n\t"
        "mov  v16.16b, v0.16b\n\t"
        "mov  v17.16b, v1.16b\n\t"
        "mov  v18.16b, v0.16b\n\t"
        "mov  v19.16b, v1.16b\n\t"
        "mov  v20.16b, v0.16b\n\t"
        "mov  v21.16b, v1.16b\n\t"
        "mov  v22.16b, v0.16b\n\t"
        "mov  v23.16b, v1.16b\n\t"
        "mov  v24.16b, v0.16b\n\t"
        "mov  v25.16b, v1.16b\n\t"
        "mov  v26.16b, v0.16b\n\t"
        "mov  v27.16b, v1.16b\n\t"
        "mov  v28.16b, v0.16b\n\t"
        "mov  v29.16b, v1.16b\n\t"
        "mov  v30.16b, v0.16b\n\t"
        "mov  v31.16b, v1.16b\n\t"
        "cmp  x0, x1\n\t"
        :
        :
        : "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10",
          "x11", "x12", "x13", "x14", "x15", "x16", "x17", "x18",
          "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10",
          "v11", "v12", "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20",
          "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30",
          "v31", "cc", "memory");
}

uintptr_t lazyrt_resolve_implementation(uint32_t entry_index)
{
    clobber_caller_saved();
    uint32_t local = entry_index - harness_first_index;
    if (entry_index < harness_first_index || local >= HARNESS_CAPACITY ||
        harness_entries[local].implementation == 0) {
        fprintf(stderr, "harness: resolver called with unknown entry index %u\n",
                entry_index);
        abort();
    }
    struct harness_entry *entry = &harness_entries[local];
    harness_last_index = entry_index;
    harness_resolve_calls++;
    entry->resolve_calls++;
    if (entry->patch_slot)
        __atomic_store_n(entry->slot, entry->implementation, __ATOMIC_RELEASE);
    clobber_caller_saved();
    return entry->implementation;
}
