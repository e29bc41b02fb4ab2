#include "model/params.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/swinmae/relpos.h"
#include "util/error.h"
#include "util/rng.h"

// ---- table construction (mirrors the reference module tree, in state_dict order) ---------------

typedef struct builder {
    param_table *t;
    int cap;
} builder;

static param_entry *add(builder *b, param_dtype dt, param_init init, int trainable, int ndim, const int64_t *shape,
                        const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static param_entry *add(builder *b, param_dtype dt, param_init init, int trainable, int ndim, const int64_t *shape,
                        const char *fmt, ...) {
    param_table *t = b->t;
    if (t->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 256;
        t->entries = as_realloc(t->entries, (size_t)b->cap * sizeof *t->entries);
    }
    param_entry *e = &t->entries[t->n++];
    memset(e, 0, sizeof *e);
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(e->name, sizeof e->name, fmt, ap);
    va_end(ap);
    if (len < 0 || len >= (int)sizeof e->name) {
        fprintf(stderr, "anoswin: internal error: parameter name too long: %s...\n", e->name);
        abort();
    }
    e->dtype = dt;
    e->init = init;
    e->trainable = trainable;
    e->ndim = ndim;
    e->numel = 1;
    for (int i = 0; i < ndim; i++) {
        e->shape[i] = shape[i];
        e->numel *= (size_t)shape[i];
    }
    if (dt == PARAM_F32) {
        e->offset = t->n_floats;
        t->n_floats += e->numel;
        if (trainable) t->n_trainable += e->numel;
        t->n_f32_tensors++;
    } else {
        e->offset = t->n_i64;
        t->n_i64 += e->numel;
        t->n_i64_tensors++;
    }
    return e;
}

param_entry *param_table_add(param_table *t, param_dtype dt, param_init init, int trainable, int ndim,
                             const int64_t *shape, const char *name) {
    // Grows one entry at a time: these tables have tens of entries, built once.
    builder b = {t, t->n};
    return add(&b, dt, init, trainable, ndim, shape, "%s", name);
}

static void add_linear(builder *b, const char *prefix, int in, int out, int bias) {
    int64_t w[2] = {out, in}, bs[1] = {out};
    param_entry *e = add(b, PARAM_F32, INIT_XAVIER, 1, 2, w, "%s.weight", prefix);
    e->fan_in = in;
    e->fan_out = out;
    if (bias) add(b, PARAM_F32, INIT_ZERO, 1, 1, bs, "%s.bias", prefix);
}

static void add_layernorm(builder *b, const char *prefix, int dim) {
    int64_t s[1] = {dim};
    add(b, PARAM_F32, INIT_ONE, 1, 1, s, "%s.weight", prefix);
    add(b, PARAM_F32, INIT_ZERO, 1, 1, s, "%s.bias", prefix);
}

// SwinTransformerBlock: norm1, attn (bias table, index buffer, qkv, proj), norm2, mlp.
static void add_block(builder *b, const char *prefix, int dim, int heads, int window, int mlp_ratio) {
    char p[PARAM_NAME_MAX + 32];
    snprintf(p, sizeof p, "%s.norm1", prefix);
    add_layernorm(b, p, dim);
    int64_t tab[2] = {(int64_t)(2 * window - 1) * (2 * window - 1), heads};
    add(b, PARAM_F32, INIT_TRUNC_002, 1, 2, tab, "%s.attn.relative_position_bias_table", prefix);
    int64_t idx[2] = {(int64_t)window * window, (int64_t)window * window};
    add(b, PARAM_I64, INIT_RELPOS, 0, 2, idx, "%s.attn.relative_position_index", prefix);
    snprintf(p, sizeof p, "%s.attn.qkv", prefix);
    add_linear(b, p, dim, 3 * dim, 1);
    snprintf(p, sizeof p, "%s.attn.proj", prefix);
    add_linear(b, p, dim, dim, 1);
    snprintf(p, sizeof p, "%s.norm2", prefix);
    add_layernorm(b, p, dim);
    snprintf(p, sizeof p, "%s.mlp.fc1", prefix);
    add_linear(b, p, dim, dim * mlp_ratio, 1);
    snprintf(p, sizeof p, "%s.mlp.fc2", prefix);
    add_linear(b, p, dim * mlp_ratio, dim, 1);
}

// PatchExpanding(dim): expand Linear(dim -> 2 dim, no bias), regroup, LayerNorm(dim / 2).
static void add_expanding(builder *b, const char *prefix, int dim) {
    char p[PARAM_NAME_MAX + 32];
    snprintf(p, sizeof p, "%s.expand", prefix);
    add_linear(b, p, dim, 2 * dim, 0);
    snprintf(p, sizeof p, "%s.norm", prefix);
    add_layernorm(b, p, dim / 2);
}

int param_table_build(param_table *t, const swinmae_config *cfg) {
    memset(t, 0, sizeof *t);
    if (swinmae_config_check(cfg)) return -1;
    t->cfg = *cfg;
    builder b = {t, 0};
    const swinmae_config *c = cfg;
    int C = c->embed_dim, P = c->patch_size, W = c->window;
    char p[PARAM_NAME_MAX];

    // The top module's own parameters come first in a state_dict (pos_embed, mask_token), then
    // its children in registration order.
    int64_t pe[3] = {1, swinmae_num_tokens(c), C}, mt[3] = {1, 1, C};
    add(&b, PARAM_F32, INIT_SINCOS, 0, 3, pe, "pos_embed");
    add(&b, PARAM_F32, INIT_NORMAL_002, 1, 3, mt, "mask_token");
    int64_t cw[4] = {C, c->in_chans, P, P}, cb[1] = {C};
    param_entry *e = add(&b, PARAM_F32, INIT_KAIMING_CONV, 1, 4, cw, "patch_embed.proj.weight");
    e->fan_in = c->in_chans * P * P;
    e->fan_out = C * P * P;
    e = add(&b, PARAM_F32, INIT_CONV_BIAS, 1, 1, cb, "patch_embed.proj.bias");
    e->fan_in = c->in_chans * P * P;
    add_layernorm(&b, "patch_embed.norm", C);

    // Encoder: layers.i = BasicBlock(blocks, downsample = PatchMerging(norm(4d), reduction 4d->2d)).
    for (int i = 0; i < SWINMAE_STAGES; i++) {
        int dim = C << i;
        for (int j = 0; j < c->depths[i]; j++) {
            snprintf(p, sizeof p, "layers.%d.blocks.%d", i, j);
            add_block(&b, p, dim, c->num_heads[i], W, c->mlp_ratio);
        }
        if (i < SWINMAE_STAGES - 1) {
            snprintf(p, sizeof p, "layers.%d.downsample.norm", i);
            add_layernorm(&b, p, 4 * dim);
            snprintf(p, sizeof p, "layers.%d.downsample.reduction", i);
            add_linear(&b, p, 4 * dim, 2 * dim, 0);
        }
    }

    // Decoder: first_patch_expanding at 8C, then layers_up.u mirrors encoder stage k = 2 - u.
    add_expanding(&b, "first_patch_expanding", C << (SWINMAE_STAGES - 1));
    for (int u = 0; u < SWINMAE_STAGES - 1; u++) {
        int k = SWINMAE_STAGES - 2 - u, dim = C << k;
        for (int j = 0; j < c->depths[k]; j++) {
            snprintf(p, sizeof p, "layers_up.%d.blocks.%d", u, j);
            add_block(&b, p, dim, c->num_heads[k], W, c->mlp_ratio);
        }
        if (u < SWINMAE_STAGES - 2) {
            snprintf(p, sizeof p, "layers_up.%d.upsample", u);
            add_expanding(&b, p, dim);
        }
    }
    add_layernorm(&b, "norm_up", C);
    add_linear(&b, "decoder_pred", C, swinmae_patch_dim(c), 1);
    return 0;
}

void param_table_free(param_table *t) {
    free(t->entries);
    memset(t, 0, sizeof *t);
}

int param_table_index(const param_table *t, const char *name) {
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->entries[i].name, name)) return i;
    return -1;
}

