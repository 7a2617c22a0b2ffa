/*
 * image-error.c - the last data-path failure of each layer, for
 * vmc_image_last_error(): a driver, the seal hook or the chain records a
 * reason (corruption with its offset, seal mismatch, I/O error) on the
 * layer it happened in; the reader takes the newest record of a chain.
 *
 * Records are rare and small: one process-wide lock guards every layer's
 * record, and a process-wide sequence number orders records across the
 * layers of a chain.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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
