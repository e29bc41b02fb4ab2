// The f-AnoGAN baseline: table, buffers, the networks' passes and the three training steps (see
// fanogan.h and config.h).
#include "model/fanogan/fanogan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/param_layers.h"  // param_add_conv, param_add_dense, param_add_bn, param_add_affine
#include "nn/gan.h"              // mean_pool2_*, upsample2_*, layernorm2d_*, gradient_penalty_forward
#include "nn/nn.h"               // conv2d_*, batchnorm2d_*, linear_*, leaky_relu_*, tanh_*, mse_loss_*
#include "util/carve.h"          // carve, carve_take
#include "util/error.h"          // as_fail, as_calloc

#define BN_MOMENTUM 0.1f

// ---- parameter table (tools/fanogan_ref.py's state_dict, in its order) ---------------------------

static void add_down(param_table *t, const fanogan_config *c, const char *net, int bn, int out_dim) {
    const int n = fanogan_blocks(c);
    char p[PARAM_NAME_MAX];
    snprintf(p, sizeof p, "%s.input", net);
    param_add_conv(t, p, c->in_chans, fanogan_ch(c, 0), 3, 0, 1);
    for (int i = 0; i < n; i++) {
        const int ci = fanogan_ch(c, i), co = fanogan_ch(c, i + 1);
        snprintf(p, sizeof p, "%s.blocks.%d.shortcut", net, i);
        param_add_conv(t, p, ci, co, 1, 0, 1);
        snprintf(p, sizeof p, "%s.blocks.%d.norm1", net, i);
        bn ? param_add_bn(t, p, ci) : param_add_affine(t, p, ci);
        snprintf(p, sizeof p, "%s.blocks.%d.conv1", net, i);
        param_add_conv(t, p, ci, ci, 3, 0, 0);
        snprintf(p, sizeof p, "%s.blocks.%d.norm2", net, i);
        bn ? param_add_bn(t, p, ci) : param_add_affine(t, p, ci);
        snprintf(p, sizeof p, "%s.blocks.%d.conv2", net, i);
        param_add_conv(t, p, ci, co, 3, 0, 1);
    }
    snprintf(p, sizeof p, "%s.output", net);
    param_add_dense(t, p, fanogan_feat(c), out_dim);
}

int fanogan_table_build(param_table *t, const fanogan_config *c) {
    memset(t, 0, sizeof *t);
    if (fanogan_config_check(c)) return -1;
    const int n = fanogan_blocks(c);
    char p[PARAM_NAME_MAX];
    param_add_dense(t, "generator.input", c->z_dim, fanogan_feat(c));
    for (int j = 0; j < n; j++) {
        const int ci = fanogan_ch(c, n - j), co = fanogan_ch(c, n - j - 1);
        snprintf(p, sizeof p, "generator.blocks.%d.shortcut", j);
        param_add_conv(t, p, ci, co, 1, 0, 1);
        snprintf(p, sizeof p, "generator.blocks.%d.norm1", j);
        param_add_bn(t, p, ci);
        snprintf(p, sizeof p, "generator.blocks.%d.conv1", j);
        param_add_conv(t, p, ci, co, 3, 0, 0);
        snprintf(p, sizeof p, "generator.blocks.%d.norm2", j);
        param_add_bn(t, p, co);
        snprintf(p, sizeof p, "generator.blocks.%d.conv2", j);
        param_add_conv(t, p, co, co, 3, 0, 1);
    }
    param_add_bn(t, "generator.out_norm", fanogan_ch(c, 0));
    param_add_conv(t, "generator.output", fanogan_ch(c, 0), c->in_chans, 3, 0, 1);
    add_down(t, c, "critic", 0, 1);
    add_down(t, c, "encoder", 1, c->z_dim);
    return 0;
}

void fanogan_net_span(const fanogan *f, const char *net, int *begin, int *end) {
    const size_t len = strlen(net);
    *begin = *end = -1;
    for (int i = 0; i < f->table.n; i++) {
        const char *name = f->table.entries[i].name;
        if (!strncmp(name, net, len) && name[len] == '.') {
            if (*begin < 0) *begin = i;
            *end = i + 1;
        }
    }
}

// ---- buffers ------------------------------------------------------------------------------------

// A carve of the arena that also tracks the largest activation, which sizes the shared
// gradient buffers, and the largest im2col matrix.
typedef struct fg_carve {
    carve arena;
    size_t max_act, max_cols;
} fg_carve;

static float *take(fg_carve *a, size_t n) { return carve_take(&a->arena, n); }

static float *act(fg_carve *a, size_t n) {
    if (n > a->max_act) a->max_act = n;
    return take(a, n);
}

static void cols_need(fg_carve *a, size_t n) {
    if (n > a->max_cols) a->max_cols = n;
}

