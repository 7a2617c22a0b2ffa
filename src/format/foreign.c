/*
 * foreign.c - shared pieces of the read-only vpc, vdi and vhdx drivers
 * (foreign.h): write refusal, UTF-16 names, parent-name confinement.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "format/foreign.h"

int
foreign_open_begin(struct vmc_image *img, unsigned flags, size_t state_size,
                   foreign_run_fn map, uint64_t *file_len,
                   struct vmc_error *err)
{
    struct foreign_state *s;
    int r;

    if (flags & VMC_OPEN_RDWR) {
        return vmc_error_set(err, -EROFS, "'%s': the %s driver is read-only "
                             "(convert the image to qcow2 to write to it)",
                             img->filename, img->ops->name);
    }
    r = hio_length(img->file, file_len);
    if (r < 0) {
        return vmc_error_set(err, r, "cannot stat '%s': %s", img->filename,
                             strerror(-r));
    }
    s = calloc(1, state_size);
    if (!s) {
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    s->map = map;
    img->priv = s;
    return 0;
}

static bool
bit_at(const uint8_t *map, uint64_t i, bool msb_first)
{
    return map[i / 8] & (msb_first ? 0x80 >> (i % 8) : 1 << (i % 8));
}

uint64_t
foreign_bit_run(const uint8_t *map, uint64_t first, uint64_t end,
                bool msb_first, bool *set)
{
    uint64_t i = first + 1;

    *set = bit_at(map, first, msb_first);
    while (i < end && bit_at(map, i, msb_first) == *set) {
        i++;
    }
    return i - first;
}

void
foreign_close(struct vmc_image *img)
{
    struct foreign_state *s = img->priv;

    if (s) {
        free(s->table);
        free(s->bitmap);
        free(s);
    }
    img->priv = NULL;
}

int
foreign_read(struct vmc_image *img, void *buf, uint64_t off, size_t len)
{
    foreign_run_fn map = ((struct foreign_state *)img->priv)->map;
    uint8_t *p = buf;

    while (len) {
        enum foreign_src src;
        uint64_t host = 0, run;
        int r = map(img, off, len, &src, &host, &run);

        if (r == 0 && src == FOREIGN_FILE) {
            r = hio_pread(img->file, p, run, host);
        } else if (r == 0 && src == FOREIGN_PARENT) {
            r = format_read_backing(img, p, off, run);
        } else if (r == 0) {
            memset(p, 0, run);
        }
        if (r < 0) {
            return r;
        }
        p += run;
        off += run;
        len -= run;
    }
    return 0;
}

int
foreign_block_status(struct vmc_image *img, uint64_t off, uint64_t len,
                     struct vmc_block_status *out)
{
    const struct foreign_state *s = img->priv;
    enum foreign_src src;
    uint64_t host = 0, run, data_run = 0;
    bool is_data = true;
    int r = s->map(img, off, len, &src, &host, &run);

    if (r == 0 && src == FOREIGN_FILE && s->holes_read_zero) {
        r = hio_data_run(img->file, host, run, &is_data, &data_run);
    }
    memset(out, 0, sizeof(*out));
    if (r < 0) {
        return r;
    }
    out->length = data_run ? MIN(run, data_run) : run;
    if (src == FOREIGN_FILE) {
        out->flags = VMC_BS_ALLOCATED | VMC_BS_DATA | VMC_BS_OFFSET |
                     (is_data ? 0 : VMC_BS_ZERO);
        out->host_offset = host;
    } else if (src == FOREIGN_ZERO) {
        out->flags = VMC_BS_ALLOCATED | VMC_BS_ZERO;
    }
    return 0;
}

int
foreign_write(struct vmc_image *img, const void *buf, uint64_t off,
              size_t len, unsigned flags)
{
    return -EROFS;
}

int
foreign_write_zeroes(struct vmc_image *img, uint64_t off, uint64_t len,
                     unsigned flags)
{
    return -EROFS;
}

int
foreign_discard(struct vmc_image *img, uint64_t off, uint64_t len)
{
    return -EROFS;
}

int
foreign_flush(struct vmc_image *img)
{
    return 0;
}

int
foreign_resize(struct vmc_image *img, uint64_t new_size,
               struct vmc_error *err)
{
    return vmc_error_set(err, -ENOTSUP, "'%s': the %s driver cannot resize "
                         "images", img->filename, img->ops->name);
}

bool
foreign_in_file(uint64_t off, uint64_t len, uint64_t file_len)
{
    uint64_t end;

    return add_ok(off, len, &end) && end <= file_len;
}

/* Append code point @cp to @out as UTF-8; returns bytes written. */
static size_t
put_utf8(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

char *
foreign_utf16_to_utf8(const uint8_t *in, size_t n, bool little_endian)
{
    char *out = malloc(n / 2 * 3 + 1);
    size_t i, o = 0;

    if (!out) {
        return NULL;
    }
    for (i = 0; i + 1 < n; i += 2) {
        uint32_t cp = little_endian ? le16_load(in + i) : be16_load(in + i);

        if (cp == 0) {
            break;
        }
        if (cp >= 0xd800 && cp < 0xdc00) {
            uint32_t lo;

            if (i + 3 >= n) {
                goto bad;
            }
            lo = little_endian ? le16_load(in + i + 2) : be16_load(in + i + 2);
            if (lo < 0xdc00 || lo >= 0xe000) {
                goto bad;
            }
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            i += 2;
        } else if (cp >= 0xdc00 && cp < 0xe000) {
            goto bad;
        }
        o += put_utf8(out + o, cp);
    }
    out[o] = '\0';
    return out;

bad:
    free(out);
    return NULL;
}

/* Is any '/'-separated component of @name exactly ".."? */
static bool
has_dotdot(const char *name)
{
    const char *p = name;

    while (*p) {
        size_t n = strcspn(p, "/");

        if (n == 2 && p[0] == '.' && p[1] == '.') {
            return true;
        }
        p += n;
        p += *p == '/';
    }
    return false;
}

int
foreign_set_parent(struct vmc_image *img, char *name, const char *fmt,
                   struct vmc_error *err)
{
    const char *rel = name;
    char *copy;

    while (rel[0] == '.' && rel[1] == '/') {
        rel += 2;
    }
    if (!*rel) {
        free(name);
        return vmc_error_set(err, -EUCLEAN, "'%s' has an empty parent file "
                             "name", img->filename);
    }
    if (rel[0] == '/' || (rel[1] == ':' && rel[0] != ':') ||
        has_dotdot(rel) || strlen(rel) > FORMAT_MAX_BACKING_NAME) {
        vmc_error_set(err, -EPERM, "'%s': parent file name '%s' is not a "
                      "relative name inside the image's directory (absolute "
                      "names and '..' are refused)", img->filename, rel);
        free(name);
        return -EPERM;
    }
    copy = strdup(rel);
    free(name);
    img->backing_fmt = copy ? strdup(fmt) : NULL;
    if (!copy || !img->backing_fmt) {
        free(copy);
        return vmc_error_set(err, -ENOMEM, "out of memory");
    }
    img->backing_name = copy;
    return 0;
}
