#include "model/swinmae/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/config_text.h"
#include "util/error.h"

void swinmae_config_default(swinmae_config *c) {
    memset(c, 0, sizeof *c);
    c->img_size = 224;
    c->patch_size = 4;
    c->in_chans = 3;
    c->embed_dim = 96;
    for (int i = 0; i < SWINMAE_STAGES; i++) {
        c->depths[i] = 2;
        c->num_heads[i] = 3 << i;
    }
    c->window = 7;
    c->mlp_ratio = 4;
    c->drop_path_rate = 0.1f;
}

int swinmae_config_check(const swinmae_config *c) {
    if (c->patch_size < 1 || c->patch_size > 64) return as_fail("config: patch_size %d must lie in 1..64", c->patch_size);
    if (c->in_chans < 1 || c->in_chans > 16) return as_fail("config: in_chans %d must lie in 1..16", c->in_chans);
    if (c->window < 1 || c->window > 64) return as_fail("config: window %d must lie in 1..64", c->window);
    if (c->embed_dim < 4 || c->embed_dim % 4)
        return as_fail("config: embed_dim %d must be a positive multiple of 4 (2-D sin-cos pos_embed)", c->embed_dim);
    if (c->embed_dim > 4096) return as_fail("config: embed_dim %d is too large", c->embed_dim);
    if (c->mlp_ratio < 1 || c->mlp_ratio > 16) return as_fail("config: mlp_ratio %d must lie in 1..16", c->mlp_ratio);
    long unit = (long)c->patch_size * c->window * 8;
    if (c->img_size < 1 || c->img_size > 8192 || c->img_size % unit)
        return as_fail("config: img_size %d must be a multiple of patch_size*window*8 = %ld "
                       "(the last stage runs at img_size/patch/8 and must tile into %dx%d windows)",
                       c->img_size, unit, c->window, c->window);
    for (int i = 0; i < SWINMAE_STAGES; i++) {
        if (c->depths[i] < 1 || c->depths[i] > 64) return as_fail("config: depths[%d] = %d must lie in 1..64", i, c->depths[i]);
        int dim = c->embed_dim << i;
        if (c->num_heads[i] < 1 || dim % c->num_heads[i])
            return as_fail("config: num_heads[%d] = %d must divide the stage dim %d", i, c->num_heads[i], dim);
    }
    if (!(c->drop_path_rate >= 0.0f && c->drop_path_rate < 1.0f))
        return as_fail("config: drop_path_rate %g must lie in [0, 1)", (double)c->drop_path_rate);
    return 0;
}

int swinmae_config_equal(const swinmae_config *a, const swinmae_config *b) {
    if (a->img_size != b->img_size || a->patch_size != b->patch_size || a->in_chans != b->in_chans ||
        a->embed_dim != b->embed_dim || a->window != b->window || a->mlp_ratio != b->mlp_ratio ||
        a->drop_path_rate != b->drop_path_rate)
        return 0;
    for (int i = 0; i < SWINMAE_STAGES; i++)
        if (a->depths[i] != b->depths[i] || a->num_heads[i] != b->num_heads[i]) return 0;
    return 1;
}

float swinmae_drop_path(const swinmae_config *c, int stage, int block) {
    int total = 0, k = 0;
    for (int i = 0; i < SWINMAE_STAGES; i++) total += c->depths[i];
    for (int i = 0; i < stage; i++) k += c->depths[i];
    k += block;
    if (total <= 1) return 0.0f;
    // torch.linspace(0, r, n)[k] in float32: start + k * (end - start) / (n - 1) for the first
    // half, end - (n-1-k) * step for the second half (what ATen does); within 1 ulp either way.
    float step = c->drop_path_rate / (float)(total - 1);
    return k < total / 2 ? step * (float)k : c->drop_path_rate - step * (float)(total - 1 - k);
}

