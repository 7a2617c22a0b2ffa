/*
 * img-layers.c - the verbs that reshape a chain while keeping the guest
 * view: "img flatten" (linked -> full), "img relink" (full -> linked),
 * "img consolidate" (collapse intermediate layers), and "img du" (space
 * accounting per layer).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

enum {
    OPT_JSON = 0x200,
    OPT_KEEP,
    OPT_USERS,
    OPT_NO_SCAN,
    OPT_METHOD,
    OPT_NEW_LAYER,
    OPT_NO_EXTL2,
};

static void
size_str(uint64_t v, char *buf, size_t len)
{
    cli_size_to_str(v, buf, len);
}

/* ------------------------------------------------------------ flatten */

static const char flatten_usage[] =
    "usage: " CLI_NAME " img flatten [-q] [-p] [-f fmt] [--backing-fmt fmt] "
    "IMG\n"
    "\n"
    "Copy into IMG everything its backing chain provides, then drop the\n"
    "backing link (linked clone -> full image). Crash-safe: IMG reads the\n"
    "same at every instant.\n";

int
cmd_img_flatten(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, OPT_HELP },
        { "backing-fmt", required_argument, NULL, OPT_BACKING_FMT },
        { "max-depth", required_argument, NULL, OPT_MAX_DEPTH },
        { NULL, 0, NULL, 0 },
    };
    static const char verb[] = "img flatten";
    struct cli_open open_opts = { 0 };
    struct cli_progress progress;
    struct vmc_error err = { 0 };
    struct vmc_image *img = NULL;
    bool quiet = false, show = false;
    int c, r, r2;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":f:pqh", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': open_opts.format = optarg; break;
        case 'p': show = true; break;
        case 'q': quiet = true; break;
        case OPT_BACKING_FMT:
        case OPT_MAX_DEPTH:
            if (cli_open_option(&open_opts, c, optarg, verb)) {
                return CLI_EXIT_FAIL;
            }
            break;
        case 'h':
        case OPT_HELP:
            fputs(flatten_usage, stdout);
            return CLI_EXIT_OK;
        default:
            return cli_getopt_error(verb, c, argv);
        }
    }
    if (optind + 1 != argc) {
        return cli_usage_error(verb, optind >= argc ? "expecting image file "
                               "name" : "too many arguments");
    }
    r = cli_open_image(&img, argv[optind], &open_opts, VMC_OPEN_RDWR);
    if (r) {
        return r;
    }
    cli_progress_start(&progress, show && !quiet);
    r = vmc_flatten(img, cli_progress_cb, &progress, &err);
    cli_progress_end(&progress);
    r2 = vmc_image_close(img);
    if (r < 0) {
        return cli_error_lib(&err, r);
    }
    if (r2 < 0) {
        return cli_error("error while closing '%s': %s", argv[optind],
                         strerror(-r2));
    }
    if (!quiet) {
        printf("Image '%s' flattened.\n", argv[optind]);
    }
    return CLI_EXIT_OK;
}

/* ------------------------------------------------------------- relink */

static const char relink_usage[] =
    "usage: " CLI_NAME " img relink [-q] [-p] [-f fmt] -b TEMPLATE "
    "[-F fmt] [-o options]\n"
    "           [--no-extended-l2] [--json] IMG\n"
    "\n"
    "Rewrite IMG as a linked clone of TEMPLATE that keeps only what differs\n"
    "(compared per 4 KiB subcluster; per cluster with --no-extended-l2).\n"
    "TEMPLATE is relative to IMG's directory, as with rebase -b; -F is its\n"
    "format (default: probed). The guest view is unchanged; the new image\n"
    "replaces IMG atomically. Reports the space before and after.\n";

