/*
 * test-hostio.c - the host I/O layer (src/io/hostio.h): plain I/O
 * semantics, fault injection through hio_set_fault_hook() and through
 * VMCLONE_FAULT, QEMU-style OFD locks, and that injected faults reach the
 * caller of the public API as errors.
 *
 * VMCLONE_FAULT is parsed once per process, so its cases run in child
 * processes (this program re-executed with a mode argument).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmclone.h"
#include "io/hostio.h"
#include "harness.h"

static char dir[256];

static char *
path_in_dir(const char *name)
{
    static char buf[4][512];
    static int n;
    char *p = buf[n++ % 4];

    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

static bool
all_bytes(const unsigned char *p, size_t len, unsigned char v)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] != v) {
            return false;
        }
    }
    return true;
}

/* ------------------------------------------------------------ plain I/O */

static void
test_basic_io(void)
{
    struct hio_file *f = NULL;
    unsigned char buf[8192];
    uint64_t len = 0;

    CHECK_EQ(hio_open(&f, path_in_dir("missing"), O_RDONLY, 0), -ENOENT);
    CHECK_EQ(hio_open(&f, dir, O_RDONLY, 0), -EISDIR);

    CHECK_EQ(hio_open(&f, path_in_dir("a"), O_RDWR | O_CREAT, 0644), 0);
    if (!f) {
        return;
    }
    CHECK(f->writable);
    memset(buf, 0xab, 4096);
    CHECK_EQ(hio_pwrite(f, buf, 4096, 0), 0);
    CHECK_EQ(hio_length(f, &len), 0);
    CHECK_EQ(len, 4096);

    /* a read that crosses end of file: the tail reads as zeros */
    memset(buf, 0x55, sizeof(buf));
    CHECK_EQ(hio_pread(f, buf, 8192, 0), 0);
    CHECK(all_bytes(buf, 4096, 0xab));
    CHECK(all_bytes(buf + 4096, 4096, 0));
    /* wholly past end of file */
    memset(buf, 0x55, sizeof(buf));
    CHECK_EQ(hio_pread(f, buf, 512, 1 << 20), 0);
    CHECK(all_bytes(buf, 512, 0));

    CHECK_EQ(hio_truncate(f, 1 << 20), 0);
    CHECK_EQ(hio_length(f, &len), 0);
    CHECK_EQ(len, 1 << 20);

    /* zero a range inside data, with and without hole punching */
    memset(buf, 0xcd, sizeof(buf));
    CHECK_EQ(hio_pwrite(f, buf, 8192, 65536), 0);
    CHECK_EQ(hio_zero_range(f, 65536 + 1024, 2048, false), 0);
    CHECK_EQ(hio_zero_range(f, 65536 + 4096, 4096, true), 0);
    CHECK_EQ(hio_pread(f, buf, 8192, 65536), 0);
    CHECK(all_bytes(buf, 1024, 0xcd));
    CHECK(all_bytes(buf + 1024, 2048, 0));
    CHECK(all_bytes(buf + 3072, 1024, 0xcd));
    CHECK(all_bytes(buf + 4096, 4096, 0));
    CHECK_EQ(hio_length(f, &len), 0);
    CHECK_EQ(len, 1 << 20);     /* zeroing never changes the length */

    hio_close(f);
}

static void
test_data_run(void)
{
    struct hio_file *f = NULL;
    unsigned char buf[4096];
    bool is_data = false;
    uint64_t run = 0;

    CHECK_EQ(hio_open(&f, path_in_dir("sparse"), O_RDWR | O_CREAT, 0644), 0);
    if (!f) {
        return;
    }
    CHECK_EQ(hio_truncate(f, 4 << 20), 0);
    memset(buf, 1, sizeof(buf));
    CHECK_EQ(hio_pwrite(f, buf, sizeof(buf), 1 << 20), 0);

    /* at the data: data, at least the block we wrote */
    CHECK_EQ(hio_data_run(f, 1 << 20, 4 << 20, &is_data, &run), 0);
    CHECK(is_data);
    CHECK(run >= 4096 && run <= (3u << 20));

    /* at the start: a hole (or "all data" if the fs can't tell), and in
     * any case never a run that swallows the data as a hole */
    CHECK_EQ(hio_data_run(f, 0, 4 << 20, &is_data, &run), 0);
    CHECK(run > 0 && run <= (4u << 20));
    if (!is_data) {
        CHECK(run <= (1u << 20));
    }
    /* the run never exceeds max */
    CHECK_EQ(hio_data_run(f, 0, 4096, &is_data, &run), 0);
    CHECK(run > 0 && run <= 4096);
    hio_close(f);
}

