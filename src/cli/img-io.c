/*
 * img-io.c - "img io": qemu-io style scripted I/O on an image, one
 * command per -c option (read, write, write -z, discard, flush,
 * truncate). Used by tests to put data into images and verify it.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"
#include "vmclone-seal.h"

static const char io_usage[] =
    "usage: " CLI_NAME " img io [-f fmt] [-r] [-U] [--backing-fmt fmt] "
    "filename -c CMD [-c CMD ...]\n"
    "\n"
    "Run commands on the image (read-write unless -r). Commands:\n"
    "  read [-P pattern] [-v] OFF LEN    read (verify every byte, dump)\n"
    "  write [-P pattern] OFF LEN        write the pattern (default 0xcd)\n"
    "  write -z [-u] OFF LEN             write zeroes (-u: may unmap)\n"
    "  discard OFF LEN                   discard\n"
    "  flush                             flush\n"
    "  truncate SIZE                     resize\n"
    "Offsets and lengths accept the suffixes k, M, G, T, P and E.\n"
    "Any failing command makes the exit status 1 after the script.\n";

#define IO_CHUNK (1024u * 1024)
#define MAX_ARGS 16

/* One parsed command line. */
struct io_cmd {
    const char *name;
    int pattern;            /* -P, or -1 */
    bool verbose;           /* -v */
    bool zero;              /* -z */
    bool unmap;             /* -u */
    int nargs;
    char *args[MAX_ARGS];
};

/* Split @line in place at blanks; returns the number of words or -1. */
static int
split_words(char *line, char **words, int max)
{
    int n = 0;
    char *p = line;

    for (;;) {
        while (isspace((unsigned char)*p)) {
            p++;
        }
        if (!*p) {
            return n;
        }
        if (n == max) {
            return -1;
        }
        words[n++] = p;
        while (*p && !isspace((unsigned char)*p)) {
            p++;
        }
        if (*p) {
            *p++ = '\0';
        }
    }
}

static int
parse_pattern(const char *s, int *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 0);
    if (errno || end == s || *end || v < 0 || v > 255) {
        return cli_error("%s is not a valid pattern byte", s);
    }
    *out = (int)v;
    return 0;
}

/* Parse @words into @cmd: flags first, then positional arguments. */
static int
parse_cmd(char **words, int n, struct io_cmd *cmd)
{
    int i;

    memset(cmd, 0, sizeof(*cmd));
    cmd->name = words[0];
    cmd->pattern = -1;
    for (i = 1; i < n && words[i][0] == '-' && words[i][1]; i++) {
        const char *f = words[i];

        if (!strcmp(f, "-P")) {
            if (i + 1 >= n || parse_pattern(words[++i], &cmd->pattern)) {
                return i + 1 >= n && i < n ?
                       cli_error("%s: -P needs a pattern", cmd->name) :
                       CLI_EXIT_FAIL;
            }
        } else if (!strcmp(f, "-v")) {
            cmd->verbose = true;
        } else if (!strcmp(f, "-z")) {
            cmd->zero = true;
        } else if (!strcmp(f, "-u")) {
            cmd->unmap = true;
        } else if (!strcmp(f, "-q")) {
            /* accepted for qemu-io compatibility */
        } else {
            return cli_error("%s: invalid option '%s'", cmd->name, f);
        }
    }
    for (; i < n; i++) {
        cmd->args[cmd->nargs++] = words[i];
    }
    return 0;
}

/* Parse OFF LEN of @cmd and check them against the image size. */
static int
parse_range(const struct io_cmd *cmd, struct vmc_image *img, uint64_t *off,
            uint64_t *len)
{
    uint64_t size = vmc_image_size(img);

    if (cmd->nargs != 2) {
        return cli_error("%s: expected 2 arguments (offset and length), "
                         "got %d", cmd->name, cmd->nargs);
    }
    if (cli_parse_size(cmd->args[0], off, "offset") ||
        cli_parse_size(cmd->args[1], len, "length")) {
        return CLI_EXIT_FAIL;
    }
    if (*off > size || *len > size - *off) {
        return cli_error("%s failed: offset %" PRIu64 " + length %" PRIu64
                         " is beyond the end of the image (%" PRIu64 ")",
                         cmd->name, *off, *len, size);
    }
    return 0;
}

