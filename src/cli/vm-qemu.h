/*
 * vm-qemu.h - the hardware of a catalogued VM on the command line: the
 * options that shape it (--accel, --network, direct kernel boot, serial
 * console), shared by "vm xml", "vm qemu-cmd", "vm define" and "start",
 * and the printing of its renderings (include/vmclone-virt.h builds the
 * one model all of them use). vm-qemu.c; "start" is cmd-start.c.
 */
#ifndef VMC_VM_QEMU_H
#define VMC_VM_QEMU_H

#include <stddef.h>
#include <stdio.h>

#include "cat-cli.h"
#include "vmclone-virt.h"

/* What the hardware options set (NULL: the model's default). */
struct vmq_opts {
    const char *accel, *network;
    const char *kernel, *initrd, *append, *serial;
};

/* --accel and --network, into struct vmq_opts *o. */
#define VMQ_NET_OPTS(o) \
    CLI_OPT_STRING(0, "accel", "kvm|tcg", &(o)->accel, "the accelerator " \
                   "(default: kvm when /dev/kvm works, else tcg)"), \
    CLI_OPT_STRING(0, "network", "MODE", &(o)->network, "user (default), " \
                   "network:NAME, bridge:NAME or none")
/* Direct kernel boot and the serial console, into struct vmq_opts *o. */
#define VMQ_BOOT_OPTS(o) \
    CLI_OPT_STRING(0, "kernel", "FILE", &(o)->kernel, "boot this kernel"), \
    CLI_OPT_STRING(0, "initrd", "FILE", &(o)->initrd, "with this initrd"), \
    CLI_OPT_STRING(0, "append", "CMDLINE", &(o)->append, "kernel command " \
                   "line"), \
    CLI_OPT_STRING(0, "serial", "FILE", &(o)->serial, "serial console to " \
                   "FILE (no monitor, no display)")

/*
 * The model of VM @name from the open store of @c with @o applied, in
 * *hw. @return 0, or the exit status after printing the error (a bad
 * --accel or --network is a usage error).
 */
int vmq_load(struct catcli *c, const char *name, const struct vmq_opts *o,
             struct vmc_hw **hw);
/* The command line of @hw with @extra (NULL-terminated, may be NULL)
 * appended, in *argv; @return 0 or the exit status after the error. */
int vmq_argv(const struct vmc_hw *hw, char **extra, char ***argv);
/* Print @argv as one shell command (quoted where needed, one device per
 * line), ending with a newline. */
void vmq_print(FILE *f, char *const *argv);
/* An argument vector as a JSON array of strings. */
struct json_object *vmq_argv_json(char *const *argv);

/* The refusal of "vm define" for an instant clone (exit status 4, with
 * how to start it), or 0; the store of @c is open. */
int vmq_refuse_instant(struct catcli *c, const char *name);

/* "vm xml", "vm qemu-cmd" (vm-qemu.c) */
int vmq_print_xml(struct catcli *c, const char *name,
                  const struct vmq_opts *o);
int vmq_print_qemu(struct catcli *c, const char *name,
                   const struct vmq_opts *o);

/* cmd-start.c */
int cmd_start(int argc, char **argv);
/* cmd-stop.c: "vm-clone stop VM" */
int cmd_stop(int argc, char **argv);

#endif /* VMC_VM_QEMU_H */
