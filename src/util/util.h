/*
 * util.h - small dependency-free helpers: byte order, checked arithmetic,
 * alignment, and the NEVER() guard for impossible-but-survivable states.
 */
#ifndef VMC_UTIL_H
#define VMC_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define VMC_VERSION_STRING "0.1.0"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
/* n / d rounded up, without the overflow of (n + d - 1) near the type's
 * maximum (sizes read from hostile headers). */
#define DIV_ROUND_UP(n, d) ((n) / (d) + ((n) % (d) != 0))

/* A condition that cannot happen unless metadata is corrupt or we have a
 * bug: evaluated in every build, the caller fails the operation. */
#define NEVER(x) __builtin_expect(!!(x), 0)

static inline uint16_t be16_load(const void *p)
{
    const uint8_t *b = p;
    return (uint16_t)(b[0] << 8 | b[1]);
}

static inline uint32_t be32_load(const void *p)
{
    const uint8_t *b = p;
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
           (uint32_t)b[2] << 8 | b[3];
}

static inline uint64_t be64_load(const void *p)
{
    const uint8_t *b = p;
    return (uint64_t)be32_load(b) << 32 | be32_load(b + 4);
}

static inline void be16_store(void *p, uint16_t v)
{
    uint8_t *b = p;
    b[0] = (uint8_t)(v >> 8);
    b[1] = (uint8_t)v;
}

static inline void be32_store(void *p, uint32_t v)
{
    uint8_t *b = p;
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}

static inline void be64_store(void *p, uint64_t v)
{
    be32_store(p, (uint32_t)(v >> 32));
    be32_store((uint8_t *)p + 4, (uint32_t)v);
}

/* Little-endian loads (the VMware, Microsoft and VirtualBox formats). */
static inline uint16_t le16_load(const void *p)
{
    const uint8_t *b = p;
    return (uint16_t)(b[0] | b[1] << 8);
}

static inline uint32_t le32_load(const void *p)
{
    const uint8_t *b = p;
    return (uint32_t)b[3] << 24 | (uint32_t)b[2] << 16 |
           (uint32_t)b[1] << 8 | b[0];
}

static inline uint64_t le64_load(const void *p)
{
    const uint8_t *b = p;
    return (uint64_t)le32_load(b + 4) << 32 | le32_load(b);
}

/* Little-endian stores (the writers of those formats). */
static inline void le16_store(void *p, uint16_t v)
{
    uint8_t *b = p;
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
}

static inline void le32_store(void *p, uint32_t v)
{
    le16_store(p, (uint16_t)v);
    le16_store((uint8_t *)p + 2, (uint16_t)(v >> 16));
}

static inline void le64_store(void *p, uint64_t v)
{
    le32_store(p, (uint32_t)v);
    le32_store((uint8_t *)p + 4, (uint32_t)(v >> 32));
}

/* Overflow-checked a + b; returns false on overflow. */
static inline bool add_ok(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

static inline bool is_power_of_2(uint64_t v)
{
    return v && !(v & (v - 1));
}

static inline uint64_t align_down(uint64_t v, uint64_t a)
{
    return v & ~(a - 1);
}

static inline uint64_t align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) & ~(a - 1);
}

static inline bool buffer_is_zero(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    size_t i;

    /* Check the first 16 bytes, then compare the buffer with itself
     * shifted by 16: cheap and vectorised by libc. */
    for (i = 0; i < len && i < 16; i++) {
        if (p[i]) {
            return false;
        }
    }
    return len <= 16 || memcmp(p, p + 16, len - 16) == 0;
}

#endif /* VMC_UTIL_H */
