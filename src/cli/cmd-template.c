/*
 * cmd-template.c - "template import|create|list|info|retire|rm": sealed,
 * read-only base images (possibly several disks) with a hardware spec.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cat-cli.h"
#include "instant.h"

static const char template_usage[] =
    "import copies each IMAGE (qcow2, raw, vmdk...) into a secondary pool "
    "as a\nstandalone qcow2 disk and seals it (mode 0444, content digest "
    "checked on\nread). An image with a backing file is refused (--flatten "
    "copies its guest\nview).\ncreate makes a template from a VM's current disks "
    "(or a snapshot); the VM\nstays. retire hides it from new clones and "
    "deletes it when nothing depends\non it any more. rm refuses while "
    "anything depends on it. With\n--flatten-dependents, rm and retire make "
    "the dependents standalone first\n(after checking the free space of "
    "their filesystems), so the template goes now.\n"
    "freeze pauses VM (running with 'start --freezable'), saves its device "
    "state,\nstops it and makes instant template T of its disks, RAM file "
    "and state:\nclones made with 'clone T --instant' resume it instead of "
    "booting.\n";

static int
parse_uint(const char *s, uint64_t *out, const char *what)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') {
        return cli_error("invalid %s '%s'", what, s);
    }
    *out = v;
    return 0;
}

/* One template of the list as a row of the table. */
static void
list_row(struct catcli *c, struct json_object *o)
{
    char sz[32];

    catcli_size(c, (uint64_t)catcli_jint(o, "virtual_size"), sz, sizeof(sz));
    printf("%-24s %-8s %5" PRId64 " %9s %4" PRId64 " %6" PRId64 "M %4" PRId64
           "  %s\n", catcli_jstr(o, "name"),
           catcli_jint(o, "retired") ? "retired" : catcli_jstr(o, "state"),
           catcli_jint(o, "disks"), sz, catcli_jint(o, "cpus"),
           catcli_jint(o, "memory_mb"), catcli_jint(o, "dependent_count"),
           catcli_jstr(o, "copies_in"));
}

static int
show_list(struct catcli *c)
{
    return catcli_print_table(c, catcli_report(c, VMC_REPORT_TEMPLATES, NULL,
                                               0),
                              "NAME                     STATE    DISKS      "
                              "SIZE CPUS  MEMORY DEPS  COPIES", list_row);
}

static int
show_info(struct catcli *c, const char *name)
{
    const char *params[1] = { name };
    struct json_object *arr, *t, *disks, *copies;
    struct vmc_error err = { 0 };
    char **deps = NULL;
    size_t n = 0, i;
    int r;

    arr = catcli_report(c, VMC_REPORT_TEMPLATE, params, 1);
    if (!arr) {
        return CLI_EXIT_FAIL;
    }
    if (json_object_array_length(arr) == 0) {
        json_object_put(arr);
        return catcli_error(CLI_EXIT_NOT_FOUND, "no template named '%s'",
                            name);
    }
    t = json_object_get(json_object_array_get_idx(arr, 0));
    json_object_put(arr);
    disks = catcli_report(c, VMC_REPORT_TEMPLATE_DISKS, params, 1);
    copies = catcli_report(c, VMC_REPORT_TEMPLATE_COPIES, params, 1);
    r = vmc_catalog_dependents(c->cat, "template", name, &deps, &n, &err);
    if (r < 0 || !disks || !copies) {
        json_object_put(t);
        json_object_put(disks);
        json_object_put(copies);
        return r < 0 ? catcli_fail(&err, r) : CLI_EXIT_FAIL;
    }
    if (c->json) {
        struct json_object *d = json_object_new_array();

        for (i = 0; i < n; i++) {
            json_object_array_add(d, catcli_dep_json(deps[i]));
        }
        json_object_object_add(t, "disks", disks);
        json_object_object_add(t, "copies", copies);
        json_object_object_add(t, "dependents", d);
        cli_json_print(stdout, t);
    } else {
        printf("name:       %s%s\n",
               json_object_get_string(json_object_object_get(t, "name")),
               json_object_get_int(json_object_object_get(t, "retired"))
               ? " (retired)" : "");
        printf("state:      %s\n",
               json_object_get_string(json_object_object_get(t, "state")));
        printf("hardware:   %d CPUs, %d MiB, %d NICs\n",
               json_object_get_int(json_object_object_get(t, "cpus")),
               json_object_get_int(json_object_object_get(t, "memory_mb")),
               json_object_get_int(json_object_object_get(t, "nics")));
        printf("pool:       %s\n",
               json_object_get_string(json_object_object_get(t, "pool")));
        if (json_object_object_get(t, "origin")) {
            printf("origin:     %s\n", json_object_get_string(
                       json_object_object_get(t, "origin")));
        }
        for (i = 0; i < json_object_array_length(disks); i++) {
            struct json_object *d = json_object_array_get_idx(disks, i);
            char sz[32];

            catcli_size(c, (uint64_t)json_object_get_int64(
                            json_object_object_get(d, "virtual_size")), sz,
                        sizeof(sz));
            printf("disk %d:     %s (%s, sealed %.16s...)\n",
                   json_object_get_int(json_object_object_get(d, "disk")),
                   json_object_get_string(json_object_object_get(d, "path")),
                   sz, json_object_get_string(json_object_object_get(d,
                                                                     "seal")));
        }
        for (i = 0; i < json_object_array_length(copies); i++) {
            struct json_object *x = json_object_array_get_idx(copies, i);

            printf("copy:       pool %s, %s (%s)\n",
                   json_object_get_string(json_object_object_get(x, "pool")),
                   json_object_get_string(json_object_object_get(x, "state")),
                   json_object_get_string(json_object_object_get(
                       x, "mechanism")));
        }
        printf("dependents: %zu\n", n);
        for (i = 0; i < n; i++) {
            printf("  %s\n", deps[i]);
        }
        json_object_put(disks);
        json_object_put(copies);
    }
    json_object_put(t);
    vmc_catalog_strv_free(deps, n);
    return CLI_EXIT_OK;
}

