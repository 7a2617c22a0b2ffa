/*
 * vmclone-virt.h - the one hardware model of a catalogued VM and what
 * hypervisors get from it: a struct vmc_hw built once from the catalog
 * (accelerator, machine, firmware, CPUs, memory, disks with their whole
 * backing chain, NICs with the catalog's MACs, network mode), rendered
 * as a libvirt domain (vmc_hw_xml), a qemu-system-x86_64 argument vector
 * (vmc_hw_qemu_argv: "vm qemu-cmd" and "start"), and, when built with
 * libvirt, defined through libvirt's C API (vmc_virt_*).
 *
 * ADDING A DEVICE (a CD-ROM, a throwaway overlay, ...): build the model
 * with vmc_hw_load(), then
 *   - a CD-ROM or another disk: vmc_hw_add_disk(hw, &(struct vmc_hw_disk){
 *         .device = VMC_HW_CDROM, .path = "/abs/seed.iso",
 *         .format = "raw", .readonly = true });
 *     (the model copies the strings; it lands after the catalog's disks,
 *     on the SATA bus for a CD-ROM, virtio for a disk);
 *   - an overlay over disk i: vmc_hw_push_overlay(hw, i, "/abs/ov.qcow2")
 *     (the overlay becomes the top, the old top the first backing layer);
 *   - an NBD source for disk i (start through "serve"):
 *     vmc_hw_set_uri(hw, i, "nbd+unix:///...") (QEMU sees a raw disk).
 * All three renderers then show the device the same way; nothing else to
 * touch.
 */
#ifndef VMCLONE_VIRT_H
#define VMCLONE_VIRT_H

#include <stdbool.h>
#include <stddef.h>

#include "vmclone.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vmc_catalog;

enum vmc_hw_accel { VMC_HW_ACCEL_TCG, VMC_HW_ACCEL_KVM };
enum vmc_hw_firmware { VMC_HW_BIOS, VMC_HW_UEFI };
enum vmc_hw_net { VMC_HW_NET_USER, VMC_HW_NET_NETWORK, VMC_HW_NET_BRIDGE,
                  VMC_HW_NET_NONE };
enum vmc_hw_device { VMC_HW_DISK, VMC_HW_CDROM };

/** One disk: the top image and the images under it (top first). */
struct vmc_hw_disk {
    enum vmc_hw_device device;
    char *path;             /**< the top image (absolute) */
    char *format;           /**< "qcow2", "raw" */
    char *uri;              /**< NULL, or an NBD URI QEMU opens instead */
    bool readonly;
    bool sealed;            /**< a layer of the chain carries a seal */
    char **chain;           /**< backing images under @path, top first */
    char **chain_formats;   /**< their formats */
    size_t nchain;
};

struct vmc_hw {
    char *name;
    char uuid[37];
    enum vmc_hw_accel accel;
    const char *machine;            /**< "q35" */
    enum vmc_hw_firmware firmware;
    const char *ovmf;               /**< the OVMF image for UEFI */
    int cpus, memory_mb;
    struct vmc_hw_disk *disks;
    size_t ndisks;
    char (*macs)[18];
    size_t nnics;
    enum vmc_hw_net net;
    char *net_name;                 /**< network or bridge name */
    /* direct kernel boot and console (qemu only; NULL = none) */
    const char *kernel, *initrd, *append;
    const char *serial;             /**< console to this file; NULL:
                                     *   -nographic */
    /* instant clones (cmd-instant.c; NULL/false: an ordinary run) */
    const char *mem_path;   /**< guest RAM in this file (a file-backed
                             *   memory backend named "vmc-ram") */
    bool mem_share;         /**< share=on (freezable) or off (a clone) */
    const char *qmp;        /**< a QMP server on this unix socket */
    bool incoming_defer;    /**< -incoming defer (a clone being restored) */
    bool vmgenid;           /**< -device vmgenid (a new id per start) */
    bool no_nics;           /**< no NIC on the command line (hot-added) */
    bool no_vga;            /**< -vga none: no display adapter, whose
                             *   16 MiB of VRAM each clone would copy */
    const char *fw_name, *fw_id;    /**< fw_cfg opt/vmclone/name and id,
                                     *   padded to VMC_HW_FWCFG_LEN */
};

/** The length of the fw_cfg values opt/vmclone/name and opt/vmclone/id
 *  (padded with spaces: a restored guest keeps the sizes it probed). */
#define VMC_HW_FWCFG_LEN 64

/** Options of vmc_hw_load(): NULL strings take the defaults. */
struct vmc_hw_opts {
    const char *accel;      /**< "kvm", "tcg"; NULL: vmc_hw_detect_accel() */
    const char *network;    /**< user (default), network:NAME,
                             *   bridge:NAME, none */
};

/**
 * Whether KVM works: /dev/kvm (or $VMCLONE_KVM_DEVICE) opens, answers
 * KVM_GET_API_VERSION and creates a VM, probed in a child process given
 * at most 2 s (a device that hangs counts as no KVM). The answer is
 * remembered for the process.
 */
VMC_API enum vmc_hw_accel vmc_hw_detect_accel(void);
/** "kvm" or "tcg". */
VMC_API const char *vmc_hw_accel_name(enum vmc_hw_accel a);

