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
 * parent, named by the parent locators of the dynamic header.
 */
#ifndef VMC_VPC_H
#define VMC_VPC_H

#include <stdint.h>

#include "format/foreign.h"
#include "format/format.h"

#define VPC_FOOTER_SIZE  512
#define VPC_DYN_SIZE     1024
#define VPC_BAT_FREE     0xFFFFFFFFu

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
int vpc_read_footer(struct vmc_image *img, uint64_t file_len,
                    uint8_t footer[VPC_FOOTER_SIZE], struct vmc_error *err);
uint64_t vpc_virtual_size(const uint8_t footer[VPC_FOOTER_SIZE]);
int vpc_open_dynamic(struct vmc_image *img, struct vpc_state *s,
                     const uint8_t *footer, uint64_t file_len,
                     struct vmc_error *err);

#endif /* VMC_VPC_H */
