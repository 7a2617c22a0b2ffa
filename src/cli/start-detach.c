/*
 * start-detach.c - "start --detach" and "start --wait-console TEXT"
 * (start-detach.h).
 *
 * Two processes: the waiter (the caller's "vm-clone start", which returns)
 * and the supervisor (its child, in a session of its own, the parent of
 * QEMU and of the NBD server, which cleans up when QEMU exits). They share
 * one pipe: a byte from the supervisor means "running" (the waiter exits
 * 0); an end of file without it means the supervisor ended, and its exit
 * status is the start's. A signal to the waiter before "running" stops
 * the supervisor (SIGTERM: it stops QEMU and cleans up), which the waiter
 * then waits for.
 *
 * The console is a file QEMU writes (-serial file:, truncated by us before
 * QEMU starts so that an old TEXT cannot match); the supervisor reads it
 * as it grows, woken by inotify, and by a pidfd when QEMU exits; a poll
 * timeout of 1 s bounds a missed wake-up.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"
#include "instant.h"
#include "start-detach.h"

static volatile pid_t g_supervisor;

void
sdet_init(struct sdet *d)
{
    memset(d, 0, sizeof(*d));
    d->timeout = 300;
    d->log_fd = -1;
    d->pipe_fd = -1;
}

static void
stop_supervisor(int sig)
{
    (void)sig;
    if (g_supervisor > 0) {
        kill(g_supervisor, SIGTERM);
    }
}

static int
status_of(int st)
{
    if (WIFEXITED(st)) {
        return WEXITSTATUS(st);
    }
    return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : CLI_EXIT_FAIL;
}

int
sdet_fork(struct sdet *d)
{
    static const int sigs[3] = { SIGINT, SIGTERM, SIGHUP };
    struct sigaction sa;
    char byte;
    ssize_t n;
    pid_t pid;
    int fds[2], st = 0, i;

    d->t0 = cli_mono_s();
    fflush(stdout);
    fflush(stderr);
    if (pipe2(fds, O_CLOEXEC) < 0) {
        return cli_error("cannot start VM '%s' in the background: %s", d->vm,
                         strerror(errno));
    }
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return cli_error("cannot start VM '%s' in the background: %s", d->vm,
                         strerror(errno));
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

        close(fds[0]);
        d->pipe_fd = fds[1];
        setsid();               /* no terminal's signals once detached */
        if (null >= 0) {
            dup2(null, STDIN_FILENO);
            close(null);
        }
        return -1;
    }
    close(fds[1]);
    g_supervisor = pid;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = stop_supervisor;
    sigemptyset(&sa.sa_mask);
    for (i = 0; i < 3; i++) {
        sigaction(sigs[i], &sa, NULL);
    }
    do {
        n = read(fds[0], &byte, 1);
    } while (n < 0 && errno == EINTR);
    close(fds[0]);
    if (n == 1) {
        return CLI_EXIT_OK;     /* running: the supervisor goes on */
    }
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            return cli_error("waiting for the start of VM '%s': %s", d->vm,
                             strerror(errno));
        }
    }
    if (WIFEXITED(st)) {
        cli_json_printed();     /* --json: the supervisor's error document */
    }
    return status_of(st);
}

/* Open (and empty) @path for writing: our file, or the one --serial named
 * (QEMU would empty it too); the fd (@keep_open) or 0, -1 after the error. */
static int
fresh_file(const char *path, bool keep_open)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    if (fd < 0) {
        cli_error("cannot create '%s': %s", path, strerror(errno));
        return -1;
    }
    if (!keep_open) {
        close(fd);
        return 0;
    }
    return fd;
}

int
sdet_files(struct sdet *d, const char *home, const char *serial,
           bool dry_run)
{
    char dir[PATH_MAX];
    int n, fd, r;

    n = snprintf(dir, sizeof(dir), "%s/" SDET_DIR, home);
    if (n < 0 || (size_t)n >= sizeof(dir) ||
        (size_t)snprintf(d->log, sizeof(d->log), "%s/%s.err", dir, d->vm) >=
            sizeof(d->log) ||
        (size_t)snprintf(d->serial, sizeof(d->serial), "%s/%s.log", dir,
                         d->vm) >= sizeof(d->serial)) {
        return cli_error("the store's path is too long for the console "
                         "files of VM '%s'", d->vm);
    }
    if (serial) {
        snprintf(d->serial, sizeof(d->serial), "%s", serial);
    }
    if (dry_run) {
        return 0;
    }
    if ((r = cli_run_dir(home, SDET_DIR)) < 0) {
        return cli_error("cannot create '%s/" SDET_DIR "': %s", home,
                         strerror(-r));
    }
    if (fresh_file(d->serial, false) < 0) {
        return CLI_EXIT_FAIL;
    }
    fd = fresh_file(d->log, true);
    if (fd < 0) {
        return CLI_EXIT_FAIL;
    }
    d->log_fd = fd;
    return 0;
}

void
sdet_forget(const char *home, const char *vm)
{
    static const char *const ext[] = { "log", "err" };
    char path[PATH_MAX];
    size_t i;

    for (i = 0; i < 2; i++) {
        int n = snprintf(path, sizeof(path), "%s/" SDET_DIR "/%s.%s", home,
                         vm, ext[i]);

        if (n > 0 && (size_t)n < sizeof(path)) {
            unlink(path);
        }
    }
}

void
sdet_child_stdio(const struct sdet *d, bool out)
{
    int null = open("/dev/null", O_RDONLY);

    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        close(null);
    }
    if (d->log_fd >= 0) {
        if (out) {
            dup2(d->log_fd, STDOUT_FILENO);
        }
        dup2(d->log_fd, STDERR_FILENO);
    }
}