/* ------------------------------------------------------- fault hook */

static unsigned hook_calls[HIO_OP_COUNT];
static uint64_t hook_last_off, hook_last_len;

static int
hook(enum hio_op op, const struct hio_file *f, uint64_t off, uint64_t len)
{
    hook_calls[op]++;
    hook_last_off = off;
    hook_last_len = len;
    if (op == HIO_PWRITE && off == 8192) {
        return -EIO;
    }
    if (op == HIO_PREAD && off == 12288) {
        return -ENOSPC;     /* any errno goes through unchanged */
    }
    if (op == HIO_SYNC || op == HIO_TRUNCATE || op == HIO_FALLOC) {
        return -EIO;
    }
    return 0;
}

static void
test_fault_hook(void)
{
    struct hio_file *f = NULL;
    unsigned char buf[4096];
    uint64_t len = 0;

    CHECK_EQ(hio_open(&f, path_in_dir("hook"), O_RDWR | O_CREAT, 0644), 0);
    if (!f) {
        return;
    }
    memset(buf, 0x11, sizeof(buf));
    CHECK_EQ(hio_pwrite(f, buf, 4096, 8192), 0);

    hio_set_fault_hook(hook);
    memset(buf, 0x22, sizeof(buf));
    CHECK_EQ(hio_pwrite(f, buf, 4096, 8192), -EIO);
    CHECK_EQ(hook_calls[HIO_PWRITE], 1);
    CHECK_EQ(hook_last_off, 8192);
    CHECK_EQ(hook_last_len, 4096);
    CHECK_EQ(hio_pwrite(f, buf, 512, 0), 0);
    CHECK_EQ(hio_pread(f, buf, 512, 12288), -ENOSPC);
    CHECK_EQ(hio_sync(f), -EIO);
    CHECK_EQ(hio_truncate(f, 1 << 20), -EIO);
    CHECK_EQ(hio_allocate(f, 0, 65536), -EIO);
    CHECK_EQ(hook_calls[HIO_SYNC], 1);
    CHECK_EQ(hook_calls[HIO_TRUNCATE], 1);
    CHECK_EQ(hook_calls[HIO_FALLOC], 1);
    hio_set_fault_hook(NULL);

    /* the failed calls had no effect */
    CHECK_EQ(hio_length(f, &len), 0);
    CHECK_EQ(len, 12288);
    CHECK_EQ(hio_pread(f, buf, 4096, 8192), 0);
    CHECK(all_bytes(buf, 4096, 0x11));
    /* and without the hook everything works again */
    CHECK_EQ(hio_sync(f), 0);
    CHECK_EQ(hio_pread(f, buf, 512, 12288), 0);
    hio_close(f);
}

/* Faults injected under the engine reach the caller of the public API. */
static int
fail_all_writes(enum hio_op op, const struct hio_file *f, uint64_t off,
                uint64_t len)
{
    return op == HIO_PWRITE ? -EIO : op == HIO_SYNC ? -ENOSPC : 0;
}

