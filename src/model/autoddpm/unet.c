// The autoDDPM U-Net: tape, parameter table, buffers, forward and backward (see unet.h).
#include "model/autoddpm/unet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/param_layers.h"  // param_add_conv, param_add_dense, param_add_affine
#include "nn/nn.h"
#include "util/carve.h"  // carve, carve_take
#include "util/error.h"  // as_fail, as_calloc

#define GN_EPS 1e-6f  // DiffusionModelUNet's norm_eps
#define NAME_BUF (PARAM_NAME_MAX + 32)

enum { S_CONV_IN, S_RES, S_ATTN, S_DOWN, S_UP, S_CAT, S_OUT };

static int temb_dim(const ddpm_config *c) { return 4 * c->ch[0]; }

// ---- parameter table (the authors' DDPM state_dict, in its order) ------------------------------

// a + b into out (n bytes), cut to fit: names here are built from short fixed parts, and the
// table rejects a name longer than PARAM_NAME_MAX anyway.
static void cat2(char *out, size_t n, const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > n - 1) la = n - 1;
    if (lb > n - 1 - la) lb = n - 1 - la;
    memcpy(out, a, la);
    memcpy(out + la, b, lb);
    out[la + lb] = 0;
}


// MONAI's Convolution(conv_only=True) wraps the nn.Conv2d as ".conv"; zero: zero_module (the
// second conv of every res block and the output conv start at 0, so a fresh U-Net predicts 0).
static void add_conv(param_table *t, const char *prefix, int in, int out, int k, int zero) {
    char p[NAME_BUF];
    cat2(p, sizeof p, prefix, ".conv");
    param_add_conv(t, p, in, out, k, 0, 1);
    if (zero) t->entries[t->n - 1].init = t->entries[t->n - 2].init = INIT_ZERO;
}

static void add_res(param_table *t, const char *prefix, int cin, int cout, int E) {
    char p[NAME_BUF];
    cat2(p, sizeof p, prefix, ".norm1");
    param_add_affine(t, p, cin);
    cat2(p, sizeof p, prefix, ".conv1");
    add_conv(t, p, cin, cout, 3, 0);
    cat2(p, sizeof p, prefix, ".time_emb_proj");
    param_add_dense(t, p, E, cout);
    cat2(p, sizeof p, prefix, ".norm2");
    param_add_affine(t, p, cout);
    cat2(p, sizeof p, prefix, ".conv2");
    add_conv(t, p, cout, cout, 3, 1);
    if (cin != cout) {
        cat2(p, sizeof p, prefix, ".skip_connection");
        add_conv(t, p, cin, cout, 1, 0);
    }
}

static void add_attn(param_table *t, const char *prefix, int C) {
    char p[NAME_BUF];
    static const char *lin[4] = {".to_q", ".to_k", ".to_v", ".proj_attn"};
    cat2(p, sizeof p, prefix, ".norm");
    param_add_affine(t, p, C);
    for (int i = 0; i < 4; i++) {
        cat2(p, sizeof p, prefix, lin[i]);
        param_add_dense(t, p, C, C);
    }
}

