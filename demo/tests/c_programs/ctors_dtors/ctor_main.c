/* Constructors with priorities across objects run before main in priority
 * order, then the default ones in link order; destructors and atexit
 * handlers run at exit (atexit handlers first, newest first; then the
 * destructors in reverse); stdout is flushed by exit. */
#include <stdio.h>
#include <stdlib.h>
#include "ctor_log.h"

extern int b_value;

static void main_atexit1(void) { printf("atexit handler 1 from main\n"); }
static void main_atexit2(void) { printf("atexit handler 2 from main (b_value %d)\n", b_value); }

__attribute__((constructor)) static void main_ctor(void) { ctor_log("main-default"); }
__attribute__((destructor)) static void main_dtor(void) { printf("dtor main-default\n"); }

int main(void)
{
    printf("main: constructors ran: %s\n", ctor_sequence());
    printf("main: b_value = %d\n", b_value);
    atexit(main_atexit1);
    atexit(main_atexit2);
    fprintf(stderr, "main returning 7\n");
    printf("main: returning 7 (this line is flushed by exit)\n");
    b_value = 7;
    return 7;
}
