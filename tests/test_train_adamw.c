// AdamW against torch.optim.AdamW on random flat tensors, the frozen spans left alone, and the
// learning-rate schedule against MAE's lr_sched formula (tools/ref_adamw.py).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/testutil.h"
#include "train/adamw.h"
#include "util/rng.h"

int main(void) {
    const char *dir = tu_scratch_dir("adamw");
    char path[4096];
    // An odd size, with gradients of very different scales (incl. exact zeros) so that both the
    // eps-dominated and the sqrt(v)-dominated regimes are exercised.
    const size_t n = 10007;
    const int steps = 7;
    rng r;
    rng_seed(&r, 3);
    float *p0 = malloc(sizeof(float) * n), *g = malloc(sizeof(float) * n * steps);
    for (size_t i = 0; i < n; i++) p0[i] = (float)rng_normal(&r);
    for (size_t i = 0; i < n * steps; i++) {
        double scale = pow(10.0, rng_uniform_range(&r, -9, 1));
        g[i] = (i % 97 == 0) ? 0.0f : (float)(scale * rng_normal(&r));
    }
    snprintf(path, sizeof path, "%s/p0.f32", dir);
    tu_write_f32(path, p0, n);
    snprintf(path, sizeof path, "%s/g.f32", dir);
    tu_write_f32(path, g, n * steps);
    // The learning rates of a warm-up: the first is 0, as in MAE's first iteration.
    double lrs[7] = {0.0, 1e-4, 2e-4, 5e-4, 1e-3, 3e-3, 1e-2};
    char lrs_arg[512] = "";
    for (int t = 0; t < steps; t++)
        snprintf(lrs_arg + strlen(lrs_arg), sizeof lrs_arg - strlen(lrs_arg), "%s%.17g", t ? "," : "", lrs[t]);

    // Schedule inputs: (epoch, lr, min_lr, warmup, epochs) rows.
    double rows[][5] = {{0, 1e-3, 0, 10, 400},       {0.05, 1e-3, 0, 10, 400}, {9.999, 1e-3, 0, 10, 400},
                        {10, 1e-3, 0, 10, 400},      {11.5, 1e-3, 0, 10, 400}, {205, 1e-3, 0, 10, 400},
                        {399.99, 1e-3, 0, 10, 400},  {3.25, 2e-4, 1e-6, 2, 7}, {0.5, 1e-3, 0, 1, 3},
                        {2.999, 1e-3, 1e-5, 1, 3}};
    int K = sizeof rows / sizeof rows[0];
    float *sin_ = malloc(sizeof(float) * 5 * K), *sched = malloc(sizeof(float) * K);
    for (int k = 0; k < K; k++) {
        for (int j = 0; j < 5; j++) sin_[5 * k + j] = (float)rows[k][j];
        // compute from the float-rounded inputs, as Python reads them
        sched[k] = (float)lr_schedule(sin_[5 * k], sin_[5 * k + 1], sin_[5 * k + 2], sin_[5 * k + 3], sin_[5 * k + 4]);
    }
    snprintf(path, sizeof path, "%s/sched_in.f32", dir);
    tu_write_f32(path, sin_, 5 * (size_t)K);

    adamw_hparams h = adamw_hparams_default();
    char args[8192];
    snprintf(args, sizeof args, "%s %zu %d %s %.17g %.17g %.17g %.17g", dir, n, steps, lrs_arg, h.beta1, h.beta2,
             h.eps, h.weight_decay);
    tu_run_python("tools/ref_adamw.py", args);

    // All trainable: compare after every step.
    adamw o;
    adamw_init(&o, n, h);
    adamw_add_span(&o, 0, 5000);
    adamw_add_span(&o, 5000, n - 5000);  // merged with the first
    CHECK(o.num_spans == 1 && adamw_num_trainable(&o) == n, "adjacent spans merge");
    float *p = malloc(sizeof(float) * n);
    memcpy(p, p0, sizeof(float) * n);
    snprintf(path, sizeof path, "%s/p_ref.f32", dir);
    float *pref = tu_read_f32(path, n * steps);
    for (int t = 0; t < steps; t++) {
        adamw_update(&o, p, g + (size_t)t * n, lrs[t]);
        char name[64];
        snprintf(name, sizeof name, "params after step %d", t + 1);
        tu_allclose(name, p, pref + (size_t)t * n, n, 1e-7, 1e-6);
    }
    snprintf(path, sizeof path, "%s/m_ref.f32", dir);
    float *mref = tu_read_f32(path, n);
    snprintf(path, sizeof path, "%s/v_ref.f32", dir);
    float *vref = tu_read_f32(path, n);
    tu_allclose("exp_avg", o.m, mref, n, 1e-12, 1e-5);
    tu_allclose("exp_avg_sq", o.v, vref, n, 1e-20, 1e-5);
    CHECK(o.step == steps, "step count");
    adamw_free(&o);

    // The portable loop gives the AVX-512 loop's parameters and moments bit for bit (n is not a
    // multiple of 16: the masked tail too).
    float *q = malloc(sizeof(float) * n), *mq = NULL, *vq = NULL;
    for (int zmm = 1; zmm >= 0; zmm--) {
        adamw_allow_avx512(zmm);
        adamw_init(&o, n, h);
        adamw_add_span(&o, 0, n);
        memcpy(zmm ? p : q, p0, sizeof(float) * n);
        for (int t = 0; t < steps; t++) adamw_update(&o, zmm ? p : q, g + (size_t)t * n, lrs[t]);
        if (zmm) {
            mq = o.m, vq = o.v, o.m = o.v = NULL;  // kept for the comparison
        } else {
            CHECK(!memcmp(p, q, sizeof(float) * n) && !memcmp(mq, o.m, sizeof(float) * n) &&
                      !memcmp(vq, o.v, sizeof(float) * n),
                  "AdamW: portable loop = AVX-512 loop, bit for bit");
        }
        adamw_free(&o);
    }
    adamw_allow_avx512(1);
    free(q), free(mq), free(vq);

    // Frozen spans: [100, 200) and the tail stay bit-identical; the rest still matches torch.
    adamw_init(&o, n, h);
    adamw_add_span(&o, 0, 100);
    adamw_add_span(&o, 200, 9000);
    memcpy(p, p0, sizeof(float) * n);
    for (int t = 0; t < steps; t++) adamw_update(&o, p, g + (size_t)t * n, lrs[t]);
    CHECK(!memcmp(p + 100, p0 + 100, 100 * sizeof(float)) && !memcmp(p + 9200, p0 + 9200, (n - 9200) * sizeof(float)),
          "frozen spans untouched");
    const float *last = pref + (size_t)(steps - 1) * n;
    tu_allclose("trainable span 1", p, last, 100, 1e-7, 1e-6);
    tu_allclose("trainable span 2", p + 200, last + 200, 9000, 1e-7, 1e-6);
    adamw_free(&o);

    snprintf(path, sizeof path, "%s/sched_ref.f32", dir);
    float *sref = tu_read_f32(path, (size_t)K);
    tu_allclose("lr schedule vs MAE lr_sched", sched, sref, (size_t)K, 1e-12, 1e-6);
    CHECK(lr_schedule(0, 1e-3, 0, 10, 400) == 0.0 && lr_schedule(10, 1e-3, 0, 10, 400) == 1e-3,
          "warm-up starts at 0 and peaks at base lr");

    free(p0), free(g), free(p), free(pref), free(mref), free(vref), free(sin_), free(sched), free(sref);
    return tu_finish();
}
