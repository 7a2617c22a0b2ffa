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
 * empty, since replaying it would mean writing the file. The writer
 * (vhdx-write.c) makes fixed and dynamic files with an empty log.
 */
#ifndef VMC_VHDX_H
#define VMC_VHDX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format/foreign.h"
#include "format/format.h"

#define VHDX_MiB            (1ull << 20)
#define VHDX_HEADER_SIZE    4096
#define VHDX_RT_SIZE        65536
#define VHDX_MAX_ENTRIES    2047
#define VHDX_MAX_SIZE       (64ull << 40)   /* the specification's 64 TiB */

/* Region, metadata item and locator GUIDs, as text (vhdx_guid_store). */
#define VHDX_GUID_BAT          "2DC27766-F623-4200-9D64-115E9BFD4A08"
#define VHDX_GUID_METADATA     "8B7CA206-4790-4B9A-B8FE-575F050F886E"
#define VHDX_GUID_FILE_PARAMS  "CAA16737-FA36-4D43-B3B6-33F0AA44E76B"
#define VHDX_GUID_VIRTUAL_SIZE "2FA54224-CD1B-4876-B211-5DBED83BF4B8"
#define VHDX_GUID_LSECTOR_SIZE "8141BF1D-A96F-4709-BA47-F233A8FAAB5F"
#define VHDX_GUID_PSECTOR_SIZE "CDA348C7-445D-4471-9CC9-E9885251C556"
#define VHDX_GUID_DISK_ID      "BECA12AB-B2E6-4523-93EF-C309E000C746"
#define VHDX_GUID_PARENT_LOC   "A8D35F2D-B30B-454D-ABF7-D3D84834AB0C"
#define VHDX_GUID_LOCATOR_VHDX "B04AEFB7-D19E-4A81-B789-25B8E9445913"

/* Where the fixed structures are. */
#define VHDX_HEADER1_OFF    (64u << 10)
#define VHDX_HEADER2_OFF    (128u << 10)
#define VHDX_RT1_OFF        (192u << 10)
#define VHDX_RT2_OFF        (256u << 10)
/* Header fields ("head", CRC-32C over the 4 KiB). */
#define VHDX_HD_CHECKSUM    4     /* u32 */
#define VHDX_HD_SEQUENCE    8     /* u64: the higher valid one is current */
#define VHDX_HD_FILE_GUID   16
#define VHDX_HD_DATA_GUID   32
#define VHDX_HD_LOG_GUID    48    /* zero: the log is empty */
#define VHDX_HD_LOG_VERSION 64    /* u16, 0 */
#define VHDX_HD_VERSION     66    /* u16, 1 */
#define VHDX_HD_LOG_LENGTH  68    /* u32 */
#define VHDX_HD_LOG_OFFSET  72    /* u64 */
/* Region table ("regi", CRC-32C over the 64 KiB): entries of 32 bytes
 * from 16: GUID, file offset u64, length u32, required u32 (bit 0). */
#define VHDX_RT_CHECKSUM    4
#define VHDX_RT_COUNT       8     /* u32 */
#define VHDX_RT_ENTRIES     16
/* Metadata table ("metadata"): entries of 32 bytes from 32: GUID, offset
 * u32 (from the region's start, at least 64 KiB), length u32, flags. */
#define VHDX_MT_COUNT       10    /* u16 */
#define VHDX_MT_ENTRIES     32
#define VHDX_META_VIRTUAL   (1u << 1)  /* IsVirtualDisk */
#define VHDX_META_REQUIRED  (1u << 2)  /* IsRequired */
/* File parameters flags. */
#define VHDX_FP_LEAVE_ALLOCATED (1u << 0)
#define VHDX_FP_HAS_PARENT      (1u << 1)
/* BAT entries: state in bits 0-2, file offset (MiB-aligned) above. */
#define VHDX_BAT_STATE(e)   ((unsigned)((e) & 7))
#define VHDX_BAT_OFFSET(e)  ((e) & ~(VHDX_MiB - 1))

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
/* Store the GUID written as @text ("XXXXXXXX-XXXX-...") in its on-disk
 * form (first three fields little-endian) at @disk (16 bytes). */
void vhdx_guid_store(uint8_t *disk, const char *text);
int vhdx_read_layout(struct vmc_image *img, uint64_t file_len,
                     struct vhdx_layout *l, struct vmc_error *err);

#endif /* VMC_VHDX_H */