static void
test_fault_through_api(void)
{
    struct vmc_open_opts o = { .format = VMC_FMT_RAW, .flags = VMC_OPEN_RDWR };
    struct vmc_image *img = NULL;
    struct vmc_error err = { 0 };
    unsigned char buf[4096];
    int fd, r;

    fd = open(path_in_dir("api.raw"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    memset(buf, 0x77, sizeof(buf));
    CHECK_EQ(pwrite(fd, buf, sizeof(buf), 0), (long long)sizeof(buf));
    CHECK_EQ(ftruncate(fd, 1 << 20), 0);
    close(fd);

    r = vmc_image_open(&img, path_in_dir("api.raw"), &o, &err);
    if (r < 0) {
        CHECK_MSG(false, "vmc_image_open(raw): %d %s", r, err.msg);
        return;
    }
    hio_set_fault_hook(fail_all_writes);
    memset(buf, 0x99, sizeof(buf));
    CHECK(vmc_image_write(img, buf, 0, 4096, 0) < 0);
    CHECK(vmc_image_flush(img) < 0);
    /* reads are not affected, and the failed write changed nothing */
    CHECK_EQ(vmc_image_read(img, buf, 0, 4096), 0);
    CHECK(all_bytes(buf, 4096, 0x77));
    hio_set_fault_hook(NULL);
    /* the failed sync left the image failed until it is reopened
     * (test-fsync-fail.c): no retry-then-succeed */
    memset(buf, 0x99, sizeof(buf));
    CHECK_EQ(vmc_image_write(img, buf, 0, 4096, 0), -ENOSPC);
    CHECK_EQ(vmc_image_close(img), -ENOSPC);
    img = NULL;
    r = vmc_image_open(&img, path_in_dir("api.raw"), &o, &err);
    if (r < 0) {
        CHECK_MSG(false, "vmc_image_open(raw) again: %d %s", r, err.msg);
        return;
    }
    CHECK_EQ(vmc_image_write(img, buf, 0, 4096, 0), 0);
    CHECK_EQ(vmc_image_flush(img), 0);
    CHECK_EQ(vmc_image_close(img), 0);
}

/* ------------------------------------------------------------ locks */

static void
test_locks(void)
{
    struct hio_file *f1 = NULL, *f2 = NULL, *f3 = NULL;
    const char *what = NULL;
    const char *p = path_in_dir("locked");
    int fd = open(p, O_RDWR | O_CREAT, 0644);

    CHECK(fd >= 0);
    CHECK_EQ(ftruncate(fd, 1 << 20), 0);
    close(fd);

    /* f1: a writer, like QEMU's read-write open (shares reads only) */
    CHECK_EQ(hio_open(&f1, p, O_RDWR, 0), 0);
    CHECK_EQ(hio_lock(f1, HIO_PERM_CONSISTENT_READ | HIO_PERM_WRITE,
                      HIO_PERM_WRITE | HIO_PERM_RESIZE, &what), 0);

    /* a reader that shares everything coexists with it */
    CHECK_EQ(hio_open(&f2, p, O_RDONLY, 0), 0);
    CHECK_EQ(hio_lock(f2, HIO_PERM_CONSISTENT_READ, 0, &what), 0);
    hio_close(f2);

    /* a second writer is refused */
    CHECK_EQ(hio_open(&f3, p, O_RDWR, 0), 0);
    what = NULL;
    CHECK_EQ(hio_lock(f3, HIO_PERM_CONSISTENT_READ | HIO_PERM_WRITE,
                      HIO_PERM_WRITE | HIO_PERM_RESIZE, &what), -EBUSY);
    CHECK(what != NULL);
    hio_close(f3);

    /* a reader that refuses to share writes (a backing file) too */
    CHECK_EQ(hio_open(&f3, p, O_RDONLY, 0), 0);
    CHECK_EQ(hio_lock(f3, HIO_PERM_CONSISTENT_READ, HIO_PERM_WRITE, &what),
             -EBUSY);
    hio_close(f3);

    /* once the writer is gone the same request succeeds */
    hio_close(f1);
    CHECK_EQ(hio_open(&f3, p, O_RDWR, 0), 0);
    CHECK_EQ(hio_lock(f3, HIO_PERM_CONSISTENT_READ | HIO_PERM_WRITE,
                      HIO_PERM_WRITE | HIO_PERM_RESIZE, &what), 0);
    hio_close(f3);
}

/* ------------------------------------------------- VMCLONE_FAULT (child) */

static int
child_counting(void)
{
    struct hio_file *f = NULL;
    unsigned char buf[512] = { 0 };

    if (hio_open(&f, path_in_dir("env"), O_RDWR | O_CREAT, 0644)) {
        return 2;
    }
    /* VMCLONE_FAULT=pwrite:3:ENOSPC,sync:2+:EIO */
    CHECK_EQ(hio_pwrite(f, buf, 512, 0), 0);
    CHECK_EQ(hio_pwrite(f, buf, 512, 512), 0);
    CHECK_EQ(hio_pwrite(f, buf, 512, 1024), -ENOSPC);
    CHECK_EQ(hio_pwrite(f, buf, 512, 1536), 0);       /* once only */
    CHECK_EQ(hio_sync(f), 0);
    CHECK_EQ(hio_sync(f), -EIO);
    CHECK_EQ(hio_sync(f), -EIO);                       /* and later */
    CHECK_EQ(hio_pread(f, buf, 512, 0), 0);            /* other ops fine */
    hio_close(f);
    /* and rename:1:EPERM; the directory sync counts as a sync */
    CHECK_EQ(hio_rename(path_in_dir("env"), path_in_dir("env2"), false),
             -EPERM);
    CHECK_EQ(access(path_in_dir("env"), F_OK), 0);     /* not renamed */
    CHECK_EQ(hio_rename(path_in_dir("env"), path_in_dir("env2"), false), 0);
    CHECK_EQ(hio_sync_dir(dir), -EIO);
    return harness_failure_count() ? 1 : 0;
}

static int
child_crash(void)
{
    struct hio_file *f = NULL;
    unsigned char buf[512];

    if (hio_open(&f, path_in_dir("crash"), O_RDWR | O_CREAT | O_TRUNC, 0644)) {
        return 2;
    }
    /* VMCLONE_FAULT=pwrite:2:crash: the second write never happens */
    memset(buf, 'A', sizeof(buf));
    hio_pwrite(f, buf, 512, 0);
    memset(buf, 'B', sizeof(buf));
    hio_pwrite(f, buf, 512, 512);
    return 3;   /* not reached */
}

static int
run_child(const char *mode, const char *fault)
{
    pid_t pid = fork();
    int st = 0;

    if (pid == 0) {
        setenv("VMCLONE_FAULT", fault, 1);
        setenv("HOSTIO_TEST_DIR", dir, 1);
        execl("/proc/self/exe", "test-hostio", mode, (char *)NULL);
        _exit(127);
    }
    if (pid < 0 || waitpid(pid, &st, 0) < 0) {
        return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* copy_file_range, rename (with and without replacing), directory sync */
static void
test_file_ops(void)
{
    struct hio_file *a = NULL, *b = NULL;
    unsigned char buf[8192];
    uint64_t len = 0;

    CHECK_EQ(hio_open(&a, path_in_dir("src"), O_RDWR | O_CREAT, 0644), 0);
    CHECK_EQ(hio_open(&b, path_in_dir("dst"), O_RDWR | O_CREAT, 0644), 0);
    if (!a || !b) {
        hio_close(a);
        hio_close(b);
        return;
    }
    memset(buf, 0x3c, sizeof(buf));
    CHECK_EQ(hio_pwrite(a, buf, sizeof(buf), 4096), 0);
    CHECK_EQ(hio_copy_range(a, b, 4096, 8192), 0);
    memset(buf, 0, sizeof(buf));
    CHECK_EQ(hio_pread(b, buf, sizeof(buf), 4096), 0);
    CHECK(all_bytes(buf, sizeof(buf), 0x3c));
    CHECK_EQ(hio_length(b, &len), 0);
    CHECK_EQ(len, 12288);
    hio_close(a);
    hio_close(b);

    CHECK_EQ(hio_rename(path_in_dir("dst"), path_in_dir("src"), true),
             -EEXIST);
    CHECK_EQ(hio_rename(path_in_dir("dst"), path_in_dir("moved"), true), 0);
    CHECK_EQ(access(path_in_dir("moved"), F_OK), 0);
    CHECK_EQ(hio_rename(path_in_dir("moved"), path_in_dir("src"), false), 0);
    CHECK(access(path_in_dir("moved"), F_OK) != 0);
    CHECK_EQ(hio_sync_dir(dir), 0);
    CHECK_EQ(hio_sync_dir(path_in_dir("no-such-dir")), -ENOENT);
}

static void
test_env_faults(void)
{
    unsigned char buf[1024];
    int fd;

    CHECK_EQ(run_child("counting", "pwrite:3:ENOSPC,sync:2+:EIO,"
                                   "rename:1:EPERM"), 0);

    CHECK_EQ(run_child("crash", "pwrite:2:crash"), 99);
    fd = open(path_in_dir("crash"), O_RDONLY);
    CHECK(fd >= 0);
    memset(buf, 0, sizeof(buf));
    CHECK_EQ(pread(fd, buf, sizeof(buf), 0), 512);   /* only the first */
    CHECK(all_bytes(buf, 512, 'A'));
    close(fd);
}

int
main(int argc, char **argv)
{
    if (argc > 1) {
        snprintf(dir, sizeof(dir), "%s", getenv("HOSTIO_TEST_DIR"));
        if (!strcmp(argv[1], "counting")) {
            return child_counting();
        }
        if (!strcmp(argv[1], "crash")) {
            return child_crash();
        }
        return 2;
    }
    unsetenv("VMCLONE_FAULT");
    snprintf(dir, sizeof(dir), "%s/vmc-hostio.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        FAIL("mkdtemp %s: %m", dir);
    }

    test_basic_io();
    test_data_run();
    test_fault_hook();
    test_fault_through_api();
    test_locks();
    test_file_ops();
    test_env_faults();

    {
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0) {
            printf("warning: could not remove %s\n", dir);
        }
    }
    return harness_exit("hostio");
}