const param_entry *param_table_find(const param_table *t, const char *name) {
    int i = param_table_index(t, name);
    return i < 0 ? NULL : &t->entries[i];
}

float *param_ptr(const param_table *t, float *buf, const char *name) {
    const param_entry *e = param_table_find(t, name);
    if (!e || e->dtype != PARAM_F32) {
        fprintf(stderr, "anoswin: internal error: no float parameter named '%s'\n", name);
        abort();
    }
    return buf + e->offset;
}

float *param_ptrf(const param_table *t, float *buf, const char *fmt, ...) {
    if (!buf) return NULL;
    char name[PARAM_NAME_MAX + 32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return param_ptr(t, buf, name);
}

void param_shape_str(const param_entry *e, char *out, size_t n) {
    size_t w = 0;
    out[0] = 0;
    for (int i = 0; i < e->ndim && w < n; i++)
        w += (size_t)snprintf(out + w, n - w, i ? "x%lld" : "%lld", (long long)e->shape[i]);
}

// ---- initialisation --------------------------------------------------------------------------

void pos_embed_sincos(float *out, int dim, int grid) {
    int q = dim / 4;  // frequencies per (axis, sin/cos) quarter
    for (int i = 0; i < grid; i++)
        for (int j = 0; j < grid; j++) {
            float *o = out + ((size_t)i * grid + j) * dim;
            for (int k = 0; k < q; k++) {
                // numpy computes omega = 1 / 10000**(k / q) in float64, then the outer product.
                double omega = 1.0 / pow(10000.0, (double)k / (double)q);
                double a = (double)j * omega, bb = (double)i * omega;
                o[k] = (float)sin(a);
                o[q + k] = (float)cos(a);
                o[2 * q + k] = (float)sin(bb);
                o[3 * q + k] = (float)cos(bb);
            }
        }
}

void params_init(const param_table *t, float *params, uint64_t seed) {
    const swinmae_config *c = &t->cfg;
    for (int i = 0; i < t->n; i++) {
        const param_entry *e = &t->entries[i];
        if (e->dtype != PARAM_F32) continue;
        float *x = params + e->offset;
        rng r;
        rng_seed_stream(&r, seed, (uint64_t)i);
        switch (e->init) {
        case INIT_ZERO:
            for (size_t k = 0; k < e->numel; k++) x[k] = 0.0f;
            break;
        case INIT_ONE:
            for (size_t k = 0; k < e->numel; k++) x[k] = 1.0f;
            break;
        case INIT_XAVIER: {
            double a = sqrt(6.0 / (double)(e->fan_in + e->fan_out));
            for (size_t k = 0; k < e->numel; k++) x[k] = (float)rng_uniform_range(&r, -a, a);
            break;
        }
        case INIT_KAIMING_CONV:
        case INIT_CONV_BIAS: {
            // kaiming_uniform_(a=sqrt(5)): gain sqrt(2/(1+5)), bound gain*sqrt(3/fan_in) = 1/sqrt(fan_in).
            double a = 1.0 / sqrt((double)e->fan_in);
            for (size_t k = 0; k < e->numel; k++) x[k] = (float)rng_uniform_range(&r, -a, a);
            break;
        }
        case INIT_NORMAL_002:
            for (size_t k = 0; k < e->numel; k++) x[k] = (float)(0.02 * rng_normal(&r));
            break;
        case INIT_TRUNC_002:
            // torch.nn.init.trunc_normal_(std=.02) keeps its default bounds a=-2, b=2 (absolute
            // values, i.e. 100 sigma): the truncation practically never triggers.
            for (size_t k = 0; k < e->numel; k++) {
                double z;
                do z = 0.02 * rng_normal(&r);
                while (z < -2.0 || z > 2.0);
                x[k] = (float)z;
            }
            break;
        case INIT_SINCOS:
            pos_embed_sincos(x, c->embed_dim, swinmae_grid(c));
            break;
        case INIT_RELPOS:
        case INIT_COUNTER:
            break;
        }
    }
}

void params_fill_index(const param_table *t, int64_t *idx) {
    for (int i = 0; i < t->n; i++) {
        const param_entry *e = &t->entries[i];
        if (e->dtype != PARAM_I64) continue;
        if (e->init == INIT_RELPOS) relative_position_index(idx + e->offset, t->cfg.window);
        else memset(idx + e->offset, 0, e->numel * sizeof *idx);
    }
}
