// autoDDPM against its PyTorch reference (tools/autoddpm_ref.py) on a tiny config that keeps every
// part (16 px, channels 8-16-16, attention at the two lower levels with 2 heads, 4 groups, skip
// convolutions, 3 images): the PyTorch state_dict loads strictly; the training loss (noised input,
// U-Net forward, MSE against the noise), the predicted noise and EVERY parameter gradient match;
// one DDPM denoising step and one full autoDDPM inference (t_recon 3, t_inpaint 2, 2 resampling
// rounds, per-image 95th-percentile threshold) of a checkpoint written here, loaded strictly by
// PyTorch, match within 1e-4 for the same noise (anoswin draws it and records it to a file that
// the reference reads in order). Through the interface: training is reproducible for a seed and
// moves the loss, detection's output is x - map, and the save/load round trip is exact.
// Tolerances: values atol 1e-5 / rtol 1e-4, gradients atol 1e-4 / rtol 1e-3, rel L2 <= 1e-5 (as
// tests/test_model_vae.c); inference 1e-4 absolute.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/testutil.h"
#include "model/autoddpm/ddpm.h"
#include "model/checkpoint.h"  // checkpoint_load
#include "model/model.h"

static const char *dir;

static float *rd(const char *name, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.f32", dir, name);
    return tu_read_f32(path, n);
}

static void cmp(const char *name, const float *got, const char *ref_name, size_t n, double atol, double rel) {
    float *ref = rd(ref_name, n);
    tu_allclose(name, got, ref, n, atol, atol >= 1e-4 ? 1e-3 : 1e-4);
    double norm = 0;
    for (size_t i = 0; i < n; i++) norm += (double)ref[i] * ref[i];
    if (rel > 0 && sqrt(norm) > 1e-9) {
        char buf[300];
        snprintf(buf, sizeof buf, "%.200s (rel L2)", name);
        tu_rel_l2(buf, got, ref, n, rel);
    }
    free(ref);
}

// The config JSON of a checkpoint, as model_load reads it.
static void config_of(const char *path, ddpm_config *c) {
    st_file f;
    char json[2048];
    CHECK(st_open(&f, path) == 0, "open %s", path);
    CHECK(model_method_of_checkpoint(&f) == model_method_find("autoddpm"), "%s is an autoDDPM checkpoint", path);
    CHECK(model_method_find("autoddpm")->checkpoint_config(&f, json, sizeof json) == 0, "its config parses");
    st_close(&f);
    ddpm_config_default(c);
    CHECK(ddpm_config_parse(c, json, "test") == 0, "config %s", json);
}

static void test_training_loss(const char *ref) {
    const int B = 3;
    ddpm_config c;
    config_of(ref, &c);
    unet u;
    CHECK(unet_create(&u, &c, B, 1) == 0, "unet_create (training)");
    CHECK(checkpoint_load(ref, &u.table, u.params) == 0, "PyTorch state_dict loads strictly");
    CHECK(u.table.n_floats == 74393, "tiny config: %zu parameters (PyTorch: 74393)", u.table.n_floats);
    ddpm_sched s;
    ddpm_sched_init(&s, &c);
    const size_t n = (size_t)B * c.in_chans * c.img_size * c.img_size;
    float *x0 = rd("x0", n), *noise = rd("noise", n), *t = rd("t", B), *scratch = calloc(2 * n, sizeof(float));
    memset(u.grads, 0, sizeof(float) * u.table.n_floats);
    const float loss = ddpm_train_loss(&u, &s, x0, noise, t, B, scratch);
    cmp("noised input x_t", scratch, "xt", n, 1e-5, 1e-5);
    cmp("predicted noise", u.acts[u.n_acts - 1].x, "pred", n, 1e-5, 1e-5);
    float *lr = rd("loss", 1);
    CHECK(fabsf(loss - lr[0]) <= 1e-5f * fabsf(lr[0]), "loss %.9g vs torch %.9g", loss, lr[0]);
    int n_grads = 0, n_unused = 0;
    for (int i = 0; i < u.table.n; i++) {
        const param_entry *e = &u.table.entries[i];
        char name[200], what[200];
        snprintf(name, sizeof name, "grad__%s", e->name);
        snprintf(what, sizeof what, "d %s", e->name);
        if (strstr(e->name, "proj_attn")) {
            // The authors' attention never applies proj_attn: no gradient on either side.
            int zero = 1;
            for (size_t k = 0; k < e->numel; k++) zero &= u.grads[e->offset + k] == 0.0f;
            CHECK(zero, "%s gets no gradient", e->name);
            n_unused++;
            continue;
        }
        cmp(what, u.grads + e->offset, name, e->numel, 1e-4, 1e-5);
        n_grads++;
    }
    CHECK(n_grads == u.table.n - n_unused && n_unused == 2 * 7, "every parameter compared (%d gradients, %d unused)",
          n_grads, n_unused);
    {  // Validation's loss is this objective at its own draws, and an image draws the same alone.
        const size_t img = n / B;
        float *nz = calloc(n, sizeof(float)), *tt = calloc(B, sizeof(float)), *sc = calloc(2 * n, sizeof(float));
        const float le = ddpm_eval_loss(&u, &s, x0, B, 7, nz, tt, sc);
        const float lt = ddpm_train_loss(&u, &s, x0, nz, tt, B, sc);
        CHECK(le == lt, "ddpm_eval_loss %.9g is the training loss %.9g at its draws", le, lt);
        float *nz1 = calloc(img, sizeof(float)), t1;
        ddpm_eval_loss(&u, &s, x0 + 2 * img, 1, 7, nz1, &t1, sc);
        CHECK(t1 == tt[2] && !memcmp(nz1, nz + 2 * img, sizeof(float) * img),
              "an image's validation draws do not depend on its batch (t %g)", t1);
        free(nz), free(tt), free(sc), free(nz1);
    }
    free(x0);
    free(noise);
    free(t);
    free(lr);
    free(scratch);
    ddpm_sched_free(&s);
    unet_free(&u);
}

