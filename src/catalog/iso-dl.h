/*
 * iso-dl.h - the libisofs functions seed.c calls, bound at first use
 * (iso-dl.c, on src/util/lazy-lib.c) instead of at program start: only a
 * cloud-init seed needs libisofs.
 * Include it instead of the library's headers; a function newly used
 * goes in the lists below, or the link fails.
 */
#ifndef VMC_ISO_DL_H
#define VMC_ISO_DL_H

#include <stdint.h>
#include <sys/types.h>

/* struct burn_source without libburn, as seed.c uses it */
#ifndef LIBISOFS_WITHOUT_LIBBURN
#define LIBISOFS_WITHOUT_LIBBURN 1
#endif
#include <libisofs/libisofs.h>

/* NULL once the library is loaded; else why it could not be (loads it). */
const char *iso_dl_error(void);

/* F(return type, name, (parameters), (arguments), result without it) */
#define ISO_DL_FUNCTIONS(F) \
    F(int, iso_image_create_burn_source, (IsoImage *a0, IsoWriteOpts *a1, \
      struct burn_source **a2), (a0, a1, a2), (int)ISO_ERROR) \
    F(IsoDir *, iso_image_get_root, (const IsoImage *a0), (a0), NULL) \
    F(int, iso_image_new, (const char *a0, IsoImage **a1), (a0, a1), (int)ISO_ERROR) \
    F(int, iso_init, (void), (), (int)ISO_ERROR) \
    F(int, iso_memory_stream_new, (unsigned char *a0, size_t a1, IsoStream **a2), \
      (a0, a1, a2), (int)ISO_ERROR) \
    F(int, iso_tree_add_new_file, (IsoDir *a0, const char *a1, IsoStream *a2, \
      IsoFile **a3), (a0, a1, a2, a3), (int)ISO_ERROR) \
    F(int, iso_write_opts_new, (IsoWriteOpts **a0, int a1), (a0, a1), (int)ISO_ERROR) \
    F(int, iso_write_opts_set_joliet, (IsoWriteOpts *a0, int a1), (a0, a1), \
      (int)ISO_ERROR) \
    F(int, iso_write_opts_set_rockridge, (IsoWriteOpts *a0, int a1), (a0, a1), \
      (int)ISO_ERROR)

/* F(name, (parameters), (arguments)): no result; nothing without it */
#define ISO_DL_VOID_FUNCTIONS(F) \
    F(iso_finish, (void), ()) \
    F(iso_image_unref, (IsoImage *a0), (a0)) \
    F(iso_node_set_permissions, (IsoNode *a0, mode_t a1), (a0, a1)) \
    F(iso_stream_unref, (IsoStream *a0), (a0)) \
    F(iso_write_opts_free, (IsoWriteOpts *a0), (a0))

#define ISO_DL_DECLARE(ret, name, params, args, fail) ret iso_dl_##name params;
#define ISO_DL_DECLARE_VOID(name, params, args) void iso_dl_##name params;
ISO_DL_FUNCTIONS(ISO_DL_DECLARE)
ISO_DL_VOID_FUNCTIONS(ISO_DL_DECLARE_VOID)

#ifndef ISO_DL_IMPLEMENTATION
#define iso_finish iso_dl_iso_finish
#define iso_image_create_burn_source iso_dl_iso_image_create_burn_source
#define iso_image_get_root iso_dl_iso_image_get_root
#define iso_image_new iso_dl_iso_image_new
#define iso_image_unref iso_dl_iso_image_unref
#define iso_init iso_dl_iso_init
#define iso_memory_stream_new iso_dl_iso_memory_stream_new
#define iso_node_set_permissions iso_dl_iso_node_set_permissions
#define iso_stream_unref iso_dl_iso_stream_unref
#define iso_tree_add_new_file iso_dl_iso_tree_add_new_file
#define iso_write_opts_free iso_dl_iso_write_opts_free
#define iso_write_opts_new iso_dl_iso_write_opts_new
#define iso_write_opts_set_joliet iso_dl_iso_write_opts_set_joliet
#define iso_write_opts_set_rockridge iso_dl_iso_write_opts_set_rockridge
#endif

#endif
