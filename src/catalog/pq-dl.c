/*
 * pq-dl.c - libpq.so.5 loaded on the first call of one of its functions
 * (why: pq-dl.h). The compiler checks every wrapper's type against
 * libpq's own declarations.
 */
#define PQ_DL_IMPLEMENTATION
#include "pq-dl.h"

#include "lazy-lib.h"

#define PQ_DL_CHECK(ret, name, params, args, fail) \
    _Static_assert(__builtin_types_compatible_p(__typeof__(&name), \
                                                ret (*) params), \
                   "pq-dl.h declares " #name " unlike libpq's header");
#define PQ_DL_CHECK_VOID(name, params, args) PQ_DL_CHECK(void, name, params, , )
PQ_DL_FUNCTIONS(PQ_DL_CHECK)
PQ_DL_VOID_FUNCTIONS(PQ_DL_CHECK_VOID)

#define PQ_DL_INDEX(ret, name, params, args, fail) PQ_DL_##name,
#define PQ_DL_INDEX_VOID(name, params, args) PQ_DL_##name,
enum {
    PQ_DL_FUNCTIONS(PQ_DL_INDEX)
    PQ_DL_VOID_FUNCTIONS(PQ_DL_INDEX_VOID)
    PQ_DL_COUNT
};

#define PQ_DL_NAME(ret, name, params, args, fail) #name,
#define PQ_DL_NAME_VOID(name, params, args) #name,
static const char *const names[PQ_DL_COUNT] = {
    PQ_DL_FUNCTIONS(PQ_DL_NAME)
    PQ_DL_VOID_FUNCTIONS(PQ_DL_NAME_VOID)
};
static const char *const sonames[] = { "libpq.so.5", NULL };
static void *symbols[PQ_DL_COUNT];
static struct vmc_lazy_lib libpq = {
    .sonames = sonames, .names = names, .count = PQ_DL_COUNT,
    .symbols = symbols,
};

const char *
pq_dl_error(void)
{
    return vmc_lazy_error(&libpq);
}

#define PQ_DL_DEFINE(ret, name, params, args, fail) \
    ret pq_dl_##name params \
    { \
        ret (*fn) params = (ret (*) params)vmc_lazy_symbol(&libpq, PQ_DL_##name); \
        return fn ? fn args : fail; \
    }
#define PQ_DL_DEFINE_VOID(name, params, args) \
    void pq_dl_##name params \
    { \
        void (*fn) params = (void (*) params)vmc_lazy_symbol(&libpq, PQ_DL_##name); \
        if (fn) { \
            fn args; \
        } \
    }
PQ_DL_FUNCTIONS(PQ_DL_DEFINE)
PQ_DL_VOID_FUNCTIONS(PQ_DL_DEFINE_VOID)
