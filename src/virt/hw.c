/*
 * hw.c - the hardware model of a catalogued VM (include/vmclone-virt.h):
 * read once from the catalog (the VM row, its template's firmware, its
 * NICs, each disk's whole backing chain with its seal), the accelerator
 * probed, the network mode parsed. The renderers are in hw-render.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../catalog/catalog-internal.h"
#include "vmclone-rbd.h"
#include "vmclone-virt.h"

/* <linux/kvm.h>'s two requests, spelled out so the build needs no kernel
 * headers: _IO(KVMIO = 0xAE, 0x00) and _IO(KVMIO, 0x01). */
#define HW_KVM_GET_API_VERSION 0xAE00
#define HW_KVM_CREATE_VM       0xAE01
#define HW_KVM_API_VERSION     12
#define HW_PROBE_MS            2000

/* The default UEFI firmware (Debian's ovmf package), used as a ROM. */
#define HW_OVMF "/usr/share/ovmf/OVMF.fd"

/* In a child: 0 when @dev is a KVM that creates a VM. Its stdio goes to
 * /dev/null first, so a child stuck in the device holds no pipe of ours. */
static int
kvm_probe_child(const char *dev)
{
    int null = open("/dev/null", O_RDWR), fd, vm;

    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
    }
    fd = open(dev, O_RDWR | O_CLOEXEC);
    if (fd < 0 || ioctl(fd, HW_KVM_GET_API_VERSION, 0) != HW_KVM_API_VERSION) {
        return 1;
    }
    vm = ioctl(fd, HW_KVM_CREATE_VM, 0);
    return vm < 0;
}

/* Wait up to HW_PROBE_MS for @pid; a child that does not answer is
 * killed and left (it may be stuck in the kernel). */
static bool
kvm_probe_wait(pid_t pid)
{
    struct timespec tick = { 0, 10 * 1000 * 1000 };
    int st, waited;

    for (waited = 0; waited < HW_PROBE_MS; waited += 10) {
        pid_t r = waitpid(pid, &st, WNOHANG);

        if (r == pid) {
            return WIFEXITED(st) && WEXITSTATUS(st) == 0;
        }
        if (r < 0 && errno != EINTR) {
            return false;
        }
        nanosleep(&tick, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, WNOHANG);
    return false;
}

enum vmc_hw_accel
vmc_hw_detect_accel(void)
{
    static int known = -1;
    const char *dev = getenv("VMCLONE_KVM_DEVICE");
    pid_t pid;

    if (known >= 0) {
        return (enum vmc_hw_accel)known;
    }
    if (!dev || !*dev) {
        dev = "/dev/kvm";
    }
    known = VMC_HW_ACCEL_TCG;
    if (access(dev, F_OK) != 0) {
        return VMC_HW_ACCEL_TCG;
    }
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        _exit(kvm_probe_child(dev));
    }
    if (pid > 0 && kvm_probe_wait(pid)) {
        known = VMC_HW_ACCEL_KVM;
    }
    return (enum vmc_hw_accel)known;
}

const char *
vmc_hw_accel_name(enum vmc_hw_accel a)
{
    return a == VMC_HW_ACCEL_KVM ? "kvm" : "tcg";
}

/* --accel and --network into @hw. */
static int
apply_opts(struct vmc_hw *hw, const struct vmc_hw_opts *o,
           struct vmc_error *err)
{
    const char *net = o && o->network ? o->network : "user";

