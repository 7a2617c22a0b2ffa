/*
 * test-special-backing.c - issue 9 finding 8: a backing file that is not
 * a regular file (FIFO, socket, directory, character device) is refused
 * at open, without blocking (a FIFO used to hang every command that
 * opened the chain); so is a top layer that is one. Block devices as
 * backing files need VMC_OPEN_BACKING_BLOCKDEV (no block device to try
 * here: the flag only has to be accepted).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmclone.h"
#include "harness.h"

static char dir[] = "/tmp/vmc-special-XXXXXX";

static void
on_alarm(int sig)
{
    (void)sig;
    fprintf(stderr, "FAIL: open blocked on a special file\n");
    _exit(1);
}

/* An overlay at @ov whose backing file is @backing (format raw, not
 * opened at create time). */
static void
make_overlay(const char *ov, const char *backing)
{
    struct vmc_create_opts o;
    struct vmc_error err = { 0 };

    vmc_create_opts_init(&o);
    o.size = 1u << 20;
    o.backing_file = backing;
    o.backing_format = VMC_FMT_RAW;
    o.backing_unsafe = true;
    if (vmc_image_create(ov, &o, &err) < 0) {
        FAIL("create %s: %s", ov, err.msg);
    }
}

/* Opening @path (top, format @fmt) must fail at once, naming @word. */
static void
expect_refused(const char *path, enum vmc_format fmt, unsigned flags,
               const char *word)
{
    struct vmc_open_opts oo = { .format = fmt, .flags = flags };
    struct vmc_error err = { 0 };
    struct vmc_image *img = NULL;
    int r;

    alarm(5);
    r = vmc_image_open(&img, path, &oo, &err);
    alarm(0);
    CHECK_MSG(r < 0, "%s: opened, expected a refusal naming %s", path, word);
    if (r == 0) {
        vmc_image_close(img);
        return;
    }
    CHECK_MSG(strstr(err.msg, word), "%s: '%s' does not name %s", path,
              err.msg, word);
}

int
main(void)
{
    char fifo[256], sock[256], sub[256], ov[256];
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int s;

    signal(SIGALRM, on_alarm);
    if (!mkdtemp(dir)) {
        FAIL("mkdtemp");
    }
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    snprintf(sock, sizeof(sock), "%s/sock", dir);
    snprintf(sub, sizeof(sub), "%s/subdir", dir);
    snprintf(ov, sizeof(ov), "%s/ov.qcow2", dir);
    if (mkfifo(fifo, 0600) < 0 || mkdir(sub, 0700) < 0) {
        FAIL("mkfifo/mkdir: %s", strerror(errno));
    }
    s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (strlen(sock) >= sizeof(sa.sun_path)) {
        SKIP("socket path too long");
    }
    memcpy(sa.sun_path, sock, strlen(sock) + 1);
    if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        FAIL("socket: %s", strerror(errno));
    }

    make_overlay(ov, fifo);
    expect_refused(ov, VMC_FMT_QCOW2, 0, "FIFO");
    expect_refused(ov, VMC_FMT_QCOW2, VMC_OPEN_RDWR, "FIFO");
    expect_refused(ov, VMC_FMT_QCOW2, VMC_OPEN_BACKING_BLOCKDEV, "FIFO");
    make_overlay(ov, sock);
    expect_refused(ov, VMC_FMT_QCOW2, 0, "socket");
    make_overlay(ov, sub);
    expect_refused(ov, VMC_FMT_QCOW2, 0, "directory");
    make_overlay(ov, "/dev/null");
    expect_refused(ov, VMC_FMT_QCOW2, 0, "character device");
    /* The same files as the top layer. */
    expect_refused(fifo, VMC_FMT_RAW, 0, "FIFO");
    expect_refused(fifo, VMC_FMT_AUTO, VMC_OPEN_RDWR, "FIFO");
    expect_refused("/dev/zero", VMC_FMT_RAW, 0, "character device");

    close(s);
    unlink(sock);
    unlink(fifo);
    unlink(ov);
    rmdir(sub);
    rmdir(dir);
    return harness_exit("special-backing");
}