int swinmae_config_to_json(const swinmae_config *c, char *out, size_t n) {
    char dpr[32];
    config_float_str(dpr, sizeof dpr, c->drop_path_rate);
    int w = snprintf(out, n,
                     "{\"img_size\":%d,\"patch_size\":%d,\"in_chans\":%d,\"embed_dim\":%d,"
                     "\"depths\":[%d,%d,%d,%d],\"num_heads\":[%d,%d,%d,%d],\"window\":%d,"
                     "\"mlp_ratio\":%d,\"drop_path_rate\":%s}",
                     c->img_size, c->patch_size, c->in_chans, c->embed_dim, c->depths[0], c->depths[1],
                     c->depths[2], c->depths[3], c->num_heads[0], c->num_heads[1], c->num_heads[2],
                     c->num_heads[3], c->window, c->mlp_ratio, dpr);
    return (w < 0 || (size_t)w >= n) ? -1 : 0;
}

void swinmae_config_describe(const swinmae_config *c, char *out, size_t n) {
    snprintf(out, n, "img %d patch %d in %d C %d depths %d,%d,%d,%d heads %d,%d,%d,%d window %d mlp %d dpr %g",
             c->img_size, c->patch_size, c->in_chans, c->embed_dim, c->depths[0], c->depths[1], c->depths[2],
             c->depths[3], c->num_heads[0], c->num_heads[1], c->num_heads[2], c->num_heads[3], c->window,
             c->mlp_ratio, (double)c->drop_path_rate);
}

// ---- parsing ----------------------------------------------------------------------------------

int swinmae_config_parse(swinmae_config *cfg, const char *text, const char *what) {
    swinmae_config c = *cfg;
    config_cursor cur;
    config_cursor_init(&cur, text, what);
    char key[64];
    int got;
    while ((got = config_next_key(&cur, key, sizeof key)) > 0) {
        int *list = NULL;
        if (!strcmp(key, "depths")) list = c.depths;
        else if (!strcmp(key, "num_heads") || !strcmp(key, "heads")) list = c.num_heads;
        if (list) {
            int bracket = *cur.p == '[';
            if (bracket) cur.p++;
            for (int i = 0; i < SWINMAE_STAGES; i++) {
                double v;
                if (config_number(&cur, key, &v) || config_int(v, &list[i], what, key)) return -1;
                cur.p = config_skip_ws(cur.p);
                if (i + 1 < SWINMAE_STAGES) {
                    if (bracket ? *cur.p != ',' : (*cur.p != '/' && *cur.p != 'x'))
                        return as_fail("%s: config key '%s' needs %d values, e.g. [2,2,2,2] or 2/2/2/2", what,
                                       key, SWINMAE_STAGES);
                    cur.p++;
                }
            }
            if (bracket) {
                if (*cur.p != ']')
                    return as_fail("%s: config key '%s' needs exactly %d values", what, key, SWINMAE_STAGES);
                cur.p++;
            }
        } else {
            double v;
            if (config_number(&cur, key, &v)) return -1;
            int *ip = NULL;
            if (!strcmp(key, "img_size")) ip = &c.img_size;
            else if (!strcmp(key, "patch_size")) ip = &c.patch_size;
            else if (!strcmp(key, "in_chans")) ip = &c.in_chans;
            else if (!strcmp(key, "embed_dim")) ip = &c.embed_dim;
            else if (!strcmp(key, "window") || !strcmp(key, "window_size")) ip = &c.window;
            else if (!strcmp(key, "mlp_ratio")) ip = &c.mlp_ratio;
            else if (!strcmp(key, "drop_path_rate")) c.drop_path_rate = (float)v;
            else
                return as_fail("%s: unknown config key '%s' (known: img_size patch_size in_chans embed_dim depths "
                               "num_heads window mlp_ratio drop_path_rate)",
                               what, key);
            if (ip && config_int(v, ip, what, key)) return -1;
        }
        if (config_end_value(&cur, key)) return -1;
    }
    if (got < 0) return -1;
    if (swinmae_config_check(&c)) return config_check_failed(what);
    *cfg = c;
    return 0;
}
