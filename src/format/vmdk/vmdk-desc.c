/*
 * vmdk-desc.c - parse a VMDK descriptor: "key=value" lines (createType,
 * CID, parentCID, parentFileNameHint) and extent lines
 * ("RW 4192256 SPARSE "disk-s001.vmdk"", "RW 2048 FLAT "f.vmdk" 0",
 * "RW 2048 ZERO"). The text comes from an untrusted file: every number is
 * range-checked and every line bounded; what is not understood in an
 * extent line is refused rather than guessed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "format/vmdk/vmdk.h"

#define VMDK_MAX_EXTENTS 65536u
/* Largest extent: 2^54 sectors (2^63 bytes; more would overflow). */
#define VMDK_MAX_EXTENT_SECTORS (1ull << 54)

static char *
trim(char *p)
{
    char *end;

    while (*p == ' ' || *p == '\t') {
        p++;
    }
    end = p + strlen(p);
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r')) {
        *--end = '\0';
    }
    return p;
}

/* Strip one pair of double quotes around @v. */
static char *
unquote(char *v)
{
    size_t n = strlen(v);

    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
        v[n - 1] = '\0';
        return v + 1;
    }
    return v;
}

static int
parse_u64(const char *s, int base, uint64_t *out)
{
    char *end;

    if (!*s || *s == '-' || *s == '+' || *s == ' ') {
        return -EINVAL;
    }
    errno = 0;
    *out = strtoull(s, &end, base);
    return errno || *end ? -EINVAL : 0;
}

/* The next space-separated word of *@p (a quoted one keeps its spaces,
 * without the quotes); NULL at the end or on an unterminated quote. */
static char *
next_word(char **p, bool *quoted)
{
    char *w = *p, *end;

    while (*w == ' ' || *w == '\t') {
        w++;
    }
    *quoted = *w == '"';
    if (!*w) {
        return NULL;
    }
    if (*quoted) {
        end = strchr(++w, '"');
        if (!end) {
            return NULL;
        }
    } else {
        end = w + strcspn(w, " \t");
    }
    *p = *end ? end + 1 : end;
    *end = '\0';
    return w;
}

static int
extent_type(const char *w, enum vmdk_extent_type *t)
{
    if (!strcmp(w, "FLAT") || !strcmp(w, "VMFS")) {
        *t = VMDK_EXTENT_FLAT;
    } else if (!strcmp(w, "SPARSE")) {
        *t = VMDK_EXTENT_SPARSE;
    } else if (!strcmp(w, "ZERO")) {
        *t = VMDK_EXTENT_ZERO;
    } else {
        return -ENOTSUP;
    }
    return 0;
}

/* One extent line (its access word already matched). */
static int
parse_extent(char *line, struct vmdk_desc_extent *x, const char *path,
             unsigned lineno, struct vmc_error *err)
{
    char *p = line, *w;
    bool q;

    memset(x, 0, sizeof(*x));
    w = next_word(&p, &q);                       /* access */
    if (w && !strcmp(w, "NOACCESS")) {
        return vmc_error_set(err, -ENOTSUP, "'%s' line %u: a NOACCESS "
                             "extent cannot be read", path, lineno);
    }
    w = next_word(&p, &q);
    if (!w || parse_u64(w, 10, &x->sectors) < 0 ||
        x->sectors > VMDK_MAX_EXTENT_SECTORS) {
        return vmc_error_set(err, -EUCLEAN, "'%s' line %u: bad extent "
                             "size", path, lineno);
    }
    w = next_word(&p, &q);
    if (!w || extent_type(w, &x->type) < 0) {
        return vmc_error_set(err, -ENOTSUP, "'%s' line %u: unsupported "
                             "extent type '%s'", path, lineno, w ? w : "");
    }
    w = next_word(&p, &q);
    if (x->type != VMDK_EXTENT_ZERO) {
        if (!w || !q || !*w) {
            return vmc_error_set(err, -EUCLEAN, "'%s' line %u: extent "
                                 "without a file name", path, lineno);
        }
        x->name = strdup(w);
        if (!x->name) {
            return vmc_error_set(err, -ENOMEM, "out of memory");
        }
        w = next_word(&p, &q);
    }
    if (w && (x->type != VMDK_EXTENT_FLAT ||
              parse_u64(w, 10, &x->offset) < 0 ||
              x->offset > VMDK_MAX_EXTENT_SECTORS)) {
        return vmc_error_set(err, -EUCLEAN, "'%s' line %u: bad extent "
                             "offset '%s'", path, lineno, w);
    }
    return 0;
}

