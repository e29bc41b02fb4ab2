// autoDDPM behind the model interface (model/model.h). It reads no token mask. Training is the
// DDPM's epsilon-prediction loss with t and the noise drawn from the step's seed; detection
// (reconstruct) runs autoDDPM's mask-stitch-resample inference once per slice and returns
// x - map, so that the residual |x - out| that detection scores is autoDDPM's anomaly map;
// predict returns the stitched and re-sampled pseudo-healthy image itself, and without an output
// image (training's validation) the diffusion loss.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/autoddpm/ddpm.h"  // ddpm_*, autoddpm_infer, unet_*
#include "model/model.h"
#include "util/error.h"  // as_fail, as_calloc
#include "util/rng.h"    // rng_seed_stream, rng_below, rng_normal

typedef struct ddpm_impl {
    unet u;
    ddpm_sched s;
    float *noise, *t, *scratch;  // the loss's draws: (max_batch, img), (max_batch), 2 x (max_batch, img)
} ddpm_impl;

static ddpm_impl *impl(const model *m) { return m->impl; }

static int config_from(ddpm_config *c, const char *base, const char *text, const char *what) {
    ddpm_config_default(c);
    if (base && ddpm_config_parse(c, base, what)) return -1;
    if (text && ddpm_config_parse(c, text, what)) return -1;
    return ddpm_config_check(c);
}

static int create(model *m, const char *config_json, int max_batch, int training, const char *what) {
    ddpm_config cfg;
    if (config_from(&cfg, config_json, NULL, what)) return -1;
    if (max_batch > 64) return as_fail("%s: autoDDPM batches hold at most 64 images (asked %d)", what, max_batch);
    ddpm_impl *s = as_calloc(1, sizeof *s);
    if (unet_create(&s->u, &cfg, max_batch, training)) {
        free(s);
        char why[512];
        snprintf(why, sizeof why, "%s", as_error());
        return as_fail("%s: %s", what, why);
    }
    ddpm_sched_init(&s->s, &cfg);
    {  // the diffusion loss's draws: training, and validation (predict without out) on any model
        const size_t n = (size_t)max_batch * ddpm_img_floats(&cfg);
        s->noise = as_calloc(n, sizeof(float));
        s->t = as_calloc((size_t)max_batch, sizeof(float));
        s->scratch = as_calloc(2 * n, sizeof(float));
    }
    m->impl = s;
    m->table = &s->u.table;
    m->params = s->u.params;
    m->grads = s->u.grads;
    m->img_size = cfg.img_size;
    m->in_chans = cfg.in_chans;
    m->patch_size = cfg.patch_size;
    m->max_batch = max_batch;
    return 0;
}

static void destroy(model *m) {
    ddpm_impl *s = impl(m);
    if (!s) return;
    unet_free(&s->u);
    ddpm_sched_free(&s->s);
    free(s->noise);
    free(s->t);
    free(s->scratch);
    free(s);
}

static int config_parse(const char *base, const char *text, char *out, size_t n, model_shape *shape,
                        const char *what) {
    ddpm_config cfg;
    if (config_from(&cfg, base, text, what)) return -1;
    if (ddpm_config_to_json(&cfg, out, n)) return as_fail("%s: config too long", what);
    if (shape) *shape = (model_shape){cfg.img_size, cfg.in_chans, cfg.patch_size};
    return 0;
}

static void describe(const model *m, char *out, size_t n) { ddpm_config_describe(&impl(m)->u.cfg, out, n); }

static int config_to_json(const model *m, char *out, size_t n) { return ddpm_config_to_json(&impl(m)->u.cfg, out, n); }

static int config_of_checkpoint(const st_file *f, char *out, size_t n) {
    return model_config_of_metadata(f, "an autoDDPM", config_parse, out, n);
}

static void init_params(model *m, uint64_t seed) { params_init(m->table, m->params, seed); }

static float train_batch(model *m, const float *images, const uint8_t *token_mask, int B, int drop_path,
                         uint64_t drop_seed) {
    (void)token_mask;
    (void)drop_path;  // no stochastic regularisation; the diffusion's own draws always happen
    ddpm_impl *s = impl(m);
    const size_t img = ddpm_img_floats(&s->u.cfg);
    rng r;
    rng_seed_stream(&r, drop_seed, 0);
    for (int b = 0; b < B; b++) s->t[b] = (float)rng_below(&r, (uint32_t)s->s.T);
    for (size_t i = 0; i < (size_t)B * img; i++) s->noise[i] = (float)rng_normal(&r);
    return ddpm_train_loss(&s->u, &s->s, images, s->noise, s->t, B, s->scratch);
}

