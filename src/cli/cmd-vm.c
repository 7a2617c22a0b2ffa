/*
 * cmd-vm.c - commands on one VM: snapshot create|list|revert|rm,
 * flatten, relink, consolidate, and the "vm" group: xml / qemu-cmd
 * (printed by vm-qemu.c from the hardware model), set.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cat-cli.h"
#include "cmd-vm-virt.h"
#include "vmclone-rbd.h"

/* -------------------------------------- catalog rows for the dry runs */

/* The --dry-run plans of snapshot revert, flatten and consolidate read
 * the rows the catalog's own operation reads (its reports). */

static int
add_layer_row(int ncols, const char *const *names,
              const char *const *values, void *opaque)
{
    struct json_object *rows = opaque, *o = json_object_new_object();
    int i;

    for (i = 0; i < ncols; i++) {
        json_object_object_add(o, names[i], values[i] ?
                               json_object_new_string(values[i]) : NULL);
    }
    json_object_array_add(rows, o);
    return 0;
}

/* Rows of report @which (its @n parameters) as objects of strings (null
 * for NULL). */
static struct json_object *
rows_of(struct catcli *c, enum vmc_report which, const char *const *params,
        size_t n)
{
    struct json_object *rows = json_object_new_array();

    vmc_catalog_report_rows(c->cat, which, params, n, add_layer_row, rows,
                            NULL);
    return rows;
}

/* The same with one parameter, @name. */
static struct json_object *
query_rows(struct catcli *c, enum vmc_report which, const char *name)
{
    const char *params[1] = { name };

    return rows_of(c, which, params, 1);
}

/* ----------------------------------------------------------- snapshot */

static int
snapshot_list(struct catcli *c, void *ctx, int argc, char **argv)
{
    const char *params[1] = { argv[0] };
    struct json_object *arr = catcli_report(c, VMC_REPORT_SNAPSHOTS, params, 1);
    size_t i;

    if (!arr) {
        return CLI_EXIT_FAIL;
    }
    if (json_object_array_length(arr) == 0) {
        struct json_object *vm = catcli_report(c, VMC_REPORT_VM, params, 1);
        bool none = vm && json_object_array_length(vm) == 0;

        json_object_put(vm);
        if (none) {
            json_object_put(arr);
            return catcli_error(CLI_EXIT_NOT_FOUND, "no VM named '%s'",
                                argv[0]);
        }
    }
    if (c->json) {
        cli_json_print(stdout, arr);
    }
    for (i = 0; !c->json && i < json_object_array_length(arr); i++) {
        struct json_object *s = json_object_array_get_idx(arr, i);

        printf("%-24s %-8s %d disk(s), %d dependent clone layer(s)\n",
               json_object_get_string(json_object_object_get(s, "name")),
               json_object_get_string(json_object_object_get(s, "state")),
               json_object_get_int(json_object_object_get(s, "disks")),
               json_object_get_int(json_object_object_get(s, "dependents")));
    }
    json_object_put(arr);
    return CLI_EXIT_OK;
}

/* ------------------------------------------------ snapshot revert --dry-run */

static bool revert_dry;

/* --dry-run of snapshot revert of a VM in an rbd pool: each disk's image
 * would be rolled back in place to the snapshot's RBD snapshot (nothing
 * discarded or made). Takes @tops and @layers. */
static int
revert_plan_rbd(struct catcli *c, const char *vm, const char *snap,
                struct json_object *tops, struct json_object *layers)
{
    struct json_object *rb = json_object_new_array();
    size_t i;