// overrides: inference settings on top of the checkpoint's config ("" for none), given to the
// reference as well.
static void test_inference(const char *ckpt, const char *overrides) {
    const int B = 2;
    ddpm_config c;
    config_of(ckpt, &c);
    CHECK(ddpm_config_parse(&c, overrides, "test") == 0, "inference settings '%s'", overrides);
    unet u;
    CHECK(unet_create(&u, &c, B, 0) == 0, "unet_create (inference)");
    CHECK(checkpoint_load(ckpt, &u.table, u.params) == 0, "our checkpoint loads");
    ddpm_sched s;
    ddpm_sched_init(&s, &c);
    const size_t img = (size_t)c.in_chans * c.img_size * c.img_size, n = (size_t)B * img;
    float *x = rd("x0", n / B * 3);  // the first B of the reference's 3 images
    char noise_path[4200], x_path[4200], out[4200];
    snprintf(noise_path, sizeof noise_path, "%s/noise_drawn.f32", dir);
    snprintf(x_path, sizeof x_path, "%s/x_infer.f32", dir);
    snprintf(out, sizeof out, "%s/infer", dir);
    tu_write_f32(x_path, x, n);
    FILE *rec = fopen(noise_path, "wb");
    CHECK(rec != NULL, "open %s", noise_path);
    ddpm_noise nz;
    ddpm_noise_init(&nz, c.seed, x, B, img, rec);
    // One denoising step from x taken as x_{t_recon}.
    float *step = malloc(sizeof(float) * n), tt[2] = {(float)c.t_recon, (float)c.t_recon};
    memcpy(step, x, sizeof(float) * n);
    float *zs = malloc(sizeof(float) * n);
    if (c.sampler == DDPM_SAMPLER_DDIM)
        ddim_step(step, unet_forward(&u, x, tt, B), c.t_recon, ddpm_sampler_stride(&c), &s, n);
    else ddpm_step(step, unet_forward(&u, x, tt, B), c.t_recon, &s, &nz, zs);
    float *x_rec = malloc(sizeof(float) * n), *mask = malloc(sizeof(float) * n), *final = malloc(sizeof(float) * n),
          *amap = malloc(sizeof(float) * n);
    autoddpm_infer(&u, &s, x, B, &nz, x_rec, mask, final, amap);
    fclose(rec);
    char cmd[17100];
    snprintf(cmd, sizeof cmd, "infer %s %s %s %d %s %s", ckpt, x_path, noise_path, B, out, overrides);
    char mk[4300];
    snprintf(mk, sizeof mk, "mkdir -p %s", out);
    CHECK(system(mk) == 0, "mkdir %s", out);
    tu_run_python("tools/autoddpm_ref.py", cmd);
    const char *saved = dir;
    dir = out;
    cmp(c.sampler == DDPM_SAMPLER_DDIM ? "one DDIM step" : "one DDPM step", step, "step", n, 1e-4, 0);
    cmp("autoDDPM reconstruction (t_recon)", x_rec, "x_rec", n, 1e-4, 0);
    cmp("autoDDPM mask", mask, "mask", n, 0, 0);
    cmp("autoDDPM stitched + re-sampled image", final, "final", n, 1e-4, 0);
    cmp("autoDDPM anomaly map", amap, "amap", n, 1e-4, 0);
    dir = saved;
    double on = 0;
    for (size_t i = 0; i < n; i++) on += mask[i];
    CHECK(on > 0 && on < n, "the mask is neither empty nor everything (%g of %zu)", on, n);
    free(x);
    free(step);
    free(zs);
    free(x_rec);
    free(mask);
    free(final);
    free(amap);
    ddpm_sched_free(&s);
    unet_free(&u);
}