static float run(model *m, float *out, const float *images, int B, int as_map) {
    ddpm_impl *s = impl(m);
    const size_t img = ddpm_img_floats(&s->u.cfg), n = (size_t)B * img;
    float *amap = as_malloc(sizeof(float) * n), *final = as_malloc(sizeof(float) * n);
    ddpm_noise nz;
    ddpm_noise_init(&nz, s->u.cfg.seed, images, B, img, NULL);
    autoddpm_infer(&s->u, &s->s, images, B, &nz, NULL, NULL, final, amap);
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += amap[i];
    if (out)
        for (size_t i = 0; i < n; i++) out[i] = as_map ? images[i] - amap[i] : final[i];
    free(amap);
    free(final);
    return (float)(sum / (double)n);  // the authors' anomaly score: the map's mean
}

static float reconstruct(model *m, float *out, const float *images, const uint8_t *token_mask, int B) {
    (void)token_mask;
    return run(m, out, images, B, 1);
}

// Without out (training's validation) the loss is the training objective at draws seeded by the
// config's seed (ddpm_eval_loss), one U-Net pass per image; a whole inference per validation slice
// made one epoch's validation cost ~10 epochs of training at the demo size.
#define VAL_SALT 0x76616c6964617465ULL

static float predict(model *m, float *out, const float *images, const uint8_t *token_mask, int B) {
    (void)token_mask;
    ddpm_impl *s = impl(m);
    if (!out) return ddpm_eval_loss(&s->u, &s->s, images, B, s->u.cfg.seed ^ VAL_SALT, s->noise, s->t, s->scratch);
    return run(m, out, images, B, 0);
}

static double flops_per_image(const model *m, int training) {
    // One U-Net forward: 2 FLOPs per multiply-add of every convolution, Linear and attention
    // product (GroupNorm, SiLU and the softmax left out). Training is one noised forward and its
    // backward (~3x). Detecting one slice costs (t_recon + 1) + t_inpaint * resample forwards
    // (451 at the paper's settings).
    const ddpm_impl *s = impl(m);
    double f = 0;
    for (int k = 0; k < s->u.n_steps; k++) {
        const unet_step *st = &s->u.steps[k];
        const double P = (double)st->side * st->side;
        switch (st->kind) {
        case 1: f += 2.0 * P * 9 * ((double)st->cin * st->cout + (double)st->cout * st->cout) +
                     (st->cin != st->cout ? 2.0 * P * st->cin * st->cout : 0); break;  // res block
        case 2: f += 2.0 * P * 3 * st->cin * st->cin + 4.0 * P * P * st->cin; break;   // attention
        case 0: case 4: f += 2.0 * P * 9 * st->cin * st->cout * (st->kind == 4 ? 4 : 1); break;
        case 3: f += 2.0 * P / 4 * 9 * st->cin * st->cout; break;                       // stride 2
        case 6: f += 2.0 * P * 9 * st->cin * st->cout; break;
        default: break;
        }
    }
    return training ? 3.0 * f : f;
}

// The authors' trainer (autoddpm.yaml, projects/autoddpm/Trainer.py): batch 16, Adam at a
// constant 1e-4, 3000 epochs on IXI. "tiny": smoke runs and tests (64 px, 1.2M parameters, short
// noise levels so that detecting a slice takes 27 forwards instead of 451).
static const model_preset presets[] = {
    {"tiny", "img_size=64,channels=32-64-64,head_ch=64,groups=8,t_recon=10,t_inpaint=4,resample=4"},
    {NULL, NULL}};
static const model_recipe recipe = {.epochs = 3000, .batch = 16, .lr = 1e-4, .constant_lr = 1,
                                    .source = "the authors' code (autoddpm.yaml: batch 16, Adam 1e-4, 3000 epochs)",
                                    .presets = presets};

const model_method model_autoddpm = {
    .name = "autoddpm",
    .title = "autoDDPM (Bercea et al. 2023)",
    .config_parse = config_parse,
    .describe = describe,
    .create = create,
    .free = destroy,
    .config_to_json = config_to_json,
    .init_params = init_params,
    .checkpoint_config = config_of_checkpoint,
    .train_batch = train_batch,
    .reconstruct = reconstruct,
    .predict = predict,
    .stage_maps = NULL,
    .whole_image = 1,
    .flops_per_image = flops_per_image,
    .latent = NULL,
    .recipe = &recipe,
};
