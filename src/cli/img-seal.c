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

#include "cli.h"
#include "options.h"
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

/* One result as a one-line JSON object (qemu-img's style of map). */
static void
print_inline(const struct cli_json_field *fields, size_t n)
{
    struct json_object *o = json_object_new_object();

    if (o && cli_json_add_fields(o, fields, n)) {
        cli_json_print_inline(stdout, o);
        putchar('\n');
    }
    json_object_put(o);
}

static int
opt_threads(const char *s, void *dest)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);

    if (!*s || *end || v == 0 || v > 16) {
        return cli_error("--threads must be between 1 and 16");
    }
    *(unsigned *)dest = (unsigned)v;
    return 0;
}

static int
opt_chunk(const char *s, void *dest)
{
    uint64_t *chunk = dest;

    if (cli_parse_size(s, chunk, "chunk size") || *chunk > UINT32_MAX) {
        return CLI_EXIT_FAIL;
    }
    return 0;
}

#define SEAL_THREADS(t) \
    CLI_OPT_CALL(0, "threads", "N", (t), opt_threads, \
                 "hash with N threads (1 to 16, default 2)")

int
cmd_img_seal(int argc, char **argv)
{
    static const struct cli_usage u = { .verb = "img seal",
                                        .synopsis = seal_usage };
    struct cli_open open_opts = { 0 };
    struct vmc_open_opts oo;
    struct vmc_seal_info info;
    struct vmc_error err = { 0 };
    uint64_t chunk = 0;
    unsigned threads = 2;
    bool json = false;
    const struct cli_opt opts[] = {
        CLI_OPT_STRING('f', NULL, "fmt", &open_opts.format,
                       "format of the image (default: probe)"),
        CLI_OPT_CALL(0, "chunk-size", "SIZE", &chunk, opt_chunk,
                     "bytes per digest"),
        SEAL_THREADS(&threads),
        CLI_OPTS_OUTPUT(&json),
        CLI_OPT_END,
    };
    int r = cli_parse_image_verb(opts, &u, argc, argv, 1);

    if (r) {
        return CLI_PARSE_EXIT(r);
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
        const struct cli_json_field fields[] = {
            CLI_JSON_FIELD_STR("image", argv[optind]),
            CLI_JSON_FIELD_BOOL("sealed", true),
            CLI_JSON_FIELD_STR("root", info.root_hex),
            CLI_JSON_FIELD_U64("chunk-size", info.chunk_size),
            CLI_JSON_FIELD_U64("chunks", info.nchunks),
            CLI_JSON_FIELD_U64("virtual-size", info.virtual_size),
        };

        print_inline(fields, sizeof(fields) / sizeof(fields[0]));
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
    static const struct cli_usage u = { .verb = "img unseal",
                                        .synopsis = unseal_usage };
    static const struct cli_opt opts[] = { CLI_OPT_END };
    struct vmc_error err = { 0 };
    int r = cli_parse_options(opts, &u, argc, argv);

    if (r) {
        return CLI_PARSE_EXIT(r);
    }
    r = cli_check_operands(&u, argc, argv, 1, 1, "expecting one image file "
                           "name");
    if (r) {
        return r;
    }
    r = vmc_image_unseal(argv[optind], &err);
    if (r < 0) {
        return cli_error_lib(&err, r);
    }
    printf("Unsealed '%s'.\n", argv[optind]);
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
    static const struct cli_usage u = { .verb = "img verify",
                                        .synopsis = verify_usage };
    struct vmc_verify_result res;
    struct vmc_error err = { 0 };
    struct verify_ctx vctx = { 0 };
    const char *replica = NULL;
    unsigned threads = 2;
    const struct cli_opt opts[] = {
        CLI_OPT_STRING(0, "repair-from", "REPLICA", &replica,
                       "rewrite corrupt chunks from this replica"),
        SEAL_THREADS(&threads),
        CLI_OPTS_OUTPUT(&vctx.json),
        CLI_OPT_END,
    };
    int r = cli_parse_image_verb(opts, &u, argc, argv, 1);

    if (r) {
        return CLI_PARSE_EXIT(r);
    }
    r = vmc_image_verify(argv[optind], replica, threads, &res, verify_report,
                         &vctx, &err);
    if (r < 0) {
        return cli_error_lib(&err, r);
    }
    if (vctx.json) {
        const struct cli_json_field fields[] = {
            CLI_JSON_FIELD_STR("image", argv[optind]),
            CLI_JSON_FIELD_U64("chunks", res.chunks),
            CLI_JSON_FIELD_U64("corrupt", res.corrupt),
            CLI_JSON_FIELD_U64("repaired", res.repaired),
        };

        print_inline(fields, sizeof(fields) / sizeof(fields[0]));
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
