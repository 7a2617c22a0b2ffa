/*
 * format.h - the format driver interface and the image object.
 *
 * A struct vmc_image is one layer of a backing chain: a host file, the
 * driver that interprets it (raw, qcow2) and a reference to the next
 * layer down. Drivers answer for their own layer only; whatever a layer
 * does not define is read through img->backing_io, the way down the chain
 * installed by whoever opened the layer (the chain layer), which also
 * supplies zeros past the end of a shorter backing image: drivers never
 * call the chain by name.
 */
#ifndef VMC_FORMAT_H
#define VMC_FORMAT_H

#include <pthread.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "vmclone.h"
#include "io/hostio.h"

struct vmc_image;

/* The parent-seal record a clone of a sealed template carries (a qcow2
 * header extension, written by the driver, read by the seal hook). */
#define FORMAT_PARENT_SEAL_EXT 0x564D4350u  /* "VMCP" */
#define FORMAT_PARENT_SEAL_LEN 40
/* Longest backing name any driver records (QEMU's limit, see qcow2.h). */
#define FORMAT_MAX_BACKING_NAME 1023

/* What the chain resolved before a driver creates an image: the driver
 * only lays out its own file. */
struct format_create_params {
    uint64_t size;                /* guest size, whole 512-byte sectors */
    const char *backing_name;     /* name to record, or NULL */
    enum vmc_format backing_fmt;  /* its format (with backing_name) */
    const uint8_t *parent_seal;   /* FORMAT_PARENT_SEAL_LEN bytes, or NULL */
    const struct vmc_create_opts *opts; /* driver options (cluster size...) */
};

/* The way down to the backing chain, supplied by the chain layer when it
 * opens a layer; drivers call it through format_read_backing() and
 * format_backing_is_zero() below. */
struct format_backing_io {
    /* Read @len bytes at @off from the chain below @img (zeros where
     * there is no backing file or it is shorter). */
    int (*read)(struct vmc_image *img, void *buf, uint64_t off, size_t len);
    /* Does the chain below @img read as zeros over the whole range? Only
     * a quick answer: false means "don't know". */
    bool (*is_zero)(struct vmc_image *img, uint64_t off, uint64_t len);
};

struct format_ops {
    const char *name;
    enum vmc_format format;

    /* Parse the layer in img->file: set img->size, img->backing_name and
     * img->backing_fmt, and img->table_bytes (refusing with -ENOMEM what
     * would exceed img->table_budget). @flags are the vmc_open_flags for
     * this layer. */
    int (*open)(struct vmc_image *img, unsigned flags, struct vmc_error *err);
    /* Create the file at @path from resolved parameters (the backing,
     * if any, was already opened and checked by the chain). */
    int (*create)(const char *path, const struct format_create_params *p,
                  struct vmc_error *err);
    /* Preallocate a freshly created image opened without its backing. */
    int (*preallocate)(struct vmc_image *img, enum vmc_prealloc mode,
                       struct vmc_error *err);
    /* Release driver state; the caller flushed already. */
    void (*close)(struct vmc_image *img);

    /* Data path: called with img->lock held; ranges are within img->size. */
    int (*read)(struct vmc_image *img, void *buf, uint64_t off, size_t len);
    int (*write)(struct vmc_image *img, const void *buf, uint64_t off,
                 size_t len, unsigned flags);
    int (*write_zeroes)(struct vmc_image *img, uint64_t off, uint64_t len,
                        unsigned flags);
    int (*discard)(struct vmc_image *img, uint64_t off, uint64_t len);
    int (*flush)(struct vmc_image *img);
    /* Status of this layer alone for the run at @off (<= @len bytes).
     * flags == 0 means "not defined here: ask the backing file". */
    int (*block_status)(struct vmc_image *img, uint64_t off, uint64_t len,
                        struct vmc_block_status *out);

    /* Control path. */
    int (*resize)(struct vmc_image *img, uint64_t new_size,
                  struct vmc_error *err);
    void (*get_info)(const struct vmc_image *img, struct vmc_image_info *info);
    int (*check)(struct vmc_image *img, unsigned repair,
                 struct vmc_check_result *res, vmc_check_report_fn report,
                 void *opaque, struct vmc_error *err);
    /* Rewrite the backing reference (name NULL = none) together with the
     * parent-seal record (SEAL_PARENT_EXT_LEN bytes, NULL = none). */
    int (*set_backing)(struct vmc_image *img, const char *name,
                       const char *fmt, const uint8_t *parent_seal,
                       struct vmc_error *err);
    /* Drop everything this layer defines so that it reads through. */
    int (*make_empty)(struct vmc_image *img, struct vmc_error *err);
    /* Write one whole cluster compressed (qcow2 only). */
    int (*write_compressed)(struct vmc_image *img, const void *buf,
                            uint64_t off, size_t len);
    /* Header extensions of this layer (qcow2): copy extension @type into
     * @buf (at most @cap bytes), its full length in *len; -ENOENT if
     * absent. set_ext replaces, adds or (data NULL) removes it and
     * rewrites the header durably. */
    int (*get_ext)(const struct vmc_image *img, uint32_t type, void *buf,
                   size_t cap, size_t *len);
    int (*set_ext)(struct vmc_image *img, uint32_t type, const void *data,
                   size_t len, struct vmc_error *err);
    /* Preferred I/O granularity (cluster size). */
    uint64_t (*granularity)(const struct vmc_image *img);
    /* Smallest separately mapped unit (subcluster), if not granularity. */
    uint64_t (*subcluster_size)(const struct vmc_image *img);
};

