/*
 * cmd-list.c - "list" and "info": the VMs, as a table or JSON, and
 * everything about one VM (catcli_vm_json, catcli_open_vm).
 */
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "cat-cli.h"
#include "vmclone-catalog-admin.h"

/* -------------------------------------------------------------- list */

static struct catcli_labels list_labels = { .verb = "list" };
static struct {
    const char *state, *source, *name, *sort;
    bool expired;
} list_f;
static const struct cli_opt list_opts[] = {
    CLI_OPT_CALL(0, "label", "KEY=VALUE", &list_labels, catcli_opt_label,
                 "only VMs with this label (repeatable)"),
    CLI_OPT_STRING(0, "state", "STATE", &list_f.state, "only VMs in this "
                   "state (ready, running, expired, broken, creating, "
                   "deleting)"),
    CLI_OPT_STRING(0, "source", "NAME", &list_f.source, "only clones of "
                   "this template or VM (VM@SNAP: of that snapshot)"),
    CLI_OPT_STRING(0, "name", "GLOB", &list_f.name, "only VMs whose name "
                   "matches this shell pattern"),
    CLI_OPT_FLAG(0, "expired", &list_f.expired, "only VMs whose TTL has "
                 "passed"),
    CLI_OPT_STRING(0, "sort", "KEY", &list_f.sort, "order by name "
                   "(default), created or size"),
    CLI_OPT_END,
};

static const char *const list_states[] = {
    "ready", "running", "expired", "broken", "creating", "deleting", NULL,
};

/* Is @s one of the NULL-terminated @set? */
static bool
one_of(const char *s, const char *const *set)
{
    for (; *set; set++) {
        if (!strcmp(s, *set)) {
            return true;
        }
    }
    return false;
}

/* The catalog's source text ("template T", "vm V" or "vm V@S") as
 * {"kind", "name", "snapshot"} (docs/cli-contract.md: kind "snapshot"
 * for V@S). */
static struct json_object *
source_json(const char *text)
{
    struct json_object *o = json_object_new_object();
    const char *sp = strchr(text, ' ');
    const char *name = sp ? sp + 1 : text;
    const char *at = strchr(name, '@');

    if (at) {
        json_object_object_add(o, "kind", json_object_new_string("snapshot"));
    } else {
        json_object_object_add(o, "kind", json_object_new_string_len(
                                   text, sp ? (int)(sp - text) : 0));
    }
    json_object_object_add(o, "name", json_object_new_string_len(
                               name, at ? (int)(at - name)
                                        : (int)strlen(name)));
    json_object_object_add(o, "snapshot",
                           at ? json_object_new_string(at + 1) : NULL);
    return o;
}

/* A time column (seconds as text, "" = unset) as ISO 8601 UTC or null. */
static struct json_object *
time_json(const char *secs)
{
    char buf[64];
    double t = strtod(secs, NULL);

    if (t <= 0) {
        return NULL;
    }
    catcli_fmt_time(t, buf, sizeof(buf));
    return json_object_new_string(buf);
}

/* Rows of the catalog as JSON objects of strings (the catalog's own
 * values: "" for NULL), so that list computes with them whatever shape
 * catcli_report() gives the other commands' JSON. */
static int
raw_row(int ncols, const char *const *names, const char *const *values,
        void *opaque)
{
    struct json_object *o = json_object_new_object();
    int i;

    for (i = 0; i < ncols; i++) {
        json_object_object_add(o, names[i], json_object_new_string(
                                   values[i] ? values[i] : ""));
    }
    json_object_array_add(opaque, o);
    return 0;
}

/* One label of a VM into the labels object. */
static int
label_row(int ncols, const char *const *names, const char *const *values,
          void *opaque)
{
    json_object_object_add(opaque, values[0],
                           json_object_new_string(values[1]));
    return 0;
}

/* VM @name's labels as {"key": "value"} ({} when none). */
static struct json_object *
labels_json(struct catcli *c, const char *name)
{
    const char *params[1] = { name };
    struct json_object *o = json_object_new_object();

    vmc_catalog_report_rows(c->cat, VMC_REPORT_VM_LABELS, params, 1,
                            label_row, o, NULL);
    return o;
}

/* One VM of the list (a VMC_REPORT_VMS row) as the list shows it, with
 * its honest state; NULL when it went away meanwhile. */
