// N4 bias-field correction (src/prep/n4.c) and its B-spline fit (src/prep/bspline.c):
// - B-spline evaluation and the Lee-Wolberg-Shin fit against scipy.interpolate.BSpline and a dense
//   NumPy fit (tools/n4_ref.py), odd lattice and grid sizes, orders 1-3; subdivision keeps the
//   function; histogram sharpening and Otsu's threshold against NumPy;
// - a known smooth bias (0.7..1.3) on the Colin27 brain (1 mm, brain mask or Otsu foreground)
//   and on the phantom: the recovered log bias correlates >= 0.9 with the truth inside the brain
//   (means removed), and white matter's coefficient of variation drops by more than half of what
//   the bias added; at 2 mm, net of the template's own field, >= 0.99 (the brain) and >= 0.97 (the
//   head with its skull, ch2, no mask);
// - a constant image gets a zero bias; the same result on 1 and 2 threads; bad arguments refused.
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/phantom.h"
#include "data/synth.h"  // SYNTH_DEFAULT_TEMPLATE
#include "data/volume.h"
#include "helpers/testutil.h"
#include "prep/bspline.h"
#include "prep/n4.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/rng.h"
#include "util/timer.h"

static char dir[4096];

static void path_of(char *buf, size_t n, const char *prefix, int id, const char *name) {
    char f[128];
    snprintf(f, sizeof f, "%s_%d_%s", prefix, id, name);
    fs_join(buf, n, dir, f);
}

// ---- B-spline against SciPy ------------------------------------------------------------------------

typedef struct bs_case {
    int order, ncp[3], n[3], extent[3], step[3], off[3];  // sample i at off + i*step
} bs_case;

static const bs_case bs_cases[] = {
    {3, {4, 4, 4}, {13, 11, 7}, {12, 10, 6}, {1, 1, 1}, {0, 0, 0}},   // ITK's first level, full grid
    {3, {5, 7, 6}, {9, 6, 8}, {36, 23, 31}, {4, 4, 4}, {1, 1, 1}},    // a shrunk grid, finer lattice
    {3, {11, 6, 4}, {17, 13, 5}, {16, 12, 4}, {1, 1, 1}, {0, 0, 0}},  // more control points than some spans
    {2, {5, 4, 6}, {10, 9, 7}, {18, 8, 13}, {2, 1, 2}, {0, 0, 0}},
    {1, {3, 5, 4}, {8, 7, 9}, {7, 12, 8}, {1, 2, 1}, {0, 0, 0}},
    {3, {4, 4, 4}, {6, 1, 5}, {5, 0, 4}, {1, 1, 1}, {0, 0, 0}},       // a one-voxel axis
};
#define NBS ((int)(sizeof bs_cases / sizeof bs_cases[0]))

typedef struct bs_data {
    bspline_lattice L;
    bspline_axis ax[3];
    float *val;
    uint8_t *mask;
    size_t np;
} bs_data;

static void bs_make(bs_data *b, const bs_case *c, rng *r) {
    int mesh[3] = {c->ncp[0] - c->order, c->ncp[1] - c->order, c->ncp[2] - c->order};
    bspline_lattice_init(&b->L, mesh, c->order);
    size_t nc = (size_t)c->ncp[0] * c->ncp[1] * c->ncp[2];
    // float-representable coefficients, so that the reference reads the same numbers
    for (size_t i = 0; i < nc; i++) b->L.c[i] = (float)rng_uniform_range(r, -1, 1);
    for (int d = 0; d < 3; d++) {
        double *pos = as_malloc(sizeof(double) * c->n[d]);
        for (int i = 0; i < c->n[d]; i++) pos[i] = c->off[d] + (double)i * c->step[d];
        bspline_axis_init(&b->ax[d], pos, c->n[d], c->extent[d], c->ncp[d], c->order);
        free(pos);
    }
    b->np = (size_t)c->n[0] * c->n[1] * c->n[2];
    b->val = as_malloc(sizeof(float) * b->np);
    b->mask = as_malloc(b->np);
    for (size_t i = 0; i < b->np; i++) {
        b->val[i] = (float)rng_uniform_range(r, -2, 2);
        b->mask[i] = rng_uniform(r) < 0.7;
    }
}

