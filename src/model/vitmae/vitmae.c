// ViT MAE forward / backward over the layers in src/nn (see vitmae.h).
//
// Layer sequence (D = embed_dim, Dd = decoder_embed_dim, K = p*p*in_chans):
//   im2col of the visible patches (zero rows at the cls places) -> patch_embed.proj (GEMM)
//   -> + pos_embed, cls rows = cls_token + pos_embed[0] -> blocks (per group) -> norm
//   -> decoder_embed -> scatter to the grid, mask_token at the hidden places, + decoder_pos_embed
//   -> decoder_blocks -> decoder_norm -> decoder_pred -> masked MSE (cls rows never hidden)
// The blocks are swin_block_forward/backward with one window over all rows and no position
// bias (swin_block.h).
#include "model/vitmae/vitmae.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/param_layers.h"  // param_block_views
#include "model/params.h"        // param_table_add, params_init, pos_embed_sincos
#include "nn/nn.h"
#include "nn/swin_block.h"
#include "util/carve.h"
#include "util/error.h"

typedef struct vit_block {
    swin_block_weights w, dw;
    float *cache;  // training: (rows, per-row cache floats) for the block's rows
    float *attn;   // training: (rows, dim) attention output before proj: kept, the backward would
                   // otherwise run the global attention a second time to recompute it
    float *out;    // (rows, dim): the block's output (training) or the shared stream (inference)
} vit_block;

typedef struct vit_norm {
    float *w, *b, *dw, *db;
} vit_norm;

struct vitmae_plan {
    int L, K, D, Dd, hid, hid_d, Ne_max, Nd_max;
    size_t cache_row, cache_row_d;  // floats of block cache per row (encoder, decoder)
    vit_block *enc, *dec;
    // parameters (gradients)
    float *cls, *dcls, *pos, *dec_pos, *mask_tok, *dmask_tok, *pe_w, *pe_b, *dpe_w, *dpe_b;
    float *de_w, *de_b, *dde_w, *dde_b, *pred_w, *pred_b, *dpred_w, *dpred_b;
    vit_norm norm, dec_norm;  // norm, decoder_norm
    // the last forward's rows
    int B, Ne, n_groups;
    int *count;      // (max_batch) visible tokens per image
    int *row0;       // (max_batch + 1) first encoder row of each image
    int *enc_row;    // (max_batch * L) encoder row of each token, -1 when hidden
    int *group_b0;   // (max_batch + 1) first image of each group
    uint8_t *hidden; // (Nd_max) 1 at the decoder rows of hidden tokens (cls rows 0)
    // activations
    float *cols;                 // (Ne_max, K)
    float *x0;                   // (Ne_max, D) encoder input
    float *ln_mean, *ln_rstd;    // (Ne_max) encoder norm
    float *latent;               // (Ne_max, D) encoder output (after norm)
    float *dec_emb;                 // (Ne_max, Dd) decoder_embed output
    float *xd0;                  // (Nd_max, Dd) decoder input
    float *dec_mean, *dec_rstd;  // (Nd_max) decoder norm
    float *dec_xn;               // (Nd_max, Dd) decoder norm output
    float *pred, *target;        // (Nd_max, K), cls rows included (never hidden)
    float *t_mean, *t_std;       // (Nd_max) per-patch statistics of the target (norm_pix_loss)
    float *icache;               // inference: one block's qkv + fc1
    float *scratch;
    float *g[3];                 // gradients between layers (training)
};

// ---- parameter table ------------------------------------------------------------------------------
// Names are built in buffers longer than an entry's, so that param_table_add reports a name that
// does not fit instead of the compiler fearing truncation.
#define NAME_BUF (PARAM_NAME_MAX + 32)