static void layout_down(fanogan *f, fg_down *d, fg_carve *a, int tangent) {
    const fanogan_config *c = &f->cfg;
    const size_t B = (size_t)f->max_batch;
    const int n = f->n, img = c->img_size;
    const size_t stat = B > (size_t)fanogan_ch(c, n) ? B : (size_t)fanogan_ch(c, n);  // LN: B, BN: C
    cols_need(a, conv2d_scratch_floats((int)B, c->in_chans, fanogan_ch(c, 0), 3, img, img));
    d->a[0] = act(a, B * fanogan_ch(c, 0) * img * img);
    if (tangent) d->at[0] = act(a, B * fanogan_ch(c, 0) * img * img);
    for (int i = 0; i < n; i++) {
        const size_t ci = (size_t)fanogan_ch(c, i), co = (size_t)fanogan_ch(c, i + 1), S = (size_t)img >> i;
        // conv1 (ci -> ci) and conv2 (ci -> co) at S; the 1x1 shortcut at S/2 needs less.
        cols_need(a, conv2d_scratch_floats((int)B, (int)ci, (int)ci, 3, (int)S, (int)S));
        cols_need(a, conv2d_scratch_floats((int)B, (int)ci, (int)co, 3, (int)S, (int)S));
        cols_need(a, conv2d_scratch_floats((int)B, (int)ci, (int)co, 1, (int)S / 2, (int)S / 2));
        float **bufs[6] = {&d->h1[i], &d->c1[i], &d->h2[i], &d->c2[i], &d->pa[i], &d->a[i + 1]};
        float **tbufs[6] = {&d->ht1[i], &d->ct1[i], &d->ht2[i], &d->ct2[i], &d->pat[i], &d->at[i + 1]};
        const size_t sz[6] = {B * ci * S * S, B * ci * S * S, B * ci * S * S, B * co * S * S, B * ci * S * S / 4,
                              B * co * S * S / 4};
        for (int k = 0; k < 6; k++) {
            *bufs[k] = act(a, sz[k]);
            if (tangent) *tbufs[k] = act(a, sz[k]);
        }
        d->m1[i] = take(a, stat);
        d->r1[i] = take(a, stat);
        d->m2[i] = take(a, stat);
        d->r2[i] = take(a, stat);
    }
    d->out = take(a, B * d->out_dim);
}

static void layout(fanogan *f, fg_carve *a, int training) {
    const fanogan_config *c = &f->cfg;
    const size_t B = (size_t)f->max_batch, img = (size_t)c->img_size, px = B * c->in_chans * img * img;
    const int n = f->n;
    fg_up *g = &f->gen;
    g->a[0] = act(a, B * fanogan_feat(c));
    for (int j = 0; j < n; j++) {
        const size_t ci = (size_t)fanogan_ch(c, n - j), co = (size_t)fanogan_ch(c, n - j - 1), s = (size_t)4 << j;
        cols_need(a, conv2d_scratch_floats((int)B, (int)ci, (int)co, 3, (int)(2 * s), (int)(2 * s)));
        cols_need(a, conv2d_scratch_floats((int)B, (int)co, (int)co, 3, (int)(2 * s), (int)(2 * s)));
        cols_need(a, conv2d_scratch_floats((int)B, (int)ci, (int)co, 1, (int)s, (int)s));
        g->h1[j] = act(a, B * ci * s * s);
        g->u1[j] = act(a, B * ci * 4 * s * s);
        g->c1[j] = act(a, B * co * 4 * s * s);
        g->h2[j] = act(a, B * co * 4 * s * s);
        g->a[j + 1] = act(a, B * co * 4 * s * s);
        g->m1[j] = take(a, ci);
        g->r1[j] = take(a, ci);
        g->m2[j] = take(a, co);
        g->r2[j] = take(a, co);
    }
    const size_t ch0 = (size_t)fanogan_ch(c, 0);
    cols_need(a, conv2d_scratch_floats((int)B, (int)ch0, c->in_chans, 3, (int)img, (int)img));
    g->mb = take(a, ch0);
    g->rb = take(a, ch0);
    g->hb = act(a, B * ch0 * img * img);
    g->out = act(a, px);
    f->critic = (fg_down){.name = "critic", .bn = 0, .out_dim = 1};
    f->encoder = (fg_down){.name = "encoder", .bn = 1, .out_dim = c->z_dim};
    layout_down(f, &f->critic, a, training);
    layout_down(f, &f->encoder, a, 0);
    const size_t F = (size_t)fanogan_feat(c), Z = (size_t)c->z_dim;
    f->feat_x = take(a, B * F);
    f->ones = take(a, B);
    f->junk = take(a, 2 * (size_t)fanogan_ch(c, n));
    f->tmp = take(a, a->max_act);
    if (training) {
        f->x_hat = take(a, px);
        f->g_in = take(a, px);
        f->eps = take(a, px);
        f->d_img = take(a, px);
        f->d_z = take(a, B * Z);
        f->d_out = take(a, B * (Z > 1 ? Z : 1));
        f->d_feat = take(a, B * F);
        float **d[15] = {&f->d_a[0], &f->d_a[1], &f->d_at[0], &f->d_at[1], &f->d_pa, &f->d_pat, &f->d_c2, &f->d_ct2,
                         &f->d_h2, &f->d_ht2, &f->d_c1, &f->d_ct1, &f->d_h1, &f->d_ht1, &f->d_u1};
        const size_t m = a->max_act;
        for (int k = 0; k < 15; k++) *d[k] = take(a, m);
    }
    f->cols = take(a, a->max_cols);
}

