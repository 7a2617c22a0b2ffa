/*
 * appliance.c - `template import NAME appliance.ova|appliance.ovf`: an
 * OVF appliance becomes one multi-disk template with its hardware.
 *
 * An .ova is a tar archive whose first member is the descriptor
 * (DSP0243): read with libarchive, the descriptor and manifest into
 * memory (bounded), the disk files the descriptor names into a private
 * directory of the store (run/ova-XXXXXX, mode 0700), each created there
 * by its plain name (O_EXCL, O_NOFOLLOW): nothing is ever written outside
 * it, and it is removed when the import ends. An .ovf is read in place
 * with its disks beside it (regular files, no symlinks). Then the
 * manifest is checked (ovf-mf.c) and the disks are imported through
 * vmc_catalog_template_import(), which reads each as what it is.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive-dl.h"
#include "catalog-ops.h"
#include "ovf.h"

struct appliance {
    char *dir;              /* where the disk files are */
    bool scratch;           /* @dir is ours: emptied and removed */
    int dirfd;
    char *desc_name;        /* the descriptor's file name */
    char *desc, *mf;        /* contents (the manifest may be absent) */
    size_t desc_len, mf_len;
    struct ovf_desc ovf;
    bool parsed;
    char *written[OVF_FILES_MAX];   /* files made in the scratch dir */
    size_t nwritten;
};

static bool
ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && !strcasecmp(s + n - m, suffix);
}

