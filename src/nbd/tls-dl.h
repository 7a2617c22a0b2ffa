/*
 * tls-dl.h - the GnuTLS functions tls.c calls, bound at first use
 * (tls-dl.c, on src/util/lazy-lib.c) instead of at program start: only
 * `serve` with TLS needs GnuTLS, and loading it cost every vm-clone
 * command about 3 ms here. Include it instead of gnutls/gnutls.h; a
 * function newly used goes in the lists below, or the link fails.
 */
#ifndef VMC_TLS_DL_H
#define VMC_TLS_DL_H

#include <gnutls/gnutls.h>

/* NULL once GnuTLS is loaded; else why it could not be (loads it). */
const char *tls_dl_error(void);

/* F(return type, name, (parameters), (arguments), result without GnuTLS) */
#define TLS_DL_FUNCTIONS(F) \
    F(int, gnutls_bye, (gnutls_session_t a0, gnutls_close_request_t a1), (a0, a1), \
      GNUTLS_E_INTERNAL_ERROR) \
    F(int, gnutls_certificate_allocate_credentials, \
      (gnutls_certificate_credentials_t *a0), (a0), GNUTLS_E_INTERNAL_ERROR) \
    F(int, gnutls_certificate_set_known_dh_params, \
      (gnutls_certificate_credentials_t a0, gnutls_sec_param_t a1), (a0, a1), \
      GNUTLS_E_INTERNAL_ERROR) \
    F(int, gnutls_certificate_set_x509_key_file, \
      (gnutls_certificate_credentials_t a0, const char *a1, const char *a2, \
      gnutls_x509_crt_fmt_t a3), (a0, a1, a2, a3), GNUTLS_E_INTERNAL_ERROR) \
    F(int, gnutls_certificate_set_x509_trust_file, \
      (gnutls_certificate_credentials_t a0, const char *a1, \
      gnutls_x509_crt_fmt_t a2), (a0, a1, a2), GNUTLS_E_INTERNAL_ERROR) \
    F(const char *, gnutls_check_version, (const char *a0), (a0), NULL) \
    F(gnutls_cipher_algorithm_t, gnutls_cipher_get, (gnutls_session_t a0), (a0), \
      GNUTLS_CIPHER_UNKNOWN) \
    F(const char *, gnutls_cipher_get_name, (gnutls_cipher_algorithm_t a0), (a0), NULL) \
    F(int, gnutls_credentials_set, (gnutls_session_t a0, \
      gnutls_credentials_type_t a1, void *a2), (a0, a1, a2), GNUTLS_E_INTERNAL_ERROR) \
    F(int, gnutls_error_is_fatal, (int a0), (a0), 1) \
    F(int, gnutls_handshake, (gnutls_session_t a0), (a0), GNUTLS_E_INTERNAL_ERROR) \
    F(int, gnutls_init, (gnutls_session_t *a0, unsigned int a1), (a0, a1), \
      GNUTLS_E_INTERNAL_ERROR) \
    F(int, gnutls_priority_set_direct, (gnutls_session_t a0, const char *a1, \
      const char **a2), (a0, a1, a2), GNUTLS_E_INTERNAL_ERROR) \
    F(const char *, gnutls_protocol_get_name, (gnutls_protocol_t a0), (a0), NULL) \
    F(gnutls_protocol_t, gnutls_protocol_get_version, (gnutls_session_t a0), (a0), \
      GNUTLS_VERSION_UNKNOWN) \
    F(int, gnutls_psk_allocate_server_credentials, \
      (gnutls_psk_server_credentials_t *a0), (a0), GNUTLS_E_INTERNAL_ERROR) \
    F(const char *, gnutls_psk_server_get_username, (gnutls_session_t a0), (a0), NULL) \
    F(int, gnutls_psk_set_server_credentials_file, \
      (gnutls_psk_server_credentials_t a0, const char *a1), (a0, a1), \
      GNUTLS_E_INTERNAL_ERROR) \
    F(int, gnutls_psk_set_server_known_dh_params, \
      (gnutls_psk_server_credentials_t a0, gnutls_sec_param_t a1), (a0, a1), \
      GNUTLS_E_INTERNAL_ERROR) \
    F(size_t, gnutls_record_check_pending, (gnutls_session_t a0), (a0), 0) \
    F(ssize_t, gnutls_record_recv, (gnutls_session_t a0, void *a1, size_t a2), (a0, \
      a1, a2), GNUTLS_E_INTERNAL_ERROR) \
    F(ssize_t, gnutls_record_send, (gnutls_session_t a0, const void *a1, size_t a2), \
      (a0, a1, a2), GNUTLS_E_INTERNAL_ERROR) \
    F(int, gnutls_record_uncork, (gnutls_session_t a0, unsigned int a1), (a0, a1), \
      GNUTLS_E_INTERNAL_ERROR) \
    F(const char *, gnutls_strerror, (int a0), (a0), "GnuTLS cannot be loaded")

