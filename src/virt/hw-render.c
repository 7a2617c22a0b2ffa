/*
 * hw-render.c - the hardware model (hw.c) rendered two ways: a libvirt
 * domain (vmc_hw_xml) and a qemu-system-x86_64 command line
 * (vmc_hw_qemu_argv). Both name the same accelerator, machine,
 * firmware, disks (in order), NICs and network; keep them in step.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmclone-rbd.h"
#include "vmclone-virt.h"

/* ------------------------------------------------------------ the XML */

static void
xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '\'':
            fputs("&apos;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

/* "@pre@text@post" with @text escaped. */
static void
xml_line(FILE *f, const char *pre, const char *text, const char *post)
{
    fputs(pre, f);
    xml_text(f, text);
    fputs(post, f);
}

static void
xml_os(FILE *f, const struct vmc_hw *hw)
{
    fprintf(f, "  <os>\n    <type arch='x86_64' machine='%s'>hvm</type>\n",
            hw->machine);
    if (hw->firmware == VMC_HW_UEFI) {
        xml_line(f, "    <loader readonly='yes' type='rom'>", hw->ovmf,
                 "</loader>\n");
    }
    if (hw->kernel) {
        xml_line(f, "    <kernel>", hw->kernel, "</kernel>\n");
    }
    if (hw->initrd) {
        xml_line(f, "    <initrd>", hw->initrd, "</initrd>\n");
    }
    if (hw->append) {
        xml_line(f, "    <cmdline>", hw->append, "</cmdline>\n");
    }
    fputs("    <boot dev='hd'/>\n  </os>\n", f);
}

/* An rbd disk as a libvirt network disk: QEMU's rbd filename
 * "rbd:POOL/[NS/]IMAGE[:id=U][:conf=F]" split into the image name and
 * its ceph.conf. */
static void
xml_rbd_disk(FILE *f, const struct vmc_hw_disk *d, size_t *nvirtio)
{
    char *q = NULL, *name, *conf, *end;

    if (vmc_rbd_qemu_filename(d->path, &q, NULL) < 0 || !q) {
        free(q);
        return;
    }
    name = q + 4;                       /* after "rbd:" */
    conf = strstr(name, ":conf=");
    if (conf) {
        conf += 6;
        end = conf + strcspn(conf, ":");
        *end = '\0';
    }
    name[strcspn(name, ":")] = '\0';
    fputs("    <disk type='network' device='disk'>\n      <driver "
          "name='qemu' type='raw' cache='writeback'/>\n", f);
    xml_line(f, "      <source protocol='rbd' name='", name, "'>\n");
    if (conf) {
        xml_line(f, "        <config file='", conf, "'/>\n");
    }
    fprintf(f, "      </source>\n      <target dev='vd%c' bus='virtio'/>\n",
            (int)('a' + (*nvirtio)++ % 26));
    if (d->readonly) {
        fputs("      <readonly/>\n", f);
    }
    fputs("    </disk>\n", f);
    free(q);
}

/* Disk @i: its source and the whole <backingStore> chain under it. */
static void
xml_disk(FILE *f, const struct vmc_hw_disk *d, size_t *nvirtio, size_t *nscsi)
{
    bool cd = d->device == VMC_HW_CDROM;
    size_t k;

    if (!cd && vmc_rbd_is_spec(d->path)) {
        xml_rbd_disk(f, d, nvirtio);
        return;
    }
    fprintf(f, "    <disk type='file' device='%s'>\n      <driver "
            "name='qemu' type='%s'/>\n", cd ? "cdrom" : "disk", d->format);
    xml_line(f, "      <source file='", d->path, "'/>\n");
    for (k = 0; k < d->nchain; k++) {
        int ind = (int)(6 + 2 * k);

        fprintf(f, "%*s<backingStore type='file'>\n%*s<format type='%s'/>\n",
                ind, "", ind + 2, "", d->chain_formats[k]);
        fprintf(f, "%*s", ind + 2, "");
        xml_line(f, "<source file='", d->chain[k], "'/>\n");
    }
    fprintf(f, "%*s<backingStore/>\n", (int)(6 + 2 * d->nchain), "");
    for (k = d->nchain; k > 0; k--) {
        fprintf(f, "%*s</backingStore>\n", (int)(6 + 2 * (k - 1)), "");
    }
    if (cd) {
        /* virtio-scsi: cloud kernels (Debian's cloud flavour) have its
         * driver and sr_mod, not AHCI */
        fprintf(f, "      <target dev='sd%c' bus='scsi'/>\n",
                (int)('a' + (*nscsi)++ % 26));
    } else {
        fprintf(f, "      <target dev='vd%c' bus='virtio'/>\n",
                (int)('a' + (*nvirtio)++ % 26));
    }
    if (d->readonly) {
        fputs("      <readonly/>\n", f);
    }
    fputs("    </disk>\n", f);
}

static void
xml_nics(FILE *f, const struct vmc_hw *hw)
{
    static const char *const kind[] = { "user", "network", "bridge" };
    size_t i;

    for (i = 0; hw->net != VMC_HW_NET_NONE && i < hw->nnics; i++) {
        fprintf(f, "    <interface type='%s'>\n      <mac address='%s'/>\n",
                kind[hw->net], hw->macs[i]);
        if (hw->net == VMC_HW_NET_NETWORK) {
            xml_line(f, "      <source network='", hw->net_name, "'/>\n");
        } else if (hw->net == VMC_HW_NET_BRIDGE) {
            xml_line(f, "      <source bridge='", hw->net_name, "'/>\n");
        }
        fputs("      <model type='virtio'/>\n    </interface>\n", f);
    }
}

int
vmc_hw_xml(const struct vmc_hw *hw, char **out)
{
    size_t len = 0, i, nvirtio = 0, nscsi = 0;
    FILE *f = open_memstream(out, &len);

    if (!f) {
        return -ENOMEM;
    }
    fprintf(f, "<domain type='%s'>\n", hw->accel == VMC_HW_ACCEL_KVM ?
            "kvm" : "qemu");
    xml_line(f, "  <name>", hw->name, "</name>\n");
    fprintf(f, "  <uuid>%s</uuid>\n  <memory unit='MiB'>%d</memory>\n"
            "  <vcpu>%d</vcpu>\n", hw->uuid, hw->memory_mb, hw->cpus);
    xml_os(f, hw);
    fputs("  <features>\n    <acpi/>\n  </features>\n  <devices>\n", f);
    for (i = 0; i < hw->ndisks; i++) {
        xml_disk(f, &hw->disks[i], &nvirtio, &nscsi);
    }
    if (nscsi) {
        fputs("    <controller type='scsi' index='0' model='virtio-scsi'/>\n",
              f);
    }
    xml_nics(f, hw);
    if (hw->serial) {
        xml_line(f, "    <serial type='file'>\n      <source path='",
                 hw->serial, "'/>\n    </serial>\n");
    } else {
        fputs("    <serial type='pty'/>\n    <console type='pty'/>\n", f);
    }
    fputs("  </devices>\n</domain>\n", f);
    if (fclose(f) != 0) {
        free(*out);
        *out = NULL;
        return -ENOMEM;
    }
    return 0;
}

/* --------------------------------------------------- the command line */

struct argv {
    char **v;
    size_t n, cap;
    int err;
};

/* Append printf(@fmt, ...) (after an error: nothing). */
static void __attribute__((format(printf, 2, 3)))
arg(struct argv *a, const char *fmt, ...)
{
    va_list ap;
    char *s;

    if (a->err) {
        return;
    }
    if (a->n + 2 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 32;
        char **v = realloc(a->v, cap * sizeof(*v));

        if (!v) {
            a->err = -ENOMEM;
            return;
        }
        a->v = v;
        a->cap = cap;
    }
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0) {
        a->err = -ENOMEM;
    } else {
        a->v[a->n++] = s;
        a->v[a->n] = NULL;
    }
    va_end(ap);
}

