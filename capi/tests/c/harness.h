/* A minimal test harness for the lazyrt C suites: CHECK counts passes and
 * failures, and the suite prints one "N passed, N failed" line. */
#ifndef LAZYRT_TEST_HARNESS_H
#define LAZYRT_TEST_HARNESS_H

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <lazyrt.h>

extern atomic_int harness_passed;
extern atomic_int harness_failed;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (cond) {                                                          \
            atomic_fetch_add(&harness_passed, 1);                            \
        } else {                                                             \
            atomic_fetch_add(&harness_failed, 1);                            \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);  \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
        }                                                                    \
    } while (0)

/* A call that must succeed; prints the error's message if not. */
#define CHECK_OK(err, call)                                                  \
    do {                                                                     \
        lazyrt_status check_status_ = (call);                                \
        CHECK(check_status_ == LAZYRT_OK, "%s -> %s: %s", #call,             \
              lazyrt_status_name(check_status_), lazyrt_error_message(err)); \
    } while (0)

/* A call that must fail with `expected`, with a message containing each
 * of the NULL-terminated needles. */
#define CHECK_FAILS(err, expected, call, ...)                                \
    do {                                                                     \
        lazyrt_status check_status_ = (call);                                \
        CHECK(check_status_ == (expected), "%s -> %s (wanted %s): %s", #call, \
              lazyrt_status_name(check_status_), lazyrt_status_name(expected), \
              lazyrt_error_message(err));                                    \
        CHECK(lazyrt_error_status(err) == (expected), "error object status %s", \
              lazyrt_status_name(lazyrt_error_status(err)));                 \
        const char *check_needles_[] = {__VA_ARGS__, NULL};                  \
        for (int check_i_ = 0; check_needles_[check_i_]; check_i_++) {       \
            CHECK(strstr(lazyrt_error_message(err), check_needles_[check_i_]) != NULL, \
                  "message of %s lacks \"%s\": %s", #call, check_needles_[check_i_], \
                  lazyrt_error_message(err));                                \
        }                                                                    \
    } while (0)

#define RUN(test)                                                            \
    do {                                                                     \
        int before_ = atomic_load(&harness_failed);                          \
        test();                                                              \
        printf("%-52s %s\n", #test,                                          \
               atomic_load(&harness_failed) == before_ ? "ok" : "FAILED");   \
        fflush(stdout);                                                      \
    } while (0)

#endif
