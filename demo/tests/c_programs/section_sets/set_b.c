#include "set.h"

static int twice(int x) { return 2 * x; }

REGISTER(twice, 15);
