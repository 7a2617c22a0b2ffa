/*
 * cmd-catalog.c - the store-level management commands: init, pool,
 * config, list, info, rm, deps, tree, du, gc, fsck; and the helpers the
 * management commands share (cat-cli.h).
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

#include "cli/cat-cli.h"

/* ------------------------------------------------------------ helpers */

int
catcli_fail(const struct vmc_error *err, int r)
{
    return cli_error_lib(err, r);
}

/* The store's progress callback: one line per operation. */
static void
catcli_progress_cb(uint64_t done, uint64_t total, void *opaque)
{
    struct catcli *c = opaque;

    if (!c->prog_shown) {
        cli_progress_start(&c->prog, true);
        c->prog_shown = true;
    }
    cli_progress_cb(done, total, &c->prog);
    if (done >= total) {
        catcli_progress_end(c);
    }
}

void
catcli_progress_end(struct catcli *c)
{
    if (c->prog_shown) {
        cli_progress_end(&c->prog);
        c->prog_shown = false;
    }
}

int
catcli_open(struct catcli *c, unsigned flags)
{
    struct vmc_error err = { 0 };
    int r = vmc_catalog_open(&c->cat, c->home, flags, &err);

    if (r < 0) {
        return catcli_fail(&err, r);
    }
    if (isatty(STDOUT_FILENO) && !c->json && !c->quiet) {
        vmc_catalog_set_progress(c->cat, catcli_progress_cb, c);
    }
    return 0;
}

void
catcli_close(struct catcli *c)
{
    catcli_progress_end(c);
    vmc_catalog_close(c->cat);
    c->cat = NULL;
}

void
catcli_json_done(struct json_object *o)
{
    cli_json_print(stdout, o);
    json_object_put(o);
}

void
catcli_size(const struct catcli *c, uint64_t v, char *buf, size_t len)
{
    if (c->bytes) {
        snprintf(buf, len, "%" PRIu64, v);
    } else {
        cli_size_to_str(v, buf, len);
    }
}

int
catcli_parse_duration(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    uint64_t mul = 1;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s) {
        return -EINVAL;
    }
    switch (*end) {
    case '\0':
    case 's':
        break;
    case 'm':
        mul = 60;
        break;
    case 'h':
        mul = 3600;
        break;
    case 'd':
        mul = 86400;
        break;
    case 'w':
        mul = 7 * 86400;
        break;
    default:
        return -EINVAL;
    }
    if (*end && end[1]) {
        return -EINVAL;
    }
    *out = (uint64_t)v * mul;
    return 0;
}

static bool
numeric_column(const char *name)
{
    static const char *const cols[] = {
        "virtual_size", "size", "cpus", "memory_mb", "nics", "disks",
        "vms", "copies", "created", "expires", "retired", "disk",
        "dependents", "snapshots", "volumes", "allocated", "free", "depth",
        NULL,
    };
    unsigned i;

    for (i = 0; cols[i]; i++) {
        if (!strcmp(cols[i], name)) {
            return true;
        }
    }
    return false;
}

static int
row_to_json(int ncols, const char *const *names, const char *const *values,
            void *opaque)
{
    struct json_object *arr = opaque, *o = json_object_new_object();
    int i;

    for (i = 0; i < ncols; i++) {
        struct json_object *v = NULL;

        if (values[i] && numeric_column(names[i])) {
            if (strchr(values[i], '.')) {
                v = json_object_new_double(strtod(values[i], NULL));
            } else {
                v = json_object_new_int64(strtoll(values[i], NULL, 10));
            }
        } else if (values[i]) {
            v = json_object_new_string(values[i]);
        }
        json_object_object_add(o, names[i], v);
    }
    json_object_array_add(arr, o);
    return 0;
}

struct json_object *
catcli_query_json(struct catcli *c, const char *sql,
                  const char *const *params, size_t n)
{
    struct json_object *arr = json_object_new_array();
    struct vmc_error err = { 0 };
    int r = vmc_catalog_query(c->cat, sql, params, n, row_to_json, arr,
                              &err);

    if (r < 0) {
        json_object_put(arr);
        catcli_fail(&err, r);
        return NULL;
    }
    return arr;
}

static const char *
jstr(struct json_object *o, const char *k)
{
    struct json_object *v = NULL;

    if (!json_object_object_get_ex(o, k, &v) || !v) {
        return "";
    }
    return json_object_get_string(v);
}

static int64_t
jint(struct json_object *o, const char *k)
{
    struct json_object *v = NULL;

    if (!json_object_object_get_ex(o, k, &v) || !v) {
        return 0;
    }
    return json_object_get_int64(v);
}

