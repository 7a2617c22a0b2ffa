/*
 * img-info.c - "img info" and "img check": image metadata and
 * consistency reports, human or JSON, in qemu-img's layout.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"

/* --------------------------------------------------------------- info */

static const char info_usage[] =
    "usage: " CLI_NAME " img info [-f fmt] [--output=human|json] "
    "[--backing-chain] [-U]\n"
    "                         [--backing-fmt fmt] [--max-depth N] filename\n"
    "\n"
    "Show the format, sizes and backing file of an image (of every image\n"
    "of the chain with --backing-chain, top first).\n";

/* The backing file name resolved like the chain does (allocated). */
static char *
full_backing_name(const struct vmc_image *img,
                  const struct vmc_image_info *info)
{
    char *s = NULL;

    if (info->backing_path) {
        return strdup(info->backing_path);
    }
    if (vmc_backing_path_resolve(vmc_image_filename(img), info->backing_file,
                                 &s) < 0) {
        return NULL;
    }
    return s;
}

static const char *
compat_name(const struct vmc_image_info *info)
{
    return info->qcow2_version == 2 ? "0.10" : "1.1";
}

static const char *
compression_name(enum vmc_compression c)
{
    return c == VMC_COMPRESSION_ZSTD ? "zstd" : "zlib";
}

/* {"type": TYPE, "data": DATA}, taking DATA (filled when @ok); NULL on
 * failure. */
static struct json_object *
format_specific(const char *type, struct json_object *data, bool ok)
{
    struct json_object *spec = ok ? json_object_new_object() : NULL;

    if (!spec || !cli_json_add_str(spec, "type", type)) {
        json_object_put(spec);
        json_object_put(data);
        return NULL;
    }
    if (!cli_json_add_obj(spec, "data", data)) {
        json_object_put(spec);
        return NULL;
    }
    return spec;
}

static struct json_object *
qcow2_specific_json(const struct vmc_image_info *info)
{
    struct json_object *data = json_object_new_object();
    bool ok = data != NULL;
    bool v3 = info->qcow2_version != 2;

    /* Keys in the order qemu-img prints them. */
    ok = ok && cli_json_add_str(data, "compat", compat_name(info));
    ok = ok && cli_json_add_str(data, "compression-type",
                                compression_name(info->compression));
    if (v3) {
        ok = ok && cli_json_add_bool(data, "lazy-refcounts",
                                     info->lazy_refcounts);
    }
    ok = ok && cli_json_add_u64(data, "refcount-bits", info->refcount_bits);
    if (v3) {
        ok = ok && cli_json_add_bool(data, "corrupt", info->corrupt);
        ok = ok && cli_json_add_bool(data, "extended-l2", info->extended_l2);
    }
    return format_specific("qcow2", data, ok);
}

/* A foreign format's kind ("create-type" of a VMDK, as qemu-img). */
static struct json_object *
subformat_json(const struct vmc_image_info *info)
{
    struct json_object *data = json_object_new_object();
    bool ok = data && cli_json_add_str(data, "create-type", info->subformat);

    return format_specific(vmc_format_name(info->format), data, ok);
}

