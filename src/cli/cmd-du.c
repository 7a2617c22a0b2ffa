/*
 * cmd-du.c - "du": space used per pool, and by the instant templates'
 * RAM and state files (not in a pool: one row of kind "instant" per
 * directory that holds some, with the free space of its filesystem).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "cat-cli.h"

/* ---------------------------------------------------------------- du */

/* One row (@o, printed unless --json) of the du table. */
static void
du_row(struct catcli *c, struct json_object *o, const char *pool,
       const char *kind, const char *path, size_t count, uint64_t vsize,
       uint64_t alloc)
{
    struct statvfs sv;
    uint64_t avail = 0;
    char a[32], b[32], d[32];

    if (statvfs(path, &sv) == 0) {
        avail = (uint64_t)sv.f_bavail * sv.f_frsize;
    }
    cli_json_add_str(o, "pool", pool);
    cli_json_add_str(o, "kind", kind);
    cli_json_add_str(o, "path", path);
    cli_json_add_u64(o, "image_count", count);
    cli_json_add_u64(o, "virtual_size", vsize);
    cli_json_add_u64(o, "allocated", alloc);
    cli_json_add_u64(o, "free", avail);
    if (!c->json) {
        catcli_size(c, vsize, a, sizeof(a));
        catcli_size(c, alloc, b, sizeof(b));
        catcli_size(c, avail, d, sizeof(d));
        printf("%-12s %-9s %7zu %10s %10s %10s  %s\n", pool, kind, count, a,
               b, d, path);
    }
}

/* The instant templates' frozen files, one row per directory (in the
 * order first met) into @out. */
static void
du_instant(struct catcli *c, struct json_object *out)
{
    struct json_object *files = catcli_report_raw(c, VMC_REPORT_INSTANT_FILES,
                                                  NULL, 0);
    size_t n = files ? json_object_array_length(files) : 0, i, k;
    bool *done = calloc(n ? n : 1, sizeof(*done));

    for (i = 0; done && i < n; i++) {
        char dir[4096];
        size_t count = 0;
        uint64_t vsize = 0, alloc = 0;

        if (done[i]) {
            continue;
        }
        snprintf(dir, sizeof(dir), "%s", catcli_jstr(
                     json_object_array_get_idx(files, i), "path"));
        *(strrchr(dir, '/') ? strrchr(dir, '/') : dir) = '\0';
        for (k = i; k < n; k++) {
            struct json_object *v = json_object_array_get_idx(files, k);
            const char *p = catcli_jstr(v, "path"), *sl = strrchr(p, '/');
            struct stat st;

            if (done[k] || (size_t)(sl ? sl - p : 0) != strlen(dir) ||
                strncmp(p, dir, strlen(dir))) {
                continue;
            }
            done[k] = true;
            count++;
            vsize += (uint64_t)catcli_jint(v, "size");
            if (stat(p, &st) == 0) {
                alloc += (uint64_t)st.st_blocks * 512;
            }
        }
        {
            struct json_object *o = json_object_new_object();

            du_row(c, o, "instant", "instant", dir, count, vsize, alloc);
            json_object_array_add(out, o);
        }
    }
    free(done);
    json_object_put(files);
}

static int
du_run(struct catcli *c, void *ctx, int argc, char **argv)
{
    struct json_object *pools, *out;
    size_t i;

    pools = catcli_report(c, VMC_REPORT_POOLS, NULL, 0);
    if (!pools) {
        return CLI_EXIT_FAIL;
    }
    out = json_object_new_array();
    if (!c->json && !c->quiet) {
        printf("%-12s %-9s %7s %10s %10s %10s  %s\n", "POOL", "KIND",
               "IMAGES", "VIRTUAL", "ALLOCATED", "FREE", "PATH");
    }
    for (i = 0; i < json_object_array_length(pools); i++) {
        struct json_object *p = json_object_array_get_idx(pools, i), *vols, *o;
        const char *params[1] = { catcli_jstr(p, "name") };
        uint64_t alloc = 0, vsize = 0;
        size_t k;

        vols = catcli_report(c, VMC_REPORT_POOL_VOLUMES, params, 1);
        for (k = 0; vols && k < json_object_array_length(vols); k++) {
            struct json_object *v = json_object_array_get_idx(vols, k);
            struct stat st;
            char seal[4200];

            vsize += (uint64_t)catcli_jint(v, "virtual_size");
            if (stat(catcli_jstr(v, "path"), &st) == 0) {
                alloc += (uint64_t)st.st_blocks * 512;
            }
            snprintf(seal, sizeof(seal), "%s.seal", catcli_jstr(v, "path"));
            if (stat(seal, &st) == 0) {
                alloc += (uint64_t)st.st_blocks * 512;
            }
        }
        o = json_object_new_object();
        du_row(c, o, catcli_jstr(p, "name"), catcli_jstr(p, "kind"),
               catcli_jstr(p, "path"),
               vols ? json_object_array_length(vols) : 0, vsize, alloc);
        json_object_array_add(out, o);
        json_object_put(vols);
    }
    du_instant(c, out);
    if (c->json) {
        cli_json_print(stdout, out);
    }
    json_object_put(out);
    json_object_put(pools);
    return CLI_EXIT_OK;
}

static const char du_usage[] =
    "usage: " CLI_NAME " du [--json] [--bytes]\n\n"
    "Space per pool: images in the catalog, their allocated bytes, "
    "the\nfilesystem's free space; rows of kind 'instant': the RAM and "
    "state files of\ninstant templates, per directory.\n";

const struct catcli_cmd catcli_du = {
    { "du", du_run, NULL, 0, 0, NULL, NULL, CATCLI_STORE },
    du_usage,
};
