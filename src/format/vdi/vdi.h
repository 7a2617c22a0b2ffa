/*
 * vdi.h - the VirtualBox VDI layout, shared by the read-only driver
 * (vdi.c) and the writer (vdi-write.c).
 *
 * Little-endian: a 64-byte text line, then the signature 0xbeda107f at
 * 0x40 and version 1.1; the header gives the image type (1 dynamic, 2
 * static), the offsets of the block map and of the data, the sector size
 * (512), the disk size, the block size and the number of blocks. The
 * block map holds one 32-bit entry per block: the index of its data block
 * in the data area, or 0xffffffff (never written) or 0xfffffffe
 * (discarded), both reading as zeros.
 */
#ifndef VMC_VDI_H
#define VMC_VDI_H

#define VDI_SIGNATURE     0xbeda107fu
#define VDI_VERSION_1_1   0x00010001u
#define VDI_HEADER_SIZE   512
#define VDI_UNALLOCATED   0xffffffffu
#define VDI_FIRST_FREE    0xfffffffeu   /* this and above: not allocated */
#define VDI_MAX_BLOCK     (256u << 20)

/* Header fields (offsets into the first 512 bytes). */
#define VDI_H_SIGNATURE   0x40    /* u32 */
#define VDI_H_VERSION     0x44    /* u32 */
#define VDI_H_HDR_SIZE    0x48    /* u32, bytes of header from 0x48 */
#define VDI_H_TYPE        0x4c    /* u32, enum vdi_type */
#define VDI_H_BMAP_OFF    0x154   /* u32 */
#define VDI_H_DATA_OFF    0x158   /* u32 */
#define VDI_H_SECTOR      0x168   /* u32, 512 */
#define VDI_H_DISK_SIZE   0x170   /* u64 */
#define VDI_H_BLOCK_SIZE  0x178   /* u32 */
#define VDI_H_BLOCK_EXTRA 0x17c   /* u32, 0 */
#define VDI_H_BLOCKS      0x180   /* u32, blocks in the image */
#define VDI_H_ALLOCATED   0x184   /* u32, blocks allocated */
#define VDI_H_UUID        0x188   /* 16 bytes */
#define VDI_H_UUID_SNAP   0x198   /* 16 bytes */
#define VDI_H_UUID_LINK   0x1a8   /* 16 bytes, zero: no link */
#define VDI_H_UUID_PARENT 0x1b8   /* 16 bytes, zero: no parent */
#define VDI_H_END         0x1c8   /* end of the version 1.1 header */

enum vdi_type {
    VDI_DYNAMIC = 1,
    VDI_STATIC = 2,
};

#endif /* VMC_VDI_H */
