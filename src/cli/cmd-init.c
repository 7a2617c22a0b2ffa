/*
 * cmd-init.c - "init": create the store and show its pools. The only
 * command that creates a store; on a store that exists it changes
 * nothing and says so. --catalog picks the database (SQLite in the
 * store, or a PostgreSQL several hosts share) and --host-id names this
 * host; both are recorded in the store.
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
        free(db);
        db = NULL;
    }
    if (!yes && dir && asprintf(&db, "%s/catalog.conf", dir) >= 0) {
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

static const char *init_catalog, *init_host_id;

/* Create the store on the catalog --catalog names. */
static int
init_create(struct catcli *c)
{
    struct vmc_error err = { 0 };
    int r;

    if (!init_catalog && !init_host_id) {
        return catcli_open(c, VMC_CATALOG_CREATE);
    }
    r = vmc_catalog_create(&c->cat, c->home, init_catalog, init_host_id,
                           &err);
    return r < 0 ? catcli_fail(&err, r) : 0;
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
    r = init_create(c);
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
    "usage: " CLI_NAME " init [--catalog sqlite|CONNINFO] [--host-id NAME] "
    "[--home DIR]\n\n"
    "Create the store (catalog.db and the pools 'primary' and "
    "'secondary'). Only\ninit creates a store: every other command on a "
    "missing store fails (exit 3).\nOn a store that exists, init changes "
    "nothing and says so (exit 0).\n"
    "--catalog postgresql://... (or 'host=... dbname=...') keeps the "
    "catalog in a\nPostgreSQL database that several hosts' stores may "
    "share; the store records it.\n";

static const struct cli_opt init_opts[] = {
    CLI_OPT_STRING(0, "catalog", "CONNINFO", &init_catalog, "the catalog "
                   "database: sqlite (default) or a PostgreSQL URI or "
                   "key=value string"),
    CLI_OPT_STRING(0, "host-id", "NAME", &init_host_id, "this host's id "
                   "in a shared catalog (default: the hostname)"),
    CLI_OPT_END,
};

const struct catcli_cmd catcli_init = {
    { "init", init_run, init_opts, 0, 0, NULL, NULL, 0 },
    init_usage,
};
