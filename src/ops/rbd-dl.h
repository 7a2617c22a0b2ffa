/*
 * rbd-dl.h - the librados and librbd functions the rbd files call, bound
 * at first use (rbd-dl.c) instead of at program start.
 *
 * Ceph's client libraries pull in libceph-common and its C++ start-up
 * code: linked into vm-clone, they cost every command (rbd or not) about
 * 50 ms, and 0.7 s under AddressSanitizer. So nothing is linked with
 * them; every file that calls librados or librbd includes this header
 * (never the Ceph headers alone), which renames each call to a wrapper
 * that loads librados.so.2 and librbd.so.1 on its first use. A function
 * the rbd files start to use goes in the lists below, or the link fails.
 */
#ifndef VMC_RBD_DL_H
#define VMC_RBD_DL_H

#include <rados/librados.h>
#include <rbd/librbd.h>
#include <sys/types.h>

/* F(return type, name, (parameters), (arguments)) for every function
 * that returns a status: without the libraries, it returns -ELIBACC. */
#define RBD_DL_STATUS_FUNCTIONS(F) \
    F(int, rados_create, (rados_t *cluster, const char *const id), (cluster, id)) \
    F(int, rados_conf_get, (rados_t cluster, const char *option, char *buf, size_t len), \
      (cluster, option, buf, len)) \
    F(int, rados_conf_read_file, (rados_t cluster, const char *path), (cluster, path)) \
    F(int, rados_conf_set, (rados_t cluster, const char *option, const char *value), \
      (cluster, option, value)) \
    F(int, rados_connect, (rados_t cluster), (cluster)) \
    F(int, rados_ioctx_create, (rados_t cluster, const char *pool_name, rados_ioctx_t *ioctx), \
      (cluster, pool_name, ioctx)) \
    F(int, rbd_clone3, (rados_ioctx_t p_ioctx, const char *p_name, const char *p_snapname, \
      rados_ioctx_t c_ioctx, const char *c_name, rbd_image_options_t c_opts), \
      (p_ioctx, p_name, p_snapname, c_ioctx, c_name, c_opts)) \
    F(int, rbd_close, (rbd_image_t image), (image)) \
    F(int, rbd_copy3, (rbd_image_t src, rados_ioctx_t dest_io_ctx, const char *destname, \
      rbd_image_options_t dest_opts), (src, dest_io_ctx, destname, dest_opts)) \
    F(int, rbd_create4, (rados_ioctx_t io, const char *name, uint64_t size, \
      rbd_image_options_t opts), (io, name, size, opts)) \
    F(int, rbd_diff_iterate2, (rbd_image_t image, const char *fromsnapname, uint64_t ofs, \
      uint64_t len, uint8_t include_parent, uint8_t whole_object, \
      int (*cb)(uint64_t, size_t, int, void *), void *arg), \
      (image, fromsnapname, ofs, len, include_parent, whole_object, cb, arg)) \
    F(int, rbd_discard, (rbd_image_t image, uint64_t ofs, uint64_t len), (image, ofs, len)) \
    F(int, rbd_flatten, (rbd_image_t image), (image)) \
    F(int, rbd_flush, (rbd_image_t image), (image)) \
    F(int, rbd_get_parent, (rbd_image_t image, rbd_linked_image_spec_t *parent_image, \
      rbd_snap_spec_t *parent_snap), (image, parent_image, parent_snap)) \
    F(int, rbd_get_size, (rbd_image_t image, uint64_t *size), (image, size)) \
    F(int, rbd_image_options_set_uint64, (rbd_image_options_t opts, int optname, \
      uint64_t optval), (opts, optname, optval)) \
    F(int, rbd_list_children3, (rbd_image_t image, rbd_linked_image_spec_t *images, \
      size_t *max_images), (image, images, max_images)) \
    F(int, rbd_lock_acquire, (rbd_image_t image, rbd_lock_mode_t lock_mode), \
      (image, lock_mode)) \
    F(int, rbd_metadata_get, (rbd_image_t image, const char *key, char *value, \
      size_t *val_len), (image, key, value, val_len)) \
    F(int, rbd_metadata_set, (rbd_image_t image, const char *key, const char *value), \
      (image, key, value)) \
    F(int, rbd_open, (rados_ioctx_t io, const char *name, rbd_image_t *image, \
      const char *snap_name), (io, name, image, snap_name)) \
    F(int, rbd_open_read_only, (rados_ioctx_t io, const char *name, rbd_image_t *image, \
      const char *snap_name), (io, name, image, snap_name)) \
    F(int, rbd_remove, (rados_ioctx_t io, const char *name), (io, name)) \
    F(int, rbd_snap_create, (rbd_image_t image, const char *snapname), (image, snapname)) \
    F(int, rbd_snap_exists, (rbd_image_t image, const char *snapname, bool *exists), \
      (image, snapname, exists)) \
    F(int, rbd_snap_is_protected, (rbd_image_t image, const char *snap_name, \
      int *is_protected), (image, snap_name, is_protected)) \
    F(int, rbd_snap_list, (rbd_image_t image, rbd_snap_info_t *snaps, int *max_snaps), \
      (image, snaps, max_snaps)) \
    F(int, rbd_snap_protect, (rbd_image_t image, const char *snap_name), (image, snap_name)) \
    F(int, rbd_snap_remove, (rbd_image_t image, const char *snapname), (image, snapname)) \
    F(int, rbd_snap_rollback, (rbd_image_t image, const char *snapname), (image, snapname)) \
    F(int, rbd_snap_unprotect, (rbd_image_t image, const char *snap_name), \
      (image, snap_name)) \
    F(int, rbd_stat, (rbd_image_t image, rbd_image_info_t *info, size_t infosize), \
      (image, info, infosize)) \
    F(int, rbd_watchers_list, (rbd_image_t image, rbd_image_watcher_t *watchers, \
      size_t *max_watchers), (image, watchers, max_watchers)) \
    F(ssize_t, rbd_read, (rbd_image_t image, uint64_t ofs, size_t len, char *buf), \
      (image, ofs, len, buf)) \
    F(ssize_t, rbd_write, (rbd_image_t image, uint64_t ofs, size_t len, const char *buf), \
      (image, ofs, len, buf)) \
    F(ssize_t, rbd_write_zeroes, (rbd_image_t image, uint64_t ofs, size_t len, \
      int zero_flags, int op_flags), (image, ofs, len, zero_flags, op_flags))

