// Carving one activation arena into per-layer buffers. A model's layout code runs twice over a
// carve: first with base NULL, which only counts the floats it would hand out (the arena's
// size), then over the allocated arena, which hands out the same pieces for real.
#ifndef ANOSWIN_UTIL_CARVE_H
#define ANOSWIN_UTIL_CARVE_H

#include <stddef.h>

typedef struct carve {
    float *base;  // NULL: count only
    size_t used;  // floats handed out so far
} carve;

// The next n floats of the arena (NULL while counting). Pieces advance in 64-byte steps, so
// every buffer is as aligned as the arena itself.
static inline float *carve_take(carve *a, size_t n) {
    float *p = a->base ? a->base + a->used : NULL;
    a->used += (n + 15) & ~(size_t)15;
    return p;
}

#endif
