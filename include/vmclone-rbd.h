/*
 * vmclone-rbd.h - Ceph RBD images as volumes (issue 11): what the catalog
 * needs of librbd/librados for its "rbd" pools. Built on librbd when meson
 * finds it (VMC_HAVE_LIBRBD); without it every call but the spec helpers
 * returns -ENOTSUP ("built without librbd").
 *
 * A volume is named by a spec string, the pool's spec, '/', the image:
 *
 *     rbd:POOL[/NAMESPACE][:id=USER][:conf=FILE]/IMAGE[@SNAP]
 *
 * where IMAGE@SNAP names an RBD snapshot of IMAGE (a VM snapshot in an rbd
 * pool: read-only, protected, cloned from like a template's base).
 * (no ':' or '/' in POOL, NAMESPACE, USER or IMAGE; no ':' in FILE). The
 * calls share one cluster connection per process and settings (client
 * "admin" and Ceph's default configuration search when they are absent;
 * the keyring stays where Ceph keeps it), made on first use and shut
 * down at exit.
 *
 * Templates in rbd pools are frozen as the snapshot VMC_RBD_BASE_SNAP,
 * protected; linked clones are RBD clones (layering) of that snapshot.
 * Conventions are those of vmclone.h: 0 or a negative errno, and @err.
 */
#ifndef VMCLONE_RBD_H
#define VMCLONE_RBD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmclone.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The snapshot a template (or VM snapshot) is cloned from. */
#define VMC_RBD_BASE_SNAP "vmclone-base"
/** The image metadata key holding a template's seal root digest. */
#define VMC_RBD_SEAL_KEY "vmclone.seal"
/** ... and the seal's chunk size (absent: VMC_SEAL_DEFAULT_CHUNK). */
#define VMC_RBD_SEAL_CHUNK_KEY "vmclone.seal-chunk"

/** Was vmclone built with librbd? */
VMC_API bool vmc_rbd_available(void);

/**
 * Shut down the process's Ceph cluster connections (kept from the first
 * rbd call on, one per client id and conf file), after every rbd image
 * is closed (a vmc_rbd_prefetch() still connecting is waited for). A
 * program calls it before it exits, on every path that used rbd or
 * prefetched: librados's threads must be stopped before exit() destroys
 * the libraries' static objects (rados_shutdown() is not safe from an
 * atexit handler). Harmless without connections; the next rbd call connects
 * again.
 */
VMC_API void vmc_rbd_shutdown(void);

/**
 * Start connecting, in a background thread, with the settings of pool or
 * image spec @spec (loading Ceph's libraries first), so that a command
 * that knows it will use that pool overlaps the library load and the
 * monitor handshake with its other work. The first rbd call with the
 * same settings waits for that connection; if it failed, that call
 * reports the failure exactly as its own connect would have (its spec,
 * the step, the attempts). No effect when @spec is not an rbd spec, when
 * a connection with these settings exists or is being made, or without
 * librbd. vmc_rbd_shutdown() waits for the thread. @read_only: the
 * connection of read-only opens (one librados completion thread, see
 * src/ops/rbd.c), else the writers' one.
 */
VMC_API void vmc_rbd_prefetch(const char *spec, bool read_only);

/** Does @path name an rbd image (or pool): "rbd:..."? */
VMC_API bool vmc_rbd_is_spec(const char *path);

/**
 * The pool spec "rbd:POOL[/NS][:id=USER][:conf=FILE]" into *@out
 * (malloc'ed); @ns, @conf, @id may be NULL. -EINVAL on a character the
 * syntax cannot carry.
 */
VMC_API int vmc_rbd_pool_spec(const char *pool, const char *ns,
                              const char *conf, const char *id, char **out,
                              struct vmc_error *err);

/** Connect with pool spec @spec and open its pool (and namespace):
 *  checks that the pool is usable. */
VMC_API int vmc_rbd_pool_check(const char *spec, struct vmc_error *err);

/**
 * QEMU's filename for volume @spec, "rbd:POOL/[NS/]IMAGE[:id=U][:conf=F]"
 * (qemu-img, -drive file=; QEMU's rbd driver from qemu-block-extra).
 */
VMC_API int vmc_rbd_qemu_filename(const char *spec, char **out,
                                  struct vmc_error *err);

