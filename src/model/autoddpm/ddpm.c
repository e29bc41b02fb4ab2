// The diffusion process and autoDDPM's inference (see ddpm.h).
#include "model/autoddpm/ddpm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"          // mse_loss_*
#include "util/error.h"     // as_malloc
#include "util/hash.h"      // hash_floats
#include "util/morph.h"     // morph_dilate_f32
#include "util/stats.h"     // sort_floats, quantile_sorted_f32

void ddpm_sched_init(ddpm_sched *s, const ddpm_config *c) {
    // The authors' torch.linspace / cumprod run in float32; double here (and in the reference)
    // keeps the 1000-step product exact to ~1e-15 instead of ~1e-6.
    s->T = c->timesteps;
    s->beta = as_malloc(sizeof(double) * (size_t)s->T);
    s->acp = as_malloc(sizeof(double) * (size_t)s->T);
    double a = 1.0;
    for (int i = 0; i < s->T; i++) {
        s->beta[i] = c->beta_start + ((double)c->beta_end - c->beta_start) * i / (s->T - 1);
        a *= 1.0 - s->beta[i];
        s->acp[i] = a;
    }
}

void ddpm_sched_free(ddpm_sched *s) {
    free(s->beta);
    free(s->acp);
    memset(s, 0, sizeof *s);
}

static void add_noise(float *out, const float *x0, const float *noise, double acp, size_t n) {
    const float a = (float)sqrt(acp), b = (float)sqrt(1.0 - acp);
    for (size_t i = 0; i < n; i++) out[i] = a * x0[i] + b * noise[i];
}

// eps = U-Net(x_t, t) with x_t = sqrt(acp[t_b]) x0 + sqrt(1 - acp[t_b]) noise, built in xt.
static const float *noised_forward(unet *u, const ddpm_sched *s, const float *x0, const float *noise,
                                   const float *t, int B, float *xt) {
    const size_t img = ddpm_img_floats(&u->cfg);
    for (int b = 0; b < B; b++) add_noise(xt + b * img, x0 + b * img, noise + b * img, s->acp[(int)t[b]], img);
    return unet_forward(u, xt, t, B);
}

float ddpm_train_loss(unet *u, const ddpm_sched *s, const float *x0, const float *noise, const float *t, int B,
                      float *scratch) {
    const size_t n = (size_t)B * ddpm_img_floats(&u->cfg);
    float *d = scratch + n;
    const float *pred = noised_forward(u, s, x0, noise, t, B, scratch);
    const float loss = mse_loss_forward(pred, noise, n, 1.0f / (float)n);
    memset(d, 0, sizeof(float) * n);
    mse_loss_backward(d, pred, noise, n, 1.0f / (float)n);
    unet_backward(u, d, B);
    return loss;
}

float ddpm_eval_loss(unet *u, const ddpm_sched *s, const float *x0, int B, uint64_t seed, float *noise, float *t,
                     float *scratch) {
    const size_t img = ddpm_img_floats(&u->cfg), n = (size_t)B * img;
    for (int b = 0; b < B; b++) {
        rng r;
        rng_seed_stream(&r, seed, hash_floats(x0 + (size_t)b * img, img));
        t[b] = (float)rng_below(&r, (uint32_t)s->T);
        for (size_t i = 0; i < img; i++) noise[(size_t)b * img + i] = (float)rng_normal(&r);
    }
    return mse_loss_forward(noised_forward(u, s, x0, noise, t, B, scratch), noise, n, 1.0f / (float)n);
}

void ddpm_noise_init(ddpm_noise *nz, uint64_t seed, const float *images, int B, size_t img, FILE *record) {
    nz->B = B;
    nz->img = img;
    nz->record = record;
    for (int b = 0; b < B; b++) rng_seed_stream(&nz->r[b], seed, hash_floats(images + (size_t)b * img, img));
}

