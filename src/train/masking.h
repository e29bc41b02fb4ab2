// Window masking for Swin MAE training: the token grid is cut into square mask units
// (16x16 px = 4x4 tokens at the paper's setting), and for each sample a random subset of units
// is masked.
//
// Reference behaviour (mask_ratio r, U units): draw a uniform random permutation of the units,
// keep the first int(U*(1-r)) and mask the rest (r = 0.35 at 224 px: keep 127 of 196, mask 69).
//
// The paper's two user settings are exposed: the ratio and the unit size (pixels, a multiple of
// the patch size). When the image side is not a multiple of the unit, the last row/column of
// units is cut short by the image border (e.g. 64 px units on 224 px: 4x4 units, the last
// ones 32 px wide).
//
// Brain restriction (the paper masks "regions within the brain area"): when a brain mask is
// given, a unit is a brain unit if the fraction of its pixels inside the brain is strictly
// greater than `brain_cover` (default 0.5). The permutation is then drawn over the brain units
// only, int(Ub*(1-r)) of them are kept and the rest masked; non-brain units are never masked.
// A slice with no brain unit at all (Ub == 0) falls back to masking over all units, so every
// sample has at least one masked token and the masked loss stays defined.
//
// Randomness: sample i of a call draws from rng_seed_stream(seed, stream0 + i), so a sample's
// mask depends only on (seed, its global sample index): reproducible for any thread count,
// batch split or resume point.
#ifndef ANOSWIN_TRAIN_MASKING_H
#define ANOSWIN_TRAIN_MASKING_H

#include <stdint.h>

typedef struct mask_spec {
    int img_h, img_w;    // image size in pixels
    int patch;           // patch size in pixels (token = patch x patch px)
    int unit;            // mask unit side in pixels, a multiple of `patch`
    double ratio;        // fraction of (brain) units masked, in (0, 1)
    double brain_cover;  // a unit is brain if its brain-pixel fraction > this
} mask_spec;

// The paper's training setting for a given image/patch size: 16 px units, ratio 0.35,
// brain cover 0.5.
mask_spec mask_spec_default(int img_h, int img_w, int patch);

// Checks the spec (unit multiple of patch, ratio in (0,1), ...); records an error and returns -1.
int mask_spec_check(const mask_spec *s);

// Tokens per image (L = (H/patch)*(W/patch)) and unit grid size.
int mask_num_tokens(const mask_spec *s);
void mask_unit_grid(const mask_spec *s, int *units_h, int *units_w);

// Which units count as brain for one slice.
// is_brain (Uh*Uw) out: 1 = brain unit; brain (H, W) uint8 nonzero = brain. Returns Ub.
int mask_brain_units(uint8_t *is_brain, const mask_spec *s, const uint8_t *brain);

// token_mask (B, L) out: 1 = masked token. brain (B, H, W) uint8 or NULL (no restriction).
// Returns the total number of masked tokens.
long mask_generate(uint8_t *token_mask, const mask_spec *s, const uint8_t *brain, int B, uint64_t seed,
                   uint64_t stream0);

// Sets the tokens covered by unit u (row-major in the unit grid) in one sample's mask (L).
void mask_set_unit(uint8_t *token_mask, const mask_spec *s, int u, uint8_t value);

#endif