int
cmd_img_relink(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, OPT_HELP },
        { "json", no_argument, NULL, OPT_JSON },
        { "no-extended-l2", no_argument, NULL, OPT_NO_EXTL2 },
        { NULL, 0, NULL, 0 },
    };
    static const char verb[] = "img relink";
    struct vmc_relink_opts o;
    struct vmc_relink_result res;
    struct vmc_open_opts io = { 0 };
    struct cli_create_opts co = { 0 };
    struct cli_progress progress;
    struct vmc_error err = { 0 };
    const char *tmpl = NULL, *tfmt = NULL, *fmt = NULL;
    bool quiet = false, show = false, json = false, no_extl2 = false;
    char before[32], after[32];
    int c, r = CLI_EXIT_FAIL;

    vmc_relink_opts_init(&o);
    co.c = o.create;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":f:b:F:o:pqh", longopts,
                            NULL)) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'b': tmpl = optarg; break;
        case 'F': tfmt = optarg; break;
        case 'o':
            if (cli_parse_create_options(&co, optarg)) {
                goto out;
            }
            break;
        case 'p': show = true; break;
        case 'q': quiet = true; break;
        case OPT_JSON: json = true; break;
        case OPT_NO_EXTL2: no_extl2 = true; break;
        case 'h':
        case OPT_HELP:
            fputs(relink_usage, stdout);
            r = CLI_EXIT_OK;
            goto out;
        default:
            r = cli_getopt_error(verb, c, argv);
            goto out;
        }
    }
    if (optind + 1 != argc) {
        r = cli_usage_error(verb, optind >= argc ? "expecting image file "
                            "name" : "too many arguments");
        goto out;
    }
    if (!tmpl || !*tmpl) {
        r = cli_usage_error(verb, "a template is required (-b TEMPLATE)");
        goto out;
    }
    if (fmt && cli_parse_format(fmt, &io.format)) {
        goto out;
    }
    o.create = co.c;
    if (no_extl2) {
        o.create.extended_l2 = false;
        o.create.cluster_size = 65536;
    }
    if (!tfmt) {
        /* Probe the template (it is named by the user). */
        struct vmc_open_opts po = { .flags = VMC_OPEN_NO_BACKING |
                                    VMC_OPEN_FORCE_SHARE };
        struct vmc_image *t = NULL;
        char *path = NULL;

        if (vmc_backing_path_resolve(argv[optind], tmpl, &path) < 0) {
            cli_error("out of memory");
            goto out;
        }
        r = vmc_image_open(&t, path, &po, &err);
        free(path);
        if (r < 0) {
            r = cli_error_lib(&err, r);
            goto out;
        }
        tfmt = vmc_format_name(vmc_image_format(t));
        vmc_image_close(t);
    }
    o.img_open = &io;
    cli_progress_start(&progress, show && !quiet && !json);
    o.progress = cli_progress_cb;
    o.opaque = &progress;
    r = vmc_relink(argv[optind], tmpl, tfmt, &o, &res, &err);
    cli_progress_end(&progress);
    if (r < 0) {
        r = cli_error_lib(&err, r);
        goto out;
    }
    if (json) {
        struct json_object *obj = json_object_new_object();

        cli_json_add_str(obj, "image", argv[optind]);
        cli_json_add_str(obj, "template", tmpl);
        cli_json_add_u64(obj, "bytes-before", res.bytes_before);
        cli_json_add_u64(obj, "bytes-after", res.bytes_after);
        cli_json_add_u64(obj, "bytes-freed",
                         res.bytes_before > res.bytes_after ?
                         res.bytes_before - res.bytes_after : 0);
        cli_json_add_u64(obj, "bytes-kept", res.bytes_written);
        cli_json_print(stdout, obj);
        json_object_put(obj);
    } else if (!quiet) {
        size_str(res.bytes_before, before, sizeof(before));
        size_str(res.bytes_after, after, sizeof(after));
        printf("Image '%s' relinked to '%s': %s -> %s on disk "
               "(%" PRIu64 " bytes freed, %" PRIu64 " bytes differ)\n",
               argv[optind], tmpl, before, after,
               res.bytes_before > res.bytes_after ?
               res.bytes_before - res.bytes_after : 0, res.bytes_written);
    }
    r = CLI_EXIT_OK;
out:
    cli_create_opts_release(&co);
    return r;
}

/* -------------------------------------------------------- consolidate */

static const char consolidate_usage[] =
    "usage: " CLI_NAME " img consolidate [-q] [-p] [-f fmt] [--keep BASE]\n"
    "           [--method auto|commit|pull|new-layer] [--users FILE...]\n"
    "           [--no-scan] [--new-layer NAME] [--json] TOP\n"
    "\n"
    "Collapse the layers between TOP and BASE (default: the bottom layer)\n"
    "into one; TOP's guest view is unchanged. The method moving the fewest\n"
    "bytes is chosen among those allowed: a layer other images use is never\n"
    "written. Users are the files given with --users (list them before\n"
    "TOP, or end the list with --) and, unless --no-scan, the images in the\n"
    "chain's directories whose backing file is the layer.\n";

