/*
 * cmd-vm-virt.h - "vm define" / "vm undefine" (cmd-vm-virt.c), the
 * subcommands of the vm group (cmd-vm.c) that reach libvirt.
 */
#ifndef VMC_CMD_VM_VIRT_H
#define VMC_CMD_VM_VIRT_H

#include "vm-qemu.h"

/* Their options. */
struct vm_virt_args {
    struct vmq_opts hw;
    const char *connect;
    bool force;
};
extern struct vm_virt_args vm_virt;

#define VM_DEFINE_OPTS(c) \
    CATCLI_OPTS(c), VMQ_NET_OPTS(&vm_virt.hw), VMQ_BOOT_OPTS(&vm_virt.hw), \
    CLI_OPT_STRING(0, "connect", "URI", &vm_virt.connect, "the libvirt " \
                   "connection (default: libvirt's)"), \
    CLI_OPT_END
#define VM_UNDEFINE_OPTS(c) \
    CATCLI_OPTS(c), \
    CLI_OPT_FLAG(0, "force", &vm_virt.force, "stop the domain first when " \
                 "it runs"), \
    CLI_OPT_END

int vm_define(struct catcli *c, void *ctx, int argc, char **argv);
int vm_undefine(struct catcli *c, void *ctx, int argc, char **argv);

#endif /* VMC_CMD_VM_VIRT_H */
