// 2-D brain-like phantom slices for the training tests (learning, exact resume).
#ifndef ANOSWIN_TEST_SLICE_PHANTOMS_H
#define ANOSWIN_TEST_SLICE_PHANTOMS_H

#include <stdint.h>

#include "train/trainer.h"  // slice_set

// Appends n slices of S x S (images in [0,1] and brain masks) drawn from `seed`.
void make_slice_phantoms(slice_set *s, int n, int S, uint64_t seed);

// The small Swin MAE both tests train, and their options: `epochs` of batch 8 on the built-in
// phantom data, seed 7, one thread, quiet, a checkpoint every 2 epochs, written to `out`.
#define SMALL_SWINMAE "img_size=32,patch_size=2,window=2,embed_dim=16,depths=[1,1,1,1],num_heads=[1,2,2,4],in_chans=1"
void small_train_options(train_options *o, const char *out, int epochs);

#endif
