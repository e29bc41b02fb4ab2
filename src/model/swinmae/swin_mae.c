// Swin MAE forward / backward over the layers in src/nn (see swin_mae.h).
//
// Layer sequence (G = img/patch, stage s at resolution G>>s with dim C<<s):
//   im2col -> patch_embed.proj (GEMM) -> patch_embed.norm -> mask token
//   encoder stage s = 0..3: blocks; s < 3: merge (gather, LN(4C), Linear 4C->2C)
//   first_patch_expanding (Linear 8C->16C, regroup, LN(4C))
//   layers_up.u (stage s = 2-u): blocks; u < 2: upsample (Linear, regroup, LN)
//   norm_up -> decoder_pred -> masked MSE against patchify(images)
#include "model/swinmae/swin_mae.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/param_layers.h"  // param_block_views
#include "model/swinmae/relpos.h"
#include "nn/nn.h"
#include "nn/swin_block.h"
#include "util/carve.h"
#include "util/error.h"

typedef struct mae_block {
    swin_block_weights w, dw;
    swin_block_dims dims;  // dims.B set per forward
    swin_block_cache cache;
    const float *inp;
    float *out;
    float rate;   // DropPath rate
    float *drop;  // (2, max_batch) per-sample scales of the last forward
    int drop_on;  // whether the last forward applied DropPath
} mae_block;

// A LayerNorm's parameters and gradients.
typedef struct mae_norm {
    float *w, *b, *dw, *db;
} mae_norm;

// patch merging after encoder stage s (s = 0..2), its LN statistics and output.
typedef struct mae_merge {
    mae_norm norm;
    float *red, *dred;     // (2C, 4C)
    float *mean, *rstd;    // (N/4)
    float *out;            // (N/4, 2C): next stage's input
} mae_merge;

// patch expansion from level s to level s-1 (input dim C_s, output dim C_s/2 at 2x resolution).
typedef struct mae_expand {
    int level;             // input level s
    float *ew, *dew;       // (2C, C)
    mae_norm norm;         // (C/2)
    float *pre;            // (4N, C/2) regrouped linear output (training)
    float *mean, *rstd;    // (4N)
    float *out;            // (4N, C/2)
} mae_expand;

struct swinmae_plan {
    int G, L, K;           // grid, tokens per image, p*p*in_chans (= conv fan-in = pred width)
    int res[4], dim[4];
    swin_geom geom[4][2];  // [level][shifted]
    int *relpos;           // (T, T)
    int nblocks;
    mae_block *blocks;     // encoder stage 0..3 blocks, then layers_up.0..2 blocks
    int enc_first[4], dec_first[3];
    // parameters (and gradients)
    float *pe_w, *pe_b, *dpe_w, *dpe_b, *mask_token, *dmask_token, *pred_w, *pred_b, *dpred_w, *dpred_b;
    mae_norm pe_norm, norm_up;
    mae_merge merge[3];
    mae_expand expand[3];  // first_patch_expanding, layers_up.0.upsample, layers_up.1.upsample
    // activations
    float *cols;           // (N, K) im2col of the images
    float *pe;             // (N, C) conv output before patch_embed.norm
    float *pe_mean, *pe_rstd;
    float *x0;             // (N, C) encoder input (after the mask token)
    float *nu_mean, *nu_rstd;
    float *pred, *target;  // (N, K)
    float *stage_out[4];
    float *scratch;        // shared by all layers, one at a time
    float *grad[3];        // residual-stream gradient buffers (training)
    size_t grad_floats;
    float *icache;         // inference: one block's qkv + fc1
};

// ---- arena layout -------------------------------------------------------------------------------
// Two passes over the same code: the first (base == NULL) only counts, the second hands out
// 64-byte aligned pieces of the allocated arena.
typedef carve layout;  // util/carve.h
static float *take(layout *l, size_t n) { return carve_take(l, n); }  // short name, many call sites

#define pv(m, buf, ...) param_ptrf(&(m)->table, (buf), __VA_ARGS__)