    for (i = 0; i < json_object_array_length(layers) &&
                i < json_object_array_length(tops); i++) {
        struct json_object *l = json_object_array_get_idx(layers, i);
        struct json_object *o = json_object_new_object();

        json_object_object_add(o, "disk", json_object_new_int64(
                                   catcli_jint(l, "disk")));
        cli_json_add_str(o, "image", json_object_get_string(
                             json_object_array_get_idx(tops, i)));
        cli_json_add_str(o, "to", catcli_jstr(l, "backing"));
        json_object_array_add(rb, o);
    }
    if (c->json) {
        struct json_object *o = json_object_new_object();

        cli_json_add_str(o, "vm", vm);
        cli_json_add_str(o, "snapshot", snap);
        cli_json_add_bool(o, "dry_run", true);
        cli_json_add_obj(o, "would_discard", json_object_new_array());
        cli_json_add_obj(o, "would_create", json_object_new_array());
        cli_json_add_obj(o, "would_roll_back", json_object_get(rb));
        catcli_json_done(o);
    } else if (!c->quiet) {
        printf("Would revert VM '%s' to snapshot '%s'\n", vm, snap);
        for (i = 0; i < json_object_array_length(rb); i++) {
            struct json_object *r = json_object_array_get_idx(rb, i);

            printf("  roll back disk %" PRId64 " (rbd image %s) to %s\n",
                   catcli_jint(r, "disk"), catcli_jstr(r, "image"),
                   catcli_jstr(r, "to"));
        }
    }
    json_object_put(rb);
    json_object_put(tops);
    json_object_put(layers);
    return CLI_EXIT_OK;
}

/* --dry-run of snapshot revert: the refusal the real command would meet
 * (printed, its exit status returned), or the disks it would discard and
 * the new overlays it would make. Changes nothing. */
static int
revert_plan(struct catcli *c, const char *vm, const char *snap)
{
    const char *params[2] = { vm, snap };
    struct json_object *layers, *tops, *used;
    size_t i;

    if (!catcli_vm_exists(c, vm)) {
        return catcli_error(CLI_EXIT_NOT_FOUND, "no VM named '%s'", vm);
    }
    layers = rows_of(c, VMC_REPORT_SNAPSHOT_LAYERS, params, 2);
    if (json_object_array_length(layers) == 0) {
        json_object_put(layers);
        return catcli_error(CLI_EXIT_NOT_FOUND, "VM '%s' has no snapshot "
                            "'%s'", vm, snap);
    }
    used = catcli_report_strings(c, VMC_REPORT_VM_TOPS_USED, vm);
    if (strcmp(json_object_get_string(json_object_array_get_idx(used, 0)),
               "0")) {
        json_object_put(used);
        json_object_put(layers);
        return catcli_error(CLI_EXIT_CONFLICT, "snapshot revert would "
                            "refuse: the current disks of VM '%s' have "
                            "dependents", vm);
    }
    json_object_put(used);
    for (i = 0; i < json_object_array_length(layers); i++) {
        struct json_object *l = json_object_array_get_idx(layers, i);

        json_object_object_add(l, "disk", json_object_new_int64(
                                   catcli_jint(l, "disk")));
    }
    tops = catcli_report_strings(c, VMC_REPORT_VM_TOP_DISKS, vm);
    if (json_object_array_length(tops) > 0 &&
        vmc_rbd_is_spec(json_object_get_string(
                            json_object_array_get_idx(tops, 0)))) {
        return revert_plan_rbd(c, vm, snap, tops, layers);
    }
    if (c->json) {
        struct json_object *o = json_object_new_object();

        cli_json_add_str(o, "vm", vm);
        cli_json_add_str(o, "snapshot", snap);
        cli_json_add_bool(o, "dry_run", true);
        cli_json_add_obj(o, "would_discard", json_object_get(tops));
        cli_json_add_obj(o, "would_create", json_object_get(layers));
        catcli_json_done(o);
    } else if (!c->quiet) {
        printf("Would revert VM '%s' to snapshot '%s'\n", vm, snap);
        for (i = 0; i < json_object_array_length(tops); i++) {
            printf("  discard %s\n", json_object_get_string(
                       json_object_array_get_idx(tops, i)));
        }
        for (i = 0; i < json_object_array_length(layers); i++) {
            struct json_object *l = json_object_array_get_idx(layers, i);

            printf("  new disk %" PRId64 ": an overlay of %s\n",
                   catcli_jint(l, "disk"), catcli_jstr(l, "backing"));
        }
    }
    json_object_put(tops);
    json_object_put(layers);
    return CLI_EXIT_OK;
}