int unet_table_build(param_table *t, const ddpm_config *c) {
    memset(t, 0, sizeof *t);
    if (ddpm_config_check(c)) return -1;
    const int L = c->levels, R = c->res_blocks, E = temb_dim(c);
    char p[NAME_BUF];
    add_conv(t, "unet.conv_in", c->in_chans, c->ch[0], 3, 0);
    param_add_dense(t, "unet.time_embed.0", c->ch[0], E);
    param_add_dense(t, "unet.time_embed.2", E, E);
    for (int i = 0; i < L; i++) {
        // AttnDownBlock registers its attentions before its resnets.
        for (int j = 0; j < R && c->attn[i]; j++) {
            snprintf(p, sizeof p, "unet.down_blocks.%d.attentions.%d", i, j);
            add_attn(t, p, c->ch[i]);
        }
        for (int j = 0; j < R; j++) {
            snprintf(p, sizeof p, "unet.down_blocks.%d.resnets.%d", i, j);
            add_res(t, p, j ? c->ch[i] : c->ch[i ? i - 1 : 0], c->ch[i], E);
        }
        if (i < L - 1) {
            snprintf(p, sizeof p, "unet.down_blocks.%d.downsampler.op", i);
            add_conv(t, p, c->ch[i], c->ch[i], 3, 0);
        }
    }
    const int top = c->ch[L - 1];
    add_res(t, "unet.middle_block.resnet_1", top, top, E);
    add_attn(t, "unet.middle_block.attention", top);
    add_res(t, "unet.middle_block.resnet_2", top, top, E);
    int prev = top;
    for (int i = 0; i < L; i++) {
        const int r = L - 1 - i, out = c->ch[r], low = c->ch[r ? r - 1 : 0];
        for (int j = 0; j <= R; j++) {
            snprintf(p, sizeof p, "unet.up_blocks.%d.resnets.%d", i, j);
            add_res(t, p, (j ? out : prev) + (j == R ? low : out), out, E);
        }
        for (int j = 0; j <= R && c->attn[r]; j++) {
            snprintf(p, sizeof p, "unet.up_blocks.%d.attentions.%d", i, j);
            add_attn(t, p, out);
        }
        if (i < L - 1) {
            snprintf(p, sizeof p, "unet.up_blocks.%d.upsampler.conv", i);
            add_conv(t, p, out, out, 3, 0);
        }
        prev = out;
    }
    param_add_affine(t, "unet.out.0", c->ch[0]);
    add_conv(t, "unet.out.2", c->ch[0], c->in_chans, 3, 1);
    return 0;
}

// ---- the tape ------------------------------------------------------------------------------------

typedef struct tape {
    unet_step *steps;
    unet_act *acts;
    int n_steps, n_acts;
} tape;

static int new_act(tape *tp, int C, int side) {
    tp->acts[tp->n_acts] = (unet_act){NULL, NULL, C, side};
    return tp->n_acts++;
}

