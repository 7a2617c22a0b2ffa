/*
 * cmd-deps.c - "deps": what depends on a template, VM or snapshot.
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

static int
deps_run(struct catcli *c, void *ctx, int argc, char **argv)
{
    struct vmc_error err = { 0 };
    char **deps = NULL;
    size_t n = 0, i;
    int r;

    r = vmc_catalog_dependents(c->cat, NULL, argv[0], &deps, &n, &err);
    if (r < 0) {
        return catcli_fail(&err, r);
    }
    if (c->json) {
        struct json_object *arr = json_object_new_array();

        for (i = 0; i < n; i++) {
            json_object_array_add(arr, catcli_dep_json(deps[i]));
        }
        cli_json_print(stdout, arr);
        json_object_put(arr);
    } else {
        if (n == 0 && !c->quiet) {
            printf("nothing depends on '%s'\n", argv[0]);
        }
        for (i = 0; i < n; i++) {
            printf("%s\n", deps[i]);
        }
    }
    vmc_catalog_strv_free(deps, n);
    return CLI_EXIT_OK;
}

static const char deps_usage[] =
    "usage: " CLI_NAME " deps NAME [--json]\n\n"
    "Everything that depends on NAME (a template, a VM, or VM@SNAPSHOT),"
    "\ndirectly or through other layers.\n";

const struct catcli_cmd catcli_deps = {
    { "deps", deps_run, NULL, 1, 1, NULL, "expecting one name", CATCLI_STORE },
    deps_usage,
};
