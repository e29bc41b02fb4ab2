// Regression tests for what fuzzing the readers found (fuzz/, `make fuzz`), each reproducing
// the input that failed:
//   fuzz_nifti        a NIfTI-2 file whose 64-bit header fields do not fit NIfTI-1: reading it
//                     worked, writing a result on its grid failed ("disk full?") because
//                     nifticlib fell back to a NIfTI-2 header mid-write; NIfTI-2 files were also
//                     taken for NIfTI-1, so a vox_offset inside the 540-byte header passed;
//                     a double pixdim/affine/quaternion entry (1e300, 1e-300) became inf or 0
//                     once written;
//                     a 1-D file's result was written with pixdims other than its qform's.
//   fuzz_manifest     dataset_write_manifest wrote a subject id ending in '\r' (or a space)
//                     unquoted, so the manifest read back with a different id.
//   fuzz_safetensors  a tensor name with a newline made a two-line error message; an integer
//                     past 2^64 in the JSON wrapped around to a small valid size.
//   fuzz_options      a --config number out of int range ("img_size=1e300") was converted to
//                     int (undefined behaviour).
//   (review)          a checkpoint whose pos_embed claims 2^62 tokens took 2^31 loop steps.
#include <math.h>
#include <nifti1.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/testutil.h"
#include "data/dataset.h"
#include "data/volume.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/swinmae/config.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/timer.h"

static char dir[1024];

static void write_raw_st(const char *path, const char *json, size_t data_bytes) {
    FILE *f = fopen(path, "wb");
    uint64_t n = strlen(json);
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)(n >> (8 * i));
    fwrite(len, 1, 8, f);
    fwrite(json, 1, n, f);
    for (size_t i = 0; i < data_bytes; i++) fputc(0, f);
    fclose(f);
}

static int one_line_naming(const char *path) {
    const char *e = as_error();
    return e[0] && !strchr(e, '\n') && !strchr(e, '\r') && strstr(e, path);
}

static void test_nifti2_fields(void) {
    char src[1200], ref[1200], out[1200];
    snprintf(src, sizeof src, "%s/n2_slice64.nii", dir);
    volume v;
    int rc = volume_read(&v, src);
    CHECK(rc == 0, "NIfTI-2 with 64-bit slice_start reads: %s", as_error());
    if (rc) return;
    snprintf(ref, sizeof ref, "%s/n2_slice64.data.f4", dir);
    float *want = tu_read_f32(ref, volume_voxels(&v));
    tu_allclose("n2_slice64 data vs nibabel", v.data, want, volume_voxels(&v), 0, 0);
    snprintf(ref, sizeof ref, "%s/n2_slice64.affine.f8", dir);
    double aff[16];
    FILE *f = fopen(ref, "rb");
    CHECK(f && fread(aff, sizeof(double), 16, f) == 16, "nibabel affine");
    if (f) fclose(f);
    double worst = 0;
    for (int i = 0; i < 16; i++) worst = fmax(worst, fabs(v.affine[i / 4][i % 4] - aff[i]));
    CHECK(worst < 1e-5, "affine vs nibabel, max diff %g", worst);
    const char *names[2] = {"back.nii", "back.nii.gz"};
    for (int k = 0; k < 2; k++) {
        snprintf(out, sizeof out, "%s/%s", dir, names[k]);
        rc = volume_write(&v, &v, out, NIFTI_TYPE_FLOAT32);
        CHECK(rc == 0, "%s: a result on a NIfTI-2 grid can be written: %s", names[k], as_error());
        volume w;
        if (rc == 0 && volume_read(&w, out) == 0) {
            CHECK(volume_same_grid(&v, &w), "%s: same grid after the round trip", names[k]);
            tu_allclose(names[k], w.data, v.data, volume_voxels(&v), 0, 0);
            volume_free(&w);
        } else {
            CHECK(0, "%s: reads back: %s", names[k], as_error());
        }
    }
    free(want);
    volume_free(&v);

    snprintf(src, sizeof src, "%s/n2_offset_in_header.nii", dir);
    rc = volume_read(&v, src);
    CHECK(rc == -1 && one_line_naming(src) && strstr(as_error(), "vox_offset"),
          "NIfTI-2 vox_offset inside the header refused: '%s'", as_error());

    const char *huge[4][2] = {{"n2_pixdim_1e300.nii", "voxel size"},
                              {"n2_srow_1e300.nii", "absurd"},
                              {"n2_pixdim_1e-300.nii", "voxel size"},
                              {"n2_quatern_1e135.nii", "quaternion"}};
    for (int k = 0; k < 4; k++) {
        snprintf(src, sizeof src, "%s/%s", dir, huge[k][0]);
        rc = volume_read(&v, src);
        CHECK(rc == -1 && one_line_naming(src) && strstr(as_error(), huge[k][1]), "%s refused: '%s'", huge[k][0],
              as_error());
        if (rc == 0) volume_free(&v);
    }

    // 1-D file whose qform uses pixdim[2..3]: the affine read, and the one of a written result.
    snprintf(src, sizeof src, "%s/n1_1d_qform.nii", dir);
    rc = volume_read(&v, src);
    CHECK(rc == 0, "1-D NIfTI reads: %s", as_error());
    if (rc == 0) {
        snprintf(ref, sizeof ref, "%s/n1_1d_qform.affine.f8", dir);
        f = fopen(ref, "rb");
        CHECK(f && fread(aff, sizeof(double), 16, f) == 16, "nibabel qform");
        if (f) fclose(f);
        worst = 0;
        for (int i = 0; i < 16; i++) worst = fmax(worst, fabs(v.affine[i / 4][i % 4] - aff[i]));
        CHECK(worst < 1e-5, "1-D qform affine vs nibabel, max diff %g", worst);
        snprintf(out, sizeof out, "%s/back1d.nii.gz", dir);
        volume w;
        memset(&w, 0, sizeof w);
        CHECK(volume_write(&v, &v, out, NIFTI_TYPE_FLOAT32) == 0 && volume_read(&w, out) == 0 && volume_same_grid(&v, &w),
              "a result written on the 1-D grid keeps its affine: %s", as_error());
        volume_free(&w);
        volume_free(&v);
    }

    // A grid NIfTI-1 cannot describe: a clear error, and no file left behind.
    float pd[3] = {1, 1, 1};
    volume_alloc(&v, 40000, 2, 1, pd);
    snprintf(out, sizeof out, "%s/wide.nii", dir);
    rc = volume_write(&v, &v, out, NIFTI_TYPE_FLOAT32);
    CHECK(rc == -1 && one_line_naming(out) && strstr(as_error(), "40000") && !fs_exists(out),
          "40000-voxel axis refused cleanly: '%s'", as_error());
    volume_free(&v);
}