/* F(name, (parameters), (arguments)) for the functions without a result:
 * they do nothing without the libraries (nothing they free can exist). */
#define RBD_DL_VOID_FUNCTIONS(F) \
    F(rados_ioctx_destroy, (rados_ioctx_t io), (io)) \
    F(rados_ioctx_set_namespace, (rados_ioctx_t io, const char *nspace), (io, nspace)) \
    F(rados_shutdown, (rados_t cluster), (cluster)) \
    F(rbd_image_options_create, (rbd_image_options_t *opts), (opts)) \
    F(rbd_image_options_destroy, (rbd_image_options_t opts), (opts)) \
    F(rbd_linked_image_spec_cleanup, (rbd_linked_image_spec_t *image), (image)) \
    F(rbd_linked_image_spec_list_cleanup, (rbd_linked_image_spec_t *images, \
      size_t num_images), (images, num_images)) \
    F(rbd_snap_list_end, (rbd_snap_info_t *snaps), (snaps)) \
    F(rbd_snap_spec_cleanup, (rbd_snap_spec_t *snap), (snap)) \
    F(rbd_watchers_list_cleanup, (rbd_image_watcher_t *watchers, size_t num_watchers), \
      (watchers, num_watchers))

#define RBD_DL_DECLARE_STATUS(ret, name, params, args) ret rbd_dl_##name params;
#define RBD_DL_DECLARE_VOID(name, params, args) void rbd_dl_##name params;
RBD_DL_STATUS_FUNCTIONS(RBD_DL_DECLARE_STATUS)
RBD_DL_VOID_FUNCTIONS(RBD_DL_DECLARE_VOID)

