/*
 * virt-dl.c - libvirt.so.0 loaded on the first call of one of its
 * functions (why: virt-dl.h). Each wrapper resolves the real function
 * once and calls it; the compiler checks every wrapper's type against
 * libvirt's own declarations. Without libvirt, virGetLastErrorMessage()
 * says why it could not be loaded, so every caller's message does.
 */
#define VIRT_DL_IMPLEMENTATION
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

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

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static void *symbols[VIRT_DL_COUNT];
static char load_error[512];    /* empty once every symbol is resolved */

static void
load_libvirt(void)
{
    void *handle = dlopen("libvirt.so.0", RTLD_NOW | RTLD_LOCAL);
    size_t i;

    if (!handle) {
        snprintf(load_error, sizeof(load_error), "libvirt is not "
                 "installed or cannot be loaded (%s)", dlerror());
        return;
    }
    for (i = 0; i < VIRT_DL_COUNT && !load_error[0]; i++) {
        symbols[i] = dlsym(handle, symbol_names[i]);
        if (!symbols[i]) {
            snprintf(load_error, sizeof(load_error), "libvirt.so.0 has "
                     "no %s", symbol_names[i]);
        }
    }
}

/* The resolved function @i, or NULL when libvirt did not load. */
static void *
symbol(int i)
{
    pthread_once(&load_once, load_libvirt);
    return load_error[0] ? NULL : symbols[i];
}

const char *
virt_dl_error(void)
{
    pthread_once(&load_once, load_libvirt);
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
