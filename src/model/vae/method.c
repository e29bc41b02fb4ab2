// The VAE behind the model interface (model/model.h). It reads no token mask: detection's
// reconstruction is the evaluation forward (BatchNorm running statistics, z = mu, no dropout) and
// the anomaly map is its residual. Training draws the reparameterisation noise (always) and the
// dropout scales (when drop_path is 1) from the step's seed.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "model/vae/vae.h"  // vae_*
#include "util/error.h"     // as_fail, as_malloc
#include "util/rng.h"       // rng_seed_stream, rng_normal, rng_uniform

typedef struct vae_impl {
    vae v;
    float *eps, *drop[3];  // (max_batch, z_dim), (.., z_dim) x 2, (.., flat)
} vae_impl;

static vae_impl *impl(const model *m) { return m->impl; }

static int config_from(vae_config *c, const char *base, const char *text, const char *what) {
    vae_config_default(c);
    if (base && vae_config_parse(c, base, what)) return -1;
    if (text && vae_config_parse(c, text, what)) return -1;
    return vae_config_check(c);
}

static int create(model *m, const char *config_json, int max_batch, int training, const char *what) {
    vae_config cfg;
    if (config_from(&cfg, config_json, NULL, what)) return -1;
    vae_impl *s = as_calloc(1, sizeof *s);
    if (vae_create(&s->v, &cfg, max_batch, training)) {
        free(s);
        char why[512];
        snprintf(why, sizeof why, "%s", as_error());
        return as_fail("%s: %s", what, why);
    }
    if (training) {
        const size_t B = (size_t)max_batch, Z = (size_t)cfg.z_dim, F = (size_t)vae_flat(&cfg);
        s->eps = as_calloc(B * Z, sizeof(float));
        s->drop[0] = as_calloc(B * Z, sizeof(float));
        s->drop[1] = as_calloc(B * Z, sizeof(float));
        s->drop[2] = as_calloc(B * F, sizeof(float));
    }
    m->impl = s;
    m->table = &s->v.table;
    m->params = s->v.params;
    m->grads = s->v.grads;
    m->img_size = cfg.img_size;
    m->in_chans = cfg.in_chans;
    m->patch_size = cfg.patch_size;
    m->max_batch = max_batch;
    return 0;
}

static void destroy(model *m) {
    vae_impl *s = impl(m);
    if (!s) return;
    vae_free(&s->v);
    free(s->eps);
    for (int i = 0; i < 3; i++) free(s->drop[i]);
    free(s);
}

static int config_parse(const char *base, const char *text, char *out, size_t n, model_shape *shape,
                        const char *what) {
    vae_config cfg;
    if (config_from(&cfg, base, text, what)) return -1;
    if (vae_config_to_json(&cfg, out, n)) return as_fail("%s: config too long", what);
    if (shape) *shape = (model_shape){cfg.img_size, cfg.in_chans, cfg.patch_size};
    return 0;
}

static void describe(const model *m, char *out, size_t n) { vae_config_describe(&impl(m)->v.cfg, out, n); }

static int config_to_json(const model *m, char *out, size_t n) { return vae_config_to_json(&impl(m)->v.cfg, out, n); }

static int config_of_checkpoint(const st_file *f, char *out, size_t n) {
    // Our checkpoints carry the config; a PyTorch state_dict without it is not told apart from
    // the many configs of the same shapes, so it needs the metadata.
    return model_config_of_metadata(f, "a VAE", config_parse, out, n);
}

static void init_params(model *m, uint64_t seed) { params_init(m->table, m->params, seed); }

static float train_batch(model *m, const float *images, const uint8_t *token_mask, int B, int drop_path,
                         uint64_t drop_seed) {
    (void)token_mask;
    vae_impl *s = impl(m);
    const vae_config *c = &s->v.cfg;
    const size_t nz = (size_t)B * c->z_dim, nf = (size_t)B * vae_flat(c);
    rng r;
    rng_seed_stream(&r, drop_seed, 0);
    for (size_t i = 0; i < nz; i++) s->eps[i] = (float)rng_normal(&r);
    const float *const *drop = NULL;
    if (drop_path && c->dropout > 0.0f) {
        // Inverted dropout as Keras applies it: keep with probability 1-p, scaled by 1/(1-p).
        const float keep = 1.0f / (1.0f - c->dropout);
        const size_t len[3] = {nz, nz, nf};
        for (int t = 0; t < 3; t++) {
            rng_seed_stream(&r, drop_seed, (uint64_t)t + 1);
            for (size_t i = 0; i < len[t]; i++) s->drop[t][i] = rng_uniform(&r) < (double)c->dropout ? 0.0f : keep;
        }
        drop = (const float *const *)s->drop;
    }
    float loss = vae_forward(&s->v, images, s->eps, drop, B, 1);
    vae_backward(&s->v, images, B);
    return loss;
}

