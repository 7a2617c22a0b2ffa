/*
 * img-chain.c - "img commit" and "img rebase": the verbs that change how
 * the layers of a backing chain relate to each other.
 */
#include <getopt.h>
#include <string.h>

#include "cli/cli.h"

/* ------------------------------------------------------------- commit */

static const char commit_usage[] =
    "usage: " CLI_NAME " img commit [-q] [-p] [-f fmt] [-b base] [-d]\n"
    "           [--backing-fmt fmt] [--max-depth N] filename\n"
    "\n"
    "Copy what filename (and the layers between it and base) defines into\n"
    "base (default: its backing file), then empty filename.\n"
    "  -b base         commit into this layer of the chain (implies -d);\n"
    "                  the layers in between become invalid\n"
    "  -d              do not empty filename afterwards\n";

int
cmd_img_commit(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, OPT_HELP },
        { "backing-fmt", required_argument, NULL, OPT_BACKING_FMT },
        { "max-depth", required_argument, NULL, OPT_MAX_DEPTH },
        { NULL, 0, NULL, 0 },
    };
    static const char verb[] = "img commit";
    struct cli_open open_opts = { 0 };
    struct vmc_commit_opts o = { 0 };
    struct cli_progress progress;
    struct vmc_error err = { 0 };
    struct vmc_image *img = NULL;
    bool quiet = false, show_progress = false;
    int c, r, r2;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":f:b:dpqt:h", longopts,
                            NULL)) != -1) {
        switch (c) {
        case 'f': open_opts.format = optarg; break;
        case 'b': o.base = optarg; o.keep_top = true; break;
        case 'd': o.keep_top = true; break;
        case 'p': show_progress = true; break;
        case 'q': quiet = true; break;
        case 't':
        case 'T':
            if (cli_check_cache_mode(optarg)) {
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
            fputs(commit_usage, stdout);
            return CLI_EXIT_OK;
        default:
            return cli_getopt_error(verb, c, argv);
        }
    }
    if (optind + 1 != argc) {
        return cli_usage_error(verb, optind >= argc ? "expecting image file "
                               "name" : "too many arguments");
    }
    r = cli_open_image(&img, argv[optind], &open_opts,
                       o.keep_top ? 0 : VMC_OPEN_RDWR);
    if (r) {
        return r;
    }
    cli_progress_start(&progress, show_progress && !quiet);
    o.progress = cli_progress_cb;
    o.opaque = &progress;
    r = vmc_commit(img, &o, &err);
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
        printf("Image committed.\n");
    }
    return CLI_EXIT_OK;
}

/* ------------------------------------------------------------- rebase */

static const char rebase_usage[] =
    "usage: " CLI_NAME " img rebase [-q] [-p] [-f fmt] [-u] -b backing_file "
    "[-F backing_fmt]\n"
    "           [--backing-fmt fmt] [--max-depth N] filename\n"
    "\n"
    "Change the backing file of filename. Safe mode (default) copies into\n"
    "filename whatever would change in its guest view; -b \"\" flattens it.\n"
    "A relative backing_file is relative to filename's directory.\n"
    "  -u              unsafe: only rewrite the backing file reference\n";

int
cmd_img_rebase(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, OPT_HELP },
        { "backing-fmt", required_argument, NULL, OPT_BACKING_FMT },
        { "max-depth", required_argument, NULL, OPT_MAX_DEPTH },
        { NULL, 0, NULL, 0 },
    };
    static const char verb[] = "img rebase";
    struct cli_open open_opts = { 0 };
    struct vmc_rebase_opts o = { 0 };
    struct vmc_open_opts backing_open;
    struct cli_progress progress;
    struct vmc_error err = { 0 };
    struct vmc_image *img = NULL;
    const char *backing = NULL, *backing_fmt = NULL;
    bool quiet = false, show_progress = false;
    int c, r, r2;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":f:b:F:upqt:T:h", longopts,
                            NULL)) != -1) {
        switch (c) {
        case 'f': open_opts.format = optarg; break;
        case 'b': backing = optarg; break;
        case 'F': backing_fmt = optarg; break;
        case 'u': o.unsafe = true; break;
        case 'p': show_progress = true; break;
        case 'q': quiet = true; break;
        case 't':
        case 'T':
            if (cli_check_cache_mode(optarg)) {
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
            fputs(rebase_usage, stdout);
            return CLI_EXIT_OK;
        default:
            return cli_getopt_error(verb, c, argv);
        }
    }
    if (optind + 1 != argc) {
        return cli_usage_error(verb, optind >= argc ? "expecting image file "
                               "name" : "too many arguments");
    }
    if (!backing && !o.unsafe) {
        return cli_usage_error(verb, "must specify backing file (-b) or use "
                               "unsafe mode (-u)");
    }
    if (backing && *backing && !backing_fmt) {
        return cli_error("could not change the backing file to '%s': "
                         "backing format must be specified", backing);
    }
    if (cli_open_opts(&open_opts, 0, &backing_open)) {
        return CLI_EXIT_FAIL;
    }
    o.backing_open = &backing_open;
    r = cli_open_image(&img, argv[optind], &open_opts, VMC_OPEN_RDWR |
                       (o.unsafe ? VMC_OPEN_NO_BACKING : 0));
    if (r) {
        return r;
    }
    cli_progress_start(&progress, show_progress && !quiet);
    o.progress = cli_progress_cb;
    o.opaque = &progress;
    r = vmc_rebase(img, backing, backing_fmt, &o, &err);
    cli_progress_end(&progress);
    r2 = vmc_image_close(img);
    if (r < 0) {
        return cli_error_lib(&err, r);
    }
    if (r2 < 0) {
        return cli_error("error while closing '%s': %s", argv[optind],
                         strerror(-r2));
    }
    return CLI_EXIT_OK;
}