int fanogan_create(fanogan *f, const fanogan_config *c, int max_batch, int training) {
    memset(f, 0, sizeof *f);
    if (max_batch < 1) return as_fail("fanogan: max_batch %d must be positive", max_batch);
    if (fanogan_table_build(&f->table, c)) return -1;
    f->cfg = *c;
    f->n = fanogan_blocks(c);
    f->max_batch = max_batch;
    f->params = as_calloc(f->table.n_floats, sizeof(float));
    if (training) f->grads = as_calloc(f->table.n_floats, sizeof(float));
    fg_carve a = {0};
    layout(f, &a, training);
    f->arena = as_calloc(a.arena.used, sizeof(float));
    fg_carve b = {.arena = {f->arena, 0}};
    layout(f, &b, training);
    for (int i = 0; i < max_batch; i++) f->ones[i] = 1.0f;
    return 0;
}

void fanogan_free(fanogan *f) {
    param_table_free(&f->table);
    free(f->params);
    free(f->grads);
    free(f->arena);
    memset(f, 0, sizeof *f);
}

// ---- name lookup ----------------------------------------------------------------------------------

// A parameter by printf-style name, and its gradient, or NULL when `on` is 0 (a frozen network:
// nothing accumulates).
#define P(f, ...) param_ptrf(&(f)->table, (f)->params, __VA_ARGS__)
#define G(f, on, ...) param_ptrf(&(f)->table, (on) ? (f)->grads : NULL, __VA_ARGS__)

static void zero(float *p, size_t n) { memset(p, 0, sizeof(float) * n); }

// ReLU's backward from its output, in place (also the tangent's mask: ReLU is linear on each side).
static void relu_mask(float *d, const float *out, size_t n) { leaky_relu_backward(d, d, out, n, 0.0f); }

// ---- normalisation of a down net: per-sample LayerNorm (critic) or BatchNorm (encoder) -----------

static void down_norm_forward(fanogan *f, const fg_down *d, float *out, float *mean, float *rstd, const float *inp,
                              int i, int k, int B, int C, size_t hw, int training) {
    float *w = P(f, "%s.blocks.%d.norm%d.weight", d->name, i, k), *b = P(f, "%s.blocks.%d.norm%d.bias", d->name, i, k);
    if (d->bn)
        batchnorm2d_forward(out, mean, rstd, inp, w, b, P(f, "%s.blocks.%d.norm%d.running_mean", d->name, i, k),
                            P(f, "%s.blocks.%d.norm%d.running_var", d->name, i, k), B, C, hw, BN_MOMENTUM, training);
    else
        layernorm2d_forward(out, mean, rstd, inp, w, b, B, C, hw);
}

static void down_norm_backward(fanogan *f, const fg_down *d, float *dinp, const float *dout, const float *inp,
                               const float *mean, const float *rstd, int i, int k, int B, int C, size_t hw, int pg,
                               int training) {
    float *w = P(f, "%s.blocks.%d.norm%d.weight", d->name, i, k);
    float *dw = G(f, pg, "%s.blocks.%d.norm%d.weight", d->name, i, k), *db = G(f, pg, "%s.blocks.%d.norm%d.bias", d->name, i, k);
    if (d->bn)
        batchnorm2d_backward(dinp, dw ? dw : f->junk, db ? db : f->junk, dout, inp, mean, rstd, w, B, C, hw, training);
    else
        layernorm2d_backward(dinp, dw, db, dout, inp, mean, rstd, w, B, C, hw);
}

// ---- critic / encoder ------------------------------------------------------------------------------

static void down_forward(fanogan *f, fg_down *d, const float *x, int B, int training) {
    const fanogan_config *c = &f->cfg;
    const int n = f->n, img = c->img_size;
    conv2d_forward(d->a[0], f->cols, x, P(f, "%s.input.weight", d->name), P(f, "%s.input.bias", d->name), B,
                   c->in_chans, img, img, fanogan_ch(c, 0), 3, 1, 1);
    for (int i = 0; i < n; i++) {
        const int ci = fanogan_ch(c, i), co = fanogan_ch(c, i + 1), S = img >> i, S2 = S / 2;
        const size_t hw = (size_t)S * S, nin = (size_t)B * ci * hw;
        down_norm_forward(f, d, d->h1[i], d->m1[i], d->r1[i], d->a[i], i, 1, B, ci, hw, training);
        leaky_relu_forward(d->h1[i], d->h1[i], nin, 0.0f);
        conv2d_forward(d->c1[i], f->cols, d->h1[i], P(f, "%s.blocks.%d.conv1.weight", d->name, i), NULL, B, ci, S, S,
                       ci, 3, 1, 1);
        down_norm_forward(f, d, d->h2[i], d->m2[i], d->r2[i], d->c1[i], i, 2, B, ci, hw, training);
        leaky_relu_forward(d->h2[i], d->h2[i], nin, 0.0f);
        conv2d_forward(d->c2[i], f->cols, d->h2[i], P(f, "%s.blocks.%d.conv2.weight", d->name, i),
                       P(f, "%s.blocks.%d.conv2.bias", d->name, i), B, ci, S, S, co, 3, 1, 1);
        // a[i+1] = MeanPool(c2) + Conv1x1(MeanPool(a[i])).
        mean_pool2_forward(d->a[i + 1], d->c2[i], B * co, S, S);
        mean_pool2_forward(d->pa[i], d->a[i], B * ci, S, S);
        conv2d_forward(f->tmp, f->cols, d->pa[i], P(f, "%s.blocks.%d.shortcut.weight", d->name, i),
                       P(f, "%s.blocks.%d.shortcut.bias", d->name, i), B, ci, S2, S2, co, 1, 1, 0);
        const size_t nout = (size_t)B * co * S2 * S2;
        for (size_t k = 0; k < nout; k++) d->a[i + 1][k] += f->tmp[k];
    }
    linear_forward(d->out, d->a[n], P(f, "%s.output.weight", d->name), P(f, "%s.output.bias", d->name), B,
                   fanogan_feat(c), d->out_dim);
}