/* Whether @pid (our child) exited, without reaping it. */
static bool
exited(pid_t pid)
{
    siginfo_t si;

    memset(&si, 0, sizeof(si));
    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           si.si_pid == pid;
}

/* The end of the log (its last @max bytes) on our stderr. */
static void
print_log_tail(const struct sdet *d, size_t max)
{
    char buf[2048];
    struct stat sb;
    ssize_t n;
    int fd = open(d->log, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        return;
    }
    if (max > sizeof(buf)) {
        max = sizeof(buf);
    }
    if (fstat(fd, &sb) == 0 && (size_t)sb.st_size > max) {
        lseek(fd, sb.st_size - (off_t)max, SEEK_SET);
    }
    n = read(fd, buf, max);
    close(fd);
    if (n > 0) {
        fprintf(stderr, CLI_NAME ": the last messages of the run (%s):\n",
                d->log);
        fwrite(buf, 1, (size_t)n, stderr);
        if (buf[n - 1] != '\n') {
            fputc('\n', stderr);
        }
    }
}

/* Read what @fd has beyond what was read, looking for @text across the
 * reads (@keep holds the tail of the last read). */
static bool
scan(int fd, const char *text, char *keep, size_t *nkeep)
{
    size_t tl = strlen(text);
    char buf[8192 + 1024];
    ssize_t n;

    while ((n = read(fd, buf + *nkeep, sizeof(buf) - 1 - *nkeep)) > 0) {
        size_t len = *nkeep + (size_t)n;

        memcpy(buf, keep, *nkeep);
        if (memmem(buf, len, text, tl)) {
            return true;
        }
        *nkeep = len < tl - 1 ? len : tl - 1;
        memcpy(keep, buf + len - *nkeep, *nkeep);
    }
    return false;
}

int
sdet_watch(struct sdet *d, pid_t pid)
{
    char keep[1024];
    size_t nkeep = 0;
    double deadline = d->t0 + d->timeout;
    int fd, in, pfd, rc = -1;

    if (!d->text) {
        return 0;
    }
    fd = open(d->serial, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return cli_error("cannot read the console '%s': %s", d->serial,
                         strerror(errno));
    }
    in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (in >= 0 && inotify_add_watch(in, d->serial, IN_MODIFY) < 0) {
        close(in);
        in = -1;
    }
    pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    while (rc < 0) {
        struct pollfd p[2] = { { .fd = in, .events = POLLIN },
                               { .fd = pfd, .events = POLLIN } };
        char ev[4096];
        double left;

        if (scan(fd, d->text, keep, &nkeep)) {
            rc = 0;
            break;
        }
        if (exited(pid)) {
            /* what it wrote before it went */
            rc = scan(fd, d->text, keep, &nkeep) ? 0 : SDET_EXIT_QEMU_GONE;
            break;
        }
        left = deadline - cli_mono_s();
        if (left <= 0) {
            rc = SDET_EXIT_TIMEOUT;
            break;
        }
        /* without inotify (or a pidfd) a missed event costs 50 ms */
        poll(p, 2, (int)(left > 1 ? (in >= 0 && pfd >= 0 ? 1000 : 50)
                                  : left * 1000 + 1));
        while (in >= 0 && read(in, ev, sizeof(ev)) > 0) {
            /* drained: the file is read above */
        }
    }
    close(fd);
    if (in >= 0) {
        close(in);
    }
    if (pfd >= 0) {
        close(pfd);
    }
    inst_trace(rc == 0 ? "console-text" : "console-given-up");
    if (rc == SDET_EXIT_TIMEOUT) {
        cli_error("'%s' did not appear on the serial console of VM '%s' "
                  "(%s) in %g s: QEMU is stopped", d->text, d->vm, d->serial,
                  d->timeout);
    } else if (rc == SDET_EXIT_QEMU_GONE) {
        cli_error("QEMU of VM '%s' exited before '%s' appeared on its "
                  "serial console (%s)", d->vm, d->text, d->serial);
        print_log_tail(d, 1500);
    }
    return rc;
}

void
sdet_release(struct sdet *d, pid_t qemu)
{
    double secs = cli_mono_s() - d->t0;
    char byte = 0;
    void (*old)(int);
    ssize_t n;

    if (d->json) {
        struct json_object *o = json_object_new_object();

        cli_json_add_str(o, "vm", d->vm);
        json_object_object_add(o, "pid", json_object_new_int64(getpid()));
        json_object_object_add(o, "qemu_pid", json_object_new_int64(qemu));
        cli_json_add_str(o, "console", d->serial);
        cli_json_add_str(o, "log", d->log);
        json_object_object_add(o, "wait_console", d->text
                               ? json_object_new_string(d->text) : NULL);
        json_object_object_add(o, "seconds", json_object_new_double(secs));
        cli_json_print(stdout, o);
        json_object_put(o);
    } else if (!d->quiet) {
        printf("VM '%s' runs in the background (%.3f s%s%s%s): stop it with "
               "'" CLI_NAME " stop %s' (or 'kill %ld'); console %s, log %s\n",
               d->vm, secs, d->text ? ", '" : "", d->text ? d->text : "",
               d->text ? "' seen" : "", d->vm, (long)getpid(), d->serial,
               d->log);
    }
    fflush(stdout);
    fflush(stderr);
    if (d->log_fd >= 0) {
        dup2(d->log_fd, STDOUT_FILENO);
        dup2(d->log_fd, STDERR_FILENO);
    }
    old = signal(SIGPIPE, SIG_IGN);     /* a waiter killed meanwhile */
    do {
        n = write(d->pipe_fd, &byte, 1);
    } while (n < 0 && errno == EINTR);
    signal(SIGPIPE, old);
    close(d->pipe_fd);
    d->pipe_fd = -1;
}