static int
parse_method(const char *s, enum vmc_consolidate_method *m)
{
    if (!strcmp(s, "auto")) {
        *m = VMC_CONSOLIDATE_NONE;
    } else if (!strcmp(s, "commit")) {
        *m = VMC_CONSOLIDATE_COMMIT;
    } else if (!strcmp(s, "pull")) {
        *m = VMC_CONSOLIDATE_PULL;
    } else if (!strcmp(s, "new-layer")) {
        *m = VMC_CONSOLIDATE_NEW_LAYER;
    } else {
        return cli_error("invalid --method '%s' (auto, commit, pull or "
                         "new-layer)", s);
    }
    return 0;
}

int
cmd_img_consolidate(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, OPT_HELP },
        { "json", no_argument, NULL, OPT_JSON },
        { "keep", required_argument, NULL, OPT_KEEP },
        { "users", required_argument, NULL, OPT_USERS },
        { "no-scan", no_argument, NULL, OPT_NO_SCAN },
        { "method", required_argument, NULL, OPT_METHOD },
        { "new-layer", required_argument, NULL, OPT_NEW_LAYER },
        { "backing-fmt", required_argument, NULL, OPT_BACKING_FMT },
        { "max-depth", required_argument, NULL, OPT_MAX_DEPTH },
        { NULL, 0, NULL, 0 },
    };
    static const char verb[] = "img consolidate";
    struct vmc_consolidate_opts o = { 0 };
    struct vmc_consolidate_result res;
    struct cli_open open_opts = { 0 };
    struct cli_progress progress;
    struct vmc_error err = { 0 };
    struct vmc_image *img = NULL;
    const char **users = NULL;
    const char *top = NULL;
    bool quiet = false, show = false, json = false;
    size_t nusers = 0;
    int c, r, r2;

    users = calloc((size_t)argc, sizeof(*users));
    if (!users) {
        return cli_error("out of memory");
    }
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":f:pqh", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': open_opts.format = optarg; break;
        case 'p': show = true; break;
        case 'q': quiet = true; break;
        case OPT_JSON: json = true; break;
        case OPT_KEEP: o.keep = optarg; break;
        case OPT_NO_SCAN: o.no_scan = true; break;
        case OPT_NEW_LAYER: o.new_layer = optarg; break;
        case OPT_USERS:
            /* --users A B C ...: every following non-option word up to
             * the last one (TOP) or "--". */
            users[nusers++] = optarg;
            while (optind < argc - 1 && argv[optind][0] != '-') {
                users[nusers++] = argv[optind++];
            }
            if (optind < argc - 1 && !strcmp(argv[optind], "--")) {
                optind++;
            }
            break;
        case OPT_METHOD:
            if (parse_method(optarg, &o.method)) {
                free(users);
                return CLI_EXIT_FAIL;
            }
            break;
        case OPT_BACKING_FMT:
        case OPT_MAX_DEPTH:
            if (cli_open_option(&open_opts, c, optarg, verb)) {
                free(users);
                return CLI_EXIT_FAIL;
            }
            break;
        case 'h':
        case OPT_HELP:
            fputs(consolidate_usage, stdout);
            free(users);
            return CLI_EXIT_OK;
        default:
            free(users);
            return cli_getopt_error(verb, c, argv);
        }
    }
    if (optind + 1 != argc) {
        free(users);
        return cli_usage_error(verb, optind >= argc ? "expecting image file "
                               "name" : "too many arguments");
    }
    top = argv[optind];
    o.users = users;
    o.nusers = nusers;
    r = cli_open_image(&img, top, &open_opts, VMC_OPEN_RDWR);
    if (r) {
        free(users);
        return r;
    }
    cli_progress_start(&progress, show && !quiet && !json);
    o.progress = cli_progress_cb;
    o.opaque = &progress;
    r = vmc_consolidate(img, &o, &res, &err);
    cli_progress_end(&progress);
    r2 = vmc_image_close(img);
    free(users);
    if (r < 0) {
        return cli_error_lib(&err, r);
    }
    if (r2 < 0) {
        return cli_error("error while closing '%s': %s", top, strerror(-r2));
    }
    if (json) {
        struct json_object *obj = json_object_new_object();

        cli_json_add_str(obj, "image", top);
        cli_json_add_str(obj, "method", vmc_consolidate_method_name(
                         res.method));
        cli_json_add_u64(obj, "layers-merged", res.layers_merged);
        cli_json_add_u64(obj, "bytes-commit", res.bytes_commit);
        cli_json_add_u64(obj, "bytes-pull", res.bytes_pull);
        cli_json_add_u64(obj, "bytes-moved", res.bytes_moved);
        cli_json_add_str(obj, "merged-layer", res.merged);
        cli_json_print(stdout, obj);
        json_object_put(obj);
    } else if (!quiet) {
        if (res.method == VMC_CONSOLIDATE_NONE) {
            printf("Nothing to consolidate in '%s'.\n", top);
        } else {
            printf("Consolidated %u layers of '%s' into '%s' by %s "
                   "(%" PRIu64 " bytes moved; commit %" PRIu64
                   ", pull %" PRIu64 ")\n", res.layers_merged, top,
                   res.merged, vmc_consolidate_method_name(res.method),
                   res.bytes_moved, res.bytes_commit, res.bytes_pull);
        }
    }
    return CLI_EXIT_OK;
}