static void test_safetensors(void) {
    char path[1200];
    st_file f;
    // 18446744073709551620 = 2^64 + 4: used to wrap to 4 and open as a 4-element tensor.
    snprintf(path, sizeof path, "%s/wrap.safetensors", dir);
    write_raw_st(path, "{\"a\":{\"dtype\":\"U8\",\"shape\":[18446744073709551620],\"data_offsets\":[0,4]}}", 4);
    int rc = st_open(&f, path);
    CHECK(rc == -1 && one_line_naming(path) && strstr(as_error(), "too large"), "2^64+4 refused: '%s'", as_error());
    if (rc == 0) st_close(&f);
    snprintf(path, sizeof path, "%s/newline.safetensors", dir);
    write_raw_st(path, "{\"a\\nb\":{\"dtype\":\"X\\r\\n1\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
    rc = st_open(&f, path);
    CHECK(rc == -1 && one_line_naming(path), "control characters from the file stay out of the message: '%s'",
          as_error());
    if (rc == 0) st_close(&f);

    // pos_embed claiming 2^62 - 1 tokens (no data: the last dimension is 0).
    snprintf(path, sizeof path, "%s/huge_grid.safetensors", dir);
    write_raw_st(path,
                 "{\"patch_embed.proj.weight\":{\"dtype\":\"F32\",\"shape\":[4,1,1,1],\"data_offsets\":[0,16]},"
                 "\"pos_embed\":{\"dtype\":\"U8\",\"shape\":[1,4611686018427387903,0],\"data_offsets\":[16,16]}}",
                 16);
    double t0 = now_seconds();
    swinmae_config cfg;
    rc = checkpoint_read_config(path, &cfg);
    double dt = now_seconds() - t0;
    CHECK(rc == -1 && one_line_naming(path) && strstr(as_error(), "square"), "huge pos_embed refused: '%s'",
          as_error());
    CHECK(dt < 0.25, "and quickly (%.3f s)", dt);
}

static void test_config_numbers(void) {
    const char *bad[] = {"img_size=1e300", "embed_dim=-1e20", "window=nan", "depths=[2,2,2,4e9]", "mlp_ratio=inf"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        swinmae_config c;
        swinmae_config_default(&c);
        int rc = swinmae_config_parse(&c, bad[i], "--config");
        CHECK(rc == -1 && strstr(as_error(), "--config"), "%s refused: '%s'", bad[i], as_error());
    }
}

static void test_manifest_round_trip(void) {
    char csv[1200], back[1200], img[1200];
    snprintf(img, sizeof img, "%s/a.nii.gz", dir);
    fs_write_all(img, "", 0);
    snprintf(csv, sizeof csv, "%s/m.csv", dir);
    const char *text = "subject,image,split\n"
                       "\"s1 \",a.nii.gz,\" train\"\n"  // quoted: spaces are part of the value
                       "\rs2\r,a.nii.gz,x\r\n"            // a CR inside an unquoted id
                       "\"s\"\"3\",a.nii.gz,\"a,b\"\n";
    fs_write_all(csv, text, strlen(text));
    dataset d, e;
    int rc = dataset_open(&d, csv, "t2");
    CHECK(rc == 0 && d.n == 3, "manifest with quoted spaces and CRs: %s", as_error());
    if (rc) return;
    const char *want_id[3] = {"\rs2", "s\"3", "s1 "}, *want_split[3] = {"x", "a,b", " train"};
    for (int i = 0; i < 3; i++)
        CHECK(!strcmp(d.subjects[i].id, want_id[i]) && !strcmp(d.subjects[i].split, want_split[i]),
              "subject %d: id and split as written", i);
    snprintf(back, sizeof back, "%s/back.csv", dir);
    CHECK(dataset_write_manifest(&d, back) == 0, "write manifest");
    rc = dataset_open(&e, back, "t2");
    CHECK(rc == 0 && e.n == 3, "written manifest reads back: %s", as_error());
    for (int i = 0; rc == 0 && i < 3; i++)
        CHECK(!strcmp(e.subjects[i].id, d.subjects[i].id) && !strcmp(e.subjects[i].split, d.subjects[i].split),
              "subject %d survives the round trip ('%s')", i, e.subjects[i].id);
    if (rc == 0) dataset_free(&e);
    dataset_free(&d);
}

int main(void) {
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("harden_readers"));
    char args[1100];
    snprintf(args, sizeof args, "'%s'", dir);
    tu_run_python("tools/harden_fixtures.py", args);
    test_nifti2_fields();
    test_safetensors();
    test_config_numbers();
    test_manifest_round_trip();
    return tu_finish();
}
