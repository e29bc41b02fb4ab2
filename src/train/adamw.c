#include "train/adamw.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"  // as_calloc, as_realloc

adamw_hparams adamw_hparams_default(void) {
    adamw_hparams h = {.beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.05};
    return h;
}

void adamw_init(adamw *o, size_t n, adamw_hparams h) {
    memset(o, 0, sizeof *o);
    o->h = h;
    o->n = n;
    o->m = as_calloc(n ? n : 1, sizeof(float));
    o->v = as_calloc(n ? n : 1, sizeof(float));
}

void adamw_add_span(adamw *o, size_t offset, size_t count) {
    if (count == 0) return;
    if (o->num_spans > 0 && o->spans[o->num_spans - 1][1] == offset) {
        o->spans[o->num_spans - 1][1] = offset + count;  // adjacent: merge
        return;
    }
    o->spans = as_realloc(o->spans, sizeof(*o->spans) * (size_t)(o->num_spans + 1));
    o->spans[o->num_spans][0] = offset;
    o->spans[o->num_spans][1] = offset + count;
    o->num_spans++;
}

size_t adamw_num_trainable(const adamw *o) {
    size_t t = 0;
    for (int s = 0; s < o->num_spans; s++) t += o->spans[s][1] - o->spans[s][0];
    return t;
}

void adamw_reset(adamw *o) {
    memset(o->m, 0, o->n * sizeof(float));
    memset(o->v, 0, o->n * sizeof(float));
    o->step = 0;
}

void adamw_free(adamw *o) {
    free(o->m);
    free(o->v);
    free(o->spans);
    memset(o, 0, sizeof *o);
}

void adamw_update(adamw *o, float *params, const float *grads, double lr) {
    o->step++;
    // Scalars are formed in double and rounded to float once, as torch does with Python
    // scalars on float32 tensors. The element-wise expressions follow torch 1.13's CPU kernels
    // operation by operation (mul_ then add_/addcmul_ as a fused multiply-add, addcdiv_ as
    // p + (value*m)/denom), which makes the result bit-identical to torch.optim.AdamW here.
    const float decay = (float)(1.0 - lr * o->h.weight_decay);
    const float b1 = (float)o->h.beta1, one_minus_b1 = (float)(1.0 - o->h.beta1);
    const float b2 = (float)o->h.beta2, one_minus_b2 = (float)(1.0 - o->h.beta2);
    const double bc1 = 1.0 - pow(o->h.beta1, (double)o->step);
    const double bc2 = 1.0 - pow(o->h.beta2, (double)o->step);
    const float step_size = (float)(lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
    const float eps = (float)o->h.eps;
    float *m = o->m, *v = o->v;
    for (int s = 0; s < o->num_spans; s++) {
        const size_t begin = o->spans[s][0], end = o->spans[s][1];
#pragma omp parallel for schedule(static)
        for (size_t i = begin; i < end; i++) {
            float g = grads[i];
            float p = params[i] * decay;
            float mi = fmaf(one_minus_b1, g, m[i] * b1);
            float vi = fmaf(one_minus_b2 * g, g, v[i] * b2);
            float denom = sqrtf(vi) / bc2_sqrt + eps;
            m[i] = mi;
            v[i] = vi;
            params[i] = p + (-step_size * mi) / denom;
        }
    }
}

double lr_schedule(double epoch, double base_lr, double min_lr, double warmup_epochs, double epochs) {
    if (epoch < warmup_epochs) return base_lr * epoch / warmup_epochs;
    double span = epochs - warmup_epochs;
    double t = span > 0 ? (epoch - warmup_epochs) / span : 1.0;
    if (t > 1.0) t = 1.0;
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + cos(M_PI * t));
}
