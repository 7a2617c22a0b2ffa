/*
 * virt.h - the catalog's side of libvirt domains (virt-domain.c): what
 * clone, rm, crash recovery and fsck call. Without libvirt in the build
 * the hooks do nothing for VMs without a domain and refuse (-ENOTSUP) the
 * rest. A VM's domain has the VM's UUID; the catalog keeps its URI and
 * UUID in vms.domain_uri / vms.domain_uuid.
 */
#ifndef VMC_VIRT_H
#define VMC_VIRT_H

#include <stdint.h>

#include "vmclone-catalog.h"

/* clone --define: define a domain on @uri for every VM of journal @jid
 * (rows still 'creating'); on failure the ones defined are undefined. */
int cat_virt_define_group(struct vmc_catalog *cat, int64_t jid,
                          const char *uri, struct vmc_error *err);
/* Crash recovery of journal @jid: undefine the domains of its VMs still
 * 'creating' (best effort). */
void cat_virt_rollback(struct vmc_catalog *cat, int64_t jid);
/* rm: -EBUSY (naming the domain) while VM @name's domain runs; its URI
 * and UUID in *uri, *uuid (malloc'd; NULL when it has no domain). */
int cat_virt_rm_check(struct vmc_catalog *cat, const char *name, char **uri,
                      char **uuid, struct vmc_error *err);
/* rm, once the VM's rows are gone: undefine domain @uuid on @uri. */
void cat_virt_rm_done(const char *uri, const char *uuid);
/* fsck: VMs whose domain is gone, domains on our disks that are not
 * ours; each a "problem" through @fn, counted in *problems. */
int cat_virt_fsck(struct vmc_catalog *cat, vmc_catalog_report_fn fn,
                  void *opaque, unsigned *problems, struct vmc_error *err);

#endif /* VMC_VIRT_H */
