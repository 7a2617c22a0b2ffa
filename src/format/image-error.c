/*
 * image-error.c - the last data-path failure of each layer, and
 * vmc_image_last_error() that reads it: a driver, the seal hook or the
 * chain records a reason (corruption with its offset, seal mismatch, I/O
 * error) on the layer it happened in; the reader takes the newest record
 * of a chain.
 *
 * A layer whose file failed a sync is in a failed state until reopened
 * (image_failed_state()).
 *
 * Records are rare and small: one process-wide lock guards every layer's
 * record, and a process-wide sequence number orders records across the
 * layers of a chain.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "io/hostio.h"

#include "format/format.h"

static pthread_mutex_t error_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t error_seq;   /* guarded by error_lock */

void
image_record_error(struct vmc_image *img, int errnum, const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&error_lock);
    va_start(ap, fmt);
    vsnprintf(img->err_msg, sizeof(img->err_msg), fmt, ap);
    va_end(ap);
    img->err_errno = errnum;
    img->err_seq = ++error_seq;
    pthread_mutex_unlock(&error_lock);
}

uint64_t
image_error_seq(void)
{
    uint64_t seq;

    pthread_mutex_lock(&error_lock);
    seq = error_seq;
    pthread_mutex_unlock(&error_lock);
    return seq;
}

int
image_last_error(const struct vmc_image *img, char *buf, size_t cap,
                 uint64_t *seq)
{
    const struct vmc_image *newest = NULL;
    int errnum = 0;

    pthread_mutex_lock(&error_lock);
    for (; img; img = img->backing) {
        if (img->err_seq && (!newest || img->err_seq > newest->err_seq)) {
            newest = img;
        }
    }
    if (newest) {
        errnum = newest->err_errno;
        if (cap) {
            snprintf(buf, cap, "%s", newest->err_msg);
        }
    } else if (cap) {
        buf[0] = '\0';
    }
    if (seq) {
        *seq = newest ? newest->err_seq : 0;
    }
    pthread_mutex_unlock(&error_lock);
    return errnum;
}

int
vmc_image_last_error(const struct vmc_image *img, struct vmc_error *err)
{
    char msg[sizeof(((struct vmc_error *)0)->msg)];
    int code = image_last_error(img, msg, sizeof(msg), NULL);

    if (err) {
        err->code = code;
        memcpy(err->msg, msg, sizeof(msg));
    }
    return code;
}

int
image_failed_state(struct vmc_image *img)
{
    int r = img->file ? hio_sync_failed(img->file) : 0;

    if (r < 0) {
        image_record_error(img, r, "'%s': an earlier flush failed (%s): "
                           "writes and flushes fail until the image is "
                           "reopened", img->filename, strerror(-r));
    }
    return r;
}