static void norm_views(swinmae *m, mae_norm *n, const char *prefix) {
    n->w = pv(m, m->params, "%s.weight", prefix);
    n->b = pv(m, m->params, "%s.bias", prefix);
    n->dw = pv(m, m->grads, "%s.weight", prefix);
    n->db = pv(m, m->grads, "%s.bias", prefix);
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

// Assigns every activation pointer (or only counts, when l->base is NULL). Block dims must be set.
static void plan_layout(swinmae *m, layout *l) {
    struct swinmae_plan *p = m->plan;
    const size_t B = (size_t)m->max_batch, N = B * p->L, C = (size_t)p->dim[0], K = (size_t)p->K;
    const int tr = m->training;

    // Scratch: the largest block scratch, and what the other layers need at once.
    size_t scratch = N * (K + C);                                   // im2col + conv output (inference)
    for (int i = 0; i < p->nblocks; i++) {
        swin_block_dims d = p->blocks[i].dims;
        d.B = m->max_batch;
        scratch = max_sz(scratch, swin_block_scratch_floats(&d));
    }
    for (int s = 0; s < 4; s++) {
        size_t NsCs = B * p->res[s] * p->res[s] * (size_t)p->dim[s];
        scratch = max_sz(scratch, 2 * NsCs);                        // merge gather + its norm
        scratch = max_sz(scratch, 2 * NsCs + 2 * NsCs);             // expand: linear out + regroup
    }
    scratch = max_sz(scratch, N * C);                               // norm_up output
    p->scratch = take(l, scratch);

    if (tr) {
        p->cols = take(l, N * K);
        p->pe = take(l, N * C);
    } else {
        p->cols = p->scratch;
        p->pe = p->scratch + N * K;
    }
    p->pe_mean = tr ? take(l, N) : NULL;
    p->pe_rstd = tr ? take(l, N) : NULL;
    p->x0 = take(l, N * C);

    size_t icache = 0;
    if (!tr) {
        for (int i = 0; i < p->nblocks; i++) {
            swin_block_dims d = p->blocks[i].dims;
            size_t Nb = B * d.geom->H * d.geom->W;
            icache = max_sz(icache, Nb * (3 * (size_t)d.C + (size_t)d.hidden));
        }
        p->icache = take(l, icache);
    }

    // encoder
    const float *x = p->x0;
    for (int s = 0; s < 4; s++) {
        size_t Ns = B * p->res[s] * p->res[s], Cs = (size_t)p->dim[s];
        float *stage_buf = tr ? NULL : (s == 0 ? p->x0 : p->merge[s - 1].out);
        int n = m->cfg.depths[s];
        for (int j = 0; j < n; j++) {
            mae_block *b = &p->blocks[p->enc_first[s] + j];
            swin_block_dims d = b->dims;
            d.B = m->max_batch;
            b->inp = x;
            b->drop = take(l, 2 * B);
            if (tr) {
                b->out = take(l, Ns * Cs);
                float *cb = take(l, swin_block_cache_floats(&d));
                if (cb) swin_block_cache_init(&b->cache, cb, &d);
            } else {
                b->out = stage_buf;
                memset(&b->cache, 0, sizeof b->cache);
                b->cache.x_mid = stage_buf;
                b->cache.qkv = p->icache;
                b->cache.fc1 = p->icache ? p->icache + Ns * 3 * Cs : NULL;
            }
            x = b->out;
        }
        p->stage_out[s] = (float *)x;
        if (s < 3) {
            mae_merge *mg = &p->merge[s];
            mg->mean = tr ? take(l, Ns / 4) : NULL;
            mg->rstd = tr ? take(l, Ns / 4) : NULL;
            mg->out = take(l, Ns / 4 * 2 * Cs);
            x = mg->out;
        }
    }
    // decoder
    for (int e = 0; e < 3; e++) {
        mae_expand *ex = &p->expand[e];
        int s = ex->level;
        size_t Nout = B * p->res[s - 1] * p->res[s - 1], Cout = (size_t)p->dim[s] / 2;
        ex->pre = tr ? take(l, Nout * Cout) : NULL;
        ex->mean = tr ? take(l, Nout) : NULL;
        ex->rstd = tr ? take(l, Nout) : NULL;
        ex->out = take(l, Nout * Cout);
        x = ex->out;
        int u = e, sd = 2 - u;  // the decoder stage that follows this expansion
        size_t Ns = B * p->res[sd] * p->res[sd], Cs = (size_t)p->dim[sd];
        for (int j = 0; j < m->cfg.depths[sd]; j++) {
            mae_block *b = &p->blocks[p->dec_first[u] + j];
            swin_block_dims d = b->dims;
            d.B = m->max_batch;
            b->inp = x;
            b->drop = take(l, 2 * B);
            if (tr) {
                b->out = take(l, Ns * Cs);
                float *cb = take(l, swin_block_cache_floats(&d));
                if (cb) swin_block_cache_init(&b->cache, cb, &d);
            } else {
                b->out = ex->out;
                memset(&b->cache, 0, sizeof b->cache);
                b->cache.x_mid = ex->out;
                b->cache.qkv = p->icache;
                b->cache.fc1 = p->icache ? p->icache + Ns * 3 * Cs : NULL;
            }
            x = b->out;
        }
    }
    p->nu_mean = tr ? take(l, N) : NULL;
    p->nu_rstd = tr ? take(l, N) : NULL;
    p->pred = take(l, N * K);
    p->target = take(l, N * K);
    // Every gradient flowing between layers fits in (N, max(C, K)) (stage s: N_s C_s = N C / 2^s).
    p->grad_floats = N * max_sz(C, K);
    for (int g = 0; g < 3; g++) p->grad[g] = tr ? take(l, p->grad_floats) : NULL;
}

static int plan_build(swinmae *m) {
    struct swinmae_plan *p = as_calloc(1, sizeof *p);
    m->plan = p;
    const swinmae_config *c = &m->cfg;
    p->G = swinmae_grid(c);
    p->L = p->G * p->G;
    p->K = swinmae_patch_dim(c);
    for (int s = 0; s < 4; s++) {
        p->res[s] = swinmae_stage_res(c, s);
        p->dim[s] = swinmae_stage_dim(c, s);
        // Shifted blocks roll by window/2 at every stage, the 7x7 one included (reference quirk).
        if (swin_geom_init(&p->geom[s][0], p->res[s], p->res[s], c->window, 0) ||
            swin_geom_init(&p->geom[s][1], p->res[s], p->res[s], c->window, c->window / 2))
            return -1;
    }
    int T = c->window * c->window;
    int64_t *idx = as_malloc(sizeof(int64_t) * (size_t)T * T);
    relative_position_index(idx, c->window);
    p->relpos = as_malloc(sizeof(int) * (size_t)T * T);
    for (int i = 0; i < T * T; i++) p->relpos[i] = (int)idx[i];
    free(idx);

    p->nblocks = 0;
    for (int s = 0; s < 4; s++) p->nblocks += c->depths[s];
    for (int s = 0; s < 3; s++) p->nblocks += c->depths[s];
    p->blocks = as_calloc((size_t)p->nblocks, sizeof(mae_block));
    char prefix[64];
    int k = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int q = 0; q < (pass ? 3 : 4); q++) {
            int s = pass ? 2 - q : q;  // layers_up.q runs at stage 2-q
            if (pass) p->dec_first[q] = k;
            else p->enc_first[q] = k;
            for (int j = 0; j < c->depths[s]; j++, k++) {
                mae_block *b = &p->blocks[k];
                snprintf(prefix, sizeof prefix, pass ? "layers_up.%d.blocks.%d" : "layers.%d.blocks.%d", q, j);
                param_block_views(&b->w, &m->table, m->params, prefix);
                param_block_views(&b->dw, &m->table, m->grads, prefix);
                b->dims.B = m->max_batch;
                b->dims.C = p->dim[s];
                b->dims.heads = c->num_heads[s];
                b->dims.hidden = p->dim[s] * c->mlp_ratio;
                b->dims.geom = &p->geom[s][j % 2];
                b->dims.relpos = p->relpos;
                b->rate = swinmae_drop_path(c, s, j);
            }
        }

    p->pe_w = pv(m, m->params, "patch_embed.proj.weight");
    p->pe_b = pv(m, m->params, "patch_embed.proj.bias");
    p->dpe_w = pv(m, m->grads, "patch_embed.proj.weight");
    p->dpe_b = pv(m, m->grads, "patch_embed.proj.bias");
    p->mask_token = pv(m, m->params, "mask_token");
    p->dmask_token = pv(m, m->grads, "mask_token");
    norm_views(m, &p->pe_norm, "patch_embed.norm");
    for (int s = 0; s < 3; s++) {
        snprintf(prefix, sizeof prefix, "layers.%d.downsample.norm", s);
        norm_views(m, &p->merge[s].norm, prefix);
        p->merge[s].red = pv(m, m->params, "layers.%d.downsample.reduction.weight", s);
        p->merge[s].dred = pv(m, m->grads, "layers.%d.downsample.reduction.weight", s);
    }
    for (int e = 0; e < 3; e++) {
        mae_expand *ex = &p->expand[e];
        ex->level = 3 - e;
        if (e == 0) snprintf(prefix, sizeof prefix, "first_patch_expanding");
        else snprintf(prefix, sizeof prefix, "layers_up.%d.upsample", e - 1);
        ex->ew = pv(m, m->params, "%s.expand.weight", prefix);
        ex->dew = pv(m, m->grads, "%s.expand.weight", prefix);
        char nn[96];
        snprintf(nn, sizeof nn, "%s.norm", prefix);
        norm_views(m, &ex->norm, nn);
    }
    norm_views(m, &p->norm_up, "norm_up");
    p->pred_w = pv(m, m->params, "decoder_pred.weight");
    p->pred_b = pv(m, m->params, "decoder_pred.bias");
    p->dpred_w = pv(m, m->grads, "decoder_pred.weight");
    p->dpred_b = pv(m, m->grads, "decoder_pred.bias");
    return 0;
}

