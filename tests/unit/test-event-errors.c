/*
 * test-event-errors.c - reliability test 7 (QEMU iotest 026's idea):
 * every named metadata event of the qcow2 driver (src/format/events.h)
 * x {EIO, ENOSPC} x {once, persistent}.
 *
 * Each case runs one fixed workload on a fresh 512-byte-cluster image
 * whose first 64 KiB were written and flushed before the rule is armed:
 * reopen, read, allocating writes (new L2 tables, new refcount blocks, a
 * refcount table that has to move), an in-place write, a discard (frees
 * at the next flush), a shrink (header only), a resize that grows the L1
 * table, flushes, close.
 * Pass, per case:
 *   - a step during which the rule injected its error reports an error
 *     (never success), and nothing crashes;
 *   - the rule fires at all (every event is reached by the workload);
 *   - the image reopens, our check finds no corruption and `qemu-img
 *     check` exits 0 or 3 (leaks allowed; skipped without qemu-img);
 *   - every sector reads back as what was flushed, or for a sector
 *     written (or discarded) since its last successful flush, either
 *     that or the new value.
 *
 * VMC_EVENT_CASE=NAME runs the cases of one event only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmclone.h"
#include "format/events.h"
#include "harness.h"

#define SECTOR 512u
#define MAX_SIZE (64u << 20)
#define NSECT (MAX_SIZE / SECTOR)

static char path[] = "/tmp/vmc-event-errors-XXXXXX";
static uint8_t durable[NSECT];   /* value flushed (0 = zeros) */
static uint8_t maybe[NSECT];     /* written since, not yet known durable */
static uint8_t maybe_sticky[NSECT]; /* from a failed write: may show up */
static uint8_t *buf;
static struct vmc_image *img;
static const char *case_name;
static bool have_qemu_img;

/* The shadow: a write (or discard, value 0) of [off, off+len). */
static void
shadow_write(uint64_t off, uint64_t len, uint8_t v, bool failed)
{
    for (uint64_t s = off / SECTOR; s < (off + len) / SECTOR; s++) {
        if (failed) {
            maybe_sticky[s] = v | 0x80;   /* 0x80: set (v may be 0) */
        } else {
            maybe[s] = v | 0x80;
        }
    }
}

static void
shadow_flushed(void)
{
    for (uint64_t s = 0; s < NSECT; s++) {
        if (maybe[s]) {
            durable[s] = maybe[s] & 0x7f;
            maybe[s] = 0;
        }
    }
}

/* Did the step that just ran return @r although the rule fired in it? */
static void
step_done(const char *what, int r, unsigned long fired_before,
          enum fmt_event ev)
{
    if (fmt_event_fired(ev) > fired_before && r >= 0) {
        CHECK_MSG(false, "%s: the rule fired during '%s', which reported "
                  "success", case_name, what);
    }
}

static int
do_write(uint64_t off, uint64_t len, uint8_t v, enum fmt_event ev)
{
    unsigned long f = fmt_event_fired(ev);
    int r;

    if (!img) {
        return -EBADF;
    }
    memset(buf, v, len);
    r = vmc_image_write(img, buf, off, len, 0);
    shadow_write(off, len, v, r < 0);
    step_done("write", r, f, ev);
    return r;
}

static int
do_flush(enum fmt_event ev)
{
    unsigned long f = fmt_event_fired(ev);
    int r;

    if (!img) {
        return -EBADF;
    }
    r = vmc_image_flush(img);
    if (r == 0) {
        shadow_flushed();
    }
    step_done("flush", r, f, ev);
    return r;
}

static struct vmc_image *
open_image(unsigned flags)
{
    struct vmc_open_opts oo = { .format = VMC_FMT_QCOW2, .flags = flags };
    struct vmc_error err = { 0 };
    struct vmc_image *i = NULL;

    return vmc_image_open(&i, path, &oo, &err) < 0 ? NULL : i;
}

static void
setup(void)
{
    struct vmc_create_opts co;
    struct vmc_error err = { 0 };

    vmc_create_opts_init(&co);
    co.size = 4u << 20;
    co.cluster_size = 512;
    if (vmc_image_create(path, &co, &err) < 0 ||
        !(img = open_image(VMC_OPEN_RDWR))) {
        FAIL("setup: %s", err.msg);
    }
    memset(durable, 0, sizeof(durable));
    memset(maybe, 0, sizeof(maybe));
    memset(maybe_sticky, 0, sizeof(maybe_sticky));
    memset(buf, 0x11, 65536);
    if (vmc_image_write(img, buf, 0, 65536, 0) < 0 ||
        vmc_image_close(img) < 0) {
        FAIL("setup write");
    }
    shadow_write(0, 65536, 0x11, false);
    shadow_flushed();
    img = NULL;
}

