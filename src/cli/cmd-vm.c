/*
 * cmd-vm.c - commands on one VM: snapshot create|list|revert|rm,
 * flatten, relink, consolidate, and "vm xml" (a libvirt domain) /
 * "vm qemu-cmd" (a qemu-system-x86_64 command line) for hypervisors.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cat-cli.h"
#include "vm-qemu.h"
#include "vm-drive.h"

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

static void
xml_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '\'':
            fputs("&apos;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

static void
print_xml(FILE *f, struct json_object *vm)
{
    struct json_object *disks = NULL, *nics = NULL;
    size_t i, k;

    json_object_object_get_ex(vm, "disks", &disks);
    json_object_object_get_ex(vm, "nics", &nics);
    fputs("<domain type='kvm'>\n  <name>", f);
    xml_escape(f, json_object_get_string(json_object_object_get(vm, "name")));
    fprintf(f, "</name>\n  <uuid>%s</uuid>\n",
           json_object_get_string(json_object_object_get(vm, "uuid")));
    fprintf(f, "  <memory unit='MiB'>%d</memory>\n  <vcpu>%d</vcpu>\n",
           json_object_get_int(json_object_object_get(vm, "memory_mb")),
           json_object_get_int(json_object_object_get(vm, "cpus")));
    fputs("  <os>\n    <type arch='x86_64' machine='q35'>hvm</type>\n"
          "    <boot dev='hd'/>\n  </os>\n  <features>\n    <acpi/>\n"
          "  </features>\n  <devices>\n", f);
    for (i = 0; disks && i < json_object_array_length(disks); i++) {
        struct json_object *d = json_object_array_get_idx(disks, i);
        struct json_object *ch = json_object_object_get(d, "chain");
        size_t n = ch ? json_object_array_length(ch) : 0;

        if (vm_drive_xml_rbd(f, json_object_get_string(
                json_object_object_get(d, "path")), (char)('a' + i))) {
            continue;
        }
        fputs("    <disk type='file' device='disk'>\n"
              "      <driver name='qemu' type='qcow2'/>\n"
              "      <source file='", f);
        xml_escape(f, json_object_get_string(json_object_object_get(d, "path")));
        fputs("'/>\n", f);
        for (k = 1; k < n; k++) {
            struct json_object *l = json_object_array_get_idx(ch, k);

            fprintf(f, "%*s<backingStore type='file'>\n%*s<format "
                   "type='qcow2'/>\n%*s<source file='", (int)(4 + 2 * k), "",
                   (int)(6 + 2 * k), "", (int)(6 + 2 * k), "");
            xml_escape(f, json_object_get_string(json_object_object_get(l,
                                                                     "path")));
            fputs("'/>\n", f);
        }
        if (n > 0) {
            fprintf(f, "%*s<backingStore/>\n", (int)(4 + 2 * n), "");
        }
        for (k = n; k > 1; k--) {
            fprintf(f, "%*s</backingStore>\n", (int)(4 + 2 * (k - 1)), "");
        }
        fprintf(f, "      <target dev='vd%c' bus='virtio'/>\n    </disk>\n",
               (int)('a' + i));
    }
    for (i = 0; nics && i < json_object_array_length(nics); i++) {
        struct json_object *n = json_object_array_get_idx(nics, i);

        fprintf(f, "    <interface type='network'>\n      <mac address='%s'/>\n"
               "      <source network='default'/>\n      <model "
               "type='virtio'/>\n    </interface>\n",
               json_object_get_string(json_object_object_get(n, "mac")));
    }
    fputs("    <serial type='pty'/>\n    <console type='pty'/>\n"
          "  </devices>\n</domain>\n", f);
}

/* Shell-quote @s with single quotes when it needs it. */
static void
shq(FILE *f, const char *s)
{
    if (*s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        "0123456789-_./=,:@%+") == strlen(s)) {
        fputs(s, f);
        return;
    }
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') {
            fputs("'\\''", f);
        } else {
            fputc(*s, f);
        }
    }
    fputc('\'', f);
}

int
vmq_push(struct vmq_argv *a, const char *s)
{
    char *dup;

    if (a->n + 2 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 32;
        char **v = realloc(a->v, cap * sizeof(*v));

        if (!v) {
            return -ENOMEM;
        }
        a->v = v;
        a->cap = cap;
    }
    dup = strdup(s);
    if (!dup) {
        return -ENOMEM;
    }
    a->v[a->n++] = dup;
    a->v[a->n] = NULL;
    return 0;
}

void
vmq_argv_free(struct vmq_argv *a)
{
    size_t i;

    for (i = 0; i < a->n; i++) {
        free(a->v[i]);
    }
    free(a->v);
    memset(a, 0, sizeof(*a));
}

