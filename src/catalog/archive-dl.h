/*
 * archive-dl.h - the libarchive functions of OVA import and export
 * (appliance.c, ovf-write.c), bound at first use (archive-dl.c, on
 * src/util/lazy-lib.c) instead of at program start: only OVA appliances
 * need libarchive, and it brought libxml2 and ICU into every command.
 * Include it instead of the library's headers; a function newly used
 * goes in the lists below, or the link fails.
 */
#ifndef VMC_ARCHIVE_DL_H
#define VMC_ARCHIVE_DL_H

#include <archive.h>
#include <archive_entry.h>

/* NULL once the library is loaded; else why it could not be (loads it). */
const char *archive_dl_error(void);

/* F(return type, name, (parameters), (arguments), result without it) */
#define ARCHIVE_DL_FUNCTIONS(F) \
    F(mode_t, archive_entry_filetype, (struct archive_entry *a0), (a0), 0) \
    F(const char *, archive_entry_hardlink, (struct archive_entry *a0), (a0), NULL) \
    F(const char *, archive_entry_pathname, (struct archive_entry *a0), (a0), NULL) \
    F(la_int64_t, archive_entry_size, (struct archive_entry *a0), (a0), 0) \
    F(int, archive_entry_size_is_set, (struct archive_entry *a0), (a0), ARCHIVE_FATAL) \
    F(const char *, archive_error_string, (struct archive *a0), (a0), NULL) \
    F(la_ssize_t, archive_read_data, (struct archive *a0, void *a1, size_t a2), (a0, \
      a1, a2), ARCHIVE_FATAL) \
    F(int, archive_read_data_block, (struct archive *a0, const void **a1, size_t *a2, \
      la_int64_t *a3), (a0, a1, a2, a3), ARCHIVE_FATAL) \
    F(int, archive_read_free, (struct archive *a0), (a0), ARCHIVE_FATAL) \
    F(struct archive *, archive_read_new, (void), (), NULL) \
    F(int, archive_read_next_header, (struct archive *a0, struct archive_entry **a1), \
      (a0, a1), ARCHIVE_FATAL) \
    F(int, archive_read_open_filename, (struct archive *a0, const char *a1, \
      size_t a2), (a0, a1, a2), ARCHIVE_FATAL) \
    F(int, archive_read_support_format_tar, (struct archive *a0), (a0), ARCHIVE_FATAL) \
    F(struct archive_entry *, archive_entry_new, (void), (), NULL) \
    F(int, archive_write_close, (struct archive *a0), (a0), ARCHIVE_FATAL) \
    F(la_ssize_t, archive_write_data, (struct archive *a0, const void *a1, \
      size_t a2), (a0, a1, a2), ARCHIVE_FATAL) \
    F(int, archive_write_free, (struct archive *a0), (a0), ARCHIVE_FATAL) \
    F(int, archive_write_header, (struct archive *a0, struct archive_entry *a1), (a0, \
      a1), ARCHIVE_FATAL) \
    F(struct archive *, archive_write_new, (void), (), NULL) \
    F(int, archive_write_open_fd, (struct archive *a0, int a1), (a0, a1), ARCHIVE_FATAL) \
    F(int, archive_write_set_format_pax_restricted, (struct archive *a0), (a0), \
      ARCHIVE_FATAL)

/* F(name, (parameters), (arguments)): no result; nothing without it */
#define ARCHIVE_DL_VOID_FUNCTIONS(F) \
    F(archive_entry_free, (struct archive_entry *a0), (a0)) \
    F(archive_entry_set_filetype, (struct archive_entry *a0, unsigned int a1), (a0, a1)) \
    F(archive_entry_set_mtime, (struct archive_entry *a0, time_t a1, long int a2), \
      (a0, a1, a2)) \
    F(archive_entry_set_pathname, (struct archive_entry *a0, const char *a1), (a0, a1)) \
    F(archive_entry_set_perm, (struct archive_entry *a0, mode_t a1), (a0, a1)) \
    F(archive_entry_set_size, (struct archive_entry *a0, la_int64_t a1), (a0, a1))

#define ARCHIVE_DL_DECLARE(ret, name, params, args, fail) ret archive_dl_##name params;
#define ARCHIVE_DL_DECLARE_VOID(name, params, args) void archive_dl_##name params;
ARCHIVE_DL_FUNCTIONS(ARCHIVE_DL_DECLARE)
ARCHIVE_DL_VOID_FUNCTIONS(ARCHIVE_DL_DECLARE_VOID)

#ifndef ARCHIVE_DL_IMPLEMENTATION
#define archive_entry_filetype archive_dl_archive_entry_filetype
#define archive_entry_free archive_dl_archive_entry_free
#define archive_entry_hardlink archive_dl_archive_entry_hardlink
#define archive_entry_new archive_dl_archive_entry_new
#define archive_entry_pathname archive_dl_archive_entry_pathname
#define archive_entry_set_filetype archive_dl_archive_entry_set_filetype
#define archive_entry_set_mtime archive_dl_archive_entry_set_mtime
#define archive_entry_set_pathname archive_dl_archive_entry_set_pathname
#define archive_entry_set_perm archive_dl_archive_entry_set_perm
#define archive_entry_set_size archive_dl_archive_entry_set_size
#define archive_entry_size archive_dl_archive_entry_size
#define archive_entry_size_is_set archive_dl_archive_entry_size_is_set
#define archive_error_string archive_dl_archive_error_string
#define archive_read_data archive_dl_archive_read_data
#define archive_read_data_block archive_dl_archive_read_data_block
#define archive_read_free archive_dl_archive_read_free
#define archive_read_new archive_dl_archive_read_new
#define archive_read_next_header archive_dl_archive_read_next_header
#define archive_read_open_filename archive_dl_archive_read_open_filename
#define archive_read_support_format_tar archive_dl_archive_read_support_format_tar
#define archive_write_close archive_dl_archive_write_close
#define archive_write_data archive_dl_archive_write_data
#define archive_write_free archive_dl_archive_write_free
#define archive_write_header archive_dl_archive_write_header
#define archive_write_new archive_dl_archive_write_new
#define archive_write_open_fd archive_dl_archive_write_open_fd
#define archive_write_set_format_pax_restricted archive_dl_archive_write_set_format_pax_restricted
#endif

#endif
