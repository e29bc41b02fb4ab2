// The VAE baseline: table, buffers, forward and backward (see config.h for the architecture).
#include "model/vae/vae.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/param_layers.h"  // param_add_conv, param_add_dense, param_add_bn
#include "nn/nn.h"         // conv2d_*, conv_transpose2d_*, batchnorm2d_*, linear_*, losses
#include "util/carve.h"    // carve, carve_take
#include "util/error.h"    // as_fail, as_calloc

#define BN_MOMENTUM 0.1f

// ---- parameter table (tools/vae_ref.py's state_dict, in its order) -----------------------------

// Names are built in buffers longer than an entry's (see param_layers.c).
#define NAME_BUF (PARAM_NAME_MAX + 32)

int vae_table_build(param_table *t, const vae_config *c) {
    memset(t, 0, sizeof *t);
    if (vae_config_check(c)) return -1;
    const int n = vae_blocks(c), k = c->kernel, C = vae_enc_ch(c, n - 1), C8 = vae_bottleneck_ch(c);
    char p[PARAM_NAME_MAX];
    for (int i = 0; i < n; i++) {
        snprintf(p, sizeof p, "encoder.%d.conv", i);
        param_add_conv(t, p, i ? vae_enc_ch(c, i - 1) : c->in_chans, vae_enc_ch(c, i), k, 0, 1);
        snprintf(p, sizeof p, "encoder.%d.bn", i);
        param_add_bn(t, p, vae_enc_ch(c, i));
    }
    param_add_conv(t, "enc_conv", C, C8, 1, 0, 1);
    param_add_dense(t, "mu", vae_flat(c), c->z_dim);
    param_add_dense(t, "log_sigma", vae_flat(c), c->z_dim);
    param_add_dense(t, "dec_dense", c->z_dim, vae_flat(c));
    param_add_conv(t, "dec_conv", C8, C, 1, 0, 1);
    param_add_bn(t, "dec_bn", C);
    for (int j = 0; j < n; j++) {
        snprintf(p, sizeof p, "decoder.%d.conv", j);
        param_add_conv(t, p, j ? vae_dec_ch(c, j - 1) : C, vae_dec_ch(c, j), k, 1, 1);
        snprintf(p, sizeof p, "decoder.%d.bn", j);
        param_add_bn(t, p, vae_dec_ch(c, j));
    }
    param_add_conv(t, "final", vae_dec_ch(c, n - 1), c->in_chans, 1, 0, 1);
    return 0;
}

// ---- buffers ------------------------------------------------------------------------------------