static void plan_free(struct swinmae_plan *p) {
    if (!p) return;
    for (int s = 0; s < 4; s++) {
        swin_geom_free(&p->geom[s][0]);
        swin_geom_free(&p->geom[s][1]);
    }
    free(p->relpos);
    free(p->blocks);
    free(p);
}

int swinmae_create(swinmae *m, const swinmae_config *cfg, int max_batch, int training) {
    memset(m, 0, sizeof *m);
    if (max_batch < 1) return as_fail("model: batch size %d must be at least 1", max_batch);
    if (swinmae_config_check(cfg)) return -1;
    if (param_table_build(&m->table, cfg)) return -1;
    m->cfg = *cfg;
    m->max_batch = max_batch;
    m->training = training ? 1 : 0;
    m->params = as_calloc(m->table.n_floats, sizeof(float));
    if (m->training) m->grads = as_calloc(m->table.n_floats, sizeof(float));
    if (plan_build(m)) {
        swinmae_free(m);
        return -1;
    }
    layout l = {NULL, 0};
    plan_layout(m, &l);
    m->arena_floats = l.used;
    // Not zeroed: every activation is written before it is read; untouched pages stay unmapped.
    m->arena = aligned_alloc(64, l.used * sizeof(float));
    if (!m->arena) {
        swinmae_free(m);
        return as_fail("model: cannot allocate %.1f MiB of activations", l.used * 4.0 / 1048576.0);
    }
    l = (layout){m->arena, 0};
    plan_layout(m, &l);
    m->mask = as_calloc((size_t)max_batch * m->plan->L, 1);
    return 0;
}

