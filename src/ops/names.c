/*
 * names.c - numbered names for many clones at once: "web-%d" with a count
 * of 3 gives web-1, web-2, web-3. Used by `img clone --count` and by the
 * catalog's clone of several VMs, so both accept the same patterns.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "vmclone-ops.h"

/* True if @p holds exactly one "%d" or "%0Nd" ("%%" is a literal '%'). */
static bool
pattern_ok(const char *p)
{
    unsigned convs = 0;

    for (; *p; p++) {
        if (*p != '%') {
            continue;
        }
        p++;
        if (*p == '%') {
            continue;
        }
        while (*p >= '0' && *p <= '9') {
            p++;
        }
        if (*p != 'd') {
            return false;
        }
        convs++;
    }
    return convs == 1;
}

int
vmc_clone_names(const char *pattern, size_t count, char ***out,
                struct vmc_error *err)
{
    char **names;
    size_t i;

    if (!pattern_ok(pattern)) {
        return vmc_error_set(err, -EINVAL, "with a count, the name must "
                             "contain one %%d (got '%s')", pattern);
    }
    names = calloc(count ? count : 1, sizeof(*names));
    if (!names) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    for (i = 0; i < count; i++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        if (asprintf(&names[i], pattern, (int)(i + 1)) < 0) {
#pragma GCC diagnostic pop
            names[i] = NULL;
            vmc_clone_names_free(names, count);
            return vmc_error_set(err, -ENOMEM, "out of memory");
        }
    }
    *out = names;
    return 0;
}

void
vmc_clone_names_free(char **names, size_t count)
{
    size_t i;

    if (!names) {
        return;
    }
    for (i = 0; i < count; i++) {
        free(names[i]);
    }
    free(names);
}
