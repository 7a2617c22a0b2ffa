/*
 * xml-dl.c - libxml2.so.2 loaded on the first call of one of its functions
 * (why: xml-dl.h); every wrapper's type is checked against the library's
 * own declarations.
 */
#define XML_DL_IMPLEMENTATION
#include <stdarg.h>

#include "xml-dl.h"

#include "lazy-lib.h"

VMC_LAZY_MODULE(XML_DL_FUNCTIONS, XML_DL_VOID_FUNCTIONS, libxml, "libxml2.so.2")

const char *
xml_dl_error(void)
{
    return vmc_lazy_error(&libxml);
}

#define XML_DL_DEFINE(ret, name, params, args, fail) \
    VMC_LAZY_DEFINE(libxml, ret, xml_dl_##name, name, params, args, fail)
#define XML_DL_DEFINE_VOID(name, params, args) \
    VMC_LAZY_DEFINE_VOID(libxml, xml_dl_##name, name, params, args)
XML_DL_FUNCTIONS(XML_DL_DEFINE)
XML_DL_VOID_FUNCTIONS(XML_DL_DEFINE_VOID)

int
xml_dl_xmlTextWriterWriteFormatAttribute(xmlTextWriterPtr writer,
                                         const xmlChar *name,
                                         const char *format, ...)
{
    va_list ap;
    int r;

    va_start(ap, format);
    r = xml_dl_xmlTextWriterWriteVFormatAttribute(writer, name, format, ap);
    va_end(ap);
    return r;
}

int
xml_dl_xmlTextWriterWriteFormatElement(xmlTextWriterPtr writer,
                                       const xmlChar *name,
                                       const char *format, ...)
{
    va_list ap;
    int r;

    va_start(ap, format);
    r = xml_dl_xmlTextWriterWriteVFormatElement(writer, name, format, ap);
    va_end(ap);
    return r;
}

/* xmlFree is a variable of the library (its free function): looked up
 * in the same library, apart from the functions. */
static const char *const free_names[] = { "xmlFree" };
static void *free_symbols[1];
static struct vmc_lazy_lib libxml_free = {
    .sonames = libxml_sonames, .names = free_names, .count = 1,
    .symbols = free_symbols,
};

void
xml_dl_xmlFree(void *mem)
{
    xmlFreeFunc *fn = vmc_lazy_symbol(&libxml_free, 0);

    if (fn && *fn) {
        (*fn)(mem);
    }
}