static void bs_free(bs_data *b) {
    bspline_lattice_free(&b->L);
    for (int d = 0; d < 3; d++) bspline_axis_free(&b->ax[d]);
    free(b->val);
    free(b->mask);
}

static void bs_write(const bs_data *b, const bs_case *c, int id, FILE *meta) {
    char p[4096], name[32];
    fprintf(meta, "%d %d %d %d %d %d %d %d %d %d %d\n", id, c->order, c->ncp[0], c->ncp[1], c->ncp[2], c->n[0], c->n[1],
            c->n[2], c->extent[0], c->extent[1], c->extent[2]);
    for (int d = 0; d < 3; d++) {
        float *pos = as_malloc(sizeof(float) * c->n[d]);
        for (int i = 0; i < c->n[d]; i++) pos[i] = (float)(c->off[d] + i * c->step[d]);
        snprintf(name, sizeof name, "pos%d.f32", d);
        path_of(p, sizeof p, "bs", id, name);
        tu_write_f32(p, pos, c->n[d]);
        free(pos);
    }
    size_t nc = (size_t)c->ncp[0] * c->ncp[1] * c->ncp[2];
    float *lat = as_malloc(sizeof(float) * nc), *m = as_malloc(sizeof(float) * b->np);
    for (size_t i = 0; i < nc; i++) lat[i] = (float)b->L.c[i];
    for (size_t i = 0; i < b->np; i++) m[i] = b->mask[i];
    path_of(p, sizeof p, "bs", id, "lat.f32");
    tu_write_f32(p, lat, nc);
    path_of(p, sizeof p, "bs", id, "val.f32");
    tu_write_f32(p, b->val, b->np);
    path_of(p, sizeof p, "bs", id, "mask.f32");
    tu_write_f32(p, m, b->np);
    free(lat);
    free(m);
}

static void bs_check(bs_data *b, const bs_case *c, int id) {
    char p[4096], name[128];
    float *got = as_malloc(sizeof(float) * b->np);
    bspline_eval(got, &b->L, b->ax);
    path_of(p, sizeof p, "bs", id, "eval.f32");
    float *ref = tu_read_f32(p, b->np);
    snprintf(name, sizeof name, "bspline %d eval (order %d) vs scipy", id, c->order);
    tu_allclose(name, got, ref, b->np, 1e-5, 1e-5);
    free(ref);

    // The fit, against the dense formula.
    bspline_lattice phi;
    int mesh[3] = {c->ncp[0] - c->order, c->ncp[1] - c->order, c->ncp[2] - c->order};
    bspline_lattice_init(&phi, mesh, c->order);
    bspline_fit(&phi, b->val, b->mask, b->ax);
    size_t nc = (size_t)c->ncp[0] * c->ncp[1] * c->ncp[2];
    float *fit = as_malloc(sizeof(float) * nc);
    for (size_t i = 0; i < nc; i++) fit[i] = (float)phi.c[i];
    path_of(p, sizeof p, "bs", id, "fit.f32");
    ref = tu_read_f32(p, nc);
    snprintf(name, sizeof name, "bspline %d fit vs dense numpy", id);
    tu_allclose(name, fit, ref, nc, 1e-5, 1e-5);
    free(ref);
    free(fit);
    bspline_lattice_free(&phi);

    // Subdivision: the finer lattice is the same function (evaluated on the same samples).
    bspline_lattice fine;
    bspline_refine(&fine, &b->L);
    CHECK(fine.ncp[0] == 2 * (c->ncp[0] - c->order) + c->order, "refined size %d", fine.ncp[0]);
    bspline_axis fax[3];
    for (int d = 0; d < 3; d++) {
        double *pos = as_malloc(sizeof(double) * c->n[d]);
        for (int i = 0; i < c->n[d]; i++) pos[i] = c->off[d] + (double)i * c->step[d];
        bspline_axis_init(&fax[d], pos, c->n[d], c->extent[d], fine.ncp[d], c->order);
        free(pos);
    }
    float *g2 = as_malloc(sizeof(float) * b->np);
    bspline_eval(g2, &fine, fax);
    snprintf(name, sizeof name, "bspline %d refined lattice = same function", id);
    tu_allclose(name, g2, got, b->np, 1e-5, 1e-5);
    for (int d = 0; d < 3; d++) bspline_axis_free(&fax[d]);
    bspline_lattice_free(&fine);
    free(g2);
    free(got);
}

