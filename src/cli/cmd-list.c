/*
 * cmd-list.c - "list" and "info": the VMs, as a table or JSON, and
 * everything about one VM (catcli_vm_json, catcli_open_vm).
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

/* -------------------------------------------------------------- list */

static struct catcli_labels list_labels = { .verb = "list" };
static const struct cli_opt list_opts[] = {
    CLI_OPT_CALL(0, "label", "KEY=VALUE", &list_labels, catcli_opt_label,
                 "only VMs with this label (repeatable)"),
    CLI_OPT_END,
};

/* One VM of the list as a row of the table. */
static void
list_row(struct catcli *c, struct json_object *o)
{
    char sz[32];

    catcli_size(c, (uint64_t)catcli_jint(o, "virtual_size"), sz, sizeof(sz));
    printf("%-24s %-8s %-6s %-15s %-10s %5" PRId64 " %9s  ",
           catcli_jstr(o, "name"), catcli_jstr(o, "state"),
           catcli_jstr(o, "type"), catcli_jstr(o, "mechanism"),
           catcli_jstr(o, "pool"), catcli_jint(o, "disks"), sz);
    /* labels are free text: a newline must not forge a row */
    cli_put_escaped(stdout, catcli_jstr(o, "labels"));
    putchar('\n');
}

static int
list_run(struct catcli *c, void *ctx, int argc, char **argv)
{
    const struct catcli_labels *f = &list_labels;

    return catcli_print_table(c, catcli_report(c, VMC_REPORT_VMS, f->params,
                                               f->np),
                              "NAME                     STATE    TYPE   "
                              "MECHANISM       POOL       DISKS      SIZE  "
                              "LABELS", list_row);
}

static const char list_usage[] =
    "usage: " CLI_NAME " list [--label KEY=VALUE]... [--json]\n\n"
    "List the VMs (all labels given must match).\n";

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
    return vm;
}

static int
info_run(struct catcli *c, void *ctx, int argc, char **argv)
{
    struct json_object *vm, *a;
    char t[64], sz[32];
    size_t i, k;

    vm = catcli_vm_json(c, argv[0]);
    if (!vm) {
        return catcli_error(CLI_EXIT_NOT_FOUND, "no VM named '%s'",
                            argv[0]);
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
