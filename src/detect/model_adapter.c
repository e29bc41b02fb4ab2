// The model adapter for the anomaly-map callback (see model_adapter.h).
#include "detect/model_adapter.h"

#include "util/error.h"  // as_fail

int amap_model_run(void *vctx, float *recon, const float *images, const uint8_t *token_mask, int B) {
    amap_model_ctx *ctx = vctx;
    model *m = ctx->model;
    int S = m->img_size, P = m->patch_size, C = m->in_chans, G = S / P, L = G * G;
    size_t img_floats = (size_t)C * S * S;
    for (int first = 0; first < B; first += m->max_batch) {
        int nb = B - first < m->max_batch ? B - first : m->max_batch;
        const float *in = images + (size_t)first * img_floats;
        const uint8_t *tm = token_mask + (size_t)first * L;
        float *out = recon + (size_t)first * img_floats;
        // The map and the composite read the prediction at the masked tokens only (everywhere for
        // a whole-image method).
        m->method->reconstruct(m, out, in, tm, nb);
        ctx->forwards += nb;
        if (!ctx->composite) continue;
        for (int b = 0; b < nb; b++)
            for (int t = 0; t < L; t++) {
                if (!tm[(size_t)b * L + t] && !m->method->whole_image) continue;
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

void amap_params_for_model(amap_params *p, const model *m) {
    p->patch = m->patch_size;
    p->max_batch = m->max_batch;
    p->whole_image = m->method->whole_image;
}

int amap_check_model(const model *m, int size, int window, const char *what) {
    if (m->in_chans != 1 && m->in_chans != 3)
        return as_fail("%s: the model takes %d input channels; grey MRI slices need 1 or 3 (grey repeated)", what,
                       m->in_chans);
    if (m->img_size != size)
        return as_fail("%s: the model takes %dx%d images, the input is %dx%d", what, m->img_size, m->img_size,
                       size, size);
    // a whole-image method reads no mask: one window, the slice (anomaly_map.h)
    if (!m->method->whole_image && (window < m->patch_size || window % m->patch_size || window > m->img_size))
        return as_fail("%s: a %d px mask does not fit the model (patch %d px, image %d px)", what, window,
                       m->patch_size, m->img_size);
    return 0;
}