// ---- sharpening and Otsu against NumPy ------------------------------------------------------------

typedef struct sh_case { int n, bins; double fwhm, noise; int classes; } sh_case;

static const sh_case sh_cases[] = {
    {6000, 200, 0.15, 0.01, 3},  // N4's defaults on a 3-class log histogram
    {2500, 64, 0.3, 0.1, 2},
    {4001, 37, 0.05, 0.001, 4},  // odd bin count, sharp kernel
};
#define NSH ((int)(sizeof sh_cases / sizeof sh_cases[0]))

static void sh_make(float *v, uint8_t *m, const sh_case *c, rng *r) {
    for (int i = 0; i < c->n; i++) {
        int k = (int)rng_below(r, (uint32_t)c->classes);
        v[i] = (float)(0.4 * k + 0.08 * rng_normal(r) + 1.0);
        m[i] = rng_uniform(r) < 0.8;
    }
}

// ---- bias recovery -------------------------------------------------------------------------------

// A smooth field on the grid, scaled so that exp(field) spans 0.7 .. 1.3: a tilt, a twist and
// two broad bumps.
static void make_bias(float *logb, int nx, int ny, int nz) {
    double lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k < nz; k++)
        for (int j = 0; j < ny; j++)
            for (int i = 0; i < nx; i++) {
                double x = 2.0 * i / (nx - 1) - 1, y = 2.0 * j / (ny - 1) - 1, z = 2.0 * k / (nz - 1) - 1;
                double f = 0.5 * x - 0.3 * y + 0.4 * x * z + 0.6 * exp(-((x - 0.3) * (x - 0.3) + (y + 0.2) * (y + 0.2) + z * z) / 0.4) -
                           0.4 * exp(-((x + 0.5) * (x + 0.5) + (y - 0.5) * (y - 0.5) + (z + 0.3) * (z + 0.3)) / 0.3);
                logb[(size_t)i + (size_t)nx * ((size_t)j + (size_t)ny * k)] = (float)f;
                lo = fmin(lo, f);
                hi = fmax(hi, f);
            }
    size_t n = (size_t)nx * ny * nz;
    for (size_t i = 0; i < n; i++) logb[i] = (float)(log(0.7) + (logb[i] - lo) / (hi - lo) * (log(1.3) - log(0.7)));
}

static double correlation_in(const float *a, const float *b, const uint8_t *m, size_t n) {
    double sa = 0, sb = 0, c = 0;
    size_t cnt = 0;
    for (size_t i = 0; i < n; i++)
        if (m[i]) {
            sa += a[i];
            sb += b[i];
            cnt++;
        }
    double ma = sa / cnt, mb = sb / cnt, saa = 0, sbb = 0;
    for (size_t i = 0; i < n; i++)
        if (m[i]) {
            c += (a[i] - ma) * (b[i] - mb);
            saa += (a[i] - ma) * (a[i] - ma);
            sbb += (b[i] - mb) * (b[i] - mb);
        }
    return c / sqrt(saa * sbb);
}

