/*
 * cmd-stop.c - "vm-clone stop VM": stop the QEMU of a VM that
 * "vm-clone start" runs (in the foreground elsewhere, or detached), and
 * return once that start has cleaned up (its NBD server stopped, an
 * ephemeral run's overlays gone), so that "stop X && rm X" works.
 *
 * The starts of VM are the holders of its run file's lock (run-lock.h).
 * Each gets SIGTERM, which a start passes on to QEMU: QEMU flushes its
 * disks and quits at once (the guest is not asked to shut down, as with
 * "virsh destroy"). Signals go through a pidfd opened while the process
 * still held the lock, so a pid reused meanwhile is never signalled.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cat-cli.h"
#include "run-lock.h"
#include "vm-qemu.h"
#include "vmclone-catalog-admin.h"

static const char stop_usage[] =
    "usage: " CLI_NAME " stop VM [--timeout DURATION] [-q] [--json]\n\n"
    "Stop the QEMU that 'vm-clone start VM' runs (foreground or "
    "--detach): QEMU\nflushes the disks and quits, without asking the "
    "guest to shut down; return\nonce the start has cleaned up. A VM that "
    "does not run: nothing to do (exit 0).\n\n"
    "  --timeout DURATION  how long to wait (default 30s; 90, 2m...); "
    "then exit 5\n";

#define STOP_DEFAULT_TIMEOUT 30

struct run {
    pid_t pid;
    int pidfd;          /* -1 once it ended */
};

static bool
has_pid(const pid_t *pids, int n, pid_t pid)
{
    int i;

    for (i = 0; i < n; i++) {
        if (pids[i] == pid) {
            return true;
        }
    }
    return false;
}

/* A pidfd for each holder of @vm's run file that still holds it once the
 * pidfd is open; their number, or -errno. */
static int
open_runs(const char *home, const char *vm, struct run *runs)
{
    pid_t pids[RUNLOCK_SLOTS], again[RUNLOCK_SLOTS];
    int n = runlock_holders(home, vm, pids), i, m = 0, k;

    for (i = 0; i < n; i++) {
        int fd = (int)syscall(SYS_pidfd_open, pids[i], 0);

        if (fd >= 0) {
            runs[m].pid = pids[i];
            runs[m++].pidfd = fd;
        } else if (errno != ESRCH) {
            n = -errno;
        }
    }
    /* the compare of the compare-and-set: still a holder? */
    k = n < 0 ? n : runlock_holders(home, vm, again);
    for (i = 0; i < m; i++) {
        if (k < 0 || !has_pid(again, k, runs[i].pid)) {
            close(runs[i].pidfd);
            runs[i--] = runs[--m];
        }
    }
    return k < 0 ? k : m;
}

/* Wait until every run ended or @timeout_ms passed (the pidfds of the
 * runs that ended are closed and set to -1). */
static void
wait_runs(struct run *runs, int n, double timeout_ms)
{
    double end = cli_mono_s() * 1e3 + timeout_ms;
    int left = n;

    while (left > 0) {
        struct pollfd pfd[RUNLOCK_SLOTS];
        double now = cli_mono_s() * 1e3;
        int i, k = 0;

        for (i = 0; i < n; i++) {
            if (runs[i].pidfd >= 0) {
                pfd[k++] = (struct pollfd){ .fd = runs[i].pidfd,
                                            .events = POLLIN };
            }
        }
        if (now >= end) {
            break;
        }
        if (poll(pfd, (nfds_t)k, (int)(end - now) + 1) < 0 &&
            errno != EINTR) {
            break;
        }
        for (i = 0; i < n; i++) {
            int j;

            for (j = 0; j < k; j++) {
                if (pfd[j].fd == runs[i].pidfd && (pfd[j].revents & POLLIN)) {
                    close(runs[i].pidfd);
                    runs[i].pidfd = -1;
                    left--;
                }
            }
        }
    }
}

static int
opt_timeout(const char *arg, void *dest)
{
    uint64_t v;

    if (catcli_parse_duration(arg, &v) < 0 || v == 0 || v > 86400) {
        return cli_usage_error("stop", "--timeout takes a duration from 1 "
                               "second to 1 day (30, 90s, 2m), not '%s'",
                               arg);
    }
    *(uint64_t *)dest = v;
    return 0;
}

