/*
 * rbd-copy.c - data between image files and rbd images: a template's
 * guest view imported into a new rbd image that is then frozen (snapshot
 * VMC_RBD_BASE_SNAP, protected, seal in metadata), and an rbd image's data
 * exported into a new qcow2 file (a full clone out of the cluster).
 * Zero runs are skipped both ways. And the check of a frozen image's data
 * against its seal (fsck --verify).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmclone-rbd.h"
#include "vmclone-seal.h"
#include "ops-internal.h"
#include "rbd-internal.h"

#define CHUNK (1024u * 1024)

/* Write the non-zero sectors of @buf (@len bytes at @off) into @img. */
static int
write_data(rbd_image_t img, const uint8_t *buf, uint64_t off, size_t len,
           uint64_t *bytes)
{
    size_t done = 0;

    while (done < len) {
        bool zero = false;
        size_t run = ops_sector_run(buf + done, len - done, &zero);

        if (!zero) {
            ssize_t w = rbd_write(img, off + done, run,
                                  (const char *)buf + done);

            if (w < 0 || (size_t)w != run) {
                return w < 0 ? (int)w : -EIO;
            }
            *bytes += run;
        }
        done += run;
    }
    return 0;
}

/* Copy @src's guest view into open image @img. */
static int
copy_in(struct vmc_image *src, rbd_image_t img, uint64_t *bytes,
        const char *dst, struct vmc_error *err)
{
    uint64_t size = vmc_image_size(src), off;
    uint8_t *buf = malloc(CHUNK);
    int r = buf ? 0 : vmc_error_set(err, -ENOMEM, "out of memory");

    for (off = 0; r == 0 && off < size; off += CHUNK) {
        size_t len = size - off < CHUNK ? (size_t)(size - off) : CHUNK;

        r = vmc_image_read(src, buf, off, len);
        if (r < 0) {
            vmc_error_set(err, r, "read at %llu: %s",
                          (unsigned long long)off, strerror(-r));
        } else if ((r = write_data(img, buf, off, len, bytes)) < 0) {
            vmc_error_set(err, r, "rbd image '%s': write at %llu: %s", dst,
                          (unsigned long long)off, strerror(-r));
        }
    }
    if (r == 0 && (r = rbd_flush(img)) < 0) {
        vmc_error_set(err, r, "rbd image '%s': flush: %s", dst,
                      strerror(-r));
    }
    free(buf);
    return r;
}

/* The seal's chunk size of @src in @img's metadata VMC_RBD_SEAL_CHUNK_KEY
 * (vmc_rbd_verify() needs it to recompute the root). */
static int
seal_chunk_set(struct vmc_image *src, rbd_image_t img)
{
    struct vmc_seal_info si = { 0 };
    char v[16];

    vmc_image_seal_info(src, &si);
    if (!si.sealed) {
        return 0;
    }
    snprintf(v, sizeof(v), "%u", si.chunk_size);
    return rbd_metadata_set(img, VMC_RBD_SEAL_CHUNK_KEY, v);
}

int
vmc_rbd_import(const char *src, const char *dst, const char *seal,
               uint64_t *bytes, struct vmc_error *err)
{
    struct vmc_open_opts oo = { .flags = VMC_OPEN_FORCE_SHARE };
    struct vmc_image *in = NULL;
    struct rbd_spec s;
    struct rbd_conn c;
    rbd_image_t img;
    int r = vmc_image_open(&in, src, &oo, err);

    if (r < 0) {
        return r;
    }
    r = rbd_open_spec(dst, &s, &c, err);
    if (r < 0) {
        vmc_image_close(in);
        return r;
    }
    r = rbd_image_create(&c, s.image, vmc_image_size(in), dst, err);
    if (r == 0 && (r = rbd_open(c.io, s.image, &img, NULL)) < 0) {
        vmc_error_set(err, r, "rbd image '%s': %s", dst, strerror(-r));
    } else if (r == 0) {
        r = copy_in(in, img, bytes, dst, err);
        if (r == 0 && seal) {
            r = seal_chunk_set(in, img);
        }
        if (r == 0 && seal &&
            (r = rbd_metadata_set(img, VMC_RBD_SEAL_KEY, seal)) < 0) {
            vmc_error_set(err, r, "rbd image '%s': cannot store the seal: "
                          "%s", dst, strerror(-r));
        }
        if (r == 0) {
            r = rbd_freeze_open(img, VMC_RBD_BASE_SNAP, dst, err);
        }
        rbd_close(img);
    }
    rbd_conn_close(&c);
    vmc_image_close(in);
    return r;
}

