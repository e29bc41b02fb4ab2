#include "model/fanogan/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/config_text.h"  // config_cursor, config_next_key, config_number, config_int
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

// Shortest decimal that reads back as the same float.
static void float_str(char *out, size_t n, float v) {
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(out, n, "%.*g", prec, (double)v);
        if (strtof(out, NULL) == v) break;
    }
}

int fanogan_config_to_json(const fanogan_config *c, char *out, size_t n) {
    char f[7][32];
    const float v[7] = {c->gp_lambda, c->kappa, c->lr, c->beta1, c->beta2, c->enc_lr, c->gan_frac};
    for (int i = 0; i < 7; i++) float_str(f[i], sizeof f[i], v[i]);
    int w = snprintf(out, n,
                     "{\"img_size\":%d,\"in_chans\":%d,\"patch_size\":%d,\"dim\":%d,\"z_dim\":%d,\"n_critic\":%d,"
                     "\"gp_lambda\":%s,\"kappa\":%s,\"lr\":%s,\"beta1\":%s,\"beta2\":%s,\"enc_lr\":%s,"
                     "\"gan_frac\":%s}",
                     c->img_size, c->in_chans, c->patch_size, c->dim, c->z_dim, c->n_critic, f[0], f[1], f[2], f[3],
                     f[4], f[5], f[6]);
    return (w < 0 || (size_t)w >= n) ? -1 : 0;
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
    config_cursor cur;
    config_cursor_init(&cur, text, what);
    char key[64];
    int got;
    while ((got = config_next_key(&cur, key, sizeof key)) > 0) {
        double v;
        if (config_number(&cur, key, &v)) return -1;
        int *ip = NULL;
        float *fp = NULL;
        if (!strcmp(key, "img_size")) ip = &c.img_size;
        else if (!strcmp(key, "in_chans")) ip = &c.in_chans;
        else if (!strcmp(key, "patch_size")) ip = &c.patch_size;
        else if (!strcmp(key, "dim")) ip = &c.dim;
        else if (!strcmp(key, "z_dim")) ip = &c.z_dim;
        else if (!strcmp(key, "n_critic")) ip = &c.n_critic;
        else if (!strcmp(key, "gp_lambda")) fp = &c.gp_lambda;
        else if (!strcmp(key, "kappa")) fp = &c.kappa;
        else if (!strcmp(key, "lr")) fp = &c.lr;
        else if (!strcmp(key, "beta1")) fp = &c.beta1;
        else if (!strcmp(key, "beta2")) fp = &c.beta2;
        else if (!strcmp(key, "enc_lr")) fp = &c.enc_lr;
        else if (!strcmp(key, "gan_frac")) fp = &c.gan_frac;
        else
            return as_fail("%s: unknown config key '%s' (known: img_size in_chans patch_size dim z_dim n_critic "
                           "gp_lambda kappa lr beta1 beta2 enc_lr gan_frac)",
                           what, key);
        if (ip) {
            if (config_int(v, ip, what, key)) return -1;
        } else {
            *fp = (float)v;
        }
        if (config_end_value(&cur, key)) return -1;
    }
    if (got < 0) return -1;
    if (fanogan_config_check(&c)) {
        char msg[512];
        const char *e = as_error();
        snprintf(msg, sizeof msg, "%s", strncmp(e, "config: ", 8) ? e : e + 8);
        return as_fail("%s: %s", what, msg);
    }
    *cfg = c;
    return 0;
}