static void layout(vae *v, carve *a, int training) {
    const vae_config *c = &v->cfg;
    const size_t B = (size_t)v->max_batch, Z = (size_t)c->z_dim, F = (size_t)vae_flat(c);
    const int n = v->n, C = vae_enc_ch(c, n - 1);
    size_t cols = 0;
    int side = c->img_size, in = c->in_chans;
    for (int i = 0; i < n; i++) {
        const int ch = vae_enc_ch(c, i), s2 = side / 2;
        const size_t sz = B * ch * s2 * s2, cc = conv2d_scratch_floats((int)B, in, ch, c->kernel, s2, s2);
        cols = cc > cols ? cc : cols;
        v->enc_pre[i] = carve_take(a, sz);
        v->enc_act[i] = carve_take(a, sz);
        v->enc_bn[i].mean = carve_take(a, ch);
        v->enc_bn[i].rstd = carve_take(a, ch);
        if (training) {
            v->d_enc_pre[i] = carve_take(a, sz);
            v->d_enc_act[i] = carve_take(a, sz);
        }
        side = s2;
        in = ch;
    }
    const size_t rr = (size_t)c->res * c->res, C8 = (size_t)vae_bottleneck_ch(c);
    const size_t c1 = conv2d_scratch_floats((int)B, C, (int)C8, 1, c->res, c->res);
    const size_t c2 = conv2d_scratch_floats((int)B, (int)C8, C, 1, c->res, c->res);
    cols = c1 > cols ? c1 : cols;
    cols = c2 > cols ? c2 : cols;
    v->h = carve_take(a, B * F);
    v->mu_pre = carve_take(a, B * Z);
    v->ls_pre = carve_take(a, B * Z);
    v->mu = carve_take(a, B * Z);
    v->ls = carve_take(a, B * Z);
    v->sigma = carve_take(a, B * Z);
    v->z = carve_take(a, B * Z);
    v->dense = carve_take(a, B * F);
    v->dense_drop = carve_take(a, B * F);
    v->g = carve_take(a, B * C * rr);
    v->dec_in = carve_take(a, B * C * rr);
    v->dec_bn0.mean = carve_take(a, C);
    v->dec_bn0.rstd = carve_take(a, C);
    if (training) {
        v->d_h = carve_take(a, B * F);
        v->d_mu = carve_take(a, B * Z);
        v->d_ls = carve_take(a, B * Z);
        v->d_mu_pre = carve_take(a, B * Z);
        v->d_ls_pre = carve_take(a, B * Z);
        v->d_z = carve_take(a, B * Z);
        v->d_dense = carve_take(a, B * F);
        v->d_g = carve_take(a, B * C * rr);
        v->d_dec_in = carve_take(a, B * C * rr);
    }
    side = c->res;
    in = C;
    for (int j = 0; j < n; j++) {
        const int ch = vae_dec_ch(c, j), s2 = side * 2;
        const size_t sz = B * ch * s2 * s2, cc = conv_transpose2d_scratch_floats((int)B, in, ch, c->kernel, side, side);
        cols = cc > cols ? cc : cols;
        v->dec_pre[j] = carve_take(a, sz);
        v->dec_act[j] = carve_take(a, sz);
        v->dec_bn[j].mean = carve_take(a, ch);
        v->dec_bn[j].rstd = carve_take(a, ch);
        if (training) {
            v->d_dec_pre[j] = carve_take(a, sz);
            v->d_dec_act[j] = carve_take(a, sz);
        }
        side = s2;
        in = ch;
    }
    const size_t img = (size_t)c->in_chans * c->img_size * c->img_size;
    const size_t cf = conv2d_scratch_floats((int)B, in, c->in_chans, 1, c->img_size, c->img_size);
    cols = cf > cols ? cf : cols;
    v->out = carve_take(a, B * img);
    if (training) v->d_out = carve_take(a, B * img);
    v->cols = carve_take(a, cols);
}

int vae_create(vae *v, const vae_config *c, int max_batch, int training) {
    memset(v, 0, sizeof *v);
    if (max_batch < 1) return as_fail("vae: max_batch %d must be positive", max_batch);
    if (vae_table_build(&v->table, c)) return -1;
    v->cfg = *c;
    v->n = vae_blocks(c);
    v->max_batch = max_batch;
    v->params = as_calloc(v->table.n_floats, sizeof(float));
    if (training) v->grads = as_calloc(v->table.n_floats, sizeof(float));
    carve a = {NULL, 0};
    layout(v, &a, training);
    v->arena = as_calloc(a.used, sizeof(float));
    a = (carve){v->arena, 0};
    layout(v, &a, training);
    return 0;
}

void vae_free(vae *v) {
    param_table_free(&v->table);
    free(v->params);
    free(v->grads);
    free(v->arena);
    memset(v, 0, sizeof *v);
}

// ---- forward / backward ---------------------------------------------------------------------------

static float *P(vae *v, const char *name) { return param_ptr(&v->table, v->params, name); }
static float *G(vae *v, const char *name) { return param_ptr(&v->table, v->grads, name); }

static float *Pf(vae *v, const char *fmt, int i, const char *suffix) {
    char name[PARAM_NAME_MAX];
    snprintf(name, sizeof name, fmt, i, suffix);
    return P(v, name);
}

static float *Gf(vae *v, const char *fmt, int i, const char *suffix) {
    char name[PARAM_NAME_MAX];
    snprintf(name, sizeof name, fmt, i, suffix);
    return G(v, name);
}

static void bn_forward(vae *v, float *out, vae_bn *bn, const float *inp, const char *prefix, int B, int C, size_t HW,
                       int training) {
    char w[NAME_BUF], b[NAME_BUF], rm[NAME_BUF], rv[NAME_BUF];
    snprintf(w, sizeof w, "%s.weight", prefix);
    snprintf(b, sizeof b, "%s.bias", prefix);
    snprintf(rm, sizeof rm, "%s.running_mean", prefix);
    snprintf(rv, sizeof rv, "%s.running_var", prefix);
    batchnorm2d_forward(out, bn->mean, bn->rstd, inp, P(v, w), P(v, b), P(v, rm), P(v, rv), B, C, HW, BN_MOMENTUM,
                        training);
}