void swinmae_free(swinmae *m) {
    plan_free(m->plan);
    param_table_free(&m->table);
    free(m->params);
    free(m->grads);
    free(m->arena);
    free(m->mask);
    memset(m, 0, sizeof *m);
}

size_t swinmae_arena_bytes(const swinmae_config *cfg, int max_batch, int training) {
    swinmae m;
    memset(&m, 0, sizeof m);
    if (max_batch < 1 || swinmae_config_check(cfg) || param_table_build(&m.table, cfg)) return 0;
    m.cfg = *cfg;
    m.max_batch = max_batch;
    m.training = training ? 1 : 0;
    // Views into NULL buffers are never dereferenced here; give the table something to index.
    m.params = as_calloc(m.table.n_floats, sizeof(float));
    if (m.training) m.grads = m.params;
    size_t bytes = 0;
    if (!plan_build(&m)) {
        layout l = {NULL, 0};
        plan_layout(&m, &l);
        bytes = l.used * sizeof(float);
    }
    plan_free(m.plan);
    param_table_free(&m.table);
    free(m.params);
    return bytes;
}

// ---- forward ------------------------------------------------------------------------------------
static void block_run(mae_block *b, float *scratch, int B, int drop_path, uint64_t seed, int index) {
    b->dims.B = B;
    b->drop_on = drop_path && b->rate > 0.0f;
    if (b->drop_on) {
        droppath_scales(b->drop, B, b->rate, seed, 2 * (uint64_t)index);
        droppath_scales(b->drop + B, B, b->rate, seed, 2 * (uint64_t)index + 1);
    }
    swin_block_forward(b->out, &b->cache, scratch, b->inp, &b->w, &b->dims, b->drop_on ? b->drop : NULL);
}