static double cv_in(const float *a, const uint8_t *m, size_t n) {
    double s = 0, s2 = 0;
    size_t cnt = 0;
    for (size_t i = 0; i < n; i++)
        if (m[i]) {
            s += a[i];
            s2 += (double)a[i] * a[i];
            cnt++;
        }
    double mu = s / cnt;
    return sqrt(fmax(s2 / cnt - mu * mu, 0)) / mu;
}

// Applies the bias (and a little noise) to clean, corrects, checks. wm marks white matter.
static void recovery_case(const char *what, const float *clean, const uint8_t *brain, const uint8_t *wm, int nx, int ny,
                          int nz, float sp, int use_mask, double min_corr) {
    size_t n = (size_t)nx * ny * nz;
    float *truth = as_malloc(sizeof(float) * n), *v = as_malloc(sizeof(float) * n);
    float *out = as_malloc(sizeof(float) * n), *lb = as_malloc(sizeof(float) * n);
    make_bias(truth, nx, ny, nz);
    rng r;
    rng_seed(&r, 7);
    double wmmean = 0;
    size_t nwm = 0;
    for (size_t i = 0; i < n; i++)
        if (wm[i]) {
            wmmean += clean[i];
            nwm++;
        }
    wmmean /= nwm;
    for (size_t i = 0; i < n; i++)
        v[i] = brain[i] ? (float)fmax(clean[i] * exp(truth[i]) + 0.01 * wmmean * rng_normal(&r), 1e-3 * wmmean) : 0;
    n4_options o;
    n4_options_default(&o);
    float spacing[3] = {sp, sp, sp};
    double t0 = now_seconds();
    int rc = n4_correct(v, use_mask ? brain : NULL, nx, ny, nz, spacing, &o, out, lb);
    double dt = now_seconds() - t0;
    CHECK(rc == 0, "%s: n4_correct: %s", what, as_error());
    if (rc == 0) {
        double corr = correlation_in(lb, truth, brain, n);
        double cv0 = cv_in(v, wm, n), cv1 = cv_in(out, wm, n), cvc = cv_in(clean, wm, n);
        printf("%s: %dx%dx%d, %.2f s: corr(log bias) %.4f, WM CV %.4f -> %.4f (clean %.4f)\n", what, nx, ny, nz, dt, corr, cv0,
               cv1, cvc);
        CHECK(corr >= min_corr, "%s: recovered log bias correlates %.4f < %.2f", what, corr, min_corr);
        // Most of the CV the bias added is removed.
        CHECK(cv1 < cvc + 0.5 * (cv0 - cvc), "%s: WM CV %.4f -> %.4f (clean %.4f)", what, cv0, cv1, cvc);
        int ok = 1;
        for (size_t i = 0; i < n && ok; i++) ok = fabsf(out[i] - v[i] * expf(-lb[i])) <= 1e-5f * (fabsf(v[i]) + 1e-6f);
        CHECK(ok, "%s: out = img / exp(log_bias)", what);
    }
    free(truth);
    free(v);
    free(out);
    free(lb);
}