/* With @flatten, the VMs and snapshots using template @name directly
 * ("kind name" strings): what --flatten-dependents flattens. */
static struct json_object *
direct_dependents(struct catcli *c, const char *name, bool flatten)
{
    const char *params[1] = { name };
    struct json_object *arr, *out = json_object_new_array();
    size_t i;

    if (!flatten) {
        return out;
    }
    arr = catcli_report(c, VMC_REPORT_TEMPLATE_USERS, params, 1);
    for (i = 0; arr && i < json_object_array_length(arr); i++) {
        struct json_object *d = json_object_array_get_idx(arr, i);
        char buf[300];

        snprintf(buf, sizeof(buf), "%s %s",
                 json_object_get_string(json_object_object_get(d, "kind")),
                 json_object_get_string(json_object_object_get(d, "name")));
        json_object_array_add(out, json_object_new_string(buf));
    }
    json_object_put(arr);
    return out;
}

static void
print_flattened(struct json_object *flattened)
{
    size_t i;

    for (i = 0; flattened && i < json_object_array_length(flattened); i++) {
        printf("Flattened %s (now standalone)\n", json_object_get_string(
                   json_object_array_get_idx(flattened, i)));
    }
}

/* ------------------------------------------------- --dry-run plans */

/* The files of template @name: its disks and its copies in every pool. */
static struct json_object *
template_files(struct catcli *c, const char *name)
{
    return catcli_report_strings(c, VMC_REPORT_TEMPLATE_FILES, name);
}

static void
print_strings(const char *head, struct json_object *arr)
{
    size_t i;

    for (i = 0; i < json_object_array_length(arr); i++) {
        printf("%s%s\n", head, json_object_get_string(
                   json_object_array_get_idx(arr, i)));
    }
}

/* --dry-run of template rm (@rm) or retire: the refusal the real
 * command would meet (printed, its exit status returned), or the VMs and
 * snapshots --flatten-dependents would make full, and the files that
 * would go. Uses the same queries as the real command's checks. */