/* F(name, (parameters), (arguments)): no result; nothing without GnuTLS */
#define TLS_DL_VOID_FUNCTIONS(F) \
    F(gnutls_certificate_free_credentials, (gnutls_certificate_credentials_t a0), (a0)) \
    F(gnutls_certificate_server_set_request, (gnutls_session_t a0, \
      gnutls_certificate_request_t a1), (a0, a1)) \
    F(gnutls_deinit, (gnutls_session_t a0), (a0)) \
    F(gnutls_handshake_set_timeout, (gnutls_session_t a0, unsigned int a1), (a0, a1)) \
    F(gnutls_psk_free_server_credentials, (gnutls_psk_server_credentials_t a0), (a0)) \
    F(gnutls_record_cork, (gnutls_session_t a0), (a0)) \
    F(gnutls_session_set_verify_cert, (gnutls_session_t a0, const char *a1, \
      unsigned int a2), (a0, a1, a2)) \
    F(gnutls_transport_set_errno, (gnutls_session_t a0, int a1), (a0, a1)) \
    F(gnutls_transport_set_ptr, (gnutls_session_t a0, gnutls_transport_ptr_t a1), \
      (a0, a1)) \
    F(gnutls_transport_set_pull_function, (gnutls_session_t a0, gnutls_pull_func a1), \
      (a0, a1)) \
    F(gnutls_transport_set_pull_timeout_function, (gnutls_session_t a0, \
      gnutls_pull_timeout_func a1), (a0, a1)) \
    F(gnutls_transport_set_push_function, (gnutls_session_t a0, gnutls_push_func a1), \
      (a0, a1))

#define TLS_DL_DECLARE(ret, name, params, args, fail) ret tls_dl_##name params;
#define TLS_DL_DECLARE_VOID(name, params, args) void tls_dl_##name params;
TLS_DL_FUNCTIONS(TLS_DL_DECLARE)
TLS_DL_VOID_FUNCTIONS(TLS_DL_DECLARE_VOID)

#ifndef TLS_DL_IMPLEMENTATION
#define gnutls_bye tls_dl_gnutls_bye
#define gnutls_certificate_allocate_credentials tls_dl_gnutls_certificate_allocate_credentials
#define gnutls_certificate_free_credentials tls_dl_gnutls_certificate_free_credentials
#define gnutls_certificate_server_set_request tls_dl_gnutls_certificate_server_set_request
#define gnutls_certificate_set_known_dh_params tls_dl_gnutls_certificate_set_known_dh_params
#define gnutls_certificate_set_x509_key_file tls_dl_gnutls_certificate_set_x509_key_file
#define gnutls_certificate_set_x509_trust_file tls_dl_gnutls_certificate_set_x509_trust_file
#define gnutls_check_version tls_dl_gnutls_check_version
#define gnutls_cipher_get tls_dl_gnutls_cipher_get
#define gnutls_cipher_get_name tls_dl_gnutls_cipher_get_name
#define gnutls_credentials_set tls_dl_gnutls_credentials_set
#define gnutls_deinit tls_dl_gnutls_deinit
#define gnutls_error_is_fatal tls_dl_gnutls_error_is_fatal
#define gnutls_handshake tls_dl_gnutls_handshake
#define gnutls_handshake_set_timeout tls_dl_gnutls_handshake_set_timeout
#define gnutls_init tls_dl_gnutls_init
#define gnutls_priority_set_direct tls_dl_gnutls_priority_set_direct
#define gnutls_protocol_get_name tls_dl_gnutls_protocol_get_name
#define gnutls_protocol_get_version tls_dl_gnutls_protocol_get_version
#define gnutls_psk_allocate_server_credentials tls_dl_gnutls_psk_allocate_server_credentials
#define gnutls_psk_free_server_credentials tls_dl_gnutls_psk_free_server_credentials
#define gnutls_psk_server_get_username tls_dl_gnutls_psk_server_get_username
#define gnutls_psk_set_server_credentials_file tls_dl_gnutls_psk_set_server_credentials_file
#define gnutls_psk_set_server_known_dh_params tls_dl_gnutls_psk_set_server_known_dh_params
#define gnutls_record_check_pending tls_dl_gnutls_record_check_pending
#define gnutls_record_cork tls_dl_gnutls_record_cork
#define gnutls_record_recv tls_dl_gnutls_record_recv
#define gnutls_record_send tls_dl_gnutls_record_send
#define gnutls_record_uncork tls_dl_gnutls_record_uncork
#define gnutls_session_set_verify_cert tls_dl_gnutls_session_set_verify_cert
#define gnutls_strerror tls_dl_gnutls_strerror
#define gnutls_transport_set_errno tls_dl_gnutls_transport_set_errno
#define gnutls_transport_set_ptr tls_dl_gnutls_transport_set_ptr
#define gnutls_transport_set_pull_function tls_dl_gnutls_transport_set_pull_function
#define gnutls_transport_set_pull_timeout_function tls_dl_gnutls_transport_set_pull_timeout_function
#define gnutls_transport_set_push_function tls_dl_gnutls_transport_set_push_function
#endif

#endif
