// f-AnoGAN behind the model interface (model/model.h). It reads no token mask. Images arrive in
// [0, 1] and are mapped to the generator's [-1, 1] (2x - 1) and back, as the authors' loader does.
// Detection's reconstruction is G(E(x)) in evaluation mode, and the anomaly map its residual.
//
// Training takes whole steps (train_step) with the authors' optimisers (Adam for the critic and
// the generator, TF's RMSProp for the encoder), whose moments live in the trainer's buffers (saved
// with the run): the first
// gan_frac of the run's steps are WGAN-GP steps (a critic update on every batch, a generator
// update after every n_critic-th), the rest izi_f encoder steps with G and the critic frozen. train_batch (the benchmark's step) accumulates the gradients of one
// critic step, one generator step and one izi_f step, each network its own loss.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/fanogan/fanogan.h"  // fanogan_*
#include "model/model.h"
#include "train/adamw.h"  // adamw_*: the method's own optimisers
#include "util/error.h"   // as_fail, as_calloc
#include "util/rng.h"     // rng_seed_stream, rng_normal, rng_uniform

enum { NET_GEN, NET_CRITIC, NET_ENC, N_NETS };
static const char *const NET_NAMES[N_NETS] = {"generator", "critic", "encoder"};

typedef struct fg_impl {
    fanogan f;
    float *x, *y, *z, *alpha;  // images in [-1, 1], a reconstruction, latent draws, interpolation weights
    // Per network: its floats [base, base + len) of the parameter buffer and its optimiser's
    // trainable spans relative to base (in an adamw; the encoder's RMSProp reads only the spans);
    // the moments are the caller's (train_step's opt_m, opt_v from base).
    size_t base[N_NETS], len[N_NETS];
    adamw opt[N_NETS];
    int stage;  // 0: not trained in this process yet, 1: WGAN-GP, 2: izi_f
} fg_impl;

static fg_impl *impl(const model *m) { return m->impl; }

static int config_from(fanogan_config *c, const char *base, const char *text, const char *what) {
    fanogan_config_default(c);
    if (base && fanogan_config_parse(c, base, what)) return -1;
    if (text && fanogan_config_parse(c, text, what)) return -1;
    return fanogan_config_check(c);
}

static void net_extent(fg_impl *s, int net) {
    int b, e;
    fanogan_net_span(&s->f, NET_NAMES[net], &b, &e);
    size_t lo = (size_t)-1, hi = 0;
    for (int i = b; i < e; i++) {
        const param_entry *pe = &s->f.table.entries[i];
        if (pe->dtype != PARAM_F32) continue;
        if (pe->offset < lo) lo = pe->offset;
        if (pe->offset + pe->numel > hi) hi = pe->offset + pe->numel;
    }
    s->base[net] = lo;
    s->len[net] = hi - lo;
}

static void opt_init(fg_impl *s, int net) {
    const fanogan_config *c = &s->f.cfg;
    // Adam (no weight decay), eps 1e-8 as torch's and TF's defaults; the running statistics are
    // not trainable and stay outside its spans. Not adamw_init: the moments are not its own.
    adamw *o = &s->opt[net];
    memset(o, 0, sizeof *o);
    o->h = (adamw_hparams){c->beta1, c->beta2, 1e-8, 0.0};
    o->n = s->len[net];
    int b, e;
    fanogan_net_span(&s->f, NET_NAMES[net], &b, &e);
    for (int i = b; i < e; i++) {
        const param_entry *pe = &s->f.table.entries[i];
        if (pe->dtype == PARAM_F32 && pe->trainable) adamw_add_span(&s->opt[net], pe->offset - s->base[net], pe->numel);
    }
}

