/*
 * lazy-lib.c - load an optional library at its first use (lazy-lib.h):
 * dlopen each soname, resolve every listed function once, under one lock.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "lazy-lib.h"

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

static void
load(struct vmc_lazy_lib *lib)
{
    void *handles[4] = { 0 };
    size_t i, l, n = 0;

    for (n = 0; n < 4 && lib->sonames[n]; n++) {
        handles[n] = dlopen(lib->sonames[n], RTLD_NOW | RTLD_LOCAL);
        if (!handles[n]) {
            snprintf(lib->error, sizeof(lib->error), "%s", dlerror());
            return;
        }
    }
    for (i = 0; i < lib->count; i++) {
        for (l = 0; l < n && !lib->symbols[i]; l++) {
            lib->symbols[i] = dlsym(handles[l], lib->names[i]);
        }
        if (!lib->symbols[i]) {
            snprintf(lib->error, sizeof(lib->error), "%s%s has no %s",
                     lib->sonames[0], n > 1 ? " or the libraries after it"
                     : "", lib->names[i]);
            return;
        }
    }
}

static void
ensure_loaded(struct vmc_lazy_lib *lib)
{
    if (__atomic_load_n(&lib->tried, __ATOMIC_ACQUIRE)) {
        return;
    }
    pthread_mutex_lock(&load_lock);
    if (!lib->tried) {
        load(lib);
        __atomic_store_n(&lib->tried, 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&load_lock);
}

void *
vmc_lazy_symbol(struct vmc_lazy_lib *lib, size_t i)
{
    ensure_loaded(lib);
    return lib->error[0] || i >= lib->count ? NULL : lib->symbols[i];
}

const char *
vmc_lazy_error(struct vmc_lazy_lib *lib)
{
    ensure_loaded(lib);
    return lib->error[0] ? lib->error : NULL;
}