/* Append "@prefix@value@suffix" with the commas of @value doubled (QEMU's
 * option syntax). */
static int
push_opt(struct vmq_argv *a, const char *prefix, const char *value,
         const char *suffix)
{
    size_t len = strlen(prefix) + 2 * strlen(value) + strlen(suffix) + 1;
    char *buf = malloc(len), *p;
    int r;

    if (!buf) {
        return -ENOMEM;
    }
    p = buf + sprintf(buf, "%s", prefix);
    for (; *value; value++) {
        if (*value == ',') {
            *p++ = ',';
        }
        *p++ = *value;
    }
    strcpy(p, suffix);
    r = vmq_push(a, buf);
    free(buf);
    return r;
}

int
vmq_build(struct json_object *vm, const struct vmq_opts *o,
          struct vmq_argv *out)
{
    struct json_object *disks = NULL, *nics = NULL;
    char buf[256];
    size_t i, n;
    int r;

    memset(out, 0, sizeof(*out));
    json_object_object_get_ex(vm, "disks", &disks);
    json_object_object_get_ex(vm, "nics", &nics);
    r = vmq_push(out, "qemu-system-x86_64");
    r = r ? r : vmq_push(out, "-name");
    r = r ? r : push_opt(out, "", json_object_get_string(
                             json_object_object_get(vm, "name")), "");
    r = r ? r : vmq_push(out, "-uuid");
    r = r ? r : vmq_push(out, json_object_get_string(
                             json_object_object_get(vm, "uuid")));
    r = r ? r : vmq_push(out, "-machine");
    if (!o->accel) {
        r = r ? r : vmq_push(out, "q35,accel=kvm:tcg");
    } else {
        const char *p = o->accel;

        r = r ? r : vmq_push(out, "q35");
        while (!r && *p) {
            size_t len = strcspn(p, ":");

            snprintf(buf, sizeof(buf), "%.*s", (int)len, p);
            r = vmq_push(out, "-accel");
            r = r ? r : vmq_push(out, buf);
            p += len + (p[len] == ':');
        }
    }
    snprintf(buf, sizeof(buf), "%d",
             json_object_get_int(json_object_object_get(vm, "cpus")));
    r = r ? r : vmq_push(out, "-smp");
    r = r ? r : vmq_push(out, buf);
    snprintf(buf, sizeof(buf), "%d",
             json_object_get_int(json_object_object_get(vm, "memory_mb")));
    r = r ? r : vmq_push(out, "-m");
    r = r ? r : vmq_push(out, buf);
    n = disks ? json_object_array_length(disks) : 0;
    for (i = 0; !r && i < n; i++) {
        struct json_object *d = json_object_array_get_idx(disks, i);

        r = vmq_push(out, "-drive");
        if (r == 0 && o->drives) {
            r = push_opt(out, "file=", o->drives[i],
                         ",format=raw,if=virtio,cache=none");
        } else if (r == 0) {
            char *file = NULL;
            const char *opts = NULL;

            r = vm_drive_spec(json_object_get_string(json_object_object_get(
                                  d, "path")), &file, &opts);
            r = r ? r : push_opt(out, "file=", file, opts);
            free(file);
        }
    }
    n = nics ? json_object_array_length(nics) : 0;
    for (i = 0; !r && i < n; i++) {
        struct json_object *nic = json_object_array_get_idx(nics, i);

        snprintf(buf, sizeof(buf), "user,id=net%zu", i);
        r = vmq_push(out, "-netdev");
        r = r ? r : vmq_push(out, buf);
        snprintf(buf, sizeof(buf), "virtio-net-pci,netdev=net%zu,mac=%s", i,
                 json_object_get_string(json_object_object_get(nic, "mac")));
        r = r ? r : vmq_push(out, "-device");
        r = r ? r : vmq_push(out, buf);
    }
    if (!r && n == 0) {
        r = vmq_push(out, "-nic");      /* else QEMU adds a default NIC */
        r = r ? r : vmq_push(out, "none");
    }
    if (!r && o->kernel) {
        r = vmq_push(out, "-kernel");
        r = r ? r : vmq_push(out, o->kernel);
    }
    if (!r && o->initrd) {
        r = vmq_push(out, "-initrd");
        r = r ? r : vmq_push(out, o->initrd);
    }
    if (!r && o->append) {
        r = vmq_push(out, "-append");
        r = r ? r : vmq_push(out, o->append);
    }
    if (!r && o->serial) {
        r = vmq_push(out, "-display");
        r = r ? r : vmq_push(out, "none");
        r = r ? r : vmq_push(out, "-monitor");
        r = r ? r : vmq_push(out, "none");
        r = r ? r : vmq_push(out, "-serial");
        r = r ? r : push_opt(out, "file:", o->serial, "");
    } else if (!r) {
        r = vmq_push(out, "-nographic");
    }
    if (r) {
        vmq_argv_free(out);
    }
    return r;
}

