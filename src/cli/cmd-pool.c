/*
 * cmd-pool.c - "pool add|set|list|rm": the directories and Ceph pools
 * that hold images, and a primary pool's limit of linked clones per base
 * copy of a template (docs/design/scale-out.md, hot templates).
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

/* pool add's and pool set's options */
struct pool_add_opts {
    const char *kind, *type;
    struct vmc_rbd_pool_opts rbd;
    const char *max_clones;     /* --max-clones-per-base N|default */
};

/* --max-clones-per-base: N >= 0 (0: no limit) or 'default' (-1). */
static int
parse_max_clones(const char *verb, const char *s, int64_t *max)
{
    char *end = NULL;
    long long v;

    if (!strcmp(s, "default")) {
        *max = -1;
        return 0;
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < 0 || v > 1000000000) {
        return cli_usage_error(verb, "--max-clones-per-base must be a "
                               "number from 0 (no limit) to 1000000000, or "
                               "'default', not '%s'", s);
    }
    *max = v;
    return 0;
}

/* Add a directory pool (NAME DIR) or an rbd pool (NAME --type rbd). */
static int
pool_add_one(struct catcli *c, const struct pool_add_opts *o, char **argv,
             struct vmc_error *err)
{
    bool rbd = !strcmp(o->type, "rbd");

    if (strcmp(o->type, "dir") && !rbd) {
        return vmc_error_set(err, -EINVAL, "pool type must be 'dir' or "
                             "'rbd', not '%s'", o->type);
    }
    if (!rbd && (o->rbd.rbd_pool || o->rbd.ns || o->rbd.conf || o->rbd.id)) {
        return vmc_error_set(err, -EINVAL, "--rbd-pool, --rbd-namespace, "
                             "--conf and --id apply to --type rbd");
    }
    return rbd ? vmc_catalog_pool_add_rbd(c->cat, argv[0], o->kind, &o->rbd,
                                          err)
               : vmc_catalog_pool_add(c->cat, argv[0], argv[1], o->kind,
                                      err);
}

static bool pool_shared;    /* pool add --shared */

static int
pool_add(struct catcli *c, void *ctx, int argc, char **argv)
{
    const struct pool_add_opts *po = ctx;
    struct vmc_error err = { 0 };
    bool rbd = !strcmp(po->type, "rbd");
    int r;

    int64_t max = -1;

    if (argc != (rbd ? 1 : 2)) {
        return cli_usage_error("pool add", rbd ? "an rbd pool takes no DIR"
                               : "add needs NAME and DIR");
    }
    if (po->max_clones && strcmp(po->kind, "primary")) {
        return cli_usage_error("pool add", "--max-clones-per-base applies "
                               "to primary pools");
    }
    if (po->max_clones &&
        (r = parse_max_clones("pool add", po->max_clones, &max)) != 0) {
        return r;
    }
    r = pool_add_one(c, po, argv, &err);
    if (r == 0 && max >= 0) {
        r = vmc_catalog_pool_set_max_clones(c->cat, argv[0], max, &err);
    }

    /* a Ceph pool is reached the same way from every host */
    if (r == 0 && (pool_shared || rbd)) {
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
        printf("Pool '%s' (%s, %s) added\n", argv[0], po->kind, po->type);
    }
    return r < 0 ? catcli_fail(&err, r) : CLI_EXIT_OK;
}