static int cmpf(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

// White matter: the brightest tissue class, taken as brain voxels within 12 % of the
// 5/6-quantile of the brain's intensities.
static void wm_of(uint8_t *wm, const float *clean, const uint8_t *brain, size_t n) {
    float *tmp = as_malloc(sizeof(float) * n);
    size_t nb = 0;
    for (size_t i = 0; i < n; i++)
        if (brain[i]) tmp[nb++] = clean[i];
    qsort(tmp, nb, sizeof(float), cmpf);
    float ref = tmp[nb - nb / 6];
    for (size_t i = 0; i < n; i++) wm[i] = brain[i] && fabsf(clean[i] - ref) < 0.12f * ref;
    free(tmp);
}

// Mean of 2x2x2 blocks (a 2 mm grid from the 1 mm templates); *pos_all: where all 8 are > 0.
static float *half_res(const volume *t, uint8_t **pos_all, int *nx, int *ny, int *nz) {
    *nx = t->nx / 2;
    *ny = t->ny / 2;
    *nz = t->nz / 2;
    size_t n = (size_t)*nx * *ny * *nz;
    float *h = as_calloc(n, sizeof(float));
    *pos_all = as_calloc(n, 1);
    for (int k = 0; k < *nz; k++)
        for (int j = 0; j < *ny; j++)
            for (int i = 0; i < *nx; i++) {
                double s = 0;
                int pos = 0;
                for (int c = 0; c < 8; c++) {
                    size_t q = (size_t)(2 * i + (c & 1)) + (size_t)t->nx * ((size_t)(2 * j + (c >> 1 & 1)) + (size_t)t->ny * (2 * k + (c >> 2)));
                    s += t->data[q];
                    pos += t->data[q] > 0;
                }
                size_t p = (size_t)i + (size_t)*nx * ((size_t)j + (size_t)*ny * k);
                h[p] = (float)(s / 8);
                (*pos_all)[p] = pos == 8;
            }
    return h;
}

#define COLIN_HEAD "/usr/share/mricron/templates/ch2.nii.gz"

// Colin27 has an intensity trend of its own that N4 removes too (about 0.04 log units SD), which
// caps the correlation with the applied field near 0.9; net of N4's field of the clean image, the
// recovery is near exact (>= min_corr). `path` at 2 mm, corrected with ch2bet's brain mask (use_mask) or with no
// mask (the Otsu foreground: the head when the skull is there); correlations inside the brain.
static void own_field_case(const char *what, const char *path, int use_mask, double min_corr) {
    volume t, tb;
    if (volume_read(&t, path) != 0 || volume_read(&tb, SYNTH_DEFAULT_TEMPLATE) != 0) {
        CHECK(0, "%s: %s (Debian package mricron-data)", what, as_error());
        return;
    }
    int nx, ny, nz, bx, by, bz;
    uint8_t *pos, *brain;
    float *clean = half_res(&t, &pos, &nx, &ny, &nz), *cb = half_res(&tb, &brain, &bx, &by, &bz);
    volume_free(&t);
    volume_free(&tb);
    free(cb);
    free(pos);
    CHECK(nx == bx && ny == by && nz == bz, "%s: same grid as ch2bet", what);
    size_t n = (size_t)nx * ny * nz;
    float *truth = as_malloc(sizeof(float) * n), *v = as_malloc(sizeof(float) * n), *out = as_malloc(sizeof(float) * n);
    float *lb0 = as_malloc(sizeof(float) * n), *lb = as_malloc(sizeof(float) * n);
    make_bias(truth, nx, ny, nz);
    for (size_t i = 0; i < n; i++) v[i] = clean[i] * expf(truth[i]);
    float sp[3] = {2, 2, 2};
    int rc = n4_correct(clean, use_mask ? brain : NULL, nx, ny, nz, sp, NULL, out, lb0);
    rc |= n4_correct(v, use_mask ? brain : NULL, nx, ny, nz, sp, NULL, out, lb);
    CHECK(rc == 0, "%s: %s", what, as_error());
    double c_raw = correlation_in(lb, truth, brain, n);
    for (size_t i = 0; i < n; i++) lb[i] -= lb0[i];
    double c_own = correlation_in(lb, truth, brain, n);
    printf("%s: corr(log bias, truth) %.4f; with the clean image's own N4 field removed %.4f\n", what, c_raw, c_own);
    CHECK(c_own >= min_corr, "%s: corr(log bias - clean image's, truth) %.4f < %.2f", what, c_own, min_corr);
    free(clean);
    free(brain);
    free(truth);
    free(v);
    free(out);
    free(lb0);
    free(lb);
}

// Colin27 (ch2bet, 1 mm, 181x217x181) as `data synth` reads it: the criterion on the
// template itself, with the brain mask and with the Otsu foreground; then own_field_case at 2 mm
// on the brain and on the head with its skull.
static void test_colin(void) {
    volume t;
    if (volume_read(&t, SYNTH_DEFAULT_TEMPLATE) != 0) {
        CHECK(0, "Colin27 template: %s (Debian package mricron-data)", as_error());
        return;
    }
    size_t n1 = volume_voxels(&t);
    uint8_t *brain1 = as_malloc(n1), *wm1 = as_malloc(n1);
    for (size_t i = 0; i < n1; i++) brain1[i] = t.data[i] > 0;
    wm_of(wm1, t.data, brain1, n1);
    recovery_case("Colin27 1 mm, brain mask", t.data, brain1, wm1, t.nx, t.ny, t.nz, 1.0f, 1, 0.9);
    recovery_case("Colin27 1 mm, Otsu foreground", t.data, brain1, wm1, t.nx, t.ny, t.nz, 1.0f, 0, 0.9);
    free(brain1);
    free(wm1);

    volume_free(&t);
    own_field_case("Colin27 2 mm, brain mask", SYNTH_DEFAULT_TEMPLATE, 1, 0.99);
    // Scalp, fat and marrow make the head's histogram less sharp than the brain's.
    own_field_case("Colin27 head (ch2, skull kept) 2 mm, Otsu foreground", COLIN_HEAD, 0, 0.97);
}

static void test_phantom(void) {
    phantom_options po = {.nx = 72, .ny = 80, .nz = 56, .lesions = 0, .noise = 0, .seed = 3};
    volume img, tissue;
    phantom_make(&img, &tissue, NULL, &po);
    size_t n = volume_voxels(&img);
    uint8_t *brain = as_malloc(n), *wm = as_malloc(n);
    for (size_t i = 0; i < n; i++) {
        brain[i] = img.data[i] > 0;
        wm[i] = tissue.data[i] == PHANTOM_WM;
    }
    recovery_case("phantom 1 mm, brain mask", img.data, brain, wm, img.nx, img.ny, img.nz, 1.0f, 1, 0.9);
    free(brain);
    free(wm);
    volume_free(&img);
    volume_free(&tissue);
}

// ---- constant image, threads, bad arguments -----------------------------------------------------------

static void test_constant(void) {
    int nx = 21, ny = 17, nz = 13;
    size_t n = (size_t)nx * ny * nz;
    float *v = as_malloc(sizeof(float) * n), *out = as_malloc(sizeof(float) * n), *lb = as_malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) v[i] = 123.5f;
    float sp[3] = {1, 1, 1};
    int rc = n4_correct(v, NULL, nx, ny, nz, sp, NULL, out, lb);
    CHECK(rc == 0, "constant image: %s", as_error());
    double maxlb = 0, maxd = 0;
    for (size_t i = 0; i < n; i++) {
        maxlb = fmax(maxlb, fabsf(lb[i]));
        maxd = fmax(maxd, fabsf(out[i] - v[i]));
    }
    CHECK(maxlb == 0 && maxd == 0, "constant image: |log bias| <= %g, |out - img| <= %g (want 0)", maxlb, maxd);
    free(v);
    free(out);
    free(lb);
}

