#include "model/vitmae/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/config_text.h"
#include "util/error.h"

typedef struct preset {
    const char *name;
    vitmae_config c;
} preset;

// demo: the demo's 128 px slices at the Swin MAE demo's scale (docs/baselines.md says how it was
// matched); vit-b16 / vit-l16: models_mae.py's mae_vit_base / large_patch16_dec512d8b, one
// channel (MRI), at their 224 px.
static const preset presets[] = {
    {"demo", {128, 1, 8, 128, 6, 4, 64, 2, 2, 4, 0}},
    {"vit-b16", {224, 1, 16, 768, 12, 12, 512, 8, 16, 4, 0}},
    {"vit-l16", {224, 1, 16, 1024, 24, 16, 512, 8, 16, 4, 0}},
};
#define N_PRESETS (int)(sizeof presets / sizeof presets[0])

int vitmae_config_preset(vitmae_config *c, const char *name) {
    for (int i = 0; i < N_PRESETS; i++)
        if (!strcmp(presets[i].name, name)) {
            *c = presets[i].c;
            return 0;
        }
    return -1;
}

void vitmae_config_default(vitmae_config *c) { *c = presets[0].c; }

int vitmae_config_check(const vitmae_config *c) {
    if (c->in_chans < 1 || c->in_chans > 16) return as_fail("config: in_chans %d must lie in 1..16", c->in_chans);
    if (c->img_size < 1 || c->img_size > 4096) return as_fail("config: img_size %d must lie in 1..4096", c->img_size);
    if (c->patch_size < 1 || c->img_size % c->patch_size)
        return as_fail("config: patch_size %d must divide img_size %d", c->patch_size, c->img_size);
    if (vitmae_tokens(c) > VITMAE_MAX_TOKENS)
        return as_fail("config: %d patches per image (img_size/patch_size squared) exceed %d: global attention "
                       "holds every pair; use a larger patch_size",
                       vitmae_tokens(c), VITMAE_MAX_TOKENS);
    const int dims[2] = {c->embed_dim, c->decoder_embed_dim}, heads[2] = {c->num_heads, c->decoder_num_heads},
              depth[2] = {c->depth, c->decoder_depth};
    const char *pre[2] = {"", "decoder_"};
    for (int i = 0; i < 2; i++) {
        // The sin-cos embedding splits a vector into 4 quarters (sin/cos of row and column).
        if (dims[i] < 4 || dims[i] > 8192 || dims[i] % 4)
            return as_fail("config: %sembed_dim %d must be a multiple of 4 in 4..8192", pre[i], dims[i]);
        if (heads[i] < 1 || dims[i] % heads[i])
            return as_fail("config: %snum_heads %d must divide %sembed_dim %d", pre[i], heads[i], pre[i], dims[i]);
        if (depth[i] < 1 || depth[i] > 64) return as_fail("config: %sdepth %d must lie in 1..64", pre[i], depth[i]);
    }
    if (c->mlp_ratio < 1 || c->mlp_ratio > 16) return as_fail("config: mlp_ratio %d must lie in 1..16", c->mlp_ratio);
    if (c->norm_pix_loss != 0 && c->norm_pix_loss != 1)
        return as_fail("config: norm_pix_loss %d must be 0 or 1", c->norm_pix_loss);
    return 0;
}

int vitmae_config_to_json(const vitmae_config *c, char *out, size_t n) {
    int w = snprintf(out, n,
                     "{\"img_size\":%d,\"in_chans\":%d,\"patch_size\":%d,\"embed_dim\":%d,\"depth\":%d,"
                     "\"num_heads\":%d,"
                     "\"decoder_embed_dim\":%d,\"decoder_depth\":%d,\"decoder_num_heads\":%d,\"mlp_ratio\":%d,"
                     "\"norm_pix_loss\":%d}",
                     c->img_size, c->in_chans, c->patch_size, c->embed_dim, c->depth, c->num_heads,
                     c->decoder_embed_dim, c->decoder_depth, c->decoder_num_heads, c->mlp_ratio, c->norm_pix_loss);
    return (w < 0 || (size_t)w >= n) ? -1 : 0;
}

void vitmae_config_describe(const vitmae_config *c, char *out, size_t n) {
    snprintf(out, n,
             "img %d in %d patch %d (%d tokens) encoder %d x dim %d heads %d, decoder %d x dim %d heads %d, mlp %d, "
             "norm_pix_loss %d",
             c->img_size, c->in_chans, c->patch_size, vitmae_tokens(c), c->depth, c->embed_dim, c->num_heads,
             c->decoder_depth, c->decoder_embed_dim, c->decoder_num_heads, c->mlp_ratio, c->norm_pix_loss);
}

int vitmae_config_parse(vitmae_config *cfg, const char *text, const char *what) {
    vitmae_config c = *cfg;
    config_cursor cur;
    config_cursor_init(&cur, text, what);
    char key[64];
    int got;
    while ((got = config_next_key(&cur, key, sizeof key)) > 0) {
        const char *p = cur.p;
        if (!strcmp(key, "preset")) {
            int q = *p == '"';
            if (q) p++;
            size_t len = strcspn(p, q ? "\"" : ", \t\r\n}");
            char name[32];
            if (len >= sizeof name || (q && p[len] != '"'))
                return as_fail("%s: config key 'preset' must be demo, vit-b16 or vit-l16", what);
            memcpy(name, p, len);
            name[len] = 0;
            if (vitmae_config_preset(&c, name))
                return as_fail("%s: unknown preset '%s' (known: demo vit-b16 vit-l16)", what, name);
            p += len + (size_t)q;
        } else {
            double v;
            if (config_number(&cur, key, &v)) return -1;
            p = cur.p;
            int *ip = NULL;
            if (!strcmp(key, "img_size")) ip = &c.img_size;
            else if (!strcmp(key, "in_chans")) ip = &c.in_chans;
            else if (!strcmp(key, "patch_size")) ip = &c.patch_size;
            else if (!strcmp(key, "embed_dim")) ip = &c.embed_dim;
            else if (!strcmp(key, "depth")) ip = &c.depth;
            else if (!strcmp(key, "num_heads")) ip = &c.num_heads;
            else if (!strcmp(key, "decoder_embed_dim")) ip = &c.decoder_embed_dim;
            else if (!strcmp(key, "decoder_depth")) ip = &c.decoder_depth;
            else if (!strcmp(key, "decoder_num_heads")) ip = &c.decoder_num_heads;
            else if (!strcmp(key, "mlp_ratio")) ip = &c.mlp_ratio;
            else if (!strcmp(key, "norm_pix_loss")) ip = &c.norm_pix_loss;
            else
                return as_fail("%s: unknown config key '%s' (known: preset img_size in_chans patch_size embed_dim "
                               "depth num_heads decoder_embed_dim decoder_depth decoder_num_heads mlp_ratio "
                               "norm_pix_loss)",
                               what, key);
            if (config_int(v, ip, what, key)) return -1;
        }
        cur.p = p;
        if (config_end_value(&cur, key)) return -1;
    }
    if (got < 0) return -1;
    if (vitmae_config_check(&c)) return config_check_failed(what);
    *cfg = c;
    return 0;
}
