/*
 * start-detach.h - "start --detach" and "start --wait-console TEXT"
 * (start-detach.c): the start returns once QEMU runs (and, with TEXT,
 * once TEXT appeared on the guest's serial console) while QEMU goes on in
 * the background under a vm-clone process that does the start's clean-up
 * when QEMU exits.
 *
 * The process the caller waits for is a thin waiter: it forks the
 * supervisor (which runs the rest of "start": catalog, NBD server, QEMU,
 * restore, clean-up) and waits for one byte on a pipe ("running": exit
 * 0) or for the supervisor's end (its exit status). Until it says
 * "running" the supervisor's messages go to the caller's stderr; QEMU's
 * and the NBD server's, and everything after, go to the run's log.
 */
#ifndef VMC_CLI_START_DETACH_H
#define VMC_CLI_START_DETACH_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

/* Exit statuses of a detached start that did not get to "running". */
#define SDET_EXIT_TIMEOUT 124   /* TEXT not seen in time: QEMU stopped */
#define SDET_EXIT_QEMU_GONE 125 /* QEMU exited before TEXT appeared */

/* Where a detached run's console and log go by default: HOME/run/console */
#define SDET_DIR "run/console"

struct sdet {
    bool on;                    /* --detach or --wait-console */
    const char *text;           /* --wait-console TEXT, or NULL */
    double timeout;             /* --wait-timeout SECONDS */
    const char *vm;
    bool quiet, json;
    char serial[PATH_MAX];      /* the console file watched */
    char log[PATH_MAX];         /* QEMU's stderr and ours once detached */
    int log_fd;                 /* -1 until sdet_files() */
    int pipe_fd;                /* to the waiter; -1 once told */
    double t0;                  /* when the start began */
};

/* Default values: off, 300 s, no files. */
void sdet_init(struct sdet *d);
/* Fork the supervisor. In the supervisor: -1 (go on with the start). In
 * the caller's process: the exit status to return (0 once the supervisor
 * said "running", else the supervisor's own status). */
int sdet_fork(struct sdet *d);
/* The console file (@serial, or HOME/run/console/VM.log) and the log
 * (HOME/run/console/VM.err), both made empty; with @dry_run only named.
 * 0 or the exit status after the error. */
int sdet_files(struct sdet *d, const char *home, const char *serial,
               bool dry_run);
/* The default console and log files of VM @vm in store @home go with the
 * VM (vm-clone rm): unlinked when there (a --serial file elsewhere is the
 * user's and stays). */
void sdet_forget(const char *home, const char *vm);
/* In a child before exec: stdin from /dev/null, stderr (and with @out
 * stdout) to the log. */
void sdet_child_stdio(const struct sdet *d, bool out);
/* Once QEMU (@pid, our child, not reaped) runs: wait for TEXT on the
 * console (none: at once). 0, SDET_EXIT_TIMEOUT or SDET_EXIT_QEMU_GONE
 * (the error printed). */
int sdet_watch(struct sdet *d, pid_t pid);
/* Say "running": print the line (or --json) naming our pid, QEMU's
 * @qemu and the files, move our stdio to the log, wake the waiter. */
void sdet_release(struct sdet *d, pid_t qemu);

#endif /* VMC_CLI_START_DETACH_H */