static struct json_object *
list_entry(struct catcli *c, struct json_object *row)
{
    struct vmc_vm_status vs;
    struct vmc_error err = { 0 };
    struct json_object *o;
    const char *name = catcli_jstr(row, "name");

    if (vmc_catalog_vm_status(c->cat, name, &vs, &err) < 0) {
        return NULL;
    }
    o = json_object_new_object();
    cli_json_add_str(o, "name", name);
    cli_json_add_str(o, "state", vs.state);
    json_object_object_add(o, "source",
                           source_json(catcli_jstr(row, "source")));
    cli_json_add_str(o, "type", catcli_jstr(row, "type"));
    json_object_object_add(o, "created",
                           time_json(catcli_jstr(row, "created")));
    json_object_object_add(o, "expires",
                           time_json(catcli_jstr(row, "expires")));
    cli_json_add_u64(o, "size", strtoull(catcli_jstr(row, "virtual_size"),
                                         NULL, 10));
    json_object_object_add(o, "labels", labels_json(c, name));
    cli_json_add_str(o, "pool", catcli_jstr(row, "pool"));
    cli_json_add_str(o, "mechanism", catcli_jstr(row, "mechanism"));
    cli_json_add_u64(o, "cpus", strtoull(catcli_jstr(row, "cpus"), NULL,
                                         10));
    cli_json_add_u64(o, "memory_mb", strtoull(catcli_jstr(row, "memory_mb"),
                                              NULL, 10));
    json_object_object_add(o, "pid", vs.pid ? json_object_new_int(vs.pid)
                                            : NULL);
    json_object_object_add(o, "reason", vs.detail[0] ?
                           json_object_new_string(vs.detail) : NULL);
    return o;
}

/* Does list entry @o pass the filters? @now: ISO 8601 UTC. */
static bool
list_keep(struct json_object *o, const char *now)
{
    struct json_object *src = NULL;
    const char *exp = catcli_jstr(o, "expires");
    char ref[200];

    if (list_f.state && strcmp(catcli_jstr(o, "state"), list_f.state)) {
        return false;
    }
    if (list_f.name && fnmatch(list_f.name, catcli_jstr(o, "name"), 0)) {
        return false;
    }
    if (list_f.expired && (!*exp || strcmp(exp, now) > 0)) {
        return false;
    }
    if (list_f.source) {
        json_object_object_get_ex(o, "source", &src);
        snprintf(ref, sizeof(ref), "%s%s%s", catcli_jstr(src, "name"),
                 *catcli_jstr(src, "snapshot") ? "@" : "",
                 catcli_jstr(src, "snapshot"));
        return !strcmp(ref, list_f.source) ||
               !strcmp(catcli_jstr(src, "name"), list_f.source);
    }
    return true;
}

static int
by_name(const void *a, const void *b)
{
    return strcmp(catcli_jstr(*(struct json_object *const *)a, "name"),
                  catcli_jstr(*(struct json_object *const *)b, "name"));
}

/* Report rows by their creation time (seconds, with fractions). */
static int
row_by_created(const void *a, const void *b)
{
    struct json_object *x = NULL, *y = NULL;
    double p, q;

    json_object_object_get_ex(*(struct json_object *const *)a, "created", &x);
    json_object_object_get_ex(*(struct json_object *const *)b, "created", &y);
    p = strtod(json_object_get_string(x), NULL);
    q = strtod(json_object_get_string(y), NULL);
    return p < q ? -1 : p > q ? 1 : by_name(a, b);
}

static int
by_size(const void *a, const void *b)
{
    int64_t x = catcli_jint(*(struct json_object *const *)a, "size");
    int64_t y = catcli_jint(*(struct json_object *const *)b, "size");

    return x < y ? -1 : x > y ? 1 : by_name(a, b);
}

/* The VMs (those with the --label labels) as list entries, filtered and
 * sorted; NULL when the catalog failed (said). */
static struct json_object *
list_build(struct catcli *c)
{
    const struct catcli_labels *f = &list_labels;
    struct json_object *out, *rows = json_object_new_array();
    struct vmc_error err = { 0 };
    char now[64];
    size_t i;
    int r = vmc_catalog_report_rows(c->cat, VMC_REPORT_VMS, f->params, f->np,
                                    raw_row, rows, &err);

    if (r < 0) {
        json_object_put(rows);
        catcli_fail(&err, r);
        return NULL;
    }
    catcli_fmt_time((double)time(NULL), now, sizeof(now));
    json_object_array_sort(rows, row_by_created);
    out = json_object_new_array();
    for (i = 0; i < json_object_array_length(rows); i++) {
        struct json_object *o =
            list_entry(c, json_object_array_get_idx(rows, i));

        if (o && list_keep(o, now)) {
            json_object_array_add(out, o);
        } else {
            json_object_put(o);
        }
    }
    json_object_put(rows);
    /* the rows came oldest first: --sort created keeps that order */
    if (!list_f.sort || strcmp(list_f.sort, "created")) {
        json_object_array_sort(out, list_f.sort && !strcmp(list_f.sort,
                                                           "size")
                                        ? by_size : by_name);
    }
    return out;
}