static float predict(model *m, float *out, const float *images, const uint8_t *token_mask, int B) {
    (void)token_mask;
    vae_impl *s = impl(m);
    const vae_config *c = &s->v.cfg;
    const size_t img = (size_t)c->in_chans * c->img_size * c->img_size;
    vae_forward(&s->v, images, NULL, NULL, B, 0);
    if (out) memcpy(out, s->v.out, sizeof(float) * img * (size_t)B);
    // The loss of a mask-free method: the mean residual per pixel (L1 or squared, as training).
    return s->v.rec / (float)img;
}

static float reconstruct(model *m, float *out, const float *images, const uint8_t *token_mask, int B) {
    return predict(m, out, images, token_mask, B);
}

// mu of the evaluation forward (z = mu there). The VAE reads no mask, so a hidden token is its
// pixels set to 0: the latent analysis' masked panel then shows the VAE the slice without its
// lesion, the closest a mask-free method comes to the MAE's hidden tokens.
static int latent(model *m, float *out, const float *images, const uint8_t *token_mask, int B) {
    vae_impl *s = impl(m);
    const vae_config *c = &s->v.cfg;
    if (!out) return c->z_dim;
    const int S = c->img_size, P = c->patch_size, G = S / P, C = c->in_chans;
    const size_t img = (size_t)C * S * S;
    float *x = as_malloc(sizeof(float) * img * (size_t)B);
    memcpy(x, images, sizeof(float) * img * (size_t)B);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < G * G; t++) {
            if (!token_mask[(size_t)b * G * G + t]) continue;
            for (int ch = 0; ch < C; ch++)
                for (int y = (t / G) * P; y < (t / G + 1) * P; y++)
                    memset(x + (size_t)b * img + ((size_t)ch * S + y) * S + (t % G) * P, 0, sizeof(float) * (size_t)P);
        }
    vae_forward(&s->v, x, NULL, NULL, B, 0);
    memcpy(out, s->v.mu, sizeof(float) * (size_t)B * c->z_dim);
    free(x);
    return c->z_dim;
}

static double flops_per_image(const model *m, int training) {
    // 2 FLOPs per multiply-add of every convolution and dense layer; a training step is about 3x.
    const vae_config *c = &impl(m)->v.cfg;
    const int n = vae_blocks(c), k = c->kernel;
    double f = 0;
    int side = c->img_size, in = c->in_chans;
    for (int i = 0; i < n; i++) {
        side /= 2;
        f += 2.0 * in * vae_enc_ch(c, i) * k * k * side * side;
        in = vae_enc_ch(c, i);
    }
    const double rr = (double)c->res * c->res;
    f += 2.0 * 2.0 * in * vae_bottleneck_ch(c) * rr + 3 * 2.0 * vae_flat(c) * c->z_dim;
    side = c->res;
    for (int j = 0; j < n; j++) {
        f += 2.0 * in * vae_dec_ch(c, j) * k * k * side * side;
        in = vae_dec_ch(c, j);
        side *= 2;
    }
    f += 2.0 * in * c->in_chans * side * side;
    return training ? 3.0 * f : f;
}

// The authors' run.py defaults (StefanDenn3r/Unsupervised_Anomaly_Detection_Brain_MRI): batch 8,
// Adam at a constant 1e-4, 1000 epochs. "paper-size" is the family member nearest the paper's
// 4.96M parameters (4.51M; not a published setting, docs/baselines.md).
static const model_preset presets[] = {
    {"tiny", "img_size=64,res=8,base_ch=4,max_ch=8,z_dim=16"},
    {"paper-size", "z_dim=1024"},
    {NULL, NULL}};
static const model_recipe recipe = {.epochs = 1000, .batch = 8, .lr = 1e-4, .constant_lr = 1,
                                    .source = "the authors' code (run.py: batch 8, Adam 1e-4, 1000 epochs)",
                                    .presets = presets};

const model_method model_vae = {
    .name = "vae",
    .title = "VAE (Baur et al. 2021)",
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
    .latent = latent,
    .recipe = &recipe,
};
