#include "model/vae/config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/config_text.h"  // config_field, config_fields_*
#include "util/error.h"

void vae_config_default(vae_config *c) {
    // The authors' published dense VAE (mains/main_VAE.py, run.py defaults): 128 px, 8 x 8
    // bottleneck, zDim 128, 5x5 kernels, filters 32..128, Keras LeakyReLU (0.3), dropout 0.1.
    memset(c, 0, sizeof *c);
    c->img_size = 128;
    c->in_chans = 1;
    c->patch_size = 16;
    c->res = 8;
    c->z_dim = 128;
    c->base_ch = 32;
    c->max_ch = 128;
    c->kernel = 5;
    c->slope = 0.3f;
    c->dropout = 0.1f;
    c->beta = 1.0f;
    c->rec_l2 = 0;
}

int vae_blocks(const vae_config *c) {
    int n = 0;
    for (int s = c->img_size; s > c->res && s % 2 == 0; s /= 2) n++;
    return n;
}

int vae_enc_ch(const vae_config *c, int i) {
    long v = (long)c->base_ch << i;
    return v < c->max_ch ? (int)v : c->max_ch;
}

int vae_dec_ch(const vae_config *c, int i) {
    int v = c->max_ch >> i;
    return v > c->base_ch ? v : c->base_ch;
}

int vae_config_check(const vae_config *c) {
    if (c->in_chans < 1 || c->in_chans > 16) return as_fail("config: in_chans %d must lie in 1..16", c->in_chans);
    if (c->res < 1 || c->res > 64) return as_fail("config: res %d must lie in 1..64", c->res);
    if (c->img_size < 2 || c->img_size > 4096) return as_fail("config: img_size %d must lie in 2..4096", c->img_size);
    int n = vae_blocks(c);
    if (n < 1 || n > VAE_MAX_BLOCKS || (c->res << n) != c->img_size)
        return as_fail("config: img_size %d must be res %d times a power of two (2..2^%d)", c->img_size, c->res,
                       VAE_MAX_BLOCKS);
    if (c->patch_size < 1 || c->img_size % c->patch_size)
        return as_fail("config: patch_size %d must divide img_size %d", c->patch_size, c->img_size);
    if (c->base_ch < 1 || c->max_ch < c->base_ch || c->max_ch > 4096)
        return as_fail("config: need 1 <= base_ch %d <= max_ch %d <= 4096", c->base_ch, c->max_ch);
    if (vae_enc_ch(c, n - 1) % 8)
        return as_fail("config: the last encoder block's %d channels must be a multiple of 8 (bottleneck C/8)",
                       vae_enc_ch(c, n - 1));
    if (c->z_dim < 1 || c->z_dim > 65536) return as_fail("config: z_dim %d must lie in 1..65536", c->z_dim);
    if (c->kernel < 1 || c->kernel > 15 || c->kernel % 2 == 0)
        return as_fail("config: kernel %d must be odd and at most 15 ('same' padding k/2)", c->kernel);
    if (!(c->slope >= 0.0f && c->slope < 1.0f)) return as_fail("config: slope %g must lie in [0, 1)", (double)c->slope);
    if (!(c->dropout >= 0.0f && c->dropout < 1.0f))
        return as_fail("config: dropout %g must lie in [0, 1)", (double)c->dropout);
    if (!(c->beta >= 0.0f && c->beta <= 1e6f)) return as_fail("config: beta %g must lie in [0, 1e6]", (double)c->beta);
    return 0;
}

#define I(key) {#key, CONFIG_INT, offsetof(vae_config, key), {NULL}}
#define R(key) {#key, CONFIG_FLOAT, offsetof(vae_config, key), {NULL}}
static const config_field FIELDS[] = {
    I(img_size), I(in_chans), I(patch_size), I(res),  I(z_dim), I(base_ch), I(max_ch), I(kernel), R(slope),
    R(dropout),  R(beta),     {"rec_loss", CONFIG_CHOICE, offsetof(vae_config, rec_l2), {"l1", "l2", NULL}},
};
#undef I
#undef R
enum { N_FIELDS = sizeof FIELDS / sizeof FIELDS[0] };

int vae_config_to_json(const vae_config *c, char *out, size_t n) {
    return config_fields_to_json(c, FIELDS, N_FIELDS, out, n);
}

void vae_config_describe(const vae_config *c, char *out, size_t n) {
    snprintf(out, n, "img %d in %d res %d z %d ch %d..%d kernel %d slope %g dropout %g beta %g loss %s", c->img_size,
             c->in_chans, c->res, c->z_dim, c->base_ch, c->max_ch, c->kernel, (double)c->slope, (double)c->dropout,
             (double)c->beta, c->rec_l2 ? "l2" : "l1");
}

int vae_config_parse(vae_config *cfg, const char *text, const char *what) {
    vae_config c = *cfg;
    if (config_fields_parse(&c, FIELDS, N_FIELDS, text, what)) return -1;
    if (vae_config_check(&c)) return config_check_failed(what);
    *cfg = c;
    return 0;
}