/* Whether @name is the href of one of the descriptor's disks. */
static bool
is_disk_file(const struct ovf_desc *d, const char *name)
{
    size_t i;

    for (i = 0; i < d->ndisks; i++) {
        if (!strcmp(d->disks[i].href, name)) {
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------ the tar */

/* The whole member @e (at most @max bytes) into malloc'd *@out. */
static int
read_member(struct archive *a, struct archive_entry *e, const char *what,
            size_t max, char **out, size_t *len, struct vmc_error *err)
{
    la_int64_t size = archive_entry_size(e);
    size_t got = 0;
    la_ssize_t n = 1;

    if (*out) {
        return vmc_error_set(err, -EINVAL, "appliance: a second %s ('%s'): "
                             "refused", what, archive_entry_pathname(e));
    }
    if (!archive_entry_size_is_set(e) || size < 0 || (uint64_t)size > max) {
        return vmc_error_set(err, what[0] == 'd' ? -EFBIG : -EBADMSG,
                             "appliance: the %s is %lld bytes: refused (at "
                             "most %zu)", what, (long long)size, max);
    }
    *out = malloc((size_t)size + 1);
    if (!*out) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    while (got < (size_t)size && n > 0) {
        n = archive_read_data(a, *out + got, (size_t)size - got);
        got += n > 0 ? (size_t)n : 0;
    }
    if (n < 0 || got != (size_t)size) {
        return vmc_error_set(err, -EBADMSG, "appliance: reading the %s: "
                             "%s", what, n < 0 ? archive_error_string(a)
                                               : "truncated");
    }
    (*out)[got] = '\0';
    *len = got;
    return 0;
}

/* Member @e into the scratch directory, created under @name. */
static int
extract_member(struct appliance *ap, struct archive *a,
               struct archive_entry *e, const char *name,
               struct vmc_error *err)
{
    const void *buf;
    size_t size;
    la_int64_t off;
    int fd, rc, r = 0;

    fd = openat(ap->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
                O_CLOEXEC, 0600);
    if (fd < 0) {
        return vmc_error_set(err, errno == EEXIST ? -EINVAL : -errno,
                             "appliance: member '%s': %s", name,
                             errno == EEXIST ? "listed twice: refused"
                                             : strerror(errno));
    }
    ap->written[ap->nwritten++] = strdup(name);
    while (r == 0 &&
           (rc = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK) {
        if (pwrite(fd, buf, size, off) != (ssize_t)size) {
            r = vmc_error_set(err, errno ? -errno : -EIO, "appliance: "
                              "writing '%s/%s': %s", ap->dir, name,
                              strerror(errno ? errno : EIO));
        }
    }
    if (r == 0 && rc != ARCHIVE_EOF) {
        r = vmc_error_set(err, -EBADMSG, "appliance: member '%s': %s", name,
                          archive_error_string(a));
    }
    if (r == 0 && ftruncate(fd, archive_entry_size(e)) < 0) {
        r = vmc_error_set(err, -errno, "appliance: '%s': %s", name,
                          strerror(errno));
    }
    close(fd);
    return r;
}

/* One member: the descriptor (first), the manifest, a disk, or skipped. */
static int
take_member(struct appliance *ap, struct archive *a, struct archive_entry *e,
            unsigned index, struct vmc_error *err)
{
    const char *name = archive_entry_pathname(e);
    bool regular = archive_entry_filetype(e) == AE_IFREG &&
                   !archive_entry_hardlink(e);
    int r;

    while (name && !strncmp(name, "./", 2)) {
        name += 2;
    }
    r = ovf_check_href(name, "archive member", err);
    if (r == 0 && index == 0 && !(regular && ends_with(name, ".ovf"))) {
        r = vmc_error_set(err, -EINVAL, "appliance: the archive's first "
                          "member '%s' is not an .ovf descriptor: refused "
                          "(an OVA starts with its descriptor)", name);
    }
    if (r < 0 || index == 0) {
        if (r == 0 && !(ap->desc_name = strdup(name))) {
            r = vmc_error_set(err, -ENOMEM, "out of memory");
        }
        return r < 0 ? r : read_member(a, e, "descriptor", OVF_DESC_MAX,
                                       &ap->desc, &ap->desc_len, err);
    }
    if (regular && ends_with(name, ".mf")) {
        return read_member(a, e, "manifest", OVF_MF_MAX, &ap->mf,
                           &ap->mf_len, err);
    }
    if (!is_disk_file(&ap->ovf, name)) {
        return 0;       /* a certificate, an ISO...: not used */
    }
    if (!regular) {
        return vmc_error_set(err, -EINVAL, "appliance: member '%s' is not "
                             "a regular file: refused", name);
    }
    return extract_member(ap, a, e, name, err);
}

/* Read .ova @path: descriptor, manifest, disks into a new scratch dir. */
static int
read_ova(struct appliance *ap, struct vmc_catalog *cat, const char *path,
         struct vmc_error *err)
{
    struct archive *a;
    struct archive_entry *e;
    unsigned index = 0;
    int rc = ARCHIVE_OK, r = 0;

    if (archive_dl_error()) {
        return vmc_error_set(err, -ELIBACC, "an OVA needs libarchive, which "
                             "cannot be loaded (%s): install libarchive13",
                             archive_dl_error());
    }
    a = archive_read_new();
    if (!a || asprintf(&ap->dir, "%s/ova-XXXXXX", cat->run_dir) < 0) {
        ap->dir = NULL;
        r = vmc_error_set(err, -ENOMEM, "out of memory");
    } else if (!mkdtemp(ap->dir)) {
        r = vmc_error_set(err, -errno, "appliance: cannot make '%s': %s",
                          ap->dir, strerror(errno));
    } else {
        ap->scratch = true;
        ap->dirfd = open(ap->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (ap->dirfd < 0) {
            r = vmc_error_set(err, -errno, "'%s': %s", ap->dir,
                              strerror(errno));
        }
    }
    if (r == 0) {
        archive_read_support_format_tar(a);
        if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
            r = vmc_error_set(err, -EINVAL, "'%s' is not an OVA (a tar "
                              "archive): %s", path, archive_error_string(a));
        }
    }
    while (r == 0 && (rc = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        if (index > 4 * OVF_FILES_MAX) {
            r = vmc_error_set(err, -EINVAL, "appliance: more than %d "
                              "archive members: refused", 4 * OVF_FILES_MAX);
            break;
        }
        r = take_member(ap, a, e, index, err);
        if (r == 0 && index++ == 0) {
            r = ovf_parse(ap->desc, ap->desc_len, &ap->ovf, err);
            ap->parsed = r == 0;
        }
    }
    if (r == 0 && rc != ARCHIVE_EOF) {
        r = vmc_error_set(err, -EINVAL, "'%s': %s", path,
                          index ? archive_error_string(a)
                                : "not an OVA (a tar archive)");
    }
    archive_read_free(a);
    return r;
}

/* ------------------------------------------------------- a plain .ovf */

/* The whole of file @path (at most @max bytes) into *@out; a missing
 * file with @optional leaves *@out NULL. */
static int
slurp(const char *path, size_t max, bool optional, char **out, size_t *len,
      struct vmc_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0;
    struct stat st;
    ssize_t n = 0;

    if (fd < 0) {
        return optional && errno == ENOENT ? 0 :
               vmc_error_set(err, -errno, "'%s': %s", path, strerror(errno));
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        r = vmc_error_set(err, -EINVAL, "'%s' is not a regular file", path);
    } else if ((uint64_t)st.st_size > max) {
        r = vmc_error_set(err, optional ? -EBADMSG : -EFBIG, "appliance: "
                          "'%s' is %lld bytes: refused (at most %zu)", path,
                          (long long)st.st_size, max);
    } else if (!(*out = malloc((size_t)st.st_size + 1))) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
    } else if ((n = pread(fd, *out, (size_t)st.st_size, 0)) !=
               st.st_size) {
        r = vmc_error_set(err, -EIO, "'%s': short read", path);
    } else {
        (*out)[n] = '\0';
        *len = (size_t)n;
    }
    close(fd);
    return r;
}

/* Read .ovf @path and, beside it, the manifest of the same name. */
static int
read_ovf(struct appliance *ap, const char *path, struct vmc_error *err)
{
    const char *slash = strrchr(path, '/');
    char *mf = NULL;
    int r;

    ap->desc_name = strdup(slash ? slash + 1 : path);
    ap->dir = slash ? strndup(path, (size_t)(slash - path + (slash == path)))
                    : strdup(".");
    if (!ap->desc_name || !ap->dir ||
        asprintf(&mf, "%.*s.mf", (int)(strlen(path) - 4), path) < 0) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    r = slurp(path, OVF_DESC_MAX, false, &ap->desc, &ap->desc_len, err);
    if (r == 0) {
        r = slurp(mf, OVF_MF_MAX, true, &ap->mf, &ap->mf_len, err);
    }
    free(mf);
    if (r == 0) {
        r = ovf_parse(ap->desc, ap->desc_len, &ap->ovf, err);
        ap->parsed = r == 0;
    }
    return r;
}

/* ------------------------------------------------------------- import */

/* The disk files' paths (*@paths, n = ndisks), each a regular file. */
static int
disk_paths(struct appliance *ap, char ***paths, struct vmc_error *err)
{
    size_t i, n = ap->ovf.ndisks;
    struct stat st;
    int r = 0;

    *paths = calloc(n, sizeof(**paths));
    if (!*paths) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    for (i = 0; r == 0 && i < n; i++) {
        const char *href = ap->ovf.disks[i].href;

        if (asprintf(&(*paths)[i], "%s/%s", ap->dir, href) < 0) {
            (*paths)[i] = NULL;
            r = vmc_error_set(err, -ENOMEM, "out of memory");
        } else if (lstat((*paths)[i], &st) < 0) {
            r = vmc_error_set(err, -EBADMSG, "appliance: disk file '%s' "
                              "named by the descriptor is %s: refused", href,
                              ap->scratch ? "not in the archive"
                                          : "missing");
        } else if (!S_ISREG(st.st_mode)) {
            r = vmc_error_set(err, -EINVAL, "appliance: disk file '%s' is "
                              "not a regular file (a symlink?): refused",
                              href);
        }
    }
    return r;
}

/* Check the manifest, if any, over the descriptor and the disk files. */
static int
check_manifest(struct appliance *ap, char *const *paths,
               struct vmc_appliance_report *rep, struct vmc_error *err)
{
    const char *names[OVF_FILES_MAX + 1], *files[OVF_FILES_MAX + 1];
    char *desc_path = NULL;
    size_t i, j;
    int r;

    if (!ap->mf) {
        return 0;
    }
    names[0] = ap->desc_name;
    if (asprintf(&desc_path, "%s/%s", ap->dir, ap->desc_name) < 0) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    files[0] = desc_path;
    for (i = 0; i < ap->ovf.nfiles; i++) {
        names[i + 1] = ap->ovf.files[i];
        files[i + 1] = NULL;
        for (j = 0; j < ap->ovf.ndisks; j++) {
            if (!strcmp(ap->ovf.disks[j].href, names[i + 1])) {
                files[i + 1] = paths[j];
            }
        }
    }
    if (ap->scratch) {
        /* the descriptor was read from the archive, not written out */
        FILE *f = fopen(desc_path, "wx");

        if (!f || fwrite(ap->desc, 1, ap->desc_len, f) != ap->desc_len) {
            r = vmc_error_set(err, -EIO, "'%s': cannot write", desc_path);
            if (f) {
                fclose(f);
            }
            free(desc_path);
            return r;
        }
        fclose(f);
        ap->written[ap->nwritten++] = strdup(ap->desc_name);
    }
    r = ovf_manifest_check(ap->mf, ap->mf_len, names, files,
                           ap->ovf.nfiles + 1, &rep->manifest, err);
    free(desc_path);
    return r;
}

/* The formats the disks were read as ("vmdk", "vmdk, raw") into @rep. */
static void
report_formats(char *const *paths, size_t n, enum vmc_format named,
               struct vmc_appliance_report *rep)
{
    struct vmc_open_opts oo = { .format = named,
                                .flags = VMC_OPEN_NO_BACKING |
                                         VMC_OPEN_FORCE_SHARE };
    size_t i, len;

    rep->formats[0] = '\0';
    for (i = 0; i < n; i++) {
        struct vmc_image *img = NULL;
        const char *f = "?";

        if (vmc_image_open(&img, paths[i], &oo, NULL) == 0) {
            f = vmc_format_name(vmc_image_format(img));
        }
        vmc_image_close(img);
        len = strlen(rep->formats);
        if (!strstr(rep->formats, f)) {
            snprintf(rep->formats + len, sizeof(rep->formats) - len, "%s%s",
                     len ? ", " : "", f);
        }
    }
}

/* The import options: the appliance's hardware where @o sets none, and
 * VMDK when the descriptor says every disk is one. */
static void
import_opts(const struct appliance *ap, const struct vmc_import_opts *o,
            struct vmc_import_opts *out)
{
    size_t i;
    bool vmdk = true;

    *out = *o;
    if (!out->hw.cpus) {
        out->hw.cpus = ap->ovf.cpus;
    }
    if (!out->hw.memory_mb) {
        out->hw.memory_mb = ap->ovf.memory_mb;
    }
    if (!out->hw.nics) {
        out->hw.nics = ap->ovf.nics ? ap->ovf.nics : VMC_HW_NO_NICS;
    }
    for (i = 0; i < ap->ovf.ndisks; i++) {
        vmdk = vmdk && ap->ovf.disks[i].vmdk;
    }
    if (out->format == VMC_FMT_AUTO && vmdk) {
        out->format = VMC_FMT_VMDK;
    }
}

static void
appliance_release(struct appliance *ap)
{
    size_t i;

    for (i = 0; i < ap->nwritten; i++) {
        if (ap->written[i]) {
            unlinkat(ap->dirfd, ap->written[i], 0);
        }
        free(ap->written[i]);
    }
    if (ap->dirfd >= 0) {
        close(ap->dirfd);
    }
    if (ap->scratch) {
        rmdir(ap->dir);
    }
    if (ap->parsed) {
        ovf_desc_release(&ap->ovf);
    }
    free(ap->dir);
    free(ap->desc_name);
    free(ap->desc);
    free(ap->mf);
}

int
vmc_catalog_template_import_appliance(struct vmc_catalog *cat,
                                      const char *name, const char *path,
                                      const struct vmc_import_opts *o,
                                      struct vmc_appliance_report *rep,
                                      struct vmc_error *err)
{
    struct appliance ap = { .dirfd = -1 };
    struct vmc_import_opts io;
    char **paths = NULL;
    size_t i;
    int r;

    memset(rep, 0, sizeof(*rep));
    r = cat_check_name("template", name, err);
    if (r == 0 && ends_with(path, ".ovf")) {
        r = read_ovf(&ap, path, err);
    } else if (r == 0) {
        r = read_ova(&ap, cat, path, err);
    }
    if (r == 0) {
        r = disk_paths(&ap, &paths, err);
    }
    if (r == 0) {
        r = check_manifest(&ap, paths, rep, err);
    }
    if (r == 0) {
        import_opts(&ap, o, &io);
        r = vmc_catalog_template_import(cat, name,
                                        (const char *const *)paths,
                                        ap.ovf.ndisks, &io, err);
    }
    if (r == 0) {
        rep->ndisks = ap.ovf.ndisks;
        rep->hw = io.hw;
        report_formats(paths, ap.ovf.ndisks, io.format, rep);
    }
    for (i = 0; paths && i < ap.ovf.ndisks; i++) {
        free(paths[i]);
    }
    free(paths);
    appliance_release(&ap);
    return r;
}