/* A snapshot action: its catalog call and how it is reported. */
struct snapshot_action {
    int (*fn)(struct vmc_catalog *cat, const char *vm, const char *name,
              struct vmc_error *err);
    const char *json_word, *text_word;
    /* its --dry-run (NULL: none) */
    int (*plan)(struct catcli *c, const char *vm, const char *name);
};

static int
snapshot_run(struct catcli *c, const struct snapshot_action *a, int argc,
             char **argv)
{
    struct vmc_error err = { 0 };
    const char *snap;
    int r = catcli_snapref(c->verb, argv[0], argc > 1 ? argv[1] : NULL,
                           &snap);

    if (r) {
        return r;
    }
    snap = snap ? snap : argc > 1 ? argv[1] : NULL;
    if (!snap) {
        return cli_usage_error(c->verb, "expecting VM@SNAPSHOT or VM "
                               "SNAPSHOT");
    }
    if (a->plan && revert_dry) {
        return a->plan(c, argv[0], snap);
    }
    r = a->fn(c->cat, argv[0], snap, &err);
    if (r == 0 && c->json) {
        struct json_object *o = json_object_new_object();

        cli_json_add_str(o, "vm", argv[0]);
        cli_json_add_str(o, "snapshot", snap);
        cli_json_add_str(o, "action", a->json_word);
        catcli_json_done(o);
    } else if (r == 0 && !c->quiet) {
        printf("%s snapshot '%s' of VM '%s'\n", a->text_word, snap,
               argv[0]);
    }
    return r < 0 ? catcli_fail(&err, r) : CLI_EXIT_OK;
}

static int
snapshot_create(struct catcli *c, void *ctx, int argc, char **argv)
{
    static const struct snapshot_action a = {
        vmc_catalog_snapshot_create, "created", "Created", NULL };

    return snapshot_run(c, &a, argc, argv);
}

static int
snapshot_revert(struct catcli *c, void *ctx, int argc, char **argv)
{
    static const struct snapshot_action a = {
        vmc_catalog_snapshot_revert, "reverted", "Reverted to",
        revert_plan };

    return snapshot_run(c, &a, argc, argv);
}

static int
snapshot_rm(struct catcli *c, void *ctx, int argc, char **argv)
{
    static const struct snapshot_action a = {
        vmc_catalog_snapshot_rm, "removed", "Removed", NULL };

    return snapshot_run(c, &a, argc, argv);
}

int
cmd_snapshot(int argc, char **argv)
{
    struct catcli c = { .verb = "snapshot", .usage =
        "create freezes the VM's current disks as read-only layers and "
        "gives the VM\nnew overlays; clone a snapshot with 'clone VM@NAME "
        "--name X'. revert\ndiscards the current state. rm merges "
        "the snapshot into the VM's own layers;\nrefused while clones "
        "depend on it.\n" };
    const struct cli_opt common[] = { CATCLI_OPTS(&c), CLI_OPT_END };
    const struct cli_opt revert_opts[] = {
        CATCLI_OPTS(&c),
        CLI_OPT_FLAG(0, "dry-run", &revert_dry, "print the disks that would "
                     "be discarded and made, change nothing"),
        CLI_OPT_END,
    };
    const struct catcli_sub subs[] = {
        { "create", snapshot_create, common, 1, 2, "VM@NAME | VM NAME",
          "wrong number of arguments", CATCLI_STORE },
        { "list", snapshot_list, common, 1, 1, "VM [--json]",
          "wrong number of arguments", CATCLI_STORE },
        { "revert", snapshot_revert, revert_opts, 1, 2,
          "VM@NAME | VM NAME [--dry-run]",
          "wrong number of arguments", CATCLI_STORE },
        { "rm", snapshot_rm, common, 1, 2, "VM@NAME | VM NAME",
          "wrong number of arguments", CATCLI_STORE },
        { NULL, NULL, NULL, 0, 0, NULL, NULL, 0 },
    };

    return catcli_run_group(&c, subs, NULL, argc, argv);
}

