// NIfTI reading (every datatype, scaling, NIfTI-1/2, gzip, byte order, orientations) against
// nibabel, and writing checked by nibabel reading our files back (tools/nifti_fixtures.py,
// tools/nifti_check_written.py).
#include <math.h>
#include <nifti2_io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/testutil.h"
#include "util/error.h"
#include "util/fs.h"
#include "data/reorient.h"
#include "data/volume.h"

typedef struct fixture {
    char name[256];
    int n[3];
    double affine[4][4];
    char code[4];
    int rn[3];
    double raffine[4][4];
} fixture;

static int read_manifest(const char *dir, fixture **out) {
    char path[4096];
    fs_join(path, sizeof path, dir, "manifest.txt");
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "FAIL: no %s\n", path);
        exit(1);
    }
    fixture *fx = NULL;
    int n = 0;
    fixture t;
    for (;;) {
        if (fscanf(f, "%255s %d %d %d", t.name, &t.n[0], &t.n[1], &t.n[2]) != 4) break;
        for (int i = 0; i < 16; i++)
            if (fscanf(f, "%lf", &t.affine[i / 4][i % 4]) != 1) exit(1);
        if (fscanf(f, "%3s %d %d %d", t.code, &t.rn[0], &t.rn[1], &t.rn[2]) != 4) exit(1);
        for (int i = 0; i < 16; i++)
            if (fscanf(f, "%lf", &t.raffine[i / 4][i % 4]) != 1) exit(1);
        fx = realloc(fx, (n + 1) * sizeof *fx);
        fx[n++] = t;
    }
    fclose(f);
    *out = fx;
    return n;
}

static double affine_maxdiff(const double a[4][4], const double b[4][4]) {
    double m = 0;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) m = fmax(m, fabs(a[i][j] - b[i][j]));
    return m;
}

