/*
 * xml-dl.h - the libxml2 functions of OVF descriptors (ovf.c,
 * ovf-write.c), bound at first use (xml-dl.c, on src/util/lazy-lib.c)
 * instead of at program start: only OVF/OVA appliances need libxml2, and
 * it brought ICU into every command.
 * Include it instead of the library's headers; a function newly used
 * goes in the lists below, or the link fails.
 */
#ifndef VMC_XML_DL_H
#define VMC_XML_DL_H

#include <stdarg.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>

/* NULL once the library is loaded; else why it could not be (loads it). */
const char *xml_dl_error(void);

/* F(return type, name, (parameters), (arguments), result without it) */
#define XML_DL_FUNCTIONS(F) \
    F(const xmlChar *, xmlBufferContent, (const xmlBuffer *a0), (a0), NULL) \
    F(xmlBufferPtr, xmlBufferCreate, (void), (), NULL) \
    F(int, xmlBufferLength, (const xmlBuffer *a0), (a0), -1) \
    F(xmlNodePtr, xmlDocGetRootElement, (const xmlDoc *a0), (a0), NULL) \
    F(xmlErrorPtr, xmlGetLastError, (void), (), NULL) \
    F(xmlChar *, xmlNodeGetContent, (const xmlNode *a0), (a0), NULL) \
    F(xmlChar *, xmlNodeListGetString, (xmlDocPtr a0, const xmlNode *a1, int a2), \
      (a0, a1, a2), NULL) \
    F(xmlDocPtr, xmlReadMemory, (const char *a0, int a1, const char *a2, \
      const char *a3, int a4), (a0, a1, a2, a3, a4), NULL) \
    F(xmlTextWriterPtr, xmlNewTextWriterMemory, (xmlBufferPtr a0, int a1), (a0, a1), \
      NULL) \
    F(int, xmlTextWriterEndDocument, (xmlTextWriterPtr a0), (a0), -1) \
    F(int, xmlTextWriterEndElement, (xmlTextWriterPtr a0), (a0), -1) \
    F(int, xmlTextWriterSetIndent, (xmlTextWriterPtr a0, int a1), (a0, a1), -1) \
    F(int, xmlTextWriterStartDocument, (xmlTextWriterPtr a0, const char *a1, \
      const char *a2, const char *a3), (a0, a1, a2, a3), -1) \
    F(int, xmlTextWriterStartElement, (xmlTextWriterPtr a0, const xmlChar *a1), (a0, \
      a1), -1) \
    F(int, xmlTextWriterStartElementNS, (xmlTextWriterPtr a0, const xmlChar *a1, \
      const xmlChar *a2, const xmlChar *a3), (a0, a1, a2, a3), -1) \
    F(int, xmlTextWriterWriteAttribute, (xmlTextWriterPtr a0, const xmlChar *a1, \
      const xmlChar *a2), (a0, a1, a2), -1) \
    F(int, xmlTextWriterWriteElement, (xmlTextWriterPtr a0, const xmlChar *a1, \
      const xmlChar *a2), (a0, a1, a2), -1) \
    F(int, xmlTextWriterWriteVFormatAttribute, (xmlTextWriterPtr a0, \
      const xmlChar *a1, const char *a2, va_list a3), (a0, a1, a2, a3), -1) \
    F(int, xmlTextWriterWriteVFormatElement, (xmlTextWriterPtr a0, const xmlChar *a1, \
      const char *a2, va_list a3), (a0, a1, a2, a3), -1)

/* F(name, (parameters), (arguments)): no result; nothing without it */
#define XML_DL_VOID_FUNCTIONS(F) \
    F(xmlBufferFree, (xmlBufferPtr a0), (a0)) \
    F(xmlFreeDoc, (xmlDocPtr a0), (a0)) \
    F(xmlFreeTextWriter, (xmlTextWriterPtr a0), (a0))

#define XML_DL_DECLARE(ret, name, params, args, fail) ret xml_dl_##name params;
#define XML_DL_DECLARE_VOID(name, params, args) void xml_dl_##name params;
XML_DL_FUNCTIONS(XML_DL_DECLARE)
XML_DL_VOID_FUNCTIONS(XML_DL_DECLARE_VOID)

/* The printf-like writers (the wrappers call the va_list forms) and
 * xmlFree, which libxml2 exports as a variable holding the function. */
int xml_dl_xmlTextWriterWriteFormatAttribute(xmlTextWriterPtr writer,
                                             const xmlChar *name,
                                             const char *format, ...)
    __attribute__((format(printf, 3, 4)));
int xml_dl_xmlTextWriterWriteFormatElement(xmlTextWriterPtr writer,
                                           const xmlChar *name,
                                           const char *format, ...)
    __attribute__((format(printf, 3, 4)));
void xml_dl_xmlFree(void *mem);

#ifndef XML_DL_IMPLEMENTATION
#define xmlBufferContent xml_dl_xmlBufferContent
#define xmlBufferCreate xml_dl_xmlBufferCreate
#define xmlBufferFree xml_dl_xmlBufferFree
#define xmlBufferLength xml_dl_xmlBufferLength
#define xmlDocGetRootElement xml_dl_xmlDocGetRootElement
#define xmlFreeDoc xml_dl_xmlFreeDoc
#define xmlFreeTextWriter xml_dl_xmlFreeTextWriter
#define xmlGetLastError xml_dl_xmlGetLastError
#define xmlNewTextWriterMemory xml_dl_xmlNewTextWriterMemory
#define xmlNodeGetContent xml_dl_xmlNodeGetContent
#define xmlNodeListGetString xml_dl_xmlNodeListGetString
#define xmlReadMemory xml_dl_xmlReadMemory
#define xmlTextWriterEndDocument xml_dl_xmlTextWriterEndDocument
#define xmlTextWriterEndElement xml_dl_xmlTextWriterEndElement
#define xmlTextWriterSetIndent xml_dl_xmlTextWriterSetIndent
#define xmlTextWriterStartDocument xml_dl_xmlTextWriterStartDocument
#define xmlTextWriterStartElement xml_dl_xmlTextWriterStartElement
#define xmlTextWriterStartElementNS xml_dl_xmlTextWriterStartElementNS
#define xmlTextWriterWriteAttribute xml_dl_xmlTextWriterWriteAttribute
#define xmlTextWriterWriteElement xml_dl_xmlTextWriterWriteElement
#define xmlTextWriterWriteFormatAttribute xml_dl_xmlTextWriterWriteFormatAttribute
#define xmlTextWriterWriteFormatElement xml_dl_xmlTextWriterWriteFormatElement
#define xmlFree xml_dl_xmlFree
#endif

#endif
