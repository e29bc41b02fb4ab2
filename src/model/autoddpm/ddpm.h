// The diffusion process around the U-Net: the linear beta schedule, epsilon-prediction training,
// the DDPM ancestral step, and autoDDPM's mask-stitch-resample inference (Bercea et al. 2023, as
// model_zoo/ddpm.py get_autoDDPM_anomaly does it; LPIPS left out, see docs/baselines.md).
#ifndef ANOSWIN_MODEL_AUTODDPM_DDPM_H
#define ANOSWIN_MODEL_AUTODDPM_DDPM_H

#include <stdint.h>
#include <stdio.h>

#include "model/autoddpm/unet.h"
#include "util/rng.h"

typedef struct ddpm_sched {
    int T;
    double *beta, *acp;  // (T): betas and their cumulative products of (1 - beta), in double
} ddpm_sched;

void ddpm_sched_init(ddpm_sched *s, const ddpm_config *c);
void ddpm_sched_free(ddpm_sched *s);

// One training loss: x_t = sqrt(acp[t_b]) x0 + sqrt(1 - acp[t_b]) noise per image, eps = U-Net(x_t,
// t), loss = mean (eps - noise)^2 (F.mse_loss), grads += d loss / d params. scratch: 2 x B images.
float ddpm_train_loss(unet *u, const ddpm_sched *s, const float *x0, const float *noise, const float *t, int B,
                      float *scratch);

// The same objective without gradients, for training's validation: for each image one t and one
// noise (written to t and noise) drawn from a stream seeded by `seed` and the image's content, so
// that an image's draws do not depend on its batch and repeat each epoch. scratch: B images.
// (Validating on autoDDPM's inference instead would run hundreds of U-Net passes per slice.)
float ddpm_eval_loss(unet *u, const ddpm_sched *s, const float *x0, int B, uint64_t seed, float *noise, float *t,
                     float *scratch);

// Where inference's Gaussian draws come from: one independent stream per image (seeded by the
// config's seed and the image's content, so a slice's result does not depend on the batch it
// runs in), each draw (B, img) optionally appended to `record` (tests hand it to PyTorch).
typedef struct ddpm_noise {
    rng r[64];
    int B;
    size_t img;
    FILE *record;
} ddpm_noise;
// B <= 64 images of img floats each.
void ddpm_noise_init(ddpm_noise *nz, uint64_t seed, const float *images, int B, size_t img, FILE *record);
void ddpm_noise_draw(ddpm_noise *nz, float *out);

// One DDPM step x_t -> x_{t-1} (the authors' DDPMScheduler.step: x0 clipped to [-1, 1], fixed
// small variance), in place on x (n floats) given eps; noise drawn into z (n floats of scratch)
// when t > 0.
void ddpm_step(float *x, const float *eps, int t, const ddpm_sched *s, ddpm_noise *nz, float *z);

// One DDIM step (Song et al. 2021, eta 0: no noise) x_t -> x_{t - stride}, in place on x (n floats)
// given eps, as the authors' DDIMScheduler.step: x0 clipped to [-1, 1], the product of alphas 1
// below step 0.
void ddim_step(float *x, const float *eps, int t, int stride, const ddpm_sched *s, size_t n);

// autoDDPM on B images x (B, C, S, S): x_rec (the reconstruction from t_recon), mask (the dilated
// binary mask), final (the stitched and re-sampled image), amap (|x - clamp(final)| x the scaled
// first residual). Any output but amap may be NULL. Progress is silent; costs
// (t_recon + 1) + t_inpaint * resample U-Net forwards of the batch with the DDPM sampler, about
// stride times fewer with DDIM (config sampler, inference_steps).
void autoddpm_infer(unet *u, const ddpm_sched *s, const float *x, int B, ddpm_noise *nz, float *x_rec, float *mask,
                    float *final, float *amap);

#endif