static int add_step(tape *tp, int kind, const char *name, int in, int in2, int cout, int side_out) {
    unet_step *s = &tp->steps[tp->n_steps++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    snprintf(s->name, sizeof s->name, "%s", name);
    s->in = in;
    s->in2 = in2;
    s->cin = tp->acts[in].C + (in2 >= 0 ? tp->acts[in2].C : 0);
    s->side = tp->acts[in].side;
    s->cout = cout;
    s->out = new_act(tp, cout, side_out);
    return s->out;
}

// Steps and activations in forward order (max_steps bounds their number).
static void build_tape(tape *tp, const ddpm_config *c) {
    const int L = c->levels, R = c->res_blocks, S = c->img_size;
    char p[PARAM_NAME_MAX];
    int stack[64], ns = 0;
    new_act(tp, c->in_chans, S);
    int h = add_step(tp, S_CONV_IN, "unet.conv_in.conv", 0, -1, c->ch[0], S);
    stack[ns++] = h;
    int side = S;
    for (int i = 0; i < L; i++) {
        for (int j = 0; j < R; j++) {
            snprintf(p, sizeof p, "unet.down_blocks.%d.resnets.%d", i, j);
            h = add_step(tp, S_RES, p, h, -1, c->ch[i], side);
            if (c->attn[i]) {
                snprintf(p, sizeof p, "unet.down_blocks.%d.attentions.%d", i, j);
                h = add_step(tp, S_ATTN, p, h, -1, c->ch[i], side);
            }
            stack[ns++] = h;
        }
        if (i < L - 1) {
            snprintf(p, sizeof p, "unet.down_blocks.%d.downsampler.op.conv", i);
            side /= 2;
            h = add_step(tp, S_DOWN, p, h, -1, c->ch[i], side);
            stack[ns++] = h;
        }
    }
    const int top = c->ch[L - 1];
    h = add_step(tp, S_RES, "unet.middle_block.resnet_1", h, -1, top, side);
    h = add_step(tp, S_ATTN, "unet.middle_block.attention", h, -1, top, side);
    h = add_step(tp, S_RES, "unet.middle_block.resnet_2", h, -1, top, side);
    for (int i = 0; i < L; i++) {
        const int r = L - 1 - i, out = c->ch[r];
        for (int j = 0; j <= R; j++) {
            const int skip = stack[--ns];
            h = add_step(tp, S_CAT, "", h, skip, tp->acts[h].C + tp->acts[skip].C, side);
            snprintf(p, sizeof p, "unet.up_blocks.%d.resnets.%d", i, j);
            h = add_step(tp, S_RES, p, h, -1, out, side);
            if (c->attn[r]) {
                snprintf(p, sizeof p, "unet.up_blocks.%d.attentions.%d", i, j);
                h = add_step(tp, S_ATTN, p, h, -1, out, side);
            }
        }
        if (i < L - 1) {
            snprintf(p, sizeof p, "unet.up_blocks.%d.upsampler.conv.conv", i);
            h = add_step(tp, S_UP, p, h, -1, out, side * 2);
            side *= 2;
        }
    }
    add_step(tp, S_OUT, "unet.out", h, -1, c->in_chans, side);
}

static int max_steps(const ddpm_config *c) { return 8 + 6 * c->levels * (c->res_blocks + 2) * 2; }

// ---- buffers ------------------------------------------------------------------------------------

static float *take(carve *a, size_t n) { return carve_take(a, n); }  // short name, many call sites

static size_t smax(size_t a, size_t b) { return a > b ? a : b; }

// Training keeps an attention's softmax for the backward up to this many tokens (4 MB per image
// and head); at 64 px (4096 tokens) it would be 64 MB per image and head, and the paper config's
// peak RSS passed PyTorch's (batch 2: 2299 against 2220 MiB), so there the backward recomputes it.
#define KEEP_PROBS_TOKENS 1024

static void layout(unet *u, carve *a) {
    const ddpm_config *c = &u->cfg;
    const size_t B = (size_t)u->max_batch, E = (size_t)temb_dim(c), G = (size_t)c->groups;
    const int tr = u->training;
    for (int i = 0; i < u->n_acts; i++) {
        unet_act *ac = &u->acts[i];
        const size_t n = B * ac->C * ac->side * ac->side;
        ac->x = i ? take(a, n) : NULL;  // the input is the caller's
        ac->d = tr && i ? take(a, n) : NULL;
    }
    size_t work = 0, cols = 0, tok = 0, att = 0, maxc = 0;
    for (int k = 0; k < u->n_steps; k++) {
        unet_step *s = &u->steps[k];
        const size_t P = (size_t)s->side * s->side, nin = B * s->cin * P, nout = B * s->cout * P;
        work = smax(work, smax(nin, nout));
        maxc = smax(maxc, (size_t)s->cout);
        switch (s->kind) {
        case S_RES:
            s->n1 = take(a, nin);
            s->c1 = take(a, nout);
            s->n2 = take(a, nout);
            s->a1 = tr ? take(a, nin) : NULL;
            s->a2 = tr ? take(a, nout) : NULL;
            s->m1 = take(a, B * G);
            s->r1 = take(a, B * G);
            s->m2 = take(a, B * G);
            s->r2 = take(a, B * G);
            s->temb = take(a, B * s->cout);
            cols = smax(cols, conv2d_scratch_floats((int)B, s->cin, s->cout, 3, s->side, s->side));
            cols = smax(cols, conv2d_scratch_floats((int)B, s->cout, s->cout, 3, s->side, s->side));
            break;
        case S_ATTN:
            s->n1 = take(a, nin);
            s->m1 = take(a, B * G);
            s->r1 = take(a, B * G);
            s->qkv = take(a, 3 * nin);
            s->probs = tr && P <= KEEP_PROBS_TOKENS ? take(a, B * (size_t)ddpm_heads(c, s->cin) * P * P) : NULL;
            work = smax(work, 3 * nin);
            tok = smax(tok, nin);
            att = smax(att, full_attention_scratch_floats((int)P));
            maxc = smax(maxc, 3 * (size_t)s->cin);
            break;
        case S_CONV_IN:
            cols = smax(cols, conv2d_scratch_floats((int)B, s->cin, s->cout, 3, s->side, s->side));
            break;
        case S_DOWN:
            cols = smax(cols, conv2d_scratch_floats((int)B, s->cin, s->cout, 3, s->side / 2, s->side / 2));
            break;
        case S_UP:
            s->up = take(a, 4 * nin);
            work = smax(work, 4 * nin);
            cols = smax(cols, conv2d_scratch_floats((int)B, s->cin, s->cout, 3, 2 * s->side, 2 * s->side));
            break;
        case S_OUT:
            s->n1 = take(a, nin);
            s->a1 = tr ? take(a, nin) : NULL;
            s->m1 = take(a, B * G);
            s->r1 = take(a, B * G);
            cols = smax(cols, conv2d_scratch_floats((int)B, s->cin, s->cout, 3, s->side, s->side));
            break;
        default:
            break;
        }
    }
    u->t_sin = take(a, B * c->ch[0]);
    u->t_e1 = take(a, B * E);
    u->t_s1 = take(a, B * E);
    u->t_emb = take(a, B * E);
    u->t_semb = take(a, B * E);
    if (tr) {
        u->d_semb = take(a, B * E);
        u->d_emb = take(a, B * E);
        u->d_s1 = take(a, B * E);
    }
    u->cols = take(a, cols);
    u->w1 = take(a, work);
    u->w2 = take(a, work);
    u->tok = take(a, smax(tok, B * maxc));  // also the per-channel time gradient (B, cout)
    u->wqkv = take(a, 3 * maxc * maxc);
    u->bqkv = take(a, 3 * maxc);
    if (tr) {
        u->dwqkv = take(a, 3 * maxc * maxc);
        u->dbqkv = take(a, 3 * maxc);
    }
    u->att_scratch = take(a, att);
    // A third work buffer: a res block's backward holds three activation-sized maps at once.
    u->w3 = take(a, work);
}

int unet_create(unet *u, const ddpm_config *c, int max_batch, int training) {
    memset(u, 0, sizeof *u);
    if (max_batch < 1) return as_fail("autoddpm: max_batch %d must be positive", max_batch);
    if (unet_table_build(&u->table, c)) return -1;
    u->cfg = *c;
    u->max_batch = max_batch;
    u->training = training;
    const int ms = max_steps(c);
    u->steps = as_calloc((size_t)ms, sizeof(unet_step));
    u->acts = as_calloc((size_t)ms + 1, sizeof(unet_act));
    tape tp = {u->steps, u->acts, 0, 0};
    build_tape(&tp, c);
    u->n_steps = tp.n_steps;
    u->n_acts = tp.n_acts;
    u->params = as_calloc(u->table.n_floats, sizeof(float));
    if (training) u->grads = as_calloc(u->table.n_floats, sizeof(float));
    carve a = {NULL, 0};
    layout(u, &a);
    const size_t n = a.used;
    float *arena = as_calloc(n, sizeof(float));
    a = (carve){arena, 0};
    layout(u, &a);
    u->arena = arena;
    return 0;
}

void unet_free(unet *u) {
    param_table_free(&u->table);
    free(u->params);
    free(u->grads);
    free(u->arena);
    free(u->steps);
    free(u->acts);
    memset(u, 0, sizeof *u);
}

// ---- forward / backward ---------------------------------------------------------------------------

static float *P_(unet *u, const char *prefix, const char *suffix) {
    char name[NAME_BUF];
    cat2(name, sizeof name, prefix, suffix);
    return param_ptr(&u->table, u->params, name);
}

static float *G_(unet *u, const char *prefix, const char *suffix) {
    char name[NAME_BUF];
    cat2(name, sizeof name, prefix, suffix);
    return param_ptr(&u->table, u->grads, name);
}

static void add_into(float *y, const float *x, size_t n) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

// The attention's three Linears as one (3C, C) weight: q, k, v side by side in the qkv rows.
static void pack_qkv(unet *u, const char *pre, int C) {
    static const char *lin[3] = {".to_q.weight", ".to_k.weight", ".to_v.weight"};
    static const char *bias[3] = {".to_q.bias", ".to_k.bias", ".to_v.bias"};
    for (int i = 0; i < 3; i++) {
        memcpy(u->wqkv + (size_t)i * C * C, P_(u, pre, lin[i]), sizeof(float) * C * C);
        memcpy(u->bqkv + (size_t)i * C, P_(u, pre, bias[i]), sizeof(float) * C);
    }
}

// Detection promises that a slice's map does not depend on how many slices share a forward (each
// has its own noise stream). sgemm does not promise that: OpenBLAS's Haswell/Zen kernels sum an
// output column or row in another order when it falls in a product's last, partial tile, so the
// same image gives results 1 ulp apart at different batch sizes. Inference therefore multiplies
// one image at a time (the same shapes whatever the batch); training keeps the batched products,
// whose columns are what makes the low-resolution layers fast.
static void conv_fwd(const unet *u, float *out, const float *inp, const float *weight, const float *bias, int B, int IC,
                     int H, int W, int OC, int k, int stride, int pad) {
    if (u->training) {
        conv2d_forward(out, u->cols, inp, weight, bias, B, IC, H, W, OC, k, stride, pad);
        return;
    }
    const size_t in_n = (size_t)IC * H * W,
                 out_n = (size_t)OC * conv_out_size(H, k, stride, pad) * conv_out_size(W, k, stride, pad);
    for (int b = 0; b < B; b++)
        conv2d_forward(out + b * out_n, u->cols, inp + b * in_n, weight, bias, 1, IC, H, W, OC, k, stride, pad);
}

// linear_forward of B images of `rows` rows each, one image at a time in inference (as conv_fwd).
static void linear_fwd(const unet *u, float *out, const float *inp, const float *weight, const float *bias, int B,
                       int rows, int IC, int OC) {
    if (u->training) {
        linear_forward(out, inp, weight, bias, B * rows, IC, OC);
        return;
    }
    for (int b = 0; b < B; b++)
        linear_forward(out + (size_t)b * rows * OC, inp + (size_t)b * rows * IC, weight, bias, rows, IC, OC);
}

static void res_forward(unet *u, const unet_step *s, const float *x, float *out, int B) {
    const int G = u->cfg.groups, S = s->side, E = temb_dim(&u->cfg);
    const size_t P = (size_t)S * S, nout = (size_t)B * s->cout * P;
    const char *p = s->name;
    float *a1 = s->a1 ? s->a1 : u->w1, *a2 = s->a2 ? s->a2 : u->w1;
    groupnorm_forward(s->n1, s->m1, s->r1, x, P_(u, p, ".norm1.weight"), P_(u, p, ".norm1.bias"), B, s->cin, P, G,
                      GN_EPS);
    silu_forward(a1, s->n1, (size_t)B * s->cin * P);
    conv_fwd(u, s->c1, a1, P_(u, p, ".conv1.conv.weight"), P_(u, p, ".conv1.conv.bias"), B, s->cin, S, S, s->cout, 3,
             1, 1);
    linear_fwd(u, s->temb, u->t_semb, P_(u, p, ".time_emb_proj.weight"), P_(u, p, ".time_emb_proj.bias"), B, 1, E,
               s->cout);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int ch = 0; ch < s->cout; ch++) {
            float *y = s->c1 + ((size_t)b * s->cout + ch) * P;
            const float t = s->temb[(size_t)b * s->cout + ch];
            for (size_t i = 0; i < P; i++) y[i] += t;
        }
    groupnorm_forward(s->n2, s->m2, s->r2, s->c1, P_(u, p, ".norm2.weight"), P_(u, p, ".norm2.bias"), B, s->cout, P,
                      G, GN_EPS);
    silu_forward(a2, s->n2, nout);
    if (s->cin != s->cout) {
        conv_fwd(u, u->w2, a2, P_(u, p, ".conv2.conv.weight"), P_(u, p, ".conv2.conv.bias"), B, s->cout, S, S, s->cout,
                 3, 1, 1);
        conv_fwd(u, out, x, P_(u, p, ".skip_connection.conv.weight"), P_(u, p, ".skip_connection.conv.bias"), B, s->cin,
                 S, S, s->cout, 1, 1, 0);
        add_into(out, u->w2, nout);
    } else {  // the identity skip: conv2 straight into the output, then x added
        conv_fwd(u, out, a2, P_(u, p, ".conv2.conv.weight"), P_(u, p, ".conv2.conv.bias"), B, s->cout, S, S, s->cout, 3,
                 1, 1);
        add_into(out, x, nout);
    }
}