    if (!o || !o->accel) {
        hw->accel = vmc_hw_detect_accel();
    } else if (!strcmp(o->accel, "kvm")) {
        hw->accel = VMC_HW_ACCEL_KVM;
    } else if (!strcmp(o->accel, "tcg")) {
        hw->accel = VMC_HW_ACCEL_TCG;
    } else {
        return vmc_error_set(err, -EINVAL, "--accel: '%s' is not kvm or "
                             "tcg", o->accel);
    }
    if (!strcmp(net, "user")) {
        hw->net = VMC_HW_NET_USER;
    } else if (!strcmp(net, "none")) {
        hw->net = VMC_HW_NET_NONE;
    } else if (!strncmp(net, "network:", 8) && net[8]) {
        hw->net = VMC_HW_NET_NETWORK;
        hw->net_name = strdup(net + 8);
    } else if (!strncmp(net, "bridge:", 7) && net[7]) {
        hw->net = VMC_HW_NET_BRIDGE;
        hw->net_name = strdup(net + 7);
    } else {
        return vmc_error_set(err, -EINVAL, "--network: '%s' is not user, "
                             "network:NAME, bridge:NAME or none", net);
    }
    if ((hw->net == VMC_HW_NET_NETWORK || hw->net == VMC_HW_NET_BRIDGE) &&
        !hw->net_name) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    return 0;
}

/* The VM's row: name, uuid, CPUs, memory, its template's firmware. */
static int
load_vm_row(struct vmc_catalog *cat, const char *vm, struct vmc_hw *hw,
            int64_t *vm_id, struct vmc_error *err)
{
    cat_stmt *st = NULL;
    const char *fw;
    int r = cat_prepare(cat, &st, err,
                        "SELECT m.id, m.name, m.uuid, m.cpus, m.memory_mb, "
                        "t.firmware FROM vms m LEFT JOIN templates t ON "
                        "t.id = m.template_id WHERE m.name = ?", "s", vm);

    if (r == 0) {
        r = cat_step(cat, st, err);
    }
    if (r == 0) {
        r = vmc_error_set(err, -ENOENT, "no VM named '%s'", vm);
    } else if (r > 0) {
        *vm_id = cat_col_i64(st, 0);
        hw->name = strdup(cat_col(st, 1));
        snprintf(hw->uuid, sizeof(hw->uuid), "%s", cat_col(st, 2));
        hw->cpus = cat_col_int(st, 3);
        hw->memory_mb = cat_col_int(st, 4);
        fw = cat_col(st, 5);
        hw->firmware = fw && !strcmp(fw, "uefi") ? VMC_HW_UEFI : VMC_HW_BIOS;
        r = hw->name ? 0 : vmc_error_set(err, -ENOMEM, "out of memory");
    }
    cat_finalize(st);
    return r;
}

static int
load_nics(struct vmc_catalog *cat, int64_t vm_id, struct vmc_hw *hw,
          struct vmc_error *err)
{
    cat_stmt *st = NULL;
    int r = cat_prepare(cat, &st, err, "SELECT mac FROM nics WHERE vm_id = "
                        "? ORDER BY idx", "I", vm_id);

    while (r == 0 && (r = cat_step(cat, st, err)) > 0) {
        char (*m)[18] = realloc(hw->macs, (hw->nnics + 1) * sizeof(*m));

        if (!m) {
            r = vmc_error_set(err, -ENOMEM, "out of memory");
            break;
        }
        hw->macs = m;
        snprintf(m[hw->nnics++], sizeof(*m), "%s", cat_col(st, 0));
        r = 0;
    }
    cat_finalize(st);
    return r < 0 ? r : 0;
}

/* Forget the backing chain of @d. */
static void
drop_chain(struct vmc_hw_disk *d)
{
    size_t i;

    for (i = 0; i < d->nchain; i++) {
        free(d->chain[i]);
        free(d->chain_formats[i]);
    }
    d->nchain = 0;
}

/* Append @path/@format to the chain of @d. */
static int
chain_push(struct vmc_hw_disk *d, const char *path, const char *format)
{
    char **c = realloc(d->chain, (d->nchain + 1) * sizeof(*c));
    char **f;

    if (!c) {
        return -ENOMEM;
    }
    d->chain = c;
    f = realloc(d->chain_formats, (d->nchain + 1) * sizeof(*f));
    if (!f) {
        return -ENOMEM;
    }
    d->chain_formats = f;
    c[d->nchain] = strdup(path);
    f[d->nchain] = strdup(format);
    d->nchain++;
    return c[d->nchain - 1] && f[d->nchain - 1] ? 0 : -ENOMEM;
}

