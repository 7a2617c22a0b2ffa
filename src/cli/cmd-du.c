/*
 * cmd-du.c - "du": space used per pool.
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
        uint64_t alloc = 0, vsize = 0, avail = 0;
        struct statvfs sv;
        size_t k;
        char a[32], b[32], d[32];

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
        if (statvfs(catcli_jstr(p, "path"), &sv) == 0) {
            avail = (uint64_t)sv.f_bavail * sv.f_frsize;
        }
        o = json_object_new_object();
        cli_json_add_str(o, "pool", catcli_jstr(p, "name"));
        cli_json_add_str(o, "kind", catcli_jstr(p, "kind"));
        cli_json_add_str(o, "path", catcli_jstr(p, "path"));
        cli_json_add_u64(o, "image_count", vols ? json_object_array_length(vols)
                                           : 0);
        cli_json_add_u64(o, "virtual_size", vsize);
        cli_json_add_u64(o, "allocated", alloc);
        cli_json_add_u64(o, "free", avail);
        if (!c->json) {
            catcli_size(c, vsize, a, sizeof(a));
            catcli_size(c, alloc, b, sizeof(b));
            catcli_size(c, avail, d, sizeof(d));
            printf("%-12s %-9s %7zu %10s %10s %10s  %s\n", catcli_jstr(p, "name"),
                   catcli_jstr(p, "kind"),
                   vols ? json_object_array_length(vols) : 0, a, b, d,
                   catcli_jstr(p, "path"));
        }
        json_object_array_add(out, o);
        json_object_put(vols);
    }
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
    "the\nfilesystem's free space.\n";

const struct catcli_cmd catcli_du = {
    { "du", du_run, NULL, 0, 0, NULL, NULL, CATCLI_STORE },
    du_usage,
};