/**
 * Copy the guest view of image file @src (qcow2 or raw, with its backing
 * chain) into a new rbd image @dst of the same size (zero runs are not
 * written), then freeze it: snapshot VMC_RBD_BASE_SNAP, protected, and,
 * when @seal is set, the seal's root digest in metadata VMC_RBD_SEAL_KEY.
 * *@bytes gets the bytes written. An image already at @dst is refused.
 */
VMC_API int vmc_rbd_import(const char *src, const char *dst,
                           const char *seal, uint64_t *bytes,
                           struct vmc_error *err);

/** A linked clone: @child, an RBD clone (layering) of @parent's
 *  snapshot (its spec's @SNAP, else VMC_RBD_BASE_SNAP), same cluster. */
VMC_API int vmc_rbd_clone(const char *parent, const char *child,
                          struct vmc_error *err);

/** A full clone inside the cluster: @dst, a standalone copy of @src's
 *  current data (rbd_copy3: no parent, no snapshots). */
VMC_API int vmc_rbd_copy(const char *src, const char *dst,
                         struct vmc_error *err);

/** A full clone out of the cluster: qcow2 file @dst (created; an
 *  existing file is truncated) with @src's current data. */
VMC_API int vmc_rbd_export(const char *src, const char *dst, uint64_t *bytes,
                           struct vmc_error *err);

/** Copy @src's parent's data into it: it no longer depends on a parent. */
VMC_API int vmc_rbd_flatten(const char *spec, struct vmc_error *err);

/** The spec of @spec's parent image (same settings) into *@out, or NULL
 *  when it has none (never cloned, or flattened). */
VMC_API int vmc_rbd_parent(const char *spec, char **out,
                           struct vmc_error *err);

/** How many clients watch (have open) image @spec. */
VMC_API int vmc_rbd_watchers(const char *spec, unsigned *count,
                             struct vmc_error *err);

/** Freeze image @spec as its spec's @SNAP (else VMC_RBD_BASE_SNAP),
 *  protected, so that clones can be made from it; an existing frozen
 *  snapshot is kept. */
VMC_API int vmc_rbd_freeze(const char *spec, struct vmc_error *err);

/** Roll image IMAGE back to its snapshot, @spec being IMAGE@SNAP: its
 *  data becomes the snapshot's (the snapshots and their clones are not
 *  touched). -EBUSY while another client has the image open. */
VMC_API int vmc_rbd_rollback(const char *spec, struct vmc_error *err);

/**
 * Remove image @spec: its snapshots (unprotected first), then the image;
 * for IMAGE@SNAP, that snapshot only. Absent: 0. -EBUSY while a client
 * has it open or clones depend on it.
 */
VMC_API int vmc_rbd_remove(const char *spec, struct vmc_error *err);

/** Metadata VMC_RBD_SEAL_KEY of @spec into *@out (malloc'ed); -ENOENT
 *  when the image has none. */
VMC_API int vmc_rbd_seal_get(const char *spec, char **out,
                             struct vmc_error *err);

/**
 * Read image @spec's VMC_RBD_BASE_SNAP (what clones read) and check it
 * against seal root @want (hex; the image's own VMC_RBD_SEAL_KEY when
 * NULL): -EBADMSG with the reason when the data does not match.
 */
VMC_API int vmc_rbd_verify(const char *spec, const char *want,
                           struct vmc_error *err);

/** Image names of the clones of @spec's snapshot (its @SNAP, else
 *  VMC_RBD_BASE_SNAP): the rbd children,
 *  as "POOL/[NS/]IMAGE" in *@names (free each and the array). */
VMC_API int vmc_rbd_children(const char *spec, char ***names, size_t *count,
                             struct vmc_error *err);

/**
 * Open rbd image @spec as an image of the engine (struct vmc_image: raw,
 * one layer, RBD does any layering), for the NBD server; @flags:
 * VMC_OPEN_RDWR or 0. The same safety as image files: refused (-EBUSY)
 * while another client has the image open; while it is open it has our
 * watcher (so rm sees it in use) and, with the exclusive-lock feature,
 * our exclusive lock (no other client writes). A template's image
 * (metadata VMC_RBD_SEAL_KEY, frozen as VMC_RBD_BASE_SNAP, not a clone)
 * is refused read-write (-EPERM). Block
 * status: data (the parent's included) from rbd_diff_iterate2, holes
 * read as zeros. Close with vmc_image_close().
 */
VMC_API int vmc_rbd_image_open(struct vmc_image **out, const char *spec,
                               unsigned flags, struct vmc_error *err);

#ifdef __cplusplus
}
#endif

#endif /* VMCLONE_RBD_H */