static void
dump_line(const uint8_t *p, size_t n, uint64_t off)
{
    size_t i;

    printf("%08" PRIx64 ":  ", off);
    for (i = 0; i < n; i++) {
        printf("%02x ", p[i]);
    }
    putchar(' ');
    for (i = 0; i < n; i++) {
        putchar(isprint(p[i]) && p[i] < 0x7f ? p[i] : '.');
    }
    putchar('\n');
}

static int
do_read(struct vmc_image *img, const struct io_cmd *cmd, uint8_t *buf)
{
    uint64_t off, len, pos;
    bool mismatch = false;
    int r;

    r = parse_range(cmd, img, &off, &len);
    if (r) {
        return r;
    }
    for (pos = 0; pos < len; pos += IO_CHUNK) {
        size_t n = (size_t)(len - pos < IO_CHUNK ? len - pos : IO_CHUNK);
        size_t i;

        r = vmc_image_read(img, buf, off + pos, n);
        if (r < 0) {
            const char *why = vmc_image_io_error(img);
            return cli_error("read failed at offset %" PRIu64 ": %s",
                             off + pos, why ? why : strerror(-r));
        }
        if (cmd->verbose) {
            for (i = 0; i < n; i += 16) {
                dump_line(buf + i, n - i < 16 ? n - i : 16, off + pos + i);
            }
        }
        for (i = 0; cmd->pattern >= 0 && !mismatch && i < n; i++) {
            mismatch = buf[i] != (uint8_t)cmd->pattern;
        }
    }
    /* qemu-io reports the mismatch before the summary line. */
    r = 0;
    if (mismatch) {
        r = cli_error("Pattern verification failed at offset %" PRIu64
                      ", %" PRIu64 " bytes", off, len);
    }
    printf("read %" PRIu64 "/%" PRIu64 " bytes at offset %" PRIu64 "\n",
           len, len, off);
    return r;
}

static int
do_write(struct vmc_image *img, const struct io_cmd *cmd, uint8_t *buf)
{
    uint64_t off, len, pos;
    int r;

    if (cmd->zero && cmd->pattern >= 0) {
        return cli_error("write: -z and -P cannot be used together");
    }
    if (cmd->unmap && !cmd->zero) {
        return cli_error("write: -u requires -z");
    }
    r = parse_range(cmd, img, &off, &len);
    if (r) {
        return r;
    }
    if (cmd->zero) {
        r = vmc_image_write_zeroes(img, off, len,
                                   cmd->unmap ? VMC_WRITE_MAY_UNMAP : 0);
        pos = 0;
    } else {
        memset(buf, cmd->pattern >= 0 ? cmd->pattern : 0xcd, IO_CHUNK);
        for (pos = 0, r = 0; pos < len && r == 0; pos += IO_CHUNK) {
            size_t n = (size_t)(len - pos < IO_CHUNK ? len - pos : IO_CHUNK);

            r = vmc_image_write(img, buf, off + pos, n, 0);
        }
        pos = pos ? pos - IO_CHUNK : 0;
    }
    if (r < 0) {
        return cli_error("write failed at offset %" PRIu64 ": %s",
                         off + pos, strerror(-r));
    }
    printf("wrote %" PRIu64 "/%" PRIu64 " bytes at offset %" PRIu64 "\n",
           len, len, off);
    return 0;
}

static int
do_discard(struct vmc_image *img, const struct io_cmd *cmd)
{
    uint64_t off, len;
    int r = parse_range(cmd, img, &off, &len);

    if (r) {
        return r;
    }
    r = vmc_image_discard(img, off, len);
    if (r < 0) {
        return cli_error("discard failed at offset %" PRIu64 ": %s", off,
                         strerror(-r));
    }
    printf("discard %" PRIu64 "/%" PRIu64 " bytes at offset %" PRIu64 "\n",
           len, len, off);
    return 0;
}