static void add_linear(param_table *t, const char *prefix, int in, int out) {
    char name[2 * NAME_BUF];
    int64_t w[2] = {out, in}, b[1] = {out};
    snprintf(name, sizeof name, "%s.weight", prefix);
    param_entry *e = param_table_add(t, PARAM_F32, INIT_XAVIER, 1, 2, w, name);
    e->fan_in = in;
    e->fan_out = out;
    snprintf(name, sizeof name, "%s.bias", prefix);
    param_table_add(t, PARAM_F32, INIT_ZERO, 1, 1, b, name);
}

static void add_norm(param_table *t, const char *prefix, int C) {
    char name[2 * NAME_BUF];
    int64_t s[1] = {C};
    snprintf(name, sizeof name, "%s.weight", prefix);
    param_table_add(t, PARAM_F32, INIT_ONE, 1, 1, s, name);
    snprintf(name, sizeof name, "%s.bias", prefix);
    param_table_add(t, PARAM_F32, INIT_ZERO, 1, 1, s, name);
}

// timm's Block: norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2.
static void add_block(param_table *t, const char *prefix, int dim, int hidden) {
    char p[NAME_BUF];
    snprintf(p, sizeof p, "%s.norm1", prefix);
    add_norm(t, p, dim);
    snprintf(p, sizeof p, "%s.attn.qkv", prefix);
    add_linear(t, p, dim, 3 * dim);
    snprintf(p, sizeof p, "%s.attn.proj", prefix);
    add_linear(t, p, dim, dim);
    snprintf(p, sizeof p, "%s.norm2", prefix);
    add_norm(t, p, dim);
    snprintf(p, sizeof p, "%s.mlp.fc1", prefix);
    add_linear(t, p, dim, hidden);
    snprintf(p, sizeof p, "%s.mlp.fc2", prefix);
    add_linear(t, p, hidden, dim);
}

int vitmae_table_build(param_table *t, const vitmae_config *c) {
    memset(t, 0, sizeof *t);
    if (vitmae_config_check(c)) return -1;
    const int L = vitmae_tokens(c), D = c->embed_dim, Dd = c->decoder_embed_dim, P = c->patch_size;
    // state_dict order: the module's own parameters first (in registration order), then its children.
    int64_t tok[3] = {1, 1, D}, pe[3] = {1, L + 1, D}, mt[3] = {1, 1, Dd}, dpe[3] = {1, L + 1, Dd};
    param_table_add(t, PARAM_F32, INIT_NORMAL_002, 1, 3, tok, "cls_token");
    param_table_add(t, PARAM_F32, INIT_ZERO, 0, 3, pe, "pos_embed");  // sin-cos, filled by vitmae_init
    param_table_add(t, PARAM_F32, INIT_NORMAL_002, 1, 3, mt, "mask_token");
    param_table_add(t, PARAM_F32, INIT_ZERO, 0, 3, dpe, "decoder_pos_embed");
    // models_mae.py initialises the patch embedding like a Linear (xavier on the flattened weight);
    // the bias keeps Conv2d's default.
    int64_t cw[4] = {D, c->in_chans, P, P}, cb[1] = {D};
    param_entry *e = param_table_add(t, PARAM_F32, INIT_XAVIER, 1, 4, cw, "patch_embed.proj.weight");
    e->fan_in = c->in_chans * P * P;
    e->fan_out = D;
    param_table_add(t, PARAM_F32, INIT_CONV_BIAS, 1, 1, cb, "patch_embed.proj.bias")->fan_in = c->in_chans * P * P;
    char p[NAME_BUF];
    for (int i = 0; i < c->depth; i++) {
        snprintf(p, sizeof p, "blocks.%d", i);
        add_block(t, p, D, D * c->mlp_ratio);
    }
    add_norm(t, "norm", D);
    add_linear(t, "decoder_embed", D, Dd);
    for (int i = 0; i < c->decoder_depth; i++) {
        snprintf(p, sizeof p, "decoder_blocks.%d", i);
        add_block(t, p, Dd, Dd * c->mlp_ratio);
    }
    add_norm(t, "decoder_norm", Dd);
    add_linear(t, "decoder_pred", Dd, vitmae_patch_dim(c));
    return 0;
}

