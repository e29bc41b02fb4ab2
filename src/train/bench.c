#include "train/bench.h"

#include <stdlib.h>

#include "model/params.h"    // param_entry
#include "model/model.h"  // model_*
#include "nn/nn.h"           // gemm
#include "train/adamw.h"     // adamw_*
#include "train/masking.h"   // mask_generate
#include "util/error.h"      // as_malloc
#include "util/rng.h"        // rng_uniform
#include "util/timer.h"      // now_seconds

double bench_sgemm_gflops(int n, int reps) { return bench_gemm_gflops(n, reps, NN_FP32); }

double bench_gemm_gflops(int n, int reps, int precision) {
    size_t nn = (size_t)n * n;
    float *a = as_malloc(sizeof(float) * nn), *b = as_malloc(sizeof(float) * nn), *c = as_malloc(sizeof(float) * nn);
    rng r;
    rng_seed(&r, 1);
    for (size_t i = 0; i < nn; i++) a[i] = (float)rng_uniform(&r), b[i] = (float)rng_uniform(&r), c[i] = 0.0f;
    void (*g)(int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int) =
        precision == NN_BF16 ? gemm_bf16 : gemm;
    g(0, 1, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);  // warm-up
    double best = 1e30;
    for (int k = 0; k < reps; k++) {
        double t = now_seconds();
        g(0, 1, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        t = now_seconds() - t;
        if (t < best) best = t;
    }
    free(a), free(b), free(c);
    return 2.0 * n * (double)n * n / best / 1e9;
}

int bench_train_step(const char *method, const char *config_json, int B, int steps, int warmup,
                     bench_step_result *res) {
    double t0 = now_seconds();
    model m;
    if (model_create(&m, method, config_json, B, 1, "bench")) return -1;
    m.method->init_params(&m, 0);
    adamw opt;
    adamw_init(&opt, m.table->n_floats, adamw_hparams_default());
    for (int e = 0; e < m.table->n; e++) {
        const param_entry *pe = &m.table->entries[e];
        if (pe->dtype == PARAM_F32 && pe->trainable) adamw_add_span(&opt, pe->offset, pe->numel);
    }
    size_t npix = (size_t)B * m.in_chans * m.img_size * m.img_size;
    int L = model_tokens(&m);
    float *images = as_malloc(sizeof(float) * npix);
    uint8_t *mask = as_malloc((size_t)B * L);
    rng r;
    rng_seed(&r, 2);
    for (size_t i = 0; i < npix; i++) images[i] = (float)rng_uniform(&r);
    mask_spec ms = mask_spec_default(m.img_size, m.img_size, m.patch_size);
    if (mask_spec_check(&ms)) ms.unit = m.patch_size;  // tiny configs: one-patch units
    mask_generate(mask, &ms, NULL, B, 3, 0);
    res->create_s = now_seconds() - t0;
    double t = 0;
    for (int s = 0; s < warmup + steps; s++) {
        if (s == warmup) t = now_seconds();
        model_zero_grad(&m);
        res->loss = m.method->train_batch(&m, images, mask, B, 1, (uint64_t)s);
        adamw_update(&opt, m.params, m.grads, 1e-4);
    }
    res->step_s = (now_seconds() - t) / (steps > 0 ? steps : 1);
    res->img_per_s = B / res->step_s;
    free(images);
    free(mask);
    adamw_free(&opt);
    model_free(&m);
    return 0;
}
