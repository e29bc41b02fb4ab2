// The slice pipeline against the reference's own steps in nibabel + PyTorch
// (tools/slices_reference.py): canonical RAS, trilinear align_corners resize, min-max or
// brain-percentile scaling, brain masks, slice ranges, the inverse to the native grid, labels.
#include <math.h>
#include <nifti2_io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/testutil.h"
#include "data/slices.h"
#include "util/error.h"
#include "util/fs.h"

static char fxdir[1024], outdir[1024];

typedef struct tcase {
    const char *file;
    int size, z0, z1, pct;
    float plo, phi;
    const char *mask;
} tcase;

// One line of arguments for tools/slices_reference.py --batch.
static void case_args(FILE *f, const tcase *c, int idx) {
    fprintf(f, "'%s/%s' %d %d %d %s %g %g '%s/case%d'", fxdir, c->file, c->size, c->z0, c->z1,
            c->pct ? "pct" : "minmax", c->plo, c->phi, outdir, idx);
    if (c->mask) fprintf(f, " '%s/%s'", fxdir, c->mask);
    fprintf(f, "\n");
}

static void run_case(const tcase *c, int idx) {
    char img[2048], mask[2048], prefix[2048], ref[2100];
    snprintf(img, sizeof img, "%s/%s", fxdir, c->file);
    if (c->mask) snprintf(mask, sizeof mask, "%s/%s", fxdir, c->mask);
    snprintf(prefix, sizeof prefix, "%s/case%d", outdir, idx);

    slice_options o;
    slice_options_default(&o, 1);
    o.size = c->size;
    o.z_first = c->z0;
    o.z_last = c->z1;
    o.norm = c->pct ? SLICE_NORM_PERCENTILE : SLICE_NORM_MINMAX;
    o.pct_lo = c->plo;
    o.pct_hi = c->phi;
    slice_stack s;
    int rc = slices_load(&s, img, c->mask ? mask : NULL, &o);
    CHECK(rc == 0, "case %d (%s): %s", idx, c->file, as_error());
    if (rc) return;
    int S = c->size;
    size_t plane = (size_t)S * S, nimg = plane * s.n;
    char what[256];
    snprintf(ref, sizeof ref, "%s.img.f4", prefix);
    float *want = tu_read_f32(ref, nimg);
    snprintf(what, sizeof what, "case %d %s S=%d %s: model images", idx, c->file, S, c->pct ? "pct" : "minmax");
    tu_allclose(what, s.img, want, nimg, 3e-7, 3e-7);
    free(want);
    // Slice indices and channels.
    int zok = s.n > 0;
    for (int i = 0; i < s.n; i++) zok &= s.z[i] == (c->z0 < 0 ? 0 : c->z0) + i;
    CHECK(zok, "case %d: slice indices", idx);
    float *three = malloc(3 * plane * sizeof(float));
    slices_input(three, &s, s.n - 1, 3);
    CHECK(!memcmp(three, s.img + plane * (s.n - 1), plane * 4) && !memcmp(three + 2 * plane, s.img + plane * (s.n - 1), plane * 4),
          "case %d: 3-channel input repeats the slice", idx);
    free(three);

    snprintf(ref, sizeof ref, "%s.brain.f4", prefix);
    want = tu_read_f32(ref, nimg);
    float *got = malloc(nimg * sizeof(float));
    for (size_t i = 0; i < nimg; i++) got[i] = s.brain[i];
    snprintf(what, sizeof what, "case %d: brain mask", idx);
    tu_allclose(what, got, want, nimg, 0, 0);
    free(want);

    // Inverse: a map on the model grid back to the native grid (linear and nearest).
    snprintf(ref, sizeof ref, "%s.maps.f4", prefix);
    float *maps = tu_read_f32(ref, nimg);
    volume nat;
    CHECK(slices_to_native(&nat, &s, maps, 0) == 0, "case %d: slices_to_native", idx);
    size_t nv = volume_voxels(&nat);
    snprintf(ref, sizeof ref, "%s.native.f4", prefix);
    want = tu_read_f32(ref, nv);
    snprintf(what, sizeof what, "case %d: map back on the native grid (linear)", idx);
    tu_allclose(what, nat.data, want, nv, 2e-6, 2e-6);
    free(want);
    // Written with the source's geometry, read back with the source's affine.
    char outp[2100];
    snprintf(outp, sizeof outp, "%s.map.nii.gz", prefix);
    CHECK(volume_write(&nat, &nat, outp, NIFTI_TYPE_FLOAT32) == 0, "case %d: write map: %s", idx, as_error());
    volume back, src;
    CHECK(volume_read(&back, outp) == 0 && volume_read(&src, img) == 0, "case %d: read back", idx);
    CHECK(volume_same_grid(&back, &src), "case %d: written map has the source's grid and affine", idx);
    volume_free(&back);
    volume_free(&src);
    volume_free(&nat);
    CHECK(slices_to_native(&nat, &s, maps, 1) == 0, "case %d: slices_to_native nearest", idx);
    snprintf(ref, sizeof ref, "%s.nearest.f4", prefix);
    want = tu_read_f32(ref, nv);
    snprintf(what, sizeof what, "case %d: map back on the native grid (nearest)", idx);
    tu_allclose(what, nat.data, want, nv, 0, 0);
    free(want);
    volume_free(&nat);
    free(maps);

    if (c->mask) {
        volume lab;
        CHECK(volume_read(&lab, mask) == 0, "read mask");
        uint8_t *l = malloc(nimg);
        CHECK(slices_labels(l, &s, &lab) == 0, "case %d: slices_labels: %s", idx, as_error());
        for (size_t i = 0; i < nimg; i++) got[i] = l[i];
        snprintf(ref, sizeof ref, "%s.labels.f4", prefix);
        want = tu_read_f32(ref, nimg);
        snprintf(what, sizeof what, "case %d: labels on the model grid", idx);
        tu_allclose(what, got, want, nimg, 0, 0);
        free(want);
        free(l);
        volume_free(&lab);
    }
    free(got);
    slices_free(&s);
}

