// The anomaly map through the real Swin MAE (src/detect/model_adapter.c) on a tiny config with
// random weights saved as a checkpoint and loaded back: the map lies in [0,1] with no NaN, is
// empty without brain, is deterministic and independent of the batch size, and one window equals
// a direct computation through swinmae_forward; the composite reconstruction holds the
// predictions of the masked windows; mismatched configs are refused.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/anomaly_map.h"
#include "detect/model_adapter.h"
#include "helpers/testutil.h"
#include "model/checkpoint.h"
#include "model/model.h"
#include "model/swinmae/swin_mae.h"
#include "util/error.h"
#include "util/rng.h"

enum { S = 64 };
static const char *TINY = "img_size=64,patch_size=4,in_chans=3,embed_dim=16,depths=1/1/1/1,num_heads=1/1/2/2,window=2,"
                          "mlp_ratio=2";

// A textured disk ("brain") on a black background.
static void make_slice(float *img, uint8_t *brain) {
    rng r;
    rng_seed(&r, 7);
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            float dx = x - 30.5f, dy = y - 33.5f;
            int in = dx * dx + dy * dy < 24.0f * 24.0f;
            brain[y * S + x] = (uint8_t)in;
            img[y * S + x] = in ? 0.4f + 0.3f * sinf(0.3f * x) * cosf(0.2f * y) + 0.1f * (float)rng_uniform(&r) : 0.0f;
        }
}

static void load_model(model *m, const char *ckpt, int max_batch) {
    CHECK(model_load(m, ckpt, max_batch) == 0, "load: %s", as_error());
    CHECK(!strcmp(m->method->name, "swinmae"), "an untagged checkpoint is a Swin MAE");
}

