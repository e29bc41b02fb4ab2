#include "train/masking.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"  // as_fail, as_malloc
#include "util/rng.h"    // rng_seed_stream, rng_permutation

mask_spec mask_spec_default(int img_h, int img_w, int patch) {
    mask_spec s = {.img_h = img_h, .img_w = img_w, .patch = patch, .unit = 4 * patch, .ratio = 0.35,
                   .brain_cover = 0.5};
    return s;
}

int mask_spec_check(const mask_spec *s) {
    if (s->patch <= 0 || s->img_h <= 0 || s->img_w <= 0 || s->img_h % s->patch || s->img_w % s->patch)
        return as_fail("mask: image %dx%d is not a multiple of the patch size %d", s->img_h, s->img_w, s->patch);
    if (s->unit <= 0 || s->unit % s->patch)
        return as_fail("mask: unit size %d px is not a positive multiple of the patch size %d", s->unit, s->patch);
    if (s->unit > s->img_h || s->unit > s->img_w)
        return as_fail("mask: unit size %d px is larger than the image (%dx%d)", s->unit, s->img_h, s->img_w);
    if (!(s->ratio > 0.0 && s->ratio < 1.0)) return as_fail("mask: ratio %g is not in (0, 1)", s->ratio);
    if (!(s->brain_cover >= 0.0 && s->brain_cover < 1.0))
        return as_fail("mask: brain cover %g is not in [0, 1)", s->brain_cover);
    return 0;
}

int mask_num_tokens(const mask_spec *s) { return (s->img_h / s->patch) * (s->img_w / s->patch); }

void mask_unit_grid(const mask_spec *s, int *units_h, int *units_w) {
    *units_h = (s->img_h + s->unit - 1) / s->unit;  // the last row may be cut by the border
    *units_w = (s->img_w + s->unit - 1) / s->unit;
}

void mask_set_unit(uint8_t *token_mask, const mask_spec *s, int u, uint8_t value) {
    int uh, uw;
    mask_unit_grid(s, &uh, &uw);
    int lh = s->img_h / s->patch, lw = s->img_w / s->patch, k = s->unit / s->patch;
    int r0 = (u / uw) * k, c0 = (u % uw) * k;
    int r1 = r0 + k < lh ? r0 + k : lh, c1 = c0 + k < lw ? c0 + k : lw;
    for (int r = r0; r < r1; r++)
        for (int c = c0; c < c1; c++) token_mask[r * lw + c] = value;
}

int mask_brain_units(uint8_t *is_brain, const mask_spec *s, const uint8_t *brain) {
    int uh, uw, count = 0;
    mask_unit_grid(s, &uh, &uw);
    for (int ur = 0; ur < uh; ur++) {
        for (int uc = 0; uc < uw; uc++) {
            int y0 = ur * s->unit, x0 = uc * s->unit;
            int y1 = y0 + s->unit < s->img_h ? y0 + s->unit : s->img_h;
            int x1 = x0 + s->unit < s->img_w ? x0 + s->unit : s->img_w;
            long inside = 0;
            for (int y = y0; y < y1; y++)
                for (int x = x0; x < x1; x++) inside += brain[(size_t)y * s->img_w + x] != 0;
            // coverage > threshold, i.e. inside/area > cover, without the division
            long area = (long)(y1 - y0) * (x1 - x0);
            int b = (double)inside > s->brain_cover * (double)area;
            is_brain[ur * uw + uc] = (uint8_t)b;
            count += b;
        }
    }
    return count;
}

long mask_generate(uint8_t *token_mask, const mask_spec *s, const uint8_t *brain, int B, uint64_t seed,
                   uint64_t stream0) {
    int uh, uw;
    mask_unit_grid(s, &uh, &uw);
    int U = uh * uw, L = mask_num_tokens(s);
    int *cand = as_malloc(sizeof(int) * (size_t)U);
    int *perm = as_malloc(sizeof(int) * (size_t)U);
    uint8_t *is_brain = as_malloc((size_t)U);
    long total = 0;
    for (int i = 0; i < B; i++) {
        uint8_t *m = token_mask + (size_t)i * L;
        memset(m, 0, (size_t)L);
        // candidate units, in unit order: the brain units, or all units
        int n = 0;
        if (brain && mask_brain_units(is_brain, s, brain + (size_t)i * s->img_h * s->img_w) > 0) {
            for (int u = 0; u < U; u++)
                if (is_brain[u]) cand[n++] = u;
        } else {
            for (int u = 0; u < U; u++) cand[n++] = u;
        }
        rng r;
        rng_seed_stream(&r, seed, stream0 + (uint64_t)i);
        rng_permutation(&r, perm, n);
        int keep = (int)((double)n * (1.0 - s->ratio));  // as the reference: int(L * (1 - ratio))
        for (int j = keep; j < n; j++) mask_set_unit(m, s, cand[perm[j]], 1);
        for (int t = 0; t < L; t++) total += m[t];
    }
    free(cand);
    free(perm);
    free(is_brain);
    return total;
}
