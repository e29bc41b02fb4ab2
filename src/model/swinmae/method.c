// The Swin MAE behind the model interface (model/model.h): its config is swinmae_config as
// JSON, its state a swinmae, its detection reconstruction the masked-token shortcut.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/checkpoint.h"        // checkpoint_config
#include "model/model.h"
#include "model/swinmae/flops.h"     // swinmae_flops_forward, swinmae_flops_train
#include "model/swinmae/swin_mae.h"  // swinmae_*
#include "util/error.h"              // as_fail, as_malloc

static swinmae *impl(const model *m) { return m->impl; }

static int create(model *m, const char *config_json, int max_batch, int training, const char *what) {
    swinmae_config cfg;
    swinmae_config_default(&cfg);
    if (config_json && swinmae_config_parse(&cfg, config_json, what)) return -1;
    swinmae *s = as_malloc(sizeof *s);
    if (swinmae_create(s, &cfg, max_batch, training)) {
        free(s);
        char why[512];
        snprintf(why, sizeof why, "%s", as_error());
        return as_fail("%s: %s", what, why);
    }
    m->impl = s;
    m->table = &s->table;
    m->params = s->params;
    m->grads = s->grads;
    m->img_size = cfg.img_size;
    m->in_chans = cfg.in_chans;
    m->patch_size = cfg.patch_size;
    m->max_batch = max_batch;
    return 0;
}

static void destroy(model *m) {
    if (!m->impl) return;
    swinmae_free(impl(m));
    free(m->impl);
}

static int config_parse(const char *base, const char *text, char *out, size_t n, model_shape *shape,
                        const char *what) {
    swinmae_config cfg;
    swinmae_config_default(&cfg);
    if (base && swinmae_config_parse(&cfg, base, what)) return -1;
    if (text && swinmae_config_parse(&cfg, text, what)) return -1;
    if (swinmae_config_check(&cfg)) return -1;
    if (swinmae_config_to_json(&cfg, out, n)) return as_fail("%s: config too long", what);
    if (shape) *shape = (model_shape){cfg.img_size, cfg.in_chans, cfg.patch_size};
    return 0;
}

static void describe(const model *m, char *out, size_t n) { swinmae_config_describe(&impl(m)->cfg, out, n); }

static int config_to_json(const model *m, char *out, size_t n) { return swinmae_config_to_json(&impl(m)->cfg, out, n); }

static int config_of_checkpoint(const st_file *f, char *out, size_t n) {
    swinmae_config cfg;
    if (checkpoint_config(f, &cfg)) return -1;
    return swinmae_config_to_json(&cfg, out, n) ? as_fail("%s: config too long", f->path) : 0;
}

static void init_params(model *m, uint64_t seed) { params_init(m->table, m->params, seed); }

static float train_batch(model *m, const float *images, const uint8_t *token_mask, int B, int drop_path,
                         uint64_t drop_seed) {
    float loss = swinmae_forward(impl(m), images, token_mask, B, drop_path, drop_seed);
    swinmae_backward(impl(m));
    return loss;
}

static float reconstruct(model *m, float *out, const float *images, const uint8_t *token_mask, int B) {
    swinmae *s = impl(m);
    // Eval mode (DropPath off; the reference forgot this). Detection reads the prediction at the
    // masked tokens only, so the last decoder stage runs only there.
    float loss = swinmae_forward_masked(s, images, token_mask, B);
    swinmae_unpatchify(&s->cfg, swinmae_pred(s), out, B);
    return loss;
}

static float predict(model *m, float *out, const float *images, const uint8_t *token_mask, int B) {
    swinmae *s = impl(m);
    float loss = swinmae_forward(s, images, token_mask, B, 0, 0);
    if (out) swinmae_unpatchify(&s->cfg, swinmae_pred(s), out, B);
    return loss;
}

static int stage_maps(model *m, const float *image, float **maps, int *res, int max) {
    swinmae *s = impl(m);
    const swinmae_config *c = &s->cfg;
    uint8_t *tm = as_calloc((size_t)swinmae_num_tokens(c), 1);
    swinmae_forward(s, image, tm, 1, 0, 0);
    free(tm);
    int n = max < SWINMAE_STAGES ? max : SWINMAE_STAGES;
    for (int st = 0; st < n; st++) {
        int R = swinmae_stage_res(c, st), D = swinmae_stage_dim(c, st);
        const float *x = swinmae_stage_output(s, st);  // (1, R, R, D)
        for (int t = 0; t < R * R; t++) {
            double sum = 0;
            for (int d = 0; d < D; d++) sum += x[(size_t)t * D + d];
            maps[st][t] = (float)(sum / D);
        }
        res[st] = R;
    }
    return n;
}

// The bottleneck (the last encoder stage's output, before the decoder's first expansion)
// averaged over its G/8 x G/8 tokens: one 8C vector per image.
static int latent(model *m, float *out, const float *images, const uint8_t *token_mask, int B) {
    swinmae *s = impl(m);
    const swinmae_config *c = &s->cfg;
    const int R = swinmae_stage_res(c, 3), D = swinmae_stage_dim(c, 3);
    if (!out) return D;
    swinmae_encode(s, images, token_mask, B);
    const float *x = swinmae_stage_output(s, 3);
    for (int b = 0; b < B; b++)
        for (int d = 0; d < D; d++) {
            double sum = 0;
            for (int t = 0; t < R * R; t++) sum += x[((size_t)b * R * R + t) * D + d];
            out[(size_t)b * D + d] = (float)(sum / (R * R));
        }
    return D;
}

static double flops_per_image(const model *m, int training) {
    return training ? swinmae_flops_train(&impl(m)->cfg) : swinmae_flops_forward(&impl(m)->cfg);
}

// The paper's recipe as the reference code runs it (reference notes, sec. 4): 400 epochs, batch
// 24 on T2 and 10 on T1, train's learning-rate schedule (Adam 1e-3 in the paper).
static const model_preset presets[] = {
    {"tiny", "img_size=64,patch_size=4,window=2,embed_dim=8,depths=[1,1,1,1],num_heads=[1,1,2,2],in_chans=1"},
    {NULL, NULL}};
static const model_recipe recipe = {.epochs = 400, .batch = 24, .batch_t1 = 10,
                                    .source = "the paper (400 epochs, Adam 1e-3) and its reference code (batch 24 "
                                              "on T2, 10 on T1)",
                                    .presets = presets};

const model_method model_swinmae = {
    .name = "swinmae",
    .title = "Swin MAE",
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
    .stage_maps = stage_maps,
    .flops_per_image = flops_per_image,
    .latent = latent,
    .recipe = &recipe,
};
