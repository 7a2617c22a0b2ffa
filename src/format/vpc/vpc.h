/*
 * vpc.h - internal interface of the read-only VHD (Virtual PC) driver.
 *
 * A VHD file is a 512-byte footer at its end ("conectix", big-endian
 * fields, one's-complement byte-sum checksum). A fixed disk is the guest
 * data followed by the footer. A dynamic or differencing disk starts with
 * a copy of the footer, then a 1 KiB dynamic header ("cxsparse", own
 * checksum) pointing at the block allocation table (BAT): one big-endian
 * sector number per block, 0xFFFFFFFF for "not allocated". An allocated
 * block is a sector bitmap (one bit per sector, most significant bit
 * first) followed by the block's data. A dynamic disk reads unallocated
 * blocks as zeros and, like QEMU, ignores the bitmap; a differencing disk
 * reads the sectors whose bit is clear (and unallocated blocks) from its
 * parent, named by the parent locators of the dynamic header. The writer
 * (vpc-write.c) makes fixed and dynamic disks.
 */
#ifndef VMC_VPC_H
#define VMC_VPC_H

#include <stddef.h>
#include <stdint.h>

#include "format/foreign.h"
#include "format/format.h"

#define VPC_FOOTER_SIZE  512
#define VPC_DYN_SIZE     1024
#define VPC_BAT_FREE     0xFFFFFFFFu
/* The CHS geometry that means "use the size field" (QEMU's rule). */
#define VPC_MAX_GEOMETRY    (65535ull * 16 * 255)

/* Footer fields (big-endian; offsets into the 512 bytes). */
#define VPC_F_FEATURES    8     /* u32, 2 = reserved bit always set */
#define VPC_F_VERSION     12    /* u32, 0x00010000 */
#define VPC_F_DATA_OFF    16    /* u64, dynamic header; ~0 for fixed */
#define VPC_F_TIMESTAMP   24    /* u32, seconds since 2000-01-01 UTC */
#define VPC_F_CREATOR     28    /* 4 chars: the creator application */
#define VPC_F_CREATOR_VER 32
#define VPC_F_CREATOR_OS  36
#define VPC_F_ORIG_SIZE   40    /* u64 */
#define VPC_F_CUR_SIZE    48    /* u64 */
#define VPC_F_CYLINDERS   56    /* u16, then heads (u8), sectors (u8) */
#define VPC_F_TYPE        60    /* u32, enum vpc_type */
#define VPC_F_CHECKSUM    64    /* u32 */
#define VPC_F_UUID        68    /* 16 bytes */
/* Dynamic header fields (big-endian). */
#define VPC_D_DATA_OFF    8     /* u64, ~0 */
#define VPC_D_TABLE_OFF   16    /* u64, the BAT */
#define VPC_D_VERSION     24    /* u32, 0x00010000 */
#define VPC_D_ENTRIES     28    /* u32, BAT entries */
#define VPC_D_BLOCK_SIZE  32    /* u32 */
#define VPC_D_CHECKSUM    36    /* u32 */
#define VPC_D_LOCATORS    576   /* 8 parent locators of 24 bytes */

enum vpc_type {
    VPC_FIXED = 2,
    VPC_DYNAMIC = 3,
    VPC_DIFFERENCING = 4,
};

struct vpc_state {
    struct foreign_state base;   /* table: bat, bitmap: bitmap */
    enum vpc_type type;
    uint32_t block_size;     /* dynamic/differencing */
    uint32_t bitmap_size;    /* bytes before each block's data */
    uint32_t nbat;
    uint32_t *bat;           /* host sector of each block's bitmap */
    uint64_t cached_bitmap;  /* host offset of bitmap[], 0 = none */
    uint8_t *bitmap;
    char creator[5];
};

/* vpc-header.c: the footer and the dynamic header. */
/* One's complement of the byte sum, skipping the checksum field. */
uint32_t vpc_checksum(const uint8_t *buf, size_t len, size_t csum_off);
int vpc_read_footer(struct vmc_image *img, uint64_t file_len,
                    uint8_t footer[VPC_FOOTER_SIZE], struct vmc_error *err);
uint64_t vpc_virtual_size(const uint8_t footer[VPC_FOOTER_SIZE]);
int vpc_open_dynamic(struct vmc_image *img, struct vpc_state *s,
                     const uint8_t *footer, uint64_t file_len,
                     struct vmc_error *err);

#endif /* VMC_VPC_H */