static int
do_truncate(struct vmc_image *img, const struct io_cmd *cmd)
{
    struct vmc_error err = { 0 };
    uint64_t size;
    int r;

    if (cmd->nargs != 1) {
        return cli_error("truncate: expected 1 argument (size), got %d",
                         cmd->nargs);
    }
    if (cli_parse_size(cmd->args[0], &size, "size")) {
        return CLI_EXIT_FAIL;
    }
    r = vmc_image_resize(img, size, &err);
    if (r < 0) {
        return err.msg[0] ? cli_error("truncate failed: %s", err.msg) :
               cli_error("truncate failed: %s", strerror(-r));
    }
    return 0;
}

/* Run one -c command; returns 0 or an exit status (error printed). */
static int
run_command(struct vmc_image *img, const char *text, uint8_t *buf)
{
    char *words[MAX_ARGS + 1];
    struct io_cmd cmd;
    char *line = strdup(text);
    int n, r;

    if (!line) {
        return cli_error("out of memory");
    }
    n = split_words(line, words, MAX_ARGS + 1);
    if (n <= 0) {
        r = n < 0 ? cli_error("command \"%s\": too many arguments", text) :
            cli_error("empty command");
        goto out;
    }
    r = parse_cmd(words, n, &cmd);
    if (r) {
        goto out;
    }
    if (!strcmp(cmd.name, "read")) {
        r = do_read(img, &cmd, buf);
    } else if (!strcmp(cmd.name, "write")) {
        r = do_write(img, &cmd, buf);
    } else if (!strcmp(cmd.name, "discard")) {
        r = do_discard(img, &cmd);
    } else if (!strcmp(cmd.name, "truncate")) {
        r = do_truncate(img, &cmd);
    } else if (!strcmp(cmd.name, "flush")) {
        r = vmc_image_flush(img);
        if (r < 0) {
            r = cli_error("flush failed: %s", strerror(-r));
        }
    } else {
        r = cli_error("command \"%s\" not found", cmd.name);
    }
out:
    free(line);
    return r;
}

int
cmd_img_io(int argc, char **argv)
{
    static const struct cli_usage u = { .verb = "img io",
                                        .synopsis = io_usage };
    struct cli_open open_opts = { 0 };
    struct vmc_image *img = NULL;
    struct cli_list cl = { .cap = (size_t)argc };
    const char **cmds = NULL;
    uint8_t *buf = NULL;
    bool readonly = false, failed = false;
    const struct cli_opt opts[] = {
        CLI_OPTS_OPEN(&open_opts),
        CLI_OPTS_SHARE(&open_opts),
        CLI_OPT_CALL('c', "cmd", "command", &cl, cli_opt_list,
                     "run this command (repeatable)"),
        CLI_OPT_FLAG('r', "read-only", &readonly, "open read-only"),
        CLI_OPT_END,
    };
    int ncmds, i, r;

    cmds = calloc((size_t)argc, sizeof(*cmds));
    if (!cmds) {
        return cli_error("out of memory");
    }
    cl.v = cmds;
    r = cli_parse_image_verb(opts, &u, argc, argv, 1);
    ncmds = (int)cl.n;
    if (r) {
        r = CLI_PARSE_EXIT(r);
        goto out;
    }
    buf = malloc(IO_CHUNK);
    if (!buf) {
        r = cli_error("out of memory");
        goto out;
    }
    r = cli_open_image(&img, argv[optind], &open_opts,
                       readonly ? 0 : VMC_OPEN_RDWR);
    if (r) {
        goto out;
    }
    for (i = 0; i < ncmds; i++) {
        if (run_command(img, cmds[i], buf)) {
            failed = true;
        }
        fflush(stdout);
    }
    r = vmc_image_close(img);
    img = NULL;
    if (r < 0) {
        failed = true;
        cli_error("error while closing '%s': %s", argv[optind],
                  strerror(-r));
    }
    r = failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
out:
    vmc_image_close(img);
    free(buf);
    free(cmds);
    return r;
}