// The critic's tangent along xt (B, in_chans, H, W) at its last forward's point: at[], ht*, ct*, pat[].
// Biases do not enter a tangent; LayerNorm's is its Jacobian; ReLU's keeps the primal's mask.
static void critic_tangent(fanogan *f, const float *xt, int B) {
    const fanogan_config *c = &f->cfg;
    fg_down *d = &f->critic;
    const int n = f->n, img = c->img_size;
    conv2d_forward(d->at[0], f->cols, xt, P(f, "critic.input.weight"), NULL, B, c->in_chans, img, img,
                   fanogan_ch(c, 0), 3, 1, 1);
    for (int i = 0; i < n; i++) {
        const int ci = fanogan_ch(c, i), co = fanogan_ch(c, i + 1), S = img >> i, S2 = S / 2;
        const size_t hw = (size_t)S * S, nin = (size_t)B * ci * hw;
        layernorm2d_tangent(d->ht1[i], d->at[i], d->a[i], d->m1[i], d->r1[i], P(f, "critic.blocks.%d.norm1.weight", i),
                            B, ci, hw);
        relu_mask(d->ht1[i], d->h1[i], nin);
        conv2d_forward(d->ct1[i], f->cols, d->ht1[i], P(f, "critic.blocks.%d.conv1.weight", i), NULL, B, ci, S, S, ci,
                       3, 1, 1);
        layernorm2d_tangent(d->ht2[i], d->ct1[i], d->c1[i], d->m2[i], d->r2[i], P(f, "critic.blocks.%d.norm2.weight", i),
                            B, ci, hw);
        relu_mask(d->ht2[i], d->h2[i], nin);
        conv2d_forward(d->ct2[i], f->cols, d->ht2[i], P(f, "critic.blocks.%d.conv2.weight", i), NULL, B, ci, S, S, co,
                       3, 1, 1);
        mean_pool2_forward(d->at[i + 1], d->ct2[i], B * co, S, S);
        mean_pool2_forward(d->pat[i], d->at[i], B * ci, S, S);
        conv2d_forward(f->tmp, f->cols, d->pat[i], P(f, "critic.blocks.%d.shortcut.weight", i), NULL, B, ci, S2, S2,
                       co, 1, 1, 0);
        const size_t nout = (size_t)B * co * S2 * S2;
        for (size_t k = 0; k < nout; k++) d->at[i + 1][k] += f->tmp[k];
    }
}

// Backward of the last down_forward from dout (B, out_dim) and/or dfeat (B, F) (either may be
// NULL): parameter grads += when pg, dx (B, in_chans, H, W) += when non-NULL.
static void down_backward(fanogan *f, fg_down *d, const float *dout, const float *dfeat, const float *x, float *dx,
                          int B, int pg, int training) {
    const fanogan_config *c = &f->cfg;
    const int n = f->n, img = c->img_size, F = fanogan_feat(c);
    float *da = f->d_a[0], *dprev = f->d_a[1];
    zero(da, (size_t)B * F);
    if (dout)
        linear_backward(da, G(f, pg, "%s.output.weight", d->name), G(f, pg, "%s.output.bias", d->name), dout, d->a[n],
                        P(f, "%s.output.weight", d->name), B, F, d->out_dim);
    if (dfeat)
        for (size_t k = 0; k < (size_t)B * F; k++) da[k] += dfeat[k];
    for (int i = n - 1; i >= 0; i--) {
        const int ci = fanogan_ch(c, i), co = fanogan_ch(c, i + 1), S = img >> i, S2 = S / 2;
        const size_t hw = (size_t)S * S, nin = (size_t)B * ci * hw;
        zero(dprev, nin);
        zero(f->d_pa, nin / 4);
        conv2d_backward(f->d_pa, G(f, pg, "%s.blocks.%d.shortcut.weight", d->name, i),
                        G(f, pg, "%s.blocks.%d.shortcut.bias", d->name, i), f->cols, da, d->pa[i],
                        P(f, "%s.blocks.%d.shortcut.weight", d->name, i), B, ci, S2, S2, co, 1, 1, 0);
        mean_pool2_backward(dprev, f->d_pa, B * ci, S, S);
        zero(f->d_c2, (size_t)B * co * hw);
        mean_pool2_backward(f->d_c2, da, B * co, S, S);
        zero(f->d_h2, nin);
        conv2d_backward(f->d_h2, G(f, pg, "%s.blocks.%d.conv2.weight", d->name, i),
                        G(f, pg, "%s.blocks.%d.conv2.bias", d->name, i), f->cols, f->d_c2, d->h2[i],
                        P(f, "%s.blocks.%d.conv2.weight", d->name, i), B, ci, S, S, co, 3, 1, 1);
        relu_mask(f->d_h2, d->h2[i], nin);
        zero(f->d_c1, nin);
        down_norm_backward(f, d, f->d_c1, f->d_h2, d->c1[i], d->m2[i], d->r2[i], i, 2, B, ci, hw, pg, training);
        zero(f->d_h1, nin);
        conv2d_backward(f->d_h1, G(f, pg, "%s.blocks.%d.conv1.weight", d->name, i), NULL, f->cols, f->d_c1, d->h1[i],
                        P(f, "%s.blocks.%d.conv1.weight", d->name, i), B, ci, S, S, ci, 3, 1, 1);
        relu_mask(f->d_h1, d->h1[i], nin);
        down_norm_backward(f, d, dprev, f->d_h1, d->a[i], d->m1[i], d->r1[i], i, 1, B, ci, hw, pg, training);
        float *t = da;
        da = dprev;
        dprev = t;
    }
    conv2d_backward(dx, G(f, pg, "%s.input.weight", d->name), G(f, pg, "%s.input.bias", d->name), f->cols, da, x,
                    P(f, "%s.input.weight", d->name), B, c->in_chans, img, img, fanogan_ch(c, 0), 3, 1, 1);
}

