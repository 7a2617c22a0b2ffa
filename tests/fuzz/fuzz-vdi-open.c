/*
 * fuzz-vdi-open.c - libFuzzer target: the input bytes are a VDI image
 * (the body is fuzz-vpc-open.c's, for another format).
 */
#define FUZZ_FORMAT VMC_FMT_VDI
#define FUZZ_SUFFIX "vdi"
#include "fuzz-vpc-open.c"