/**
 * The model of VM @vm from the catalog, with @o applied.
 * @return 0, -ENOENT (no VM @vm), -EINVAL (a bad --accel or --network),
 * -ENOMEM. Free with vmc_hw_free().
 */
VMC_API int vmc_hw_load(struct vmc_catalog *cat, const char *vm,
                        const struct vmc_hw_opts *o, struct vmc_hw **out,
                        struct vmc_error *err);
VMC_API void vmc_hw_free(struct vmc_hw *hw);

/** Add disk @d (its strings copied) after the others. 0 or -ENOMEM. */
VMC_API int vmc_hw_add_disk(struct vmc_hw *hw, const struct vmc_hw_disk *d);
/** Put qcow2 overlay @path on top of disk @i. 0, -EINVAL, -ENOMEM. */
VMC_API int vmc_hw_push_overlay(struct vmc_hw *hw, size_t i,
                                const char *path);
/** QEMU reads disk @i from @uri (raw) instead. 0, -EINVAL, -ENOMEM. */
VMC_API int vmc_hw_set_uri(struct vmc_hw *hw, size_t i, const char *uri);
/** Whether a disk of @hw sits on a sealed chain. */
VMC_API bool vmc_hw_sealed(const struct vmc_hw *hw);

/** The libvirt domain XML of @hw (malloc'd, NUL-terminated, in *out).
 *  0 or -ENOMEM. */
VMC_API int vmc_hw_xml(const struct vmc_hw *hw, char **out);
/** The qemu-system-x86_64 command line of @hw: a NULL-terminated vector
 *  of malloc'd strings (free with vmc_hw_argv_free()). 0 or -ENOMEM. */
VMC_API int vmc_hw_qemu_argv(const struct vmc_hw *hw, char ***out,
                             size_t *n);
VMC_API void vmc_hw_argv_free(char **argv);

/* ------------------------------------------------------ QMP (qmp.c) */

struct vmc_qmp;
struct json_object;

/**
 * Connect to QEMU's QMP socket @path (waiting up to @timeout seconds for
 * it to listen), read the greeting and leave negotiation mode. @pid (a
 * child of the caller; 0: none) is QEMU: when it exits, the wait ends
 * at once (-ECHILD).
 * @return 0, or -errno with a message (-ETIMEDOUT, -ECONNREFUSED...).
 */
VMC_API int vmc_qmp_open(const char *path, double timeout, int pid,
                         struct vmc_qmp **out, struct vmc_error *err);
/**
 * Run command @cmd with @args (NULL: none; not consumed) and wait (60 s
 * at most) for its answer; events in between are skipped. The "return"
 * member in *@ret (a reference to put; NULL when none). -EIO with QEMU's
 * reason when it refused, -EPIPE when QEMU closed the socket.
 */
VMC_API int vmc_qmp_cmd(struct vmc_qmp *q, const char *cmd,
                        struct json_object *args, struct json_object **ret,
                        struct vmc_error *err);
/**
 * vmc_qmp_cmd() with open file @fd passed along (SCM_RIGHTS), as "getfd"
 * and "add-fd" want; @fd stays the caller's.
 */
VMC_API int vmc_qmp_cmd_fd(struct vmc_qmp *q, const char *cmd,
                           struct json_object *args, int fd,
                           struct json_object **ret, struct vmc_error *err);
/**
 * Wait (at most @timeout s) for the end of a migration: a MIGRATION event
 * (the "events" capability on) with status "completed", "failed" or
 * "cancelled", also one that came while a command waited for its answer.
 * The status in @buf; 0, or -errno (-ETIMEDOUT, -EPIPE).
 */
VMC_API int vmc_qmp_wait_migration(struct vmc_qmp *q, double timeout,
                                   char *buf, size_t len,
                                   struct vmc_error *err);
/** query-status: the run state ("running", "paused", "inmigrate"...). */
VMC_API int vmc_qmp_status(struct vmc_qmp *q, char *buf, size_t len,
                           struct vmc_error *err);
/** Wait (at most @timeout s) for QEMU to close the socket: 0 or -errno. */
VMC_API int vmc_qmp_wait_closed(struct vmc_qmp *q, double timeout);
VMC_API void vmc_qmp_close(struct vmc_qmp *q);

/* ------------------------------------------- libvirt (virt-domain.c) */

/**
 * Define (or redefine) the domain of @hw (a model of vmc_hw_load(), its
 * name and UUID the VM's) on libvirt connection @uri (NULL: libvirt's
 * default), and remember @uri and the UUID in the catalog.
 * @return 0, -ECONNREFUSED (no connection), -EIO (libvirt refused it,
 * the message says why), -ENOTSUP (built without libvirt).
 */
VMC_API int vmc_virt_define(struct vmc_catalog *cat, const struct vmc_hw *hw,
                            const char *uri, struct vmc_error *err);
/**
 * Undefine the domain of VM @name and forget it; a running domain is
 * -EBUSY (naming it) unless @stop, which destroys it first. -ENOENT: no
 * such VM, or it has no domain.
 */
VMC_API int vmc_virt_undefine(struct vmc_catalog *cat, const char *name,
                              bool stop, struct vmc_error *err);

#ifdef __cplusplus
}
#endif

#endif /* VMCLONE_VIRT_H */
