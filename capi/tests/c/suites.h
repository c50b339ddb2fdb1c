/* The C suites, run in order by main.c. */
#ifndef LAZYRT_TEST_SUITES_H
#define LAZYRT_TEST_SUITES_H

void runtime_tests(void);
void session_tests(void);
void unit_tests(void);
void concurrency_tests(void);
void ownership_tests(void);

#endif
