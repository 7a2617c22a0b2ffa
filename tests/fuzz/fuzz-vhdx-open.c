/*
 * fuzz-vhdx-open.c - libFuzzer target: the input bytes are a VHDX image
 * (the body is fuzz-vpc-open.c's, for another format).
 */
#define FUZZ_FORMAT VMC_FMT_VHDX
#define FUZZ_SUFFIX "vhdx"
#include "fuzz-vpc-open.c"