static void
fmt_time(double t, char *buf, size_t len)
{
    time_t s = (time_t)t;
    struct tm tm;

    if (t <= 0) {
        snprintf(buf, len, "-");
        return;
    }
    gmtime_r(&s, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

struct json_object *
catcli_gone(struct catcli *c, struct json_object *before)
{
    struct json_object *out = json_object_new_array();
    size_t i;

    for (i = 0; before && i < json_object_array_length(before); i++) {
        const char *name = jstr(json_object_array_get_idx(before, i),
                                "name");
        const char *params[1] = { name };
        struct json_object *t = catcli_query_json(c, "SELECT 1 AS x FROM "
                                                  "templates WHERE name = ?1",
                                                  params, 1);

        if (t && json_object_array_length(t) == 0) {
            json_object_array_add(out, json_object_new_string(name));
        }
        json_object_put(t);
    }
    return out;
}

/* -------------------------------------------------------------- init */

int
cmd_init(int argc, char **argv)
{
    struct catcli c = { .verb = "init", .usage =
        "usage: " CLI_NAME " init [--home DIR]\n\n"
        "Create the store (catalog.db and the pools 'primary' and "
        "'secondary').\nEvery other command creates it as well when it is "
        "missing.\n" };
    struct json_object *pools;
    int r = catcli_parse(&c, NULL, argc, argv);

    if (r) {
        return CLI_PARSE_EXIT(r);
    }
    if (optind != argc) {
        return cli_usage_error(c.verb, "too many arguments");
    }
    r = catcli_open(&c, 0);
    if (r) {
        return r;
    }
    pools = catcli_query_json(&c, "SELECT name, kind, path FROM pools "
                              "ORDER BY id", NULL, 0);
    if (!pools) {
        catcli_close(&c);
        return CLI_EXIT_FAIL;
    }
    if (c.json) {
        struct json_object *o = json_object_new_object();

        cli_json_add_str(o, "home", vmc_catalog_dir(c.cat));
        cli_json_add_obj(o, "pools", pools);
        cli_json_print(stdout, o);
        json_object_put(o);
    } else {
        size_t i;

        if (!c.quiet) {
            printf("Store '%s' ready\n", vmc_catalog_dir(c.cat));
            for (i = 0; i < json_object_array_length(pools); i++) {
                struct json_object *p = json_object_array_get_idx(pools, i);

                printf("  pool %-12s %-9s %s\n", jstr(p, "name"),
                       jstr(p, "kind"), jstr(p, "path"));
            }
        }
        json_object_put(pools);
    }
    catcli_close(&c);
    return CLI_EXIT_OK;
}

/* -------------------------------------------------------------- pool */

static int
print_rows_table(struct catcli *c, struct json_object *arr,
                 const char *const *cols)
{
    size_t i;
    unsigned k;

    if (c->json) {
        cli_json_print(stdout, arr);
        return 0;
    }
    for (i = 0; i < json_object_array_length(arr); i++) {
        struct json_object *row = json_object_array_get_idx(arr, i);

        for (k = 0; cols[k]; k++) {
            printf("%s%s", k ? "  " : "", jstr(row, cols[k]));
        }
        putchar('\n');
    }
    return 0;
}

static int
pool_add(struct catcli *c, void *ctx, int argc, char **argv)
{
    const char *kind = *(const char **)ctx;
    struct vmc_error err = { 0 };
    int r = vmc_catalog_pool_add(c->cat, argv[0], argv[1], kind, &err);

    (void)argc;
    if (r == 0 && c->json) {
        const char *params[1] = { argv[0] };
        struct json_object *arr = catcli_query_json(c,
            "SELECT name AS pool, kind, path FROM pools WHERE name = ?1",
            params, 1);
        struct json_object *o = arr && json_object_array_length(arr)
            ? json_object_get(json_object_array_get_idx(arr, 0))
            : json_object_new_object();

        cli_json_add_bool(o, "added", true);
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

    (void)ctx;
    (void)argc;
    if (r == 0 && c->json) {
        struct json_object *o = json_object_new_object();

        cli_json_add_str(o, "pool", argv[0]);
        cli_json_add_bool(o, "removed", true);
        cli_json_add_bool(o, "directory-kept", true);
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
    struct json_object *arr = catcli_query_json(c,
        "SELECT p.name, p.kind, p.path, (SELECT count(*) FROM volumes v "
        "WHERE v.pool_id = p.id) AS volumes FROM pools p ORDER BY p.id",
        NULL, 0);

    (void)ctx;
    (void)argc;
    (void)argv;
    if (!arr) {
        return CLI_EXIT_FAIL;
    }
    print_rows_table(c, arr, cols);
    json_object_put(arr);
    return CLI_EXIT_OK;
}

int
cmd_pool(int argc, char **argv)
{
    struct catcli c = { .verb = "pool", .usage =
        "usage: " CLI_NAME " pool add NAME DIR [--kind primary|secondary]\n"
        "       " CLI_NAME " pool list [--json]\n"
        "       " CLI_NAME " pool rm NAME\n\n"
        "Pools are directories holding images: 'primary' pools hold VM "
        "disks and\ntemplate copies, 'secondary' pools hold templates.\n" };
    const char *kind = "primary";
    const struct cli_opt common[] = { CATCLI_OPTS(&c), CLI_OPT_END };
    const struct cli_opt add_opts[] = {
        CATCLI_OPTS(&c),
        CLI_OPT_STRING(0, "kind", "KIND", &kind,
                       "primary (VM disks, template copies; default) or "
                       "secondary (templates)"),
        CLI_OPT_END,
    };
    const struct catcli_sub subs[] = {
        { "add", pool_add, add_opts, 2, 2,
          "NAME DIR [--kind primary|secondary]", "add needs NAME and DIR",
          CATCLI_STORE },
        { "list", pool_list, common, 0, 0, "[--json]", NULL, CATCLI_STORE },
        { "rm", pool_rm, common, 1, 1, "NAME", "rm needs NAME",
          CATCLI_STORE },
        { NULL, NULL, NULL, 0, 0, NULL, NULL, 0 },
    };

    return catcli_run_group(&c, subs, &kind, argc, argv);
}

/* ------------------------------------------------------------ config */

static int
config_set(struct catcli *c, void *ctx, int argc, char **argv)
{
    const char *value = argc > 1 ? argv[1] : NULL;
    struct vmc_error err = { 0 };
    int r = vmc_catalog_config_set(c->cat, argv[0], value, &err);

    (void)ctx;
    if (r == 0 && c->json) {
        struct json_object *o = json_object_new_object();

        cli_json_add_str(o, "key", argv[0]);
        json_object_object_add(o, "value", value
                               ? json_object_new_string(value) : NULL);
        cli_json_add_bool(o, "set", value != NULL);
        catcli_json_done(o);
    }
    return r < 0 ? catcli_fail(&err, r) : CLI_EXIT_OK;
}

static int
config_get_one(struct catcli *c, const char *key)
{
    struct vmc_error err = { 0 };
    char *val = NULL;
    int r = vmc_catalog_config_get(c->cat, key, &val, &err);

    if (r == 0 && c->json) {
        struct json_object *o = json_object_new_object();

        json_object_object_add(o, key,
                               val ? json_object_new_string(val) : NULL);
        cli_json_print(stdout, o);
        json_object_put(o);
    } else if (r == 0 && val) {
        printf("%s\n", val);
    } else if (r == 0) {
        r = -ENOENT;
        vmc_error_set(&err, r, "'%s' is not set", key);
    }
    free(val);
    return r < 0 ? catcli_fail(&err, r) : CLI_EXIT_OK;
}

static int
config_get(struct catcli *c, void *ctx, int argc, char **argv)
{
    static const char *const cols[] = { "key", "value", NULL };
    struct json_object *arr;

    (void)ctx;
    if (argc > 0) {
        return config_get_one(c, argv[0]);
    }
    arr = catcli_query_json(c, "SELECT key, value FROM config ORDER BY key",
                            NULL, 0);
    if (!arr) {
        return CLI_EXIT_FAIL;
    }
    print_rows_table(c, arr, cols);
    json_object_put(arr);
    return CLI_EXIT_OK;
}

int
cmd_config(int argc, char **argv)
{
    struct catcli c = { .verb = "config", .usage =
        "usage: " CLI_NAME " config get [KEY]\n"
        "       " CLI_NAME " config set KEY VALUE\n"
        "       " CLI_NAME " config unset KEY\n\n"
        "keys: default-template (the template of 'vm-clone --linked "
        "--name X'),\n      default-pool (primary pool for new VMs), "
        "max-chain-depth (default 16)\n" };
    const struct cli_opt common[] = { CATCLI_OPTS(&c), CLI_OPT_END };
    const struct catcli_sub subs[] = {
        { "get", config_get, common, 0, 1, "[KEY]", NULL, CATCLI_STORE },
        { "set", config_set, common, 2, 2, "KEY VALUE",
          "wrong number of arguments", CATCLI_STORE },
        { "unset", config_set, common, 1, 1, "KEY",
          "wrong number of arguments", CATCLI_STORE },
        { NULL, NULL, NULL, 0, 0, NULL, NULL, 0 },
    };

    return catcli_run_group(&c, subs, NULL, argc, argv);
}

/* -------------------------------------------------------------- list */

#define VM_COLUMNS \
    "SELECT m.name, m.state, m.clone_type AS type, m.mechanism, " \
    "m.clone_requested AS requested, m.source, p.name AS pool, " \
    "m.cpus, m.memory_mb, (SELECT count(*) FROM volumes v WHERE " \
    "v.vm_id = m.id AND v.top = 1) AS disks, (SELECT sum(v.virtual_size) " \
    "FROM volumes v WHERE v.vm_id = m.id AND v.top = 1) AS virtual_size, " \
    "(SELECT group_concat(key || '=' || value, ',') FROM (SELECT key, " \
    "value FROM labels WHERE vm_id = m.id ORDER BY key)) AS labels, " \
    "m.created, m.expires, coalesce(m.request_key, m.request_id) AS " \
    "request_id, m.uuid FROM vms m JOIN pools p " \
    "ON p.id = m.pool_id "

/* The --label filters of list: SQL conditions and their parameters. */
struct label_filter {
    const char *params[64];
    size_t np;
    char *sql, *p;
};

static int
add_label(const char *arg, void *dest)
{
    struct label_filter *f = dest;
    char *eq = strchr(arg, '=');

    if (!eq || eq == arg || f->np + 2 > 64) {
        return cli_usage_error("list", "--label needs KEY=VALUE");
    }
    *eq = '\0';
    f->params[f->np++] = arg;
    f->params[f->np++] = eq + 1;
    f->p += sprintf(f->p, " AND EXISTS (SELECT 1 FROM labels l WHERE "
                    "l.vm_id = m.id AND l.key = ?%zu AND l.value = "
                    "?%zu)", f->np - 1, f->np);
    return 0;
}

int
cmd_list(int argc, char **argv)
{
    struct catcli c = { .verb = "list", .usage =
        "usage: " CLI_NAME " list [--label KEY=VALUE]... [--json]\n\n"
        "List the VMs (all labels given must match).\n" };
    struct label_filter f = { .np = 0 };
    const struct cli_opt opts[] = {
        CATCLI_OPTS(&c),
        CLI_OPT_CALL(0, "label", "KEY=VALUE", &f, add_label,
                     "only VMs with this label (repeatable)"),
        CLI_OPT_END,
    };
    const char **params = f.params;
    char *sql = NULL, *p;
    size_t np, i, len;
    struct json_object *arr;
    int r;

    len = strlen(VM_COLUMNS) + 64;
    sql = malloc(len + 64 * 96);
    if (!sql) {
        return cli_error("out of memory");
    }
    f.sql = sql;
    f.p = sql + snprintf(sql, len, "%sWHERE 1", VM_COLUMNS);
    r = catcli_parse(&c, opts, argc, argv);
    if (r) {
        free(sql);
        return CLI_PARSE_EXIT(r);
    }
    p = f.p;
    np = f.np;
    strcpy(p, " ORDER BY m.id");
    if (optind != argc) {
        free(sql);
        return cli_usage_error(c.verb, "too many arguments");
    }
    r = catcli_open(&c, 0);
    if (r) {
        free(sql);
        return r;
    }
    arr = catcli_query_json(&c, sql, params, np);
    free(sql);
    if (!arr) {
        catcli_close(&c);
        return CLI_EXIT_FAIL;
    }
    if (c.json) {
        cli_json_print(stdout, arr);
    } else {
        if (json_object_array_length(arr) && !c.quiet) {
            printf("%-24s %-8s %-6s %-15s %-10s %5s %9s  %s\n", "NAME",
                   "STATE", "TYPE", "MECHANISM", "POOL", "DISKS", "SIZE",
                   "LABELS");
        }
        for (i = 0; i < json_object_array_length(arr); i++) {
            struct json_object *o = json_object_array_get_idx(arr, i);
            char sz[32];

            catcli_size(&c, (uint64_t)jint(o, "virtual_size"), sz,
                        sizeof(sz));
            printf("%-24s %-8s %-6s %-15s %-10s %5" PRId64 " %9s  %s\n",
                   jstr(o, "name"), jstr(o, "state"), jstr(o, "type"),
                   jstr(o, "mechanism"), jstr(o, "pool"), jint(o, "disks"),
                   sz, jstr(o, "labels"));
        }
    }
    json_object_put(arr);
    catcli_close(&c);
    return CLI_EXIT_OK;
}

/* -------------------------------------------------------------- info */

/* The backing chain of volume @vid as an array of paths (top first). */
static struct json_object *
chain_json(struct catcli *c, const char *vid)
{
    const char *params[1] = { vid };

    return catcli_query_json(c, "WITH RECURSIVE ch(id, depth) AS (SELECT "
                             "?1, 0 UNION ALL SELECT v.parent_id, ch.depth "
                             "+ 1 FROM volumes v JOIN ch ON v.id = ch.id "
                             "WHERE v.parent_id IS NOT NULL) SELECT o.path, "
                             "o.kind, o.name, ch.depth AS depth FROM ch "
                             "JOIN volume_owners o ON o.id = ch.id ORDER BY "
                             "ch.depth", params, 1);
}

int
catcli_open_vm(struct catcli *c, const char *name, struct json_object **vm)
{
    int r = catcli_open(c, 0);

    if (r) {
        return r;
    }
    *vm = catcli_vm_json(c, name);
    if (!*vm) {
        catcli_close(c);
        return cli_error("no VM named '%s'", name);
    }
    return 0;
}

struct json_object *
catcli_vm_json(struct catcli *c, const char *name)
{
    const char *params[1] = { name };
    struct json_object *arr, *vm, *disks, *x;
    size_t i;

    arr = catcli_query_json(c, VM_COLUMNS "WHERE m.name = ?1", params, 1);
    if (!arr || json_object_array_length(arr) == 0) {
        json_object_put(arr);
        return NULL;
    }
    vm = json_object_get(json_object_array_get_idx(arr, 0));
    json_object_put(arr);
    x = catcli_query_json(c, "SELECT n.idx AS nic, n.mac FROM nics n JOIN "
                          "vms m ON m.id = n.vm_id WHERE m.name = ?1 ORDER "
                          "BY n.idx", params, 1);
    json_object_object_add(vm, "nics", x);
    x = catcli_query_json(c, "SELECT s.name, s.state, s.created FROM "
                          "snapshots s JOIN vms m ON m.id = s.vm_id WHERE "
                          "m.name = ?1 ORDER BY s.id", params, 1);
    json_object_object_add(vm, "snapshots", x);
    disks = catcli_query_json(c, "SELECT v.id, v.disk, o.path, "
                              "v.virtual_size FROM volumes v JOIN "
                              "volume_owners o ON o.id = v.id JOIN vms m ON "
                              "m.id = v.vm_id WHERE m.name = ?1 AND v.top = "
                              "1 ORDER BY v.disk", params, 1);
    for (i = 0; disks && i < json_object_array_length(disks); i++) {
        struct json_object *d = json_object_array_get_idx(disks, i);

        json_object_object_add(d, "chain", chain_json(c, jstr(d, "id")));
        json_object_object_del(d, "id");
    }
    json_object_object_add(vm, "disks", disks);
    return vm;
}

int
cmd_info(int argc, char **argv)
{
    struct catcli c = { .verb = "info", .usage =
        "usage: " CLI_NAME " info NAME [--json]\n\n"
        "Everything about VM NAME: hardware, clone type, labels, NICs, disks "
        "with\ntheir backing chains, snapshots. ('template info' for "
        "templates.)\n" };
    struct json_object *vm, *a;
    char t[64], sz[32];
    size_t i, k;
    int r = catcli_parse(&c, NULL, argc, argv);

    if (r) {
        return CLI_PARSE_EXIT(r);
    }
    if (argc - optind != 1) {
        return cli_usage_error(c.verb, "expecting one VM name");
    }
    r = catcli_open_vm(&c, argv[optind], &vm);
    if (r) {
        return r;
    }
    if (c.json) {
        cli_json_print(stdout, vm);
    } else {
        printf("name:       %s\n", jstr(vm, "name"));
        printf("uuid:       %s\n", jstr(vm, "uuid"));
        printf("state:      %s\n", jstr(vm, "state"));
        printf("clone:      %s (requested %s, mechanism %s)\n",
               jstr(vm, "type"), jstr(vm, "requested"),
               jstr(vm, "mechanism"));
        printf("source:     %s\n", jstr(vm, "source"));
        printf("pool:       %s\n", jstr(vm, "pool"));
        printf("hardware:   %" PRId64 " CPUs, %" PRId64 " MiB\n",
               jint(vm, "cpus"), jint(vm, "memory_mb"));
        fmt_time((double)jint(vm, "created"), t, sizeof(t));
        printf("created:    %s\n", t);
        fmt_time((double)jint(vm, "expires"), t, sizeof(t));
        printf("expires:    %s\n", t);
        printf("labels:     %s\n", jstr(vm, "labels"));
        if (*jstr(vm, "request_id")) {
            printf("request id: %s\n", jstr(vm, "request_id"));
        }
        json_object_object_get_ex(vm, "nics", &a);
        for (i = 0; a && i < json_object_array_length(a); i++) {
            struct json_object *n = json_object_array_get_idx(a, i);

            printf("nic %" PRId64 ":      %s\n", jint(n, "nic"),
                   jstr(n, "mac"));
        }
        json_object_object_get_ex(vm, "disks", &a);
        for (i = 0; a && i < json_object_array_length(a); i++) {
            struct json_object *d = json_object_array_get_idx(a, i), *ch;

            catcli_size(&c, (uint64_t)jint(d, "virtual_size"), sz,
                        sizeof(sz));
            printf("disk %" PRId64 ":     %s (%s)\n", jint(d, "disk"),
                   jstr(d, "path"), sz);
            json_object_object_get_ex(d, "chain", &ch);
            for (k = 1; ch && k < json_object_array_length(ch); k++) {
                struct json_object *l = json_object_array_get_idx(ch, k);

                printf("  %*s└ %s %s: %s\n", (int)(2 * (k - 1)), "",
                       jstr(l, "kind"), jstr(l, "name"), jstr(l, "path"));
            }
        }
        json_object_object_get_ex(vm, "snapshots", &a);
        for (i = 0; a && i < json_object_array_length(a); i++) {
            struct json_object *s = json_object_array_get_idx(a, i);

            fmt_time((double)jint(s, "created"), t, sizeof(t));
            printf("snapshot:   %s (%s)\n", jstr(s, "name"), t);
        }
    }
    json_object_put(vm);
    catcli_close(&c);
    return CLI_EXIT_OK;
}

/* ---------------------------------------------------------- rm, deps */

int
cmd_rm(int argc, char **argv)
{
    struct catcli c = { .verb = "rm", .usage =
        "usage: " CLI_NAME " rm NAME...\n\n"
        "Delete VMs with their own disks and snapshots. Refused, with the "
        "list of\ndependents, when clones depend on one of its snapshots. "
        "Templates:\n'template rm'.\n" };
    struct vmc_error err = { 0 };
    struct json_object *removed, *retired, *freed;
    int r = catcli_parse(&c, NULL, argc, argv), rc = CLI_EXIT_OK, i;
    size_t k;

    if (r) {
        return CLI_PARSE_EXIT(r);
    }
    if (argc - optind < 1) {
        return cli_usage_error(c.verb, "expecting a VM name");
    }
    r = catcli_open(&c, 0);
    if (r) {
        return r;
    }
    removed = json_object_new_array();
    retired = catcli_query_json(&c, RETIRED_SQL, NULL, 0);
    for (i = optind; i < argc; i++) {
        const char *params[1] = { argv[i] };
        struct json_object *t = catcli_query_json(&c, "SELECT 1 AS x FROM "
                                                  "templates WHERE name = ?1",
                                                  params, 1);

        if (t && json_object_array_length(t)) {
            rc = cli_error("'%s' is a template: use 'vm-clone template rm "
                           "%s'", argv[i], argv[i]);
        } else if ((r = vmc_catalog_vm_rm(c.cat, argv[i], &err)) < 0) {
            rc = catcli_fail(&err, r);
        } else {
            json_object_array_add(removed, json_object_new_string(argv[i]));
            if (!c.quiet && !c.json) {
                printf("Removed VM '%s'\n", argv[i]);
            }
        }
        json_object_put(t);
    }
    freed = catcli_gone(&c, retired);
    if (!c.json && !c.quiet) {
        for (k = 0; k < json_object_array_length(freed); k++) {
            printf("Removed retired template '%s' (its last dependent "
                   "went)\n", json_object_get_string(
                       json_object_array_get_idx(freed, k)));
        }
    }
    if (c.json) {
        struct json_object *o = json_object_new_object();

        cli_json_add_obj(o, "removed", removed);
        cli_json_add_obj(o, "templates-freed", freed);
        catcli_json_done(o);
    } else {
        json_object_put(removed);
        json_object_put(freed);
    }
    json_object_put(retired);
    catcli_close(&c);
    return rc;
}

int
cmd_deps(int argc, char **argv)
{
    struct catcli c = { .verb = "deps", .usage =
        "usage: " CLI_NAME " deps NAME [--json]\n\n"
        "Everything that depends on NAME (a template, a VM, or VM@SNAPSHOT),"
        "\ndirectly or through other layers.\n" };
    struct vmc_error err = { 0 };
    char **deps = NULL;
    size_t n = 0, i;
    int r = catcli_parse(&c, NULL, argc, argv);

    if (r) {
        return CLI_PARSE_EXIT(r);
    }
    if (argc - optind != 1) {
        return cli_usage_error(c.verb, "expecting one name");
    }
    r = catcli_open(&c, 0);
    if (r) {
        return r;
    }
    r = vmc_catalog_dependents(c.cat, NULL, argv[optind], &deps, &n, &err);
    if (r < 0) {
        catcli_close(&c);
        return catcli_fail(&err, r);
    }
    if (c.json) {
        struct json_object *arr = json_object_new_array();

        for (i = 0; i < n; i++) {
            struct json_object *o = json_object_new_object();
            char *sp = strchr(deps[i], ' ');

            *sp = '\0';
            cli_json_add_str(o, "kind", deps[i]);
            cli_json_add_str(o, "name", sp + 1);
            json_object_array_add(arr, o);
        }
        cli_json_print(stdout, arr);
        json_object_put(arr);
    } else {
        if (n == 0 && !c.quiet) {
            printf("nothing depends on '%s'\n", argv[optind]);
        }
        for (i = 0; i < n; i++) {
            printf("%s\n", deps[i]);
        }
    }
    vmc_catalog_strv_free(deps, n);
    catcli_close(&c);
    return CLI_EXIT_OK;
}

/* -------------------------------------------------------------- tree */

struct node {
    char kind[16];
    char name[200];
    int parent;             /* index, -1 = root */
    uint64_t vsize, unique, shared, disk_size;
    unsigned disks;
    char note[160];
};

struct forest {
    struct node *n;
    size_t count;
};

static int
node_find(struct forest *f, const char *kind, const char *name)
{
    size_t i;

    for (i = 0; i < f->count; i++) {
        if (!strcmp(f->n[i].kind, kind) && !strcmp(f->n[i].name, name)) {
            return (int)i;
        }
    }
    return -1;
}

static int
node_get(struct forest *f, const char *kind, const char *name)
{
    int i = node_find(f, kind, name);
    struct node *nn;

    if (i >= 0) {
        return i;
    }
    nn = realloc(f->n, (f->count + 1) * sizeof(*nn));
    if (!nn) {
        return -1;
    }
    f->n = nn;
    memset(&f->n[f->count], 0, sizeof(*nn));
    snprintf(f->n[f->count].kind, sizeof(nn->kind), "%s", kind);
    snprintf(f->n[f->count].name, sizeof(nn->name), "%s", name);
    f->n[f->count].parent = -1;
    return (int)f->count++;
}

static void
tree_print(struct catcli *c, struct forest *f, int parent,
           const char *prefix)
{
    size_t i, last = (size_t)-1;

    for (i = 0; i < f->count; i++) {
        if (f->n[i].parent == parent) {
            last = i;
        }
    }
    for (i = 0; i < f->count; i++) {
        struct node *n = &f->n[i];
        char vs[32], un[32], sh[32], pre[512];

        if (n->parent != parent) {
            continue;
        }
        catcli_size(c, n->vsize, vs, sizeof(vs));
        catcli_size(c, n->unique, un, sizeof(un));
        catcli_size(c, n->shared, sh, sizeof(sh));
        printf("%s%s%s %s  [%u disk%s, virtual %s, unique %s, shared %s]%s%s"
               "\n", prefix, parent < 0 ? "" : i == last ? "└─ " : "├─ ",
               n->kind, n->name, n->disks, n->disks == 1 ? "" : "s", vs, un,
               sh, n->note[0] ? " " : "", n->note);
        snprintf(pre, sizeof(pre), "%s%s", prefix,
                 parent < 0 ? "" : i == last ? "   " : "│  ");
        tree_print(c, f, (int)i, pre);
    }
}

static struct json_object *
tree_json(struct forest *f, int parent)
{
    struct json_object *arr = json_object_new_array();
    size_t i;

    for (i = 0; i < f->count; i++) {
        struct node *n = &f->n[i];
        struct json_object *o;

        if (n->parent != parent) {
            continue;
        }
        o = json_object_new_object();
        cli_json_add_str(o, "kind", n->kind);
        cli_json_add_str(o, "name", n->name);
        cli_json_add_u64(o, "disks", n->disks);
        cli_json_add_u64(o, "virtual-size", n->vsize);
        cli_json_add_u64(o, "unique-bytes", n->unique);
        cli_json_add_u64(o, "shared-bytes", n->shared);
        cli_json_add_u64(o, "disk-size", n->disk_size);
        if (n->note[0]) {
            cli_json_add_str(o, "note", n->note);
        }
        cli_json_add_obj(o, "children", tree_json(f, (int)i));
        json_object_array_add(arr, o);
    }
    return arr;
}

int
cmd_tree(int argc, char **argv)
{
    struct catcli c = { .verb = "tree", .usage =
        "usage: " CLI_NAME " tree [--json] [--bytes]\n\n"
        "Templates -> copies per pool -> snapshots -> VMs, with the virtual "
        "size,\nthe unique bytes (data in the node's own layers) and the "
        "shared bytes\n(read from the layers below) of each node.\n" };
    struct forest f = { 0 };
    struct json_object *vols, *full;
    size_t i;
    int r = catcli_parse(&c, NULL, argc, argv);

    if (r) {
        return CLI_PARSE_EXIT(r);
    }
    if (optind != argc) {
        return cli_usage_error(c.verb, "too many arguments");
    }
    r = catcli_open(&c, 0);
    if (r) {
        return r;
    }
    vols = catcli_query_json(&c, "SELECT o.kind, o.name, o.path, "
                             "o.virtual_size, p.kind AS pkind, p.name AS "
                             "pname FROM volume_owners o LEFT JOIN "
                             "volume_owners p ON p.id = o.parent_id WHERE "
                             "o.state = 'ready' ORDER BY CASE o.kind WHEN "
                             "'template' THEN 0 WHEN 'copy' THEN 1 WHEN "
                             "'snapshot' THEN 2 ELSE 3 END, o.id", NULL, 0);
    full = catcli_query_json(&c, "SELECT m.name, m.source, m.mechanism FROM "
                             "vms m WHERE m.state = 'ready' AND "
                             "m.clone_type = 'full'", NULL, 0);
    if (!vols || !full) {
        json_object_put(vols);
        json_object_put(full);
        catcli_close(&c);
        return CLI_EXIT_FAIL;
    }
    for (i = 0; i < json_object_array_length(vols); i++) {
        struct json_object *v = json_object_array_get_idx(vols, i);
        struct vmc_open_opts oo = { .format = VMC_FMT_QCOW2,
                                    .flags = VMC_OPEN_FORCE_SHARE };
        struct vmc_image *img = NULL;
        struct vmc_du du;
        int k = node_get(&f, jstr(v, "kind"), jstr(v, "name"));

        if (k < 0) {
            break;
        }
        if (*jstr(v, "pkind")) {
            f.n[k].parent = node_get(&f, jstr(v, "pkind"), jstr(v, "pname"));
        } else if (!strcmp(jstr(v, "kind"), "copy")) {
            char tname[200];

            snprintf(tname, sizeof(tname), "%s", jstr(v, "name"));
            *strrchr(tname, '@') = '\0';
            f.n[k].parent = node_get(&f, "template", tname);
            snprintf(f.n[k].note, sizeof(f.n[k].note), "(copy in pool %s)",
                     strrchr(jstr(v, "name"), '@') + 1);
        }
        f.n[k].disks++;
        f.n[k].vsize += (uint64_t)jint(v, "virtual_size");
        if (vmc_image_open(&img, jstr(v, "path"), &oo, NULL) == 0 &&
            vmc_du(img, &du, NULL) == 0) {
            f.n[k].unique += du.unique;
            f.n[k].shared += du.shared;
            f.n[k].disk_size += du.disk_size;
        }
        vmc_image_close(img);
    }
    for (i = 0; i < json_object_array_length(full); i++) {
        struct json_object *v = json_object_array_get_idx(full, i);
        int k = node_find(&f, "vm", jstr(v, "name"));

        if (k >= 0 && f.n[k].parent < 0) {
            snprintf(f.n[k].note, sizeof(f.n[k].note), "(full clone of %s, "
                     "%s; independent)", jstr(v, "source"),
                     jstr(v, "mechanism"));
        }
    }
    if (c.json) {
        struct json_object *t = tree_json(&f, -1);

        cli_json_print(stdout, t);
        json_object_put(t);
    } else if (f.count == 0) {
        if (!c.quiet) {
            printf("the catalog is empty (vm-clone template import NAME "
                   "IMAGE)\n");
        }
    } else {
        tree_print(&c, &f, -1, "");
    }
    free(f.n);
    json_object_put(vols);
    json_object_put(full);
    catcli_close(&c);
    return CLI_EXIT_OK;
}

/* ---------------------------------------------------------------- du */

int
cmd_du(int argc, char **argv)
{
    struct catcli c = { .verb = "du", .usage =
        "usage: " CLI_NAME " du [--json] [--bytes]\n\n"
        "Space per pool: images in the catalog, their allocated bytes, "
        "the\nfilesystem's free space.\n" };
    struct json_object *pools, *out;
    size_t i;
    int r = catcli_parse(&c, NULL, argc, argv);

    if (r) {
        return CLI_PARSE_EXIT(r);
    }
    if (optind != argc) {
        return cli_usage_error(c.verb, "too many arguments");
    }
    r = catcli_open(&c, 0);
    if (r) {
        return r;
    }
    pools = catcli_query_json(&c, "SELECT id, name, kind, path FROM pools "
                              "ORDER BY id", NULL, 0);
    if (!pools) {
        catcli_close(&c);
        return CLI_EXIT_FAIL;
    }
    out = json_object_new_array();
    if (!c.json && !c.quiet) {
        printf("%-12s %-9s %7s %10s %10s %10s  %s\n", "POOL", "KIND",
               "IMAGES", "VIRTUAL", "ALLOCATED", "FREE", "PATH");
    }
    for (i = 0; i < json_object_array_length(pools); i++) {
        struct json_object *p = json_object_array_get_idx(pools, i), *vols, *o;
        const char *params[1] = { jstr(p, "id") };
        uint64_t alloc = 0, vsize = 0, avail = 0;
        struct statvfs sv;
        size_t k;
        char a[32], b[32], d[32];

        vols = catcli_query_json(&c, "SELECT o.path, o.virtual_size FROM "
                                 "volume_owners o JOIN volumes v ON v.id = "
                                 "o.id WHERE v.pool_id = ?1", params, 1);
        for (k = 0; vols && k < json_object_array_length(vols); k++) {
            struct json_object *v = json_object_array_get_idx(vols, k);
            struct stat st;
            char seal[4200];

            vsize += (uint64_t)jint(v, "virtual_size");
            if (stat(jstr(v, "path"), &st) == 0) {
                alloc += (uint64_t)st.st_blocks * 512;
            }
            snprintf(seal, sizeof(seal), "%s.seal", jstr(v, "path"));
            if (stat(seal, &st) == 0) {
                alloc += (uint64_t)st.st_blocks * 512;
            }
        }
        if (statvfs(jstr(p, "path"), &sv) == 0) {
            avail = (uint64_t)sv.f_bavail * sv.f_frsize;
        }
        o = json_object_new_object();
        cli_json_add_str(o, "pool", jstr(p, "name"));
        cli_json_add_str(o, "kind", jstr(p, "kind"));
        cli_json_add_str(o, "path", jstr(p, "path"));
        cli_json_add_u64(o, "images", vols ? json_object_array_length(vols)
                                           : 0);
        cli_json_add_u64(o, "virtual-size", vsize);
        cli_json_add_u64(o, "allocated", alloc);
        cli_json_add_u64(o, "free", avail);
        if (!c.json) {
            catcli_size(&c, vsize, a, sizeof(a));
            catcli_size(&c, alloc, b, sizeof(b));
            catcli_size(&c, avail, d, sizeof(d));
            printf("%-12s %-9s %7zu %10s %10s %10s  %s\n", jstr(p, "name"),
                   jstr(p, "kind"),
                   vols ? json_object_array_length(vols) : 0, a, b, d,
                   jstr(p, "path"));
        }
        json_object_array_add(out, o);
        json_object_put(vols);
    }
    if (c.json) {
        cli_json_print(stdout, out);
    }
    json_object_put(out);
    json_object_put(pools);
    catcli_close(&c);
    return CLI_EXIT_OK;
}

/* ----------------------------------------------------------- gc, fsck */

struct findings {
    struct catcli *c;
    struct json_object *arr;
};

static void
finding(const char *what, const char *subject, const char *detail,
        void *opaque)
{
    struct findings *f = opaque;

    if (f->c->json) {
        struct json_object *o = json_object_new_object();

        cli_json_add_str(o, "action", what);
        cli_json_add_str(o, "subject", subject);
        cli_json_add_str(o, "detail", detail);
        json_object_array_add(f->arr, o);
    } else if (!f->c->quiet || !strcmp(what, "problem")) {
        printf("%-12s %s: %s\n", what, subject, detail);
    }
}

int
cmd_gc(int argc, char **argv)
{
    struct catcli c = { .verb = "gc", .usage =
        "usage: " CLI_NAME " gc [--dry-run] [--json]\n\n"
        "Remove expired VMs, template copies no VM uses and retired "
        "templates\nwithout dependents. Files in pools that the catalog "
        "does not know are\nreported, never deleted.\n" };
    struct vmc_error err = { 0 };
    struct findings f = { &c, NULL };
    struct vmc_gc_result res = { 0 };
    bool dry = false;
    const struct cli_opt opts[] = {
        CATCLI_OPTS(&c),
        CLI_OPT_FLAG('n', "dry-run", &dry, "report what would go, remove "
                     "nothing"),
        CLI_OPT_END,
    };
    int r;

    r = catcli_parse(&c, opts, argc, argv);
    if (r) {
        return CLI_PARSE_EXIT(r);
    }
    if (optind != argc) {
        return cli_usage_error(c.verb, "too many arguments");
    }
    r = catcli_open(&c, 0);
    if (r) {
        return r;
    }
    f.arr = json_object_new_array();
    r = vmc_catalog_gc(c.cat, dry, finding, &f, &res, &err);
    if (r == 0 && c.json) {
        struct json_object *o = json_object_new_object();

        cli_json_add_bool(o, "dry-run", dry);
        cli_json_add_u64(o, "removed", res.removed);
        cli_json_add_u64(o, "bytes-freed", res.bytes_freed);
        cli_json_add_obj(o, "findings", json_object_get(f.arr));
        catcli_json_done(o);
    } else if (r == 0 && !c.quiet && !dry) {
        char sz[32];

        /* the findings were printed as they came */
        catcli_size(&c, res.bytes_freed, sz, sizeof(sz));
        printf("gc: %u object%s removed, %s freed\n", res.removed,
               res.removed == 1 ? "" : "s", sz);
    }
    json_object_put(f.arr);
    catcli_close(&c);
    return r < 0 ? catcli_fail(&err, r) : CLI_EXIT_OK;
}

int
cmd_fsck(int argc, char **argv)
{
    struct catcli c = { .verb = "fsck", .usage =
        "usage: " CLI_NAME " fsck [--json] [-q]\n\n"
        "Reconcile the catalog and the files after a crash: finish or undo "
        "the\noperations of dead processes, remove their temporary files, "
        "check that\nevery image exists and that its backing file is its "
        "parent in the\ncatalog, and run SQLite's integrity checks. Waits "
        "for running commands.\nExit status 1 when inconsistencies "
        "remain; -q prints only those.\n" };
    struct vmc_error err = { 0 };
    struct vmc_fsck_result res;
    struct findings f = { &c, NULL };
    int r = catcli_parse(&c, NULL, argc, argv);

    if (r) {
        return CLI_PARSE_EXIT(r);
    }
    if (optind != argc) {
        return cli_usage_error(c.verb, "too many arguments");
    }
    r = catcli_open(&c, VMC_CATALOG_EXCLUSIVE | VMC_CATALOG_NO_RECOVER);
    if (r) {
        return r;
    }
    f.arr = json_object_new_array();
    r = vmc_catalog_fsck(c.cat, finding, &f, &res, &err);
    if (r == 0 && c.json) {
        struct json_object *o = json_object_new_object();

        cli_json_add_u64(o, "volumes", res.volumes);
        cli_json_add_u64(o, "recovered", res.recovered);
        cli_json_add_u64(o, "fixed", res.fixed);
        cli_json_add_u64(o, "temporary-removed", res.temp_removed);
        cli_json_add_u64(o, "unknown-files", res.unknown);
        cli_json_add_u64(o, "inconsistencies", res.problems);
        cli_json_add_obj(o, "findings", json_object_get(f.arr));
        cli_json_print(stdout, o);
        json_object_put(o);
    } else if (r == 0 && (!c.quiet || res.problems)) {
        /* -q: nothing when clean */
        printf("fsck: %u volumes checked, %u operations recovered, %u rows "
               "fixed, %u temporary files removed, %u unknown files, %u "
               "inconsistencies\n", res.volumes, res.recovered, res.fixed,
               res.temp_removed, res.unknown, res.problems);
    }
    json_object_put(f.arr);
    catcli_close(&c);
    if (r < 0) {
        return catcli_fail(&err, r);
    }
    return res.problems ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
