/*
 * run-lock.c - the run file of a started VM and the lock its start holds
 * (run-lock.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "run-lock.h"

static int
run_path(char *out, size_t len, const char *home, const char *vm)
{
    int n = snprintf(out, len, "%s/" RUNLOCK_DIR "/%s.run", home, vm);

    return n > 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}

static void
slot_lock(struct flock *fl, short type, int slot)
{
    memset(fl, 0, sizeof(*fl));
    fl->l_type = type;
    fl->l_whence = SEEK_SET;
    fl->l_start = slot;
    fl->l_len = 1;
}

int
runlock_take(const char *home, const char *vm)
{
    char path[PATH_MAX];
    struct flock fl;
    int fd, slot, r = cli_run_dir(home, RUNLOCK_DIR);

    if (r == 0) {
        r = run_path(path, sizeof(path), home, vm);
    }
    if (r < 0) {
        return r;
    }
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        return -errno;
    }
    for (slot = 0; slot < RUNLOCK_SLOTS; slot++) {
        slot_lock(&fl, F_WRLCK, slot);
        if (fcntl(fd, F_SETLK, &fl) == 0) {
            return fd;
        }
        if (errno != EAGAIN && errno != EACCES) {
            r = -errno;
            close(fd);
            return r;
        }
    }
    close(fd);
    return -EBUSY;
}

/* The holders of @fd's slots into @pids; their number or -errno. */
static int
holders_of(int fd, pid_t *pids)
{
    struct flock fl;
    int slot, n = 0;

    for (slot = 0; slot < RUNLOCK_SLOTS; slot++) {
        slot_lock(&fl, F_WRLCK, slot);
        if (fcntl(fd, F_GETLK, &fl) < 0) {
            return -errno;
        }
        if (fl.l_type != F_UNLCK && fl.l_pid > 0) {
            pids[n++] = fl.l_pid;
        }
    }
    return n;
}

int
runlock_holders(const char *home, const char *vm, pid_t *pids)
{
    char path[PATH_MAX];
    int fd, n, r = run_path(path, sizeof(path), home, vm);

    if (r < 0) {
        return r;
    }
    /* closed at once: this process holds no slot, so closing it drops
     * nothing */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return errno == ENOENT ? 0 : -errno;
    }
    n = holders_of(fd, pids);
    close(fd);
    return n;
}

void
runlock_forget(const char *home, const char *vm)
{
    char path[PATH_MAX];
    struct flock fl;
    int fd;

    if (run_path(path, sizeof(path), home, vm) < 0 ||
        (fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)) < 0) {
        return;
    }
    /* every slot ours first (l_len 0: the whole file), so that no start
     * holds the file we unlink */
    slot_lock(&fl, F_WRLCK, 0);
    fl.l_len = 0;
    if (fcntl(fd, F_SETLK, &fl) == 0) {
        unlink(path);
    }
    close(fd);
}
