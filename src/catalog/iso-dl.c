/*
 * iso-dl.c - libisofs.so.6 loaded on the first call of one of its functions
 * (why: iso-dl.h); every wrapper's type is checked against the library's
 * own declarations.
 */
#define ISO_DL_IMPLEMENTATION
#include "iso-dl.h"

#include "lazy-lib.h"

VMC_LAZY_MODULE(ISO_DL_FUNCTIONS, ISO_DL_VOID_FUNCTIONS, libisofs, "libisofs.so.6")

const char *
iso_dl_error(void)
{
    return vmc_lazy_error(&libisofs);
}

#define ISO_DL_DEFINE(ret, name, params, args, fail) \
    VMC_LAZY_DEFINE(libisofs, ret, iso_dl_##name, name, params, args, fail)
#define ISO_DL_DEFINE_VOID(name, params, args) \
    VMC_LAZY_DEFINE_VOID(libisofs, iso_dl_##name, name, params, args)
ISO_DL_FUNCTIONS(ISO_DL_DEFINE)
ISO_DL_VOID_FUNCTIONS(ISO_DL_DEFINE_VOID)
