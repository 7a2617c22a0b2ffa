/*
 * qcow2-compress.c - compressed cluster codecs (qcow2 spec "Compressed
 * clusters"): raw deflate (compression type 0, no zlib header) and zstd
 * (type 1, one frame per cluster). The stored length is only known to
 * sector precision, so decompression stops once one cluster of output
 * exists and ignores trailing input.
 */
#include <errno.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "format/qcow2/qcow2.h"

static int
inflate_cluster(const uint8_t *in, size_t in_len, uint8_t *out,
                size_t out_len)
{
    z_stream zs;
    int r;

    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, -15) != Z_OK) {
        return -ENOMEM;
    }
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)in_len;
    zs.next_out = out;
    zs.avail_out = (uInt)out_len;
    r = inflate(&zs, Z_FINISH);
    inflateEnd(&zs);
    if ((r == Z_STREAM_END || r == Z_BUF_ERROR || r == Z_OK) &&
        zs.avail_out == 0) {
        return 0;
    }
    return -EIO;
}

static int
zstd_decompress_cluster(const uint8_t *in, size_t in_len, uint8_t *out,
                        size_t out_len)
{
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    ZSTD_inBuffer ib = { in, in_len, 0 };
    ZSTD_outBuffer ob = { out, out_len, 0 };
    int r = -EIO;

    if (!dctx) {
        return -ENOMEM;
    }
    while (ob.pos < ob.size && ib.pos < ib.size) {
        size_t ret = ZSTD_decompressStream(dctx, &ob, &ib);
        if (ZSTD_isError(ret)) {
            break;
        }
        if (ret == 0 && ob.pos < ob.size) {
            break;   /* frame ended early */
        }
    }
    if (ob.pos == ob.size) {
        r = 0;
    }
    ZSTD_freeDCtx(dctx);
    return r;
}

int
qcow2_decompress(unsigned type, const uint8_t *in, size_t in_len,
                 uint8_t *out, size_t out_len)
{
    return type == 1 ? zstd_decompress_cluster(in, in_len, out, out_len)
                     : inflate_cluster(in, in_len, out, out_len);
}

static long
deflate_cluster(const uint8_t *in, size_t in_len, uint8_t *out,
                size_t out_cap)
{
    z_stream zs;
    long n;
    int r;

    memset(&zs, 0, sizeof(zs));
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
        return -ENOMEM;
    }
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)in_len;
    zs.next_out = out;
    zs.avail_out = (uInt)out_cap;
    r = deflate(&zs, Z_FINISH);
    n = (long)(out_cap - zs.avail_out);
    deflateEnd(&zs);
    return r == Z_STREAM_END ? n : 0;   /* did not fit: not smaller */
}

long
qcow2_compress(unsigned type, const uint8_t *in, size_t in_len,
               uint8_t *out, size_t out_cap)
{
    size_t n;

    if (type != 1) {
        return deflate_cluster(in, in_len, out, out_cap);
    }
    n = ZSTD_compress(out, out_cap, in, in_len, 3);
    if (ZSTD_isError(n)) {
        return 0;   /* dstSize_tooSmall and friends: store uncompressed */
    }
    return (long)n;
}
