/*
 * customize.h - the guest customization options that clone and vm set
 * share (customize.c): --hostname, --ssh-key FILE, --user-data FILE,
 * --network-config FILE and --ephemeral, turned into a
 * vmc_catalog_vm_customize() call per VM.
 */
#ifndef VMC_CLI_CUSTOMIZE_H
#define VMC_CLI_CUSTOMIZE_H

#include <stdbool.h>
#include <stddef.h>

#include "cat-cli.h"
#include "vmclone-catalog-admin.h"

struct cust_args {
    const char *hostname;           /* may hold one %d (--count) */
    const char *ssh_key_file, *user_data_file, *network_config_file;
    bool ephemeral;
};

/* The options, for a verb's option table. */
#define CUST_OPTS(a) \
    CLI_OPT_STRING(0, "hostname", "NAME", &(a)->hostname, "the guest's " \
                   "hostname in its cloud-init seed (one %d with --count)"), \
    CLI_OPT_STRING(0, "ssh-key", "FILE", &(a)->ssh_key_file, "an SSH " \
                   "public key the seed authorizes"), \
    CLI_OPT_STRING(0, "user-data", "FILE", &(a)->user_data_file, \
                   "cloud-init user-data for the seed"), \
    CLI_OPT_STRING(0, "network-config", "FILE", \
                   &(a)->network_config_file, "cloud-init network-config " \
                   "for the seed"), \
    CLI_OPT_FLAG(0, "ephemeral", &(a)->ephemeral, "every start is " \
                 "ephemeral (writes to throwaway overlays)")

/* Whether any option was given. */
bool cust_given(const struct cust_args *a);
/*
 * Customize VMs @names[0..@n-1] (VM i gets hostname %d = i + 1); on a
 * failure the VMs are removed again when @rm_on_fail (a clone is
 * all-or-nothing). Prints the error; returns 0 or an exit status.
 */
int cust_apply(struct catcli *c, const struct cust_args *a,
               char *const *names, size_t n, bool rm_on_fail);

#endif /* VMC_CLI_CUSTOMIZE_H */
