// Swin Transformer block forward / backward (see swin_block.h).
#include "nn/swin_block.h"

#include <omp.h>
#include <string.h>

// ---- optional time profile (bench programs) -------------------------------------------------------
int nn_profile_on;
double nn_profile_sec[NN_PROF_COUNT];
const char *const nn_profile_names[NN_PROF_COUNT] = {
    "fwd layernorm", "fwd qkv gemm", "fwd attention", "fwd proj gemm", "fwd residual", "fwd fc1 gemm",
    "fwd gelu",      "fwd fc2 gemm", "bwd residual",  "bwd gelu",      "bwd fc2 gemm", "bwd fc1 gemm",
    "bwd layernorm", "bwd proj gemm", "bwd attention", "bwd qkv gemm", "bwd memset"};
#define PROF(k, stmt)                                                  \
    do {                                                               \
        double t0_ = nn_profile_on ? omp_get_wtime() : 0.0;            \
        stmt;                                                          \
        if (nn_profile_on) nn_profile_sec[k] += omp_get_wtime() - t0_; \
    } while (0)

// The fused MLP (nn.h mlp_forward) pays off where the weights are small enough to be packed once
// per tile: stages with C <= 192. Tiles of 128 rows keep a tile's activations within L2.
// In bf16 (AMX tiles) each tile repacks the weights into bf16, so its tiles are taller.
enum { MLP_FUSE_MAX_C = 192, MLP_TILE_ROWS = 128, MLP_TILE_ROWS_BF16 = 512 };

static int mlp_tile_rows(void) { return nn_precision() == NN_BF16 ? MLP_TILE_ROWS_BF16 : MLP_TILE_ROWS; }

static size_t block_tokens(const swin_block_dims *d) { return (size_t)d->B * d->geom->H * d->geom->W; }

size_t swin_block_cache_floats(const swin_block_dims *d) {
    size_t N = block_tokens(d), C = (size_t)d->C;
    return 4 * N + N * 3 * C + N * C + N * (size_t)d->hidden;
}

static size_t block_wide(const swin_block_dims *d) {
    return block_tokens(d) * (size_t)(d->hidden > 3 * d->C ? d->hidden : 3 * d->C);
}

size_t swin_block_scratch_floats(const swin_block_dims *d) {
    size_t N = block_tokens(d), C = (size_t)d->C, TT = (size_t)d->geom->T * d->geom->T;
    return block_wide(d) + 2 * N * C + 2 * (size_t)d->heads * TT;
}

void swin_block_cache_init(swin_block_cache *c, float *buf, const swin_block_dims *d) {
    size_t N = block_tokens(d), C = (size_t)d->C;
    c->ln1_mean = buf;
    c->ln1_rstd = c->ln1_mean + N;
    c->ln2_mean = c->ln1_rstd + N;
    c->ln2_rstd = c->ln2_mean + N;
    c->qkv = c->ln2_rstd + N;
    c->attn = NULL;  // recomputed in backward
    c->x_mid = c->qkv + N * 3 * C;
    c->fc1 = c->x_mid + N * C;
}

// The attention bias (heads, T, T): the relative position bias, or zeros for a block without one
// (the ViT's global attention), which lets both share the window attention kernels unchanged.
static void attn_bias(float *bias, const swin_block_weights *w, const swin_block_dims *d, int T) {
    if (w->rpb_table) relpos_bias_forward(bias, w->rpb_table, d->relpos, d->heads, T);
    else memset(bias, 0, sizeof(float) * (size_t)d->heads * T * T);
}

// linear_backward with the input gradient written (beta 0) rather than added to zeros: the bf16
// GEMM then stores its tiles straight into dinp, and no memset pass goes first.
static void linear_backward_set(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                                const float *weight, int N, int IC, int OC) {
    gemm_prec(0, 0, N, IC, OC, 1.0f, dout, OC, weight, IC, 0.0f, dinp, IC);
    linear_backward(NULL, dweight, dbias, dout, inp, weight, N, IC, OC);
}

// Scratch layout (both directions): two (N, C) buffers, one (N, max(hidden, 3C)) buffer, and
// the expanded relative position bias and its gradient (heads, T, T).
void swin_block_forward(float *out, const swin_block_cache *c, float *scratch, const float *inp,
                        const swin_block_weights *w, const swin_block_dims *d, const float *drop) {
    const swin_geom *g = d->geom;
    const int B = d->B, C = d->C, L = g->H * g->W, N = B * L, T = g->T, hid = d->hidden;
    const size_t NC = (size_t)N * C;
    float *xn = scratch, *y = xn + NC, *wide = y + NC, *bias = wide + block_wide(d);
    float *attn = c->attn ? c->attn : wide;  // wide is free until the GELU

    // attention branch, in window order
    PROF(NN_PROF_FWD_ATTN, attn_bias(bias, w, d, T));
    PROF(NN_PROF_FWD_LN, layernorm_forward(xn, c->ln1_mean, c->ln1_rstd, inp, w->norm1_w, w->norm1_b, g->perm, L, N, C));
    PROF(NN_PROF_FWD_QKV, linear_forward(c->qkv, xn, w->qkv_w, w->qkv_b, N, C, 3 * C));
    PROF(NN_PROF_FWD_ATTN,
         window_attention_forward(attn, c->qkv, bias, g->region, B * g->nW, g->nW, T, C, d->heads));
    PROF(NN_PROF_FWD_PROJ, linear_forward(y, attn, w->proj_w, NULL, N, C, C));  // bias added in the residual
    PROF(NN_PROF_FWD_RES, residual_forward(c->x_mid, inp, y, w->proj_b, drop, g->perm, L, N, C));
    // MLP branch, in token order
    PROF(NN_PROF_FWD_LN,
         layernorm_forward(xn, c->ln2_mean, c->ln2_rstd, c->x_mid, w->norm2_w, w->norm2_b, NULL, L, N, C));
    if (C <= MLP_FUSE_MAX_C) {  // profiled as fc1: fc1 + GELU + fc2 by row tiles
        PROF(NN_PROF_FWD_FC1, mlp_forward(y, c->fc1, wide, xn, w->fc1_w, w->fc1_b, w->fc2_w, N, C, hid, mlp_tile_rows()));
    } else {
        PROF(NN_PROF_FWD_FC1, linear_forward(c->fc1, xn, w->fc1_w, w->fc1_b, N, C, hid));
        PROF(NN_PROF_FWD_GELU, gelu_forward(wide, c->fc1, (size_t)N * hid));
        PROF(NN_PROF_FWD_FC2, linear_forward(y, wide, w->fc2_w, NULL, N, hid, C));
    }
    PROF(NN_PROF_FWD_RES, residual_forward(out, c->x_mid, y, w->fc2_b, drop ? drop + B : NULL, NULL, L, N, C));
}