/* The labels of list entry @o as KEY=VALUE,... and the end of the row. */
static void
print_labels(struct json_object *o)
{
    struct json_object *labels = NULL;
    bool first = true;

    json_object_object_get_ex(o, "labels", &labels);
    json_object_object_foreach(labels, key, val) {
        printf("%s%s=", first ? "" : ",", key);
        /* labels are free text: a newline must not forge a row */
        cli_put_escaped(stdout, json_object_get_string(val));
        first = false;
    }
    putchar('\n');
}

/* One VM of the list as a row of the table. */
static void
list_row(struct catcli *c, struct json_object *o)
{
    struct json_object *src = NULL;
    char sz[32], ref[200];
    const char *exp = catcli_jstr(o, "expires");

    json_object_object_get_ex(o, "source", &src);
    snprintf(ref, sizeof(ref), "%s%s%s", catcli_jstr(src, "name"),
             *catcli_jstr(src, "snapshot") ? "@" : "",
             catcli_jstr(src, "snapshot"));
    catcli_size(c, (uint64_t)catcli_jint(o, "size"), sz, sizeof(sz));
    printf("%-24s %-8s %-20s %-6s %-20s %-20s %9s  ",
           catcli_jstr(o, "name"), catcli_jstr(o, "state"), ref,
           catcli_jstr(o, "type"), catcli_jstr(o, "created"),
           *exp ? exp : "-", sz);
    print_labels(o);
}

static int
list_run(struct catcli *c, void *ctx, int argc, char **argv)
{
    static const char *const sorts[] = { "name", "created", "size", NULL };

    if (list_f.state && !one_of(list_f.state, list_states)) {
        return cli_usage_error("list", "--state: no state '%s' (ready, "
                               "running, expired, broken, creating, "
                               "deleting)", list_f.state);
    }
    if (list_f.sort && !one_of(list_f.sort, sorts)) {
        return cli_usage_error("list", "--sort: '%s' is not name, created "
                               "or size", list_f.sort);
    }
    return catcli_print_table(c, list_build(c),
                              "NAME                     STATE    SOURCE   "
                              "            TYPE   CREATED              "
                              "EXPIRES                   SIZE  LABELS",
                              list_row);
}

static const char list_usage[] =
    "usage: " CLI_NAME " list [--label KEY=VALUE]... [--state STATE] "
    "[--source NAME]\n"
    "            [--name GLOB] [--expired] [--sort name|created|size] "
    "[--json]\n\n"
    "List the VMs, sorted by name (all filters given must match). STATE "
    "is the\nVM's honest state: running (a process holds its disk's write "
    "lock), expired\n(its TTL passed), broken (a disk missing or damaged), "
    "else ready.\n";

const struct catcli_cmd catcli_list = {
    { "list", list_run, list_opts, 0, 0, NULL, NULL, CATCLI_STORE },
    list_usage,
};

/* -------------------------------------------------------------- info */

/* The backing chain of volume @vid as an array of paths (top first). */
static struct json_object *
chain_json(struct catcli *c, const char *vid)
{
    const char *params[1] = { vid };

    return catcli_report(c, VMC_REPORT_VOLUME_CHAIN, params, 1);
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
        return catcli_error(CLI_EXIT_NOT_FOUND, "no VM named '%s'", name);
    }
    return 0;
}

struct json_object *
catcli_vm_json(struct catcli *c, const char *name)
{
    const char *params[1] = { name };
    struct json_object *arr, *vm, *disks, *x;
    size_t i;

    arr = catcli_report(c, VMC_REPORT_VM, params, 1);
    if (!arr || json_object_array_length(arr) == 0) {
        json_object_put(arr);
        return NULL;
    }
    vm = json_object_get(json_object_array_get_idx(arr, 0));
    json_object_put(arr);
    x = catcli_report(c, VMC_REPORT_VM_NICS, params, 1);
    json_object_object_add(vm, "nics", x);
    x = catcli_report(c, VMC_REPORT_VM_SNAPSHOTS, params, 1);
    json_object_object_add(vm, "snapshots", x);
    disks = catcli_report(c, VMC_REPORT_VM_DISKS, params, 1);
    for (i = 0; disks && i < json_object_array_length(disks); i++) {
        struct json_object *d = json_object_array_get_idx(disks, i);

        json_object_object_add(d, "chain", chain_json(c, catcli_jstr(d, "id")));
        json_object_object_del(d, "id");
    }
    json_object_object_add(vm, "disks", disks);
    /* guest customization (seed.c): the ephemeral mark, the seed ISO */
    arr = catcli_report(c, VMC_REPORT_VM_CUSTOM, params, 1);
    x = arr ? json_object_array_get_idx(arr, 0) : NULL;
    json_object_object_add(vm, "ephemeral", json_object_new_boolean(
        x && !strcmp(catcli_jstr(x, "ephemeral"), "1")));
    json_object_object_add(vm, "seed", x ? json_object_get(
        json_object_object_get(x, "seed")) : NULL);
    json_object_put(arr);
    return vm;
}

