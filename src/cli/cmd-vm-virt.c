/*
 * cmd-vm-virt.c - "vm define" and "vm undefine": a VM's libvirt domain
 * through libvirt's C API (include/vmclone-virt.h), from the hardware
 * model vm xml prints (the same options); refused for an instant clone
 * (vm-qemu.c), whose restore no domain can express.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cmd-vm-virt.h"

struct vm_virt_args vm_virt;

/* @path made absolute in @buf (libvirt resolves nothing against our
 * working directory); NULL stays NULL. */
static const char *
absolute(const char *path, char *buf, size_t len)
{
    char cwd[PATH_MAX];

    if (!path || path[0] == '/' || !getcwd(cwd, sizeof(cwd))) {
        return path;
    }
    snprintf(buf, len, "%s/%s", cwd, path);
    return buf;
}

int
vm_define(struct catcli *c, void *ctx, int argc, char **argv)
{
    struct vmc_error err = { 0 };
    struct vmc_hw *hw = NULL;
    struct vmq_opts ho = vm_virt.hw;
    char k[PATH_MAX * 2], i[PATH_MAX * 2], s[PATH_MAX * 2];
    int r;

    ho.kernel = absolute(ho.kernel, k, sizeof(k));
    ho.initrd = absolute(ho.initrd, i, sizeof(i));
    ho.serial = absolute(ho.serial, s, sizeof(s));
    r = vmq_refuse_instant(c, argv[0]);
    if (r == 0) {
        r = vmq_load(c, argv[0], &ho, &hw);
    }
    if (r) {
        return r;
    }
    r = vmc_virt_define(c->cat, hw, vm_virt.connect, &err);
    if (r < 0) {
        vmc_hw_free(hw);
        return catcli_fail(&err, r);
    }
    if (c->json) {
        struct json_object *o = json_object_new_object();

        cli_json_add_str(o, "vm", argv[0]);
        cli_json_add_str(o, "domain_uuid", hw->uuid);
        cli_json_add_str(o, "connect", vm_virt.connect ? vm_virt.connect
                                                        : "");
        cli_json_add_str(o, "accel", vmc_hw_accel_name(hw->accel));
        catcli_json_done(o);
    } else if (!c->quiet) {
        printf("Defined libvirt domain '%s' (%s)%s%s\n", argv[0], hw->uuid,
               vm_virt.connect ? " on " : "",
               vm_virt.connect ? vm_virt.connect : "");
    }
    vmc_hw_free(hw);
    return CLI_EXIT_OK;
}

int
vm_undefine(struct catcli *c, void *ctx, int argc, char **argv)
{
    struct vmc_error err = { 0 };
    int r = vmc_virt_undefine(c->cat, argv[0], vm_virt.force, &err);

    if (r == -ENOENT && catcli_vm_exists(c, argv[0])) {
        return catcli_error(CLI_EXIT_NOT_FOUND, "VM '%s' has no libvirt "
                            "domain", argv[0]);
    }
    if (r < 0) {
        return catcli_fail(&err, r);
    }
    if (c->json) {
        struct json_object *o = json_object_new_object();

        cli_json_add_str(o, "vm", argv[0]);
        cli_json_add_bool(o, "undefined", true);
        catcli_json_done(o);
    } else if (!c->quiet) {
        printf("Undefined the libvirt domain of VM '%s'\n", argv[0]);
    }
    return CLI_EXIT_OK;
}