/* ----------------------------------------------------------------- du */

static const char du_usage[] =
    "usage: " CLI_NAME " img du [-f fmt] [-U] [--json] IMG...\n"
    "\n"
    "Per image: virtual size, bytes allocated on the host, guest bytes\n"
    "whose data this layer holds (unique), guest bytes read from its chain\n"
    "(shared), and the bytes flattening would add (shared, in whole\n"
    "clusters).\n";

int
cmd_img_du(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, OPT_HELP },
        { "json", no_argument, NULL, OPT_JSON },
        { "output", required_argument, NULL, OPT_OUTPUT },
        { "backing-fmt", required_argument, NULL, OPT_BACKING_FMT },
        { "max-depth", required_argument, NULL, OPT_MAX_DEPTH },
        { NULL, 0, NULL, 0 },
    };
    static const char verb[] = "img du";
    struct cli_open open_opts = { 0 };
    struct json_object *arr = NULL;
    bool json = false;
    int c, i, r, rc = CLI_EXIT_OK;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":f:Uh", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': open_opts.format = optarg; break;
        case 'U': open_opts.force_share = true; break;
        case OPT_JSON: json = true; break;
        case OPT_OUTPUT:
            if (cli_parse_output(optarg, &json)) {
                return CLI_EXIT_FAIL;
            }
            break;
        case OPT_BACKING_FMT:
        case OPT_MAX_DEPTH:
            if (cli_open_option(&open_opts, c, optarg, verb)) {
                return CLI_EXIT_FAIL;
            }
            break;
        case 'h':
        case OPT_HELP:
            fputs(du_usage, stdout);
            return CLI_EXIT_OK;
        default:
            return cli_getopt_error(verb, c, argv);
        }
    }
    if (optind >= argc) {
        return cli_usage_error(verb, "expecting image file names");
    }
    if (json) {
        arr = json_object_new_array();
    } else {
        printf("%-10s %-10s %-10s %-10s %-10s %5s  %s\n", "virtual", "disk",
               "unique", "shared", "flatten", "depth", "image");
    }
    for (i = optind; i < argc; i++) {
        struct vmc_image *img = NULL;
        struct vmc_error err = { 0 };
        struct vmc_du du;

        r = cli_open_image(&img, argv[i], &open_opts, 0);
        if (r) {
            rc = r;
            continue;
        }
        r = vmc_du(img, &du, &err);
        vmc_image_close(img);
        if (r < 0) {
            rc = cli_error_lib(&err, r);
            continue;
        }
        if (json) {
            struct json_object *obj = json_object_new_object();

            cli_json_add_str(obj, "filename", argv[i]);
            cli_json_add_u64(obj, "virtual-size", du.virtual_size);
            cli_json_add_u64(obj, "disk-size", du.disk_size);
            cli_json_add_u64(obj, "unique", du.unique);
            cli_json_add_u64(obj, "zero", du.zero);
            cli_json_add_u64(obj, "shared", du.shared);
            cli_json_add_u64(obj, "flatten", du.flatten);
            cli_json_add_u64(obj, "depth", du.depth);
            json_object_array_add(arr, obj);
        } else {
            char v[32], d[32], u[32], s[32], f[32];

            size_str(du.virtual_size, v, sizeof(v));
            size_str(du.disk_size, d, sizeof(d));
            size_str(du.unique, u, sizeof(u));
            size_str(du.shared, s, sizeof(s));
            size_str(du.flatten, f, sizeof(f));
            printf("%-10s %-10s %-10s %-10s %-10s %5u  %s\n", v, d, u, s, f,
                   du.depth, argv[i]);
        }
    }
    if (json) {
        cli_json_print(stdout, arr);
        json_object_put(arr);
    }
    return rc;
}
