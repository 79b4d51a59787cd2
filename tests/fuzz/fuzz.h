/* fuzz.h: the entry point every fuzz target defines (libFuzzer's, and replay.c's). */
#ifndef SNAPFS_FUZZ_H
#define SNAPFS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