/* The workload, with the rule for @ev armed. */
static void
workload(enum fmt_event ev)
{
    unsigned long f = fmt_event_fired(ev);
    struct vmc_error err = { 0 };
    int r;

    img = open_image(VMC_OPEN_RDWR);
    step_done("open", img ? 0 : -1, f, ev);
    if (!img) {
        return;
    }
    f = fmt_event_fired(ev);
    r = vmc_image_read(img, buf, 0, 65536);
    step_done("read", r, f, ev);
    do_write(65536, 32768, 0x22, ev);               /* new L2 tables */
    do_flush(ev);
    do_write(4096, 4096, 0x33, ev);                 /* in place */
    do_write(1u << 20, 1u << 20, 0x44, ev);         /* new refblocks */
    do_flush(ev);
    f = fmt_event_fired(ev);
    r = vmc_image_discard(img, 65536, 32768);       /* frees at flush */
    shadow_write(65536, 32768, 0, r < 0);
    step_done("discard", r, f, ev);
    do_flush(ev);
    f = fmt_event_fired(ev);
    r = vmc_image_resize(img, (4u << 20) - 65536, &err); /* header only */
    step_done("shrink", r, f, ev);
    do_flush(ev);
    f = fmt_event_fired(ev);
    r = vmc_image_resize(img, MAX_SIZE, &err);      /* grows the L1 */
    step_done("resize", r, f, ev);
    if (r == 0) {
        do_write(40u << 20, 8192, 0x55, ev);
        do_write(48u << 20, 9u << 20, 0x66, ev);    /* moves the reftable */
    }
    do_flush(ev);
    f = fmt_event_fired(ev);
    r = vmc_image_close(img);
    img = NULL;
    if (r == 0) {
        shadow_flushed();
    }
    step_done("close", r, f, ev);
}

static bool
sector_ok(uint64_t s, const uint8_t *p)
{
    uint8_t v = p[0];

    for (unsigned i = 1; i < SECTOR; i++) {
        if (p[i] != v) {
            return false;
        }
    }
    return v == durable[s] || (maybe[s] && v == (maybe[s] & 0x7f)) ||
           (maybe_sticky[s] && v == (maybe_sticky[s] & 0x7f));
}

static void
verify(void)
{
    struct vmc_check_result res;
    struct vmc_error err = { 0 };
    struct vmc_image *c;
    uint64_t size, off;
    char cmd[600];

    c = open_image(VMC_OPEN_CHECK | VMC_OPEN_NO_BACKING);
    if (!c) {
        CHECK_MSG(false, "%s: no reopen for check", case_name);
        return;
    }
    CHECK_MSG(vmc_image_check(c, VMC_REPAIR_NONE, &res, NULL, NULL,
                              &err) == 0 && res.corruptions == 0,
              "%s: check: %llu corruptions %s", case_name,
              (unsigned long long)res.corruptions, err.msg);
    vmc_image_close(c);
    if (have_qemu_img) {
        int st;

        snprintf(cmd, sizeof(cmd), "qemu-img check -q '%s' >/dev/null 2>&1",
                 path);
        st = system(cmd);
        CHECK_MSG(WIFEXITED(st) && (WEXITSTATUS(st) == 0 ||
                                    WEXITSTATUS(st) == 3),
                  "%s: qemu-img check exited %d", case_name,
                  WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    }
    c = open_image(0);
    if (!c) {
        CHECK_MSG(false, "%s: no read-only reopen", case_name);
        return;
    }
    size = vmc_image_size(c);
    for (off = 0; off < size; off += 65536) {
        if (vmc_image_read(c, buf, off, 65536) < 0) {
            CHECK_MSG(false, "%s: read at %llu failed", case_name,
                      (unsigned long long)off);
            break;
        }
        for (unsigned i = 0; i < 65536; i += SECTOR) {
            uint64_t s = (off + i) / SECTOR;
            if (!sector_ok(s, buf + i)) {
                CHECK_MSG(false, "%s: sector %llu reads 0x%02x, flushed "
                          "0x%02x", case_name, (unsigned long long)s,
                          buf[i], durable[s]);
                off = size;
                break;
            }
        }
    }
    vmc_image_close(c);
}

int
main(void)
{
    static const int errs[] = { -EIO, -ENOSPC };
    const char *only = getenv("VMC_EVENT_CASE");
    char name[128];
    unsigned cases = 0;
    int fd = mkstemp(path);

    if (fd < 0 || !(buf = malloc(9u << 20))) {
        FAIL("setup");
    }
    close(fd);
    have_qemu_img = system("qemu-img --version >/dev/null 2>&1") == 0;
    for (int ev = 0; ev < FMT_EV_COUNT; ev++) {
        if (only && strcmp(only, fmt_event_name(ev))) {
            continue;
        }
        for (unsigned e = 0; e < 2; e++) {
            for (int persistent = 0; persistent < 2; persistent++) {
                snprintf(name, sizeof(name), "%s:%s:%s",
                         fmt_event_name(ev), errs[e] == -EIO ? "EIO"
                                                             : "ENOSPC",
                         persistent ? "persistent" : "once");
                case_name = name;
                setup();
                fmt_event_inject(ev, errs[e], persistent);
                workload(ev);
                CHECK_MSG(fmt_event_fired(ev) > 0, "%s: never reached",
                          name);
                if (img) {
                    vmc_image_close(img);
                    img = NULL;
                }
                fmt_event_clear();
                verify();
                cases++;
            }
        }
    }
    printf("%u cases\n", cases);
    unlink(path);
    free(buf);
    return harness_exit("event-errors");
}