// Sin-cos rows for the L tokens after a zero row for the cls token: out (L + 1, dim).
static void sincos_with_cls(float *out, int dim, int grid) {
    memset(out, 0, sizeof(float) * (size_t)dim);
    pos_embed_sincos(out + dim, dim, grid);
}

void vitmae_init(vitmae *m, uint64_t seed) {
    params_init(&m->table, m->params, seed);
    const int G = vitmae_grid(&m->cfg);
    sincos_with_cls(param_ptr(&m->table, m->params, "pos_embed"), m->cfg.embed_dim, G);
    sincos_with_cls(param_ptr(&m->table, m->params, "decoder_pos_embed"), m->cfg.decoder_embed_dim, G);
}

// ---- views and arena --------------------------------------------------------------------------------
#define pv(m, buf, ...) param_ptrf(&(m)->table, (buf), __VA_ARGS__)

static void norm_views(vitmae *m, vit_norm *n, const char *prefix) {
    n->w = pv(m, m->params, "%s.weight", prefix);
    n->b = pv(m, m->params, "%s.bias", prefix);
    n->dw = pv(m, m->grads, "%s.weight", prefix);
    n->db = pv(m, m->grads, "%s.bias", prefix);
}


// One window of T rows per image, no shift, no permutation, no mask regions.
static swin_geom global_geom(int T) {
    swin_geom g;
    memset(&g, 0, sizeof g);
    g.H = T;
    g.W = 1;
    g.ws = 1;
    g.T = T;
    g.nW = 1;
    return g;
}

