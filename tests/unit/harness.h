/*
 * harness.h - the checks every unit test uses (the C programs in tests/unit).
 *
 *   CHECK(cond)             count a failure and go on: "FAIL: file:line: cond"
 *   CHECK_MSG(cond, ...)    the same with a printf-style message
 *   CHECK_EQ(a, b)          a == b as integers, printing both values
 *   FAIL(...)               stop now: "FAIL: file:line: message", exit 1
 *   SKIP(...)               stop now: "SKIP: message", exit 77 (meson: skipped)
 *   harness_exit(name)      end of main: "name: ok" and 0, or the number of
 *                           failures and 1
 *
 * harness_on_fail(fn) registers a function that FAIL calls before it exits,
 * for a test that has more to say about where it stopped (a seed, the last
 * operations). The failure count is safe to bump from several threads.
 * Messages go to stderr, after stdout has been flushed, so they land after
 * the progress lines they follow. Usable from C99 (test-header.c).
 */
#ifndef VMC_TEST_HARNESS_H
#define VMC_TEST_HARNESS_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int harness_failures;
static void (*harness_fail_hook)(void);

static inline void
harness_on_fail(void (*fn)(void))
{
    harness_fail_hook = fn;
}

static inline int
harness_failure_count(void)
{
    return __atomic_load_n(&harness_failures, __ATOMIC_RELAXED);
}

static inline void
harness_vreport(const char *kind, const char *file, int line,
                const char *fmt, va_list ap)
{
    fflush(stdout);
    if (file) {
        fprintf(stderr, "%s: %s:%d: ", kind, file, line);
    } else {
        fprintf(stderr, "%s: ", kind);
    }
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

static inline void __attribute__((format(printf, 3, 4)))
harness_check_failed(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    harness_vreport("FAIL", file, line, fmt, ap);
    va_end(ap);
    __atomic_add_fetch(&harness_failures, 1, __ATOMIC_RELAXED);
}

static inline void __attribute__((noreturn, format(printf, 3, 4)))
harness_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    harness_vreport("FAIL", file, line, fmt, ap);
    va_end(ap);
    if (harness_fail_hook) {
        harness_fail_hook();
    }
    fflush(stdout);
    exit(1);
}

static inline void __attribute__((noreturn, format(printf, 1, 2)))
harness_skip(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    harness_vreport("SKIP", NULL, 0, fmt, ap);
    va_end(ap);
    exit(77);
}

static inline void
harness_check_eq_failed(const char *file, int line, const char *a_text,
                        long long a, const char *b_text, long long b)
{
    harness_check_failed(file, line, "%s == %lld, expected %s == %lld",
                         a_text, a, b_text, b);
}

/* Prints the verdict for the whole program; returns main's exit status. */
static inline int
harness_exit(const char *name)
{
    int n = harness_failure_count();

    if (n) {
        printf("%s: %d failure(s)\n", name, n);
        return 1;
    }
    printf("%s: ok\n", name);
    return 0;
}

#define CHECK(cond) do { \
    if (!(cond)) { \
        harness_check_failed(__FILE__, __LINE__, "%s", #cond); \
    } \
} while (0)

#define CHECK_MSG(cond, ...) do { \
    if (!(cond)) { \
        harness_check_failed(__FILE__, __LINE__, __VA_ARGS__); \
    } \
} while (0)

#define CHECK_EQ(a, b) do { \
    long long harness_a_ = (long long)(a), harness_b_ = (long long)(b); \
    if (harness_a_ != harness_b_) { \
        harness_check_eq_failed(__FILE__, __LINE__, #a, harness_a_, \
                                #b, harness_b_); \
    } \
} while (0)

#define FAIL(...) harness_fail(__FILE__, __LINE__, __VA_ARGS__)

#define SKIP(...) harness_skip(__VA_ARGS__)

#endif /* VMC_TEST_HARNESS_H */