/* pool set NAME --max-clones-per-base N|default */
static int
pool_set(struct catcli *c, void *ctx, int argc, char **argv)
{
    const struct pool_add_opts *po = ctx;
    struct vmc_error err = { 0 };
    int64_t max = -1;
    int r;

    if (!po->max_clones) {
        return cli_usage_error("pool set", "nothing to set: give "
                               "--max-clones-per-base N");
    }
    r = parse_max_clones("pool set", po->max_clones, &max);
    if (r != 0) {
        return r;
    }
    r = vmc_catalog_pool_set_max_clones(c->cat, argv[0], max, &err);
    if (r == 0) {
        r = vmc_catalog_pool_max_clones(c->cat, argv[0], &max, &err);
    }
    if (r == 0 && c->json) {
        struct json_object *o = json_object_new_object();

        cli_json_add_str(o, "pool", argv[0]);
        cli_json_add_str(o, "action", "set");
        json_object_object_add(o, "max_clones_per_base",
                               json_object_new_int64(max));
        catcli_json_done(o);
    } else if (r == 0 && !c->quiet) {
        if (max > 0) {
            printf("Pool '%s': at most %" PRId64 " linked clones per base "
                   "copy\n", argv[0], max);
        } else {
            printf("Pool '%s': no limit of linked clones per base copy\n",
                   argv[0]);
        }
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
    static const char *const cols[] = { "name", "kind", "type", "path",
                                        NULL };

    return catcli_print_report(c, VMC_REPORT_POOL_LIST, cols);
}

int
cmd_pool(int argc, char **argv)
{
    struct catcli c = { .verb = "pool", .usage =
        "Pools hold images: directories (type 'dir') or Ceph RBD pools "
        "(type 'rbd').\n'primary' pools hold VM disks and template copies, "
        "'secondary' pools hold\ntemplates.\n" };
    struct pool_add_opts po = { .kind = "primary", .type = "dir" };
    const struct cli_opt common[] = { CATCLI_OPTS(&c), CLI_OPT_END };
    const struct cli_opt add_opts[] = {
        CATCLI_OPTS(&c),
        CLI_OPT_STRING(0, "kind", "KIND", &po.kind,
                       "primary (VM disks, template copies; default) or "
                       "secondary (templates)"),
        CLI_OPT_STRING(0, "type", "TYPE", &po.type,
                       "dir (a directory; default) or rbd (a Ceph RBD pool)"),
        CLI_OPT_STRING(0, "rbd-pool", "POOL", &po.rbd.rbd_pool,
                       "--type rbd: the Ceph pool"),
        CLI_OPT_STRING(0, "rbd-namespace", "NS", &po.rbd.ns,
                       "--type rbd: an RBD namespace in it"),
        CLI_OPT_STRING(0, "conf", "FILE", &po.rbd.conf,
                       "--type rbd: ceph.conf (default: Ceph's search)"),
        CLI_OPT_STRING(0, "id", "USER", &po.rbd.id,
                       "--type rbd: client id (default: admin)"),
        CLI_OPT_FLAG(0, "shared", &pool_shared, "every host sharing the "
                     "catalog mounts DIR (default on PostgreSQL: local to "
                     "this host)"),
        CLI_OPT_STRING(0, "max-clones-per-base", "N", &po.max_clones,
                       "linked clones per base copy of a template, then "
                       "another copy (0: no limit; default: none for dir, "
                       "200 for rbd)"),
        CLI_OPT_END,
    };
    const struct cli_opt set_opts[] = {
        CATCLI_OPTS(&c),
        CLI_OPT_STRING(0, "max-clones-per-base", "N", &po.max_clones,
                       "linked clones per base copy of a template, then "
                       "another copy (0: no limit; 'default': none for "
                       "dir, 200 for rbd)"),
        CLI_OPT_END,
    };
    const struct catcli_sub subs[] = {
        { "add", pool_add, add_opts, 1, 2,
          "NAME DIR [--kind primary|secondary] [--shared] "
          "[--max-clones-per-base N]\n"
          "       add NAME --type rbd --rbd-pool POOL [--rbd-namespace NS] "
          "[--conf FILE]\n           [--id USER] [--kind primary|secondary] "
          "[--max-clones-per-base N]",
          "add needs NAME and DIR", CATCLI_STORE },
        { "set", pool_set, set_opts, 1, 1,
          "NAME --max-clones-per-base N|default", "set needs NAME",
          CATCLI_STORE },
        { "list", pool_list, common, 0, 0, "[--json]", NULL, CATCLI_STORE },
        { "rm", pool_rm, common, 1, 1, "NAME", "rm needs NAME",
          CATCLI_STORE },
        { NULL, NULL, NULL, 0, 0, NULL, NULL, 0 },
    };

    return catcli_run_group(&c, subs, &po, argc, argv);
}
