/*
 * virt-dl.h - the libvirt functions virt-domain.c calls, bound at first
 * use (virt-dl.c) instead of at program start: linked into vm-clone,
 * libvirt and its GLib cost every command start-up time whether it
 * defines a domain or not (more so under AddressSanitizer). Include it
 * instead of libvirt's headers; a function newly used goes in the list
 * below, or the link fails.
 */
#ifndef VMC_VIRT_DL_H
#define VMC_VIRT_DL_H

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

/* The message of virt_dl_error() (see below), for the failing wrappers. */
const char *virt_dl_error(void);

/* F(return type, name, (parameters), (arguments), result without libvirt) */
#define VIRT_DL_FUNCTIONS(F) \
    F(const char *, virGetLastErrorMessage, (void), (), virt_dl_error()) \
    F(virConnectPtr, virConnectOpen, (const char *name), (name), NULL) \
    F(int, virConnectClose, (virConnectPtr conn), (conn), -1) \
    F(char *, virConnectGetURI, (virConnectPtr conn), (conn), NULL) \
    F(int, virConnectListAllDomains, (virConnectPtr conn, virDomainPtr **domains, \
      unsigned int flags), (conn, domains, flags), -1) \
    F(virDomainPtr, virDomainDefineXML, (virConnectPtr conn, const char *xml), \
      (conn, xml), NULL) \
    F(int, virDomainDestroy, (virDomainPtr domain), (domain), -1) \
    F(int, virDomainFree, (virDomainPtr domain), (domain), -1) \
    F(const char *, virDomainGetName, (virDomainPtr domain), (domain), NULL) \
    F(int, virDomainGetUUIDString, (virDomainPtr domain, char *buf), (domain, buf), -1) \
    F(char *, virDomainGetXMLDesc, (virDomainPtr domain, unsigned int flags), \
      (domain, flags), NULL) \
    F(int, virDomainIsActive, (virDomainPtr dom), (dom), -1) \
    F(virDomainPtr, virDomainLookupByUUIDString, (virConnectPtr conn, const char *uuid), \
      (conn, uuid), NULL) \
    F(int, virDomainUndefine, (virDomainPtr domain), (domain), -1) \
    F(int, virDomainUndefineFlags, (virDomainPtr domain, unsigned int flags), \
      (domain, flags), -1)

#define VIRT_DL_DECLARE(ret, name, params, args, fail) ret virt_dl_##name params;
VIRT_DL_FUNCTIONS(VIRT_DL_DECLARE)
/* virSetErrorFunc, the one without a result: does nothing without libvirt */
void virt_dl_virSetErrorFunc(void *userData, virErrorFunc handler);

#ifndef VIRT_DL_IMPLEMENTATION
#define virGetLastErrorMessage virt_dl_virGetLastErrorMessage
#define virConnectOpen virt_dl_virConnectOpen
#define virConnectClose virt_dl_virConnectClose
#define virConnectGetURI virt_dl_virConnectGetURI
#define virConnectListAllDomains virt_dl_virConnectListAllDomains
#define virDomainDefineXML virt_dl_virDomainDefineXML
#define virDomainDestroy virt_dl_virDomainDestroy
#define virDomainFree virt_dl_virDomainFree
#define virDomainGetName virt_dl_virDomainGetName
#define virDomainGetUUIDString virt_dl_virDomainGetUUIDString
#define virDomainGetXMLDesc virt_dl_virDomainGetXMLDesc
#define virDomainIsActive virt_dl_virDomainIsActive
#define virDomainLookupByUUIDString virt_dl_virDomainLookupByUUIDString
#define virDomainUndefine virt_dl_virDomainUndefine
#define virDomainUndefineFlags virt_dl_virDomainUndefineFlags
#define virSetErrorFunc virt_dl_virSetErrorFunc
#endif

#endif
