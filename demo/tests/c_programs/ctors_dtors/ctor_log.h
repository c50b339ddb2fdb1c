/* The order constructors ran in, kept by ctor_a.c. */
void ctor_log(const char *event);
const char *ctor_sequence(void);