/* @s with its commas doubled (QEMU's option syntax); malloc'd. */
static char *
commas(const char *s)
{
    char *out = malloc(2 * strlen(s) + 1), *p = out;

    for (; out && *s; s++) {
        if (*s == ',') {
            *p++ = ',';
        }
        *p++ = *s;
    }
    if (out) {
        *p = '\0';
    }
    return out;
}

static void
qemu_disk(struct argv *a, const struct vmc_hw_disk *d, size_t *ncd)
{
    char *rbd = NULL, *src;

    if (!d->uri && d->device != VMC_HW_CDROM && vmc_rbd_is_spec(d->path)) {
        if (vmc_rbd_qemu_filename(d->path, &rbd, NULL) < 0 ||
                !(src = commas(rbd))) {
            a->err = -ENOMEM;
        } else {
            arg(a, "-drive");
            arg(a, "file=%s,format=raw,if=virtio,cache=writeback%s", src,
                d->readonly ? ",readonly=on" : "");
            free(src);
        }
        free(rbd);
        return;
    }
    src = commas(d->uri ? d->uri : d->path);

    if (!src) {
        a->err = -ENOMEM;
        return;
    }
    if (d->device == VMC_HW_CDROM) {
        /* on the virtio-scsi controller (as in the domain XML) */
        if ((*ncd)++ == 0) {
            arg(a, "-device");
            arg(a, "virtio-scsi-pci,id=scsi0");
        }
        arg(a, "-drive");
        arg(a, "file=%s,format=%s,if=none,id=cd%zu,media=cdrom,readonly=on",
            src, d->uri ? "raw" : d->format, *ncd - 1);
        arg(a, "-device");
        arg(a, "scsi-cd,bus=scsi0.0,drive=cd%zu", *ncd - 1);
        free(src);
        return;
    }
    arg(a, "-drive");
    if (d->uri) {
        arg(a, "file=%s,format=raw,if=virtio,cache=none%s", src,
            d->readonly ? ",readonly=on" : "");
    } else {
        arg(a, "file=%s,format=%s,if=virtio,cache=none,aio=threads%s", src,
            d->format, d->readonly ? ",readonly=on" : "");
    }
    free(src);
}