static int create(model *m, const char *config_json, int max_batch, int training, const char *what) {
    fanogan_config cfg;
    if (config_from(&cfg, config_json, NULL, what)) return -1;
    fg_impl *s = as_calloc(1, sizeof *s);
    if (fanogan_create(&s->f, &cfg, max_batch, training)) {
        free(s);
        char why[512];
        snprintf(why, sizeof why, "%s", as_error());
        return as_fail("%s: %s", what, why);
    }
    const size_t px = (size_t)max_batch * cfg.in_chans * cfg.img_size * cfg.img_size;
    s->x = as_calloc(px, sizeof(float));
    s->y = as_calloc(px, sizeof(float));
    s->z = as_calloc((size_t)max_batch * cfg.z_dim, sizeof(float));
    s->alpha = as_calloc((size_t)max_batch, sizeof(float));
    for (int k = 0; k < N_NETS; k++) {
        net_extent(s, k);
        if (training) opt_init(s, k);
    }
    m->impl = s;
    m->table = &s->f.table;
    m->params = s->f.params;
    m->grads = s->f.grads;
    m->img_size = cfg.img_size;
    m->in_chans = cfg.in_chans;
    m->patch_size = cfg.patch_size;
    m->max_batch = max_batch;
    return 0;
}

static void destroy(model *m) {
    fg_impl *s = impl(m);
    if (!s) return;
    for (int k = 0; k < N_NETS; k++) free(s->opt[k].spans);
    fanogan_free(&s->f);
    free(s->x);
    free(s->y);
    free(s->z);
    free(s->alpha);
    free(s);
}

static int config_parse(const char *base, const char *text, char *out, size_t n, model_shape *shape,
                        const char *what) {
    fanogan_config cfg;
    if (config_from(&cfg, base, text, what)) return -1;
    if (fanogan_config_to_json(&cfg, out, n)) return as_fail("%s: config too long", what);
    if (shape) *shape = (model_shape){cfg.img_size, cfg.in_chans, cfg.patch_size};
    return 0;
}

static void describe(const model *m, char *out, size_t n) { fanogan_config_describe(&impl(m)->f.cfg, out, n); }

static int config_to_json(const model *m, char *out, size_t n) {
    return fanogan_config_to_json(&impl(m)->f.cfg, out, n);
}

static int config_of_checkpoint(const st_file *f, char *out, size_t n) {
    // The tensor shapes fix dim and z_dim but not img_size's blocks beyond them nor the recipe:
    // the file must carry its config, as anoswin writes it.
    return model_config_of_metadata(f, "an f-AnoGAN", config_parse, out, n);
}

static void init_params(model *m, uint64_t seed) { params_init(m->table, m->params, seed); }

static size_t image_floats(const fg_impl *s, int B) {
    return (size_t)B * s->f.cfg.in_chans * s->f.cfg.img_size * s->f.cfg.img_size;
}

static void to_gan_range(fg_impl *s, const float *images, int B) {
    const size_t n = image_floats(s, B);
    for (size_t i = 0; i < n; i++) s->x[i] = 2.0f * images[i] - 1.0f;
}

// z (B, z_dim) ~ N(0, 1) (the authors' RAND_SAMPLING 'normal') and alpha (B) ~ U[0, 1), from
// stream `stream` of seed.
static void draw(fg_impl *s, int B, uint64_t seed, uint64_t stream) {
    rng r;
    rng_seed_stream(&r, seed, stream);
    const size_t nz = (size_t)B * s->f.cfg.z_dim;
    for (size_t i = 0; i < nz; i++) s->z[i] = (float)rng_normal(&r);
    for (int b = 0; b < B; b++) s->alpha[b] = (float)rng_uniform(&r);
}

static void zero_net(fg_impl *s, int net) { memset(s->f.grads + s->base[net], 0, sizeof(float) * s->len[net]); }

// Adam step number `count` (1-based) of one network, its moments at opt_m/opt_v + base.
static void update_net(fg_impl *s, int net, float lr, long count, float *opt_m, float *opt_v) {
    adamw *o = &s->opt[net];
    o->m = opt_m + s->base[net];
    o->v = opt_v + s->base[net];
    o->step = count - 1;  // adamw_update counts this step
    adamw_update(o, s->f.params + s->base[net], s->f.grads + s->base[net], lr);
    o->m = o->v = NULL;
}