void ddpm_noise_draw(ddpm_noise *nz, float *out) {
    for (int b = 0; b < nz->B; b++)
        for (size_t i = 0; i < nz->img; i++) out[(size_t)b * nz->img + i] = (float)rng_normal(&nz->r[b]);
    if (nz->record) fwrite(out, sizeof(float), (size_t)nz->B * nz->img, nz->record);
}

void ddpm_step(float *x, const float *eps, int t, const ddpm_sched *s, ddpm_noise *nz, float *z) {
    const size_t n = (size_t)nz->B * nz->img;
    const double acp = s->acp[t], prev = t > 0 ? s->acp[t - 1] : 1.0;
    const float ra = (float)(1.0 / sqrt(acp)), rb = (float)sqrt(1.0 - acp);
    const float c0 = (float)(sqrt(prev) * s->beta[t] / (1.0 - acp));
    const float ct = (float)(sqrt(1.0 - s->beta[t]) * (1.0 - prev) / (1.0 - acp));
    for (size_t i = 0; i < n; i++) {
        float x0 = (x[i] - rb * eps[i]) * ra;
        x0 = x0 < -1.0f ? -1.0f : (x0 > 1.0f ? 1.0f : x0);
        x[i] = c0 * x0 + ct * x[i];
    }
    if (t > 0) {
        double var = (1.0 - prev) / (1.0 - acp) * s->beta[t];
        const float sd = (float)sqrt(var > 1e-20 ? var : 1e-20);
        ddpm_noise_draw(nz, z);
        for (size_t i = 0; i < n; i++) x[i] += sd * z[i];
    }
}

void ddim_step(float *x, const float *eps, int t, int stride, const ddpm_sched *s, size_t n) {
    const int prev_t = t - stride;
    const double acp = s->acp[t], prev = prev_t >= 0 ? s->acp[prev_t] : 1.0;
    const float ra = (float)(1.0 / sqrt(acp)), rb = (float)sqrt(1.0 - acp);
    const float a = (float)sqrt(prev), b = (float)sqrt(1.0 - prev);
    for (size_t i = 0; i < n; i++) {
        float x0 = (x[i] - rb * eps[i]) * ra;
        x0 = x0 < -1.0f ? -1.0f : (x0 > 1.0f ? 1.0f : x0);
        x[i] = a * x0 + b * eps[i];
    }
}

static float clamp01(float v) { return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v); }

static void denoise_step(unet *u, const ddpm_sched *s, float *x, int t, int B, ddpm_noise *nz, float *z) {
    float tt[64];
    for (int b = 0; b < B; b++) tt[b] = (float)t;
    const float *eps = unet_forward(u, x, tt, B);
    if (u->cfg.sampler == DDPM_SAMPLER_DDIM) ddim_step(x, eps, t, ddpm_sampler_stride(&u->cfg), s, (size_t)B * nz->img);
    else ddpm_step(x, eps, t, s, nz, z);
}