/* Disk @d of volume @vid: the top and every layer under it, and whether
 * one of them is sealed. */
static int
load_chain(struct vmc_catalog *cat, int64_t vid, struct vmc_hw_disk *d,
           struct vmc_error *err)
{
    cat_stmt *st = NULL;
    int r = cat_prepare(cat, &st, err,
                        "WITH RECURSIVE ch(id, depth) AS (SELECT CAST(? AS "
                        "BIGINT), 0 UNION ALL SELECT v.parent_id, ch.depth "
                        "+ 1 FROM volumes v JOIN ch ON v.id = ch.id WHERE "
                        "v.parent_id IS NOT NULL) SELECT o.path, v.format, "
                        "v.seal FROM ch JOIN volume_owners o ON o.id = ch.id "
                        "JOIN volumes v ON v.id = ch.id ORDER BY ch.depth",
                        "I", vid);

    while (r == 0 && (r = cat_step(cat, st, err)) > 0) {
        const char *path = cat_col(st, 0), *fmt = cat_col(st, 1);

        d->sealed = d->sealed || cat_col(st, 2) != NULL;
        if (!d->path) {
            d->path = strdup(path);
            d->format = strdup(fmt);
            r = d->path && d->format ? 0 : -ENOMEM;
        } else {
            r = chain_push(d, path, fmt);
        }
        if (r < 0) {
            r = vmc_error_set(err, r, "out of memory");
            break;
        }
    }
    cat_finalize(st);
    if (r >= 0 && d->path && vmc_rbd_is_spec(d->path)) {
        /* RBD does the layering: QEMU opens the image alone; its seal
         * is checked by fsck --verify, not per read (start --nbd serves
         * it through librbd, unverified) */
        drop_chain(d);
        d->sealed = false;
    }
    return r < 0 ? r : 0;
}

static int
load_disks(struct vmc_catalog *cat, int64_t vm_id, struct vmc_hw *hw,
           struct vmc_error *err)
{
    struct cat_strv ids = { 0 };
    size_t i;
    int r = cat_collect(cat, &ids, err, "SELECT id FROM volumes WHERE "
                        "vm_id = ? AND top = 1 AND kind = 'disk' ORDER BY "
                        "disk", vm_id);

    if (r == 0 && ids.n) {
        hw->disks = calloc(ids.n, sizeof(*hw->disks));
        r = hw->disks ? 0 : vmc_error_set(err, -ENOMEM, "out of memory");
    }
    for (i = 0; r == 0 && i < ids.n; i++) {
        hw->ndisks++;
        r = load_chain(cat, strtoll(ids.v[i], NULL, 10), &hw->disks[i], err);
    }
    cat_strv_release(&ids);
    return r;
}

/* The VM's cloud-init seed (a volume of kind 'seed', seed.c), if it has
 * one, as a read-only CD-ROM after the disks. */
static int
load_seed(struct vmc_catalog *cat, int64_t vm_id, struct vmc_hw *hw,
          struct vmc_error *err)
{
    struct cat_strv paths = { 0 };
    int r = cat_collect(cat, &paths, err, "SELECT o.path FROM volumes v "
                        "JOIN volume_owners o ON o.id = v.id WHERE v.vm_id "
                        "= ? AND v.kind = 'seed' AND v.state = 'ready'",
                        vm_id);

    if (r == 0 && paths.n) {
        struct vmc_hw_disk cd = { .device = VMC_HW_CDROM, .path = paths.v[0],
                                  .format = (char *)"raw", .readonly = true };

        r = vmc_hw_add_disk(hw, &cd) < 0
            ? vmc_error_set(err, -ENOMEM, "out of memory") : 0;
    }
    cat_strv_release(&paths);
    return r;
}

int
vmc_hw_load(struct vmc_catalog *cat, const char *vm,
            const struct vmc_hw_opts *o, struct vmc_hw **out,
            struct vmc_error *err)
{
    struct vmc_hw *hw = calloc(1, sizeof(*hw));
    int64_t vm_id = 0;
    int r;

