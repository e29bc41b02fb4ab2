// Swin Transformer block forward / backward (see swin_block.h).
#include "nn/swin_block.h"

#include <string.h>

static size_t block_tokens(const swin_block_dims *d) { return (size_t)d->B * d->geom->H * d->geom->W; }

size_t swin_block_cache_floats(const swin_block_dims *d) {
    size_t N = block_tokens(d), C = (size_t)d->C;
    return 4 * N + N * 3 * C + N * C + N * C + N * (size_t)d->hidden;
}

size_t swin_block_scratch_floats(const swin_block_dims *d) {
    size_t N = block_tokens(d), C = (size_t)d->C, TT = (size_t)d->geom->T * d->geom->T;
    size_t wide = N * (size_t)(d->hidden > 3 * d->C ? d->hidden : 3 * d->C);
    return 2 * wide + 2 * N * C + 2 * (size_t)d->heads * TT;
}

void swin_block_cache_init(swin_block_cache *c, float *buf, const swin_block_dims *d) {
    size_t N = block_tokens(d), C = (size_t)d->C;
    c->ln1_mean = buf;
    c->ln1_rstd = c->ln1_mean + N;
    c->ln2_mean = c->ln1_rstd + N;
    c->ln2_rstd = c->ln2_mean + N;
    c->qkv = c->ln2_rstd + N;
    c->attn = c->qkv + N * 3 * C;
    c->x_mid = c->attn + N * C;
    c->fc1 = c->x_mid + N * C;
}

void swin_block_forward(float *out, const swin_block_cache *c, float *scratch, const float *inp,
                        const swin_block_weights *w, const swin_block_dims *d, const float *drop) {
    const swin_geom *g = d->geom;
    const int B = d->B, C = d->C, L = g->H * g->W, N = B * L, T = g->T, hid = d->hidden;
    size_t wide = (size_t)N * (size_t)(hid > 3 * C ? hid : 3 * C);
    float *xn = scratch;                  // (N, C)
    float *y = xn + (size_t)N * C;        // (N, C)
    float *act = y + (size_t)N * C;       // (N, hidden)
    float *bias = act + 2 * wide;         // (heads, T, T)

    // attention branch, in window order
    relpos_bias_forward(bias, w->rpb_table, d->relpos, d->heads, T);
    layernorm_forward(xn, c->ln1_mean, c->ln1_rstd, inp, w->norm1_w, w->norm1_b, g->perm, L, N, C);
    linear_forward(c->qkv, xn, w->qkv_w, w->qkv_b, N, C, 3 * C);
    window_attention_forward(c->attn, c->qkv, bias, g->region, B * g->nW, g->nW, T, C, d->heads);
    linear_forward(y, c->attn, w->proj_w, NULL, N, C, C);  // proj bias added in the residual
    residual_forward(c->x_mid, inp, y, w->proj_b, drop, g->perm, L, N, C);
    // MLP branch, in token order
    layernorm_forward(xn, c->ln2_mean, c->ln2_rstd, c->x_mid, w->norm2_w, w->norm2_b, NULL, L, N, C);
    linear_forward(c->fc1, xn, w->fc1_w, w->fc1_b, N, C, hid);
    gelu_forward(act, c->fc1, (size_t)N * hid);
    linear_forward(y, act, w->fc2_w, NULL, N, hid, C);
    residual_forward(out, c->x_mid, y, w->fc2_b, drop ? drop + B : NULL, NULL, L, N, C);
}

void swin_block_backward(float *dx, const swin_block_weights *dw, float *scratch, const swin_block_cache *c,
                         const float *inp, const swin_block_weights *w, const swin_block_dims *d, const float *drop) {
    const swin_geom *g = d->geom;
    const int B = d->B, C = d->C, L = g->H * g->W, N = B * L, T = g->T, hid = d->hidden;
    const size_t NC = (size_t)N * C, wide = (size_t)N * (size_t)(hid > 3 * C ? hid : 3 * C);
    float *c1 = scratch, *c2 = c1 + NC;         // (N, C) each
    float *h1 = c2 + NC, *h2 = h1 + wide;       // (N, max(hidden, 3C)) each
    float *bias = h2 + wide;                     // (heads, T, T)
    float *dbias = bias + (size_t)d->heads * T * T;

    // ---- MLP branch: out = x_mid + s * (fc2(gelu(fc1(LN2(x_mid)))) + b2)
    residual_backward(c1, dw->fc2_b, dx, drop ? drop + B : NULL, NULL, L, N, C);  // c1 = dy
    gelu_forward(h1, c->fc1, (size_t)N * hid);                                     // recompute
    memset(h2, 0, sizeof(float) * (size_t)N * hid);
    linear_backward(h2, dw->fc2_w, NULL, c1, h1, w->fc2_w, N, hid, C);            // h2 = dgelu
    gelu_backward(h2, h2, c->fc1, (size_t)N * hid);                                // h2 = dfc1
    layernorm_forward(c2, NULL, NULL, c->x_mid, w->norm2_w, w->norm2_b, NULL, L, N, C);  // recompute LN2
    memset(c1, 0, sizeof(float) * NC);
    linear_backward(c1, dw->fc1_w, dw->fc1_b, h2, c2, w->fc1_w, N, C, hid);       // c1 = dLN2
    // dx becomes dL/dx_mid: the residual path plus the norm's gradient.
    layernorm_backward(dx, dw->norm2_w, dw->norm2_b, c1, c->x_mid, c->ln2_mean, c->ln2_rstd, w->norm2_w, NULL, L,
                       N, C);

    // ---- attention branch: x_mid = x + s * unwindow(proj(attn) + bp)
    residual_backward(c1, dw->proj_b, dx, drop, g->perm, L, N, C);  // c1 = dproj, window order
    memset(c2, 0, sizeof(float) * NC);
    linear_backward(c2, dw->proj_w, NULL, c1, c->attn, w->proj_w, N, C, C);  // c2 = dattn
    relpos_bias_forward(bias, w->rpb_table, d->relpos, d->heads, T);
    memset(dbias, 0, sizeof(float) * (size_t)d->heads * T * T);
    memset(h1, 0, sizeof(float) * NC * 3);
    window_attention_backward(h1, dbias, c2, c->qkv, bias, g->region, B * g->nW, g->nW, T, C, d->heads);
    relpos_bias_backward(dw->rpb_table, dbias, d->relpos, d->heads, T);
    layernorm_forward(c2, NULL, NULL, inp, w->norm1_w, w->norm1_b, g->perm, L, N, C);  // recompute LN1
    memset(c1, 0, sizeof(float) * NC);
    linear_backward(c1, dw->qkv_w, dw->qkv_b, h1, c2, w->qkv_w, N, C, 3 * C);  // c1 = dLN1, window order
    layernorm_backward(dx, dw->norm1_w, dw->norm1_b, c1, inp, c->ln1_mean, c->ln1_rstd, w->norm1_w, g->perm, L, N,
                       C);
}