static void test_threads_and_inplace(void) {
    phantom_options po = {.nx = 40, .ny = 44, .nz = 30, .lesions = 0, .noise = 0.02, .seed = 5};
    volume img;
    phantom_make(&img, NULL, NULL, &po);
    size_t n = volume_voxels(&img);
    float *truth = as_malloc(sizeof(float) * n);
    make_bias(truth, img.nx, img.ny, img.nz);
    for (size_t i = 0; i < n; i++) img.data[i] *= expf(truth[i]);
    float *a = as_malloc(sizeof(float) * n), *b = as_malloc(sizeof(float) * n), *la = as_malloc(sizeof(float) * n);
    float sp[3] = {1, 1, 1};
    n4_options o;
    n4_options_default(&o);
    o.shrink = 2;
    omp_set_num_threads(1);
    int rc1 = n4_correct(img.data, NULL, img.nx, img.ny, img.nz, sp, &o, a, la);
    omp_set_num_threads(2);
    memcpy(b, img.data, sizeof(float) * n);
    int rc2 = n4_correct(b, NULL, img.nx, img.ny, img.nz, sp, &o, b, NULL);  // in place, no log bias
    CHECK(rc1 == 0 && rc2 == 0, "threads: %s", as_error());
    CHECK(memcmp(a, b, sizeof(float) * n) == 0, "1 thread and 2 threads (in place) give the same bytes");
    // A first-level mesh from a knot distance (2 x 3 x 2 elements here) works as well.
    o.spline_distance = 20;
    uint8_t *brain = as_malloc(n);
    for (size_t i = 0; i < n; i++) brain[i] = img.data[i] > 0;
    int rc3 = n4_correct(img.data, brain, img.nx, img.ny, img.nz, sp, &o, a, la);
    double c = rc3 == 0 ? correlation_in(la, truth, brain, n) : 0;
    CHECK(rc3 == 0 && c >= 0.9, "spline distance 20 mm: rc %d, corr %.4f", rc3, c);
    free(brain);
    free(truth);
    free(a);
    free(b);
    free(la);
    volume_free(&img);
}

