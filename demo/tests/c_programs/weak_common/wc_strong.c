#include "wc.h"

int hook(void) { return 2; }
int weak_var = 20;
int present(void) { return 5; }
int present_var = 6;