static int
tmpl_gone_plan(struct catcli *c, const char *name, bool rm, bool flatten)
{
    struct vmc_error err = { 0 };
    struct json_object *ready, *flattened, *files, *o;
    char **deps = NULL;
    size_t n = 0;
    bool found, goes;
    int r;

    ready = catcli_report_strings(c, VMC_REPORT_READY_TEMPLATE, name);
    found = json_object_array_length(ready) > 0;
    json_object_put(ready);
    if (!found) {
        return catcli_error(CLI_EXIT_NOT_FOUND, "no template named '%s'",
                            name);
    }
    r = vmc_catalog_dependents(c->cat, "template", name, &deps, &n, &err);
    if (r < 0) {
        return catcli_fail(&err, r);
    }
    if (rm && n && !flatten) {
        char line[1024] = "";
        size_t len = 0, i;

        for (i = 0; i < n && len < sizeof(line); i++) {
            len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s",
                                    i ? ", " : "", deps[i]);
        }
        r = catcli_error(CLI_EXIT_CONFLICT, "template rm would refuse: "
                         "template '%s' has %zu dependent%s: %s (use "
                         "--flatten-dependents)", name, n,
                         n == 1 ? "" : "s", line);
        vmc_catalog_strv_free(deps, n);
        return r;
    }
    for (size_t i = 0; flatten && i < n; i++) {
        if (!strncmp(deps[i], "template ", 9)) {
            r = catcli_error(CLI_EXIT_CONFLICT, "template %s would refuse: "
                             "%s (frozen) sits on template '%s': a template "
                             "is not flattened; remove it first", rm
                             ? "rm" : "retire", deps[i], name);
            vmc_catalog_strv_free(deps, n);
            return r;
        }
    }
    vmc_catalog_strv_free(deps, n);
    goes = rm || flatten || !n;
    flattened = direct_dependents(c, name, flatten);
    files = goes ? template_files(c, name) : json_object_new_array();
    if (c->json) {
        o = json_object_new_object();
        cli_json_add_str(o, "template", name);
        cli_json_add_bool(o, "dry_run", true);
        if (!rm) {
            cli_json_add_bool(o, "would_retire", true);
        }
        cli_json_add_bool(o, "would_free", goes);
        cli_json_add_obj(o, "would_flatten", catcli_deps_json(flattened));
        cli_json_add_obj(o, "would_remove_files", json_object_get(files));
        catcli_json_done(o);
    } else if (!c->quiet) {
        print_strings("Would flatten ", flattened);
        if (!rm) {
            printf("Would retire template '%s'%s\n", name, goes ? "" :
                   "; it would be removed when its last dependent goes");
        }
        if (goes) {
            printf("Would remove template '%s' (%zu file%s)\n", name,
                   json_object_array_length(files),
                   json_object_array_length(files) == 1 ? "" : "s");
            print_strings("  ", files);
        }
    }
    json_object_put(flattened);
    json_object_put(files);
    return CLI_EXIT_OK;
}

/* ------------------------------------------------- option values */

static int
opt_cpus(const char *arg, void *dest)
{
    struct vmc_import_opts *io = dest;
    uint64_t v;

    if (parse_uint(arg, &v, "CPU count") || !v || v > 1024) {
        return CLI_EXIT_FAIL;
    }
    io->hw.cpus = (unsigned)v;
    return 0;
}

static int
opt_memory(const char *arg, void *dest)
{
    struct vmc_import_opts *io = dest;
    uint64_t v;

    if (cli_parse_size(arg, &v, "memory size")) {
        return CLI_EXIT_FAIL;
    }
    /* a bare number is MiB; a size with a suffix is bytes */
    io->hw.memory_mb = strspn(arg, "0123456789") == strlen(arg) ? v : v >> 20;
    if (!io->hw.memory_mb) {
        return cli_error("invalid memory size '%s'", arg);
    }
    return 0;
}

static int
opt_firmware(const char *arg, void *dest)
{
    struct vmc_import_opts *io = dest;

    if (strcmp(arg, "bios") && strcmp(arg, "uefi")) {
        return cli_usage_error("template", "--firmware is bios or uefi, "
                               "not '%s'", arg);
    }
    io->hw.uefi = !strcmp(arg, "uefi");
    return 0;
}

static int
opt_nics(const char *arg, void *dest)
{
    struct vmc_import_opts *io = dest;
    uint64_t v;

    if (parse_uint(arg, &v, "NIC count") || v > 32) {
        return CLI_EXIT_FAIL;
    }
    io->hw.nics = v ? (unsigned)v : VMC_HW_NO_NICS;
    return 0;
}

static int
opt_image_format(const char *arg, void *dest)
{
    return cli_parse_format(arg, dest) ? CLI_EXIT_FAIL : 0;
}

/* ------------------------------------------------------ subcommands */

