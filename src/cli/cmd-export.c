/*
 * cmd-export.c - "vm-clone export VM[@SNAP] --format F --output DIR": one
 * standalone image per disk of a VM (its guest view, backing chain
 * flattened), in a format other hypervisors take (qcow2, raw, vmdk, vhdx,
 * vpc, vdi; the writers of src/format), or an OVF appliance (ova:
 * streamOptimized disks, vmc_ova_write). Each file is written under a
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
           uint64_t *size, struct vmc_error *err)
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
    /* a file at our temporary name (a killed export's?) is not ours: refused */
    r = r ? r : (access(tmp, F_OK) == 0 ? vmc_error_set(err, -EEXIST,
                 "'%s' exists (left by an interrupted export?)", tmp) : 0);
    r = r ? r : vmc_image_open(&img, src, &oo, err);
    *size = img ? vmc_image_size(img) : 0;
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

/* --json: {"vm", "snapshot" (null for the VM itself), "format", "files"};
 * takes @files. */
static void
print_export_json(const char *vm, const char *snap, const char *format,
                  struct json_object *files)
{
    struct json_object *doc = json_object_new_object();

    cli_json_add_str(doc, "vm", vm);
    json_object_object_add(doc, "snapshot", snap ?
                           json_object_new_string(snap) : NULL);
    cli_json_add_str(doc, "format", format);
    cli_json_add_obj(doc, "files", files);
    catcli_json_done(doc);
}

/* --format ova: the disks as streamOptimized VMDKs in a private scratch
 * directory of @dir, then the appliance DIR/VM[@SNAP].ova (vmc_ova_write)
 * made from them and the VM's hardware; the scratch files are ours and
 * go afterwards. @return the exit status. */
static int
export_ova(struct catcli *c, const char *vm, const char *snap,
           const char *dir, struct json_object *srcs)
{
    const struct export_opts so = { .format = "vmdk",
                                    .options = "subformat=streamOptimized" };
    size_t n = json_object_array_length(srcs), i, made = 0;
    struct vmc_ova_disk *disks = calloc(n, sizeof(*disks));
    struct json_object *info = catcli_vm_json(c, vm), *nics = NULL;
    struct vmc_error err = { 0 };
    char scratch[PATH_MAX], *dst = NULL, *name = NULL;
    bool made_dir = false;
    int r = 0;

    snprintf(scratch, sizeof(scratch), "%s/.%s.ova-%d", dir, vm, (int)getpid());
    if (!disks || !info || asprintf(&name, "%s%s%s", vm, snap ? "@" : "",
                                    snap ? snap : "") < 0 ||
        asprintf(&dst, "%s/%s.ova", dir, name) < 0) {
        r = catcli_error(CLI_EXIT_FAIL, "out of memory");
    } else if (access(dst, F_OK) == 0) {
        r = catcli_error(CLI_EXIT_CONFLICT, "'%s' exists; an export never "
                         "replaces a file", dst);
    } else if (mkdir(scratch, 0700) < 0) {
        r = catcli_error(CLI_EXIT_FAIL, "cannot make '%s': %s", scratch,
                         strerror(errno));
    } else {
        made_dir = true;
    }
    for (i = 0; r == 0 && i < n; i++, made++) {
        struct json_object *d = json_object_array_get_idx(srcs, i);
        char *f = NULL;

        if (asprintf(&f, "%s/%s-disk%d.vmdk", scratch, name,
                     (int)catcli_jint(d, "disk")) < 0) {
            r = catcli_error(CLI_EXIT_FAIL, "out of memory");
            break;
        }
        disks[i].file = f;
        if ((r = export_one(catcli_jstr(d, "path"), f, &so,
                            &disks[i].capacity, &err)) < 0) {
            r = catcli_fail(&err, r);
        }
    }
    if (r == 0) {
        struct vmc_ova_spec spec = {
            .name = name, .cpus = (unsigned)catcli_jint(info, "cpus"),
            .memory_mb = (uint64_t)catcli_jint(info, "memory_mb"),
            .ndisks = n, .disks = disks,
        };

        json_object_object_get_ex(info, "nics", &nics);
        spec.nics = nics ? (unsigned)json_object_array_length(nics) : 0;
        r = vmc_ova_write(dst, &spec, &err);
        r = r == -EEXIST ? catcli_error(CLI_EXIT_CONFLICT, "%s", err.msg)
            : r < 0 ? catcli_fail(&err, r) : 0;
    }
    if (r == 0 && c->json) {
        struct json_object *files = json_object_new_array();

        json_object_array_add(files, json_object_new_string(dst));
        print_export_json(vm, snap, "ova", files);
    } else if (r == 0 && !c->quiet) {
        printf("%s\n", dst);
    }
    for (i = 0; i < made; i++) {
        if (disks[i].file) {
            unlink(disks[i].file);      /* made by this export */
            free((char *)disks[i].file);
        }
    }
    if (made_dir) {
        rmdir(scratch);                 /* ours, emptied above */
    }
    free(disks);
    free(dst);
    free(name);
    json_object_put(info);
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
    uint64_t size;
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
    if (!strcmp(o->format, "ova") && o->options) {
        return cli_usage_error(c->verb, "-o does not apply to --format ova");
    }
    ext = strcmp(o->format, "ova") ? export_ext(o->format) : "vmdk";
    if (!ext) {
        return cli_usage_error(c->verb, "--format is one of qcow2, raw, "
                               "vmdk, vhdx, vpc, vdi, ova");
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
    if (!strcmp(o->format, "ova")) {
        r = export_ova(c, vm, snap, o->output, srcs);
        json_object_put(srcs);
        return r;
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
        } else if ((r = export_one(catcli_jstr(d, "path"), dst, o, &size,
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
        print_export_json(vm, snap, o->format, files);
    } else {
        json_object_put(files);
    }
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
    "options\n(e.g. subformat=streamOptimized, as img convert -o). "
    "ova: one OVF appliance\nDIR/VM[@SNAP].ova (descriptor, SHA-256 "
    "manifest, streamOptimized disks).\nAn existing file is never "
    "replaced (exit 4).\n";

static const struct cli_opt export_opts_table[] = {
    CLI_OPT_STRING(0, "format", "F", &export_o.format, "qcow2 (default), "
                   "raw, vmdk, vhdx, vpc, vdi or ova"),
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