static void
qemu_nics(struct argv *a, const struct vmc_hw *hw)
{
    size_t i;

    for (i = 0; hw->net != VMC_HW_NET_NONE && i < hw->nnics; i++) {
        arg(a, "-netdev");
        if (hw->net == VMC_HW_NET_BRIDGE) {
            char *br = commas(hw->net_name);

            arg(a, "bridge,id=net%zu,br=%s", i, br ? br : "");
            free(br);
        } else {
            arg(a, "user,id=net%zu", i);
        }
        arg(a, "-device");
        arg(a, "virtio-net-pci,netdev=net%zu,mac=%s", i, hw->macs[i]);
    }
    if (hw->net == VMC_HW_NET_NONE || hw->nnics == 0) {
        arg(a, "-nic");                 /* else QEMU adds a default NIC */
        arg(a, "none");
    }
}

/* The options whose value QEMU takes as it is (one argument each). */
static void
qemu_opt(struct argv *a, const char *opt, const char *value)
{
    if (value) {
        arg(a, "%s", opt);
        arg(a, "%s", value);
    }
}

/* Guest RAM in a file (freezable runs and instant clones). */
static void
qemu_ram(struct argv *a, const struct vmc_hw *hw)
{
    char *path = commas(hw->mem_path);

    a->err = path ? a->err : -ENOMEM;
    arg(a, "-object");
    arg(a, "memory-backend-file,id=vmc-ram,size=%dM,mem-path=%s,share=%s",
        hw->memory_mb, path ? path : "", hw->mem_share ? "on" : "off");
    arg(a, "-machine");
    arg(a, "%s,memory-backend=vmc-ram", hw->machine);
    free(path);
}

