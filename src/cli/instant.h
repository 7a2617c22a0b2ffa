/*
 * instant.h - instant clones on the command line (issue 16; instant.c):
 * "start --freezable" (guest RAM in a shared file, a QMP socket of ours),
 * "template freeze" (the RAM file, the device state and what clones must
 * repeat become an instant template), and the start of an instant clone
 * (share=off, -incoming defer, state loaded over QMP, a fresh vmgenid,
 * its NICs hot-added, its name and id in fw_cfg). The catalog side is
 * src/catalog/instant.c.
 */
#ifndef VMC_CLI_INSTANT_H
#define VMC_CLI_INSTANT_H

#include <stdbool.h>
#include <sys/types.h>

#include "cat-cli.h"
#include "vmclone-virt.h"

/* Where a freezable run keeps its record and QMP socket: HOME/run/instant */
#define INST_RUN "run/instant"

/* What a run of QEMU by "start" needs from us beyond the command line. */
struct inst_run {
    const char *home;           /* the store (absolute) */
    const char *vm;             /* the VM's name */
    bool quiet;
    /* freezable: our RAM file (removed after QEMU unless frozen) and
     * the record of the run (removed after QEMU) */
    char ram[4096], record[4096], qmp[4096];
    bool freezable;
    /* an instant clone: the template's record, and the clone's MACs */
    struct vmc_instant *in;
    const char *machine_asked;  /* the machine the model names ("q35") */
    char (*macs)[18];
    size_t nmacs;
    double t0;                  /* when QEMU was started */
    pid_t pid;                  /* QEMU's */
    bool resumed;               /* the clone's guest was resumed */
};

/*
 * Set up model @hw for a freezable run of VM @r->vm: RAM in a new file of
 * @memdir (NULL: /dev/shm), share=on, the QMP socket, vmgenid, fw_cfg
 * name and id, no NIC (clones hot-add theirs). @dry_run: name the files
 * only. Prints the error and returns an exit status on failure.
 */
int inst_freezable_setup(struct inst_run *r, struct vmc_hw *hw,
                         const char *memdir, bool dry_run);
/* Set up @hw for the restore of instant clone @r->vm from @r->in: the
 * template's machine, CPUs, memory and boot files, its RAM file with
 * share=off, -incoming defer; the files checked first (exit status 6 when
 * one changed). */
int inst_clone_setup(struct inst_run *r, struct vmc_hw *hw, bool dry_run);
/* Once QEMU (@pid) runs: write the record of a freezable run, or restore
 * an instant clone over QMP. 0 or an exit status (QEMU is then killed by
 * the caller). */
int inst_after_spawn(struct inst_run *r, pid_t pid, char *const *argv);
/* After QEMU exited: remove what the run made (not a frozen RAM file),
 * release @r->in; after a dry run only the latter. */
void inst_cleanup(struct inst_run *r, bool dry_run);
/* The "-device" list of @argv, one per line, with "vga,X" for "-vga X"
 * (malloc'd). */
char *inst_devices(char *const *argv);
/* Whether the devices of clone command line @argv are those its template
 * was frozen with (else the error, exit status 4). */
int inst_check_devices(struct inst_run *r, char *const *argv);

/* With VMCLONE_TRACE_START set (non-empty): one line on stderr,
 * "vm-clone: trace STEP T (+D)", T the CLOCK_MONOTONIC seconds (comparable
 * with another process's), D the seconds since the last step. */
void inst_trace(const char *step);

/* "template freeze VM --name T" (cmd-template.c's subcommand) */
int inst_freeze(struct catcli *c, const char *vm, const char *name);

#endif /* VMC_CLI_INSTANT_H */
