// Content hashes that identify data (a model's weights, an image) across runs and machines.
#ifndef ANOSWIN_UTIL_HASH_H
#define ANOSWIN_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>

// FNV-1a over the bytes of n floats. Calibration files record it as "weights_fnv1a": keep it.
static inline uint64_t hash_floats(const float *x, size_t n) {
    const unsigned char *b = (const unsigned char *)x;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n * sizeof(float); i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

#endif
