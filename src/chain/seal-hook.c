/*
 * seal-hook.c - sealed templates, the part under the chain: loading a
 * layer's seal when it is opened, verifying each chunk the first time it
 * is read in a process, the parent-seal record that ties a linked clone to
 * the exact template it was made from, and writing or removing a seal for
 * the seal operations above the chain (src/ops/seal.c, through engine.h).
 *
 * Sidecar "IMAGE.seal" (all integers big-endian):
 *   0   8  magic "VMCSEAL1"
 *   8   4  version (1)
 *   12  4  chunk size
 *   16  8  virtual size
 *   24  8  number of chunks
 *   32 32  root digest
 *   64 ..  chunk digests, 32 bytes each
 * root = SHA-256("vmclone-seal-v1" NUL, chunk size, virtual size, digests)
 *
 * qcow2 extension 0x564D4353 ("VMCS", 48 bytes): version, chunk size,
 * virtual size, root. Extension 0x564D4350 ("VMCP", 40 bytes) in a clone:
 * the parent's root and virtual size.
 *
 * The seal of a qcow2 image is its extension (the sidecar must match it);
 * a raw image is sealed when its sidecar exists.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmclone-seal.h"
#include "chain/engine/engine.h"
#include "chain/seal-hook.h"
#include "format/format.h"
#include "io/hostio.h"
#include "util/util.h"

#define SIDECAR_MAGIC "VMCSEAL1"
#define SIDECAR_HDR 64
#define SEAL_EXT_LEN 48
#define DIGEST 32

struct seal_state {
    uint32_t chunk_size;
    uint64_t virtual_size;
    uint64_t nchunks;
    uint8_t root[DIGEST];
    uint8_t *leaves;             /* nchunks * DIGEST */
    _Atomic uint8_t *verified;   /* per chunk: 0 no, 1 ok */
    uint8_t zero_leaf[DIGEST];   /* digest of a whole chunk of zeros */
};

/* ------------------------------------------------------------ helpers */

