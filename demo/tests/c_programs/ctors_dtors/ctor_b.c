#include <stdio.h>
#include <stdlib.h>
#include "ctor_log.h"

int b_value;

__attribute__((constructor(101))) static void b_101(void) { ctor_log("b101"); }
__attribute__((constructor(200))) static void b_200(void) { ctor_log("b200"); b_value = 200; }
__attribute__((constructor)) static void b_default(void) { ctor_log("b-default"); b_value += 1; }

static void b_atexit(void) { printf("atexit handler registered by b101-late\n"); }

__attribute__((constructor(101))) static void b_101_late(void)
{
    ctor_log("b101-late");
    atexit(b_atexit);
}

__attribute__((destructor)) static void b_dtor(void) { printf("dtor b-default (b_value %d)\n", b_value); }
__attribute__((destructor(102))) static void b_dtor_102(void) { printf("dtor b102\n"); }
