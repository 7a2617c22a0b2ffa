/*
 * cmd-export.c - "vm-clone export VM[@SNAP] --format F --output DIR": one
 * standalone image per disk of a VM (its guest view, backing chain
 * flattened), in a format other hypervisors take (qcow2, raw, vmdk, vhdx,
 * vpc, vdi; the writers of src/format). Each file is written under a
 * hidden temporary name in DIR and linked to its final name only if that
 * name is free, so an export never replaces a file it did not make.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cat-cli.h"

/* The file name extension of each export format. */
static const struct {
    const char *format, *ext;
} export_formats[] = {
    { "qcow2", "qcow2" }, { "raw", "img" }, { "vmdk", "vmdk" },
    { "vhdx", "vhdx" }, { "vpc", "vhd" }, { "vdi", "vdi" },
};

struct export_opts {
    const char *format, *output, *options, *snapshot;
};
static struct export_opts export_o;

static const char *
export_ext(const char *format)
{
    size_t i;

    for (i = 0; i < sizeof(export_formats) / sizeof(export_formats[0]); i++) {
        if (!strcmp(format, export_formats[i].format)) {
            return export_formats[i].ext;
        }
    }
    return NULL;
}

/* The image of each disk to export: the VM's disks (@snap NULL) or the
 * layers snapshot @snap froze, as rows {disk, path}. */
static struct json_object *
export_sources(struct catcli *c, const char *vm, const char *snap)
{
    const char *params[2] = { vm, snap };
    struct json_object *rows, *out;
    size_t i;

    if (!snap) {
        return catcli_report(c, VMC_REPORT_VM_DISKS, params, 1);
    }
    rows = catcli_report(c, VMC_REPORT_SNAPSHOT_LAYERS, params, 2);
    out = rows ? json_object_new_array() : NULL;
    for (i = 0; rows && i < json_object_array_length(rows); i++) {
        struct json_object *r = json_object_array_get_idx(rows, i);
        struct json_object *d = json_object_new_object();

        json_object_object_add(d, "disk", json_object_get(
            json_object_object_get(r, "disk")));
        json_object_object_add(d, "path", json_object_get(
            json_object_object_get(r, "backing")));
        json_object_array_add(out, d);
    }
    json_object_put(rows);
    return out;
}

/* Convert the guest view of @src into a new file @dst: written as a
 * hidden temporary in @dst's directory, then linked to @dst (EEXIST if
 * taken meanwhile: nothing replaced). */
static int
export_one(const char *src, const char *dst, const struct export_opts *o,
           struct vmc_error *err)
{
    struct vmc_open_opts oo = { .format = VMC_FMT_QCOW2 };
    struct vmc_convert_opts co;
    struct vmc_image *img = NULL;
    const char *slash = strrchr(dst, '/');
    char *tmp = NULL;
    int r;

    if (asprintf(&tmp, "%.*s/.%s.export-%d", (int)(slash - dst), dst,
                 slash + 1, (int)getpid()) < 0) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    vmc_convert_opts_init(&co);
    r = vmc_convert_opts_set_target(&co, o->format, o->options, err);
    /* a temporary name of ours that a killed export left is ours to reuse */
    r = r ? r : (access(tmp, F_OK) == 0 ? vmc_error_set(err, -EEXIST,
                 "'%s' exists (left by an interrupted export?)", tmp) : 0);
    r = r ? r : vmc_image_open(&img, src, &oo, err);
    r = r ? r : vmc_convert(img, tmp, &co, err);
    vmc_image_close(img);
    if (r == 0 && link(tmp, dst) < 0) {
        r = vmc_error_set(err, -errno, "cannot create '%s': %s", dst,
                          strerror(errno));
    }
    if (img || r == 0) {
        unlink(tmp);                /* made by this export */
    }
    free(tmp);
    return r;
}