/* NULL once the libraries are loaded; else why they could not be (this
 * loads them if no call has yet). */
const char *rbd_dl_error(void);

#ifndef RBD_DL_IMPLEMENTATION
#define rados_create rbd_dl_rados_create
#define rados_conf_get rbd_dl_rados_conf_get
#define rados_conf_read_file rbd_dl_rados_conf_read_file
#define rados_conf_set rbd_dl_rados_conf_set
#define rados_connect rbd_dl_rados_connect
#define rados_ioctx_create rbd_dl_rados_ioctx_create
#define rbd_clone3 rbd_dl_rbd_clone3
#define rbd_close rbd_dl_rbd_close
#define rbd_copy3 rbd_dl_rbd_copy3
#define rbd_create4 rbd_dl_rbd_create4
#define rbd_diff_iterate2 rbd_dl_rbd_diff_iterate2
#define rbd_discard rbd_dl_rbd_discard
#define rbd_flatten rbd_dl_rbd_flatten
#define rbd_flush rbd_dl_rbd_flush
#define rbd_get_parent rbd_dl_rbd_get_parent
#define rbd_get_size rbd_dl_rbd_get_size
#define rbd_image_options_set_uint64 rbd_dl_rbd_image_options_set_uint64
#define rbd_list_children3 rbd_dl_rbd_list_children3
#define rbd_lock_acquire rbd_dl_rbd_lock_acquire
#define rbd_metadata_get rbd_dl_rbd_metadata_get
#define rbd_metadata_set rbd_dl_rbd_metadata_set
#define rbd_open rbd_dl_rbd_open
#define rbd_open_read_only rbd_dl_rbd_open_read_only
#define rbd_remove rbd_dl_rbd_remove
#define rbd_snap_create rbd_dl_rbd_snap_create
#define rbd_snap_exists rbd_dl_rbd_snap_exists
#define rbd_snap_is_protected rbd_dl_rbd_snap_is_protected
#define rbd_snap_list rbd_dl_rbd_snap_list
#define rbd_snap_protect rbd_dl_rbd_snap_protect
#define rbd_snap_remove rbd_dl_rbd_snap_remove
#define rbd_snap_rollback rbd_dl_rbd_snap_rollback
#define rbd_snap_unprotect rbd_dl_rbd_snap_unprotect
#define rbd_stat rbd_dl_rbd_stat
#define rbd_watchers_list rbd_dl_rbd_watchers_list
#define rbd_read rbd_dl_rbd_read
#define rbd_write rbd_dl_rbd_write
#define rbd_write_zeroes rbd_dl_rbd_write_zeroes
#define rados_ioctx_destroy rbd_dl_rados_ioctx_destroy
#define rados_ioctx_set_namespace rbd_dl_rados_ioctx_set_namespace
#define rados_shutdown rbd_dl_rados_shutdown
#define rbd_image_options_create rbd_dl_rbd_image_options_create
#define rbd_image_options_destroy rbd_dl_rbd_image_options_destroy
#define rbd_linked_image_spec_cleanup rbd_dl_rbd_linked_image_spec_cleanup
#define rbd_linked_image_spec_list_cleanup rbd_dl_rbd_linked_image_spec_list_cleanup
#define rbd_snap_list_end rbd_dl_rbd_snap_list_end
#define rbd_snap_spec_cleanup rbd_dl_rbd_snap_spec_cleanup
#define rbd_watchers_list_cleanup rbd_dl_rbd_watchers_list_cleanup
#endif

#endif
