/*
 * customize.c - guest customization options of clone and vm set
 * (customize.h): the files are read here, the seed is made by the
 * catalog (src/catalog/seed.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "customize.h"

/* Largest seed input file. */
#define CUST_FILE_MAX (1u << 20)

bool
cust_given(const struct cust_args *a)
{
    return a->hostname || a->ssh_key_file || a->user_data_file ||
           a->network_config_file || a->ephemeral;
}

/* The text of @path (NULL: *@out = NULL); a key file's trailing
 * newlines are dropped when @one_line. */
static int
read_text(const char *path, bool one_line, char **out)
{
    char *buf;
    size_t n;
    FILE *f;

    *out = NULL;
    if (!path) {
        return 0;
    }
    f = fopen(path, "r");
    buf = malloc(CUST_FILE_MAX + 1);
    if (!f || !buf) {
        free(buf);
        if (f) {
            fclose(f);
        }
        return cli_error("cannot read '%s': %s", path, strerror(errno));
    }
    n = fread(buf, 1, CUST_FILE_MAX + 1, f);
    fclose(f);
    if (n > CUST_FILE_MAX || memchr(buf, '\0', n)) {
        free(buf);
        return cli_error("'%s' is not a text file of at most 1 MiB", path);
    }
    while (one_line && n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        n--;
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

/* @pattern with its %d replaced by @i, into @out. */
static void
expand_hostname(const char *pattern, size_t i, char *out, size_t len)
{
    const char *d = strstr(pattern, "%d");

    if (!d) {
        snprintf(out, len, "%s", pattern);
        return;
    }
    snprintf(out, len, "%.*s%zu%s", (int)(d - pattern), pattern, i, d + 2);
}

/* Remove what a failed clone made. */
static void
rm_all(struct catcli *c, char *const *names, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        vmc_catalog_vm_rm(c->cat, names[i], NULL);
    }
}

int
cust_apply(struct catcli *c, const struct cust_args *a,
           char *const *names, size_t n, bool rm_on_fail)
{
    struct vmc_vm_custom vc = { .set_ephemeral = a->ephemeral,
                                .ephemeral = a->ephemeral };
    struct vmc_error err = { 0 };
    char *key = NULL, *ud = NULL, *nc = NULL, host[256];
    size_t i;
    int r = 0;

    if (a->hostname && n > 1 && !strstr(a->hostname, "%d")) {
        r = cli_usage_error(c->verb, "--hostname needs one %%d with "
                            "--count (each VM its own hostname)");
    }
    if (r || read_text(a->ssh_key_file, true, &key) ||
        read_text(a->user_data_file, false, &ud) ||
        read_text(a->network_config_file, false, &nc)) {
        r = r ? r : CLI_EXIT_FAIL;
    }
    vc.ssh_key = key;
    vc.user_data = ud;
    vc.network_config = nc;
    for (i = 0; r == 0 && i < n; i++) {
        if (a->hostname) {
            expand_hostname(a->hostname, i + 1, host, sizeof(host));
            vc.hostname = host;
        }
        r = vmc_catalog_vm_customize(c->cat, names[i], &vc, &err);
        r = r < 0 ? catcli_fail(&err, r) : 0;
    }
    if (r && rm_on_fail) {
        rm_all(c, names, n);
    }
    free(key);
    free(ud);
    free(nc);
    return r;
}