// The encoder's optimiser in the authors' z_encoding_izif.py: TF1's RMSPropOptimizer(lr) with its
// defaults (decay 0.9, momentum 0, epsilon 1e-10), whose mean-square slot starts at 1:
//   ms = ms + (g^2 - ms) * (1 - 0.9);  p -= lr * g / sqrt(ms + 1e-10).
// ms lives in opt_v (zero at the start of a run), so step `count` 1 sets it to 1 first.
static void rmsprop_update(fg_impl *s, int net, float lr, long count, float *opt_v) {
    const adamw *o = &s->opt[net];
    float *p = s->f.params + s->base[net], *ms = opt_v + s->base[net];
    const float *g = s->f.grads + s->base[net];
    for (int k = 0; k < o->num_spans; k++) {
        const size_t begin = o->spans[k][0], end = o->spans[k][1];
#pragma omp parallel for schedule(static)
        for (size_t i = begin; i < end; i++) {
            if (count == 1) ms[i] = 1.0f;
            ms[i] += (g[i] * g[i] - ms[i]) * 0.1f;
            p[i] -= lr * g[i] / sqrtf(ms[i] + 1e-10f);
        }
    }
}

static float train_step(model *m, const float *images, int B, long step, long total, uint64_t seed, float *opt_m,
                        float *opt_v) {
    fg_impl *s = impl(m);
    const fanogan_config *c = &s->f.cfg;
    to_gan_range(s, images, B);
    long gan_steps = (long)((double)c->gan_frac * (double)total);
    if (gan_steps < 1) gan_steps = 1;
    // Each network's Adam step count follows from the global step, so a resumed run needs no
    // more state than the moments.
    if (step < gan_steps) {
        s->stage = 1;
        draw(s, B, seed, 0);
        zero_net(s, NET_CRITIC);
        const float loss = fanogan_critic_step(&s->f, s->x, s->z, s->alpha, B);
        update_net(s, NET_CRITIC, c->lr, step + 1, opt_m, opt_v);
        if ((step + 1) % c->n_critic == 0) {
            draw(s, B, seed, 1);
            zero_net(s, NET_GEN);
            fanogan_generator_step(&s->f, s->z, B);
            update_net(s, NET_GEN, c->lr, (step + 1) / c->n_critic, opt_m, opt_v);
        }
        return loss;
    }
    s->stage = 2;
    zero_net(s, NET_ENC);
    const float loss = fanogan_encoder_step(&s->f, s->x, B);
    rmsprop_update(s, NET_ENC, c->enc_lr, step - gan_steps + 1, opt_v);
    return loss;
}

static float train_batch(model *m, const float *images, const uint8_t *token_mask, int B, int drop_path,
                         uint64_t drop_seed) {
    (void)token_mask;
    (void)drop_path;
    fg_impl *s = impl(m);
    to_gan_range(s, images, B);
    draw(s, B, drop_seed, 0);
    const float loss = fanogan_critic_step(&s->f, s->x, s->z, s->alpha, B);
    draw(s, B, drop_seed, 1);
    fanogan_generator_step(&s->f, s->z, B);
    fanogan_encoder_step(&s->f, s->x, B);
    return loss;
}

static float predict(model *m, float *out, const float *images, const uint8_t *token_mask, int B) {
    (void)token_mask;
    fg_impl *s = impl(m);
    to_gan_range(s, images, B);
    const float loss = fanogan_reconstruct(&s->f, s->y, s->x, B, NULL);
    if (out) {
        const size_t n = image_floats(s, B);
        for (size_t i = 0; i < n; i++) out[i] = 0.5f * (s->y[i] + 1.0f);
    }
    // The izi_f loss; none while this process is still in the GAN stage (the encoder is untrained
    // then, so a validation loss would only pick a meaningless "best" checkpoint).
    return s->stage == 1 ? NAN : loss;
}