static void res_backward(unet *u, const unet_step *s, const float *x, float *dx, const float *dy, int B) {
    const int G = u->cfg.groups, S = s->side, E = temb_dim(&u->cfg);
    const size_t P = (size_t)S * S, nin = (size_t)B * s->cin * P, nout = (size_t)B * s->cout * P;
    const char *p = s->name;
    float *w1 = u->w1, *w2 = u->w2, *w3 = u->w3;
    conv2d_backward_set(w1, G_(u, p, ".conv2.conv.weight"), G_(u, p, ".conv2.conv.bias"), u->cols, dy, s->a2,
                        P_(u, p, ".conv2.conv.weight"), B, s->cout, S, S, s->cout, 3, 1, 1);
    silu_backward(w1, w1, s->n2, nout);
    memset(w2, 0, sizeof(float) * nout);
    groupnorm_backward(w2, G_(u, p, ".norm2.weight"), G_(u, p, ".norm2.bias"), w1, s->c1, s->m2, s->r2,
                       P_(u, p, ".norm2.weight"), B, s->cout, P, G);
    // The time projection was broadcast over the map: its gradient is the per-channel sum.
    float *dt = u->tok;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int ch = 0; ch < s->cout; ch++) {
            const float *g = w2 + ((size_t)b * s->cout + ch) * P;
            double a = 0.0;
            for (size_t i = 0; i < P; i++) a += g[i];
            dt[(size_t)b * s->cout + ch] = (float)a;
        }
    linear_backward(u->d_semb, G_(u, p, ".time_emb_proj.weight"), G_(u, p, ".time_emb_proj.bias"), dt, u->t_semb,
                    P_(u, p, ".time_emb_proj.weight"), B, E, s->cout);
    conv2d_backward_set(w3, G_(u, p, ".conv1.conv.weight"), G_(u, p, ".conv1.conv.bias"), u->cols, w2, s->a1,
                        P_(u, p, ".conv1.conv.weight"), B, s->cin, S, S, s->cout, 3, 1, 1);
    silu_backward(w3, w3, s->n1, nin);
    groupnorm_backward(dx, G_(u, p, ".norm1.weight"), G_(u, p, ".norm1.bias"), w3, x, s->m1, s->r1,
                       P_(u, p, ".norm1.weight"), B, s->cin, P, G);
    if (s->cin != s->cout)
        conv2d_backward(dx, G_(u, p, ".skip_connection.conv.weight"), G_(u, p, ".skip_connection.conv.bias"), u->cols,
                        dy, x, P_(u, p, ".skip_connection.conv.weight"), B, s->cin, S, S, s->cout, 1, 1, 0);
    else
        add_into(dx, dy, nout);
}

