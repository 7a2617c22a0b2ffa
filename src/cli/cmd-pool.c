/*
 * cmd-pool.c - "pool add|list|rm": the directories that hold images.
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

/* -------------------------------------------------------------- pool */

static bool pool_shared;    /* pool add --shared */

static int
pool_add(struct catcli *c, void *ctx, int argc, char **argv)
{
    const char *kind = *(const char **)ctx;
    struct vmc_error err = { 0 };
    int r = vmc_catalog_pool_add(c->cat, argv[0], argv[1], kind, &err);

    if (r == 0 && pool_shared) {
        r = vmc_catalog_pool_share(c->cat, argv[0], &err);
    }

    if (r == 0 && c->json) {
        const char *params[1] = { argv[0] };
        struct json_object *arr = catcli_report(c, VMC_REPORT_POOL,
                                                params, 1);
        struct json_object *o = arr && json_object_array_length(arr)
            ? json_object_get(json_object_array_get_idx(arr, 0))
            : json_object_new_object();

        cli_json_add_str(o, "action", "added");
        catcli_json_done(o);
        json_object_put(arr);
    } else if (r == 0 && !c->quiet) {
        printf("Pool '%s' (%s) added\n", argv[0], kind);
    }
    return r < 0 ? catcli_fail(&err, r) : CLI_EXIT_OK;
}

static int
pool_rm(struct catcli *c, void *ctx, int argc, char **argv)
{
    struct vmc_error err = { 0 };
    int r = vmc_catalog_pool_rm(c->cat, argv[0], &err);

    if (r == 0 && c->json) {
        struct json_object *o = json_object_new_object();

        cli_json_add_str(o, "pool", argv[0]);
        cli_json_add_str(o, "action", "removed");
        cli_json_add_bool(o, "directory_kept", true);
        catcli_json_done(o);
    } else if (r == 0 && !c->quiet) {
        printf("Pool '%s' removed (its directory is kept)\n", argv[0]);
    }
    return r < 0 ? catcli_fail(&err, r) : CLI_EXIT_OK;
}

static int
pool_list(struct catcli *c, void *ctx, int argc, char **argv)
{
    static const char *const cols[] = { "name", "kind", "path", NULL };

    return catcli_print_report(c, VMC_REPORT_POOL_LIST, cols);
}

int
cmd_pool(int argc, char **argv)
{
    struct catcli c = { .verb = "pool", .usage =
        "Pools are directories holding images: 'primary' pools hold VM "
        "disks and\ntemplate copies, 'secondary' pools hold templates.\n" };
    const char *kind = "primary";
    const struct cli_opt common[] = { CATCLI_OPTS(&c), CLI_OPT_END };
    const struct cli_opt add_opts[] = {
        CATCLI_OPTS(&c),
        CLI_OPT_STRING(0, "kind", "KIND", &kind,
                       "primary (VM disks, template copies; default) or "
                       "secondary (templates)"),
        CLI_OPT_FLAG(0, "shared", &pool_shared, "every host sharing the "
                     "catalog mounts DIR (default on PostgreSQL: local to "
                     "this host)"),
        CLI_OPT_END,
    };
    const struct catcli_sub subs[] = {
        { "add", pool_add, add_opts, 2, 2,
          "NAME DIR [--kind primary|secondary] [--shared]",
          "add needs NAME and DIR",
          CATCLI_STORE },
        { "list", pool_list, common, 0, 0, "[--json]", NULL, CATCLI_STORE },
        { "rm", pool_rm, common, 1, 1, "NAME", "rm needs NAME",
          CATCLI_STORE },
        { NULL, NULL, NULL, 0, 0, NULL, NULL, 0 },
    };

    return catcli_run_group(&c, subs, &kind, argc, argv);
}
