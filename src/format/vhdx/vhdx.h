/*
 * vhdx.h - internal interface of the read-only VHDX (Hyper-V) driver.
 *
 * Layout ([MS-VHDX], little-endian, GUIDs in their mixed-endian on-disk
 * form): the file identifier "vhdxfile" at 0; two 4 KiB headers at 64
 * and 128 KiB (CRC-32C, the valid one with the higher sequence number is
 * current; it locates the log); two copies of the region table at 192 and
 * 256 KiB (CRC-32C) locating the BAT and the metadata region. The metadata
 * region gives the block size, the virtual size, the logical sector size
 * and, for a differencing file, the parent locator. The BAT holds one
 * 64-bit entry per payload block (state in bits 0-2, file offset in MiB
 * from bit 20), with one sector-bitmap entry after every chunk_ratio
 * payload entries; a sector bitmap (bit n = logical sector n of the chunk,
 * least significant bit first) says which sectors of a partly present
 * block of a differencing file are in this file.
 *
 * A non-empty log (entries carrying the header's log GUID) means the file
 * was not closed cleanly: it is refused, never read as if the log were
 * empty, since replaying it would mean writing the file.
 */
#ifndef VMC_VHDX_H
#define VMC_VHDX_H

#include <stdbool.h>
#include <stdint.h>

#include "format/foreign.h"
#include "format/format.h"

#define VHDX_MiB            (1ull << 20)
#define VHDX_HEADER_SIZE    4096
#define VHDX_RT_SIZE        65536
#define VHDX_MAX_ENTRIES    2047
#define VHDX_MAX_SIZE       (64ull << 40)   /* the specification's 64 TiB */

enum vhdx_block_state {
    VHDX_NOT_PRESENT = 0,
    VHDX_UNDEFINED = 1,
    VHDX_ZERO = 2,
    VHDX_UNMAPPED = 3,
    VHDX_FULLY_PRESENT = 6,
    VHDX_PARTIALLY_PRESENT = 7,
};

/* What the headers, region table and metadata say (vhdx-meta.c). */
struct vhdx_layout {
    uint64_t log_off, log_len;
    uint64_t bat_off, bat_len;
    uint64_t meta_off, meta_len;
    uint32_t block_size;
    uint32_t sector_size;         /* logical */
    uint64_t size;
    bool has_parent;
};

struct vhdx_state {
    struct foreign_state base;    /* table: bat, bitmap: bitmap */
    struct vhdx_layout l;
    uint64_t chunk_ratio;         /* payload blocks per sector bitmap */
    uint64_t nblocks;             /* payload blocks */
    uint64_t nbat;
    uint64_t *bat;
    uint8_t *bitmap;              /* sector bits of one payload block */
    uint64_t bitmap_block;        /* which block bitmap[] holds, +1; 0 none */
};

/* vhdx-meta.c */
uint32_t vhdx_crc32c(const uint8_t *buf, size_t len, size_t csum_off);
int vhdx_read_layout(struct vmc_image *img, uint64_t file_len,
                     struct vhdx_layout *l, struct vmc_error *err);

#endif /* VMC_VHDX_H */