static void attn_forward(unet *u, const unet_step *s, const float *x, float *out, int B) {
    const int C = s->cin, T = s->side * s->side, heads = ddpm_heads(&u->cfg, C);
    const size_t n = (size_t)B * C * T;
    const char *p = s->name;
    groupnorm_forward(s->n1, s->m1, s->r1, x, P_(u, p, ".norm.weight"), P_(u, p, ".norm.bias"), B, C, (size_t)T,
                      u->cfg.groups, GN_EPS);
    channels_last(u->tok, s->n1, B, C, T);
    pack_qkv(u, p, C);
    linear_fwd(u, s->qkv, u->tok, u->wqkv, u->bqkv, B, T, C, 3 * C);
    full_attention_forward(u->w1, u->att_scratch, s->probs, s->qkv, B, T, C, heads);
    memcpy(out, x, sizeof(float) * n);
    channels_first(out, u->w1, B, C, T, 1);
}

static void attn_backward(unet *u, const unet_step *s, const float *x, float *dx, const float *dy, int B) {
    static const char *lin[3] = {".to_q", ".to_k", ".to_v"};
    const int C = s->cin, T = s->side * s->side, heads = ddpm_heads(&u->cfg, C);
    const size_t n = (size_t)B * C * T;
    const char *p = s->name;
    channels_last(u->w1, dy, B, C, T);
    memset(u->w2, 0, sizeof(float) * 3 * n);
    full_attention_backward(u->w2, u->att_scratch, s->probs, u->w1, s->qkv, B, T, C, heads);
    channels_last(u->tok, s->n1, B, C, T);
    pack_qkv(u, p, C);
    memset(u->dwqkv, 0, sizeof(float) * 3 * C * C);
    memset(u->dbqkv, 0, sizeof(float) * 3 * C);
    memset(u->w3, 0, sizeof(float) * n);
    linear_backward(u->w3, u->dwqkv, u->dbqkv, u->w2, u->tok, u->wqkv, B * T, C, 3 * C);
    for (int i = 0; i < 3; i++) {
        char name[NAME_BUF];
        snprintf(name, sizeof name, "%s.weight", lin[i]);
        add_into(G_(u, p, name), u->dwqkv + (size_t)i * C * C, (size_t)C * C);
        snprintf(name, sizeof name, "%s.bias", lin[i]);
        add_into(G_(u, p, name), u->dbqkv + (size_t)i * C, (size_t)C);
    }
    channels_first(u->w1, u->w3, B, C, T, 0);
    groupnorm_backward(dx, G_(u, p, ".norm.weight"), G_(u, p, ".norm.bias"), u->w1, x, s->m1, s->r1,
                       P_(u, p, ".norm.weight"), B, C, (size_t)T, u->cfg.groups);
    add_into(dx, dy, n);
}