/* ------------------------------------------- flatten/relink/consolidate */

/* --dry-run of flatten and consolidate: the layers each rewrite would
 * touch, read with the queries the catalog's rewrite uses (the VM's top
 * volumes, and the chain of snapshot layers under each). */

static int
flatten_plan(struct catcli *c, const char *name)
{
    struct json_object *disks, *o;
    size_t i, n;

    if (!catcli_vm_exists(c, name)) {
        return catcli_error(CLI_EXIT_NOT_FOUND, "no VM named '%s'", name);
    }
    disks = query_rows(c, VMC_REPORT_VM_TOP_DISKS, name);
    n = json_object_array_length(disks);
    if (c->json) {
        o = json_object_new_object();
        cli_json_add_str(o, "vm", name);
        cli_json_add_bool(o, "dry_run", true);
        cli_json_add_str(o, "type_after", "full");
        cli_json_add_obj(o, "would_rewrite", json_object_get(disks));
        catcli_json_done(o);
    } else if (!c->quiet) {
        printf("Would flatten VM '%s' (type becomes full): %zu disk%s "
               "rewritten\n", name, n, n == 1 ? "" : "s");
        for (i = 0; i < n; i++) {
            struct json_object *d = json_object_array_get_idx(disks, i);
            const char *b = catcli_jstr(d, "backing");

            printf("  %s (%s%s)\n", catcli_jstr(d, "file"),
                   *b ? "copies in the data of " : "already standalone",
                   b);
        }
    }
    json_object_put(disks);
    return CLI_EXIT_OK;
}

static int
consolidate_plan(struct catcli *c, const char *name)
{
    struct json_object *disks, *out = json_object_new_array(), *o;
    size_t i, k, n;

    if (!catcli_vm_exists(c, name)) {
        json_object_put(out);
        return catcli_error(CLI_EXIT_NOT_FOUND, "no VM named '%s'", name);
    }
    disks = query_rows(c, VMC_REPORT_VM_TOP_DISKS, name);
    n = json_object_array_length(disks);
    for (i = 0; i < n; i++) {
        struct json_object *d = json_object_array_get_idx(disks, i);
        const char *file = catcli_jstr(d, "file");
        struct json_object *chain = query_rows(c, VMC_REPORT_DISK_LAYERS, file);
        struct json_object *layers = json_object_new_array();

        /* fewer than two layers: nothing between the disk and its base */
        for (k = 0; json_object_array_length(chain) >= 2 &&
                    k < json_object_array_length(chain); k++) {
            json_object_array_add(layers, json_object_new_string(
                catcli_jstr(json_object_array_get_idx(chain, k), "file")));
        }
        json_object_put(chain);
        o = json_object_new_object();
        cli_json_add_str(o, "file", file);
        cli_json_add_obj(o, "would_merge", layers);
        json_object_array_add(out, o);
    }
    if (c->json) {
        o = json_object_new_object();
        cli_json_add_str(o, "vm", name);
        cli_json_add_bool(o, "dry_run", true);
        cli_json_add_obj(o, "would_rewrite", json_object_get(out));
        catcli_json_done(o);
    } else if (!c->quiet) {
        for (i = 0; i < n; i++) {
            struct json_object *d = json_object_array_get_idx(out, i);
            struct json_object *l = json_object_object_get(d,
                                                           "would_merge");
            size_t nl = json_object_array_length(l);

            if (!nl) {
                printf("Would leave '%s' as it is (no layers to merge)\n",
                       catcli_jstr(d, "file"));
                continue;
            }
            printf("Would rewrite '%s', merging %zu layer%s:\n",
                   catcli_jstr(d, "file"), nl, nl == 1 ? "" : "s");
            for (k = 0; k < nl; k++) {
                printf("  %s\n", json_object_get_string(
                           json_object_array_get_idx(l, k)));
            }
        }
    }
    json_object_put(disks);
    json_object_put(out);
    return CLI_EXIT_OK;
}