static void test_interface(const char *ref, const char *ours) {
    const int B = 2;
    CHECK(model_method_find("autoddpm") != NULL, "the registry knows 'autoddpm'");
    model m;
    CHECK(model_load(&m, ref, B) == 0, "model_load of a PyTorch-written autoDDPM state_dict");
    const size_t n = (size_t)B * m.in_chans * m.img_size * m.img_size;
    float *x = rd("x0", n / B * 3), *y = calloc(n, sizeof(float)), *y2 = calloc(n, sizeof(float)), *p = calloc(n, sizeof(float));
    float score = m.method->reconstruct(&m, y, x, NULL, B);
    m.method->reconstruct(&m, y2, x, NULL, B);
    CHECK(!memcmp(y, y2, sizeof(float) * n), "detection is reproducible (seeded by the config and the image)");
    int below = 1;
    for (size_t i = 0; i < n; i++) below &= y[i] <= x[i];
    CHECK(isfinite(score) && score > 0 && below, "reconstruct gives x - map (map >= 0), score %g", score);
    // One image alone gives what it gave inside the batch.
    m.method->reconstruct(&m, y2, x + n / 2, NULL, 1);
    CHECK(!memcmp(y + n / 2, y2, sizeof(float) * n / 2), "an image's result does not depend on its batch");
    m.method->predict(&m, p, x, NULL, B);
    // Training's validation (predict without an output): the diffusion loss, one pass an image, so
    // the batch's value is the mean of its images' own.
    const float v = m.method->predict(&m, NULL, x, NULL, B), v1 = m.method->predict(&m, NULL, x, NULL, 1),
                v2 = m.method->predict(&m, NULL, x + n / 2, NULL, 1);
    CHECK(v == m.method->predict(&m, NULL, x, NULL, B) && fabsf(v - 0.5f * (v1 + v2)) <= 1e-6f * v,
          "validation loss %g is reproducible and the mean of its images' (%g, %g)", v, v1, v2);
    CHECK(model_save(&m, ours, NULL, 0) == 0, "model_save");
    model back;
    CHECK(model_load(&back, ours, B) == 0, "our checkpoint loads back");
    CHECK(!memcmp(back.params, m.params, sizeof(float) * m.table->n_floats), "save/load round trip is exact");
    model_free(&back);
    model_free(&m);

    // Training through the interface: the same seed gives the same loss and gradients.
    model t;
    CHECK(model_create(&t, "autoddpm", "img_size=16,channels=8-16-16,attention=0-1-1,head_ch=8,groups=4", B, 1,
                       "test") == 0,
          "model_create autoddpm (training)");
    t.method->init_params(&t, 5);
    model_zero_grad(&t);
    const float l1 = t.method->train_batch(&t, x, NULL, B, 1, 42);
    float *g1 = malloc(sizeof(float) * t.table->n_floats);
    memcpy(g1, t.grads, sizeof(float) * t.table->n_floats);
    model_zero_grad(&t);
    const float l2 = t.method->train_batch(&t, x, NULL, B, 1, 42);
    CHECK(l1 == l2 && !memcmp(g1, t.grads, sizeof(float) * t.table->n_floats), "train_batch is reproducible (%g)", l1);
    // A fresh U-Net predicts 0 (zero-initialised output conv): the loss is the noise's mean square.
    CHECK(l1 > 0.5f && l1 < 1.5f, "fresh-model loss %g is about 1", l1);
    const float v0 = t.method->predict(&t, NULL, x, NULL, B);
    CHECK(v0 > 0.5f && v0 < 1.5f, "fresh-model validation loss %g is about 1", v0);
    double gs = 0;
    for (size_t i = 0; i < t.table->n_floats; i++) gs += fabs(t.grads[i]);
    CHECK(gs > 0, "gradients flow (|g| sum %g)", gs);
    const float l3 = t.method->train_batch(&t, x, NULL, B, 1, 43);
    CHECK(l3 != l1, "another seed draws other t and noise");
    free(g1);
    model_free(&t);
    free(x);
    free(y);
    free(y2);
    free(p);
}

int main(void) {
    dir = tu_scratch_dir("test_model_autoddpm");
    char args[4200], ref[4200], ours[4200];
    snprintf(args, sizeof args, "dump %s", dir);
    tu_run_python("tools/autoddpm_ref.py", args);
    snprintf(ref, sizeof ref, "%s/ref.safetensors", dir);
    snprintf(ours, sizeof ours, "%s/ours.safetensors", dir);
    test_training_loss(ref);
    test_interface(ref, ours);
    test_inference(ours, "");  // PyTorch loads our checkpoint strictly for this
    // DDIM two training steps a step: t_recon 3 -> 1 -> 0, t_inpaint 2 -> 0 (their timestep lists).
    test_inference(ours, "sampler=ddim,inference_steps=500");
    return tu_finish();
}
