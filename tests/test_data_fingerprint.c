// The input guard's module (data/fingerprint.h) on volumes built here: measurements against a
// brute-force count and a sorted-array quantile, the fingerprint's JSON round trip, one warning
// per difference (and none for a like scan), modality tokens of file names, refused JSON, and the
// time to measure a volume of the synthetic data's size.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/fingerprint.h"
#include "helpers/testutil.h"
#include "util/error.h"
#include "util/timer.h"

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

// numpy.percentile of sorted values (linear).
static double quantile_sorted(const float *v, size_t n, double q) {
    double pos = q / 100.0 * (double)(n - 1);
    size_t i = (size_t)floor(pos);
    if (i + 1 >= n) return v[n - 1];
    return v[i] + ((double)v[i + 1] - v[i]) * (pos - (double)i);
}

// A box of "brain" with a smooth intensity ramp inside a zero background, one brain voxel on the
// border (so the border share is not trivially 0).
static void make_volume(volume *v, int nx, int ny, int nz, float scale) {
    float pix[3] = {1, 1, 1};
    volume_alloc(v, nx, ny, nz, pix);
    for (int k = 2; k < nz - 2; k++)
        for (int j = 3; j < ny - 3; j++)
            for (int i = 2; i < nx - 2; i++)
                v->data[i + (size_t)nx * (j + (size_t)ny * k)] = scale * (1.0f + (float)((i * 7 + j * 3 + k * 5) % 23));
    v->data[0] = scale * 5;
}

static int has(char lines[][FP_WARNING_LEN], int n, const char *what) {
    for (int i = 0; i < n; i++)
        if (strstr(lines[i], what)) return 1;
    return 0;
}