static int
info_run(struct catcli *c, void *ctx, int argc, char **argv)
{
    struct vmc_vm_status vs;
    struct vmc_error err = { 0 };
    struct json_object *vm, *a;
    char t[64], sz[32];
    size_t i, k;

    vm = catcli_vm_json(c, argv[0]);
    if (!vm) {
        return catcli_error(CLI_EXIT_NOT_FOUND, "no VM named '%s'",
                            argv[0]);
    }
    /* the state list shows: running, broken or expired, not only the
     * row's */
    if (vmc_catalog_vm_status(c->cat, argv[0], &vs, &err) == 0) {
        json_object_object_add(vm, "state", json_object_new_string(vs.state));
    }
    if (c->json) {
        cli_json_print(stdout, vm);
    } else {
        printf("name:       %s\n", catcli_jstr(vm, "name"));
        printf("uuid:       %s\n", catcli_jstr(vm, "uuid"));
        printf("state:      %s\n", catcli_jstr(vm, "state"));
        printf("clone:      %s (requested %s, mechanism %s)\n",
               catcli_jstr(vm, "type"), catcli_jstr(vm, "requested"),
               catcli_jstr(vm, "mechanism"));
        printf("source:     %s\n", catcli_jstr(vm, "source"));
        printf("pool:       %s\n", catcli_jstr(vm, "pool"));
        printf("hardware:   %" PRId64 " CPUs, %" PRId64 " MiB\n",
               catcli_jint(vm, "cpus"), catcli_jint(vm, "memory_mb"));
        catcli_fmt_time((double)catcli_jint(vm, "created"), t, sizeof(t));
        printf("created:    %s\n", t);
        catcli_fmt_time((double)catcli_jint(vm, "expires"), t, sizeof(t));
        printf("expires:    %s\n", t);
        fputs("labels:     ", stdout);
        cli_put_escaped(stdout, catcli_jstr(vm, "labels"));
        putchar('\n');
        if (*catcli_jstr(vm, "request_id")) {
            fputs("request id: ", stdout);
            cli_put_escaped(stdout, catcli_jstr(vm, "request_id"));
            putchar('\n');
        }
        json_object_object_get_ex(vm, "nics", &a);
        for (i = 0; a && i < json_object_array_length(a); i++) {
            struct json_object *n = json_object_array_get_idx(a, i);

            printf("nic %" PRId64 ":      %s\n", catcli_jint(n, "nic"),
                   catcli_jstr(n, "mac"));
        }
        json_object_object_get_ex(vm, "disks", &a);
        for (i = 0; a && i < json_object_array_length(a); i++) {
            struct json_object *d = json_object_array_get_idx(a, i), *ch;

            catcli_size(c, (uint64_t)catcli_jint(d, "virtual_size"), sz,
                        sizeof(sz));
            printf("disk %" PRId64 ":     %s (%s)\n", catcli_jint(d, "disk"),
                   catcli_jstr(d, "path"), sz);
            json_object_object_get_ex(d, "chain", &ch);
            for (k = 1; ch && k < json_object_array_length(ch); k++) {
                struct json_object *l = json_object_array_get_idx(ch, k);

                printf("  %*s└ %s %s: %s\n", (int)(2 * (k - 1)), "",
                       catcli_jstr(l, "kind"), catcli_jstr(l, "name"), catcli_jstr(l, "path"));
            }
        }
        json_object_object_get_ex(vm, "snapshots", &a);
        for (i = 0; a && i < json_object_array_length(a); i++) {
            struct json_object *s = json_object_array_get_idx(a, i);

            catcli_fmt_time((double)catcli_jint(s, "created"), t, sizeof(t));
            printf("snapshot:   %s (%s)\n", catcli_jstr(s, "name"), t);
        }
    }
    json_object_put(vm);
    return CLI_EXIT_OK;
}

static const char info_usage[] =
    "usage: " CLI_NAME " info NAME [--json]\n\n"
    "Everything about VM NAME: hardware, clone type, labels, NICs, disks "
    "with\ntheir backing chains, snapshots. ('template info' for "
    "templates.)\n";

const struct catcli_cmd catcli_info = {
    { "info", info_run, NULL, 1, 1, NULL,
      "expecting one VM name", CATCLI_STORE },
    info_usage,
};
