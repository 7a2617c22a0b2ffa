/*
 * tls-dl.c - libgnutls.so.30 loaded on the first call of one of its
 * functions (why: tls-dl.h); every wrapper's type is checked against
 * GnuTLS's own declarations.
 */
#define TLS_DL_IMPLEMENTATION
#include "tls-dl.h"

#include "lazy-lib.h"

VMC_LAZY_MODULE(TLS_DL_FUNCTIONS, TLS_DL_VOID_FUNCTIONS, gnutls_lib,
                "libgnutls.so.30")

const char *
tls_dl_error(void)
{
    return vmc_lazy_error(&gnutls_lib);
}

#define TLS_DL_DEFINE(ret, name, params, args, fail) \
    VMC_LAZY_DEFINE(gnutls_lib, ret, tls_dl_##name, name, params, args, fail)
#define TLS_DL_DEFINE_VOID(name, params, args) \
    VMC_LAZY_DEFINE_VOID(gnutls_lib, tls_dl_##name, name, params, args)
TLS_DL_FUNCTIONS(TLS_DL_DEFINE)
TLS_DL_VOID_FUNCTIONS(TLS_DL_DEFINE_VOID)