static swin_block_dims block_dims(const swin_geom *g, int B, int C, int heads, int hidden) {
    swin_block_dims d = {B, C, heads, hidden, g, NULL};
    return d;
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

typedef carve layout;  // util/carve.h
static float *take(layout *l, size_t n) { return carve_take(l, n); }  // short name, many call sites

// Assigns every activation pointer (or only counts, when l->base is NULL).
static void plan_layout(vitmae *m, layout *l) {
    struct vitmae_plan *p = m->plan;
    const vitmae_config *c = &m->cfg;
    const size_t B = (size_t)m->max_batch, Ne = (size_t)p->Ne_max, Nd = (size_t)p->Nd_max, K = (size_t)p->K;
    const size_t D = (size_t)p->D, Dd = (size_t)p->Dd;
    const int tr = m->training;
    // Scratch: a block's (the largest group is every image at full length), or im2col of every patch.
    swin_geom ge = global_geom(p->L + 1);
    swin_block_dims de = block_dims(&ge, m->max_batch, p->D, c->num_heads, p->hid);
    swin_block_dims dd = block_dims(&ge, m->max_batch, p->Dd, c->decoder_num_heads, p->hid_d);
    size_t scratch = max_sz(swin_block_scratch_floats(&de), swin_block_scratch_floats(&dd));
    scratch = max_sz(scratch, B * p->L * K);
    p->scratch = take(l, scratch);
    p->cols = take(l, Ne * K);
    p->x0 = take(l, Ne * D);
    p->ln_mean = tr ? take(l, Ne) : NULL;
    p->ln_rstd = tr ? take(l, Ne) : NULL;
    p->latent = take(l, Ne * D);
    p->dec_emb = take(l, Ne * Dd);
    p->xd0 = take(l, Nd * Dd);
    p->dec_mean = tr ? take(l, Nd) : NULL;
    p->dec_rstd = tr ? take(l, Nd) : NULL;
    p->dec_xn = take(l, Nd * Dd);
    p->pred = take(l, Nd * K);
    p->target = take(l, Nd * K);
    p->t_mean = take(l, Nd);
    p->t_std = take(l, Nd);
    if (tr) {
        for (int i = 0; i < c->depth; i++) {
            p->enc[i].out = take(l, Ne * D);
            p->enc[i].cache = take(l, Ne * p->cache_row);
            p->enc[i].attn = take(l, Ne * D);
        }
        for (int i = 0; i < c->decoder_depth; i++) {
            p->dec[i].out = take(l, Nd * Dd);
            p->dec[i].cache = take(l, Nd * p->cache_row_d);
            p->dec[i].attn = take(l, Nd * Dd);
        }
        size_t gf = max_sz(max_sz(Ne * D, Ne * Dd), max_sz(Nd * Dd, Nd * K));
        for (int g = 0; g < 3; g++) p->g[g] = take(l, gf);
    } else {
        // Blocks run in place on x0 (encoder) and xd0 (decoder), sharing one qkv + fc1 cache.
        p->icache = take(l, max_sz(Ne * (3 * D + p->hid), Nd * (3 * Dd + p->hid_d)));
        for (int i = 0; i < c->depth; i++) p->enc[i].out = p->x0;
        for (int i = 0; i < c->decoder_depth; i++) p->dec[i].out = p->xd0;
    }
}

// Floats of a block's training cache per row.
static size_t cache_per_row(int C, int heads, int hidden) {
    swin_geom g = global_geom(1);
    swin_block_dims d = block_dims(&g, 1, C, heads, hidden);
    return swin_block_cache_floats(&d);
}

static void plan_build(vitmae *m) {
    struct vitmae_plan *p = as_calloc(1, sizeof *p);
    m->plan = p;
    const vitmae_config *c = &m->cfg;
    p->L = vitmae_tokens(c);
    p->K = vitmae_patch_dim(c);
    p->D = c->embed_dim;
    p->Dd = c->decoder_embed_dim;
    p->hid = p->D * c->mlp_ratio;
    p->hid_d = p->Dd * c->mlp_ratio;
    p->Ne_max = m->max_batch * (p->L + 1);
    p->Nd_max = m->max_batch * (p->L + 1);
    p->cache_row = cache_per_row(p->D, c->num_heads, p->hid);
    p->cache_row_d = cache_per_row(p->Dd, c->decoder_num_heads, p->hid_d);
    p->enc = as_calloc((size_t)c->depth, sizeof *p->enc);
    p->dec = as_calloc((size_t)c->decoder_depth, sizeof *p->dec);
    char prefix[NAME_BUF];
    for (int i = 0; i < c->depth; i++) {
        snprintf(prefix, sizeof prefix, "blocks.%d", i);
        param_block_views(&p->enc[i].w, &m->table, m->params, prefix);
        param_block_views(&p->enc[i].dw, &m->table, m->grads, prefix);
    }
    for (int i = 0; i < c->decoder_depth; i++) {
        snprintf(prefix, sizeof prefix, "decoder_blocks.%d", i);
        param_block_views(&p->dec[i].w, &m->table, m->params, prefix);
        param_block_views(&p->dec[i].dw, &m->table, m->grads, prefix);
    }
    p->cls = pv(m, m->params, "cls_token");
    p->dcls = pv(m, m->grads, "cls_token");
    p->pos = pv(m, m->params, "pos_embed");
    p->dec_pos = pv(m, m->params, "decoder_pos_embed");
    p->mask_tok = pv(m, m->params, "mask_token");
    p->dmask_tok = pv(m, m->grads, "mask_token");
    p->pe_w = pv(m, m->params, "patch_embed.proj.weight");
    p->pe_b = pv(m, m->params, "patch_embed.proj.bias");
    p->dpe_w = pv(m, m->grads, "patch_embed.proj.weight");
    p->dpe_b = pv(m, m->grads, "patch_embed.proj.bias");
    p->de_w = pv(m, m->params, "decoder_embed.weight");
    p->de_b = pv(m, m->params, "decoder_embed.bias");
    p->dde_w = pv(m, m->grads, "decoder_embed.weight");
    p->dde_b = pv(m, m->grads, "decoder_embed.bias");
    p->pred_w = pv(m, m->params, "decoder_pred.weight");
    p->pred_b = pv(m, m->params, "decoder_pred.bias");
    p->dpred_w = pv(m, m->grads, "decoder_pred.weight");
    p->dpred_b = pv(m, m->grads, "decoder_pred.bias");
    norm_views(m, &p->norm, "norm");
    norm_views(m, &p->dec_norm, "decoder_norm");
    const size_t B = (size_t)m->max_batch;
    p->count = as_calloc(B, sizeof(int));
    p->row0 = as_calloc(B + 1, sizeof(int));
    p->enc_row = as_calloc(B * p->L, sizeof(int));
    p->group_b0 = as_calloc(B + 1, sizeof(int));
    p->hidden = as_calloc((size_t)p->Nd_max, 1);
}

static void plan_free(struct vitmae_plan *p) {
    if (!p) return;
    free(p->enc);
    free(p->dec);
    free(p->count);
    free(p->row0);
    free(p->enc_row);
    free(p->group_b0);
    free(p->hidden);
    free(p);
}

int vitmae_create(vitmae *m, const vitmae_config *c, int max_batch, int training) {
    memset(m, 0, sizeof *m);
    if (max_batch < 1) return as_fail("model: batch size %d must be at least 1", max_batch);
    if (vitmae_table_build(&m->table, c)) return -1;
    m->cfg = *c;
    m->max_batch = max_batch;
    m->training = training ? 1 : 0;
    m->params = as_calloc(m->table.n_floats, sizeof(float));
    if (m->training) m->grads = as_calloc(m->table.n_floats, sizeof(float));
    plan_build(m);
    layout l = {NULL, 0};
    plan_layout(m, &l);
    // Not zeroed: every activation is written before it is read; untouched pages stay unmapped
    // (the rows are sized for images that hide nothing).
    m->arena = aligned_alloc(64, l.used * sizeof(float));
    if (!m->arena) {
        vitmae_free(m);
        return as_fail("model: cannot allocate %.1f MiB of activations", l.used * 4.0 / 1048576.0);
    }
    l = (layout){m->arena, 0};
    plan_layout(m, &l);
    return 0;
}

void vitmae_free(vitmae *m) {
    plan_free(m->plan);
    param_table_free(&m->table);
    free(m->params);
    free(m->grads);
    free(m->arena);
    memset(m, 0, sizeof *m);
}

// ---- forward ------------------------------------------------------------------------------------------
// Encoder rows, token -> row map and groups of the mask.
static void rows_from_mask(struct vitmae_plan *p, const uint8_t *mask, int B) {
    const int L = p->L;
    p->B = B;
    p->n_groups = 0;
    int row = 0;
    for (int b = 0; b < B; b++) {
        p->row0[b] = row++;
        int n = 0;
        for (int t = 0; t < L; t++) {
            int vis = !mask[(size_t)b * L + t];
            p->enc_row[(size_t)b * L + t] = vis ? row : -1;
            row += vis;
            n += vis;
        }
        p->count[b] = n;
        if (b == 0 || n != p->count[b - 1]) p->group_b0[p->n_groups++] = b;
        uint8_t *h = p->hidden + (size_t)b * (L + 1);
        h[0] = 0;
        memcpy(h + 1, mask + (size_t)b * L, (size_t)L);
    }
    p->row0[B] = row;
    p->group_b0[p->n_groups] = B;
    p->Ne = row;
}

// Calls the block forward (backward: dx non-NULL) once per group of the encoder rows.
static void encoder_block_run(vitmae *m, vit_block *blk, const float *inp, float *dx) {
    struct vitmae_plan *p = m->plan;
    const int D = p->D;
    for (int g = 0; g < p->n_groups; g++) {
        int b0 = p->group_b0[g], b1 = p->group_b0[g + 1], T = 1 + p->count[b0];
        size_t r0 = (size_t)p->row0[b0];
        swin_geom geo = global_geom(T);
        swin_block_dims d = block_dims(&geo, b1 - b0, D, m->cfg.num_heads, p->hid);
        swin_block_cache c;
        if (m->training) {
            swin_block_cache_init(&c, blk->cache + r0 * p->cache_row, &d);
            c.attn = blk->attn + r0 * D;
        } else {
            memset(&c, 0, sizeof c);
            c.x_mid = blk->out + r0 * D;
            c.qkv = p->icache;
            c.fc1 = p->icache + (size_t)(b1 - b0) * T * 3 * D;
        }
        if (dx)
            swin_block_backward(dx + r0 * D, &blk->dw, p->scratch, &c, inp + r0 * D, &blk->w, &d, NULL);
        else
            swin_block_forward(blk->out + r0 * D, &c, p->scratch, inp + r0 * D, &blk->w, &d, NULL);
    }
}

static void decoder_block_run(vitmae *m, vit_block *blk, const float *inp, float *dx) {
    struct vitmae_plan *p = m->plan;
    const int T = p->L + 1, B = p->B, Dd = p->Dd;
    swin_geom geo = global_geom(T);
    swin_block_dims d = block_dims(&geo, B, Dd, m->cfg.decoder_num_heads, p->hid_d);
    swin_block_cache c;
    if (m->training) {
        swin_block_cache_init(&c, blk->cache, &d);
        c.attn = blk->attn;
    } else {
        memset(&c, 0, sizeof c);
        c.x_mid = blk->out;
        c.qkv = p->icache;
        c.fc1 = p->icache + (size_t)B * T * 3 * Dd;
    }
    if (dx)
        swin_block_backward(dx, &blk->dw, p->scratch, &c, inp, &blk->w, &d, NULL);
    else
        swin_block_forward(blk->out, &c, p->scratch, inp, &blk->w, &d, NULL);
}

static const float *encoder_output(const vitmae *m) {
    const struct vitmae_plan *p = m->plan;
    return m->cfg.depth ? p->enc[m->cfg.depth - 1].out : p->x0;
}

static void encode(vitmae *m, const float *images, const uint8_t *token_mask, int B) {
    struct vitmae_plan *p = m->plan;
    const vitmae_config *c = &m->cfg;
    if (B < 1 || B > m->max_batch) {
        fprintf(stderr, "anoswin: internal error: batch %d outside 1..%d\n", B, m->max_batch);
        abort();
    }
    const int L = p->L, K = p->K, D = p->D;
    m->batch = B;
    rows_from_mask(p, token_mask, B);
    const int Ne = p->Ne;
    // im2col of every patch, then the visible ones to their rows (cls rows 0, so that the GEMM's
    // cls rows are the bias alone and the backward's are zeroed before the weight gradient).
    patch_im2col(p->scratch, images, B, c->in_chans, c->img_size, c->img_size, c->patch_size);
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        memset(p->cols + (size_t)p->row0[b] * K, 0, sizeof(float) * K);
        for (int t = 0; t < L; t++) {
            int r = p->enc_row[(size_t)b * L + t];
            if (r >= 0) memcpy(p->cols + (size_t)r * K, p->scratch + ((size_t)b * L + t) * K, sizeof(float) * K);
        }
    }
    patch_embed_forward(p->x0, p->cols, p->pe_w, p->pe_b, Ne, K, D);
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        float *x = p->x0 + (size_t)p->row0[b] * D;
        for (int k = 0; k < D; k++) x[k] = p->cls[k] + p->pos[k];
        for (int t = 0; t < L; t++) {
            int r = p->enc_row[(size_t)b * L + t];
            if (r < 0) continue;
            float *y = p->x0 + (size_t)r * D;
            const float *pe = p->pos + (size_t)(1 + t) * D;
            for (int k = 0; k < D; k++) y[k] += pe[k];
        }
    }
    const float *x = p->x0;
    for (int i = 0; i < c->depth; i++) {
        encoder_block_run(m, &p->enc[i], x, NULL);
        x = p->enc[i].out;
    }
    layernorm_forward(p->latent, p->ln_mean, p->ln_rstd, x, p->norm.w, p->norm.b, NULL, 1, Ne, D);
}

