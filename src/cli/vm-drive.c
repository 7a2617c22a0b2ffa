/*
 * vm-drive.c - the drive of a VM disk for QEMU and libvirt: a qcow2 file
 * as it is, an rbd volume (spec "rbd:POOL[/NS][:id=U][:conf=F]/IMAGE") as
 * QEMU's rbd driver names it ("rbd:POOL/[NS/]IMAGE[:id=U][:conf=F]", raw:
 * RBD does the layering) or as a libvirt network disk.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmclone-rbd.h"
#include "vm-drive.h"

int
vm_drive_spec(const char *path, char **file, const char **opts)
{
    if (vmc_rbd_is_spec(path)) {
        *opts = ",format=raw,if=virtio,cache=writeback";
        return vmc_rbd_qemu_filename(path, file, NULL);
    }
    *opts = ",format=qcow2,if=virtio,cache=none,aio=threads";
    *file = strdup(path);
    return *file ? 0 : -ENOMEM;
}

/* @s with the XML specials escaped, to @f. */
static void
put_escaped(FILE *f, const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len && s[i]; i++) {
        switch (s[i]) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '\'': fputs("&apos;", f); break;
        default: fputc(s[i], f);
        }
    }
}

bool
vm_drive_xml_rbd(FILE *f, const char *path, char letter)
{
    char *q = NULL, *name, *conf;

    if (!vmc_rbd_is_spec(path) || vmc_rbd_qemu_filename(path, &q, NULL)) {
        free(q);
        return false;
    }
    name = q + 4;                       /* after "rbd:" */
    conf = strstr(name, ":conf=");
    fputs("    <disk type='network' device='disk'>\n"
          "      <driver name='qemu' type='raw' cache='writeback'/>\n"
          "      <source protocol='rbd' name='", f);
    put_escaped(f, name, strcspn(name, ":"));
    fputs("'>\n", f);
    if (conf) {
        fputs("        <config file='", f);
        put_escaped(f, conf + 6, strcspn(conf + 6, ":"));
        fputs("'/>\n", f);
    }
    fprintf(f, "      </source>\n      <target dev='vd%c' bus='virtio'/>\n"
            "    </disk>\n", letter);
    free(q);
    return true;
}