static bool flatten_dry, consolidate_dry;
static const struct cli_opt flatten_opts[] = {
    CLI_OPT_FLAG(0, "dry-run", &flatten_dry, "print the disks that would "
                 "be rewritten, change nothing"),
    CLI_OPT_END,
};
static const struct cli_opt consolidate_opts[] = {
    CLI_OPT_FLAG(0, "dry-run", &consolidate_dry, "print the disks that "
                 "would be rewritten and the layers merged, change nothing"),
    CLI_OPT_END,
};

static int
flatten_run(struct catcli *c, void *ctx, int argc, char **argv)
{
    struct vmc_error err = { 0 };
    int r;

    if (flatten_dry) {
        return flatten_plan(c, argv[0]);
    }
    r = vmc_catalog_vm_flatten(c->cat, argv[0], NULL, NULL, &err);
    catcli_progress_end(c);
    if (r == 0 && c->json) {
        struct json_object *o = json_object_new_object();

        cli_json_add_str(o, "vm", argv[0]);
        cli_json_add_str(o, "type", "full");
        cli_json_add_str(o, "mechanism", "flatten");
        catcli_json_done(o);
    } else if (r == 0 && !c->quiet) {
        printf("VM '%s' is now a full clone (flattened)\n", argv[0]);
    }
    return r < 0 ? catcli_fail(&err, r) : CLI_EXIT_OK;
}

static const char flatten_usage[] =
    "usage: " CLI_NAME " flatten VM [--dry-run]\n\n"
    "Make the VM's disks standalone (linked -> full): the data of the "
    "layers\nbelow is copied in, the backing link dropped last.\n";

const struct catcli_cmd catcli_flatten = {
    { "flatten", flatten_run, flatten_opts, 1, 1, NULL,
      "expecting one VM name", CATCLI_STORE },
    flatten_usage,
};

int
cmd_relink(int argc, char **argv)
{
    struct catcli c = { .verb = "relink", .usage =
        "usage: " CLI_NAME " relink VM --template T\n\n"
        "Make the VM's disks linked clones of template T's copy in the VM's "
        "pool,\nkeeping only the clusters that differ (full -> linked).\n" };
    struct vmc_error err = { 0 };
    const char *tmpl = NULL;
    uint64_t saved = 0;
    char sz[32];
    const struct cli_opt opts[] = {
        CATCLI_OPTS(&c),
        CLI_OPT_STRING('t', "template", "T", &tmpl, "the template whose "
                       "copy the disks link to (required)"),
        CLI_OPT_END,
    };
    int r = catcli_parse(&c, opts, argc, argv);

    if (r) {
        return CLI_PARSE_EXIT(r);
    }
    if (argc - optind != 1 || !tmpl) {
        return cli_usage_error(c.verb, "expecting a VM name and --template "
                               "T");
    }
    r = catcli_open(&c, 0);
    if (r) {
        return r;
    }
    r = vmc_catalog_vm_relink(c.cat, argv[optind], tmpl, &saved, &err);
    if (r == 0 && c.json) {
        struct json_object *o = json_object_new_object();

        cli_json_add_str(o, "vm", argv[optind]);
        cli_json_add_str(o, "template", tmpl);
        cli_json_add_str(o, "type", "linked");
        cli_json_add_u64(o, "bytes_saved", saved);
        catcli_json_done(o);
    } else if (r == 0 && !c.quiet) {
        catcli_size(&c, saved, sz, sizeof(sz));
        printf("VM '%s' is now a linked clone of template '%s' (%s freed)\n",
               argv[optind], tmpl, sz);
    }
    catcli_close(&c);
    return r < 0 ? catcli_fail(&err, r) : CLI_EXIT_OK;
}

