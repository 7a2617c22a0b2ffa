/*
 * probe.c - recognise disk image containers by their magic.
 *
 * A file named by the user without a format is opened as what its bytes
 * say it is. Every container QEMU knows is recognised here, with or
 * without a driver of ours: one without a driver is refused by name with
 * advice, never taken for raw (a container read as raw exposes its
 * metadata to the guest and hides its data). Only a file that names no
 * container is raw.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "format/format.h"
#include "util/util.h"

#define PROBE_HEAD 512

/* The first @PROBE_HEAD bytes and the last sector of @f. */
struct probe_bytes {
    uint8_t head[PROBE_HEAD];
    uint8_t tail[512];
    uint64_t length;
};

static bool
magic_at(const uint8_t *buf, size_t off, const char *magic, size_t len)
{
    return off + len <= PROBE_HEAD && !memcmp(buf + off, magic, len);
}

/* qcow (version 1) and qcow2 share a magic; the version tells them apart. */
static const char *
probe_qcow(const uint8_t *h)
{
    if (be32_load(h) != 0x514649FB) {
        return NULL;
    }
    return be32_load(h + 4) == 1 ? "qcow" : "qcow2";
}

/* VMDK: a hosted sparse extent ("KDMV"), an ESX sparse one ("COWD"), or
 * a text descriptor file. */
static const char *
probe_vmdk(const uint8_t *h)
{
    if (magic_at(h, 0, "KDMV", 4) || magic_at(h, 0, "COWD", 4) ||
        magic_at(h, 0, "# Disk DescriptorFile", 21)) {
        return "vmdk";
    }
    return NULL;
}

/* VHD: the footer "conectix" in the last sector (the old 511-byte footer
 * too) or its copy at offset 0 (dynamic and differencing disks). */
static const char *
probe_vhd(const struct probe_bytes *p)
{
    if (magic_at(p->head, 0, "conectix", 8) ||
        (p->length >= 512 && !memcmp(p->tail, "conectix", 8)) ||
        (p->length >= 511 && !memcmp(p->tail + 1, "conectix", 8))) {
        return "vpc";
    }
    return NULL;
}

/* The containers recognised by a magic in their first sector. */
static const char *
probe_head(const uint8_t *h)
{
    static const struct {
        const char *name;
        size_t off;
        const char *magic;
        size_t len;
    } magics[] = {
        { "vhdx", 0, "vhdxfile", 8 },
        { "vdi", 64, "\x7f\x10\xda\xbe", 4 },
        { "qed", 0, "QED\0", 4 },
        { "parallels", 0, "WithoutFreeSpace", 16 },
        { "parallels", 0, "WithouFreSpacExt", 16 },
        { "bochs", 0, "Bochs Virtual HD Image", 22 },
        { "luks", 0, "LUKS\xba\xbe", 6 },
        { "cloop", 0, "#!/bin/sh\n#V2.0 Format\nmodprobe cloop", 37 },
    };
    const char *name = probe_qcow(h);
    size_t i;

    if (!name) {
        name = probe_vmdk(h);
    }
    for (i = 0; !name && i < ARRAY_SIZE(magics); i++) {
        if (magic_at(h, magics[i].off, magics[i].magic, magics[i].len)) {
            name = magics[i].name;
        }
    }
    return name;
}

const char *
format_detect(struct hio_file *f)
{
    struct probe_bytes p;
    const char *name;

    if (hio_length(f, &p.length) < 0 ||
        hio_pread(f, p.head, sizeof(p.head), 0) < 0) {
        return NULL;
    }
    name = probe_head(p.head);
    if (name || p.length < 512) {
        return name ? name : probe_vhd(&p);
    }
    if (hio_pread(f, p.tail, sizeof(p.tail), p.length - 512) < 0) {
        return NULL;
    }
    name = probe_vhd(&p);
    /* DMG: the "koly" trailer in the last sector. */
    if (!name && !memcmp(p.tail, "koly", 4)) {
        name = "dmg";
    }
    return name;
}

/* The qemu-img command that turns a @name file into qcow2. */
static const char *
convert_advice(const char *name)
{
    if (!strcmp(name, "luks")) {
        return "qemu-img convert --object secret,id=s,file=KEYFILE "
               "--image-opts driver=luks,key-secret=s,file.filename=";
    }
    return NULL;
}

int
format_probe_open(struct hio_file *f, const char *path, enum vmc_format *fmt,
                  struct vmc_error *err)
{
    const char *name = format_detect(f);
    const char *adv;
    enum vmc_format found;

    if (!name) {
        *fmt = VMC_FMT_RAW;
        return 0;
    }
    /* the names vmc_format_from_name() knows are the formats with a
     * driver (src/util/error.c) */
    found = vmc_format_from_name(name);
    if (found != VMC_FMT_AUTO) {
        *fmt = found;
        return 0;
    }
    adv = convert_advice(name);
    if (adv) {
        return vmc_error_set(err, -ENOTSUP, "'%s' is a %s image, which "
                             "vm-clone cannot read: convert it with '%s%s "
                             "-O qcow2 OUT.qcow2'", path, name, adv, path);
    }
    return vmc_error_set(err, -ENOTSUP, "'%s' is a %s image, which vm-clone "
                         "cannot read: convert it with 'qemu-img convert -f "
                         "%s -O qcow2 %s OUT.qcow2'", path, name, name, path);
}

const char *
vmc_image_content_format(const struct vmc_image *img)
{
    return img->file ? format_detect(img->file) : NULL;
}