static void bn_backward(vae *v, float *dinp, const float *dout, const float *inp, const vae_bn *bn,
                        const char *prefix, int B, int C, size_t HW) {
    char w[NAME_BUF], b[NAME_BUF];
    snprintf(w, sizeof w, "%s.weight", prefix);
    snprintf(b, sizeof b, "%s.bias", prefix);
    batchnorm2d_backward(dinp, G(v, w), G(v, b), dout, inp, bn->mean, bn->rstd, P(v, w), B, C, HW, 1);
}

float vae_forward(vae *v, const float *images, const float *eps, const float *const *drop, int B, int training) {
    const vae_config *c = &v->cfg;
    const int n = v->n, k = c->kernel, pad = k / 2, Z = c->z_dim, F = vae_flat(c);
    const int C = vae_enc_ch(c, n - 1), C8 = vae_bottleneck_ch(c), rr = c->res * c->res;
    char pre[PARAM_NAME_MAX];
    v->eps = training ? eps : NULL;
    for (int i = 0; i < 3; i++) v->drop[i] = training && drop ? drop[i] : NULL;

    // Encoder.
    const float *x = images;
    int side = c->img_size, in = c->in_chans;
    for (int i = 0; i < n; i++) {
        const int ch = vae_enc_ch(c, i), s2 = side / 2;
        conv2d_forward(v->enc_pre[i], v->cols, x, Pf(v, "encoder.%d.conv.%s", i, "weight"),
                       Pf(v, "encoder.%d.conv.%s", i, "bias"), B, in, side, side, ch, k, 2, pad);
        snprintf(pre, sizeof pre, "encoder.%d.bn", i);
        bn_forward(v, v->enc_act[i], &v->enc_bn[i], v->enc_pre[i], pre, B, ch, (size_t)s2 * s2, training);
        leaky_relu_forward(v->enc_act[i], v->enc_act[i], (size_t)B * ch * s2 * s2, c->slope);
        x = v->enc_act[i];
        side = s2;
        in = ch;
    }

    // Bottleneck: (B, C8, res, res) flattened in NCHW order is PyTorch's flatten(1).
    conv2d_forward(v->h, v->cols, x, P(v, "enc_conv.weight"), P(v, "enc_conv.bias"), B, C, c->res, c->res, C8, 1, 1,
                   0);
    linear_forward(v->mu_pre, v->h, P(v, "mu.weight"), P(v, "mu.bias"), B, F, Z);
    linear_forward(v->ls_pre, v->h, P(v, "log_sigma.weight"), P(v, "log_sigma.bias"), B, F, Z);
    const size_t nz = (size_t)B * Z;
    for (size_t i = 0; i < nz; i++) {
        v->mu[i] = v->drop[0] ? v->mu_pre[i] * v->drop[0][i] : v->mu_pre[i];
        v->ls[i] = v->drop[1] ? v->ls_pre[i] * v->drop[1][i] : v->ls_pre[i];
    }
    if (training) {
        vae_sample_forward(v->z, v->sigma, v->mu, v->ls, eps, nz);
    } else {
        memcpy(v->z, v->mu, sizeof(float) * nz);  // the mean reconstruction: detection is deterministic
    }
    linear_forward(v->dense, v->z, P(v, "dec_dense.weight"), P(v, "dec_dense.bias"), B, Z, F);
    const size_t nf = (size_t)B * F;
    for (size_t i = 0; i < nf; i++) v->dense_drop[i] = v->drop[2] ? v->dense[i] * v->drop[2][i] : v->dense[i];
    conv2d_forward(v->g, v->cols, v->dense_drop, P(v, "dec_conv.weight"), P(v, "dec_conv.bias"), B, C8, c->res,
                   c->res, C, 1, 1, 0);
    bn_forward(v, v->dec_in, &v->dec_bn0, v->g, "dec_bn", B, C, (size_t)rr, training);
    leaky_relu_forward(v->dec_in, v->dec_in, (size_t)B * C * rr, 0.0f);

    // Decoder.
    x = v->dec_in;
    side = c->res;
    in = C;
    for (int j = 0; j < n; j++) {
        const int ch = vae_dec_ch(c, j), s2 = side * 2;
        conv_transpose2d_forward(v->dec_pre[j], v->cols, x, Pf(v, "decoder.%d.conv.%s", j, "weight"),
                                 Pf(v, "decoder.%d.conv.%s", j, "bias"), B, in, side, side, ch, k, 2, pad, 1);
        snprintf(pre, sizeof pre, "decoder.%d.bn", j);
        bn_forward(v, v->dec_act[j], &v->dec_bn[j], v->dec_pre[j], pre, B, ch, (size_t)s2 * s2, training);
        leaky_relu_forward(v->dec_act[j], v->dec_act[j], (size_t)B * ch * s2 * s2, c->slope);
        x = v->dec_act[j];
        side = s2;
        in = ch;
    }
    conv2d_forward(v->out, v->cols, x, P(v, "final.weight"), P(v, "final.bias"), B, in, side, side, c->in_chans, 1, 1,
                   0);

    // Loss: per-image sums, batch mean.
    const size_t npx = (size_t)B * c->in_chans * c->img_size * c->img_size;
    v->rec = c->rec_l2 ? mse_loss_forward(v->out, images, npx, 1.0f / B) : l1_loss_forward(v->out, images, npx, 1.0f / B);
    v->kl = training ? vae_kl_forward(v->mu, v->ls, nz, 1.0f / B) : 0.0f;
    return v->rec + c->beta * v->kl;
}

