/*
 * cmd-init.c - "init": create the store and show its pools. The only
 * command that creates a store; on a store that exists it changes
 * nothing and says so.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cat-cli.h"

/* Whether the store @c names has a catalog already (before init). */
static bool
store_exists(const struct catcli *c)
{
    char *dir = NULL, *db = NULL;
    bool yes = false;

    if (vmc_catalog_home(c->home, &dir) == 0 &&
        asprintf(&db, "%s/catalog.db", dir) >= 0) {
        yes = access(db, F_OK) == 0;
    }
    free(db);
    free(dir);
    return yes;
}

static void
print_pools(struct json_object *pools)
{
    size_t i;

    for (i = 0; i < json_object_array_length(pools); i++) {
        struct json_object *p = json_object_array_get_idx(pools, i);

        printf("  pool %-12s %-9s %s\n", catcli_jstr(p, "name"),
               catcli_jstr(p, "kind"), catcli_jstr(p, "path"));
    }
}

/* Create the store, or say it is there. init opens the store itself
 * (its table entry asks for none), to know which it was. */
static int
init_run(struct catcli *c, void *ctx, int argc, char **argv)
{
    bool existed = store_exists(c);
    struct json_object *pools;
    int r;

    (void)ctx;
    (void)argc;
    (void)argv;
    r = catcli_open(c, VMC_CATALOG_CREATE);
    if (r) {
        return r;
    }
    pools = catcli_report(c, VMC_REPORT_POOLS, NULL, 0);
    if (!pools) {
        catcli_close(c);
        return CLI_EXIT_FAIL;
    }
    if (c->json) {
        struct json_object *o = json_object_new_object();

        cli_json_add_str(o, "home", vmc_catalog_dir(c->cat));
        cli_json_add_bool(o, "created", !existed);
        cli_json_add_obj(o, "pools", pools);
        catcli_json_done(o);
    } else {
        if (!c->quiet) {
            printf(existed ? "Store '%s' already exists\n"
                           : "Created store '%s'\n", vmc_catalog_dir(c->cat));
            print_pools(pools);
        }
        json_object_put(pools);
    }
    catcli_close(c);
    return CLI_EXIT_OK;
}

static const char init_usage[] =
    "usage: " CLI_NAME " init [--home DIR]\n\n"
    "Create the store (catalog.db and the pools 'primary' and "
    "'secondary'). Only\ninit creates a store: every other command on a "
    "missing store fails (exit 3).\nOn a store that exists, init changes "
    "nothing and says so (exit 0).\n";

const struct catcli_cmd catcli_init = {
    { "init", init_run, NULL, 0, 0, NULL, NULL, 0 },
    init_usage,
};