static void cat_forward(const unet_step *s, const unet_act *a1, const unet_act *a2, float *out, int B) {
    const size_t P = (size_t)s->side * s->side, n1 = (size_t)a1->C * P, n2 = (size_t)a2->C * P;
    for (int b = 0; b < B; b++) {
        memcpy(out + (size_t)b * (n1 + n2), a1->x + (size_t)b * n1, sizeof(float) * n1);
        memcpy(out + (size_t)b * (n1 + n2) + n1, a2->x + (size_t)b * n2, sizeof(float) * n2);
    }
}

static void cat_backward(const unet_step *s, unet_act *a1, unet_act *a2, const float *dy, int B) {
    const size_t P = (size_t)s->side * s->side, n1 = (size_t)a1->C * P, n2 = (size_t)a2->C * P;
    for (int b = 0; b < B; b++) {
        add_into(a1->d + (size_t)b * n1, dy + (size_t)b * (n1 + n2), n1);
        add_into(a2->d + (size_t)b * n2, dy + (size_t)b * (n1 + n2) + n1, n2);
    }
}

const float *unet_forward(unet *u, const float *x, const float *t, int B) {
    const ddpm_config *c = &u->cfg;
    const int E = temb_dim(c), C0 = c->ch[0];
    timestep_embedding(u->t_sin, t, B, C0);
    linear_fwd(u, u->t_e1, u->t_sin, P_(u, "unet.time_embed.0", ".weight"), P_(u, "unet.time_embed.0", ".bias"), B, 1,
               C0, E);
    silu_forward(u->t_s1, u->t_e1, (size_t)B * E);
    linear_fwd(u, u->t_emb, u->t_s1, P_(u, "unet.time_embed.2", ".weight"), P_(u, "unet.time_embed.2", ".bias"), B, 1,
               E, E);
    silu_forward(u->t_semb, u->t_emb, (size_t)B * E);
    u->acts[0].x = (float *)x;
    for (int k = 0; k < u->n_steps; k++) {
        unet_step *s = &u->steps[k];
        const float *in = u->acts[s->in].x;
        float *out = u->acts[s->out].x;
        const int S = s->side;
        const size_t P = (size_t)S * S;
        switch (s->kind) {
        case S_CONV_IN:
        case S_DOWN: {
            const int st = s->kind == S_DOWN ? 2 : 1;
            conv_fwd(u, out, in, P_(u, s->name, ".weight"), P_(u, s->name, ".bias"), B, s->cin, S, S, s->cout, 3, st,
                     1);
            break;
        }
        case S_RES:
            res_forward(u, s, in, out, B);
            break;
        case S_ATTN:
            attn_forward(u, s, in, out, B);
            break;
        case S_CAT:
            cat_forward(s, &u->acts[s->in], &u->acts[s->in2], out, B);
            break;
        case S_UP:
            upsample2x_forward(s->up, in, B, s->cin, S, S);
            conv_fwd(u, out, s->up, P_(u, s->name, ".weight"), P_(u, s->name, ".bias"), B, s->cin, 2 * S, 2 * S,
                     s->cout, 3, 1, 1);
            break;
        case S_OUT:
            groupnorm_forward(s->n1, s->m1, s->r1, in, P_(u, s->name, ".0.weight"), P_(u, s->name, ".0.bias"), B,
                              s->cin, P, c->groups, GN_EPS);
            float *a1 = s->a1 ? s->a1 : u->w1;
            silu_forward(a1, s->n1, (size_t)B * s->cin * P);
            conv_fwd(u, out, a1, P_(u, s->name, ".2.conv.weight"), P_(u, s->name, ".2.conv.bias"), B, s->cin, S, S,
                     s->cout, 3, 1, 1);
            break;
        }
    }
    return u->acts[u->n_acts - 1].x;
}

