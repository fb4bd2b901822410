/* harness.h: the tiny unit-test harness (after redis' testhelp.h).
 *   TEST(name) { CHECK(cond); }   ...   int main(void) { RUN(name); return harness_done(); }
 * Each binary ends with "N passed, N failed" and exits non-zero on failure;
 * test/run.sh adds the counts up. */
#ifndef MDMD_HARNESS_H
#define MDMD_HARNESS_H

#include <stdio.h>

static int harness_passed, harness_failed, harness_cur_failed;

#define TEST(name) static void name(void)
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);               \
            harness_cur_failed = 1;                                                                \
        }                                                                                          \
    } while (0)
#define RUN(name)                                                                                  \
    do {                                                                                           \
        harness_cur_failed = 0;                                                                    \
        name();                                                                                    \
        if (harness_cur_failed)                                                                    \
            harness_failed++;                                                                      \
        else                                                                                       \
            harness_passed++;                                                                      \
        printf("%s %s\n", harness_cur_failed ? "FAIL" : "ok  ", #name);                            \
    } while (0)

static inline int harness_done(void)
{
    printf("%d passed, %d failed\n", harness_passed, harness_failed);
    return harness_failed != 0;
}

#endif
