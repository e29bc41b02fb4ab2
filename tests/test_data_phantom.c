// The procedural phantom and the lesion generator: tissue classes, brain = image > 0,
// lesions inside the brain with labels and visible contrast, determinism per seed.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/phantom.h"
#include "data/synth.h"
#include "helpers/testutil.h"

int main(void) {
    phantom_options o = {.nx = 64, .ny = 72, .nz = 48, .lesions = 0, .noise = 0, .seed = 3};
    volume img, tissue, label;
    phantom_make(&img, &tissue, &label, &o);
    size_t n = volume_voxels(&img);
    size_t count[4] = {0}, lab = 0, mask_ok = 0;
    for (size_t q = 0; q < n; q++) {
        int c = (int)tissue.data[q];
        count[c]++;
        lab += label.data[q] != 0;
        mask_ok += (img.data[q] > 0) == (c != PHANTOM_BG);
    }
    CHECK(img.nx == 64 && img.ny == 72 && img.nz == 48, "phantom grid");
    CHECK(count[PHANTOM_CSF] > 500 && count[PHANTOM_GM] > 5000 && count[PHANTOM_WM] > 5000 && count[PHANTOM_BG] > 5000,
          "all tissue classes present: bg %zu csf %zu gm %zu wm %zu", count[0], count[1], count[2], count[3]);
    CHECK(count[PHANTOM_WM] > count[PHANTOM_CSF], "more WM than CSF");
    CHECK(mask_ok == n, "image > 0 exactly on the brain");
    CHECK(lab == 0, "healthy phantom has no lesion labels");
    // CSF brighter than GM brighter than WM (T2-like).
    double mean[4] = {0};
    for (size_t q = 0; q < n; q++) mean[(int)tissue.data[q]] += img.data[q];
    for (int c = 0; c < 4; c++) mean[c] /= count[c] ? (double)count[c] : 1;
    CHECK(mean[PHANTOM_CSF] > mean[PHANTOM_GM] && mean[PHANTOM_GM] > mean[PHANTOM_WM] && mean[PHANTOM_BG] == 0,
          "T2-like contrast %g %g %g", mean[1], mean[2], mean[3]);
    volume_free(&img);
    volume_free(&tissue);
    volume_free(&label);

    // With lesions and noise.
    o.lesions = 2;
    o.noise = 0.03;
    volume a, la, b, lb, c, lc, healthy, tis;
    phantom_make(&a, &tis, &la, &o);
    phantom_make(&b, NULL, &lb, &o);
    CHECK(!memcmp(a.data, b.data, n * sizeof(float)) && !memcmp(la.data, lb.data, n * sizeof(float)),
          "same seed -> identical phantom");
    o.seed = 4;
    phantom_make(&c, NULL, &lc, &o);
    CHECK(memcmp(la.data, lc.data, n * sizeof(float)) != 0, "another seed -> other lesions");
    o.seed = 3;
    o.lesions = 0;
    phantom_make(&healthy, NULL, NULL, &o);
    size_t nl = 0, outside = 0, bad_value = 0;
    double diff = 0;
    for (size_t q = 0; q < n; q++) {
        float l = la.data[q];
        if (l == 0) continue;
        nl++;
        outside += tis.data[q] == PHANTOM_BG;
        bad_value += !(l == LESION_CORE || l == LESION_HALO || l == LESION_BODY);
        diff += fabs(a.data[q] - healthy.data[q]);
    }
    CHECK(nl > 50, "lesions labelled (%zu voxels)", nl);
    CHECK(outside == 0, "lesions inside the brain (%zu outside)", outside);
    CHECK(bad_value == 0, "labels are 1, 2 or 4");
    CHECK(nl && diff / nl > 0.1, "lesions change the image (mean |diff| %g)", nl ? diff / nl : 0);
    volume_free(&a);
    volume_free(&la);
    volume_free(&b);
    volume_free(&lb);
    volume_free(&c);
    volume_free(&lc);
    volume_free(&healthy);
    volume_free(&tis);

    // The lesion generator on its own: counts, every lesion inside the brain mask.
    int nx = 50, ny = 50, nz = 40;
    size_t m = (size_t)nx * ny * nz;
    float *t2 = calloc(m, sizeof(float)), *t1 = calloc(m, sizeof(float));
    unsigned char *brain = calloc(m, 1), *seg = calloc(m, 1);
    for (int k = 0; k < nz; k++)
        for (int j = 0; j < ny; j++)
            for (int i = 0; i < nx; i++) {
                double x = (i - 24.5) / 22, y = (j - 24.5) / 22, z = (k - 19.5) / 18;
                size_t q = (size_t)i + (size_t)nx * ((size_t)j + (size_t)ny * k);
                brain[q] = x * x + y * y + z * z < 1;
                t2[q] = brain[q] ? 0.33f : 0;
                t1[q] = brain[q] ? 1.0f : 0;
            }
    lesion_options lo;
    lesion_options_default(&lo);
    lo.min_count = lo.max_count = 3;
    lo.min_radius = 2;
    lo.max_radius = 6;
    lo.first_min_radius = 4;
    lo.kmin = 15;
    lo.kmax = 25;
    rng r;
    rng_seed(&r, 11);
    int painted = synth_lesions(t2, t1, seg, brain, nx, ny, nz, &lo, &r);
    size_t in = 0, out = 0, changed_t1 = 0;
    for (size_t q = 0; q < m; q++) {
        if (seg[q]) *(brain[q] ? &in : &out) += 1;
        if (seg[q] && fabsf(t1[q] - 1.0f) > 0.05f) changed_t1++;
    }
    CHECK(painted == 3, "3 lesions painted (%d)", painted);
    CHECK(in > 0 && out == 0, "generator: %zu lesion voxels inside, %zu outside", in, out);
    CHECK(changed_t1 > in / 2, "t1 gets the matching contrast (%zu of %zu)", changed_t1, in);
    free(t2);
    free(t1);
    free(brain);
    free(seg);
    return tu_finish();
}