// The last decoder stage for swinmae_forward_masked: each block runs only the windows whose
// outputs the masked tokens depend on. Working back from the masked tokens, block j needs the
// windows (in its own, possibly shifted, partition) holding a token that block j+1 needs, and
// then every token of those windows as input. Going forward, the needed windows of all images
// are gathered as one strip of windows (ws*M x ws, no shift: its window order is its row order),
// keeping each window's original shifted-window mask regions, and run through the same
// swin_block_forward; the results are scattered back. Tokens outside the needed windows keep
// stale values, which nothing downstream reads.
static void last_stage_masked(struct swinmae_plan *p, int first, int depth, int B, float *x, const uint8_t *mask) {
    const swin_geom *g0 = p->blocks[first].dims.geom;
    const int R = g0->H, L = R * R, T = g0->T, ws = g0->ws, nW = g0->nW, C = p->blocks[first].dims.C;
    uint8_t *need = as_malloc((size_t)depth * B * L), *wneed = as_malloc((size_t)depth * B * nW);
    memcpy(need + (size_t)(depth - 1) * B * L, mask, (size_t)B * L);
    for (int j = depth - 1; j >= 0; j--) {
        const swin_geom *g = p->blocks[first + j].dims.geom;
        uint8_t *nj = need + (size_t)j * B * L, *wj = wneed + (size_t)j * B * nW;
        memset(wj, 0, (size_t)B * nW);
        for (int b = 0; b < B; b++)
            for (int t = 0; t < L; t++)
                if (nj[(size_t)b * L + t]) wj[(size_t)b * nW + g->perm[t] / T] = 1;
        if (j > 0) {
            uint8_t *prev = need + (size_t)(j - 1) * B * L;
            for (int b = 0; b < B; b++)
                for (int t = 0; t < L; t++) prev[(size_t)b * L + t] = wj[(size_t)b * nW + g->perm[t] / T];
        }
    }
    int *iperm = as_malloc(sizeof(int) * (size_t)L), *list = as_malloc(sizeof(int) * (size_t)B * nW);
    float *win = as_malloc(sizeof(float) * (size_t)B * L * C);
    for (int j = 0; j < depth; j++) {
        mae_block *blk = &p->blocks[first + j];
        const swin_geom *g = blk->dims.geom;
        const uint8_t *wj = wneed + (size_t)j * B * nW;
        int M = 0;
        for (int i = 0; i < B * nW; i++)
            if (wj[i]) list[M++] = i;
        if (M == 0) continue;
        for (int t = 0; t < L; t++) iperm[g->perm[t]] = t;
        swin_geom strip;
        if (swin_geom_init(&strip, ws * M, ws, ws, 0)) abort();  // sizes valid by construction
        if (g->region) {
            strip.region = as_malloc(sizeof(int) * (size_t)M * T);
            for (int m = 0; m < M; m++) memcpy(strip.region + (size_t)m * T, g->region + (size_t)(list[m] % nW) * T,
                                               sizeof(int) * (size_t)T);
        }
#pragma omp parallel for schedule(static)
        for (int m = 0; m < M; m++) {
            int b = list[m] / nW, w = list[m] % nW;
            for (int q = 0; q < T; q++)
                memcpy(win + ((size_t)m * T + q) * C, x + ((size_t)b * L + iperm[w * T + q]) * C, sizeof(float) * C);
        }
        swin_block_dims d = blk->dims;
        d.B = 1, d.geom = &strip;
        swin_block_cache c = blk->cache;
        c.x_mid = win;
        swin_block_forward(win, &c, p->scratch, win, &blk->w, &d, NULL);
#pragma omp parallel for schedule(static)
        for (int m = 0; m < M; m++) {
            int b = list[m] / nW, w = list[m] % nW;
            for (int q = 0; q < T; q++)
                memcpy(x + ((size_t)b * L + iperm[w * T + q]) * C, win + ((size_t)m * T + q) * C, sizeof(float) * C);
        }
        swin_geom_free(&strip);
    }
    free(win);
    free(list);
    free(iperm);
    free(wneed);
    free(need);
}

