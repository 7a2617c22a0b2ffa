/*
 * cat-progress.c - progress of the store's long operations (template
 * copies, imports, full clones, flatten, relink, consolidate) as the
 * --progress option asks (issue 13 point 9): "bar" the percentage line on
 * stdout, "plain" a line on stderr every few seconds with the bytes, the
 * rate and the ETA (for CI logs), "none", or "auto": the bar on a TTY,
 * else plain lines once an operation has run for PLAIN_EVERY seconds
 * (none with --json or -q).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cat-cli.h"
#include "vmclone-catalog-admin.h"

/* Seconds between two plain lines. */
#define PLAIN_EVERY 5.0

/* "1h02m", "3m20s", "42s". */
static void
fmt_duration(double s, char *buf, size_t len)
{
    unsigned long t = s > 0 ? (unsigned long)(s + 0.5) : 0;

    if (t >= 3600) {
        snprintf(buf, len, "%luh%02lum", t / 3600, t / 60 % 60);
    } else if (t >= 60) {
        snprintf(buf, len, "%lum%02lus", t / 60, t % 60);
    } else {
        snprintf(buf, len, "%lus", t);
    }
}

/* One plain line: percentage, bytes, rate, ETA (or the time taken). */
static void
plain_line(struct catcli *c, uint64_t done, uint64_t total, double now)
{
    double pct = total ? 100.0 * (double)done / (double)total : 100.0;
    double elapsed = now - c->plain.t0;
    uint64_t bytes = vmc_catalog_progress_bytes(c->cat);
    char b[32], rate[32], eta[32];

    catcli_size(c, bytes, b, sizeof(b));
    catcli_size(c, elapsed > 0 ? (uint64_t)((double)bytes / elapsed) : 0,
                rate, sizeof(rate));
    if (done >= total) {
        fmt_duration(elapsed, eta, sizeof(eta));
        fprintf(stderr, "%s: %s: 100%%, %s in %s%s%s%s\n", CLI_NAME,
                c->verb, b, eta, elapsed >= 0.1 ? ", " : "",
                elapsed >= 0.1 ? rate : "", elapsed >= 0.1 ? "/s" : "");
    } else {
        fmt_duration(done ? elapsed * (double)(total - done) / (double)done
                          : 0, eta, sizeof(eta));
        fprintf(stderr, "%s: %s: %.0f%%, %s, %s/s, ETA %s\n", CLI_NAME,
                c->verb, pct > 99.0 ? 99.0 : pct, b, rate,
                done ? eta : "unknown");
    }
    fflush(stderr);
    c->plain.last = now;
    c->plain.printed = true;
}

/* The plain mode's vmc_progress_fn: a line every PLAIN_EVERY seconds (the
 * first at once when asked for, else after PLAIN_EVERY seconds), and the
 * last one at 100 % once any was printed; a repeated 100 % is ignored. */
static void
plain_cb(uint64_t done, uint64_t total, void *opaque)
{
    struct catcli *c = opaque;
    double now = cli_mono_s();

    if (!c->plain.started) {
        if (done >= total && c->plain.finished) {
            return;     /* the same sequence's 100 % again */
        }
        c->plain.started = true;
        c->plain.finished = false;
        c->plain.t0 = now;
        c->plain.last = now;
        c->plain.printed = false;
        if (c->plain.eager && done < total) {
            plain_line(c, done, total, now);
            return;
        }
    }
    if (done >= total) {
        if (c->plain.printed || c->plain.eager) {
            plain_line(c, done, total, now);
        }
        c->plain.started = false;     /* the next sequence starts anew */
        c->plain.finished = true;
    } else if (now - c->plain.last >= PLAIN_EVERY) {
        plain_line(c, done, total, now);
    }
}

int
catcli_progress_setup(struct catcli *c)
{
    const char *m = c->progress ? c->progress : "auto";
    bool tty = isatty(STDOUT_FILENO), quiet = c->json || c->quiet;

    memset(&c->plain, 0, sizeof(c->plain));
    if (!strcmp(m, "none")) {
        return 0;
    }
    if (!strcmp(m, "bar") || (!strcmp(m, "auto") && tty && !quiet)) {
        vmc_catalog_set_progress(c->cat, catcli_progress_cb, c);
    } else if (!strcmp(m, "plain") || (!strcmp(m, "auto") && !quiet)) {
        c->plain.eager = !strcmp(m, "plain");
        vmc_catalog_set_progress(c->cat, plain_cb, c);
    } else if (strcmp(m, "auto")) {
        return cli_usage_error(c->verb, "--progress: '%s' is not auto, bar, "
                               "plain or none", m);
    }
    return 0;
}
