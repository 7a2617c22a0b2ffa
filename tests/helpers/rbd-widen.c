/*
 * rbd-widen.c - an LD_PRELOAD module for tests/rbd/open-race.sh: it opens,
 * at every image open, the window of librbd 16.2's race between an open's
 * completion and a close that follows it (src/ops/rbd.c, IO_THREADS),
 * which CPU load opens only now and then.
 *
 * librbd's ImageState::complete_action_unlock completes an open (waking
 * rbd_open's caller) and then takes the image's state lock again. This
 * module's pthread_mutex_lock, called from exactly that call site (the
 * return address at RBD_WIDEN_SITE bytes into librbd.so.1, Debian's
 * 16.2.15 build), first sleeps RBD_WIDEN_US microseconds (100000) and
 * appends a line to the file $RBD_WIDEN_LOG, so the test knows the site
 * matched this librbd. Run with MALLOC_PERTURB_ set, freed memory reads
 * as garbage: a lock freed meanwhile fails at once (EINVAL, thrown by
 * librbd as std::system_error) instead of seeming to work.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RBD_WIDEN_SITE 0x10375a

typedef int (*lock_fn)(pthread_mutex_t *);

/* Whether @ret is the relock's return address in librbd.so.1. */
static int
at_site(void *ret)
{
    Dl_info di;

    return dladdr(ret, &di) && di.dli_fname &&
           strstr(di.dli_fname, "librbd.so.1") &&
           (uintptr_t)ret - (uintptr_t)di.dli_fbase == RBD_WIDEN_SITE;
}

int
pthread_mutex_lock(pthread_mutex_t *m)
{
    static lock_fn real;
    const char *us, *log;
    int fd;

    if (!real) {
        *(void **)&real = dlsym(RTLD_NEXT, "pthread_mutex_lock");
    }
    if (at_site(__builtin_return_address(0))) {
        log = getenv("RBD_WIDEN_LOG");
        if (log && (fd = open(log, O_WRONLY | O_APPEND | O_CREAT, 0644)) >= 0) {
            if (write(fd, "relock\n", 7) < 0) {
                /* the count is only a hint */
            }
            close(fd);
        }
        us = getenv("RBD_WIDEN_US");
        usleep(us ? (useconds_t)atoi(us) : 100000);
    }
    return real(m);
}
