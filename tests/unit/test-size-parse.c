/*
 * test-size-parse.c - vmc_parse_size() accepts what qemu-img accepts for
 * sizes and refuses the rest.  Expected values were taken from
 * `qemu-img create -f raw x SIZE` (qemu-img 7.2).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "vmclone.h"
#include "harness.h"

static void
expect_ok(const char *s, uint64_t want)
{
    uint64_t v = 0xdeadbeef;
    int r = vmc_parse_size(s, &v);

    CHECK_MSG(r == 0 && v == want, "vmc_parse_size(\"%s\") = %d, %" PRIu64
              "; want 0, %" PRIu64, s, r, v, want);
}

static void
expect_err(const char *s)
{
    uint64_t v = 12345;
    int r = vmc_parse_size(s, &v);

    CHECK_MSG(r < 0, "vmc_parse_size(\"%s\") = %d (%" PRIu64
              "); want a negative errno", s, r, v);
    CHECK_MSG(r >= 0 || v == 12345,
              "vmc_parse_size(\"%s\") failed but wrote *out", s);
}

int
main(void)
{
    /* plain numbers and every suffix, both cases */
    expect_ok("0", 0);
    expect_ok("512", 512);
    expect_ok("1k", 1024);
    expect_ok("1K", 1024);
    expect_ok("64k", 65536);
    expect_ok("1M", 1048576);
    expect_ok("1m", 1048576);
    expect_ok("4G", 4294967296ULL);
    expect_ok("2T", 2199023255552ULL);
    expect_ok("1P", 1125899906842624ULL);
    expect_ok("1E", 1152921504606846976ULL);
    expect_ok("7E", 8070450532247928832ULL);
    expect_ok("1b", 1);
    expect_ok("10B", 10);

    /* qemu-img reads sizes in decimal: "010" is ten, not octal eight */
    expect_ok("010", 10);
    /* ... but accepts hexadecimal */
    expect_ok("0x10", 16);
    /* qemu-img accepts a fraction with a suffix */
    expect_ok("1.5G", 1610612736ULL);
    expect_ok("0.5k", 512);

    /* refused */
    expect_err("");
    expect_err("-1");
    expect_err("k");
    expect_err("1x");
    expect_err("1kk");
    expect_err("1M5");
    expect_err("1.5");          /* a fraction of a byte */
    expect_err("16E");          /* 2^64 overflows */
    expect_err("99999999999999999999");
    expect_err("18446744073709551616");

    return harness_exit("size-parse");
}