enum { ENCODER_ONLY = 2 };  // forward's masked_only value that stops after the encoder

// The one place that keeps products in fp32 under --precision bf16: an inference model runs the
// decoder's tail, from this patch expansion on (the expansion, the last decoder stage and the
// prediction head), in fp32. Its products set the reconstructed pixels directly, and the anomaly
// map's per-window min-max scaling magnifies their rounding where a window's residual is flat: at
// the paper's width on 64 px slices bf16 moved a trained checkpoint's preset-normalised maps by up
// to 0.047-0.058, and by 0.003-0.004 with this tail in fp32; bf16 in the encoder moved them by
// < 1e-4 (docs/bf16.md, "Where the maps' difference comes from"). The tail is ~5% of detect's
// GEMM FLOPs (its last stage runs only the masked windows' neighbourhood). Training keeps bf16
// throughout: its validation loss tracks fp32's without this, and its speed is what bf16 is for.
enum { FP32_TAIL_FROM_EXPANSION = 2 };

static int fp32_tail(const swinmae *m) { return !m->training && nn_precision() == NN_BF16; }

static float forward(swinmae *m, const float *images, const uint8_t *token_mask, int B, int drop_path,
                     uint64_t drop_seed, int masked_only) {
    struct swinmae_plan *p = m->plan;
    if (B < 1 || B > m->max_batch) {
        fprintf(stderr, "anoswin: internal error: batch %d outside 1..%d\n", B, m->max_batch);
        abort();
    }
    const swinmae_config *c = &m->cfg;
    const int N = B * p->L, C = p->dim[0], K = p->K;
    m->batch = B;
    memcpy(m->mask, token_mask, (size_t)N);

    patch_im2col(p->cols, images, B, c->in_chans, c->img_size, c->img_size, c->patch_size);
    patch_embed_forward(p->pe, p->cols, p->pe_w, p->pe_b, N, K, C);
    layernorm_forward(p->x0, p->pe_mean, p->pe_rstd, p->pe, p->pe_norm.w, p->pe_norm.b, NULL, 1, N, C);
    mask_token_forward(p->x0, m->mask, p->mask_token, N, C);

    for (int s = 0; s < 4; s++) {
        for (int j = 0; j < c->depths[s]; j++) {
            int k = p->enc_first[s] + j;
            block_run(&p->blocks[k], p->scratch, B, drop_path, drop_seed, k);
        }
        if (s < 3) {
            mae_merge *mg = &p->merge[s];
            int R = p->res[s], Cs = p->dim[s], N4 = B * R * R / 4;
            float *gath = p->scratch, *nrm = p->scratch + (size_t)N4 * 4 * Cs;
            merge_gather_forward(gath, p->stage_out[s], B, R, R, Cs);
            layernorm_forward(nrm, mg->mean, mg->rstd, gath, mg->norm.w, mg->norm.b, NULL, 1, N4, 4 * Cs);
            linear_forward(mg->out, nrm, mg->red, NULL, N4, 4 * Cs, 2 * Cs);
        }
    }
    if (masked_only == ENCODER_ONLY) return 0.0f;
    const float *x = p->stage_out[3];
    const int tail = fp32_tail(m);
    for (int e = 0; e < 3; e++) {
        mae_expand *ex = &p->expand[e];
        int s = ex->level, R = p->res[s], Cs = p->dim[s], Nin = B * R * R;
        if (tail && e == FP32_TAIL_FROM_EXPANSION) (void)nn_set_precision(NN_FP32);
        float *lin = p->scratch, *pre = ex->pre ? ex->pre : p->scratch + (size_t)Nin * 2 * Cs;
        linear_forward(lin, x, ex->ew, NULL, Nin, Cs, 2 * Cs);
        expand_regroup_forward(pre, lin, B, R, R, Cs / 2);
        layernorm_forward(ex->out, ex->mean, ex->rstd, pre, ex->norm.w, ex->norm.b, NULL, 1, 4 * Nin, Cs / 2);
        x = ex->out;
        int sd = 2 - e;
        if (masked_only && e == 2 && !m->training) {
            last_stage_masked(p, p->dec_first[e], c->depths[sd], B, ex->out, m->mask);
            continue;
        }
        for (int j = 0; j < c->depths[sd]; j++) {
            int k = p->dec_first[e] + j;
            block_run(&p->blocks[k], p->scratch, B, drop_path, drop_seed, k);
            x = p->blocks[k].out;
        }
    }
    float *xn = p->scratch;
    layernorm_forward(xn, p->nu_mean, p->nu_rstd, x, p->norm_up.w, p->norm_up.b, NULL, 1, N, C);
    linear_forward(p->pred, xn, p->pred_w, p->pred_b, N, C, K);
    if (tail) (void)nn_set_precision(NN_BF16);
    patchify(p->target, images, B, c->in_chans, c->img_size, c->img_size, c->patch_size);
    m->loss = masked_mse_forward(p->pred, p->target, m->mask, N, K);
    return m->loss;
}