// The reverse of the critic's forward + tangent (along xt at x) for the objective sum_b of the
// tangent's output, i.e. <dD/dx, xt>: critic grads += d/dθ. Each linear layer passes both streams
// through its ordinary backward (the weight sees both, a bias only the primal); LayerNorm's dual
// backward carries the second-order terms into the primal stream.
static void critic_dual_backward(fanogan *f, const float *x, const float *xt, int B) {
    const fanogan_config *c = &f->cfg;
    fg_down *d = &f->critic;
    const int n = f->n, img = c->img_size, F = fanogan_feat(c);
    float *da = f->d_a[0], *dprev = f->d_a[1], *dat = f->d_at[0], *datp = f->d_at[1];
    // Output D = w·f + b, tangent w·ḟ: ḟ's adjoint is w, f's is 0, and dw += sum_b ḟ_b.
    zero(da, (size_t)B * F);
    zero(dat, (size_t)B * F);
    linear_backward(dat, G(f, 1, "critic.output.weight"), NULL, f->ones, d->at[n], P(f, "critic.output.weight"), B, F,
                    1);
    for (int i = n - 1; i >= 0; i--) {
        const int ci = fanogan_ch(c, i), co = fanogan_ch(c, i + 1), S = img >> i, S2 = S / 2;
        const size_t hw = (size_t)S * S, nin = (size_t)B * ci * hw;
        float *sw = P(f, "critic.blocks.%d.shortcut.weight", i), *dsw = G(f, 1, "critic.blocks.%d.shortcut.weight", i);
        float *w1 = P(f, "critic.blocks.%d.conv1.weight", i), *dw1 = G(f, 1, "critic.blocks.%d.conv1.weight", i);
        float *w2 = P(f, "critic.blocks.%d.conv2.weight", i), *dw2 = G(f, 1, "critic.blocks.%d.conv2.weight", i);
        zero(dprev, nin);
        zero(datp, nin);
        zero(f->d_pa, nin / 4);
        zero(f->d_pat, nin / 4);
        conv2d_backward(f->d_pa, dsw, G(f, 1, "critic.blocks.%d.shortcut.bias", i), f->cols, da, d->pa[i], sw, B, ci,
                        S2, S2, co, 1, 1, 0);
        conv2d_backward(f->d_pat, dsw, NULL, f->cols, dat, d->pat[i], sw, B, ci, S2, S2, co, 1, 1, 0);
        mean_pool2_backward(dprev, f->d_pa, B * ci, S, S);
        mean_pool2_backward(datp, f->d_pat, B * ci, S, S);
        zero(f->d_c2, (size_t)B * co * hw);
        zero(f->d_ct2, (size_t)B * co * hw);
        mean_pool2_backward(f->d_c2, da, B * co, S, S);
        mean_pool2_backward(f->d_ct2, dat, B * co, S, S);
        zero(f->d_h2, nin);
        zero(f->d_ht2, nin);
        conv2d_backward(f->d_h2, dw2, G(f, 1, "critic.blocks.%d.conv2.bias", i), f->cols, f->d_c2, d->h2[i], w2, B, ci,
                        S, S, co, 3, 1, 1);
        conv2d_backward(f->d_ht2, dw2, NULL, f->cols, f->d_ct2, d->ht2[i], w2, B, ci, S, S, co, 3, 1, 1);
        relu_mask(f->d_h2, d->h2[i], nin);
        relu_mask(f->d_ht2, d->h2[i], nin);
        zero(f->d_c1, nin);
        zero(f->d_ct1, nin);
        layernorm2d_dual_backward(f->d_c1, f->d_ct1, G(f, 1, "critic.blocks.%d.norm2.weight", i),
                                  G(f, 1, "critic.blocks.%d.norm2.bias", i), f->d_h2, f->d_ht2, d->c1[i], d->ct1[i],
                                  d->m2[i], d->r2[i], P(f, "critic.blocks.%d.norm2.weight", i), B, ci, hw);
        zero(f->d_h1, nin);
        zero(f->d_ht1, nin);
        conv2d_backward(f->d_h1, dw1, NULL, f->cols, f->d_c1, d->h1[i], w1, B, ci, S, S, ci, 3, 1, 1);
        conv2d_backward(f->d_ht1, dw1, NULL, f->cols, f->d_ct1, d->ht1[i], w1, B, ci, S, S, ci, 3, 1, 1);
        relu_mask(f->d_h1, d->h1[i], nin);
        relu_mask(f->d_ht1, d->h1[i], nin);
        layernorm2d_dual_backward(dprev, datp, G(f, 1, "critic.blocks.%d.norm1.weight", i),
                                  G(f, 1, "critic.blocks.%d.norm1.bias", i), f->d_h1, f->d_ht1, d->a[i], d->at[i],
                                  d->m1[i], d->r1[i], P(f, "critic.blocks.%d.norm1.weight", i), B, ci, hw);
        float *t = da;
        da = dprev;
        dprev = t;
        t = dat;
        dat = datp;
        datp = t;
    }
    float *win = P(f, "critic.input.weight"), *dwin = G(f, 1, "critic.input.weight");
    conv2d_backward(NULL, dwin, G(f, 1, "critic.input.bias"), f->cols, da, x, win, B, c->in_chans, img, img,
                    fanogan_ch(c, 0), 3, 1, 1);
    conv2d_backward(NULL, dwin, NULL, f->cols, dat, xt, win, B, c->in_chans, img, img, fanogan_ch(c, 0), 3, 1, 1);
}

