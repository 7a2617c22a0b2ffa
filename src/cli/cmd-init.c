/*
 * cmd-init.c - "init": create the store and show its pools.
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

/* -------------------------------------------------------------- init */

static int
init_run(struct catcli *c, void *ctx, int argc, char **argv)
{
    struct json_object *pools;

    pools = catcli_report(c, VMC_REPORT_POOLS, NULL, 0);
    if (!pools) {
        return CLI_EXIT_FAIL;
    }
    if (c->json) {
        struct json_object *o = json_object_new_object();

        cli_json_add_str(o, "home", vmc_catalog_dir(c->cat));
        cli_json_add_obj(o, "pools", pools);
        cli_json_print(stdout, o);
        json_object_put(o);
    } else {
        size_t i;

        if (!c->quiet) {
            printf("Store '%s' ready\n", vmc_catalog_dir(c->cat));
            for (i = 0; i < json_object_array_length(pools); i++) {
                struct json_object *p = json_object_array_get_idx(pools, i);

                printf("  pool %-12s %-9s %s\n", catcli_jstr(p, "name"),
                       catcli_jstr(p, "kind"), catcli_jstr(p, "path"));
            }
        }
        json_object_put(pools);
    }
    return CLI_EXIT_OK;
}

static const char init_usage[] =
    "usage: " CLI_NAME " init [--home DIR]\n\n"
    "Create the store (catalog.db and the pools 'primary' and "
    "'secondary').\nEvery other command creates it as well when it is "
    "missing.\n";

const struct catcli_cmd catcli_init = {
    { "init", init_run, NULL, 0, 0, NULL, NULL, CATCLI_STORE },
    init_usage,
};
