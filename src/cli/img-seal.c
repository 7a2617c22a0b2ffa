/*
 * img-seal.c - `vm-clone img seal | unseal | verify`: sealed templates
 * (read-only, content digest, verification on read, repair from a replica).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "vmclone-seal.h"

static const char seal_usage[] =
    "usage: " CLI_NAME " img seal [--chunk-size SIZE] [--threads N] "
    "[--json] [-f fmt] IMAGE\n"
    "Make IMAGE a sealed template: mode 0444, per-chunk SHA-256 digests in\n"
    "IMAGE.seal and (qcow2) the root digest in a header extension.\n";

static const char unseal_usage[] =
    "usage: " CLI_NAME " img unseal IMAGE\n"
    "Remove the seal of IMAGE (clones made from it will refuse to open).\n";

static const char verify_usage[] =
    "usage: " CLI_NAME " img verify [--repair-from REPLICA] [--threads N] "
    "[--json] IMAGE\n"
    "Check every chunk of the sealed IMAGE; with --repair-from, rewrite the\n"
    "corrupt chunks from a replica carrying the same seal.\n"
    "Exit status: 0 intact (or fully repaired), 2 corrupt chunks remain,\n"
    "1 the check could not run.\n";

enum { OPT_CHUNK = 0x200, OPT_THREADS, OPT_JSON, OPT_REPAIR };

static int
parse_threads(const char *s, unsigned *out)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);

    if (!*s || *end || v == 0 || v > 16) {
        return cli_error("--threads must be between 1 and 16");
    }
    *out = (unsigned)v;
    return 0;
}

int
cmd_img_seal(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, OPT_HELP },
        { "chunk-size", required_argument, NULL, OPT_CHUNK },
        { "threads", required_argument, NULL, OPT_THREADS },
        { "json", no_argument, NULL, OPT_JSON },
        { NULL, 0, NULL, 0 },
    };
    static const char verb[] = "img seal";
    struct cli_open open_opts = { 0 };
    struct vmc_open_opts oo;
    struct vmc_seal_info info;
    struct vmc_error err = { 0 };
    uint64_t chunk = 0;
    unsigned threads = 2;
    bool json = false;
    int c, r;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":f:", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': open_opts.format = optarg; break;
        case OPT_HELP: fputs(seal_usage, stdout); return CLI_EXIT_OK;
        case OPT_CHUNK:
            if (cli_parse_size(optarg, &chunk, "chunk size") ||
                chunk > UINT32_MAX) {
                return CLI_EXIT_FAIL;
            }
            break;
        case OPT_THREADS:
            if (parse_threads(optarg, &threads)) {
                return CLI_EXIT_FAIL;
            }
            break;
        case OPT_JSON: json = true; break;
        default:
            return cli_getopt_error(verb, c, argv);
        }
    }
    if (optind + 1 != argc) {
        return cli_usage_error(verb, optind >= argc ? "expecting image file "
                               "name" : "too many arguments");
    }
    if (cli_open_opts(&open_opts, 0, &oo)) {
        return CLI_EXIT_FAIL;
    }
    r = vmc_image_seal(argv[optind], (uint32_t)chunk, threads, &oo, &info,
                       &err);
    if (r < 0) {
        return cli_error_lib(&err, r);
    }
    if (json) {
        printf("{ \"image\": \"%s\", \"sealed\": true, \"root\": \"%s\", "
               "\"chunk-size\": %" PRIu32 ", \"chunks\": %" PRIu64
               ", \"virtual-size\": %" PRIu64 " }\n", argv[optind],
               info.root_hex, info.chunk_size, info.nchunks,
               info.virtual_size);
    } else {
        printf("Sealed '%s': root %s (%" PRIu64 " chunks of %" PRIu32
               " bytes)\n", argv[optind], info.root_hex, info.nchunks,
               info.chunk_size);
    }
    return CLI_EXIT_OK;
}

int
cmd_img_unseal(int argc, char **argv)
{
    struct vmc_error err = { 0 };
    int r;

    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(unseal_usage, stdout);
        return CLI_EXIT_OK;
    }
    if (argc != 2 || argv[1][0] == '-') {
        return cli_usage_error("img unseal", "expecting one image file name");
    }
    r = vmc_image_unseal(argv[1], &err);
    if (r < 0) {
        return cli_error_lib(&err, r);
    }
    printf("Unsealed '%s'.\n", argv[1]);
    return CLI_EXIT_OK;
}

struct verify_ctx {
    bool json;
    unsigned printed;
};

static void
verify_report(uint64_t off, uint64_t len, bool repaired, void *opaque)
{
    struct verify_ctx *v = opaque;

    if (v->json) {
        return;
    }
    if (v->printed++ < 1000) {
        fprintf(stderr, "%s chunk at offset %" PRIu64 " (%" PRIu64
                " bytes)\n", repaired ? "Repaired" : "CORRUPT", off, len);
    }
}

int
cmd_img_verify(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, OPT_HELP },
        { "repair-from", required_argument, NULL, OPT_REPAIR },
        { "threads", required_argument, NULL, OPT_THREADS },
        { "json", no_argument, NULL, OPT_JSON },
        { NULL, 0, NULL, 0 },
    };
    static const char verb[] = "img verify";
    struct vmc_verify_result res;
    struct vmc_error err = { 0 };
    struct verify_ctx vctx = { 0 };
    const char *replica = NULL;
    unsigned threads = 2;
    int c, r;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_HELP: fputs(verify_usage, stdout); return CLI_EXIT_OK;
        case OPT_REPAIR: replica = optarg; break;
        case OPT_THREADS:
            if (parse_threads(optarg, &threads)) {
                return CLI_EXIT_FAIL;
            }
            break;
        case OPT_JSON: vctx.json = true; break;
        default:
            return cli_getopt_error(verb, c, argv);
        }
    }
    if (optind + 1 != argc) {
        return cli_usage_error(verb, optind >= argc ? "expecting image file "
                               "name" : "too many arguments");
    }
    r = vmc_image_verify(argv[optind], replica, threads, &res, verify_report,
                         &vctx, &err);
    if (r < 0) {
        return cli_error_lib(&err, r);
    }
    if (vctx.json) {
        printf("{ \"image\": \"%s\", \"chunks\": %" PRIu64 ", \"corrupt\": %"
               PRIu64 ", \"repaired\": %" PRIu64 " }\n", argv[optind],
               res.chunks, res.corrupt, res.repaired);
    } else if (!res.corrupt) {
        printf("'%s': all %" PRIu64 " chunks verified.\n", argv[optind],
               res.chunks);
    } else {
        printf("'%s': %" PRIu64 " of %" PRIu64 " chunks corrupt, %" PRIu64
               " repaired.\n", argv[optind], res.corrupt, res.chunks,
               res.repaired);
    }
    return res.corrupt > res.repaired ? 2 : CLI_EXIT_OK;
}
