/*
 * archive-dl.c - libarchive.so.13 loaded on the first call of one of its functions
 * (why: archive-dl.h); every wrapper's type is checked against the library's
 * own declarations.
 */
#define ARCHIVE_DL_IMPLEMENTATION
#include "archive-dl.h"

#include "lazy-lib.h"

VMC_LAZY_MODULE(ARCHIVE_DL_FUNCTIONS, ARCHIVE_DL_VOID_FUNCTIONS, libarchive, "libarchive.so.13")

const char *
archive_dl_error(void)
{
    return vmc_lazy_error(&libarchive);
}

#define ARCHIVE_DL_DEFINE(ret, name, params, args, fail) \
    VMC_LAZY_DEFINE(libarchive, ret, archive_dl_##name, name, params, args, fail)
#define ARCHIVE_DL_DEFINE_VOID(name, params, args) \
    VMC_LAZY_DEFINE_VOID(libarchive, archive_dl_##name, name, params, args)
ARCHIVE_DL_FUNCTIONS(ARCHIVE_DL_DEFINE)
ARCHIVE_DL_VOID_FUNCTIONS(ARCHIVE_DL_DEFINE_VOID)