// ---- generator ----------------------------------------------------------------------------------------

static void gen_bn_forward(fanogan *f, float *out, float *mean, float *rstd, const float *inp, const char *prefix,
                           int B, int C, size_t hw, int training) {
    batchnorm2d_forward(out, mean, rstd, inp, P(f, "%s.weight", prefix), P(f, "%s.bias", prefix),
                        P(f, "%s.running_mean", prefix), P(f, "%s.running_var", prefix), B, C, hw, BN_MOMENTUM,
                        training);
    leaky_relu_forward(out, out, (size_t)B * C * hw, 0.0f);
}

static void gen_forward(fanogan *f, const float *z, int B, int training) {
    const fanogan_config *c = &f->cfg;
    fg_up *g = &f->gen;
    const int n = f->n, img = c->img_size;
    char pre[PARAM_NAME_MAX];
    g->z = z;
    linear_forward(g->a[0], z, P(f, "generator.input.weight"), P(f, "generator.input.bias"), B, c->z_dim,
                   fanogan_feat(c));
    for (int j = 0; j < n; j++) {
        const int ci = fanogan_ch(c, n - j), co = fanogan_ch(c, n - j - 1), s = 4 << j, S = 2 * s;
        snprintf(pre, sizeof pre, "generator.blocks.%d.norm1", j);
        gen_bn_forward(f, g->h1[j], g->m1[j], g->r1[j], g->a[j], pre, B, ci, (size_t)s * s, training);
        upsample2_forward(g->u1[j], g->h1[j], B * ci, s, s);
        conv2d_forward(g->c1[j], f->cols, g->u1[j], P(f, "generator.blocks.%d.conv1.weight", j), NULL, B, ci, S, S, co,
                       3, 1, 1);
        snprintf(pre, sizeof pre, "generator.blocks.%d.norm2", j);
        gen_bn_forward(f, g->h2[j], g->m2[j], g->r2[j], g->c1[j], pre, B, co, (size_t)S * S, training);
        conv2d_forward(g->a[j + 1], f->cols, g->h2[j], P(f, "generator.blocks.%d.conv2.weight", j),
                       P(f, "generator.blocks.%d.conv2.bias", j), B, co, S, S, co, 3, 1, 1);
        // Shortcut Conv1x1(Upsample(a)) computed as Upsample(Conv1x1(a)): the same numbers (both are
        // per pixel), on a quarter of the pixels.
        conv2d_forward(f->tmp, f->cols, g->a[j], P(f, "generator.blocks.%d.shortcut.weight", j),
                       P(f, "generator.blocks.%d.shortcut.bias", j), B, ci, s, s, co, 1, 1, 0);
        for (int p = 0; p < B * co; p++) {
            float *o = g->a[j + 1] + (size_t)p * S * S;
            const float *t = f->tmp + (size_t)p * s * s;
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++) o[y * S + x] += t[(y / 2) * s + x / 2];
        }
    }
    gen_bn_forward(f, g->hb, g->mb, g->rb, g->a[n], "generator.out_norm", B, fanogan_ch(c, 0), (size_t)img * img,
                   training);
    conv2d_forward(g->out, f->cols, g->hb, P(f, "generator.output.weight"), P(f, "generator.output.bias"), B,
                   fanogan_ch(c, 0), img, img, c->in_chans, 3, 1, 1);
    tanh_forward(g->out, g->out, (size_t)B * c->in_chans * img * img);
}