void unet_backward(unet *u, const float *d_out, int B) {
    const ddpm_config *c = &u->cfg;
    const int E = temb_dim(c), C0 = c->ch[0];
    for (int i = 1; i < u->n_acts; i++) {
        const unet_act *a = &u->acts[i];
        memset(a->d, 0, sizeof(float) * (size_t)B * a->C * a->side * a->side);
    }
    unet_act *last = &u->acts[u->n_acts - 1];
    memcpy(last->d, d_out, sizeof(float) * (size_t)B * last->C * last->side * last->side);
    memset(u->d_semb, 0, sizeof(float) * (size_t)B * E);
    for (int k = u->n_steps - 1; k >= 0; k--) {
        unet_step *s = &u->steps[k];
        const float *in = u->acts[s->in].x, *dy = u->acts[s->out].d;
        float *dx = u->acts[s->in].d;  // NULL for the input image
        const int S = s->side;
        const size_t P = (size_t)S * S;
        switch (s->kind) {
        case S_CONV_IN:
        case S_DOWN: {
            const int st = s->kind == S_DOWN ? 2 : 1;
            conv2d_backward(dx, G_(u, s->name, ".weight"), G_(u, s->name, ".bias"), u->cols, dy, in,
                            P_(u, s->name, ".weight"), B, s->cin, S, S, s->cout, 3, st, 1);
            break;
        }
        case S_RES:
            res_backward(u, s, in, dx, dy, B);
            break;
        case S_ATTN:
            attn_backward(u, s, in, dx, dy, B);
            break;
        case S_CAT:
            cat_backward(s, &u->acts[s->in], &u->acts[s->in2], dy, B);
            break;
        case S_UP:
            conv2d_backward_set(u->w1, G_(u, s->name, ".weight"), G_(u, s->name, ".bias"), u->cols, dy, s->up,
                                P_(u, s->name, ".weight"), B, s->cin, 2 * S, 2 * S, s->cout, 3, 1, 1);
            upsample2x_backward(dx, u->w1, B, s->cin, S, S);
            break;
        case S_OUT: {
            const size_t n = (size_t)B * s->cin * P;
            conv2d_backward_set(u->w2, G_(u, s->name, ".2.conv.weight"), G_(u, s->name, ".2.conv.bias"), u->cols,
                                dy, s->a1, P_(u, s->name, ".2.conv.weight"), B, s->cin, S, S, s->cout, 3, 1, 1);
            silu_backward(u->w2, u->w2, s->n1, n);
            groupnorm_backward(dx, G_(u, s->name, ".0.weight"), G_(u, s->name, ".0.bias"), u->w2, in, s->m1, s->r1,
                               P_(u, s->name, ".0.weight"), B, s->cin, P, c->groups);
            break;
        }
        }
    }
    // The time embedding, from the sum of every res block's projection gradient.
    memset(u->d_emb, 0, sizeof(float) * (size_t)B * E);
    silu_backward(u->d_emb, u->d_semb, u->t_emb, (size_t)B * E);
    memset(u->d_s1, 0, sizeof(float) * (size_t)B * E);
    linear_backward(u->d_s1, G_(u, "unet.time_embed.2", ".weight"), G_(u, "unet.time_embed.2", ".bias"), u->d_emb,
                    u->t_s1, P_(u, "unet.time_embed.2", ".weight"), B, E, E);
    silu_backward(u->d_s1, u->d_s1, u->t_e1, (size_t)B * E);
    linear_backward(NULL, G_(u, "unet.time_embed.0", ".weight"), G_(u, "unet.time_embed.0", ".bias"), u->d_s1,
                    u->t_sin, P_(u, "unet.time_embed.0", ".weight"), B, C0, E);
}