/* What the options of the template subcommands fill in. */
struct tmpl_args {
    struct vmc_import_opts io;
    const char *from_vm, *snapshot, *freeze_name;
    bool flatten_deps, dry_run;
};

static int
tmpl_freeze(struct catcli *c, void *ctx, int argc, char **argv)
{
    struct tmpl_args *a = ctx;

    if (!a->freeze_name) {
        return cli_usage_error("template freeze", "freeze needs VM and "
                               "--name T");
    }
    return inst_freeze(c, argv[0], a->freeze_name);
}

static int
tmpl_list(struct catcli *c, void *ctx, int argc, char **argv)
{
    return show_list(c);
}

static int
tmpl_info(struct catcli *c, void *ctx, int argc, char **argv)
{
    return show_info(c, argv[0]);
}

/* After import or create: the new template's info (--json) or a line. */
static int
report_new(struct catcli *c, const char *name, const char *line)
{
    if (c->quiet) {
        return CLI_EXIT_OK;
    }
    if (c->json) {
        return show_info(c, name);
    }
    fputs(line, stdout);
    return CLI_EXIT_OK;
}

/* The formats the @n imported images were read as ("vmdk", "qcow2,
 * raw"), into @buf: the one named with --format, or what the opener
 * recognised in each. */
static void
import_formats(char *const *images, int n, enum vmc_format named, char *buf,
               size_t cap)
{
    struct vmc_open_opts oo = { .flags = VMC_OPEN_NO_BACKING |
                                         VMC_OPEN_FORCE_SHARE };
    int i;

    snprintf(buf, cap, "%s", named ? vmc_format_name(named) : "");
    for (i = 0; !named && i < n; i++) {
        struct vmc_image *img = NULL;
        const char *f = "?";

        if (vmc_image_open(&img, images[i], &oo, NULL) == 0) {
            f = vmc_format_name(vmc_image_format(img));
        }
        vmc_image_close(img);
        if (!strstr(buf, f)) {
            size_t len = strlen(buf);

            snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", f);
        }
    }
}

/* Whether @path names an OVF appliance (.ova or .ovf). */
static bool
is_appliance(const char *path)
{
    size_t n = strlen(path);

    return n > 4 && (!strcasecmp(path + n - 4, ".ova") ||
                     !strcasecmp(path + n - 4, ".ovf"));
}

/* template import NAME appliance.ova|.ovf */
static int
tmpl_import_appliance(struct catcli *c, struct tmpl_args *a, char **argv)
{
    struct vmc_appliance_report rep;
    struct vmc_error err = { 0 };
    char line[512];
    int r;

    r = vmc_catalog_template_import_appliance(c->cat, argv[0], argv[1],
                                              &a->io, &rep, &err);
    catcli_progress_end(c);
    if (r < 0) {
        return catcli_fail(&err, r);
    }
    snprintf(line, sizeof(line), "Template '%s' imported from appliance "
             "'%s': %zu disk%s (read as %s), %u CPU%s, %" PRIu64 " MiB, "
             "%u NIC%s; %s%s, sealed, read-only\n", argv[0], argv[1],
             rep.ndisks, rep.ndisks == 1 ? "" : "s", rep.formats,
             rep.hw.cpus ? rep.hw.cpus : 1, rep.hw.cpus > 1 ? "s" : "",
             rep.hw.memory_mb ? rep.hw.memory_mb : 1024,
             rep.hw.nics == VMC_HW_NO_NICS ? 0 : rep.hw.nics,
             rep.hw.nics == 1 ? "" : "s",
             rep.manifest ? rep.manifest : "no manifest",
             rep.manifest ? " manifest checked" : "");
    return report_new(c, argv[0], line);
}

static int
tmpl_import(struct catcli *c, void *ctx, int argc, char **argv)
{
    struct tmpl_args *a = ctx;
    struct vmc_error err = { 0 };
    char line[512], fmts[128];
    int r;

    if (argc == 2 && is_appliance(argv[1])) {
        return tmpl_import_appliance(c, a, argv);
    }
    r = vmc_catalog_template_import(c->cat, argv[0],
                                    (const char *const *)argv + 1,
                                    (size_t)(argc - 1), &a->io, &err);
    catcli_progress_end(c);
    if (r < 0) {
        return catcli_fail(&err, r);
    }
    import_formats(argv + 1, argc - 1, a->io.format, fmts, sizeof(fmts));
    snprintf(line, sizeof(line), "Template '%s' imported: %d disk%s (read "
             "as %s), sealed, read-only\n", argv[0], argc - 1,
             argc - 1 == 1 ? "" : "s", fmts);
    return report_new(c, argv[0], line);
}