static int
export_run(struct catcli *c, void *ctx, int argc, char **argv)
{
    struct export_opts eo = export_o, *o = &eo;
    struct vmc_error err = { 0 };
    struct json_object *srcs, *files;
    const char *snap = o->snapshot, *ext;
    char *vm = argv[0];
    size_t i, n;
    int r = catcli_snapref(c->verb, vm, o->snapshot, &snap);
    struct stat st;

    (void)ctx;
    (void)argc;
    if (r) {
        return r;
    }
    snap = snap ? snap : o->snapshot;
    o->format = o->format ? o->format : "qcow2";
    ext = export_ext(o->format);
    if (!ext) {
        return cli_usage_error(c->verb, "--format is one of qcow2, raw, "
                               "vmdk, vhdx, vpc, vdi");
    }
    if (!o->output) {
        return cli_usage_error(c->verb, "--output DIR is required");
    }
    if (stat(o->output, &st) < 0 || !S_ISDIR(st.st_mode)) {
        return catcli_error(CLI_EXIT_NOT_FOUND, "'%s' is not a directory",
                            o->output);
    }
    if (!catcli_vm_exists(c, vm)) {
        return catcli_error(CLI_EXIT_NOT_FOUND, "no VM named '%s'", vm);
    }
    srcs = export_sources(c, vm, snap);
    n = srcs ? json_object_array_length(srcs) : 0;
    if (n == 0) {
        json_object_put(srcs);
        return snap ? catcli_error(CLI_EXIT_NOT_FOUND, "VM '%s' has no "
                                   "snapshot '%s'", vm, snap)
                    : catcli_error(CLI_EXIT_FAIL, "VM '%s' has no disks", vm);
    }
    files = json_object_new_array();
    for (i = 0; r == 0 && i < n; i++) {
        struct json_object *d = json_object_array_get_idx(srcs, i);
        char *dst = NULL;

        if (asprintf(&dst, "%s/%s%s%s-disk%d.%s", o->output, vm,
                     snap ? "@" : "", snap ? snap : "",
                     (int)catcli_jint(d, "disk"), ext) < 0) {
            r = catcli_error(CLI_EXIT_FAIL, "out of memory");
            break;
        }
        if (access(dst, F_OK) == 0) {
            r = catcli_error(CLI_EXIT_CONFLICT, "'%s' exists; an export "
                             "never replaces a file", dst);
        } else if ((r = export_one(catcli_jstr(d, "path"), dst, o,
                                   &err)) < 0) {
            r = r == -EEXIST ? catcli_error(CLI_EXIT_CONFLICT, "%s",
                                            err.msg)
                             : catcli_fail(&err, r);
        } else {
            json_object_array_add(files, json_object_new_string(dst));
            if (!c->quiet && !c->json) {
                printf("%s\n", dst);
            }
        }
        free(dst);
    }
    if (r == 0 && c->json) {
        struct json_object *doc = json_object_new_object();

        cli_json_add_str(doc, "vm", vm);
        /* null for the VM itself: the key is always there */
        json_object_object_add(doc, "snapshot", snap ?
                               json_object_new_string(snap) : NULL);
        cli_json_add_str(doc, "format", o->format);
        cli_json_add_obj(doc, "files", json_object_get(files));
        catcli_json_done(doc);
    }
    json_object_put(files);
    json_object_put(srcs);
    return r;
}

static const char export_usage[] =
    "usage: " CLI_NAME " export VM[@SNAP] --output DIR [--format F] "
    "[-o OPTIONS]\n"
    "                      [--snapshot SNAP] [--json]\n\n"
    "Write each disk of VM (or of its snapshot SNAP) as one standalone "
    "image in DIR,\nnamed VM[@SNAP]-diskN.EXT: its guest view with the "
    "backing chain flattened.\n"
    "F: qcow2 (default), raw, vmdk, vhdx, vpc, vdi; -o takes the writer's "
    "options\n(e.g. subformat=streamOptimized, as img convert -o). An "
    "existing file is never\nreplaced (exit 4).\n";

static const struct cli_opt export_opts_table[] = {
    CLI_OPT_STRING(0, "format", "F", &export_o.format, "qcow2 (default), "
                   "raw, vmdk, vhdx, vpc or vdi"),
    CLI_OPT_STRING(0, "output", "DIR", &export_o.output, "the directory "
                   "the images go to"),
    CLI_OPT_STRING('o', NULL, "OPTIONS", &export_o.options, "the writer's "
                   "options, as img convert -o"),
    CLI_OPT_STRING(0, "snapshot", "SNAP", &export_o.snapshot, "export the "
                   "snapshot SNAP (or VM@SNAP)"),
    CLI_OPT_END,
};

const struct catcli_cmd catcli_export = {
    { "export", export_run, export_opts_table, 1, 1, NULL,
      "expecting one VM name", CATCLI_STORE },
    export_usage,
};
