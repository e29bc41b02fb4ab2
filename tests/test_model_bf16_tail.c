// Under --precision bf16 an inference Swin MAE runs its decoder's tail (the last patch
// expansion, the last decoder stage and the prediction head) in fp32 (swin_mae.c,
// FP32_TAIL_FROM_EXPANSION; docs/bf16.md), a training model runs bf16 throughout. Checked on a
// model whose products before the tail have zero weights, so that everything up to the tail
// (biases, LayerNorms, attention of constant tokens: all fp32) is the same in both precisions
// and only the tail's products could differ:
//  - the inference model's bf16 prediction equals its fp32 one, full forward and detect's masked
//    forward, and the precision is bf16 again afterwards;
//  - the training model's bf16 prediction differs from fp32 (the tail's products are bf16 there,
//    so the check above is not vacuous);
// and on a model with all weights random: the inference model's bf16 prediction differs from
// fp32 (the encoder's products stay bf16).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/testutil.h"
#include "model/params.h"
#include "model/swinmae/swin_mae.h"
#include "nn/nn.h"
#include "util/error.h"
#include "util/rng.h"

enum { B = 2 };

static int in_tail(const char *name) {
    return !strncmp(name, "layers_up.1.upsample.", 21) || !strncmp(name, "layers_up.2.", 12) ||
           !strncmp(name, "decoder_pred.", 13);
}

// The products' weights before the tail set to 0; every vector (biases, LayerNorm) random, so the
// tail's inputs are not bfloat16 values.
static void zero_before_tail(swinmae *m) {
    rng r;
    rng_seed(&r, 5);
    for (int i = 0; i < m->table.n; i++) {
        const param_entry *e = &m->table.entries[i];
        if (e->dtype != PARAM_F32 || !e->trainable) continue;
        float *v = m->params + e->offset;
        size_t n = strlen(e->name);
        int weight = n > 7 && !strcmp(e->name + n - 7, ".weight");
        if (weight && e->ndim >= 2 && !in_tail(e->name)) memset(v, 0, sizeof(float) * e->numel);
        else if (e->ndim == 1)
            for (size_t k = 0; k < e->numel; k++) v[k] = (float)(rng_uniform(&r) * 2 - 1);
    }
}

static double rel_l2(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), den += (double)b[i] * b[i];
    return den > 0 ? sqrt(num / den) : 0;
}

int main(void) {
    if (!nn_bf16_supported()) {
        CHECK(nn_precision() == NN_FP32, "fp32 is the default");
        printf("(no AVX512-BF16 on this CPU: skipped)\n");
        return tu_finish() ? 1 : 77;  // ctest reports a skip, not a pass
    }
    swinmae_config cfg;
    swinmae_config_default(&cfg);
    if (swinmae_config_parse(&cfg, "img_size=64,patch_size=4,in_chans=1,embed_dim=32,depths=2/2/2/2,"
                                   "num_heads=1/2/2/4,window=2", "config")) {
        CHECK(0, "config: %s", as_error());
        return tu_finish();
    }
    const int G = cfg.img_size / cfg.patch_size, L = G * G, K = cfg.patch_size * cfg.patch_size * cfg.in_chans;
    const size_t npix = (size_t)B * cfg.in_chans * cfg.img_size * cfg.img_size, npred = (size_t)B * L * K;
    swinmae m, t;
    if (swinmae_create(&m, &cfg, B, 0) || swinmae_create(&t, &cfg, B, 1)) {
        CHECK(0, "create: %s", as_error());
        return tu_finish();
    }
    float *img = as_malloc(sizeof(float) * npix), *f32 = as_malloc(sizeof(float) * npred),
          *f32m = as_malloc(sizeof(float) * npred);
    uint8_t *mask = as_calloc((size_t)B * L, 1);
    rng r;
    rng_seed(&r, 3);
    for (size_t i = 0; i < npix; i++) img[i] = (float)rng_uniform(&r);
    for (int i = 0; i < 2 * G; i++) mask[i] = mask[L + L / 2 + i] = 1;  // two rows in each image

    for (int zeroed = 1; zeroed >= 0; zeroed--) {
        const char *what = zeroed ? "weights before the tail 0" : "random weights";
        params_init(&m.table, m.params, 7);
        if (zeroed) zero_before_tail(&m);
        memcpy(t.params, m.params, sizeof(float) * m.table.n_floats);
        CHECK(nn_set_precision(NN_FP32) == 0, "fp32");
        swinmae_forward(&m, img, mask, B, 0, 0);
        memcpy(f32, swinmae_pred(&m), sizeof(float) * npred);
        swinmae_forward_masked(&m, img, mask, B);
        memcpy(f32m, swinmae_pred(&m), sizeof(float) * npred);
        CHECK(nn_set_precision(NN_BF16) == 0, "bf16");
        swinmae_forward(&m, img, mask, B, 0, 0);
        double d_inf = rel_l2(swinmae_pred(&m), f32, npred);
        CHECK(nn_precision() == NN_BF16, "%s: bf16 again after an inference forward", what);
        swinmae_forward(&t, img, mask, B, 0, 0);
        double d_train = rel_l2(swinmae_pred(&t), f32, npred);
        printf("%s: bf16 vs fp32 prediction, relative L2: inference %.3g, training %.3g\n", what, d_inf, d_train);
        if (zeroed) {
            char name[96];
            snprintf(name, sizeof name, "%s: bf16 inference = fp32 (full forward)", what);
            tu_allclose(name, swinmae_pred(&m), f32, npred, 1e-6, 1e-6);
            swinmae_forward_masked(&m, img, mask, B);
            const float *pm = swinmae_pred(&m);
            int same = 1;
            for (int i = 0; i < B * L; i++)  // the masked forward sets the masked tokens' predictions
                if (mask[i])
                    for (int k = 0; k < K; k++) same &= fabsf(pm[(size_t)i * K + k] - f32m[(size_t)i * K + k]) <= 1e-6f;
            CHECK(same, "%s: bf16 inference = fp32 (masked forward, detect's path)", what);
            CHECK(d_train > 1e-4, "%s: the training model's tail runs bf16 (relative L2 %.3g)", what, d_train);
        } else {
            CHECK(d_inf > 1e-4, "%s: the inference model's encoder runs bf16 (relative L2 %.3g)", what, d_inf);
        }
        CHECK(nn_set_precision(NN_FP32) == 0, "fp32");
    }
    free(img), free(f32), free(f32m), free(mask);
    swinmae_free(&t);
    swinmae_free(&m);
    return tu_finish();
}
