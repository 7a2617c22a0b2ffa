/*
 * rbd-internal.h - what the rbd files of src/ops share: a parsed spec
 * (rbd-spec.c) and, with librbd, a connection to one pool (rbd.c).
 */
#ifndef VMC_RBD_INTERNAL_H
#define VMC_RBD_INTERNAL_H

#include <limits.h>
#include <stdbool.h>

#include "vmclone.h"

/* "rbd:POOL[/NS][:id=USER][:conf=FILE][/IMAGE]", split. */
struct rbd_spec {
    char pool[128];
    char ns[128];
    char id[128];
    char conf[PATH_MAX];
    char image[256];
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
    bool have_cluster, connected, have_io;
};

/* Connect with @s's settings and open its pool and namespace (@spec for
 * the messages). */
int rbd_conn_open(struct rbd_conn *c, const struct rbd_spec *s,
                  const char *spec, struct vmc_error *err);
void rbd_conn_close(struct rbd_conn *c);
/* Parse image spec @spec and connect. */
int rbd_open_spec(const char *spec, struct rbd_spec *s, struct rbd_conn *c,
                  struct vmc_error *err);
/* A new format-2 image @name of @size bytes. */
int rbd_image_create(struct rbd_conn *c, const char *name, uint64_t size,
                     const char *spec, struct vmc_error *err);
/* Snapshot VMC_RBD_BASE_SNAP of open image @img, protected. */
int rbd_freeze_open(rbd_image_t img, const char *spec,
                    struct vmc_error *err);
#endif

#endif /* VMC_RBD_INTERNAL_H */