/* A "key=value" line. */
static int
parse_setting(struct vmdk_desc *d, char *key, char *val)
{
    char **dst = NULL;
    uint64_t v;

    key = trim(key);
    val = unquote(trim(val));
    if (!strcmp(key, "createType")) {
        dst = &d->create_type;
    } else if (!strcmp(key, "parentFileNameHint")) {
        dst = &d->parent_hint;
    } else if (!strcmp(key, "CID") || !strcmp(key, "parentCID")) {
        if (parse_u64(val, 16, &v) == 0 && v <= UINT32_MAX) {
            *(key[0] == 'C' ? &d->cid : &d->parent_cid) = (uint32_t)v;
        }
        return 0;
    }
    if (dst) {
        free(*dst);
        *dst = strdup(val);
        return *dst ? 0 : -ENOMEM;
    }
    return 0;
}

static bool
is_extent_line(const char *l)
{
    return !strncmp(l, "RW ", 3) || !strncmp(l, "RDONLY ", 7) ||
           !strncmp(l, "NOACCESS ", 9);
}

static int
add_extent(struct vmdk_desc *d, char *line, const char *path,
           unsigned lineno, struct vmc_error *err)
{
    struct vmdk_desc_extent *n;

    if (d->n_extents >= VMDK_MAX_EXTENTS) {
        return vmc_error_set(err, -EUCLEAN, "'%s': more than %u extents",
                             path, VMDK_MAX_EXTENTS);
    }
    n = realloc(d->extents, (d->n_extents + 1) * sizeof(*n));
    if (!n) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    d->extents = n;
    d->n_extents++;
    return parse_extent(line, &n[d->n_extents - 1], path, lineno, err);
}

int
vmdk_desc_parse(const char *text, size_t len, const char *path,
                struct vmdk_desc *d, struct vmc_error *err)
{
    char *buf, *line, *next;
    unsigned lineno = 0;
    int r = 0;

    memset(d, 0, sizeof(*d));
    d->parent_cid = UINT32_MAX;
    if (len > VMDK_MAX_DESC) {
        return vmc_error_set(err, -EUCLEAN, "'%s': descriptor larger than "
                             "%u bytes", path, VMDK_MAX_DESC);
    }
    buf = strndup(text, len);          /* stops at the padding's NUL */
    if (!buf) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    for (line = buf; r == 0 && line; line = next) {
        char *eq;

        next = strchr(line, '\n');
        if (next) {
            *next++ = '\0';
        }
        lineno++;
        line = trim(line);
        if (!*line || *line == '#') {
            continue;
        }
        if (is_extent_line(line)) {
            r = add_extent(d, line, path, lineno, err);
        } else if ((eq = strchr(line, '='))) {
            *eq = '\0';
            r = parse_setting(d, line, eq + 1);
            if (r < 0) {
                vmc_error_set(err, r, "out of memory");
            }
        }
    }
    free(buf);
    if (r < 0) {
        vmdk_desc_free(d);
    }
    return r;
}

void
vmdk_desc_free(struct vmdk_desc *d)
{
    size_t i;

    for (i = 0; i < d->n_extents; i++) {
        free(d->extents[i].name);
    }
    free(d->extents);
    free(d->create_type);
    free(d->parent_hint);
    memset(d, 0, sizeof(*d));
}