struct vmc_image {
    const struct format_ops *ops;
    struct hio_file *file;
    char *filename;          /* path as opened */
    uint64_t size;           /* guest size */
    bool writable;
    unsigned open_flags;
    unsigned depth;          /* 0 = top of the chain it was opened in */

    char *backing_name;      /* as stored in the image, or NULL */
    char *backing_fmt;       /* as recorded, or NULL */
    char *backing_path;      /* resolved path, or NULL */
    struct vmc_image *backing;
    const struct format_backing_io *backing_io; /* set by the chain */

    pthread_mutex_t lock;    /* serialises this layer's data path */
    pthread_t lock_owner;    /* with lock_held: who holds it (asserts) */
    bool lock_held;
    void *priv;              /* driver state */

    /* Backing layers are shared by every chain open in the process that
     * uses the same file (same st_dev/st_ino, format and lock mode):
     * reference-counted, listed in chain.c's registry. */
    bool shared;
    unsigned refcnt;
    enum vmc_format shared_fmt;
    struct vmc_image *registry_next;

    /* Table memory: what the chain still allows this layer (set by the
     * chain before open) and what its driver took at open. */
    uint64_t table_budget;
    uint64_t table_bytes;

    /* Seal of a sealed template (src/chain/seal-hook.c), or NULL. */
    struct seal_state *seal;

    /* Merged read map of this layer's view, shared by its overlays. */
    pthread_mutex_t map_lock;
    struct chain_map *map;
    bool map_unavailable;

    /* Last data-path failure in this layer (image-error.c; guarded by
     * its process-wide lock). */
    uint64_t err_seq;        /* 0: none recorded */
    int err_errno;           /* negative errno */
    char err_msg[512];
};

extern const struct format_ops raw_ops;
extern const struct format_ops qcow2_ops;
extern const struct format_ops vpc_ops;
extern const struct format_ops vdi_ops;
extern const struct format_ops vhdx_ops;
extern const struct format_ops vmdk_ops;

const struct format_ops *format_ops_for(enum vmc_format fmt);

/* The layer lock: the chain takes it around every call into a driver's
 * data path and drivers assert it (image_lock_held()). */
static inline void
image_lock(struct vmc_image *img)
{
    pthread_mutex_lock(&img->lock);
    img->lock_owner = pthread_self();
    img->lock_held = true;
}

static inline void
image_unlock(struct vmc_image *img)
{
    img->lock_held = false;
    pthread_mutex_unlock(&img->lock);
}

/* Does the calling thread hold the layer lock of @img? For asserts. */
static inline bool
image_lock_held(const struct vmc_image *img)
{
    return img->lock_held && pthread_equal(img->lock_owner, pthread_self());
}

/* The contract on entry to a driver's data path (format_ops above): the
 * caller holds the layer lock and [off, off+len) lies inside the image
 * (the public API validated the request). For asserts. */
static inline bool
format_entry_ok(const struct vmc_image *img, uint64_t off, uint64_t len)
{
    return image_lock_held(img) && off <= img->size &&
           len <= img->size - off;
}

/* Read @len bytes at @off from the chain below @img; without a way down
 * (a layer opened alone) the range reads as zeros. */
static inline int
format_read_backing(struct vmc_image *img, void *buf, uint64_t off,
                    size_t len)
{
    if (img->backing_io) {
        return img->backing_io->read(img, buf, off, len);
    }
    memset(buf, 0, len);
    return 0;
}

/* Quick "the chain below @img reads as zeros" (false: don't know). */
static inline bool
format_backing_is_zero(struct vmc_image *img, uint64_t off, uint64_t len)
{
    return img->backing_io ? img->backing_io->is_zero(img, off, len)
                           : !img->backing;
}

/* image-error.c: the last data-path failure of a layer. */
/* Record a failure (@errnum a negative errno) of layer @img; thread-safe. */
void image_record_error(struct vmc_image *img, int errnum, const char *fmt,
                        ...) __attribute__((format(printf, 3, 4)));
/* The newest record in the chain from @img down: its message copied to
 * @buf (@cap bytes, "" if none), its sequence number in *@seq (0 if none,
 * @seq may be NULL); returns its errno, 0 if none. */
int image_last_error(const struct vmc_image *img, char *buf, size_t cap,
                     uint64_t *seq);
/* The sequence number of the newest record in the process. */
uint64_t image_error_seq(void);
/* A layer whose file failed a sync (hio_sync()) is in a failed state:
 * every write and flush must fail with that error until the image is
 * reopened, so no later flush reports durable what the kernel dropped.
 * Returns that error (recording the reason) or 0; layer lock held. */
int image_failed_state(struct vmc_image *img);

/* probe.c: the container a file's bytes name ("qcow2", "vmdk", "vpc",
 * "luks"... as qemu-img names them), or NULL when they name none (raw). */
const char *format_detect(struct hio_file *f);
/* The format to open a user-named file @path with (magic only): a
 * recognised container without a driver is refused (-ENOTSUP) by name
 * with the command that converts it; a file naming none is raw. */
int format_probe_open(struct hio_file *f, const char *path,
                      enum vmc_format *fmt, struct vmc_error *err);

#endif /* VMC_FORMAT_H */
