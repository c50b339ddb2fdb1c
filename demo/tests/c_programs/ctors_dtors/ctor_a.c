/* Constructors of priorities 101, 102 and the default, and destructors
 * (.init_array.00101, .init_array.00102, .init_array, .fini_array...). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ctor_log.h"

static char sequence[512];
static int initialised = 1234;   /* .data: set before any constructor runs */

void ctor_log(const char *event)
{
    if (initialised != 1234)
        strcat(sequence, "[data not ready]");
    if (sequence[0])
        strcat(sequence, " ");
    strcat(sequence, event);
    printf("  ctor_log: %s\n", event);
}

const char *ctor_sequence(void)
{
    return sequence;
}

__attribute__((constructor(102))) static void a_102(void) { ctor_log("a102"); }
__attribute__((constructor(101))) static void a_101(void) { ctor_log("a101"); }
__attribute__((constructor)) static void a_default(void) { ctor_log("a-default"); }
__attribute__((constructor)) static void a_default2(void) { ctor_log("a-default2"); }

static void a_atexit(void) { printf("atexit handler registered by a_default3\n"); }

__attribute__((constructor)) void a_default3(void)
{
    ctor_log("a-default3");
    atexit(a_atexit);
}

__attribute__((destructor)) static void a_dtor(void) { printf("dtor a-default\n"); }
__attribute__((destructor(101))) static void a_dtor_101(void) { printf("dtor a101\n"); }
__attribute__((destructor(150))) static void a_dtor_150(void)
{
    printf("dtor a150\n");
    fprintf(stderr, "stderr from dtor a150\n");
}