int main(void) {
    const char *dir = tu_scratch_dir("detect_model");
    char ckpt[1200];
    snprintf(ckpt, sizeof ckpt, "%s/tiny.safetensors", dir);
    {
        swinmae_config c;
        swinmae_config_default(&c);
        CHECK(swinmae_config_parse(&c, TINY, "tiny") == 0, "config: %s", as_error());
        param_table t;
        param_table_build(&t, &c);
        float *p = as_malloc(t.n_floats * sizeof(float));
        params_init(&t, p, 11);
        CHECK(checkpoint_save(ckpt, &t, p, NULL, 0) == 0, "save: %s", as_error());
        free(p);
        param_table_free(&t);
    }
    model m4, m1;
    load_model(&m4, ckpt, 4);
    load_model(&m1, ckpt, 1);
    swinmae *s1 = m1.impl;  // the Swin MAE behind the interface, for the direct computations
    const int C = m4.in_chans, L = (S / 4) * (S / 4);
    static float img[S * S], map[S * S], map2[S * S], map1[S * S], comp[S * S];
    static uint8_t brain[S * S], none[S * S];
    make_slice(img, brain);

    amap_params p;
    amap_defaults(&p);
    p.window = 16;
    amap_params_for_model(&p, &m4);
    CHECK(p.patch == 4 && p.max_batch == 4, "params from the model");
    for (int i = 0; i < S * S; i++) comp[i] = img[i];
    amap_model_ctx ctx = {.model = &m4, .composite = comp};
    int n = amap_slice(map, img, brain, S, S, C, &p, amap_model_run, &ctx);
    CHECK(n > 4, "windows scored: %d (more than one batch)", n);
    CHECK(ctx.forwards == n, "one forward per window: %ld vs %d", ctx.forwards, n);
    float mx = 0, mn = 1;
    int finite = 1;
    for (int i = 0; i < S * S; i++) {
        finite &= isfinite(map[i]);
        mx = map[i] > mx ? map[i] : mx, mn = map[i] < mn ? map[i] : mn;
    }
    CHECK(finite && mn >= 0 && mx == 1.0f, "map in [0,1], max 1 (min %g max %g)", mn, mx);

    // deterministic; the same with batches of 1 (split batches) and with a batch larger than the model's
    amap_model_ctx ctx2 = {.model = &m4};
    amap_slice(map2, img, brain, S, S, C, &p, amap_model_run, &ctx2);
    CHECK(!memcmp(map, map2, sizeof map), "deterministic");
    amap_model_ctx ctx1 = {.model = &m1};
    amap_params p1 = p;
    p1.max_batch = 3;  // the adapter splits 3 into single forwards
    amap_slice(map1, img, brain, S, S, C, &p1, amap_model_run, &ctx1);
    tu_allclose("batch 1 == batch 4", map1, map, S * S, 1e-4, 1e-4);

    // direct: window k through swinmae_forward by hand
    amap_window win[64];
    int nw = amap_windows(win, 64, brain, S, S, &p);
    CHECK(nw == n, "window count");
    int k = nw / 2;
    float *in = as_malloc(sizeof(float) * C * S * S), *rec = as_malloc(sizeof(float) * C * S * S);
    uint8_t *tm = as_malloc(L);
    for (int c = 0; c < C; c++) memcpy(in + c * S * S, img, sizeof img);
    amap_token_mask(tm, &win[k], S, S, 4);
    swinmae_forward(s1, in, tm, 1, 0, 0);
    swinmae_unpatchify(&s1->cfg, swinmae_pred(s1), rec, 1);
    float lo = INFINITY, hi = -INFINITY, r[S * S];
    for (int y = win[k].y0; y < win[k].y0 + win[k].h; y++)
        for (int x = win[k].x0; x < win[k].x0 + win[k].w; x++) {
            double s = 0, mean = 0;
            for (int c = 0; c < C; c++) s += fabs((double)img[y * S + x] - rec[c * S * S + y * S + x]);
            for (int c = 0; c < C; c++) mean += rec[c * S * S + y * S + x];
            r[y * S + x] = (float)(s / C);
            lo = fminf(lo, r[y * S + x]), hi = fmaxf(hi, r[y * S + x]);
            CHECK(fabsf(comp[y * S + x] - (float)(mean / C)) < 1e-4f, "composite (%d,%d)", x, y);
        }
    int ok = 1;
    for (int y = win[k].y0; y < win[k].y0 + win[k].h; y++)
        for (int x = win[k].x0; x < win[k].x0 + win[k].w; x++)
            ok &= fabsf(map[y * S + x] - (r[y * S + x] - lo) / (hi - lo)) < 1e-4f;
    CHECK(ok, "window %d (%d,%d) equals the direct computation", k, win[k].x0, win[k].y0);
    // outside every window the composite keeps the input
    CHECK(comp[0] == img[0], "composite keeps the input outside the windows");

    // no brain: empty map, nothing run
    memset(none, 0, sizeof none);
    amap_model_ctx ctx3 = {.model = &m4};
    for (int i = 0; i < S * S; i++) map2[i] = NAN;
    CHECK(amap_slice(map2, img, none, S, S, C, &p, amap_model_run, &ctx3) == 0 && ctx3.forwards == 0,
          "no brain: no window");
    ok = 1;
    for (int i = 0; i < S * S; i++) ok &= map2[i] == 0.0f;
    CHECK(ok, "no brain: all-zero map, no NaN");
    // a constant slice: every window flat -> all-zero map, no NaN
    for (int i = 0; i < S * S; i++) map1[i] = 0.5f;
    amap_slice(map2, map1, NULL, S, S, C, &p, amap_model_run, &ctx3);
    ok = 1;
    for (int i = 0; i < S * S; i++) ok &= isfinite(map2[i]) && map2[i] >= 0 && map2[i] <= 1;
    CHECK(ok, "constant slice: finite map in [0,1]");

    // encoder stage outputs (attention maps, A.2) of the lean inference model equal the training model's
    {
        swinmae mt;
        swinmae_config c = s1->cfg;
        CHECK(swinmae_create(&mt, &c, 1, 1) == 0, "training model");
        memcpy(mt.params, s1->params, sizeof(float) * s1->table.n_floats);
        memset(tm, 0, L);
        swinmae_forward(s1, in, tm, 1, 0, 0);
        swinmae_forward(&mt, in, tm, 1, 0, 0);
        for (int st = 0; st < SWINMAE_STAGES; st++) {
            int R = swinmae_stage_res(&c, st);
            char name[64];
            snprintf(name, sizeof name, "stage %d output (inference == training)", st);
            tu_allclose(name, swinmae_stage_output(s1, st), swinmae_stage_output(&mt, st),
                        (size_t)R * R * swinmae_stage_dim(&c, st), 1e-5, 1e-5);
        }
        swinmae_free(&mt);
    }

    // refusals
    model bad = m4;
    CHECK(amap_check_model(&bad, S, 32, "tiny.safetensors") == 0, "matching model accepted");
    CHECK(amap_check_model(&bad, 224, 32, "tiny.safetensors") == -1 && strstr(as_error(), "tiny.safetensors") &&
              strstr(as_error(), "64x64"),
          "size mismatch refused: %s", as_error());
    CHECK(amap_check_model(&bad, S, 128, "tiny.safetensors") == -1, "mask larger than the image refused");
    CHECK(amap_check_model(&bad, S, 30, "tiny.safetensors") == -1, "mask not a multiple of the patch refused");
    bad.in_chans = 2;
    CHECK(amap_check_model(&bad, S, 32, "x.safetensors") == -1 && strstr(as_error(), "channels"),
          "2 channels refused: %s", as_error());

    free(in), free(rec), free(tm);
    model_free(&m4), model_free(&m1);
    return tu_finish();
}
