/*
 * protocol.h - NBD wire constants (NetworkBlockDevice/nbd doc/proto.md).
 *
 * Only what a fixed-newstyle server with structured replies needs; every
 * integer on the wire is big-endian. Layouts are written and parsed with
 * util.h's be*_load/store helpers, never by casting packed structs.
 */
#ifndef VMC_NBD_PROTOCOL_H
#define VMC_NBD_PROTOCOL_H

#include <stdint.h>

/* Greeting and option haggling (proto.md "Fixed newstyle negotiation") */
#define NBD_MAGIC               UINT64_C(0x4e42444d41474943) /* NBDMAGIC */
#define NBD_OPT_MAGIC           UINT64_C(0x49484156454F5054) /* IHAVEOPT */
#define NBD_REP_MAGIC           UINT64_C(0x0003e889045565a9)

#define NBD_FLAG_FIXED_NEWSTYLE     (1u << 0)
#define NBD_FLAG_NO_ZEROES          (1u << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE   (1u << 0)
#define NBD_FLAG_C_NO_ZEROES        (1u << 1)

#define NBD_OPT_EXPORT_NAME         1
#define NBD_OPT_ABORT               2
#define NBD_OPT_LIST                3
#define NBD_OPT_PEEK_EXPORT         4
#define NBD_OPT_STARTTLS            5
#define NBD_OPT_INFO                6
#define NBD_OPT_GO                  7
#define NBD_OPT_STRUCTURED_REPLY    8
#define NBD_OPT_LIST_META_CONTEXT   9
#define NBD_OPT_SET_META_CONTEXT    10
#define NBD_OPT_EXTENDED_HEADERS    11

#define NBD_REP_ACK                 1u
#define NBD_REP_SERVER              2u
#define NBD_REP_INFO                3u
#define NBD_REP_META_CONTEXT        4u
#define NBD_REP_ERR_UNSUP           0x80000001u
#define NBD_REP_ERR_POLICY          0x80000002u
#define NBD_REP_ERR_INVALID         0x80000003u
#define NBD_REP_ERR_PLATFORM        0x80000004u
#define NBD_REP_ERR_TLS_REQD        0x80000005u
#define NBD_REP_ERR_UNKNOWN         0x80000006u
#define NBD_REP_ERR_SHUTDOWN        0x80000007u
#define NBD_REP_ERR_BLOCK_SIZE_REQD 0x80000008u
#define NBD_REP_ERR_TOO_BIG         0x80000009u

#define NBD_INFO_EXPORT             0
#define NBD_INFO_NAME               1
#define NBD_INFO_DESCRIPTION        2
#define NBD_INFO_BLOCK_SIZE         3

/* Transmission flags (16 bits) */
#define NBD_FLAG_HAS_FLAGS          (1u << 0)
#define NBD_FLAG_READ_ONLY          (1u << 1)
#define NBD_FLAG_SEND_FLUSH         (1u << 2)
#define NBD_FLAG_SEND_FUA           (1u << 3)
#define NBD_FLAG_ROTATIONAL         (1u << 4)
#define NBD_FLAG_SEND_TRIM          (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES  (1u << 6)
#define NBD_FLAG_SEND_DF            (1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN     (1u << 8)
#define NBD_FLAG_SEND_RESIZE        (1u << 9)
#define NBD_FLAG_SEND_CACHE         (1u << 10)
#define NBD_FLAG_SEND_FAST_ZERO     (1u << 11)

/* Transmission (proto.md "Transmission phase") */
#define NBD_REQUEST_MAGIC           0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC      0x67446698u
#define NBD_STRUCTURED_REPLY_MAGIC  0x668e33efu

#define NBD_REQUEST_SIZE            28
#define NBD_SIMPLE_REPLY_SIZE       16
#define NBD_CHUNK_HEADER_SIZE       20

#define NBD_CMD_READ                0
#define NBD_CMD_WRITE               1
#define NBD_CMD_DISC                2
#define NBD_CMD_FLUSH               3
#define NBD_CMD_TRIM                4
#define NBD_CMD_CACHE               5
#define NBD_CMD_WRITE_ZEROES        6
#define NBD_CMD_BLOCK_STATUS        7

#define NBD_CMD_FLAG_FUA            (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE        (1u << 1)
#define NBD_CMD_FLAG_DF             (1u << 2)
#define NBD_CMD_FLAG_REQ_ONE        (1u << 3)
#define NBD_CMD_FLAG_FAST_ZERO      (1u << 4)

#define NBD_REPLY_FLAG_DONE         (1u << 0)

#define NBD_REPLY_TYPE_NONE         0
#define NBD_REPLY_TYPE_OFFSET_DATA  1
#define NBD_REPLY_TYPE_OFFSET_HOLE  2
#define NBD_REPLY_TYPE_BLOCK_STATUS 5
#define NBD_REPLY_TYPE_ERROR        32769
#define NBD_REPLY_TYPE_ERROR_OFFSET 32770