static void expect_fail(const char *what, int rc, const char *needle) {
    CHECK(rc == -1 && strstr(as_error(), needle) != NULL, "%s refused (rc %d, \"%s\", want \"%s\")", what, rc, as_error(), needle);
}

static void test_bad_args(void) {
    int nx = 8, ny = 7, nz = 6;
    size_t n = (size_t)nx * ny * nz;
    float *v = as_malloc(sizeof(float) * n), *out = as_malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) v[i] = 1 + (float)(i % 5);
    uint8_t *zero = as_calloc(n, 1);
    float sp[3] = {1, 1, 1}, badsp[3] = {1, 0, 1}, nansp[3] = {1, 1, NAN};
    n4_options o;
    expect_fail("NULL image", n4_correct(NULL, NULL, nx, ny, nz, sp, NULL, out, NULL), "missing");
    expect_fail("NULL output", n4_correct(v, NULL, nx, ny, nz, sp, NULL, NULL, NULL), "missing");
    expect_fail("zero size", n4_correct(v, NULL, 0, ny, nz, sp, NULL, out, NULL), "size");
    expect_fail("negative size", n4_correct(v, NULL, nx, -3, nz, sp, NULL, out, NULL), "size");
    expect_fail("zero spacing", n4_correct(v, NULL, nx, ny, nz, badsp, NULL, out, NULL), "voxel size");
    expect_fail("NaN spacing", n4_correct(v, NULL, nx, ny, nz, nansp, NULL, out, NULL), "voxel size");
    expect_fail("empty mask", n4_correct(v, zero, nx, ny, nz, sp, NULL, out, NULL), "empty");
    struct { const char *what, *needle; } bad[] = {{"shrink 0", "shrink"}, {"0 levels", "levels"}, {"9 levels", "levels"},
                                                   {"0 iterations", "iterations"}, {"order 0", "order"}, {"order 6", "order"},
                                                   {"1 bin", "bins"}, {"FWHM 0", "FWHM"}, {"noise -1", "noise"},
                                                   {"mesh 0", "mesh"}, {"threshold NaN", "convergence"}};
    for (int c = 0; c < (int)(sizeof bad / sizeof bad[0]); c++) {
        n4_options_default(&o);
        switch (c) {
            case 0: o.shrink = 0; break;
            case 1: o.levels = 0; break;
            case 2: o.levels = 9; break;
            case 3: o.iterations[2] = 0; break;
            case 4: o.order = 0; break;
            case 5: o.order = 6; break;
            case 6: o.bins = 1; break;
            case 7: o.fwhm = 0; break;
            case 8: o.wiener_noise = -1; break;
            case 9: o.mesh[1] = 0; break;
            case 10: o.convergence = NAN; break;
        }
        expect_fail(bad[c].what, n4_correct(v, NULL, nx, ny, nz, sp, &o, out, NULL), bad[c].needle);
    }
    v[17] = INFINITY;
    expect_fail("infinite voxel", n4_correct(v, NULL, nx, ny, nz, sp, NULL, out, NULL), "not finite");
    v[17] = NAN;
    expect_fail("NaN voxel", n4_correct(v, NULL, nx, ny, nz, sp, NULL, out, NULL), "not finite");
    // Nothing written on failure.
    for (size_t i = 0; i < n; i++) out[i] = -7;
    n4_correct(v, NULL, nx, ny, nz, sp, NULL, out, NULL);
    int untouched = 1;
    for (size_t i = 0; i < n; i++) untouched &= out[i] == -7;
    CHECK(untouched, "failed call leaves out untouched");
    free(v);
    free(out);
    free(zero);
}