void
vmq_print(FILE *f, const struct vmq_argv *a)
{
    static const char *const breaks[] = { "-drive", "-netdev", "-nic",
                                          "-kernel", "-display",
                                          "-nographic", NULL };
    size_t i, k;

    for (i = 0; i < a->n; i++) {
        const char *sep = i ? " " : "";

        for (k = 0; i && breaks[k]; k++) {
            if (!strcmp(a->v[i], breaks[k])) {
                sep = " \\\n  ";
            }
        }
        fputs(sep, f);
        shq(f, a->v[i]);
    }
    fputc('\n', f);
}

/* The VM's command line: text, or with --json {"vm", "argv"}. */
static int
print_qemu(struct catcli *c, struct json_object *vm)
{
    struct vmq_opts o = { 0 };
    struct vmq_argv a;
    size_t i;

    if (vmq_build(vm, &o, &a) < 0) {
        return cli_error("out of memory");
    }
    if (c->json) {
        struct json_object *doc = json_object_new_object();
        struct json_object *argv = json_object_new_array();

        for (i = 0; i < a.n; i++) {
            json_object_array_add(argv, json_object_new_string(a.v[i]));
        }
        cli_json_add_str(doc, "vm", catcli_jstr(vm, "name"));
        cli_json_add_obj(doc, "argv", argv);
        catcli_json_done(doc);
    } else {
        vmq_print(stdout, &a);
    }
    vmq_argv_free(&a);
    return CLI_EXIT_OK;
}

/* The VM's libvirt domain: text, or with --json {"vm", "xml"}. */
static int
print_domain(struct catcli *c, struct json_object *vm)
{
    struct json_object *doc;
    char *xml = NULL;
    size_t len = 0;
    FILE *f;

    if (!c->json) {
        print_xml(stdout, vm);
        return CLI_EXIT_OK;
    }
    f = open_memstream(&xml, &len);
    if (!f) {
        return cli_error("out of memory");
    }
    print_xml(f, vm);
    if (fclose(f) != 0) {
        free(xml);
        return cli_error("out of memory");
    }
    doc = json_object_new_object();
    cli_json_add_str(doc, "vm", catcli_jstr(vm, "name"));
    cli_json_add_str(doc, "xml", xml);
    catcli_json_done(doc);
    free(xml);
    return CLI_EXIT_OK;
}

static int
vm_export(struct catcli *c, const char *name, bool xml)
{
    struct json_object *vm;
    int r = catcli_open_vm(c, name, &vm);

    if (r) {
        return r;
    }
    r = xml ? print_domain(c, vm) : print_qemu(c, vm);
    json_object_put(vm);
    catcli_close(c);
    return r;
}

static int
vm_xml(struct catcli *c, void *ctx, int argc, char **argv)
{
    return vm_export(c, argv[0], true);
}

static int
vm_qemu_cmd(struct catcli *c, void *ctx, int argc, char **argv)
{
    return vm_export(c, argv[0], false);
}

int
cmd_vm(int argc, char **argv)
{
    struct catcli c = { .verb = "vm", .usage =
        "xml prints a libvirt domain for the VM (disks with their backing "
        "chain,\nqcow2 driver, NICs with their MACs); qemu-cmd prints a "
        "qemu-system-x86_64\ncommand line.\n"
        "set changes a VM's labels, expiry and hardware.\n" };
    const struct cli_opt common[] = { CATCLI_OPTS(&c), CLI_OPT_END };
    const struct catcli_sub subs[] = {
        { "xml", vm_xml, common, 1, 1, "NAME",
          "expecting xml|qemu-cmd and a VM name", 0 },
        { "qemu-cmd", vm_qemu_cmd, common, 1, 1, "NAME",
          "expecting xml|qemu-cmd and a VM name", 0 },
        { "set", catcli_vm_set, catcli_vm_set_opts(&c), 1, 1, "NAME [--label KEY=VALUE]... [--unlabel KEY]... [--ttl DURATION] [--cpus N] [--memory MiB] [--nics N]", "expecting a VM name", CATCLI_STORE },
        { NULL, NULL, NULL, 0, 0, NULL, NULL, 0 },
    };

    return catcli_run_group(&c, subs, NULL, argc, argv);
}