/* Error values (proto.md "Error values") */
#define NBD_EPERM                   1
#define NBD_EIO                     5
#define NBD_ENOMEM                  12
#define NBD_EINVAL                  22
#define NBD_ENOSPC                  28
#define NBD_EOVERFLOW               75
#define NBD_ENOTSUP                 95
#define NBD_ESHUTDOWN               108

/* base:allocation */
#define NBD_STATE_HOLE              (1u << 0)
#define NBD_STATE_ZERO              (1u << 1)

/* Our limits */
#define NBD_MAX_STRING              4096            /* names, queries */
#define NBD_MAX_PAYLOAD             (32u << 20)     /* READ/WRITE */
#define NBD_MAX_OPTION              (64u * 1024 + 4096)
#define NBD_MIN_BLOCK               1u
#define NBD_MAX_EXTENTS             (64u * 1024)    /* per context, per reply */

/* Metadata context ids we hand out (stable for the whole server) */
#define NBD_CTX_BASE_ALLOCATION     1u
#define NBD_CTX_ALLOCATION_DEPTH    2u

/*
 * Protocol names, for log lines: the spelling of proto.md ("NBD_OPT_GO",
 * "NBD_CMD_READ", "NBD_REP_ERR_UNKNOWN", "NBD_EINVAL"), or "unknown ..."
 * for a number the spec (as far as we speak it) does not name. Each case
 * is generated from the constant itself, so name and value cannot drift.
 */
#define NBD_NAME_CASE(c) case c: return #c

static inline const char *
nbd_opt_name(uint32_t opt)
{
    switch (opt) {
    NBD_NAME_CASE(NBD_OPT_EXPORT_NAME);
    NBD_NAME_CASE(NBD_OPT_ABORT);
    NBD_NAME_CASE(NBD_OPT_LIST);
    NBD_NAME_CASE(NBD_OPT_PEEK_EXPORT);
    NBD_NAME_CASE(NBD_OPT_STARTTLS);
    NBD_NAME_CASE(NBD_OPT_INFO);
    NBD_NAME_CASE(NBD_OPT_GO);
    NBD_NAME_CASE(NBD_OPT_STRUCTURED_REPLY);
    NBD_NAME_CASE(NBD_OPT_LIST_META_CONTEXT);
    NBD_NAME_CASE(NBD_OPT_SET_META_CONTEXT);
    NBD_NAME_CASE(NBD_OPT_EXTENDED_HEADERS);
    default: return "unknown option";
    }
}

static inline const char *
nbd_rep_name(uint32_t type)
{
    switch (type) {
    NBD_NAME_CASE(NBD_REP_ACK);
    NBD_NAME_CASE(NBD_REP_SERVER);
    NBD_NAME_CASE(NBD_REP_INFO);
    NBD_NAME_CASE(NBD_REP_META_CONTEXT);
    NBD_NAME_CASE(NBD_REP_ERR_UNSUP);
    NBD_NAME_CASE(NBD_REP_ERR_POLICY);
    NBD_NAME_CASE(NBD_REP_ERR_INVALID);
    NBD_NAME_CASE(NBD_REP_ERR_PLATFORM);
    NBD_NAME_CASE(NBD_REP_ERR_TLS_REQD);
    NBD_NAME_CASE(NBD_REP_ERR_UNKNOWN);
    NBD_NAME_CASE(NBD_REP_ERR_SHUTDOWN);
    NBD_NAME_CASE(NBD_REP_ERR_BLOCK_SIZE_REQD);
    NBD_NAME_CASE(NBD_REP_ERR_TOO_BIG);
    default: return "unknown reply";
    }
}

static inline const char *
nbd_cmd_name(uint16_t type)
{
    switch (type) {
    NBD_NAME_CASE(NBD_CMD_READ);
    NBD_NAME_CASE(NBD_CMD_WRITE);
    NBD_NAME_CASE(NBD_CMD_DISC);
    NBD_NAME_CASE(NBD_CMD_FLUSH);
    NBD_NAME_CASE(NBD_CMD_TRIM);
    NBD_NAME_CASE(NBD_CMD_CACHE);
    NBD_NAME_CASE(NBD_CMD_WRITE_ZEROES);
    NBD_NAME_CASE(NBD_CMD_BLOCK_STATUS);
    default: return "unknown command";
    }
}

static inline const char *
nbd_err_name(uint32_t error)
{
    switch (error) {
    NBD_NAME_CASE(NBD_EPERM);
    NBD_NAME_CASE(NBD_EIO);
    NBD_NAME_CASE(NBD_ENOMEM);
    NBD_NAME_CASE(NBD_EINVAL);
    NBD_NAME_CASE(NBD_ENOSPC);
    NBD_NAME_CASE(NBD_EOVERFLOW);
    NBD_NAME_CASE(NBD_ENOTSUP);
    NBD_NAME_CASE(NBD_ESHUTDOWN);
    default: return "unknown error";
    }
}

#undef NBD_NAME_CASE

#endif /* VMC_NBD_PROTOCOL_H */