static struct json_object *
info_json(const struct vmc_image *img)
{
    struct vmc_image_info info;
    struct json_object *o = json_object_new_object();
    char *full = NULL;
    bool ok = o != NULL;

    vmc_image_get_info(img, &info);
    if (info.backing_file) {
        full = full_backing_name(img, &info);
        ok = ok && full;
    }
    /* Keys in the order qemu-img prints them. */
    if (ok && info.backing_file && info.backing_format) {
        ok = cli_json_add_str(o, "backing-filename-format",
                              info.backing_format);
    }
    ok = ok && cli_json_add_u64(o, "virtual-size", info.virtual_size);
    ok = ok && cli_json_add_str(o, "filename", vmc_image_filename(img));
    if (info.cluster_size) {
        ok = ok && cli_json_add_u64(o, "cluster-size", info.cluster_size);
    }
    ok = ok && cli_json_add_str(o, "format", vmc_format_name(info.format));
    ok = ok && cli_json_add_u64(o, "actual-size", info.actual_size);
    if (info.format == VMC_FMT_QCOW2) {
        ok = ok && cli_json_add_obj(o, "format-specific",
                                    qcow2_specific_json(&info));
    } else if (info.subformat) {
        ok = ok && cli_json_add_obj(o, "format-specific",
                                    subformat_json(&info));
    }
    if (info.backing_file) {
        ok = ok && cli_json_add_str(o, "full-backing-filename", full);
        ok = ok && cli_json_add_str(o, "backing-filename", info.backing_file);
    }
    ok = ok && cli_json_add_bool(o, "dirty-flag", info.dirty);
    free(full);
    if (!ok) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static int
info_human(const struct vmc_image *img)
{
    struct vmc_image_info info;
    char vsize[32], dsize[32];
    char *full = NULL;

    vmc_image_get_info(img, &info);
    cli_size_to_str(info.virtual_size, vsize, sizeof(vsize));
    cli_size_to_str(info.actual_size, dsize, sizeof(dsize));
    printf("image: %s\nfile format: %s\nvirtual size: %s (%" PRIu64
           " bytes)\ndisk size: %s\n", vmc_image_filename(img),
           vmc_format_name(info.format), vsize, info.virtual_size, dsize);
    if (info.cluster_size) {
        printf("cluster_size: %u\n", info.cluster_size);
    }
    if (info.dirty) {
        printf("cleanly shut down: no\n");
    }
    if (info.backing_file) {
        full = full_backing_name(img, &info);
        if (!full) {
            return cli_error("out of memory");
        }
        printf("backing file: %s", info.backing_file);
        if (strcmp(full, info.backing_file)) {
            printf(" (actual path: %s)", full);
        }
        putchar('\n');
        free(full);
        if (info.backing_format) {
            printf("backing file format: %s\n", info.backing_format);
        }
    }
    if (info.format == VMC_FMT_QCOW2) {
        printf("Format specific information:\n    compat: %s\n"
               "    compression type: %s\n", compat_name(&info),
               compression_name(info.compression));
        if (info.qcow2_version != 2) {
            printf("    lazy refcounts: %s\n",
                   info.lazy_refcounts ? "true" : "false");
        }
        printf("    refcount bits: %u\n", info.refcount_bits);
        if (info.qcow2_version != 2) {
            printf("    corrupt: %s\n    extended l2: %s\n",
                   info.corrupt ? "true" : "false",
                   info.extended_l2 ? "true" : "false");
        }
    } else if (info.subformat) {
        printf("Format specific information:\n    create type: %s\n",
               info.subformat);
    }
    return 0;
}

static int
print_info(struct vmc_image *img, bool json, bool chain)
{
    struct json_object *list = NULL, *o;
    const struct vmc_image *layer;
    int r = 0;

    if (!json) {
        for (layer = img; layer && !r; layer = vmc_image_backing(layer)) {
            if (layer != img) {
                putchar('\n');
            }
            r = info_human(layer);
            if (!chain) {
                break;
            }
        }
        return r;
    }
    if (!chain) {
        o = info_json(img);
        if (!o) {
            return cli_error("out of memory");
        }
        cli_json_print(stdout, o);
        json_object_put(o);
        return 0;
    }
    list = json_object_new_array();
    for (layer = img; layer && list; layer = vmc_image_backing(layer)) {
        o = info_json(layer);
        if (!o || json_object_array_add(list, o) < 0) {
            json_object_put(o);
            json_object_put(list);
            list = NULL;
        }
    }
    if (!list) {
        return cli_error("out of memory");
    }
    cli_json_print(stdout, list);
    json_object_put(list);
    return 0;
}

int
cmd_img_info(int argc, char **argv)
{
    static const struct cli_usage u = { .verb = "img info",
                                        .synopsis = info_usage };
    struct cli_open open_opts = { 0 };
    struct vmc_image *img = NULL;
    bool json = false, chain = false;
    const struct cli_opt opts[] = {
        CLI_OPTS_OPEN(&open_opts),
        CLI_OPTS_SHARE(&open_opts),
        CLI_OPTS_OUTPUT(&json),
        CLI_OPT_FLAG(0, "backing-chain", &chain, "the whole chain, top "
                     "first"),
        CLI_OPT_END,
    };
    int r = cli_parse_image_verb(opts, &u, argc, argv, 1);

    if (r) {
        return CLI_PARSE_EXIT(r);
    }
    r = cli_open_image(&img, argv[optind], &open_opts,
                       chain ? 0 : VMC_OPEN_NO_BACKING);
    if (r) {
        return r;
    }
    r = print_info(img, json, chain);
    vmc_image_close(img);
    return r;
}

/* -------------------------------------------------------------- check */

static const char check_usage[] =
    "usage: " CLI_NAME " img check [-q] [-f fmt] [-r leaks|all] "
    "[--output=human|json] [-U] filename\n"
    "\n"
    "Check the consistency of an image (its top layer). Exit status:\n"
    "0 consistent, 1 check not completed, 2 corruptions, 3 only leaks,\n"
    "63 the format does not support checks.\n";

static void
report_line(const char *line, void *opaque)
{
    (void)opaque;
    fflush(stdout);
    fprintf(stderr, "%s\n", line);
}

static void
check_human(const struct vmc_check_result *res, bool quiet)
{
    if (quiet) {
        return;
    }
    if (!res->corruptions && !res->leaks && !res->check_errors) {
        printf("No errors were found on the image.\n");
    } else {
        if (res->corruptions) {
            printf("\n%" PRIu64 " errors were found on the image.\nData may "
                   "be corrupted, or further writes to the image may "
                   "corrupt it.\n", res->corruptions);
        }
        if (res->leaks) {
            printf("\n%" PRIu64 " leaked clusters were found on the image.\n"
                   "This means waste of disk space, but no harm to data.\n",
                   res->leaks);
        }
        if (res->check_errors) {
            printf("\n%" PRIu64 " internal errors have occurred during the "
                   "check.\n", res->check_errors);
        }
    }
    if (res->total_clusters && res->allocated_clusters) {
        printf("%" PRIu64 "/%" PRIu64 " = %0.2f%% allocated, %0.2f%% "
               "fragmented, %0.2f%% compressed clusters\n",
               res->allocated_clusters, res->total_clusters,
               res->allocated_clusters * 100.0 / res->total_clusters,
               res->fragmented_clusters * 100.0 / res->allocated_clusters,
               res->compressed_clusters * 100.0 / res->allocated_clusters);
    }
    if (res->image_end_offset) {
        printf("Image end offset: %" PRIu64 "\n", res->image_end_offset);
    }
}

static int
check_json(const struct vmc_check_result *res, const char *filename,
           const char *format)
{
    /* Keys in the order qemu-img prints them. */
    const struct cli_json_field fields[] = {
        CLI_JSON_FIELD_U64_SET("image-end-offset", res->image_end_offset),
        CLI_JSON_FIELD_U64_SET("compressed-clusters",
                               res->compressed_clusters),
        CLI_JSON_FIELD_U64_SET("total-clusters", res->total_clusters),
        CLI_JSON_FIELD_U64_SET("corruptions", res->corruptions),
        CLI_JSON_FIELD_U64_SET("corruptions-fixed", res->corruptions_fixed),
        CLI_JSON_FIELD_U64("check-errors", res->check_errors),
        CLI_JSON_FIELD_U64_SET("leaks", res->leaks),
        CLI_JSON_FIELD_U64_SET("leaks-fixed", res->leaks_fixed),
        CLI_JSON_FIELD_U64_SET("allocated-clusters", res->allocated_clusters),
        CLI_JSON_FIELD_STR("filename", filename),
        CLI_JSON_FIELD_STR("format", format),
        CLI_JSON_FIELD_U64_SET("fragmented-clusters",
                               res->fragmented_clusters),
    };
    struct json_object *o = json_object_new_object();
    bool ok = o && cli_json_add_table(o, fields);

    if (!ok) {
        json_object_put(o);
        return cli_error("out of memory");
    }
    cli_json_print(stdout, o);
    json_object_put(o);
    return 0;
}

static int
parse_repair(const char *s, unsigned *out)
{
    if (!strcmp(s, "leaks")) {
        *out = VMC_REPAIR_LEAKS;
    } else if (!strcmp(s, "all")) {
        *out = VMC_REPAIR_LEAKS | VMC_REPAIR_ERRORS;
    } else {
        return cli_error("invalid -r value '%s' (leaks or all)", s);
    }
    return 0;
}

static int
opt_repair(const char *arg, void *dest)
{
    return parse_repair(arg, dest) ? CLI_EXIT_FAIL : 0;
}

/* Run the check (and the double check after a repair). Returns an exit
 * status, or -1 with *@res filled in when the check completed. */
static int
run_check(struct vmc_image *img, unsigned repair, bool json, bool quiet,
          struct vmc_check_result *res)
{
    struct vmc_check_result first;
    struct vmc_error err = { 0 };
    int r;

    r = vmc_image_check(img, repair, res, report_line, NULL, &err);
    if (r == -ENOTSUP) {
        cli_error_lib(&err, r);
        return 63;
    }
    if (r < 0) {
        cli_error("check failed: %s", err.msg[0] ? err.msg : strerror(-r));
        return CLI_EXIT_FAIL;
    }
    if (!res->corruptions_fixed && !res->leaks_fixed) {
        return -1;
    }
    first = *res;
    if (!json && !quiet) {
        printf("The following inconsistencies were found and repaired:\n\n"
               "    %" PRIu64 " leaked clusters\n    %" PRIu64
               " corruptions\n\nDouble checking the fixed image now...\n",
               first.leaks_fixed, first.corruptions_fixed);
    }
    memset(&err, 0, sizeof(err));
    r = vmc_image_check(img, VMC_REPAIR_NONE, res, report_line, NULL, &err);
    if (r < 0) {
        cli_error("check failed: %s", err.msg[0] ? err.msg : strerror(-r));
        return CLI_EXIT_FAIL;
    }
    res->leaks_fixed = first.leaks_fixed;
    res->corruptions_fixed = first.corruptions_fixed;
    return -1;
}

int
cmd_img_check(int argc, char **argv)
{
    static const struct cli_usage u = { .verb = "img check",
                                        .synopsis = check_usage };
    struct cli_open open_opts = { 0 };
    struct vmc_check_result res;
    struct vmc_image *img = NULL;
    bool json = false, quiet = false;
    unsigned repair = VMC_REPAIR_NONE;
    const struct cli_opt opts[] = {
        CLI_OPTS_OPEN(&open_opts),
        CLI_OPTS_SHARE(&open_opts),
        CLI_OPTS_OUTPUT(&json),
        CLI_OPT_CALL('r', "repair", "leaks|all", &repair, opt_repair,
                     "repair leaked clusters, or all errors"),
        CLI_OPT_FLAG('q', NULL, &quiet, "quiet"),
        CLI_OPT_SRC_CACHE,
        CLI_OPT_END,
    };
    int r = cli_parse_image_verb(opts, &u, argc, argv, 1);

    if (r) {
        return CLI_PARSE_EXIT(r);
    }
    if (repair && open_opts.force_share) {
        return cli_error("-U cannot be used with -r (repair writes to the "
                         "image)");
    }
    r = cli_open_image(&img, argv[optind], &open_opts,
                       VMC_OPEN_CHECK | VMC_OPEN_NO_BACKING |
                       (repair ? VMC_OPEN_RDWR : 0));
    if (r) {
        return r;
    }
    r = run_check(img, repair, json, quiet, &res);
    if (r >= 0) {
        goto out;
    }
    if (json) {
        r = check_json(&res, argv[optind],
                       vmc_format_name(vmc_image_format(img)));
        if (r) {
            goto out;
        }
    } else {
        check_human(&res, quiet);
    }
    if (res.check_errors) {
        r = cli_error("check failed: %" PRIu64 " internal errors",
                      res.check_errors);
    } else if (res.corruptions) {
        r = 2;
    } else if (res.leaks) {
        r = 3;
    } else {
        r = 0;
    }
out:
    if (vmc_image_close(img) < 0 && r == 0) {
        r = cli_error("error while closing '%s'", argv[optind]);
    }
    return r;
}