static void gen_bn_backward(fanogan *f, float *dinp, float *dout, const float *out, const float *inp,
                            const float *mean, const float *rstd, const char *prefix, int B, int C, size_t hw, int pg,
                            int training) {
    relu_mask(dout, out, (size_t)B * C * hw);
    float *dw = G(f, pg, "%s.weight", prefix), *db = G(f, pg, "%s.bias", prefix);
    batchnorm2d_backward(dinp, dw ? dw : f->junk, db ? db : f->junk, dout, inp, mean, rstd, P(f, "%s.weight", prefix),
                         B, C, hw, training);
}

// Backward of the last gen_forward from dout (B, in_chans, H, W), the gradient at the tanh output:
// generator grads += when pg; dz (B, z_dim) += when non-NULL.
static void gen_backward(fanogan *f, const float *dout, float *dz, int B, int pg, int training) {
    const fanogan_config *c = &f->cfg;
    fg_up *g = &f->gen;
    const int n = f->n, img = c->img_size, ch0 = fanogan_ch(c, 0);
    const size_t npx = (size_t)B * c->in_chans * img * img;
    char pre[PARAM_NAME_MAX];
    zero(f->d_c2, npx);
    tanh_backward(f->d_c2, dout, g->out, npx);
    zero(f->d_h1, (size_t)B * ch0 * img * img);
    conv2d_backward(f->d_h1, G(f, pg, "generator.output.weight"), G(f, pg, "generator.output.bias"), f->cols, f->d_c2,
                    g->hb, P(f, "generator.output.weight"), B, ch0, img, img, c->in_chans, 3, 1, 1);
    float *da = f->d_a[0], *dprev = f->d_a[1];
    zero(da, (size_t)B * ch0 * img * img);
    gen_bn_backward(f, da, f->d_h1, g->hb, g->a[n], g->mb, g->rb, "generator.out_norm", B, ch0, (size_t)img * img, pg,
                    training);
    for (int j = n - 1; j >= 0; j--) {
        const int ci = fanogan_ch(c, n - j), co = fanogan_ch(c, n - j - 1), s = 4 << j, S = 2 * s;
        const size_t big = (size_t)B * co * S * S;
        zero(dprev, (size_t)B * ci * s * s);
        zero(f->d_pa, (size_t)B * co * s * s);
        upsample2_backward(f->d_pa, da, B * co, s, s);
        conv2d_backward(dprev, G(f, pg, "generator.blocks.%d.shortcut.weight", j),
                        G(f, pg, "generator.blocks.%d.shortcut.bias", j), f->cols, f->d_pa, g->a[j],
                        P(f, "generator.blocks.%d.shortcut.weight", j), B, ci, s, s, co, 1, 1, 0);
        zero(f->d_h2, big);
        conv2d_backward(f->d_h2, G(f, pg, "generator.blocks.%d.conv2.weight", j),
                        G(f, pg, "generator.blocks.%d.conv2.bias", j), f->cols, da, g->h2[j],
                        P(f, "generator.blocks.%d.conv2.weight", j), B, co, S, S, co, 3, 1, 1);
        zero(f->d_c1, big);
        snprintf(pre, sizeof pre, "generator.blocks.%d.norm2", j);
        gen_bn_backward(f, f->d_c1, f->d_h2, g->h2[j], g->c1[j], g->m2[j], g->r2[j], pre, B, co, (size_t)S * S, pg,
                        training);
        zero(f->d_u1, (size_t)B * ci * S * S);
        conv2d_backward(f->d_u1, G(f, pg, "generator.blocks.%d.conv1.weight", j), NULL, f->cols, f->d_c1, g->u1[j],
                        P(f, "generator.blocks.%d.conv1.weight", j), B, ci, S, S, co, 3, 1, 1);
        zero(f->d_h1, (size_t)B * ci * s * s);
        upsample2_backward(f->d_h1, f->d_u1, B * ci, s, s);
        snprintf(pre, sizeof pre, "generator.blocks.%d.norm1", j);
        gen_bn_backward(f, dprev, f->d_h1, g->h1[j], g->a[j], g->m1[j], g->r1[j], pre, B, ci, (size_t)s * s, pg,
                        training);
        float *t = da;
        da = dprev;
        dprev = t;
    }
    linear_backward(dz, G(f, pg, "generator.input.weight"), G(f, pg, "generator.input.bias"), da, g->z,
                    P(f, "generator.input.weight"), B, c->z_dim, fanogan_feat(c));
}

// ---- training steps and reconstruction ------------------------------------------------------------

static double mean_of(const float *x, int B) {
    double s = 0.0;
    for (int b = 0; b < B; b++) s += x[b];
    return s / B;
}

static void fill(float *x, float v, int B) {
    for (int b = 0; b < B; b++) x[b] = v;
}