int main(void) {
    // ---- measurements -------------------------------------------------------------------------
    volume v;
    make_volume(&v, 17, 19, 13, 10.0f);
    scan_print p;
    scan_print_measure(&p, &v, NULL);
    size_t n = volume_voxels(&v), fg = 0, border = 0, border_fg = 0;
    float *vals = malloc(sizeof(float) * n);
    for (int k = 0; k < v.nz; k++)
        for (int j = 0; j < v.ny; j++)
            for (int i = 0; i < v.nx; i++) {
                float x = v.data[i + (size_t)v.nx * (j + (size_t)v.ny * k)];
                int edge = i == 0 || j == 0 || k == 0 || i == v.nx - 1 || j == v.ny - 1 || k == v.nz - 1;
                if (x > 0) vals[fg++] = x;
                border += edge, border_fg += edge && x > 0;
            }
    qsort(vals, fg, sizeof *vals, cmp_float);
    CHECK(p.dims[0] == 17 && p.dims[1] == 19 && p.dims[2] == 13 && !strcmp(p.orientation, "RAS"), "grid and orientation");
    CHECK(fabs(p.fg_ml - fg / 1000.0) < 1e-12 && p.brain_voxels == (int64_t)fg, "foreground %g ml", p.fg_ml);
    CHECK(fabs(p.border_share - (double)border_fg / border) < 1e-15, "border share %g", p.border_share);
    double q99 = quantile_sorted(vals, fg, 99), worst = 0;
    for (int l = 0; l < FP_LEVELS; l++) worst = fmax(worst, fabs(p.q[l] - quantile_sorted(vals, fg, 5.0 * (l + 1)) / q99));
    CHECK(worst < 1e-12 && fabs(p.raw_q[0] - quantile_sorted(vals, fg, 1)) < 1e-9 && fabs(p.raw_q[2] - q99) < 1e-9,
          "quantiles as numpy.percentile (worst %g)", worst);
    // A brain mask: quantiles over the mask only, the foreground still image > 0.
    volume mask;
    volume_alloc_like(&mask, &v);
    size_t nb = 0;
    for (size_t q = 0; q < n; q++)
        if (v.data[q] > 0 && q % 2) mask.data[q] = 1, vals[nb++] = v.data[q];
    qsort(vals, nb, sizeof *vals, cmp_float);
    scan_print pm;
    scan_print_measure(&pm, &v, &mask);
    CHECK(pm.brain_voxels == (int64_t)nb && pm.fg_ml == p.fg_ml && fabs(pm.raw_q[1] - quantile_sorted(vals, nb, 50)) < 1e-9,
          "with a mask: brain = mask, foreground = image > 0");
    volume_free(&mask);

    // ---- the fingerprint: round trip, like scans, each difference ------------------------------
    scan_print p2 = p;
    p2.fg_ml *= 1.1;
    for (int l = 0; l < FP_LEVELS; l++) p2.q[l] *= 1.02;
    fingerprint f, g;
    fingerprint_begin(&f, "t2");
    fingerprint_add(&f, &p);
    fingerprint_add(&f, &p2);
    fingerprint_end(&f);
    char json[4096], json2[4096];
    CHECK(!fingerprint_to_json(&f, json, sizeof json), "fingerprint to JSON");
    CHECK(!fingerprint_from_json(&g, json, "test") && !fingerprint_to_json(&g, json2, sizeof json2) && !strcmp(json, json2),
          "JSON round trip: %s", json);
    CHECK(g.scans == 2 && !strcmp(g.modality, "t2") && g.dims[0] == 17 && fabs(g.fg_ml_max - p2.fg_ml) < 1e-9 &&
              g.q_spread > 0,
          "fingerprint fields");
    char lines[FP_MAX_WARNINGS][FP_WARNING_LEN];
    CHECK(fingerprint_check(&g, &p, "t2", lines) == 0 && fingerprint_check(&g, &p2, NULL, lines) == 0,
          "training volumes themselves: no warning");
    scan_print d = p;
    CHECK(fingerprint_check(&g, &d, "t1", lines) == 1 && has(lines, 1, "modality t1, trained on t2"), "modality");
    CHECK(fingerprint_check(&g, &d, "", lines) == 0, "unknown modality: no test");
    d.dims[0] = 18;
    CHECK(fingerprint_check(&g, &d, "t2", lines) == 1 && has(lines, 1, "grid 18x19x13, trained on 17x19x13"), "grid");
    d = p;
    d.voxel_mm[0] = d.voxel_mm[1] = 1.1f, d.voxel_mm[2] = 1.3f;
    CHECK(fingerprint_check(&g, &d, "t2", lines) == 1 && has(lines, 1, "voxel size 1.1x1.1x1.3 mm, trained on 1x1x1 mm"),
          "voxel size: %s", lines[0]);
    d.voxel_mm[0] = d.voxel_mm[1] = 1.015f, d.voxel_mm[2] = 0.99f;
    CHECK(fingerprint_check(&g, &d, "t2", lines) == 0, "voxel size within 2 %%: no warning");
    d = p;
    d.fg_ml = 1.41 * g.fg_ml_max;
    CHECK(fingerprint_check(&g, &d, "t2", lines) == 1 && has(lines, 1, "head rather than a brain"), "head: volume");
    d = p;
    d.border_share = 0.06;
    CHECK(fingerprint_check(&g, &d, "t2", lines) == 1 && has(lines, 1, "head rather than a brain"), "head: border");
    d = p;
    for (int l = 0; l < FP_LEVELS; l++) d.q[l] = fmin(1, p.q[l] + 0.1);
    CHECK(fingerprint_check(&g, &d, "t2", lines) == 1 && has(lines, 1, "brain intensities unlike training's"),
          "intensities");
    d.dims[0] = 18, d.fg_ml *= 3;
    CHECK(fingerprint_check(&g, &d, "t1", lines) == 4, "four differences, four lines");
    fingerprint_free(&f);

    // ---- refused JSON ---------------------------------------------------------------------------
    CHECK(fingerprint_from_json(&g, "{\"version\":2}", "ckpt") < 0 && strstr(as_error(), "ckpt"),
          "unknown version refused naming the file: %s", as_error());
    CHECK(fingerprint_from_json(&g, "{\"version\":1,\"scans\":1}", "ckpt") < 0, "missing fields refused");
    CHECK(fingerprint_from_json(&g, "{\"version\":1,", "ckpt") < 0, "broken JSON refused");

    // ---- modality tokens ----------------------------------------------------------------------
    static const char *const names[][2] = {
        {"/d/IXI012-HH-1211-T2.nii.gz", "t2"}, {"sub-01_T1w.nii.gz", "t1"}, {"x/BraTS_001_flair.nii", "flair"},
        {"p_t1ce.nii.gz", "t1ce"},           {"scan_b.nii", ""},          {"t2star_map.nii.gz", ""},
        {"t1/brain.nii.gz", ""},             {"T2W.nii.gz", "t2"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char m[8];
        fingerprint_modality_of_name(names[i][0], m);
        CHECK(!strcmp(m, names[i][1]), "modality of %s: '%s', expected '%s'", names[i][0], m, names[i][1]);
    }
    volume_free(&v);
    free(vals);

    // ---- the cost, at the synthetic data's size (240 x 240 x 155, a ~1.7 l brain) -------------
    make_volume(&v, 240, 240, 155, 1.0f);
    double t0 = now_seconds();
    scan_print_measure(&p, &v, NULL);
    printf("scan_print_measure: %.3f s for a 240x240x155 volume with %lld brain voxels\n", now_seconds() - t0,
           (long long)p.brain_voxels);
    volume_free(&v);
    return tu_finish();
}
