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

/*
 * A module's wrappers from its two lists, F(ret, name, (params), (args),
 * result without the library) and, for functions without a result,
 * F(name, (params), (args)) (nothing is done without the library):
 *
 *   #define XX_DL_FUNCTIONS(F) F(int, foo_open, (const char *a0), (a0), -1) ...
 *   #define XX_DL_VOID_FUNCTIONS(F) F(foo_close, (struct foo *a0), (a0)) ...
 *   VMC_LAZY_MODULE(XX_DL_FUNCTIONS, XX_DL_VOID_FUNCTIONS, foo_lib, "libfoo.so.1")
 *   #define XX_DL_DEFINE(ret, name, params, args, fail) \
 *       VMC_LAZY_DEFINE(foo_lib, ret, xx_dl_##name, name, params, args, fail)
 *   #define XX_DL_DEFINE_VOID(name, params, args) \
 *       VMC_LAZY_DEFINE_VOID(foo_lib, xx_dl_##name, name, params, args)
 *   XX_DL_FUNCTIONS(XX_DL_DEFINE)
 *   XX_DL_VOID_FUNCTIONS(XX_DL_DEFINE_VOID)
 *
 * VMC_LAZY_MODULE checks each entry's type against the library's header
 * (the file includes the header without the renaming defines): an entry
 * unlike it is an incompatible pointer initialisation, an error with
 * -Werror (a const or pure attribute of the library's declaration does
 * not count as a difference).
 */
#define VMC_LAZY_CHECK(ret, name, params, args, fail) \
    static ret (*const vmc_lazy_check_##name) params \
        __attribute__((unused)) = name;
#define VMC_LAZY_CHECK_VOID(name, params, args) \
    VMC_LAZY_CHECK(void, name, params, , )
#define VMC_LAZY_INDEX(ret, name, params, args, fail) VMC_LAZY_I_##name,
#define VMC_LAZY_INDEX_VOID(name, params, args) VMC_LAZY_I_##name,
#define VMC_LAZY_NAME(ret, name, params, args, fail) #name,
#define VMC_LAZY_NAME_VOID(name, params, args) #name,

#define VMC_LAZY_MODULE(FUNCS, VOIDS, lib, ...) \
    FUNCS(VMC_LAZY_CHECK) \
    VOIDS(VMC_LAZY_CHECK_VOID) \
    enum { FUNCS(VMC_LAZY_INDEX) VOIDS(VMC_LAZY_INDEX_VOID) lib##_count }; \
    static const char *const lib##_names[] = { \
        FUNCS(VMC_LAZY_NAME) VOIDS(VMC_LAZY_NAME_VOID) \
    }; \
    static const char *const lib##_sonames[] = { __VA_ARGS__, NULL }; \
    static void *lib##_symbols[lib##_count]; \
    static struct vmc_lazy_lib lib = { \
        .sonames = lib##_sonames, .names = lib##_names, \
        .count = lib##_count, .symbols = lib##_symbols, \
    };

#define VMC_LAZY_DEFINE(lib, ret, wrapper, name, params, args, fail) \
    ret wrapper params \
    { \
        ret (*fn) params = \
            (ret (*) params)vmc_lazy_symbol(&lib, VMC_LAZY_I_##name); \
        return fn ? fn args : fail; \
    }
#define VMC_LAZY_DEFINE_VOID(lib, wrapper, name, params, args) \
    void wrapper params \
    { \
        void (*fn) params = \
            (void (*) params)vmc_lazy_symbol(&lib, VMC_LAZY_I_##name); \
        if (fn) { \
            fn args; \
        } \
    }

#endif
