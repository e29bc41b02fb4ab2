// Training masks: geometry, ratios and brain restriction against an independent Python
// computation (tools/ref_masking.py), plus reproducibility and uniformity.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/testutil.h"
#include "train/masking.h"
#include "util/error.h"
#include "util/rng.h"

// Random brain-like ellipses (sample 0 of `empty_first` cases has no brain at all).
static void make_brains(uint8_t *brain, int B, int H, int W, uint64_t seed, int empty_first) {
    rng r;
    rng_seed(&r, seed);
    for (int i = 0; i < B; i++) {
        double cy = H * rng_uniform_range(&r, 0.35, 0.65), cx = W * rng_uniform_range(&r, 0.35, 0.65);
        double ry = H * rng_uniform_range(&r, 0.15, 0.45), rx = W * rng_uniform_range(&r, 0.15, 0.45);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                double dy = (y - cy) / ry, dx = (x - cx) / rx;
                brain[((size_t)i * H + y) * W + x] = !(empty_first && i == 0) && dy * dy + dx * dx < 1.0;
            }
    }
}

static void run_case(const char *name, mask_spec s, int B, uint64_t seed, uint64_t stream0, int has_brain,
                     int empty_first) {
    const char *dir = tu_scratch_dir(name);
    int L = mask_num_tokens(&s);
    size_t hw = (size_t)s.img_h * s.img_w;
    uint8_t *brain = NULL;
    if (has_brain) {
        brain = malloc((size_t)B * hw);
        make_brains(brain, B, s.img_h, s.img_w, seed + 7, empty_first);
        float *bf = malloc(sizeof(float) * B * hw);
        for (size_t i = 0; i < B * hw; i++) bf[i] = brain[i];
        char p[4096];
        snprintf(p, sizeof p, "%s/brain.f32", dir);
        tu_write_f32(p, bf, B * hw);
        free(bf);
    }
    uint8_t *m = malloc((size_t)B * L);
    long total = mask_generate(m, &s, brain, B, seed, stream0);
    char args[8192];
    snprintf(args, sizeof args, "%s %d %d %d %d %.17g %.17g %d %llu %llu %d", dir, s.img_h, s.img_w, s.patch, s.unit,
             s.ratio, s.brain_cover, B, (unsigned long long)seed, (unsigned long long)stream0, has_brain);
    tu_run_python("tools/ref_masking.py", args);
    char p[4096];
    snprintf(p, sizeof p, "%s/mask_ref.f32", dir);
    float *ref = tu_read_f32(p, (size_t)B * L);
    float *got = malloc(sizeof(float) * B * L);
    long ref_total = 0;
    for (size_t i = 0; i < (size_t)B * L; i++) got[i] = m[i], ref_total += ref[i] != 0;
    char label[256];
    snprintf(label, sizeof label, "%s: token mask vs Python", name);
    tu_allclose(label, got, ref, (size_t)B * L, 0, 0);
    CHECK(total == ref_total, "%s: masked token count %ld vs %ld", name, total, ref_total);

    // Every masked token lies in a brain unit (unless the slice had none).
    if (has_brain) {
        int uh, uw;
        mask_unit_grid(&s, &uh, &uw);
        uint8_t *isb = malloc((size_t)uh * uw);
        int lw = s.img_w / s.patch, k = s.unit / s.patch, ok = 1;
        for (int i = 0; i < B; i++) {
            int nb = mask_brain_units(isb, &s, brain + i * hw);
            if (nb == 0) continue;
            int masked_units = 0;
            for (int u = 0; u < uh * uw; u++) {
                int r0 = (u / uw) * k, c0 = (u % uw) * k;
                uint8_t v = m[(size_t)i * L + r0 * lw + c0];
                masked_units += v;
                if (v && !isb[u]) ok = 0;
            }
            if (masked_units != nb - (int)(nb * (1.0 - s.ratio))) ok = 0;
        }
        CHECK(ok, "%s: only brain units masked, n_masked = Ub - int(Ub*(1-r))", name);
        free(isb);
    }
    free(brain);
    free(m);
    free(ref);
    free(got);
}

int main(void) {
    // Reference setting: 224 px, 16 px units, ratio 0.35 -> 69 of 196 units masked per sample.
    mask_spec s = mask_spec_default(224, 224, 4);
    CHECK(mask_spec_check(&s) == 0, "default spec valid");
    int uh, uw;
    mask_unit_grid(&s, &uh, &uw);
    CHECK(uh == 14 && uw == 14 && mask_num_tokens(&s) == 3136, "14x14 units, 3136 tokens");
    uint8_t *m = malloc(8 * 3136);
    long total = mask_generate(m, &s, NULL, 8, 1, 0);
    CHECK(total == 8L * 69 * 16, "69 units x 16 tokens masked per sample (%ld)", total);

    // Same (seed, stream) -> same mask whatever the batch split; other streams differ.
    uint8_t *m2 = malloc(8 * 3136);
    mask_generate(m2, &s, NULL, 3, 1, 0);
    mask_generate(m2 + 3 * 3136, &s, NULL, 5, 1, 3);
    CHECK(!memcmp(m, m2, 8 * 3136), "split batch gives the same masks");
    mask_generate(m2, &s, NULL, 8, 2, 0);
    CHECK(memcmp(m, m2, 3136) != 0, "another seed differs");

    // Uniformity: each unit masked with frequency ~ 69/196 over 2000 samples (5 sigma).
    int n = 2000, bad = 0;
    int *cnt = calloc(196, sizeof(int));
    uint8_t *mm = malloc((size_t)n * 3136);
    mask_generate(mm, &s, NULL, n, 99, 0);
    for (int i = 0; i < n; i++)
        for (int u = 0; u < 196; u++) cnt[u] += mm[(size_t)i * 3136 + (u / 14) * 4 * 56 + (u % 14) * 4];
    double p = 69.0 / 196, sd = sqrt(n * p * (1 - p));
    for (int u = 0; u < 196; u++) bad += fabs(cnt[u] - n * p) > 5 * sd;
    CHECK(bad == 0, "unit frequencies uniform (%d outliers)", bad);
    free(cnt);
    free(mm);

    // Invalid specs are errors.
    mask_spec e = s;
    e.unit = 18;
    CHECK(mask_spec_check(&e) == -1 && strstr(as_error(), "multiple"), "unit not multiple of patch: %s", as_error());
    e = s;
    e.ratio = 1.0;
    CHECK(mask_spec_check(&e) == -1, "ratio 1 rejected");

    // Against Python: plain, brain-restricted with 32/64 px units (64 cuts at the border),
    // an odd small grid, and the no-brain fallback.
    run_case("mask_plain", s, 4, 5, 100, 0, 0);
    mask_spec s32 = s;
    s32.unit = 32;
    s32.ratio = 0.5;
    run_case("mask_brain32", s32, 5, 11, 7, 1, 0);
    mask_spec s64 = s;
    s64.unit = 64;
    s64.brain_cover = 0.3;
    run_case("mask_brain64", s64, 3, 12, 0, 1, 0);
    mask_spec odd = {.img_h = 48, .img_w = 40, .patch = 4, .unit = 12, .ratio = 0.35, .brain_cover = 0.5};
    CHECK(mask_spec_check(&odd) == 0, "odd spec valid");
    run_case("mask_odd", odd, 7, 13, 1000, 1, 1);
    free(m);
    free(m2);
    return tu_finish();
}