int
rbd_copy_by_reads(rbd_image_t src, struct rbd_conn *c, const char *name,
                  const char *dst, struct vmc_error *err)
{
    uint8_t *buf = malloc(CHUNK);
    uint64_t size = 0, off, bytes = 0;
    rbd_image_t img;
    int r = buf ? rbd_get_size(src, &size) : -ENOMEM;

    if (r == 0) {
        r = rbd_image_create(c, name, size, dst, err);
    } else {
        vmc_error_set(err, r, "rbd copy to '%s': %s", dst, strerror(-r));
    }
    if (r < 0) {
        free(buf);
        return r;
    }
    if ((r = rbd_open(c->io, name, &img, NULL)) < 0) {
        free(buf);
        return vmc_error_set(err, r, "rbd image '%s': %s", dst,
                             strerror(-r));
    }
    for (off = 0; r == 0 && off < size; off += CHUNK) {
        size_t len = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
        ssize_t n = rbd_read(src, off, len, (char *)buf);

        r = n < 0 ? (int)n : (size_t)n != len ? -EIO
                  : write_data(img, buf, off, len, &bytes);
    }
    if (r == 0) {
        r = rbd_flush(img);
    }
    if (r < 0) {
        vmc_error_set(err, r, "rbd copy to '%s' at %llu: %s", dst,
                      (unsigned long long)off, strerror(-r));
    }
    rbd_close(img);
    free(buf);
    return r;
}

/* Copy open rbd image @img (@size bytes) into new image file @out. */
static int
copy_out(rbd_image_t img, uint64_t size, struct vmc_image *out,
         uint64_t *bytes, const char *src, struct vmc_error *err)
{
    uint8_t *buf = malloc(CHUNK);
    uint64_t off;
    int r = buf ? 0 : vmc_error_set(err, -ENOMEM, "out of memory");

    for (off = 0; r == 0 && off < size; off += CHUNK) {
        size_t len = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
        ssize_t n = rbd_read(img, off, len, (char *)buf);
        size_t done = 0;

        if (n < 0 || (size_t)n != len) {
            r = vmc_error_set(err, n < 0 ? (int)n : -EIO, "rbd image '%s': "
                              "read at %llu: %s", src,
                              (unsigned long long)off,
                              strerror(n < 0 ? (int)-n : EIO));
        }
        while (r == 0 && done < len) {
            bool zero = false;
            size_t run = ops_sector_run(buf + done, len - done, &zero);

            if (!zero && (r = vmc_image_write(out, buf + done, off + done, run,
                                              0)) < 0) {
                vmc_error_set(err, r, "write at %llu: %s",
                              (unsigned long long)(off + done),
                              strerror(-r));
            }
            *bytes += zero ? 0 : run;
            done += run;
        }
    }
    free(buf);
    return r;
}

int
vmc_rbd_export(const char *src, const char *dst, uint64_t *bytes,
               struct vmc_error *err)
{
    struct vmc_open_opts oo = { .format = VMC_FMT_QCOW2,
                                .flags = VMC_OPEN_RDWR };
    struct vmc_create_opts co;
    struct vmc_image *out = NULL;
    struct rbd_spec s;
    struct rbd_conn c;
    rbd_image_t img;
    uint64_t size = 0;
    int r = rbd_open_spec(src, &s, &c, err);

    if (r < 0) {
        return r;
    }
    r = rbd_open_read_only(c.io, s.image, &img, NULL);
    if (r < 0) {
        rbd_conn_close(&c);
        return vmc_error_set(err, r, "rbd image '%s': %s", src,
                             strerror(-r));
    }
    rbd_get_size(img, &size);
    vmc_create_opts_init(&co);
    co.size = size;
    r = vmc_image_create(dst, &co, err);
    if (r == 0) {
        r = vmc_image_open(&out, dst, &oo, err);
    }
    if (r == 0) {
        r = copy_out(img, size, out, bytes, src, err);
    }
    if (r == 0 && (r = vmc_image_flush(out)) < 0) {
        vmc_error_set(err, r, "'%s': flush: %s", dst, strerror(-r));
    }
    vmc_image_close(out);
    rbd_close(img);
    rbd_conn_close(&c);
    return r;
}

