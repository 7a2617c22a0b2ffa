/*
 * error.c - the error object of the control path (struct vmc_error),
 * size parsing and other small helpers shared by every module.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmclone.h"
#include "util/util.h"

int
vmc_error_set(struct vmc_error *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (!err) {
        return code;
    }
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

void
vmc_error_prepend(struct vmc_error *err, const char *fmt, ...)
{
    char prefix[512];
    char old[sizeof(err->msg)];
    va_list ap;

    if (!err) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    /* Truncation is acceptable: the message stays one line. */
    if (snprintf(err->msg, sizeof(err->msg), "%.500s: %.500s", prefix, old)
        < 0) {
        err->msg[0] = '\0';
    }
}

/* Sizes as qemu-img takes them: decimal (a fraction allowed with a
 * suffix, "1.5G") or 0x-hex, then an optional 1024-based suffix. */
int
vmc_parse_size(const char *s, uint64_t *out)
{
    const char *p = s;
    char *end;
    unsigned long long ip, frac_num = 0, frac_den = 1;
    unsigned shift = 0;
    bool hex;

    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ') {
        return -EINVAL;
    }
    hex = p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
    errno = 0;
    ip = strtoull(p, &end, hex ? 16 : 10);
    if (errno || end == p) {
        return -EINVAL;
    }
    if (*end == '.' && !hex) {
        p = end + 1;
        while (*p >= '0' && *p <= '9') {
            if (frac_den < 1000000000000ull) {
                frac_num = frac_num * 10 + (unsigned)(*p - '0');
                frac_den *= 10;
            }
            p++;
        }
        if (p == end + 1) {
            return -EINVAL;
        }
        end = (char *)p;
    }
    switch (*end) {
    case '\0': case 'b': case 'B': shift = 0; break;
    case 'k': case 'K': shift = 10; break;
    case 'm': case 'M': shift = 20; break;
    case 'g': case 'G': shift = 30; break;
    case 't': case 'T': shift = 40; break;
    case 'p': case 'P': shift = 50; break;
    case 'e': case 'E': shift = 60; break;
    default: return -EINVAL;
    }
    if (*end && end[1] && !((end[1] == 'b' || end[1] == 'B') && !end[2]) &&
        !(end[1] == 'i' && end[2] == 'B' && !end[3])) {
        return -EINVAL;
    }
    if (frac_num && shift == 0) {
        return -EINVAL;   /* fractional bytes */
    }
    if (shift && ip > (UINT64_MAX >> shift)) {
        return -ERANGE;
    }
    *out = ((uint64_t)ip << shift) +
           (uint64_t)((long double)frac_num / frac_den * (long double)(1ull << shift));
    return 0;
}

const char *
vmc_version(void)
{
    return VMC_VERSION_STRING;
}

const char *
vmc_format_name(enum vmc_format fmt)
{
    switch (fmt) {
    case VMC_FMT_RAW: return "raw";
    case VMC_FMT_QCOW2: return "qcow2";
    case VMC_FMT_VPC: return "vpc";
    case VMC_FMT_VDI: return "vdi";
    case VMC_FMT_VHDX: return "vhdx";
    case VMC_FMT_VMDK: return "vmdk";
    default: return "auto";
    }
}

enum vmc_format
vmc_format_from_name(const char *name)
{
    enum vmc_format f;

    for (f = VMC_FMT_RAW; name && f <= VMC_FMT_VMDK; f++) {
        if (!strcmp(name, vmc_format_name(f))) {
            return f;
        }
    }
    return VMC_FMT_AUTO;
}