float swinmae_forward(swinmae *m, const float *images, const uint8_t *token_mask, int B, int drop_path,
                      uint64_t drop_seed) {
    return forward(m, images, token_mask, B, drop_path, drop_seed, 0);
}

float swinmae_forward_masked(swinmae *m, const float *images, const uint8_t *token_mask, int B) {
    return forward(m, images, token_mask, B, 0, 0, 1);
}

void swinmae_encode(swinmae *m, const float *images, const uint8_t *token_mask, int B) {
    forward(m, images, token_mask, B, 0, 0, ENCODER_ONLY);
}

// ---- backward -----------------------------------------------------------------------------------
void swinmae_zero_grad(swinmae *m) {
    if (m->grads) memset(m->grads, 0, sizeof(float) * m->table.n_floats);
}

static float *zeroed(float *buf, size_t n) {
    memset(buf, 0, n * sizeof(float));
    return buf;
}

void swinmae_backward(swinmae *m) {
    struct swinmae_plan *p = m->plan;
    if (!m->training || !m->batch) {
        fprintf(stderr, "anoswin: internal error: backward without a training forward\n");
        abort();
    }
    const swinmae_config *c = &m->cfg;
    const int B = m->batch, N = B * p->L, C = p->dim[0], K = p->K;
    float *gA = p->grad[0], *gB = p->grad[1], *gC = p->grad[2];

    // loss -> decoder_pred -> norm_up
    masked_mse_backward(zeroed(gA, (size_t)N * K), p->pred, p->target, m->mask, N, K, 1.0f);
    const float *xlast = p->blocks[p->dec_first[2] + c->depths[0] - 1].out;
    float *xn = p->scratch;
    layernorm_forward(xn, NULL, NULL, xlast, p->norm_up.w, p->norm_up.b, NULL, 1, N, C);  // recompute
    linear_backward(zeroed(gB, (size_t)N * C), p->dpred_w, p->dpred_b, gA, xn, p->pred_w, N, C, K);
    layernorm_backward(zeroed(gA, (size_t)N * C), p->norm_up.dw, p->norm_up.db, gB, xlast, p->nu_mean, p->nu_rstd,
                       p->norm_up.w, NULL, 1, N, C);
    float *cur = gA;  // dL/d(current layer output), updated in place through the blocks

    for (int e = 2; e >= 0; e--) {
        int sd = 2 - e;
        for (int j = c->depths[sd] - 1; j >= 0; j--) {
            mae_block *b = &p->blocks[p->dec_first[e] + j];
            swin_block_backward(cur, &b->dw, p->scratch, &b->cache, b->inp, &b->w, &b->dims,
                                b->drop_on ? b->drop : NULL);
        }
        // expansion e: out = LN(regroup(x · Wᵀ)), x = the previous stage's output
        mae_expand *ex = &p->expand[e];
        int s = ex->level, R = p->res[s], Cs = p->dim[s], Nin = B * R * R;
        const float *xin = e == 0 ? p->stage_out[3] : p->blocks[p->dec_first[e - 1] + c->depths[s] - 1].out;
        layernorm_backward(zeroed(gB, (size_t)Nin * 2 * Cs), ex->norm.dw, ex->norm.db, cur, ex->pre, ex->mean, ex->rstd,
                           ex->norm.w, NULL, 1, 4 * Nin, Cs / 2);
        expand_regroup_backward(zeroed(gC, (size_t)Nin * 2 * Cs), gB, B, R, R, Cs / 2);
        linear_backward(zeroed(gA, (size_t)Nin * Cs), ex->dew, NULL, gC, xin, ex->ew, Nin, Cs, 2 * Cs);
        cur = gA;
    }
    for (int s = 3; s >= 0; s--) {
        if (s < 3) {  // merge: out = LN(gather(x)) · Wᵀ
            mae_merge *mg = &p->merge[s];
            int R = p->res[s], Cs = p->dim[s], N4 = B * R * R / 4;
            float *gath = p->scratch, *nrm = p->scratch + (size_t)N4 * 4 * Cs;
            merge_gather_forward(gath, p->stage_out[s], B, R, R, Cs);  // recompute
            layernorm_forward(nrm, NULL, NULL, gath, mg->norm.w, mg->norm.b, NULL, 1, N4, 4 * Cs);
            linear_backward(zeroed(gB, (size_t)N4 * 4 * Cs), mg->dred, NULL, cur, nrm, mg->red, N4, 4 * Cs, 2 * Cs);
            layernorm_backward(zeroed(gC, (size_t)N4 * 4 * Cs), mg->norm.dw, mg->norm.db, gB, gath, mg->mean, mg->rstd,
                               mg->norm.w, NULL, 1, N4, 4 * Cs);
            merge_gather_backward(zeroed(gA, (size_t)N4 * 4 * Cs), gC, B, R, R, Cs);
            cur = gA;
        }
        for (int j = c->depths[s] - 1; j >= 0; j--) {
            mae_block *b = &p->blocks[p->enc_first[s] + j];
            swin_block_backward(cur, &b->dw, p->scratch, &b->cache, b->inp, &b->w, &b->dims,
                                b->drop_on ? b->drop : NULL);
        }
    }
    // mask token, patch_embed.norm, patch_embed.proj (no gradient w.r.t. the images)
    mask_token_backward(p->dmask_token, cur, m->mask, N, C);
    layernorm_backward(zeroed(gB, (size_t)N * C), p->pe_norm.dw, p->pe_norm.db, cur, p->pe, p->pe_mean, p->pe_rstd,
                       p->pe_norm.w, NULL, 1, N, C);
    patch_embed_backward(p->dpe_w, p->dpe_b, gB, p->cols, N, K, C);
}

const float *swinmae_pred(const swinmae *m) { return m->plan->pred; }

void swinmae_unpatchify(const swinmae_config *c, const float *pred, float *images, int B) {
    unpatchify(images, pred, B, c->in_chans, c->img_size, c->img_size, c->patch_size);
}

const float *swinmae_stage_output(const swinmae *m, int stage) {
    if (stage < 0 || stage > 3) return NULL;
    return m->plan->stage_out[stage];
}
