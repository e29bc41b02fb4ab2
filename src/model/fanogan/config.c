#include "model/fanogan/config.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "model/config_text.h"  // config_field, config_fields_*, config_check_failed
#include "util/error.h"         // as_fail, as_error

void fanogan_config_default(fanogan_config *c) {
    // wgangp_64x64.py / z_encoding_izif.py: 64 px, DIM 64, ZDIM 128, CRITIC_ITERS 5, LAMBDA 10,
    // Adam(1e-4, 0, 0.9) for the GAN, RMSProp(5e-5) and kappa 1 for the encoder.
    memset(c, 0, sizeof *c);
    c->img_size = 64;
    c->in_chans = 1;
    c->patch_size = 8;
    c->dim = 64;
    c->z_dim = 128;
    c->n_critic = 5;
    c->gp_lambda = 10.0f;
    c->kappa = 1.0f;
    c->lr = 1e-4f;
    c->beta1 = 0.0f;
    c->beta2 = 0.9f;
    c->enc_lr = 5e-5f;
    c->gan_frac = 0.5f;
}

int fanogan_blocks(const fanogan_config *c) {
    int n = 0;
    for (int s = c->img_size; s > 4 && s % 2 == 0; s /= 2) n++;
    return n;
}

int fanogan_ch(const fanogan_config *c, int i) { return c->dim * (i < 3 ? 1 << i : 8); }

int fanogan_config_check(const fanogan_config *c) {
    if (c->in_chans < 1 || c->in_chans > 16) return as_fail("config: in_chans %d must lie in 1..16", c->in_chans);
    if (c->img_size < 8 || c->img_size > 4096) return as_fail("config: img_size %d must lie in 8..4096", c->img_size);
    const int n = fanogan_blocks(c);
    if (n < 1 || n > FANOGAN_MAX_BLOCKS || (4 << n) != c->img_size)
        return as_fail("config: img_size %d must be 4 times a power of two (8..%d)", c->img_size,
                       4 << FANOGAN_MAX_BLOCKS);
    if (c->patch_size < 1 || c->img_size % c->patch_size)
        return as_fail("config: patch_size %d must divide img_size %d", c->patch_size, c->img_size);
    if (c->dim < 1 || c->dim > 512) return as_fail("config: dim %d must lie in 1..512", c->dim);
    if (c->z_dim < 1 || c->z_dim > 65536) return as_fail("config: z_dim %d must lie in 1..65536", c->z_dim);
    if (c->n_critic < 1 || c->n_critic > 100) return as_fail("config: n_critic %d must lie in 1..100", c->n_critic);
    if (!(c->gp_lambda >= 0.0f && c->gp_lambda <= 1e6f))
        return as_fail("config: gp_lambda %g must lie in [0, 1e6]", (double)c->gp_lambda);
    if (!(c->kappa >= 0.0f && c->kappa <= 1e6f)) return as_fail("config: kappa %g must lie in [0, 1e6]", (double)c->kappa);
    if (!(c->lr > 0.0f && c->lr < 1.0f)) return as_fail("config: lr %g must lie in (0, 1)", (double)c->lr);
    if (!(c->enc_lr > 0.0f && c->enc_lr < 1.0f)) return as_fail("config: enc_lr %g must lie in (0, 1)", (double)c->enc_lr);
    if (!(c->beta1 >= 0.0f && c->beta1 < 1.0f)) return as_fail("config: beta1 %g must lie in [0, 1)", (double)c->beta1);
    if (!(c->beta2 >= 0.0f && c->beta2 < 1.0f)) return as_fail("config: beta2 %g must lie in [0, 1)", (double)c->beta2);
    if (!(c->gan_frac > 0.0f && c->gan_frac < 1.0f))
        return as_fail("config: gan_frac %g must lie in (0, 1) (both stages get steps)", (double)c->gan_frac);
    return 0;
}

#define I(key) {#key, CONFIG_INT, offsetof(fanogan_config, key), {NULL}}
#define R(key) {#key, CONFIG_FLOAT, offsetof(fanogan_config, key), {NULL}}
static const config_field FIELDS[] = {
    I(img_size),  I(in_chans), I(patch_size), I(dim),   I(z_dim),  I(n_critic), R(gp_lambda),
    R(kappa),     R(lr),       R(beta1),      R(beta2), R(enc_lr), R(gan_frac),
};
#undef I
#undef R
enum { N_FIELDS = sizeof FIELDS / sizeof FIELDS[0] };

int fanogan_config_to_json(const fanogan_config *c, char *out, size_t n) {
    return config_fields_to_json(c, FIELDS, N_FIELDS, out, n);
}

void fanogan_config_describe(const fanogan_config *c, char *out, size_t n) {
    snprintf(out, n,
             "img %d in %d dim %d z %d blocks %d; WGAN-GP n_critic %d lambda %g lr %g betas (%g, %g) for %g of the "
             "steps, then izi_f kappa %g RMSProp lr %g",
             c->img_size, c->in_chans, c->dim, c->z_dim, fanogan_blocks(c), c->n_critic, (double)c->gp_lambda,
             (double)c->lr, (double)c->beta1, (double)c->beta2, (double)c->gan_frac, (double)c->kappa,
             (double)c->enc_lr);
}

int fanogan_config_parse(fanogan_config *cfg, const char *text, const char *what) {
    fanogan_config c = *cfg;
    if (config_fields_parse(&c, FIELDS, N_FIELDS, text, what)) return -1;
    if (fanogan_config_check(&c)) return config_check_failed(what);
    *cfg = c;
    return 0;
}