void vae_backward(vae *v, const float *images, int B) {
    const vae_config *c = &v->cfg;
    const int n = v->n, k = c->kernel, pad = k / 2, Z = c->z_dim, F = vae_flat(c);
    const int C = vae_enc_ch(c, n - 1), C8 = vae_bottleneck_ch(c), rr = c->res * c->res;
    const size_t nz = (size_t)B * Z, nf = (size_t)B * F;
    const size_t npx = (size_t)B * c->in_chans * c->img_size * c->img_size;
    char pre[PARAM_NAME_MAX];

    memset(v->d_out, 0, sizeof(float) * npx);
    if (c->rec_l2) mse_loss_backward(v->d_out, v->out, images, npx, 1.0f / B);
    else l1_loss_backward(v->d_out, v->out, images, npx, 1.0f / B);

    // Decoder, last block first. dout of block j is d_dec_act[j] (the final conv's input for j = n-1).
    int side = c->img_size;
    const int last = vae_dec_ch(c, n - 1);
    memset(v->d_dec_act[n - 1], 0, sizeof(float) * (size_t)B * last * side * side);
    conv2d_backward(v->d_dec_act[n - 1], G(v, "final.weight"), G(v, "final.bias"), v->cols, v->d_out,
                    v->dec_act[n - 1], P(v, "final.weight"), B, last, side, side, c->in_chans, 1, 1, 0);
    for (int j = n - 1; j >= 0; j--) {
        const int ch = vae_dec_ch(c, j), s = side / 2, in = j ? vae_dec_ch(c, j - 1) : C;
        const size_t sz = (size_t)B * ch * side * side;
        leaky_relu_backward(v->d_dec_act[j], v->d_dec_act[j], v->dec_act[j], sz, c->slope);
        memset(v->d_dec_pre[j], 0, sizeof(float) * sz);
        snprintf(pre, sizeof pre, "decoder.%d.bn", j);
        bn_backward(v, v->d_dec_pre[j], v->d_dec_act[j], v->dec_pre[j], &v->dec_bn[j], pre, B, ch, (size_t)side * side);
        float *dx = j ? v->d_dec_act[j - 1] : v->d_dec_in;
        memset(dx, 0, sizeof(float) * (size_t)B * in * s * s);
        conv_transpose2d_backward(dx, Gf(v, "decoder.%d.conv.%s", j, "weight"), Gf(v, "decoder.%d.conv.%s", j, "bias"),
                                  v->cols, v->d_dec_pre[j], j ? v->dec_act[j - 1] : v->dec_in,
                                  Pf(v, "decoder.%d.conv.%s", j, "weight"), B, in, s, s, ch, k, 2, pad, 1);
        side = s;
    }

    // Bottleneck, back to front.
    leaky_relu_backward(v->d_dec_in, v->d_dec_in, v->dec_in, (size_t)B * C * rr, 0.0f);
    memset(v->d_g, 0, sizeof(float) * (size_t)B * C * rr);
    bn_backward(v, v->d_g, v->d_dec_in, v->g, &v->dec_bn0, "dec_bn", B, C, (size_t)rr);
    memset(v->d_dense, 0, sizeof(float) * nf);
    conv2d_backward(v->d_dense, G(v, "dec_conv.weight"), G(v, "dec_conv.bias"), v->cols, v->d_g, v->dense_drop,
                    P(v, "dec_conv.weight"), B, C8, c->res, c->res, C, 1, 1, 0);
    if (v->drop[2])
        for (size_t i = 0; i < nf; i++) v->d_dense[i] *= v->drop[2][i];
    memset(v->d_z, 0, sizeof(float) * nz);
    linear_backward(v->d_z, G(v, "dec_dense.weight"), G(v, "dec_dense.bias"), v->d_dense, v->z, P(v, "dec_dense.weight"),
                    B, Z, F);
    memset(v->d_mu, 0, sizeof(float) * nz);
    memset(v->d_ls, 0, sizeof(float) * nz);
    vae_sample_backward(v->d_mu, v->d_ls, v->d_z, v->eps, v->sigma, nz);
    vae_kl_backward(v->d_mu, v->d_ls, v->mu, v->ls, nz, c->beta / B);
    for (size_t i = 0; i < nz; i++) {
        v->d_mu_pre[i] = v->drop[0] ? v->d_mu[i] * v->drop[0][i] : v->d_mu[i];
        v->d_ls_pre[i] = v->drop[1] ? v->d_ls[i] * v->drop[1][i] : v->d_ls[i];
    }
    memset(v->d_h, 0, sizeof(float) * nf);
    linear_backward(v->d_h, G(v, "mu.weight"), G(v, "mu.bias"), v->d_mu_pre, v->h, P(v, "mu.weight"), B, F, Z);
    linear_backward(v->d_h, G(v, "log_sigma.weight"), G(v, "log_sigma.bias"), v->d_ls_pre, v->h,
                    P(v, "log_sigma.weight"), B, F, Z);
    memset(v->d_enc_act[n - 1], 0, sizeof(float) * (size_t)B * C * rr);
    conv2d_backward(v->d_enc_act[n - 1], G(v, "enc_conv.weight"), G(v, "enc_conv.bias"), v->cols, v->d_h,
                    v->enc_act[n - 1], P(v, "enc_conv.weight"), B, C, c->res, c->res, C8, 1, 1, 0);

    // Encoder, last block first.
    side = c->res;
    for (int i = n - 1; i >= 0; i--) {
        const int ch = vae_enc_ch(c, i), s = side * 2, in = i ? vae_enc_ch(c, i - 1) : c->in_chans;
        const size_t sz = (size_t)B * ch * side * side;
        leaky_relu_backward(v->d_enc_act[i], v->d_enc_act[i], v->enc_act[i], sz, c->slope);
        memset(v->d_enc_pre[i], 0, sizeof(float) * sz);
        snprintf(pre, sizeof pre, "encoder.%d.bn", i);
        bn_backward(v, v->d_enc_pre[i], v->d_enc_act[i], v->enc_pre[i], &v->enc_bn[i], pre, B, ch, (size_t)side * side);
        float *dx = i ? v->d_enc_act[i - 1] : NULL;  // nothing flows into the images
        if (dx) memset(dx, 0, sizeof(float) * (size_t)B * in * s * s);
        conv2d_backward(dx, Gf(v, "encoder.%d.conv.%s", i, "weight"), Gf(v, "encoder.%d.conv.%s", i, "bias"), v->cols,
                        v->d_enc_pre[i], i ? v->enc_act[i - 1] : images, Pf(v, "encoder.%d.conv.%s", i, "weight"), B,
                        in, s, s, ch, k, 2, pad);
        side = s;
    }
}