/* The result: text or --json {"vm", "was_running", "pids"}. */
static int
report(struct catcli *c, const char *vm, const struct run *runs, int n)
{
    struct json_object *o, *pids;
    int i;

    if (c->json) {
        o = json_object_new_object();
        pids = json_object_new_array();
        for (i = 0; i < n; i++) {
            json_object_array_add(pids, json_object_new_int64(runs[i].pid));
        }
        json_object_object_add(o, "vm", json_object_new_string(vm));
        json_object_object_add(o, "was_running", json_object_new_boolean(n));
        json_object_object_add(o, "pids", pids);
        catcli_json_done(o);
    } else if (!c->quiet) {
        if (n == 0) {
            fprintf(stderr, CLI_NAME ": VM '%s' is not running\n", vm);
        }
        for (i = 0; i < n; i++) {
            printf("VM '%s' stopped (its start, pid %ld, has ended)\n", vm,
                   (long)runs[i].pid);
        }
    }
    return CLI_EXIT_OK;
}

/* Signal every run of @vm (none: a VM that runs elsewhere is busy) and
 * wait for them; the exit status. */
static int
stop_runs(struct catcli *c, const char *home, const char *vm,
          const char *state, uint64_t timeout)
{
    struct run runs[RUNLOCK_SLOTS];
    int n = open_runs(home, vm, runs), i, rc = CLI_EXIT_OK;

    if (n < 0) {
        return catcli_error(CLI_EXIT_FAIL, "VM '%s': cannot read its run "
                            "file: %s", vm, strerror(-n));
    }
    if (n == 0 && !strcmp(state, "running")) {
        return catcli_error(CLI_EXIT_BUSY, "VM '%s' is running, but not "
                            "under 'vm-clone start' (another process has "
                            "its disks open for writing): stop it there", vm);
    }
    for (i = 0; i < n; i++) {
        if (syscall(SYS_pidfd_send_signal, runs[i].pidfd, SIGTERM, NULL, 0)
            < 0 && errno != ESRCH) {
            rc = catcli_error(CLI_EXIT_FAIL, "VM '%s': cannot signal its "
                              "start, pid %ld: %s", vm, (long)runs[i].pid,
                              strerror(errno));
        }
    }
    if (rc == CLI_EXIT_OK) {
        wait_runs(runs, n, (double)timeout * 1e3);
    }
    for (i = 0; i < n; i++) {
        if (runs[i].pidfd >= 0) {
            if (!rc) {
                rc = catcli_error(CLI_EXIT_BUSY, "VM '%s' still runs %llu s "
                                  "after SIGTERM (its start, pid %ld): wait "
                                  "and retry, or kill -9 %ld", vm,
                                  (unsigned long long)timeout,
                                  (long)runs[i].pid, (long)runs[i].pid);
            }
            close(runs[i].pidfd);
        }
    }
    return rc ? rc : report(c, vm, runs, n);
}

int
cmd_stop(int argc, char **argv)
{
    struct catcli c = { .verb = "stop", .usage = stop_usage };
    uint64_t timeout = STOP_DEFAULT_TIMEOUT;
    struct vmc_vm_status vs;
    struct vmc_error err = { 0 };
    char home[PATH_MAX], state[32];
    const struct cli_opt opts[] = {
        CATCLI_OPTS(&c),
        CLI_OPT_CALL(0, "timeout", "DURATION", &timeout, opt_timeout,
                     "how long to wait for the start to end (default 30s)"),
        CLI_OPT_END,
    };
    int r = catcli_parse(&c, opts, argc, argv);

    if (r) {
        return CLI_PARSE_EXIT(r);
    }
    if (argc - optind != 1) {
        return cli_usage_error(c.verb, "expecting one VM name");
    }
    r = catcli_open(&c, 0);
    if (r) {
        return r;
    }
    if (!realpath(vmc_catalog_dir(c.cat), home)) {
        snprintf(home, sizeof(home), "%s", vmc_catalog_dir(c.cat));
    }
    /* running: a disk open for writing, by a start or by anyone */
    r = vmc_catalog_vm_status(c.cat, argv[optind], &vs, &err);
    if (r < 0) {
        catcli_close(&c);
        return catcli_fail(&err, r);
    }
    snprintf(state, sizeof(state), "%s", vs.state);
    catcli_close(&c);       /* a start may need the catalog to clean up */
    return stop_runs(&c, home, argv[optind], state, timeout);
}