int main(void) {
    snprintf(fxdir, sizeof fxdir, "%s", tu_scratch_dir("slices_fixtures"));
    snprintf(outdir, sizeof outdir, "%s", tu_scratch_dir("slices_out"));
    char args[4096];
    snprintf(args, sizeof args, "'%s'", fxdir);
    tu_run_python("tools/nifti_fixtures.py", args);

    const tcase cases[] = {
        {"orient_PIR.nii.gz", 9, -1, 0, 0, 1, 99, NULL},         // upsampling, permuted axes
        {"oblique_1.nii.gz", 11, -1, 0, 0, 1, 99, NULL},         // oblique affine
        {"n2_int16_PSR.nii.gz", 10, 1, 3, 0, 1, 99, NULL},       // NIfTI-2, integer data, sub-range
        {"no_xform.nii.gz", 16, -1, 0, 0, 1, 99, NULL},          // nibabel's fallback affine
        {"large_LAS.nii.gz", 32, 10, 30, 0, 1, 99, NULL},        // downsampling
        {"large_LAS.nii.gz", 40, 5, 35, 1, 1, 99, NULL},         // percentiles, brain = image > 0
        {"large_LAS.nii.gz", 24, 0, 40, 1, 2, 98, "large_LAS_mask.nii.gz"},  // percentiles in a mask file
        {"scaled_int16.nii.gz", 7, -1, 0, 0, 1, 99, NULL},       // model size = native size
    };
    int ncases = (int)(sizeof cases / sizeof cases[0]);
    char batch[2048];
    snprintf(batch, sizeof batch, "%s/cases.txt", outdir);
    FILE *bf = fopen(batch, "w");
    for (int i = 0; i < ncases; i++) case_args(bf, &cases[i], i);
    fclose(bf);
    snprintf(args, sizeof args, "--batch '%s'", batch);
    tu_run_python("tools/slices_reference.py", args);
    for (int i = 0; i < ncases; i++) run_case(&cases[i], i);

    // Errors and options.
    char img[2048], mask[2048];
    snprintf(img, sizeof img, "%s/large_LAS.nii.gz", fxdir);
    slice_options o;
    slice_options_default(&o, 0);
    CHECK(o.size == 224 && o.z_first == 75 && o.z_last == 94 && o.norm == SLICE_NORM_MINMAX, "test defaults");
    slice_options_default(&o, 1);
    CHECK(o.z_first == 60 && o.z_last == 109, "training defaults");
    o.size = 16;
    slice_stack s;
    CHECK(slices_load(&s, img, NULL, &o) == -1 && strstr(as_error(), img) && strstr(as_error(), "60..109"),
          "range past the volume is an error naming the file: %s", as_error());
    o.clip_range = 1;
    o.z_first = 30;
    CHECK(slices_load(&s, img, NULL, &o) == 0 && s.n == 11 && s.z[10] == 40, "clip_range clips to the last slice");
    slices_free(&s);
    o.z_first = 60;
    CHECK(slices_load(&s, img, NULL, &o) == -1, "clip_range with nothing left is an error");
    o.z_first = 10;
    o.z_last = 5;
    CHECK(slices_load(&s, img, NULL, &o) == -1 && strstr(as_error(), "empty"), "empty range: %s", as_error());
    o.z_first = 0;
    o.z_last = 3;
    snprintf(mask, sizeof mask, "%s/wrong_grid_mask.nii.gz", fxdir);
    CHECK(slices_load(&s, img, mask, &o) == -1 && strstr(as_error(), img) && strstr(as_error(), mask),
          "mask on another grid names both files: %s", as_error());
    o.size = 1;
    CHECK(slices_load(&s, img, NULL, &o) == -1 && strstr(as_error(), img), "bad size: %s", as_error());
    o.size = 16;
    o.norm = SLICE_NORM_PERCENTILE;
    o.pct_lo = 50;
    o.pct_hi = 10;
    CHECK(slices_load(&s, img, NULL, &o) == -1, "bad percentiles: %s", as_error());
    o.pct_lo = 1;
    o.pct_hi = 99;
    CHECK(slices_load(&s, img, NULL, &o) == 0, "ok percentiles");
    {
        volume lab;
        volume_read(&lab, mask);
        uint8_t *l = malloc((size_t)s.n * 16 * 16);
        CHECK(slices_labels(l, &s, &lab) == -1 && strstr(as_error(), mask), "label grid mismatch: %s", as_error());
        free(l);
        volume_free(&lab);
    }
    slices_free(&s);
    CHECK(slices_load(&s, "no/such/file.nii.gz", NULL, &o) == -1 && strstr(as_error(), "no/such/file.nii.gz"),
          "missing image");
    return tu_finish();
}