float vitmae_forward(vitmae *m, const float *images, const uint8_t *token_mask, int B) {
    struct vitmae_plan *p = m->plan;
    const vitmae_config *c = &m->cfg;
    encode(m, images, token_mask, B);
    const int L = p->L, K = p->K, Dd = p->Dd, Ne = p->Ne, Nd = B * (L + 1);
    linear_forward(p->dec_emb, p->latent, p->de_w, p->de_b, Ne, p->D, Dd);
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        for (int t = -1; t < L; t++) {  // t = -1: the cls row
            int r = t < 0 ? p->row0[b] : p->enc_row[(size_t)b * L + t];
            const float *src = r >= 0 ? p->dec_emb + (size_t)r * Dd : p->mask_tok, *pe = p->dec_pos + (size_t)(1 + t) * Dd;
            float *y = p->xd0 + ((size_t)b * (L + 1) + 1 + t) * Dd;
            for (int k = 0; k < Dd; k++) y[k] = src[k] + pe[k];
        }
    const float *x = p->xd0;
    for (int i = 0; i < c->decoder_depth; i++) {
        decoder_block_run(m, &p->dec[i], x, NULL);
        x = p->dec[i].out;
    }
    layernorm_forward(p->dec_xn, p->dec_mean, p->dec_rstd, x, p->dec_norm.w, p->dec_norm.b, NULL, 1, Nd, Dd);
    linear_forward(p->pred, p->dec_xn, p->pred_w, p->pred_b, Nd, Dd, K);
    // Target rows at the decoder's rows (cls rows 0, never hidden).
    patchify(p->scratch, images, B, c->in_chans, c->img_size, c->img_size, c->patch_size);
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        float *t0 = p->target + (size_t)b * (L + 1) * K;
        memset(t0, 0, sizeof(float) * K);
        memcpy(t0 + K, p->scratch + (size_t)b * L * K, sizeof(float) * L * K);
        for (int t = 0; t <= L; t++) {
            float *row = t0 + (size_t)t * K;
            size_t i = (size_t)b * (L + 1) + t;
            p->t_mean[i] = 0.0f;
            p->t_std[i] = 1.0f;
            if (!c->norm_pix_loss || t == 0) continue;
            // models_mae.py: (target - mean) / sqrt(var + 1e-6), var unbiased (torch.var's default).
            double s = 0, ss = 0;
            for (int k = 0; k < K; k++) s += row[k];
            double mean = s / K;
            for (int k = 0; k < K; k++) ss += (row[k] - mean) * (row[k] - mean);
            float sd = (float)sqrt(ss / (K - 1) + 1e-6);
            p->t_mean[i] = (float)mean;
            p->t_std[i] = sd;
            for (int k = 0; k < K; k++) row[k] = (float)((row[k] - mean) / sd);
        }
    }
    m->loss = masked_mse_forward(p->pred, p->target, p->hidden, Nd, K);
    return m->loss;
}

