// The ViT MAE behind the model interface (model/model.h). It reads the token masks as the Swin MAE
// does (training's random units, detection's sliding windows), so detection scores it window by
// window on the same grid; it has no stochastic regularisation (models_mae.py pretrains without
// DropPath), so drop_path and drop_seed change nothing.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "model/vitmae/vitmae.h"  // vitmae_*
#include "util/error.h"           // as_fail, as_calloc

static vitmae *impl(const model *m) { return m->impl; }

static int config_from(vitmae_config *c, const char *base, const char *text, const char *what) {
    vitmae_config_default(c);
    if (base && vitmae_config_parse(c, base, what)) return -1;
    if (text && vitmae_config_parse(c, text, what)) return -1;
    return vitmae_config_check(c);
}

static int create(model *m, const char *config_json, int max_batch, int training, const char *what) {
    vitmae_config cfg;
    if (config_from(&cfg, config_json, NULL, what)) return -1;
    vitmae *s = as_calloc(1, sizeof *s);
    if (vitmae_create(s, &cfg, max_batch, training)) {
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
    vitmae_free(impl(m));
    free(m->impl);
}

static int config_parse(const char *base, const char *text, char *out, size_t n, model_shape *shape,
                        const char *what) {
    vitmae_config cfg;
    if (config_from(&cfg, base, text, what)) return -1;
    if (vitmae_config_to_json(&cfg, out, n)) return as_fail("%s: config too long", what);
    if (shape) *shape = (model_shape){cfg.img_size, cfg.in_chans, cfg.patch_size};
    return 0;
}

static void describe(const model *m, char *out, size_t n) { vitmae_config_describe(&impl(m)->cfg, out, n); }

static int config_to_json(const model *m, char *out, size_t n) { return vitmae_config_to_json(&impl(m)->cfg, out, n); }

// Blocks named prefix.<i>.norm1.weight present from 0 on.
static int count_blocks(const st_file *f, const char *prefix) {
    char name[96];
    int n = 0;
    for (;; n++) {
        snprintf(name, sizeof name, "%s.%d.norm1.weight", prefix, n);
        if (!st_find(f, name)) return n;
    }
}

static int config_of_checkpoint(const st_file *f, char *out, size_t n) {
    vitmae_config cfg;
    const char *json = st_meta(f, "anoswin.config");
    if (json) {
        char what[4200];
        snprintf(what, sizeof what, "%s: metadata anoswin.config", f->path);
        if (config_from(&cfg, json, NULL, what)) return -1;
    } else {
        // A models_mae.py state_dict without our metadata: the sizes from the tensor shapes, the
        // head counts as every models_mae.py config has them (64-wide encoder heads, 16 decoder
        // heads), norm_pix_loss 0 (it changes no tensor).
        const st_tensor *pw = st_find(f, "patch_embed.proj.weight"), *pe = st_find(f, "pos_embed");
        const st_tensor *de = st_find(f, "decoder_embed.weight"), *fc = st_find(f, "blocks.0.mlp.fc1.weight");
        if (!pw || !pe || !de || !fc || pw->ndim != 4 || pe->ndim != 3 || de->ndim != 2 || fc->ndim != 2)
            return as_fail("%s: not a ViT MAE state_dict (patch_embed.proj.weight, pos_embed, decoder_embed.weight "
                           "or blocks.0.mlp.fc1.weight missing or misshapen)",
                           f->path);
        int grid = (int)lround(sqrt((double)(pe->shape[1] - 1)));
        vitmae_config_default(&cfg);
        cfg.embed_dim = (int)pw->shape[0];
        cfg.in_chans = (int)pw->shape[1];
        cfg.patch_size = (int)pw->shape[2];
        cfg.img_size = grid * cfg.patch_size;
        cfg.depth = count_blocks(f, "blocks");
        cfg.num_heads = cfg.embed_dim % 64 ? 1 : cfg.embed_dim / 64;
        cfg.decoder_embed_dim = (int)de->shape[0];
        cfg.decoder_depth = count_blocks(f, "decoder_blocks");
        cfg.decoder_num_heads = cfg.decoder_embed_dim % 16 ? 1 : 16;
        cfg.mlp_ratio = cfg.embed_dim ? (int)(fc->shape[0] / cfg.embed_dim) : 0;
        cfg.norm_pix_loss = 0;
        if (vitmae_config_check(&cfg)) {
            char why[512];
            snprintf(why, sizeof why, "%s", as_error());
            return as_fail("%s: the ViT MAE config read from the tensor shapes is invalid: %s", f->path, why);
        }
    }
    return vitmae_config_to_json(&cfg, out, n) ? as_fail("%s: config too long", f->path) : 0;
}

static void init_params(model *m, uint64_t seed) { vitmae_init(impl(m), seed); }

static float train_batch(model *m, const float *images, const uint8_t *token_mask, int B, int drop_path,
                         uint64_t drop_seed) {
    (void)drop_path, (void)drop_seed;
    float loss = vitmae_forward(impl(m), images, token_mask, B);
    vitmae_backward(impl(m));
    return loss;
}

static float predict(model *m, float *out, const float *images, const uint8_t *token_mask, int B) {
    float loss = vitmae_forward(impl(m), images, token_mask, B);
    if (out) vitmae_pixels(impl(m), out);
    return loss;
}

static float reconstruct(model *m, float *out, const float *images, const uint8_t *token_mask, int B) {
    return predict(m, out, images, token_mask, B);
}

// The mean of the encoder's output over the visible tokens (models_mae.py's global pool).
static int latent(model *m, float *out, const float *images, const uint8_t *token_mask, int B) {
    vitmae *s = impl(m);
    if (!out) return s->cfg.embed_dim;
    vitmae_encode(s, images, token_mask, B);
    vitmae_latent_mean(s, out);
    return s->cfg.embed_dim;
}

// 2 FLOPs per multiply-add of the patch embedding, the blocks' dense layers and attention
// products, and the prediction head, for an image that hides nothing (the cost grows with the
// visible tokens; detection hides one window); a training step is about 3x.
static double flops_per_image(const model *m, int training) {
    const vitmae_config *c = &impl(m)->cfg;
    const double T = vitmae_tokens(c) + 1, K = vitmae_patch_dim(c), r = c->mlp_ratio;
    const double D = c->embed_dim, Dd = c->decoder_embed_dim;
    // qkv, proj, fc1, fc2: (3 + 1 + 2r) D^2 per token; q kᵀ and P v: 2 T D per token.
    double block = (4 + 2 * r) * D * D * T + 2 * T * T * D, dblock = (4 + 2 * r) * Dd * Dd * T + 2 * T * T * Dd;
    double f = 2.0 * (K * D * (T - 1) + c->depth * block + D * Dd * T + c->decoder_depth * dblock + Dd * K * T);
    return training ? 3.0 * f : f;
}

// The Swin MAE's recipe (400 epochs, batch 24 on T2 and 10 on T1, train's schedule), so that the
// two rows of Table 1 differ only in the network; He et al. pretrain for 800 epochs at batch 4096.
static const model_preset presets[] = {
    {"tiny", "img_size=64,patch_size=8,embed_dim=16,depth=1,num_heads=1,decoder_embed_dim=8,decoder_depth=1,"
             "decoder_num_heads=1"},
    {"demo", "preset=demo"},
    {"vit-b16", "preset=vit-b16"},
    {"vit-l16", "preset=vit-l16"},
    {NULL, NULL}};
static const model_recipe recipe = {.epochs = 400, .batch = 24, .batch_t1 = 10,
                                    .source = "the Swin MAE's (the rows differ only in the network)",
                                    .presets = presets};

const model_method model_vitmae = {
    .name = "vitmae",
    .title = "ViT MAE (He et al. 2022)",
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
    .whole_image = 0,
    .flops_per_image = flops_per_image,
    .latent = latent,
    .recipe = &recipe,
};