static int
tmpl_create(struct catcli *c, void *ctx, int argc, char **argv)
{
    struct tmpl_args *a = ctx;
    struct vmc_error err = { 0 };
    char line[512];
    int r;

    if (!a->from_vm) {
        return cli_usage_error("template create", "create needs NAME and "
                               "--from-vm VM");
    }
    r = catcli_open(c, 0);
    if (r) {
        return r;
    }
    r = vmc_catalog_template_from_vm(c->cat, argv[0], a->from_vm,
                                     a->snapshot, &a->io, &err);
    catcli_progress_end(c);
    if (r < 0) {
        catcli_close(c);
        return catcli_fail(&err, r);
    }
    snprintf(line, sizeof(line), "Template '%s' created from VM '%s%s%s': "
             "sealed, read-only\n", argv[0], a->from_vm,
             a->snapshot ? "@" : "", a->snapshot ? a->snapshot : "");
    r = report_new(c, argv[0], line);
    catcli_close(c);
    return r;
}

/* retire or rm, as JSON: what was done and what was flattened first. */
static void
json_gone(const char *name, bool rm, bool freed,
          struct json_object *flattened)
{
    struct json_object *o = json_object_new_object();

    cli_json_add_str(o, "template", name);
    cli_json_add_str(o, "action", rm ? "removed" : "retired");
    cli_json_add_bool(o, "freed", rm || freed);
    cli_json_add_obj(o, "flattened", catcli_deps_json(flattened));
    catcli_json_done(o);
}

static int
tmpl_retire(struct catcli *c, void *ctx, int argc, char **argv)
{
    struct tmpl_args *a = ctx;
    struct vmc_error err = { 0 };
    struct json_object *flattened;
    bool freed = false;
    int r;

    if (a->dry_run) {
        return tmpl_gone_plan(c, argv[0], false, a->flatten_deps);
    }
    flattened = direct_dependents(c, argv[0], a->flatten_deps);
    r = vmc_catalog_template_retire(c->cat, argv[0], a->flatten_deps, &freed,
                                    &err);
    catcli_progress_end(c);
    if (r == 0 && !c->quiet && !c->json) {
        print_flattened(flattened);
        printf("Template '%s' retired%s\n", argv[0],
               freed ? " and removed (nothing depends on it)"
                     : "; it will be removed when its last dependent "
                       "goes");
    }
    if (r == 0 && c->json) {
        json_gone(argv[0], false, freed, flattened);
    }
    json_object_put(flattened);
    return r < 0 ? catcli_fail(&err, r) : CLI_EXIT_OK;
}

static int
tmpl_rm(struct catcli *c, void *ctx, int argc, char **argv)
{
    struct tmpl_args *a = ctx;
    struct vmc_error err = { 0 };
    struct json_object *flattened;
    int r;

    if (a->dry_run) {
        return tmpl_gone_plan(c, argv[0], true, a->flatten_deps);
    }
    flattened = direct_dependents(c, argv[0], a->flatten_deps);
    r = vmc_catalog_template_rm(c->cat, argv[0], a->flatten_deps, &err);
    catcli_progress_end(c);
    if (r == 0 && c->json) {
        json_gone(argv[0], true, false, flattened);
    } else if (r == 0 && !c->quiet) {
        print_flattened(flattened);
        printf("Removed template '%s'\n", argv[0]);
    }
    json_object_put(flattened);
    return r < 0 ? catcli_fail(&err, r) : CLI_EXIT_OK;
}

/* Hardware of the template: import and create take them. */
#define TMPL_HW_OPTS(io) \
    CLI_OPT_CALL(0, "cpus", "N", (io), opt_cpus, "virtual CPUs (1 to 1024)"), \
    CLI_OPT_CALL(0, "memory", "MiB", (io), opt_memory, \
                 "memory: MiB, or a size with a suffix"), \
    CLI_OPT_CALL(0, "nics", "N", (io), opt_nics, "network cards (0 to 32)"), \
    CLI_OPT_CALL(0, "firmware", "bios|uefi", (io), opt_firmware, \
                 "boot firmware of the template's VMs (default bios)")

