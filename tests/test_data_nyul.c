// Nyúl intensity standardisation (data/nyul.h) against tools/nyul_standardise.py's NumPy
// functions (tools/nyul_reference.py writes the fixtures and the answers): the standard of three
// training scans, two scans mapped onto it (one with a mask file), and the slice pipeline with a
// standard equal to the pipeline run on NumPy's standardised volume. Then the JSON and the model
// checkpoint carrying the standard, and the errors.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/nyul.h"
#include "data/slices.h"
#include "data/volume.h"
#include "helpers/testutil.h"
#include "model/model.h"
#include "util/error.h"

static char dir[2048];

static void path(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

static void read_vol(volume *v, const char *name) {
    char p[2300];
    path(p, sizeof p, name);
    if (volume_read(v, p)) {
        fprintf(stderr, "%s\n", as_error());
        exit(1);
    }
}

int main(void) {
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("nyul"));
    char args[2200], p[2300], q[2300];
    snprintf(args, sizeof args, "'%s'", dir);
    tu_run_python("tools/nyul_reference.py", args);

    // The standard of the training scans.
    nyul_standard std;
    nyul_begin(&std);
    for (int i = 0; i < 3; i++) {
        char name[64];
        snprintf(name, sizeof name, "train_%d.nii.gz", i);
        volume v;
        read_vol(&v, name);
        double lm[NYUL_N];
        CHECK(nyul_landmarks(lm, v.data, NULL, volume_voxels(&v)) > 0, "train %d has a brain", i);
        nyul_add(&std, lm);
        volume_free(&v);
    }
    CHECK(nyul_end(&std, "train") == 0 && std.on == 1 && std.scans == 3, "nyul_end: %s", as_error());
    float got[NYUL_N];
    for (int l = 0; l < NYUL_N; l++) got[l] = (float)std.landmarks[l];
    path(p, sizeof p, "standard.f4");
    float *want = tu_read_f32(p, NYUL_N);
    tu_allclose("standard landmarks", got, want, NYUL_N, 1e-3, 1e-5);
    free(want);

    // Two scans mapped onto it: image > 0, then a mask file.
    for (int i = 0; i < 2; i++) {
        char name[64];
        snprintf(name, sizeof name, "test_%d.nii.gz", i);
        volume v, m = {0};
        read_vol(&v, name);
        if (i == 1) read_vol(&m, "mask_1.nii.gz");
        size_t n = volume_voxels(&v);
        nyul_apply(v.data, i == 1 ? m.data : NULL, n, &std);
        snprintf(name, sizeof name, "test_%d.std.f4", i);
        path(p, sizeof p, name);
        want = tu_read_f32(p, n);
        snprintf(name, sizeof name, "scan %d standardised%s", i, i == 1 ? " (mask file)" : "");
        tu_allclose(name, v.data, want, n, 2e-3, 1e-5);
        free(want);
        // Session 13's standards (no "tails" in their JSON) keep their clamped map.
        volume_free(&v);
        read_vol(&v, i == 1 ? "test_1.nii.gz" : "test_0.nii.gz");
        nyul_standard old = std;
        old.clamped = 1;
        nyul_apply(v.data, i == 1 ? m.data : NULL, n, &old);
        snprintf(name, sizeof name, "test_%d.clamp.f4", i);
        path(p, sizeof p, name);
        want = tu_read_f32(p, n);
        snprintf(name, sizeof name, "scan %d, clamped tails", i);
        tu_allclose(name, v.data, want, n, 2e-3, 1e-5);
        free(want);
        // The slice pipeline with the standard = the pipeline on NumPy's standardised volume.
        slice_options so;
        slice_options_default(&so, 0);
        so.size = 16, so.z_first = -1;
        slice_stack a, b;
        snprintf(name, sizeof name, "test_%d.nii.gz", i);
        path(p, sizeof p, name);
        path(q, sizeof q, "mask_1.nii.gz");
        so.nyul = std;
        CHECK(slices_load(&a, p, i == 1 ? q : NULL, &so) == 0, "slices with the standard: %s", as_error());
        snprintf(name, sizeof name, "test_%d.std.nii.gz", i);
        path(p, sizeof p, name);
        so.nyul.on = 0;
        CHECK(slices_load(&b, p, i == 1 ? q : NULL, &so) == 0, "slices of NumPy's volume: %s", as_error());
        CHECK(a.n == b.n && a.size == b.size && b.lo == 0, "same stacks");
        // b went through the per-volume min-max (background 0 .. its max); a through the
        // standard's fixed scale, 0 .. NYUL_HI.
        for (size_t k = 0; k < (size_t)b.n * b.size * b.size; k++) b.img[k] *= b.hi / (float)NYUL_HI;
        CHECK(b.hi > (float)NYUL_HI, "scan %d: the standard's top extended past NYUL_HI (%g)", i, b.hi);
        snprintf(name, sizeof name, "scan %d: slices through the standard", i);
        tu_allclose(name, a.img, b.img, (size_t)a.n * a.size * a.size, 1e-5, 1e-5);
        CHECK(!memcmp(a.brain, b.brain, (size_t)a.n * a.size * a.size), "scan %d: same brain", i);
        slices_free(&a), slices_free(&b);
        volume_free(&v);
        if (i == 1) volume_free(&m);
    }

    // A flat brain (p1 = p99) goes to NYUL_LO; the outside to 0.
    float flat[6] = {0, 5, 5, 5, 0, 5};
    nyul_apply(flat, NULL, 6, &std);
    CHECK(flat[0] == 0 && flat[1] == (float)NYUL_LO && flat[5] == (float)NYUL_LO, "flat brain to NYUL_LO");

    // A lesion darker than the brain's p1 keeps its contrast: below NYUL_LO, in order, and at
    // least NYUL_FLOOR; a bright one passes NYUL_HI. Brain 100..1099, lesions at 10, 40, 70 and
    // 1400, 2000 (7 of 1005 voxels: p1 and p99 stay in the tissue).
    enum { NT = 1000, NL = 5 };
    float *dark = as_malloc(sizeof(float) * (NT + NL));
    for (int k = 0; k < NT; k++) dark[k] = 100.0f + (float)k;
    const float lesion[NL] = {10, 40, 70, 1400, 2000};
    for (int k = 0; k < NL; k++) dark[NT + k] = lesion[k];
    nyul_apply(dark, NULL, NT + NL, &std);
    const float *o = dark + NT;
    CHECK(o[0] >= (float)NYUL_FLOOR && o[0] <= o[1] && o[1] < o[2] && o[2] < (float)NYUL_LO && o[2] < dark[0],
          "dark lesion keeps its order below NYUL_LO: %g %g %g (p1-ish tissue %g)", o[0], o[1], o[2], dark[0]);
    CHECK(o[3] > (float)NYUL_HI && o[4] > o[3], "bright lesion past NYUL_HI: %g %g", o[3], o[4]);
    free(dark);

    // The JSON, and what it refuses.
    char json[1024], back[1024];
    nyul_standard r;
    CHECK(nyul_to_json(&std, json, sizeof json) == 0 && nyul_from_json(&r, json, "json") == 0 && r.on == 1 &&
              r.scans == 3 && !memcmp(r.landmarks, std.landmarks, sizeof r.landmarks),
          "JSON round trip: %s", json);
    CHECK(nyul_to_json(&r, back, sizeof back) == 0 && !strcmp(json, back), "JSON stable");
    CHECK(r.clamped == 0 && strstr(json, "\"tails\":\"extend\""), "a new standard extends its tails: %s", json);
    const char *s13 =
        "{\"method\":\"nyul\",\"scans\":3,\"percentiles\":[1,10,20,30,40,50,60,70,80,90,99],"
        "\"landmarks\":[50,60,70,80,90,100,110,120,130,140,1000]}";
    CHECK(nyul_from_json(&r, s13, "json") == 0 && r.clamped == 1 && nyul_to_json(&r, back, sizeof back) == 0 &&
              strstr(back, "\"tails\":\"clamp\""),
          "session 13's JSON (no tails) clamps: %s", back);
    const char *bad[] = {
        "{\"method\":\"zscore\",\"scans\":3,\"percentiles\":[1,10,20,30,40,50,60,70,80,90,99],"
        "\"landmarks\":[50,60,70,80,90,100,110,120,130,140,1000]}",
        "{\"method\":\"nyul\",\"scans\":3,\"percentiles\":[1,10,20,30,40,50,60,70,80,90,99],"
        "\"landmarks\":[50,60,70,80,90,100,100,120,130,140,1000]}",
        "{\"method\":\"nyul\",\"scans\":3,\"percentiles\":[2,10,20,30,40,50,60,70,80,90,98],"
        "\"landmarks\":[50,60,70,80,90,100,110,120,130,140,1000]}",
        "{\"method\":\"nyul\",\"scans\":3,\"percentiles\":[1,10,20,30,40,50,60,70,80,90,99],\"landmarks\":[50,1000]}",
        "{\"method\":\"nyul\",\"scans\":3,\"percentiles\":[1,10,20,30,40,50,60,70,80,90,99],"
        "\"landmarks\":[50,60,70,80,90,100,110,120,130,140,1000],\"tails\":\"mirror\"}",
        "{\"method\":\"nyul\",\"scans\":3,\"percentiles\":[1,10,20,30,40,50,60,70,80,90,99],"
        "\"landmarks\":[50,60,70,80,90,100,110,120,130,140,1000],\"tails\":1}",
    };
    for (int i = 0; i < 6; i++)
        CHECK(nyul_from_json(&r, bad[i], "ckpt.safetensors: metadata") == -1 && strstr(as_error(), "ckpt.safetensors"),
              "bad standard %d refused: %s", i, as_error());
    nyul_begin(&r);
    CHECK(nyul_end(&r, "DATA") == -1 && strstr(as_error(), "DATA"), "no scan: %s", as_error());
    double flat_lm[NYUL_N];
    for (int l = 0; l < NYUL_N; l++) flat_lm[l] = 5;
    nyul_add(&r, flat_lm);
    CHECK(nyul_end(&r, "DATA") == -1 && strstr(as_error(), "flat"), "flat training scan: %s", as_error());

    // The training setting's words.
    int setting = -1;
    CHECK(nyul_parse_setting("nyul", &setting) == 0 && setting == 1, "nyul -> 1");
    CHECK(nyul_parse_setting("minmax", &setting) == 0 && setting == 0, "minmax -> 0");
    CHECK(nyul_parse_setting("zscore", &setting) == -1 && setting == 0 && strstr(as_error(), "'zscore'") &&
              strstr(as_error(), "minmax or nyul"),
          "zscore refused, setting untouched: %s", as_error());

    // The standard travels with the model's weights.
    model m, l;
    const char *cfg = "img_size=64,patch_size=4,in_chans=1,embed_dim=8,num_heads=1/1/2/2,window=2";
    char js[2048];
    CHECK(model_method_get("swinmae", "test")->config_parse(NULL, cfg, js, sizeof js, NULL, "test") == 0, "config: %s",
          as_error());
    CHECK(model_create(&m, "swinmae", js, 1, 0, "test") == 0, "model_create: %s", as_error());
    path(p, sizeof p, "plain.safetensors");
    path(q, sizeof q, "std.safetensors");
    CHECK(model_save(&m, p, NULL, 0) == 0, "save without a standard");
    m.intensity = std;
    CHECK(model_save(&m, q, NULL, 0) == 0, "save with a standard: %s", as_error());
    CHECK(model_load(&l, p, 1) == 0 && l.intensity.on == 0, "a checkpoint without a standard loads without one");
    model_free(&l);
    CHECK(model_load(&l, q, 1) == 0 && l.intensity.on == 1 && l.intensity.scans == 3, "load: %s", as_error());
    for (int k = 0; k < NYUL_N; k++)
        CHECK(fabs(l.intensity.landmarks[k] - std.landmarks[k]) <= 1e-9 * std.landmarks[k], "landmark %d kept", k);
    slice_options so;
    slice_options_default(&so, 0);
    model_slice_options(&l, &so);
    CHECK(so.size == 64 && so.nyul.on == 1, "model_slice_options sets the size and the standard");
    model_free(&l);
    model_free(&m);
    return tu_finish();
}