static float reconstruct(model *m, float *out, const float *images, const uint8_t *token_mask, int B) {
    return predict(m, out, images, token_mask, B);
}

static void image_score(model *m, float *score, const float *images, int B) {
    fg_impl *s = impl(m);
    to_gan_range(s, images, B);
    fanogan_image_score(&s->f, score, s->x, B);
}

// 2 FLOPs per multiply-add of a k x k convolution from ci to co channels on an s x s output.
static double conv_flops(double ci, double co, double k, double s) { return 2.0 * ci * co * k * k * s * s; }

static void net_flops(const fanogan_config *c, double *fg, double *fd, double *fe) {
    const int n = fanogan_blocks(c), img = c->img_size;
    double g = 2.0 * c->z_dim * fanogan_feat(c), d = conv_flops(c->in_chans, fanogan_ch(c, 0), 3, img);
    for (int j = 0; j < n; j++) {
        const double ci = fanogan_ch(c, n - j), co = fanogan_ch(c, n - j - 1), S = 8 << j;
        g += conv_flops(ci, co, 1, S / 2) + conv_flops(ci, co, 3, S) + conv_flops(co, co, 3, S);
    }
    g += conv_flops(fanogan_ch(c, 0), c->in_chans, 3, img);
    for (int i = 0; i < n; i++) {
        const double ci = fanogan_ch(c, i), co = fanogan_ch(c, i + 1), S = img >> i;
        d += conv_flops(ci, co, 1, S / 2) + conv_flops(ci, ci, 3, S) + conv_flops(ci, co, 3, S);
    }
    *fg = g;
    *fd = d + 2.0 * fanogan_feat(c);
    *fe = d + 2.0 * fanogan_feat(c) * c->z_dim;
}

static double flops_per_image(const model *m, int training) {
    // Forward: E, G and the critic's features of x and G(E(x)). Training (train_batch): a critic
    // step (G; the critic's forward on real, fake and x_hat, two parameter backwards, an input
    // backward, the tangent and the dual backward: about 13 critic forwards), a generator step
    // (3 G + 2 critic) and an izi_f step (3 E + 2 G + 3 critic).
    double g, d, e;
    net_flops(&impl(m)->f.cfg, &g, &d, &e);
    return training ? 6.0 * g + 18.0 * d + 3.0 * e : e + g + 2.0 * d;
}

// The authors' wgangp_64x64.py: batch 64, 7 GAN epochs; the encoder then gets as many epochs
// (gan_frac 0.5) instead of their 50,000 iterations. The optimisers' rates are in the config.
// "paper-size" lands within 0.2% of the paper's 5.56M parameters (dim 29: not a published value).
static const model_preset presets[] = {
    {"tiny", "img_size=32,dim=8,z_dim=16,patch_size=8,n_critic=2,gan_frac=0.5"},
    {"paper-size", "dim=29"},
    {NULL, NULL}};
static const model_recipe recipe = {.epochs = 14, .batch = 64,
                                    .source = "the authors' code (wgangp_64x64.py: batch 64, 7 GAN epochs; the "
                                              "encoder as many epochs)",
                                    .presets = presets};

const model_method model_fanogan = {
    .name = "fanogan",
    .title = "f-AnoGAN (Schlegl et al. 2019)",
    .config_parse = config_parse,
    .describe = describe,
    .create = create,
    .free = destroy,
    .config_to_json = config_to_json,
    .init_params = init_params,
    .checkpoint_config = config_of_checkpoint,
    .train_batch = train_batch,
    .train_step = train_step,
    .reconstruct = reconstruct,
    .predict = predict,
    .stage_maps = NULL,
    .whole_image = 1,
    .flops_per_image = flops_per_image,
    .image_score = image_score,
    .image_score_name = "izi_f anomaly score: MSE(x, G(E(x))) + kappa MSE(f(x), f(G(E(x)))), images in [-1, 1]",
    .recipe = &recipe,
};