float fanogan_critic_step(fanogan *f, const float *real, const float *z, const float *alpha, int B) {
    const fanogan_config *c = &f->cfg;
    const size_t px = (size_t)c->in_chans * c->img_size * c->img_size, npx = (size_t)B * px;
    gen_forward(f, z, B, 1);
    const float *fake = f->gen.out;
    // Wasserstein term: mean D(fake) - mean D(real), one pass per half (the critic has no batch
    // coupling, so this is the same as one pass over both).
    down_forward(f, &f->critic, real, B, 1);
    f->d_real = (float)mean_of(f->critic.out, B);
    fill(f->d_out, -1.0f / B, B);
    down_backward(f, &f->critic, f->d_out, NULL, real, NULL, B, 1, 1);
    down_forward(f, &f->critic, fake, B, 1);
    f->d_fake = (float)mean_of(f->critic.out, B);
    fill(f->d_out, 1.0f / B, B);
    down_backward(f, &f->critic, f->d_out, NULL, fake, NULL, B, 1, 1);
    // Gradient penalty at x_hat = real + alpha (fake - real): g = d sum_b D(x_hat_b) / d x_hat (a
    // plain backward), P = lambda mean_b (||g_b|| - 1)^2, eps = dP/dg; then dP/dθ = d<g, eps>/dθ
    // by the reverse of the forward + tangent along eps.
    for (int b = 0; b < B; b++)
        for (size_t k = 0; k < px; k++) {
            const size_t i = (size_t)b * px + k;
            f->x_hat[i] = real[i] + alpha[b] * (fake[i] - real[i]);
        }
    down_forward(f, &f->critic, f->x_hat, B, 1);
    zero(f->g_in, npx);
    down_backward(f, &f->critic, f->ones, NULL, f->x_hat, f->g_in, B, 0, 1);
    f->gp = gradient_penalty_forward(f->eps, f->g_in, B, px, c->gp_lambda);
    critic_tangent(f, f->eps, B);
    critic_dual_backward(f, f->x_hat, f->eps, B);
    return f->d_fake - f->d_real + f->gp;
}

float fanogan_generator_step(fanogan *f, const float *z, int B) {
    const fanogan_config *c = &f->cfg;
    const size_t npx = (size_t)B * c->in_chans * c->img_size * c->img_size;
    gen_forward(f, z, B, 1);
    down_forward(f, &f->critic, f->gen.out, B, 1);
    f->d_fake = (float)mean_of(f->critic.out, B);
    fill(f->d_out, -1.0f / B, B);
    zero(f->d_img, npx);
    down_backward(f, &f->critic, f->d_out, NULL, f->gen.out, f->d_img, B, 0, 1);
    gen_backward(f, f->d_img, NULL, B, 1, 1);
    return -f->d_fake;
}

// E(x) (training: batch statistics) -> G (running statistics) -> critic features of x and of
// G(E(x)); sets rec_img and rec_feat, fills feat_err (B) when given.
static float izi_forward(fanogan *f, const float *x, int B, int training, float *feat_err) {
    const fanogan_config *c = &f->cfg;
    const size_t npx = (size_t)B * c->in_chans * c->img_size * c->img_size, F = (size_t)fanogan_feat(c);
    down_forward(f, &f->encoder, x, B, training);
    gen_forward(f, f->encoder.out, B, 0);
    down_forward(f, &f->critic, x, B, 0);
    memcpy(f->feat_x, f->critic.a[f->n], sizeof(float) * B * F);
    down_forward(f, &f->critic, f->gen.out, B, 0);
    const float *feat = f->critic.a[f->n];
    f->rec_img = mse_loss_forward(f->gen.out, x, npx, 1.0f / (float)npx);
    f->rec_feat = mse_loss_forward(feat, f->feat_x, (size_t)B * F, 1.0f / (float)(B * F));
    if (feat_err)
        for (int b = 0; b < B; b++)
            feat_err[b] = mse_loss_forward(feat + b * F, f->feat_x + b * F, F, 1.0f / (float)F);
    return f->rec_img + c->kappa * f->rec_feat;
}

float fanogan_encoder_step(fanogan *f, const float *x, int B) {
    const fanogan_config *c = &f->cfg;
    const size_t npx = (size_t)B * c->in_chans * c->img_size * c->img_size, F = (size_t)fanogan_feat(c);
    const float loss = izi_forward(f, x, B, 1, NULL);
    zero(f->d_img, npx);
    mse_loss_backward(f->d_img, f->gen.out, x, npx, 1.0f / (float)npx);
    zero(f->d_feat, (size_t)B * F);
    mse_loss_backward(f->d_feat, f->critic.a[f->n], f->feat_x, (size_t)B * F, c->kappa / (float)(B * F));
    down_backward(f, &f->critic, NULL, f->d_feat, f->gen.out, f->d_img, B, 0, 0);
    zero(f->d_z, (size_t)B * c->z_dim);
    gen_backward(f, f->d_img, f->d_z, B, 0, 0);
    down_backward(f, &f->encoder, f->d_z, NULL, x, NULL, B, 1, 1);
    return loss;
}

float fanogan_reconstruct(fanogan *f, float *out, const float *x, int B, float *feat_err) {
    const fanogan_config *c = &f->cfg;
    const float loss = izi_forward(f, x, B, 0, feat_err);
    if (out) memcpy(out, f->gen.out, sizeof(float) * B * c->in_chans * c->img_size * c->img_size);
    return loss;
}

void fanogan_image_score(fanogan *f, float *score, const float *x, int B) {
    const fanogan_config *c = &f->cfg;
    const size_t npx = (size_t)c->in_chans * c->img_size * c->img_size;
    izi_forward(f, x, B, 0, score);  // score[b] = the feature term first
    for (int b = 0; b < B; b++)
        score[b] = mse_loss_forward(f->gen.out + b * npx, x + b * npx, npx, 1.0f / (float)npx) + c->kappa * score[b];
}
