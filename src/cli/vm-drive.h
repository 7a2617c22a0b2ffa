/*
 * vm-drive.h - how QEMU and libvirt reach a VM's disk (vm-drive.c): its
 * qcow2 file, or an rbd image through QEMU's rbd driver (qemu-block-extra).
 */
#ifndef VMC_CLI_VM_DRIVE_H
#define VMC_CLI_VM_DRIVE_H

#include <stdbool.h>
#include <stdio.h>

/* QEMU's -drive file= value for disk @path into *@file (malloc'ed) and
 * the options after it into *@opts (",format=...,if=virtio,..."). */
int vm_drive_spec(const char *path, char **file, const char **opts);

/* When @path is an rbd image, print its libvirt <disk> element (target
 * vd@letter) to @f and return true; false for a file. */
bool vm_drive_xml_rbd(FILE *f, const char *path, char letter);

#endif /* VMC_CLI_VM_DRIVE_H */