void vitmae_encode(vitmae *m, const float *images, const uint8_t *token_mask, int B) {
    encode(m, images, token_mask, B);
}

void vitmae_latent_mean(const vitmae *m, float *out) {
    const struct vitmae_plan *p = m->plan;
    const int D = p->D;
    for (int b = 0; b < p->B; b++) {
        int n = p->count[b];
        for (int k = 0; k < D; k++) {
            double s = 0;
            for (int r = 1; r <= n; r++) s += p->latent[((size_t)p->row0[b] + r) * D + k];
            out[(size_t)b * D + k] = n ? (float)(s / n) : 0.0f;
        }
    }
}

void vitmae_pred(const vitmae *m, float *out) {
    const struct vitmae_plan *p = m->plan;
    for (int b = 0; b < p->B; b++)
        memcpy(out + (size_t)b * p->L * p->K, p->pred + ((size_t)b * (p->L + 1) + 1) * p->K,
               sizeof(float) * (size_t)p->L * p->K);
}

void vitmae_pixels(const vitmae *m, float *out) {
    const struct vitmae_plan *p = m->plan;
    const vitmae_config *c = &m->cfg;
    const int B = p->B, L = p->L, K = p->K;
    float *pred = as_malloc(sizeof(float) * (size_t)B * L * K);
    vitmae_pred(m, pred);
    if (c->norm_pix_loss)
        for (int b = 0; b < B; b++)
            for (int t = 0; t < L; t++) {
                size_t i = (size_t)b * (L + 1) + 1 + t;
                float *row = pred + ((size_t)b * L + t) * K;
                for (int k = 0; k < K; k++) row[k] = row[k] * p->t_std[i] + p->t_mean[i];
            }
    unpatchify(out, pred, B, c->in_chans, c->img_size, c->img_size, c->patch_size);
    free(pred);
}

