/*
 * rbd-dl.c - librados and librbd loaded on the first call of one of their
 * functions (why: rbd-dl.h). Each wrapper resolves the real function once,
 * from librados.so.2 or librbd.so.1 (the sonames of the headers built
 * against), and calls it; the compiler checks every wrapper's type against
 * the libraries' own declarations.
 */
#define RBD_DL_IMPLEMENTATION
#include <errno.h>

#include "lazy-lib.h"
#include "rbd-dl.h"

#define RBD_DL_CHECK_STATUS(ret, name, params, args) \
    _Static_assert(__builtin_types_compatible_p(__typeof__(&name), \
                                                ret (*) params), \
                   "rbd-dl.h declares " #name " unlike Ceph's header");
#define RBD_DL_CHECK_VOID(name, params, args) \
    RBD_DL_CHECK_STATUS(void, name, params, args)
RBD_DL_STATUS_FUNCTIONS(RBD_DL_CHECK_STATUS)
RBD_DL_VOID_FUNCTIONS(RBD_DL_CHECK_VOID)

#define RBD_DL_INDEX_STATUS(ret, name, params, args) RBD_DL_##name,
#define RBD_DL_INDEX_VOID(name, params, args) RBD_DL_##name,
enum {
    RBD_DL_STATUS_FUNCTIONS(RBD_DL_INDEX_STATUS)
    RBD_DL_VOID_FUNCTIONS(RBD_DL_INDEX_VOID)
    RBD_DL_COUNT
};

#define RBD_DL_NAME_STATUS(ret, name, params, args) #name,
#define RBD_DL_NAME_VOID(name, params, args) #name,
static const char *const symbol_names[RBD_DL_COUNT] = {
    RBD_DL_STATUS_FUNCTIONS(RBD_DL_NAME_STATUS)
    RBD_DL_VOID_FUNCTIONS(RBD_DL_NAME_VOID)
};

static const char *const sonames[] = { "librados.so.2", "librbd.so.1", NULL };
static void *symbols[RBD_DL_COUNT];
static struct vmc_lazy_lib ceph = {
    .sonames = sonames, .names = symbol_names, .count = RBD_DL_COUNT,
    .symbols = symbols,
};

/* The resolved function @i, or NULL when the libraries did not load. */
static void *
symbol(int i)
{
    return vmc_lazy_symbol(&ceph, (size_t)i);
}

const char *
rbd_dl_error(void)
{
    return vmc_lazy_error(&ceph);
}

#define RBD_DL_DEFINE_STATUS(ret, name, params, args) \
    ret rbd_dl_##name params \
    { \
        ret (*fn) params = (ret (*) params)symbol(RBD_DL_##name); \
        return fn ? fn args : -ELIBACC; \
    }
#define RBD_DL_DEFINE_VOID(name, params, args) \
    void rbd_dl_##name params \
    { \
        void (*fn) params = (void (*) params)symbol(RBD_DL_##name); \
        if (fn) { \
            fn args; \
        } \
    }
RBD_DL_STATUS_FUNCTIONS(RBD_DL_DEFINE_STATUS)
RBD_DL_VOID_FUNCTIONS(RBD_DL_DEFINE_VOID)
