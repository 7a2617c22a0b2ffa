/*
 * virt-dl.c - libvirt.so.0 loaded on the first call of one of its
 * functions (why: virt-dl.h). Each wrapper resolves the real function
 * once and calls it; the compiler checks every wrapper's type against
 * libvirt's own declarations. Without libvirt, virGetLastErrorMessage()
 * says why it could not be loaded, so every caller's message does.
 */
#define VIRT_DL_IMPLEMENTATION
#include <pthread.h>
#include <stdio.h>

#include "lazy-lib.h"
#include "virt-dl.h"

#define VIRT_DL_CHECK(ret, name, params, args, fail) \
    _Static_assert(__builtin_types_compatible_p(__typeof__(&name), \
                                                ret (*) params), \
                   "virt-dl.h declares " #name " unlike libvirt's header");
VIRT_DL_FUNCTIONS(VIRT_DL_CHECK)
VIRT_DL_CHECK(void, virSetErrorFunc, (void *userData, virErrorFunc handler), , )

#define VIRT_DL_INDEX(ret, name, params, args, fail) VIRT_DL_##name,
enum {
    VIRT_DL_FUNCTIONS(VIRT_DL_INDEX)
    VIRT_DL_virSetErrorFunc,
    VIRT_DL_COUNT
};

#define VIRT_DL_NAME(ret, name, params, args, fail) #name,
static const char *const symbol_names[VIRT_DL_COUNT] = {
    VIRT_DL_FUNCTIONS(VIRT_DL_NAME)
    "virSetErrorFunc",
};

static const char *const sonames[] = { "libvirt.so.0", NULL };
static void *symbols[VIRT_DL_COUNT];
static struct vmc_lazy_lib libvirt = {
    .sonames = sonames, .names = symbol_names, .count = VIRT_DL_COUNT,
    .symbols = symbols,
};
static char load_error[600];
static pthread_once_t error_once = PTHREAD_ONCE_INIT;

/* The resolved function @i, or NULL when libvirt did not load. */
static void *
symbol(int i)
{
    return vmc_lazy_symbol(&libvirt, (size_t)i);
}

static void
format_error(void)
{
    const char *why = vmc_lazy_error(&libvirt);

    if (why) {
        snprintf(load_error, sizeof(load_error), "libvirt is not installed "
                 "or cannot be loaded (%s)", why);
    }
}

const char *
virt_dl_error(void)
{
    pthread_once(&error_once, format_error);
    return load_error[0] ? load_error : NULL;
}

#define VIRT_DL_DEFINE(ret, name, params, args, fail) \
    ret virt_dl_##name params \
    { \
        ret (*fn) params = (ret (*) params)symbol(VIRT_DL_##name); \
        return fn ? fn args : fail; \
    }
VIRT_DL_FUNCTIONS(VIRT_DL_DEFINE)

void
virt_dl_virSetErrorFunc(void *userData, virErrorFunc handler)
{
    void (*fn)(void *, virErrorFunc) =
        (void (*)(void *, virErrorFunc))symbol(VIRT_DL_virSetErrorFunc);

    if (fn) {
        fn(userData, handler);
    }
}