/* fw_cfg value @v padded with spaces to VMC_HW_FWCFG_LEN (cut there). */
static void
qemu_fwcfg(struct argv *a, const char *key, const char *v)
{
    char pad[VMC_HW_FWCFG_LEN + 1], *c;

    snprintf(pad, sizeof(pad), "%-*.*s", VMC_HW_FWCFG_LEN, VMC_HW_FWCFG_LEN,
             v);
    c = commas(pad);
    if (!c) {
        a->err = -ENOMEM;
        return;
    }
    arg(a, "-fw_cfg");
    arg(a, "name=opt/vmclone/%s,string=%s", key, c);
    free(c);
}

/* The QMP socket, vmgenid, fw_cfg identity and -incoming defer. */
static void
qemu_instant(struct argv *a, const struct vmc_hw *hw)
{
    size_t i;

    if (hw->qmp) {
        char *s = commas(hw->qmp);

        a->err = s ? a->err : -ENOMEM;
        arg(a, "-qmp");
        arg(a, "unix:%s,server=on,wait=off", s ? s : "");
        free(s);
    }
    if (hw->vmgenid) {
        arg(a, "-device");
        arg(a, "vmgenid");
    }
    if (hw->no_vga) {
        arg(a, "-vga");
        arg(a, "none");
    }
    /* a free PCIe root port per NIC to hot-add (q35) */
    for (i = 0; hw->no_nics && strstr(hw->machine, "q35") &&
                i < hw->nnics; i++) {
        arg(a, "-device");
        arg(a, "pcie-root-port,id=vmc-hp%zu,chassis=%zu", i, i + 1);
    }
    if (hw->fw_name) {
        qemu_fwcfg(a, "name", hw->fw_name);
    }
    if (hw->fw_id) {
        qemu_fwcfg(a, "id", hw->fw_id);
    }
    if (hw->incoming_defer) {
        arg(a, "-incoming");
        arg(a, "defer");
    }
}

int
vmc_hw_qemu_argv(const struct vmc_hw *hw, char ***out, size_t *n)
{
    struct argv a = { 0 };
    char *name;
    size_t i, ncd = 0;

    if (hw->net == VMC_HW_NET_NETWORK) {
        return -ENOTSUP;    /* a libvirt network: only libvirt has it */
    }
    name = commas(hw->name);
    if (!name) {
        return -ENOMEM;
    }
    arg(&a, "qemu-system-x86_64");
    qemu_opt(&a, "-name", name);
    free(name);
    qemu_opt(&a, "-uuid", hw->uuid);
    if (hw->mem_path) {
        qemu_ram(&a, hw);
    } else {
        qemu_opt(&a, "-machine", hw->machine);
    }
    qemu_opt(&a, "-accel", vmc_hw_accel_name(hw->accel));
    arg(&a, "-smp");
    arg(&a, "%d", hw->cpus);
    arg(&a, "-m");
    arg(&a, "%d", hw->memory_mb);
    if (hw->firmware == VMC_HW_UEFI) {
        qemu_opt(&a, "-bios", hw->ovmf);
    }
    for (i = 0; i < hw->ndisks; i++) {
        qemu_disk(&a, &hw->disks[i], &ncd);
    }
    if (hw->no_nics) {
        arg(&a, "-nic");
        arg(&a, "none");
    } else {
        qemu_nics(&a, hw);
    }
    qemu_instant(&a, hw);
    qemu_opt(&a, "-kernel", hw->kernel);
    qemu_opt(&a, "-initrd", hw->initrd);
    qemu_opt(&a, "-append", hw->append);
    if (hw->serial) {
        char *s = commas(hw->serial);

        arg(&a, "-display");
        arg(&a, "none");
        arg(&a, "-monitor");
        arg(&a, "none");
        arg(&a, "-serial");
        arg(&a, "file:%s", s ? s : "");
        a.err = s ? a.err : -ENOMEM;
        free(s);
    } else {
        arg(&a, "-nographic");
    }
    if (a.err) {
        vmc_hw_argv_free(a.v);
        return a.err;
    }
    *out = a.v;
    *n = a.n;
    return 0;
}

void
vmc_hw_argv_free(char **argv)
{
    size_t i;

    for (i = 0; argv && argv[i]; i++) {
        free(argv[i]);
    }
    free(argv);
}
