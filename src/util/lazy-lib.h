/*
 * lazy-lib.h - an optional shared library loaded at the first call of
 * one of its functions instead of at program start.
 *
 * Libraries only some commands need (libpq, libvirt, librados/librbd)
 * cost every vm-clone process their loading and relocation when they are
 * linked: from about 10 ms (libpq) to 50 ms (Ceph's). A module that uses
 * one keeps a list of the functions it calls, renames each call to a
 * wrapper (pq-dl.h, virt-dl.h, rbd-dl.h), and the wrappers find the real
 * functions here on first use. Thread-safe; a library that cannot be
 * loaded leaves a message saying why, and every wrapper then returns its
 * failure value.
 */
#ifndef VMC_LAZY_LIB_H
#define VMC_LAZY_LIB_H

#include <stddef.h>

struct vmc_lazy_lib {
    const char *const *sonames;     /* NULL-terminated, searched in order */
    const char *const *names;       /* the functions, @count of them */
    size_t count;
    void **symbols;                 /* @count slots, filled at load */
    int tried;                      /* set once the load was attempted */
    char error[512];                /* empty when every name resolved */
};

/* The function @i of @lib (loading the library on the first call), or
 * NULL when the library or one of the functions cannot be had. */
void *vmc_lazy_symbol(struct vmc_lazy_lib *lib, size_t i);

/* NULL once @lib is loaded; else why it could not be (loads it if no
 * call has yet). */
const char *vmc_lazy_error(struct vmc_lazy_lib *lib);

#endif
