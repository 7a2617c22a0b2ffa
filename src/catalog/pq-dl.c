/*
 * pq-dl.c - libpq.so.5 loaded on the first call of one of its functions
 * (why: pq-dl.h). The compiler checks every wrapper's type against
 * libpq's own declarations.
 */
#define PQ_DL_IMPLEMENTATION
#include "pq-dl.h"

#include "lazy-lib.h"

VMC_LAZY_MODULE(PQ_DL_FUNCTIONS, PQ_DL_VOID_FUNCTIONS, libpq, "libpq.so.5")

const char *
pq_dl_error(void)
{
    return vmc_lazy_error(&libpq);
}

#define PQ_DL_DEFINE(ret, name, params, args, fail) \
    VMC_LAZY_DEFINE(libpq, ret, pq_dl_##name, name, params, args, fail)
#define PQ_DL_DEFINE_VOID(name, params, args) \
    VMC_LAZY_DEFINE_VOID(libpq, pq_dl_##name, name, params, args)
PQ_DL_FUNCTIONS(PQ_DL_DEFINE)
PQ_DL_VOID_FUNCTIONS(PQ_DL_DEFINE_VOID)
