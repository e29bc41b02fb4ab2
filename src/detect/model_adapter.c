// Swin MAE adapter for the anomaly-map callback (see model_adapter.h).
#include "detect/model_adapter.h"

#include <stdio.h>
#include <string.h>

#include "model/checkpoint.h"
#include "util/error.h"  // as_fail

int amap_model_swinmae(void *vctx, float *recon, const float *images, const uint8_t *token_mask, int B) {
    amap_model_ctx *ctx = vctx;
    swinmae *m = ctx->model;
    const swinmae_config *c = &m->cfg;
    int S = c->img_size, P = c->patch_size, C = c->in_chans, G = S / P, L = G * G;
    size_t img_floats = (size_t)C * S * S;
    for (int first = 0; first < B; first += m->max_batch) {
        int nb = B - first < m->max_batch ? B - first : m->max_batch;
        const float *in = images + (size_t)first * img_floats;
        const uint8_t *tm = token_mask + (size_t)first * L;
        float *out = recon + (size_t)first * img_floats;
        // Eval mode (DropPath off; the reference forgot this). The map and the composite read the
        // prediction at the masked tokens only, so the last decoder stage runs only there.
        swinmae_forward_masked(m, in, tm, nb);
        swinmae_unpatchify(c, swinmae_pred(m), out, nb);
        ctx->forwards += nb;
        if (!ctx->composite) continue;
        for (int b = 0; b < nb; b++)
            for (int t = 0; t < L; t++) {
                if (!tm[(size_t)b * L + t]) continue;
                int y0 = (t / G) * P, x0 = (t % G) * P;
                for (int y = y0; y < y0 + P; y++)
                    for (int x = x0; x < x0 + P; x++) {
                        float v = 0;
                        for (int ch = 0; ch < C; ch++) v += out[((size_t)b * C + ch) * S * S + (size_t)y * S + x];
                        ctx->composite[(size_t)y * S + x] = v / C;
                    }
            }
    }
    return 0;
}

void amap_params_for_model(amap_params *p, const swinmae *m) {
    p->patch = m->cfg.patch_size;
    p->max_batch = m->max_batch;
}

int amap_check_model(const swinmae_config *cfg, int size, int window, const char *what) {
    if (cfg->in_chans != 1 && cfg->in_chans != 3)
        return as_fail("%s: the model takes %d input channels; grey MRI slices need 1 or 3 (grey repeated)", what,
                       cfg->in_chans);
    if (cfg->img_size != size)
        return as_fail("%s: the model takes %dx%d images, the input is %dx%d", what, cfg->img_size, cfg->img_size,
                       size, size);
    if (window < cfg->patch_size || window % cfg->patch_size || window > cfg->img_size)
        return as_fail("%s: a %d px mask does not fit the model (patch %d px, image %d px)", what, window,
                       cfg->patch_size, cfg->img_size);
    return 0;
}

int amap_load_model(swinmae *m, const char *checkpoint, int max_batch) {
    swinmae_config cfg;
    if (checkpoint_read_config(checkpoint, &cfg)) return -1;
    if (swinmae_create(m, &cfg, max_batch, 0)) {
        char why[512];
        snprintf(why, sizeof why, "%s", as_error());
        return as_fail("%s: %s", checkpoint, why);
    }
    if (checkpoint_load(checkpoint, &m->table, m->params)) {
        swinmae_free(m);
        return -1;
    }
    return 0;
}
