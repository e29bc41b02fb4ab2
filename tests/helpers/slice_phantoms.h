// 2-D brain-like phantom slices for the training tests (learning, exact resume).
#ifndef ANOSWIN_TEST_SLICE_PHANTOMS_H
#define ANOSWIN_TEST_SLICE_PHANTOMS_H

#include <stdint.h>

#include "train/trainer.h"  // slice_set

// Appends n slices of S x S (images in [0,1] and brain masks) drawn from `seed`.
void make_slice_phantoms(slice_set *s, int n, int S, uint64_t seed);

#endif