int main(void) {
    char fxdir[1024], outdir[1024], args[9000], path[4096];
    snprintf(fxdir, sizeof fxdir, "%s", tu_scratch_dir("volume_fixtures"));
    snprintf(outdir, sizeof outdir, "%s", tu_scratch_dir("volume_out"));
    snprintf(args, sizeof args, "'%s'", fxdir);
    tu_run_python("tools/nifti_fixtures.py", args);
    fixture *fx;
    int nfx = read_manifest(fxdir, &fx);
    CHECK(nfx >= 20, "manifest has %d fixtures", nfx);

    for (int c = 0; c < nfx; c++) {
        const fixture *t = &fx[c];
        fs_join(path, sizeof path, fxdir, t->name);
        volume v;
        int rc = volume_read(&v, path);
        CHECK(rc == 0, "read %s: %s", t->name, as_error());
        if (rc) continue;
        CHECK(v.nx == t->n[0] && v.ny == t->n[1] && v.nz == t->n[2], "%s: shape %dx%dx%d", t->name, v.nx, v.ny, v.nz);
        size_t n = (size_t)t->n[0] * t->n[1] * t->n[2];
        char ref[4400];
        snprintf(ref, sizeof ref, "%s.data.f4", path);
        float *want = tu_read_f32(ref, n);
        char what[512];
        snprintf(what, sizeof what, "%s data", t->name);
        // nibabel: raw*slope+inter in float64, then float32, like us; allow 1 ulp.
        tu_allclose(what, v.data, want, n, 0, 2e-7);
        double d = affine_maxdiff(v.affine, t->affine);
        CHECK(d < 1e-5, "%s: affine differs from nibabel's by %g", t->name, d);
        free(want);

        // Reorientation: as_closest_canonical's data and affine, aff2axcodes, and the inverse.
        char code[4];
        orientation_codes(v.affine, code);
        CHECK(!strcmp(code, t->code), "%s: orientation %s, nibabel says %s", t->name, code, t->code);
        volume ras;
        orientation o;
        volume_to_ras(&ras, &v, &o);
        CHECK(ras.nx == t->rn[0] && ras.ny == t->rn[1] && ras.nz == t->rn[2], "%s: RAS shape %dx%dx%d", t->name, ras.nx,
              ras.ny, ras.nz);
        snprintf(ref, sizeof ref, "%s.ras.f4", path);
        want = tu_read_f32(ref, n);
        snprintf(what, sizeof what, "%s RAS data", t->name);
        tu_allclose(what, ras.data, want, n, 0, 2e-7);
        free(want);
        d = affine_maxdiff(ras.affine, t->raffine);
        CHECK(d < 1e-5, "%s: RAS affine differs from nibabel's by %g", t->name, d);
        float *back = malloc(n * sizeof(float));
        int nn[3] = {v.nx, v.ny, v.nz};
        ras_to_native(back, ras.data, nn, &o);
        CHECK(!memcmp(back, v.data, n * sizeof(float)), "%s: ras_to_native inverts volume_to_ras", t->name);
        free(back);
        volume_free(&ras);

        // Write float32 .nii.gz and uint8 .nii with the source geometry; nibabel checks them.
        char out[4400];
        snprintf(out, sizeof out, "%s/%s.f32.nii.gz", outdir, t->name);
        CHECK(volume_write(&v, &v, out, NIFTI_TYPE_FLOAT32) == 0, "write %s: %s", out, as_error());
        snprintf(out, sizeof out, "%s/%s.u8.nii", outdir, t->name);
        CHECK(volume_write(&v, NULL, out, NIFTI_TYPE_UINT8) == 0, "write %s: %s", out, as_error());
        volume_free(&v);
    }
    snprintf(args, sizeof args, "'%s' '%s'", fxdir, outdir);
    tu_run_python("tools/nifti_check_written.py", args);
    CHECK(1, "nibabel accepted every written file");

    // No temp files left behind by the writes.
    snprintf(args, sizeof args, "ls -a '%s' | grep -q tmp-", outdir);
    CHECK(system(args) != 0, "no temp files remain in %s", outdir);

    // A synthetic volume (no source header) round-trips through our own reader.
    {
        volume s, r;
        float pd[3] = {1.0f, 2.0f, 0.5f};
        volume_alloc(&s, 4, 3, 2, pd);
        for (size_t i = 0; i < volume_voxels(&s); i++) s.data[i] = (float)i * 0.25f - 1.0f;
        s.affine[0][3] = -5;
        s.affine[1][3] = 7;
        snprintf(path, sizeof path, "%s/synthetic.nii.gz", outdir);
        CHECK(volume_write(&s, &s, path, NIFTI_TYPE_FLOAT32) == 0, "write synthetic: %s", as_error());
        CHECK(volume_read(&r, path) == 0, "read synthetic back: %s", as_error());
        tu_allclose("synthetic round trip", r.data, s.data, volume_voxels(&s), 0, 0);
        CHECK(affine_maxdiff(r.affine, s.affine) < 1e-6, "synthetic affine round trip");
        CHECK(r.pixdim[1] == 2.0f, "synthetic pixdim");
        volume like;
        volume_alloc_like(&like, &r);
        CHECK(like.nx == 4 && like.ny == 3 && like.nz == 2 && like.data[5] == 0 && like.header, "alloc_like");
        CHECK(affine_maxdiff(like.affine, r.affine) == 0, "alloc_like keeps the affine");
        // Grid mismatch is an error that names the output and writes nothing.
        volume other;
        volume_alloc(&other, 5, 3, 2, NULL);
        snprintf(path, sizeof path, "%s/mismatch.nii", outdir);
        CHECK(volume_write(&other, &r, path, NIFTI_TYPE_FLOAT32) == -1 && strstr(as_error(), path) && !fs_exists(path),
              "grid mismatch refused: %s", as_error());
        snprintf(path, sizeof path, "%s/no/such/dir/x.nii", outdir);
        CHECK(volume_write(&r, &r, path, NIFTI_TYPE_FLOAT32) == -1 && strstr(as_error(), path),
              "unwritable folder: %s", as_error());
        volume_free(&other);
        volume_free(&like);
        volume_free(&r);
        volume_free(&s);
    }
    free(fx);
    return tu_finish();
}