int
cmd_template(int argc, char **argv)
{
    struct catcli c = { .verb = "template", .usage = template_usage };
    struct tmpl_args a = { .from_vm = NULL };
    const struct cli_opt common[] = { CATCLI_OPTS(&c), CLI_OPT_END };
    const struct cli_opt import_opts[] = {
        CATCLI_OPTS(&c),
        TMPL_HW_OPTS(&a.io),
        CLI_OPT_CALL('f', "format", "FMT", &a.io.format,
                     opt_image_format, "format of the images (raw, qcow2, "
                     "vmdk...; default: probe)"),
        CLI_OPT_FLAG(0, "force-raw", &a.io.force_raw, "with -f raw, "
                     "import a file whose bytes name a container as raw "
                     "data anyway"),
        CLI_OPT_FLAG(0, "flatten", &a.io.flatten, "copy the guest view "
                     "of an image that has a backing file"),
        CLI_OPT_STRING(0, "allow-backing", "DIR", &a.io.allow_backing,
                       "with --flatten, backing files may also come from "
                       "DIR (default: only the image's directory)"),
        CLI_OPT_STRING(0, "pool", "POOL", &a.io.pool, "the secondary "
                       "pool to hold the template"),
        CLI_OPT_END,
    };
    const struct cli_opt create_opts[] = {
        CATCLI_OPTS(&c),
        CLI_OPT_STRING(0, "from-vm", "VM", &a.from_vm, "the VM whose disks "
                       "become the template (required)"),
        CLI_OPT_STRING(0, "snapshot", "SNAP", &a.snapshot, "take the "
                       "disks of this snapshot of the VM"),
        TMPL_HW_OPTS(&a.io),
        CLI_OPT_STRING(0, "pool", "POOL", &a.io.pool, "the secondary "
                       "pool to hold the template"),
        CLI_OPT_END,
    };
    const struct cli_opt freeze_opts[] = {
        CATCLI_OPTS(&c),
        CLI_OPT_STRING(0, "name", "T", &a.freeze_name, "the instant "
                       "template to make (required)"),
        CLI_OPT_END,
    };
    const struct cli_opt gone_opts[] = {
        CATCLI_OPTS(&c),
        CLI_OPT_FLAG(0, "flatten-dependents", &a.flatten_deps, "make the "
                     "dependents standalone first"),
        CLI_OPT_FLAG(0, "dry-run", &a.dry_run, "print what would be "
                     "flattened and removed, change nothing"),
        CLI_OPT_END,
    };
    const struct catcli_sub subs[] = {
        { "import", tmpl_import, import_opts, 2, -1,
          "NAME IMAGE... [--cpus N] [--memory MiB] [--nics N]\n"
          "                 [-f FMT [--force-raw]] [--flatten [--allow-backing "
          "DIR]] [--pool POOL]",
          "import needs NAME and at least one IMAGE", CATCLI_STORE },
        { "create", tmpl_create, create_opts, 1, 1,
          "NAME --from-vm VM [--snapshot SNAP]",
          "create needs NAME and --from-vm VM", 0 },
        { "list", tmpl_list, common, 0, 0, "[--json]", NULL, CATCLI_STORE },
        { "info", tmpl_info, common, 1, 1, "NAME [--json]",
          "info needs one template name", CATCLI_STORE },
        { "rm", tmpl_rm, gone_opts, 1, 1,
          "NAME [--flatten-dependents] [--dry-run]",
          "rm needs one template name", CATCLI_STORE },
        { "retire", tmpl_retire, gone_opts, 1, 1,
          "NAME [--flatten-dependents] [--dry-run]", "retire needs one template name",
          CATCLI_STORE },
        { "copy", catcli_tmpl_copy, catcli_tmpl_copy_opts(&c), 1, 1,
          "NAME [--pool POOL]", "copy needs one template name", CATCLI_STORE },
        { "freeze", tmpl_freeze, freeze_opts, 1, 1, "VM --name T",
          "freeze needs VM and --name T", 0 },
        { NULL, NULL, NULL, 0, 0, NULL, NULL, 0 },
    };

    vmc_import_opts_init(&a.io);
    return catcli_run_group(&c, subs, &a, argc, argv);
}