/* ------------------------------------------------------------- verify */

/* Metadata @key of @img into @buf (@len), or "" when absent. */
static int
meta_get(rbd_image_t img, const char *key, char *buf, size_t len)
{
    size_t n = len;
    int r = rbd_metadata_get(img, key, buf, &n);

    if (r == -ENOENT) {
        buf[0] = '\0';
        return 0;
    }
    return r;
}

/* The seal root (hex) of open image @img's data, with chunks of @chunk. */
static int
data_root(rbd_image_t img, uint32_t chunk, char hex[65])
{
    uint64_t size = 0, n, c;
    uint8_t *leaves = NULL, *buf = NULL, root[ENGINE_SEAL_DIGEST_LEN];
    int r = rbd_get_size(img, &size);

    n = (size + chunk - 1) / chunk;
    if (r == 0 && (!(leaves = malloc(n ? n * ENGINE_SEAL_DIGEST_LEN : 1)) ||
                   !(buf = malloc(chunk)))) {
        r = -ENOMEM;
    }
    for (c = 0; r == 0 && c < n; c++) {
        size_t len = size - c * chunk < chunk ? (size_t)(size - c * chunk)
                                              : chunk;
        ssize_t got = rbd_read(img, c * chunk, len, (char *)buf);

        r = got < 0 ? (int)got : (size_t)got != len ? -EIO
            : engine_seal_digest(buf, len, leaves + c * ENGINE_SEAL_DIGEST_LEN);
    }
    if (r == 0) {
        r = engine_seal_root(chunk, size, leaves, n, root);
    }
    for (c = 0; r == 0 && c < ENGINE_SEAL_DIGEST_LEN; c++) {
        snprintf(hex + 2 * c, 3, "%02x", root[c]);
    }
    free(leaves);
    free(buf);
    return r;
}

int
vmc_rbd_verify(const char *spec, const char *want, struct vmc_error *err)
{
    struct rbd_spec s;
    struct rbd_conn c;
    rbd_image_t img;
    char seal[512] = "", chunk[32] = "", hex[65];
    long cs;
    int r = rbd_open_spec_ro(spec, &s, &c, err);

    if (r < 0) {
        return r;
    }
    r = rbd_open_read_only(c.io, s.image, &img, VMC_RBD_BASE_SNAP);
    if (r < 0) {
        rbd_conn_close(&c);
        return vmc_error_set(err, r, "rbd image '%s@%s': %s", spec,
                             VMC_RBD_BASE_SNAP, strerror(-r));
    }
    r = meta_get(img, VMC_RBD_SEAL_KEY, seal, sizeof(seal));
    if (r == 0) {
        r = meta_get(img, VMC_RBD_SEAL_CHUNK_KEY, chunk, sizeof(chunk));
    }
    cs = chunk[0] ? strtol(chunk, NULL, 10) : VMC_SEAL_DEFAULT_CHUNK;
    if (r < 0) {
        vmc_error_set(err, r, "rbd image '%s': metadata: %s", spec,
                      strerror(-r));
    } else if (!want && !seal[0]) {
        r = vmc_error_set(err, -ENOENT, "rbd image '%s' has no seal", spec);
    } else if (cs < 4096 || cs > (16l << 20) || (cs & (cs - 1))) {
        r = vmc_error_set(err, -EBADMSG, "rbd image '%s': bad seal chunk "
                          "size '%s'", spec, chunk);
    } else if ((r = data_root(img, (uint32_t)cs, hex)) < 0) {
        vmc_error_set(err, r, "rbd image '%s@%s': read: %s", spec,
                      VMC_RBD_BASE_SNAP, strerror(-r));
    } else if (strcmp(hex, want ? want : seal)) {
        r = vmc_error_set(err, -EBADMSG, "rbd image '%s@%s': its data does "
                          "not match the seal (%.16s... read, %.16s... "
                          "sealed)", spec, VMC_RBD_BASE_SNAP, hex,
                          want ? want : seal);
    }
    rbd_close(img);
    rbd_conn_close(&c);
    return r;
}