// ---- backward ----------------------------------------------------------------------------------------
static float *zeroed(float *buf, size_t n) {
    memset(buf, 0, n * sizeof(float));
    return buf;
}

void vitmae_backward(vitmae *m) {
    struct vitmae_plan *p = m->plan;
    const vitmae_config *c = &m->cfg;
    if (!m->training || !m->batch) {
        fprintf(stderr, "anoswin: internal error: backward without a training forward\n");
        abort();
    }
    const int B = p->B, L = p->L, K = p->K, D = p->D, Dd = p->Dd, Ne = p->Ne, Nd = B * (L + 1);
    float *gA = p->g[0], *gB = p->g[1];

    // loss -> decoder_pred -> decoder_norm
    masked_mse_backward(zeroed(gA, (size_t)Nd * K), p->pred, p->target, p->hidden, Nd, K, 1.0f);
    linear_backward(zeroed(gB, (size_t)Nd * Dd), p->dpred_w, p->dpred_b, gA, p->dec_xn, p->pred_w, Nd, Dd, K);
    const float *xd = c->decoder_depth ? p->dec[c->decoder_depth - 1].out : p->xd0;
    layernorm_backward(zeroed(gA, (size_t)Nd * Dd), p->dec_norm.dw, p->dec_norm.db, gB, xd, p->dec_mean,
                       p->dec_rstd, p->dec_norm.w, NULL, 1, Nd, Dd);
    for (int i = c->decoder_depth - 1; i >= 0; i--)
        decoder_block_run(m, &p->dec[i], i ? p->dec[i - 1].out : p->xd0, gA);
    // gA = d xd0: the mask token's rows sum into it, the others go back to their encoder rows.
    float *ge = zeroed(gB, (size_t)Ne * Dd);
    for (int b = 0; b < B; b++)
        for (int t = -1; t < L; t++) {
            int r = t < 0 ? p->row0[b] : p->enc_row[(size_t)b * L + t];
            const float *g = gA + ((size_t)b * (L + 1) + 1 + t) * Dd;
            float *dst = r >= 0 ? ge + (size_t)r * Dd : p->dmask_tok;
            for (int k = 0; k < Dd; k++) dst[k] += g[k];
        }
    float *gl = zeroed(p->g[2], (size_t)Ne * D);
    linear_backward(gl, p->dde_w, p->dde_b, ge, p->latent, p->de_w, Ne, D, Dd);
    layernorm_backward(zeroed(gA, (size_t)Ne * D), p->norm.dw, p->norm.db, gl, encoder_output(m), p->ln_mean,
                       p->ln_rstd, p->norm.w, NULL, 1, Ne, D);
    for (int i = c->depth - 1; i >= 0; i--) encoder_block_run(m, &p->enc[i], i ? p->enc[i - 1].out : p->x0, gA);
    // gA = d x0: cls rows to cls_token (pos_embed is frozen), the rest to the patch embedding.
    for (int b = 0; b < B; b++) {
        float *g = gA + (size_t)p->row0[b] * D;
        for (int k = 0; k < D; k++) p->dcls[k] += g[k];
        memset(g, 0, sizeof(float) * D);
    }
    patch_embed_backward(p->dpe_w, p->dpe_b, gA, p->cols, Ne, K, D);
}
