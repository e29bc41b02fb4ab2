// Whole-model parity with the PyTorch reference (tools/swin_mae_parity_ref.py on
// tools/swin_mae_ref.py, computed in float64), same weights and mask, DropPath off:
//   - loss within 1e-5 relative;
//   - prediction: relative L2 <= 1e-4 and |got-ref| <= 1e-4 + 1e-3|ref| elementwise;
//   - every parameter gradient: per-tensor relative L2 error ||g - g_ref|| / ||g_ref|| <= 1e-3.
// Runs the paper config at B=2 and a small config (1 channel, patch 2, window 4, odd depths,
// MLP ratio 2) at B=3. Also checks that an inference-only model gives the same loss and
// prediction, and that the parameter table lists the reference's tensors in the same order.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/testutil.h"
#include "model/swinmae/swin_mae.h"
#include "nn/nn.h"
#include "util/timer.h"

static void run_case(const char *tag, const char *cfg_text, int B) {
    char dir[4096], args[8192], path[4300];
    snprintf(dir, sizeof dir, "%s/%s", tu_scratch_dir("test_model_parity"), tag);
    snprintf(args, sizeof args, "%s '%s' %d 7", dir, cfg_text, B);
    tu_run_python("tools/swin_mae_parity_ref.py", args);

    swinmae_config cfg;
    swinmae_config_default(&cfg);
    if (cfg_text[0]) CHECK(swinmae_config_parse(&cfg, cfg_text, "test") == 0, "%s: config parses", tag);
    swinmae m;
    if (swinmae_create(&m, &cfg, B, 1)) {
        CHECK(0, "%s: create", tag);
        return;
    }
    const int L = swinmae_num_tokens(&cfg), K = swinmae_patch_dim(&cfg);
    const size_t n = m.table.n_floats, nimg = (size_t)B * cfg.in_chans * cfg.img_size * cfg.img_size;

    // The table's F32 entries must be the reference's, in order, contiguous.
    snprintf(path, sizeof path, "%s/names.txt", dir);
    FILE *f = fopen(path, "r");
    char name[256];
    size_t numel, off = 0;
    int ok = f != NULL, i = 0;
    while (ok && fscanf(f, "%255s %zu", name, &numel) == 2) {
        while (i < m.table.n && m.table.entries[i].dtype != PARAM_F32) i++;
        ok = i < m.table.n && !strcmp(m.table.entries[i].name, name) && m.table.entries[i].numel == numel &&
             m.table.entries[i].offset == off;
        if (!ok) fprintf(stderr, "  table mismatch at %s\n", name);
        off += numel;
        i++;
    }
    if (f) fclose(f);
    CHECK(ok && off == n, "%s: parameter table equals the reference state_dict (%zu floats)", tag, n);

    snprintf(path, sizeof path, "%s/params.f32", dir);
    float *params = tu_read_f32(path, n);
    memcpy(m.params, params, n * sizeof(float));
    snprintf(path, sizeof path, "%s/images.f32", dir);
    float *images = tu_read_f32(path, nimg);
    snprintf(path, sizeof path, "%s/mask.u8", dir);
    uint8_t *mask = malloc((size_t)B * L);
    f = fopen(path, "rb");
    CHECK(f && fread(mask, 1, (size_t)B * L, f) == (size_t)B * L, "%s: mask read", tag);
    if (f) fclose(f);

    double t0 = now_seconds();
    swinmae_zero_grad(&m);
    float loss = swinmae_forward(&m, images, mask, B, 0, 0);
    double t1 = now_seconds();
    swinmae_backward(&m);
    double t2 = now_seconds();
    printf("%s: forward %.2fs, backward %.2fs, arena %.1f MiB\n", tag, t1 - t0, t2 - t1,
           m.arena_floats * 4.0 / 1048576.0);

    snprintf(path, sizeof path, "%s/loss.f32", dir);
    float *ref_loss = tu_read_f32(path, 1);
    double rel = fabs((double)loss - ref_loss[0]) / fabs((double)ref_loss[0]);
    CHECK(rel <= 1e-5, "%s: loss %.9g vs reference %.9g (rel %.3g <= 1e-5)", tag, loss, ref_loss[0], rel);
    printf("%s: loss %.9g reference %.9g rel %.3g\n", tag, loss, ref_loss[0], rel);

    snprintf(path, sizeof path, "%s/pred.f32", dir);
    float *ref_pred = tu_read_f32(path, (size_t)B * L * K);
    char what[256];
    snprintf(what, sizeof what, "%s pred", tag);
    tu_rel_l2(what, swinmae_pred(&m), ref_pred, (size_t)B * L * K, 1e-4);
    tu_allclose(what, swinmae_pred(&m), ref_pred, (size_t)B * L * K, 1e-4, 1e-3);

    snprintf(path, sizeof path, "%s/grads.f32", dir);
    float *ref_grads = tu_read_f32(path, n);
    double worst = 0;
    const char *worst_name = "";
    int bad = 0;
    for (int e = 0; e < m.table.n; e++) {
        const param_entry *pe = &m.table.entries[e];
        if (pe->dtype != PARAM_F32 || !pe->trainable) continue;
        double num = 0, den = 0;
        for (size_t k = 0; k < pe->numel; k++) {
            double d = (double)m.grads[pe->offset + k] - ref_grads[pe->offset + k];
            num += d * d;
            den += (double)ref_grads[pe->offset + k] * ref_grads[pe->offset + k];
        }
        double r = sqrt(num) / fmax(sqrt(den), 1e-30);
        if (!(r <= 1e-3)) {
            if (bad++ < 10) fprintf(stderr, "  %s: grad rel L2 %.3g (|ref| %.3g)\n", pe->name, r, sqrt(den));
        }
        if (!(r <= worst)) {
            worst = r;
            worst_name = pe->name;
        }
    }
    CHECK(bad == 0, "%s: %d parameter gradients beyond 1e-3 relative L2", tag, bad);
    printf("%s: worst per-tensor gradient rel L2 %.3g (%s)\n", tag, worst, worst_name);


    // An inference-only model gives the same loss and prediction, and the same stage outputs.
    swinmae mi;
    CHECK(swinmae_create(&mi, &cfg, B, 0) == 0, "%s: inference model", tag);
    CHECK(mi.grads == NULL && mi.arena_floats < m.arena_floats, "%s: inference arena %.1f MiB < training %.1f MiB",
          tag, mi.arena_floats * 4.0 / 1048576.0, m.arena_floats * 4.0 / 1048576.0);
    memcpy(mi.params, params, n * sizeof(float));
    // A smaller batch than max_batch: the first B-1 samples predict the same (rows independent).
    if (B > 1) {
        swinmae_forward(&mi, images, mask, B - 1, 0, 0);
        snprintf(what, sizeof what, "%s pred with batch %d < max_batch", tag, B - 1);
        tu_allclose(what, swinmae_pred(&mi), ref_pred, (size_t)(B - 1) * L * K, 1e-4, 1e-3);
    }
    float li = swinmae_forward(&mi, images, mask, B, 0, 0);
    CHECK(li == loss, "%s: inference loss %.9g equals training loss %.9g", tag, li, loss);
    CHECK(!memcmp(swinmae_pred(&mi), swinmae_pred(&m), sizeof(float) * (size_t)B * L * K), "%s: same prediction",
          tag);
    int same_stage = 1;
    for (int s = 0; s < 4; s++) {
        size_t ns = (size_t)B * swinmae_stage_res(&cfg, s) * swinmae_stage_res(&cfg, s) * swinmae_stage_dim(&cfg, s);
        same_stage &= !memcmp(swinmae_stage_output(&mi, s), swinmae_stage_output(&m, s), ns * sizeof(float));
    }
    CHECK(same_stage, "%s: same encoder stage outputs", tag);

    // unpatchify of the target layout gives the images back (pred layout = target layout).
    float *back = malloc(nimg * sizeof(float));
    swinmae_unpatchify(&cfg, ref_pred, back, B);
    CHECK(back[0] == ref_pred[0], "%s: unpatchify puts token 0 value 0 at pixel (0,0,0)", tag);
    free(back);

    // DropPath on: the loss changes, and a repeat with the same seed is identical.
    if (cfg.drop_path_rate > 0) {
        float d1 = swinmae_forward(&mi, images, mask, B, 1, 99);
        float d2 = swinmae_forward(&mi, images, mask, B, 1, 99);
        CHECK(d1 == d2 && d1 != loss, "%s: DropPath seeded (%.6g, %.6g vs %.6g)", tag, d1, d2, loss);
    }
    // Same inputs, same thread count: bit-identical loss and gradients (with DropPath on too).
    if (!strcmp(tag, "small")) {
        float *g1 = malloc(n * sizeof(float));
        swinmae_zero_grad(&m);
        float a1 = swinmae_forward(&m, images, mask, B, 1, 123);
        swinmae_backward(&m);
        memcpy(g1, m.grads, n * sizeof(float));
        swinmae_zero_grad(&m);
        float a2 = swinmae_forward(&m, images, mask, B, 1, 123);
        swinmae_backward(&m);
        CHECK(a1 == a2 && !memcmp(g1, m.grads, n * sizeof(float)), "%s: repeat run is bit-identical", tag);
        free(g1);
    }
    swinmae_free(&mi);
    swinmae_free(&m);
    free(params);
    free(images);
    free(mask);
    free(ref_loss);
    free(ref_pred);
    free(ref_grads);
}

int main(void) {
    run_case("small", "img_size=64,patch_size=2,in_chans=1,embed_dim=16,depths=1/2/1/2,num_heads=1/2/2/4,window=4,mlp_ratio=2", 3);
    run_case("paper", "", 2);
    return tu_finish();
}