int main(void) {
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("prep_n4"));
    rng r;
    rng_seed(&r, 11);
    char p[4096];
    fs_join(p, sizeof p, dir, "bspline.txt");
    FILE *meta = fopen(p, "w");
    bs_data bs[NBS];
    for (int c = 0; c < NBS; c++) {
        bs_make(&bs[c], &bs_cases[c], &r);
        bs_write(&bs[c], &bs_cases[c], c, meta);
    }
    fclose(meta);
    fs_join(p, sizeof p, dir, "sharpen.txt");
    meta = fopen(p, "w");
    float *shv[NSH];
    uint8_t *shm[NSH];
    for (int c = 0; c < NSH; c++) {
        const sh_case *s = &sh_cases[c];
        shv[c] = as_malloc(sizeof(float) * s->n);
        shm[c] = as_malloc(s->n);
        sh_make(shv[c], shm[c], s, &r);
        fprintf(meta, "%d %d %d %.17g %.17g\n", c, s->n, s->bins, s->fwhm, s->noise);
        float *m = as_malloc(sizeof(float) * s->n);
        for (int i = 0; i < s->n; i++) m[i] = shm[c][i];
        path_of(p, sizeof p, "sh", c, "v.f32");
        tu_write_f32(p, shv[c], s->n);
        path_of(p, sizeof p, "sh", c, "mask.f32");
        tu_write_f32(p, m, s->n);
        free(m);
    }
    fclose(meta);
    char args[4200];
    snprintf(args, sizeof args, "'%s'", dir);
    tu_run_python("tools/n4_ref.py", args);

    for (int c = 0; c < NBS; c++) {
        bs_check(&bs[c], &bs_cases[c], c);
        bs_free(&bs[c]);
    }
    for (int c = 0; c < NSH; c++) {
        const sh_case *s = &sh_cases[c];
        char name[128];
        float *got = as_malloc(sizeof(float) * s->n);
        n4_sharpen(got, shv[c], shm[c], s->n, s->bins, s->fwhm, s->noise);
        path_of(p, sizeof p, "sh", c, "out.f32");
        float *ref = tu_read_f32(p, s->n);
        snprintf(name, sizeof name, "sharpen %d (%d bins, FWHM %g) vs numpy", c, s->bins, s->fwhm);
        tu_allclose(name, got, ref, s->n, 1e-5, 1e-5);
        free(ref);
        float thr = n4_otsu_threshold(shv[c], s->n);
        path_of(p, sizeof p, "sh", c, "otsu.f32");
        ref = tu_read_f32(p, 1);
        snprintf(name, sizeof name, "Otsu threshold %d vs numpy", c);
        tu_allclose(name, &thr, ref, 1, 0, 1e-6);
        free(ref);
        free(got);
        free(shv[c]);
        free(shm[c]);
    }

    test_constant();
    test_bad_args();
    test_threads_and_inplace();
    test_phantom();
    test_colin();
    return tu_finish();
}