static int
consolidate_run(struct catcli *c, void *ctx, int argc, char **argv)
{
    struct vmc_error err = { 0 };
    unsigned merged = 0;
    int r;

    if (consolidate_dry) {
        return consolidate_plan(c, argv[0]);
    }
    r = vmc_catalog_vm_consolidate(c->cat, argv[0], &merged, &err);
    if (r == 0 && c->json) {
        struct json_object *o = json_object_new_object();

        cli_json_add_str(o, "vm", argv[0]);
        cli_json_add_u64(o, "layers_merged", merged);
        catcli_json_done(o);
    } else if (r == 0 && !c->quiet) {
        printf("VM '%s': %u layer%s merged\n", argv[0], merged,
               merged == 1 ? "" : "s");
    }
    return r < 0 ? catcli_fail(&err, r) : CLI_EXIT_OK;
}

static const char consolidate_usage[] =
    "usage: " CLI_NAME " consolidate VM [--dry-run]\n\n"
    "Collapse the snapshot layers under the VM's disks into one (the "
    "newest\nsnapshot's layer takes the older layers' data; every "
    "snapshot stays valid).\nRefused when another VM uses one of the "
    "layers that would change.\n";

const struct catcli_cmd catcli_consolidate = {
    { "consolidate", consolidate_run, consolidate_opts, 1, 1, NULL,
      "expecting one VM name", CATCLI_STORE },
    consolidate_usage,
};

/* ----------------------------------------------------------------- vm */

/* The hardware options of vm xml / vm qemu-cmd (vm-qemu.h). */
static struct vmq_opts vm_hw;

static int
vm_xml(struct catcli *c, void *ctx, int argc, char **argv)
{
    return vmq_print_xml(c, argv[0], &vm_hw);
}

static int
vm_qemu_cmd(struct catcli *c, void *ctx, int argc, char **argv)
{
    return vmq_print_qemu(c, argv[0], &vm_hw);
}

int
cmd_vm(int argc, char **argv)
{
    struct catcli c = { .verb = "vm", .usage =
        "xml prints a libvirt domain for the VM (disks with their backing "
        "chain,\nqcow2 driver, NICs with their MACs); qemu-cmd prints a "
        "qemu-system-x86_64\ncommand line; both from the one hardware model "
        "'start' runs (the accelerator:\nkvm when /dev/kvm works, else tcg; "
        "the network: user unless --network).\n"
        "define defines (or redefines) the VM's libvirt domain from that "
        "model, through\nlibvirt's API, and the catalog remembers it; "
        "undefine removes it.\n"
        "set changes a VM's labels, expiry and hardware.\n" };
    const struct cli_opt hw_opts[] = {
        CATCLI_OPTS(&c), VMQ_NET_OPTS(&vm_hw), VMQ_BOOT_OPTS(&vm_hw),
        CLI_OPT_END,
    };
    const struct cli_opt define_opts[] = { VM_DEFINE_OPTS(&c) };
    const struct cli_opt undefine_opts[] = { VM_UNDEFINE_OPTS(&c) };
    const struct catcli_sub subs[] = {
        { "define", vm_define, define_opts, 1, 1, "NAME [--connect URI] [the options of xml]",
          "expecting a VM name", CATCLI_STORE },
        { "undefine", vm_undefine, undefine_opts, 1, 1, "NAME [--force]",
          "expecting a VM name", CATCLI_STORE },
        { "xml", vm_xml, hw_opts, 1, 1, "NAME [--accel kvm|tcg] [--network MODE] [--kernel F] [--initrd F] [--append CMDLINE] [--serial FILE]",
          "expecting xml|qemu-cmd and a VM name", 0 },
        { "qemu-cmd", vm_qemu_cmd, hw_opts, 1, 1, "NAME [--accel kvm|tcg] [--network MODE] [--kernel F] [--initrd F] [--append CMDLINE] [--serial FILE]",
          "expecting xml|qemu-cmd and a VM name", 0 },
        { "set", catcli_vm_set, catcli_vm_set_opts(&c), 1, 1, "NAME [--label KEY=VALUE]... [--unlabel KEY]... [--ttl DURATION] [--cpus N] [--memory MiB] [--nics N]", "expecting a VM name", CATCLI_STORE },
        { NULL, NULL, NULL, 0, 0, NULL, NULL, 0 },
    };

    return catcli_run_group(&c, subs, NULL, argc, argv);
}
