/*
 * run-lock.h - which processes run a VM (run-lock.c): "vm-clone start"
 * takes a lock on the VM's run file, STORE/run/vm/VM.run, for as long as
 * it runs QEMU, and "vm-clone stop" asks the kernel who holds it.
 *
 * The lock is a POSIX record lock on one byte of the file (one byte per
 * concurrent start of the VM: an ephemeral VM may run twice), so the
 * kernel both frees it when the start's process ends, however it ends,
 * and names that process to anyone who asks (F_GETLK): no pid file that a
 * crash leaves stale or that a reused pid makes lie.
 */
#ifndef VMC_CLI_RUN_LOCK_H
#define VMC_CLI_RUN_LOCK_H

#include <stddef.h>
#include <sys/types.h>

/* Where the run files are: HOME/run/vm */
#define RUNLOCK_DIR "run/vm"
/* At most this many starts of one VM are found by stop. */
#define RUNLOCK_SLOTS 64

/* Lock a free slot of VM @vm's run file in store @home, for this process
 * (not its children: record locks are not inherited). Returns the open
 * descriptor (close-on-exec; the lock goes when the process ends), or a
 * negative errno (-EBUSY: every slot taken). */
int runlock_take(const char *home, const char *vm);
/* The processes that hold a slot of @vm's run file, into @pids (at most
 * RUNLOCK_SLOTS); their number (0 when there is no run file), or a
 * negative errno. */
int runlock_holders(const char *home, const char *vm, pid_t *pids);
/* The run file of @vm goes with the VM (vm-clone rm), unless a start
 * holds it. */
void runlock_forget(const char *home, const char *vm);

#endif /* VMC_CLI_RUN_LOCK_H */