static void
to_hex(const uint8_t *d, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    int i;

    for (i = 0; i < DIGEST; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[64] = '\0';
}

static int
sha256(const void *data, size_t len, uint8_t out[DIGEST])
{
    unsigned n = 0;

    return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 &&
           n == DIGEST ? 0 : -EIO;
}

/* SHA-256 of @chunk zero bytes. */
static int
zero_chunk_digest(uint32_t chunk, uint8_t out[DIGEST])
{
    uint8_t *z = calloc(1, chunk);
    int r;

    if (!z) {
        return -ENOMEM;
    }
    r = sha256(z, chunk, out);
    free(z);
    return r;
}

static int
compute_root(uint32_t chunk, uint64_t vsize, const uint8_t *leaves,
             uint64_t n, uint8_t out[DIGEST])
{
    static const char tag[] = "vmclone-seal-v1";
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t hdr[12];
    unsigned len = 0;
    int ok;

    if (!ctx) {
        return -ENOMEM;
    }
    be32_store(hdr, chunk);
    be64_store(hdr + 4, vsize);
    ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
         EVP_DigestUpdate(ctx, tag, sizeof(tag)) == 1 &&
         EVP_DigestUpdate(ctx, hdr, sizeof(hdr)) == 1 &&
         EVP_DigestUpdate(ctx, leaves, n * DIGEST) == 1 &&
         EVP_DigestFinal_ex(ctx, out, &len) == 1;
    EVP_MD_CTX_free(ctx);
    return ok && len == DIGEST ? 0 : -EIO;
}

int
engine_seal_root(uint32_t chunk, uint64_t vsize, const uint8_t *leaves,
                 uint64_t n, uint8_t out[ENGINE_SEAL_DIGEST_LEN])
{
    return compute_root(chunk, vsize, leaves, n, out);
}

static char *
sidecar_path(const char *path)
{
    size_t n = strlen(path);
    char *p = malloc(n + 6);

    if (p) {
        memcpy(p, path, n);
        memcpy(p + n, ".seal", 6);
    }
    return p;
}

static int
fsync_dir_of(const char *path)
{
    char *copy = strdup(path), *slash;
    int r;

    if (!copy) {
        return -ENOMEM;
    }
    slash = strrchr(copy, '/');
    if (slash) {
        *(slash == copy ? slash + 1 : slash) = '\0';
    }
    r = hio_sync_dir(slash ? copy : ".");
    free(copy);
    return r;
}

void
seal_free(struct seal_state *st)
{
    if (!st) {
        return;
    }
    free(st->leaves);
    free((void *)st->verified);
    free(st);
}

/* ----------------------------------------------------------- loading */

static int
load_sidecar(const char *path, struct seal_state **out, struct vmc_error *err)
{
    char *sp = sidecar_path(path);
    struct seal_state *st = NULL;
    uint8_t hdr[SIDECAR_HDR], root[DIGEST];
    struct stat stt;
    int fd = -1, r;

    if (!sp) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    fd = open(sp, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        r = -errno;
        if (r != -ENOENT) {
            vmc_error_set(err, r, "cannot open seal '%s': %s", sp,
                          strerror(-r));
        }
        goto out;
    }
    if (fstat(fd, &stt) < 0 || pread(fd, hdr, sizeof(hdr), 0) !=
        (ssize_t)sizeof(hdr) || memcmp(hdr, SIDECAR_MAGIC, 8) ||
        be32_load(hdr + 8) != 1) {
        r = vmc_error_set(err, -EUCLEAN, "seal '%s' is damaged (bad header)",
                          sp);
        goto out;
    }
    st = calloc(1, sizeof(*st));
    if (!st) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    st->chunk_size = be32_load(hdr + 12);
    st->virtual_size = be64_load(hdr + 16);
    st->nchunks = be64_load(hdr + 24);
    memcpy(st->root, hdr + 32, DIGEST);
    if (!is_power_of_2(st->chunk_size) || st->chunk_size < 4096 ||
        st->chunk_size > (16u << 20) ||
        st->nchunks != DIV_ROUND_UP(st->virtual_size, st->chunk_size) ||
        (uint64_t)stt.st_size != SIDECAR_HDR + st->nchunks * DIGEST) {
        r = vmc_error_set(err, -EUCLEAN, "seal '%s' is damaged (bad sizes)",
                          sp);
        goto out;
    }
    st->leaves = malloc(st->nchunks ? st->nchunks * DIGEST : 1);
    st->verified = calloc(st->nchunks ? st->nchunks : 1, 1);
    if (!st->leaves || !st->verified) {
        r = vmc_error_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    if (st->nchunks && pread(fd, st->leaves, st->nchunks * DIGEST,
                             SIDECAR_HDR) != (ssize_t)(st->nchunks * DIGEST)) {
        r = vmc_error_set(err, -EUCLEAN, "seal '%s' is truncated", sp);
        goto out;
    }
    r = compute_root(st->chunk_size, st->virtual_size, st->leaves,
                     st->nchunks, root);
    if (r == 0) {
        r = zero_chunk_digest(st->chunk_size, st->zero_leaf);
    }
    if (r == 0 && memcmp(root, st->root, DIGEST)) {
        r = vmc_error_set(err, -EUCLEAN, "seal '%s' is damaged (its digests "
                          "do not match its root)", sp);
    }
    if (r < 0) {
        goto out;
    }
    *out = st;
    st = NULL;
out:
    if (fd >= 0) {
        close(fd);
    }
    seal_free(st);
    free(sp);
    return r;
}

/* The seal extension of a qcow2 layer: 1 if present, 0 if not. */
static int
read_seal_ext(const struct vmc_image *img, uint8_t ext[SEAL_EXT_LEN])
{
    size_t len = 0;

    if (!img->ops->get_ext ||
        img->ops->get_ext(img, SEAL_EXT_MAGIC, ext, SEAL_EXT_LEN, &len) < 0) {
        return 0;
    }
    return len == SEAL_EXT_LEN ? 1 : -EUCLEAN;
}

int
seal_attach(struct vmc_image *img, unsigned flags, struct vmc_error *err)
{
    uint8_t ext[SEAL_EXT_LEN];
    struct seal_state *st = NULL;
    int has_ext = read_seal_ext(img, ext), r;

    if (has_ext < 0) {
        return vmc_error_set(err, -EUCLEAN, "'%s': invalid seal extension",
                             img->filename);
    }
    if (!has_ext && img->ops->format != VMC_FMT_RAW) {
        return 0;
    }
    r = load_sidecar(img->filename, &st, err);
    if (r == -ENOENT) {
        if (!has_ext) {
            return 0;   /* raw without sidecar: not sealed */
        }
        if (flags & VMC_OPEN_UNSEAL) {
            return 0;
        }
        return vmc_error_set(err, -EUCLEAN, "'%s' is sealed but its seal "
                             "file '%s.seal' is missing", img->filename,
                             img->filename);
    }
    if (r < 0) {
        if (flags & VMC_OPEN_UNSEAL) {
            return 0;
        }
        return r;
    }
    if (st->virtual_size != img->size ||
        (has_ext && (memcmp(ext + 16, st->root, DIGEST) ||
                     be32_load(ext + 4) != st->chunk_size ||
                     be64_load(ext + 8) != st->virtual_size))) {
        seal_free(st);
        if (flags & VMC_OPEN_UNSEAL) {
            return 0;
        }
        return vmc_error_set(err, -EUCLEAN, "'%s': its seal file does not "
                             "match the image (size or root digest)",
                             img->filename);
    }
    if (img->writable && !(flags & VMC_OPEN_UNSEAL)) {
        seal_free(st);
        return vmc_error_set(err, -EROFS, "'%s' is a sealed template and "
                             "cannot be opened for writing (clone it, or "
                             "'vm-clone img unseal' it)", img->filename);
    }
    img->seal = st;
    return 0;
}

/* ------------------------------------------------------- verification */

/* Hash chunk @c of layer @img's guest view, bypassing verification. */
static int
hash_chunk(struct vmc_image *img, struct seal_state *st, uint64_t c,
           uint8_t *buf, uint8_t md[DIGEST])
{
    uint64_t off = c * st->chunk_size;
    size_t len = (size_t)MIN(st->chunk_size, st->virtual_size - off);
    int r;

    image_lock(img);
    r = img->ops->read(img, buf, off, len);
    image_unlock(img);
    return r < 0 ? r : sha256(buf, len, md);
}

/* Does @each hold for the layer's own block status (not its backing
 * file's) all over [off, off+len)? False when it cannot be read. */
static bool
layer_all(struct vmc_image *img, uint64_t off, uint64_t len,
          bool (*each)(const struct vmc_image *img, unsigned flags))
{
    while (len > 0) {
        struct vmc_block_status bs;
        int r;

        image_lock(img);
        r = img->ops->block_status(img, off, len, &bs);
        image_unlock(img);
        if (r < 0 || bs.length == 0 || bs.length > len ||
            !each(img, bs.flags)) {
            return false;
        }
        off += bs.length;
        len -= bs.length;
    }
    return true;
}

static bool
reads_zero(const struct vmc_image *img, unsigned flags)
{
    return (flags & VMC_BS_ZERO) ||
           (!(flags & VMC_BS_ALLOCATED) && !img->backing);
}

/*
 * Does [off, off+len) of layer @img read as zeros by its own metadata
 * (zero clusters, or unallocated with no backing file)? Then its digest
 * is the zero chunk's, with no data to read or hash. What is checked is
 * still what a read returns: metadata that was damaged into "zero" reads
 * zeros, and fails the comparison unless the chunk was zeros.
 */
static bool
chunk_reads_zero(struct vmc_image *img, uint64_t off, uint64_t len)
{
    return layer_all(img, off, len, reads_zero);
}

int
seal_verify(struct vmc_image *img, uint64_t off, uint64_t len)
{
    struct seal_state *st = img->seal;
    uint64_t c, last;
    uint8_t *buf = NULL;
    int r = 0;

    if (!st || !len || off >= st->virtual_size) {
        return 0;
    }
    last = (MIN(off + len, st->virtual_size) - 1) / st->chunk_size;
    for (c = off / st->chunk_size; c <= last; c++) {
        uint8_t md[DIGEST];

        if (atomic_load(&st->verified[c])) {
            continue;
        }
        if ((c + 1) * st->chunk_size <= st->virtual_size &&
            img->ops->block_status &&
            chunk_reads_zero(img, c * st->chunk_size, st->chunk_size)) {
            memcpy(md, st->zero_leaf, DIGEST);
        } else {
            if (!buf && !(buf = malloc(st->chunk_size))) {
                return -ENOMEM;
            }
            r = hash_chunk(img, st, c, buf, md);
            if (r < 0) {
                break;
            }
        }
        if (memcmp(md, st->leaves + c * DIGEST, DIGEST)) {
            image_record_error(img, -EIO, "sealed template '%s' is damaged: "
                               "chunk at offset %" PRIu64 " (%u bytes) "
                               "fails verification", img->filename,
                               c * st->chunk_size, st->chunk_size);
            r = -EIO;
            break;
        }
        atomic_store(&st->verified[c], 1);
    }
    free(buf);
    return r;
}

/* Deprecated alias of vmc_image_last_error(): the message in a buffer of
 * the calling thread, valid until its next call. */
const char *
vmc_image_io_error(const struct vmc_image *img)
{
    static _Thread_local char msg[sizeof(((struct vmc_error *)0)->msg)];

    return image_last_error(img, msg, sizeof(msg), NULL) ? msg : NULL;
}

/* -------------------------------------------------------- parent seal */

int
seal_parent_ext(const struct vmc_image *backing,
                uint8_t out[SEAL_PARENT_EXT_LEN])
{
    if (!backing->seal) {
        return 0;
    }
    memcpy(out, backing->seal->root, DIGEST);
    be64_store(out + DIGEST, backing->seal->virtual_size);
    return 1;
}

int
seal_parent_ext_of(const char *overlay_path, const char *backing_name,
                   enum vmc_format fmt, uint8_t out[SEAL_PARENT_EXT_LEN])
{
    struct vmc_open_opts oo = {
        .format = fmt,
        .flags = VMC_OPEN_NO_BACKING | VMC_OPEN_FORCE_SHARE,
    };
    const char *slash = strrchr(overlay_path, '/');
    struct vmc_image *b = NULL;
    struct vmc_error ignored = { 0 };
    char *full = NULL;
    int r;

    if (fmt != VMC_FMT_RAW && fmt != VMC_FMT_QCOW2) {
        return 0;
    }
    if (backing_name[0] != '/' && slash) {
        if (asprintf(&full, "%.*s/%s", (int)(slash - overlay_path),
                     overlay_path, backing_name) < 0) {
            return 0;
        }
    }
    r = vmc_image_open(&b, full ? full : backing_name, &oo, &ignored);
    free(full);
    if (r < 0) {
        return 0;
    }
    r = seal_parent_ext(b, out);
    vmc_image_close(b);
    return r;
}

int
seal_check_parent(struct vmc_image *overlay, struct vmc_error *err)
{
    uint8_t want[SEAL_PARENT_EXT_LEN];
    char want_hex[65], have_hex[65];
    struct vmc_image *b = overlay->backing;
    size_t len = 0;

    if (!b || !overlay->ops->get_ext ||
        overlay->ops->get_ext(overlay, SEAL_PARENT_MAGIC, want, sizeof(want),
                              &len) < 0) {
        return 0;
    }
    if (len != SEAL_PARENT_EXT_LEN) {
        return vmc_error_set(err, -EUCLEAN, "'%s': invalid parent seal "
                             "extension", overlay->filename);
    }
    to_hex(want, want_hex);
    if (!b->seal) {
        return vmc_error_set(err, -ESTALE, "'%s' was cloned from a template "
                             "sealed as %.16s..., but its backing file '%s' "
                             "is not sealed (replaced or modified?)",
                             overlay->filename, want_hex, b->filename);
    }
    if (memcmp(b->seal->root, want, DIGEST) ||
        b->seal->virtual_size != be64_load(want + DIGEST)) {
        to_hex(b->seal->root, have_hex);
        return vmc_error_set(err, -ESTALE, "'%s' was cloned from a template "
                             "sealed as %.16s..., but its backing file '%s' "
                             "is sealed as %.16s... (replaced or re-sealed)",
                             overlay->filename, want_hex, b->filename,
                             have_hex);
    }
    return 0;
}

void
vmc_image_seal_info(const struct vmc_image *img, struct vmc_seal_info *info)
{
    memset(info, 0, sizeof(*info));
    if (!img->seal) {
        return;
    }
    info->sealed = true;
    info->chunk_size = img->seal->chunk_size;
    info->virtual_size = img->seal->virtual_size;
    info->nchunks = img->seal->nchunks;
    memcpy(info->root, img->seal->root, DIGEST);
    to_hex(info->root, info->root_hex);
}

/* ------------------------------------------------------ writing a seal */

static int
write_sidecar(const char *path, const struct seal_state *st,
              struct vmc_error *err)
{
    char *sp = sidecar_path(path), *tmp = NULL;
    uint8_t hdr[SIDECAR_HDR] = { 0 };
    struct hio_file *f = NULL;
    size_t n = st->nchunks * DIGEST;
    int r;

    if (!sp || asprintf(&tmp, "%s.tmp", sp) < 0) {
        free(sp);
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    memcpy(hdr, SIDECAR_MAGIC, 8);
    be32_store(hdr + 8, 1);
    be32_store(hdr + 12, st->chunk_size);
    be64_store(hdr + 16, st->virtual_size);
    be64_store(hdr + 24, st->nchunks);
    memcpy(hdr + 32, st->root, DIGEST);
    r = hio_open(&f, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0444);
    if (r == 0) {
        r = hio_pwrite(f, hdr, sizeof(hdr), 0);
    }
    if (r == 0 && n) {
        r = hio_pwrite(f, st->leaves, n, SIDECAR_HDR);
    }
    if (r == 0) {
        r = hio_sync(f);
    }
    hio_close(f);
    if (r == 0) {
        r = hio_rename(tmp, sp, false);
    }
    if (r < 0) {
        vmc_error_set(err, r, "cannot write seal '%s': %s", sp, strerror(-r));
        unlink(tmp);
    } else {
        r = fsync_dir_of(sp);
        if (r < 0) {
            vmc_error_set(err, r, "cannot sync the directory of '%s': %s",
                          sp, strerror(-r));
        }
    }
    free(tmp);
    free(sp);
    return r;
}

/* ------------------------------------------- for the seal operations */

_Static_assert(ENGINE_SEAL_DIGEST_LEN == DIGEST, "one digest size");

int
engine_seal_digest(const void *data, size_t len,
                   uint8_t md[ENGINE_SEAL_DIGEST_LEN])
{
    return sha256(data, len, md);
}

int
engine_seal_hash_chunk(struct vmc_image *img, uint64_t c, uint8_t *buf,
                       uint8_t md[ENGINE_SEAL_DIGEST_LEN])
{
    if (!img->seal || c >= img->seal->nchunks) {
        return -EINVAL;
    }
    return hash_chunk(img, img->seal, c, buf, md);
}

static bool
from_backing(const struct vmc_image *img, unsigned flags)
{
    return !(flags & (VMC_BS_ALLOCATED | VMC_BS_ZERO));
}

int
engine_seal_backing_leaf(struct vmc_image *img, uint32_t chunk_size,
                         uint64_t c, uint8_t md[ENGINE_SEAL_DIGEST_LEN])
{
    const struct seal_state *bst = img->backing ? img->backing->seal : NULL;
    uint64_t off = c * chunk_size;

    if (!bst || bst->chunk_size != chunk_size || !img->ops->block_status ||
        off + chunk_size > bst->virtual_size || off + chunk_size > img->size ||
        !layer_all(img, off, chunk_size, from_backing)) {
        return 0;
    }
    memcpy(md, bst->leaves + c * DIGEST, DIGEST);
    return 1;
}

bool
engine_seal_chunk_ok(const struct vmc_image *img, uint64_t c,
                     const uint8_t md[ENGINE_SEAL_DIGEST_LEN])
{
    return img->seal && c < img->seal->nchunks &&
           !memcmp(md, img->seal->leaves + c * DIGEST, DIGEST);
}

int
engine_seal_verify(struct vmc_image *img, uint64_t off, uint64_t len)
{
    return seal_verify(img, off, len);
}

int
engine_seal_write(struct vmc_image *img, const char *path,
                  uint32_t chunk_size, const uint8_t *leaves,
                  struct vmc_seal_info *info, struct vmc_error *err)
{
    struct seal_state st = {
        .chunk_size = chunk_size,
        .virtual_size = img->size,
        .nchunks = DIV_ROUND_UP(img->size, chunk_size),
        .leaves = (uint8_t *)leaves,
    };
    uint8_t ext[SEAL_EXT_LEN] = { 0 };
    int r;

    r = compute_root(chunk_size, st.virtual_size, leaves, st.nchunks,
                     st.root);
    if (r < 0) {
        return vmc_error_set(err, r, "cannot seal '%s': %s", path,
                             strerror(-r));
    }
    /* The sidecar first: for qcow2 the extension is the commit point. */
    r = write_sidecar(path, &st, err);
    if (r < 0) {
        return r;
    }
    if (img->ops->set_ext) {
        be32_store(ext, 1);
        be32_store(ext + 4, chunk_size);
        be64_store(ext + 8, st.virtual_size);
        memcpy(ext + 16, st.root, DIGEST);
        r = img->ops->set_ext(img, SEAL_EXT_MAGIC, ext, sizeof(ext), err);
        if (r < 0) {
            return r;
        }
    }
    if (info) {
        memset(info, 0, sizeof(*info));
        info->sealed = true;
        info->chunk_size = chunk_size;
        info->virtual_size = st.virtual_size;
        info->nchunks = st.nchunks;
        memcpy(info->root, st.root, DIGEST);
        to_hex(st.root, info->root_hex);
    }
    return 0;
}

int
engine_seal_clear_ext(struct vmc_image *img, struct vmc_error *err)
{
    if (!img->ops->set_ext) {
        return 0;
    }
    return img->ops->set_ext(img, SEAL_EXT_MAGIC, NULL, 0, err);
}

int
engine_seal_remove_sidecar(const char *path, struct vmc_error *err)
{
    char *sp = sidecar_path(path);
    int r = 0;

    if (!sp) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    if (unlink(sp) < 0 && errno != ENOENT) {
        r = vmc_error_set(err, -errno, "cannot remove '%s': %s", sp,
                          strerror(errno));
    }
    if (r == 0) {
        fsync_dir_of(sp);
    }
    free(sp);
    return r;
}
