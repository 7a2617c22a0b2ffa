/*
 * vm-qemu.h - the qemu-system-x86_64 command line of a catalogued VM.
 * Built in cmd-vm.c ("vm qemu-cmd" prints it), run by "start"
 * (cmd-start.c), which may point the disks at NBD URIs instead of files.
 */
#ifndef VMC_VM_QEMU_H
#define VMC_VM_QEMU_H

#include <stddef.h>
#include <stdio.h>

#include <json-c/json.h>

struct vmq_opts {
    /** NULL: "-machine q35,accel=kvm:tcg"; else "-machine q35" and one
     *  "-accel X" per ':'-separated item ("tcg", "kvm:tcg"). */
    const char *accel;
    /** NULL: each disk's qcow2 file; else one URI per disk (raw). */
    const char *const *drives;
    const char *kernel, *initrd, *append;   /**< NULL = none */
    /** File for the serial console (no monitor, no display); NULL:
     *  -nographic (serial and monitor on stdio). */
    const char *serial;
};

/** A NULL-terminated argument vector that owns its strings. */
struct vmq_argv {
    char **v;
    size_t n, cap;
};

/** Append a copy of @s. @return 0 or -ENOMEM. */
int vmq_push(struct vmq_argv *a, const char *s);
void vmq_argv_free(struct vmq_argv *a);
/**
 * The command line for @vm (an object of catcli_vm_json(): name, uuid,
 * cpus, memory_mb, disks[].path, nics[].mac). @return 0 or -ENOMEM.
 */
int vmq_build(struct json_object *vm, const struct vmq_opts *o,
              struct vmq_argv *out);
/** Print @a as one shell command (quoted where needed, one device per
 *  line), ending with a newline. */
void vmq_print(FILE *f, const struct vmq_argv *a);

/* cmd-start.c */
int cmd_start(int argc, char **argv);

#endif /* VMC_VM_QEMU_H */
