/* Shared between harness.c and resolver.c. */
#ifndef LAZYRT_HARNESS_H
#define LAZYRT_HARNESS_H

#include <stdint.h>

#define HARNESS_CAPACITY 64

struct harness_entry {
    uintptr_t implementation; /* what the resolver returns */
    uintptr_t *slot;          /* the entry's slot */
    int patch_slot;           /* patch the slot (resolved) or keep reentering */
    unsigned long resolve_calls;
};

extern struct harness_entry harness_entries[HARNESS_CAPACITY];
extern uint32_t harness_first_index;
extern uint32_t harness_last_index;
extern unsigned long harness_resolve_calls;

uintptr_t lazyrt_resolve_implementation(uint32_t entry_index);
void lazyrt_aarch64_reentry(void);

#endif