void autoddpm_infer(unet *u, const ddpm_sched *s, const float *x, int B, ddpm_noise *nz, float *x_rec, float *mask,
                    float *final, float *amap) {
    const ddpm_config *c = &u->cfg;
    const int S = c->img_size;
    const size_t img = nz->img, n = (size_t)B * img;
    float *buf = as_malloc(sizeof(float) * n * 7);
    int *ts = as_malloc(sizeof(int) * (size_t)(c->t_recon + c->t_inpaint + 4)), nt;
    float *z = buf, *cur = buf + n, *rec = buf + 2 * n, *comb = buf + 3 * n, *msk = buf + 4 * n, *inp = buf + 5 * n,
          *tmp = buf + 6 * n;

    // 1. Noise to t_recon and denoise: the pseudo-healthy reconstruction.
    ddpm_noise_draw(nz, z);
    add_noise(cur, x, z, s->acp[c->t_recon], n);
    nt = ddpm_sampler_timesteps(c, c->t_recon, ts);
    for (int k = 0; k < nt; k++) denoise_step(u, s, cur, ts[k], B, nz, z);
    for (size_t i = 0; i < n; i++) rec[i] = clamp01(cur[i]);

    // 2. The residual scaled by each image's 95th percentile, thresholded, dilated 3x3.
    for (int b = 0; b < B; b++) {
        float *r = comb + b * img;
        for (size_t i = 0; i < img; i++) r[i] = fabsf(x[b * img + i] - rec[b * img + i]);
        memcpy(tmp, r, sizeof(float) * img);
        sort_floats(tmp, img);
        const float p95 = (float)quantile_sorted_f32(tmp, img, 0.95);
        // numpy gives inf (-> 1 after the clip) for r > 0 = p95 and nan (never above a threshold) for 0/0.
        for (size_t i = 0; i < img; i++) r[i] = p95 > 0.0f ? clamp01(r[i] / p95) : (r[i] > 0.0f ? 1.0f : 0.0f);
        float thr = c->threshold;
        if (thr < 0.0f) {
            memcpy(tmp, r, sizeof(float) * img);
            sort_floats(tmp, img);
            thr = clamp01((float)quantile_sorted_f32(tmp, img, 0.95));
        }
        float *m = msk + b * img;
        double on = 0;
        for (size_t i = 0; i < img; i++) on += m[i] = r[i] > thr ? 1.0f : 0.0f;
        if (on >= 1) {
            for (int ch = 0; ch < c->in_chans; ch++) {
                float *plane = m + (size_t)ch * S * S;
                morph_dilate_f32(tmp, plane, S, S, 1, 2, MORPH_SQUARE, 3);
                memcpy(plane, tmp, sizeof(float) * S * S);
            }
        }
    }

    // 3. Stitch and re-sample: from the reconstruction at t_inpaint, the masked part denoised, the
    // rest the input noised to t-1; `resample` rounds per step, re-noised one step in between (t-1
    // and one beta also under DDIM, whose step spans more: the authors' loop, kept as it is).
    ddpm_noise_draw(nz, z);
    add_noise(cur, rec, z, s->acp[c->t_inpaint], n);
    float *known = tmp;
    memset(inp, 0, sizeof(float) * n);
    nt = ddpm_sampler_timesteps(c, c->t_inpaint, ts);
    for (int k = 0; k < nt; k++)
        for (int r = 0, t = ts[k]; r < c->resample; r++) {
            if (t > 0) {
                ddpm_noise_draw(nz, z);
                const float a = (float)sqrt(s->acp[t - 1]), bb = (float)sqrt(1.0 - s->acp[t - 1]);
                for (size_t i = 0; i < n; i++) known[i] = a * (1.0f - msk[i]) * x[i] + bb * z[i];
                memcpy(inp, cur, sizeof(float) * n);
                denoise_step(u, s, inp, t, B, nz, z);
            } else {
                for (size_t i = 0; i < n; i++) known[i] = (1.0f - msk[i]) * x[i];
            }
            // At t = 0 the masked part keeps the last denoised step (t = 1), as the authors' loop does.
            for (size_t i = 0; i < n; i++) cur[i] = msk[i] == 1.0f ? inp[i] : known[i];
            if (t > 0 && r < c->resample - 1) {
                ddpm_noise_draw(nz, z);
                const float a = (float)sqrt(1.0 - s->beta[t - 1]), bb = (float)sqrt(s->beta[t - 1]);
                for (size_t i = 0; i < n; i++) cur[i] = a * cur[i] + bb * z[i];
            }
        }

    // 4. The anomaly map.
    for (size_t i = 0; i < n; i++) amap[i] = fabsf(x[i] - clamp01(cur[i])) * comb[i];
    if (x_rec) memcpy(x_rec, rec, sizeof(float) * n);
    if (mask) memcpy(mask, msk, sizeof(float) * n);
    if (final) memcpy(final, cur, sizeof(float) * n);
    free(buf);
    free(ts);
}