    *out = NULL;
    if (!hw) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    hw->machine = "q35";
    hw->ovmf = getenv("VMCLONE_OVMF") && *getenv("VMCLONE_OVMF")
               ? getenv("VMCLONE_OVMF") : HW_OVMF;
    r = apply_opts(hw, o, err);
    r = r ? r : load_vm_row(cat, vm, hw, &vm_id, err);
    r = r ? r : load_nics(cat, vm_id, hw, err);
    r = r ? r : load_disks(cat, vm_id, hw, err);
    r = r ? r : load_seed(cat, vm_id, hw, err);
    if (r) {
        vmc_hw_free(hw);
        return r;
    }
    *out = hw;
    return 0;
}

static void
disk_release(struct vmc_hw_disk *d)
{
    size_t i;

    for (i = 0; i < d->nchain; i++) {
        free(d->chain[i]);
        free(d->chain_formats[i]);
    }
    free(d->chain);
    free(d->chain_formats);
    free(d->path);
    free(d->format);
    free(d->uri);
}

void
vmc_hw_free(struct vmc_hw *hw)
{
    size_t i;

    if (!hw) {
        return;
    }
    for (i = 0; i < hw->ndisks; i++) {
        disk_release(&hw->disks[i]);
    }
    free(hw->disks);
    free(hw->macs);
    free(hw->name);
    free(hw->net_name);
    free(hw);
}

int
vmc_hw_add_disk(struct vmc_hw *hw, const struct vmc_hw_disk *d)
{
    struct vmc_hw_disk *v = realloc(hw->disks,
                                    (hw->ndisks + 1) * sizeof(*v)), *n;
    size_t i;
    int r = 0;

    if (!v) {
        return -ENOMEM;
    }
    hw->disks = v;
    n = &v[hw->ndisks++];
    memset(n, 0, sizeof(*n));
    n->device = d->device;
    n->readonly = d->readonly || d->device == VMC_HW_CDROM;
    n->sealed = d->sealed;
    n->path = strdup(d->path);
    n->format = strdup(d->format ? d->format : "raw");
    n->uri = d->uri ? strdup(d->uri) : NULL;
    if (!n->path || !n->format || (d->uri && !n->uri)) {
        r = -ENOMEM;
    }
    for (i = 0; r == 0 && i < d->nchain; i++) {
        r = chain_push(n, d->chain[i], d->chain_formats ?
                       d->chain_formats[i] : "qcow2");
    }
    return r;
}

int
vmc_hw_push_overlay(struct vmc_hw *hw, size_t i, const char *path)
{
    struct vmc_hw_disk *d;
    char **c, **f, *top, *last_c, *last_f;

    if (i >= hw->ndisks) {
        return -EINVAL;
    }
    d = &hw->disks[i];
    top = strdup(path);
    if (!top || chain_push(d, d->path, d->format) < 0) {
        free(top);
        return -ENOMEM;
    }
    /* the old top, just appended, moves to the front of the chain */
    c = d->chain;
    f = d->chain_formats;
    last_c = c[d->nchain - 1];
    last_f = f[d->nchain - 1];
    memmove(c + 1, c, (d->nchain - 1) * sizeof(*c));
    memmove(f + 1, f, (d->nchain - 1) * sizeof(*f));
    c[0] = last_c;
    f[0] = last_f;
    free(d->path);
    free(d->format);
    d->path = top;
    d->format = strdup("qcow2");
    return d->format ? 0 : -ENOMEM;
}

int
vmc_hw_set_uri(struct vmc_hw *hw, size_t i, const char *uri)
{
    char *u;

    if (i >= hw->ndisks) {
        return -EINVAL;
    }
    u = strdup(uri);
    if (!u) {
        return -ENOMEM;
    }
    free(hw->disks[i].uri);
    hw->disks[i].uri = u;
    return 0;
}

bool
vmc_hw_sealed(const struct vmc_hw *hw)
{
    size_t i;

    for (i = 0; i < hw->ndisks; i++) {
        if (hw->disks[i].sealed) {
            return true;
        }
    }
    return false;
}
