/*
 * rbd-internal.h - what the rbd files of src/ops share: a parsed spec
 * (rbd-spec.c) and, with librbd, a connection to one pool (rbd.c).
 */
#ifndef VMC_RBD_INTERNAL_H
#define VMC_RBD_INTERNAL_H

#include <limits.h>
#include <stdbool.h>

#include "vmclone.h"

/* "rbd:POOL[/NS][:id=USER][:conf=FILE][/IMAGE[@SNAP]]", split (a volume
 * IMAGE@SNAP is a VM snapshot: an RBD snapshot of the VM's image). */
struct rbd_spec {
    char pool[128];
    char ns[128];
    char id[128];
    char conf[PATH_MAX];
    char image[256];
    char snap[128];
};

/* Parse @spec; @image: it names an image (else a pool). -EINVAL with
 * the reason otherwise. */
int rbd_spec_parse(const char *spec, bool image, struct rbd_spec *out,
                   struct vmc_error *err);

#ifdef VMC_HAVE_LIBRBD
#include "rbd-dl.h"

struct rbd_conn {
    rados_t cluster;
    rados_ioctx_t io;
    bool own_cluster, have_io;     /* own_cluster: not the cached one */
};

/* Open @s's pool and namespace on the process's connection with @s's
 * settings (made on first use, shut down by vmc_rbd_shutdown(); @spec
 * for the messages). rbd_conn_close() closes the pool. */
int rbd_conn_open(struct rbd_conn *c, const struct rbd_spec *s,
                  const char *spec, struct vmc_error *err);
void rbd_conn_close(struct rbd_conn *c);
/* Parse image spec @spec and connect. */
int rbd_open_spec(const char *spec, struct rbd_spec *s, struct rbd_conn *c,
                  struct vmc_error *err);
/* rbd_open_spec() on the connection for read-only opens (one completion
 * thread: why in rbd.c): for images opened with rbd_open_read_only only. */
int rbd_open_spec_ro(const char *spec, struct rbd_spec *s, struct rbd_conn *c,
                     struct vmc_error *err);
/* A new format-2 image @name of @size bytes. */
int rbd_image_create(struct rbd_conn *c, const char *name, uint64_t size,
                     const char *spec, struct vmc_error *err);
/* A standalone copy @name (through @c) of open image @src's data, read
 * and written (zero runs skipped): what rbd_copy3 gets wrong from a
 * snapshot of a clone (the parent's data is missing). */
int rbd_copy_by_reads(rbd_image_t src, struct rbd_conn *c, const char *name,
                      const char *dst, struct vmc_error *err);
/* Snapshot @snap of open image @img, protected (kept if it is). */
int rbd_freeze_open(rbd_image_t img, const char *snap, const char *spec,
                    struct vmc_error *err);
#endif

#endif /* VMC_RBD_INTERNAL_H */