void swin_block_backward(float *dx, const swin_block_weights *dw, float *scratch, const swin_block_cache *c,
                         const float *inp, const swin_block_weights *w, const swin_block_dims *d, const float *drop) {
    const swin_geom *g = d->geom;
    const int B = d->B, C = d->C, L = g->H * g->W, N = B * L, T = g->T, hid = d->hidden;
    const size_t NC = (size_t)N * C;
    float *c1 = scratch, *c2 = c1 + NC, *wide = c2 + NC, *bias = wide + block_wide(d);
    float *dbias = bias + (size_t)d->heads * T * T;

    // ---- MLP branch: out = x_mid + s * (fc2(gelu(fc1(LN2(x_mid)))) + b2)
    PROF(NN_PROF_BWD_RES, residual_backward(c1, dw->fc2_b, dx, drop ? drop + B : NULL, NULL, L, N, C));  // c1 = dy
    // Recompute GELU(fc1) and turn the cached fc1 into GELU'(fc1) in the same pass (erf and exp
    // once): the cache is spent by its block's backward.
    PROF(NN_PROF_BWD_GELU, gelu_value_grad(wide, c->fc1, (size_t)N * hid));
    PROF(NN_PROF_BWD_FC2, linear_backward(NULL, dw->fc2_w, NULL, c1, wide, w->fc2_w, N, hid, C));
    // wide = dfc1 = (dy·W2) ∘ GELU'(fc1), profiled as fc2 (the GEMM dominates).
    PROF(NN_PROF_BWD_FC2, mlp_backward_act(wide, c1, w->fc2_w, c->fc1, N, C, hid, mlp_tile_rows()));
    PROF(NN_PROF_BWD_LN, layernorm_forward(c2, NULL, NULL, c->x_mid, w->norm2_w, w->norm2_b, NULL, L, N, C));
    PROF(NN_PROF_BWD_FC1, linear_backward_set(c1, dw->fc1_w, dw->fc1_b, wide, c2, w->fc1_w, N, C, hid));  // c1 = dLN2
    // dx becomes dL/dx_mid: the residual path plus the norm's gradient.
    PROF(NN_PROF_BWD_LN, layernorm_backward(dx, dw->norm2_w, dw->norm2_b, c1, c->x_mid, c->ln2_mean, c->ln2_rstd,
                                            w->norm2_w, NULL, L, N, C));

    // ---- attention branch: x_mid = x + s * unwindow(proj(attn) + bp)
    PROF(NN_PROF_BWD_ATTN, attn_bias(bias, w, d, T));
    const float *attn = c->attn;
    if (!attn) {  // recompute the attention output (cheaper than storing it)
        PROF(NN_PROF_BWD_ATTN,
             window_attention_forward(wide, c->qkv, bias, g->region, B * g->nW, g->nW, T, C, d->heads));
        attn = wide;
    }
    PROF(NN_PROF_BWD_RES, residual_backward(c1, dw->proj_b, dx, drop, g->perm, L, N, C));  // c1 = dproj (windows)
    PROF(NN_PROF_BWD_PROJ, linear_backward_set(c2, dw->proj_w, NULL, c1, attn, w->proj_w, N, C, C));  // c2 = dattn
    PROF(NN_PROF_BWD_MEMSET, memset(dbias, 0, sizeof(float) * (size_t)d->heads * T * T));
    PROF(NN_PROF_BWD_MEMSET, memset(wide, 0, sizeof(float) * NC * 3));
    PROF(NN_PROF_BWD_ATTN, window_attention_backward(wide, dbias, c2, c->qkv, bias, g->region, B * g->nW, g->nW, T,
                                                     C, d->heads));
    if (w->rpb_table) PROF(NN_PROF_BWD_ATTN, relpos_bias_backward(dw->rpb_table, dbias, d->relpos, d->heads, T));
    PROF(NN_PROF_BWD_LN, layernorm_forward(c2, NULL, NULL, inp, w->norm1_w, w->norm1_b, g->perm, L, N, C));
    PROF(NN_PROF_BWD_QKV, linear_backward_set(c1, dw->qkv_w, dw->qkv_b, wide, c2, w->qkv_w, N, C, 3 * C));  // dLN1
    PROF(NN_PROF_BWD_LN, layernorm_backward(dx, dw->norm1_w, dw->norm1_b, c1, inp, c->ln1_mean, c->ln1_rstd,
                                            w->norm1_w, g->perm, L, N, C));
}
