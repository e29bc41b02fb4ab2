// AdamW on the flat parameter buffer, with torch.optim.AdamW's semantics (decoupled weight
// decay applied before the moment update, bias correction), and the MAE learning-rate schedule.
//
// Only the trainable spans of the buffer are touched (the frozen pos_embed and the
// relative_position_index buffers are skipped): the caller lists them with adamw_add_span,
// normally once per trainable table entry (adjacent spans are merged).
#ifndef ANOSWIN_TRAIN_ADAMW_H
#define ANOSWIN_TRAIN_ADAMW_H

#include <stddef.h>

typedef struct adamw_hparams {
    double beta1, beta2, eps, weight_decay;
} adamw_hparams;

typedef struct adamw {
    adamw_hparams h;
    size_t n;       // size of the whole flat buffer (params, grads, m, v all have n floats)
    float *m, *v;   // first and second moments (n); zero outside the trainable spans
    long step;      // steps taken so far (torch's state['step'])
    int num_spans;
    size_t (*spans)[2];  // trainable [begin, end) offsets, sorted, merged
} adamw;

// The paper's setting: betas (0.9, 0.95), eps 1e-8, weight decay 0.05.
adamw_hparams adamw_hparams_default(void);

void adamw_init(adamw *o, size_t n, adamw_hparams h);
// Marks params[offset .. offset+count) trainable. Spans must be added in increasing order.
void adamw_add_span(adamw *o, size_t offset, size_t count);
size_t adamw_num_trainable(const adamw *o);
// Clears the moments and the step count (a fresh optimizer).
void adamw_reset(adamw *o);
void adamw_free(adamw *o);

// One step at learning rate lr: for every trainable element
//   p *= 1 - lr*wd;  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;
//   p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
// params, grads (n).
void adamw_update(adamw *o, float *params, const float *grads, double lr);
// 0: the portable loop even where the CPU has AVX-512F (tests compare the two, bit for bit);
// 1 (default): the AVX-512 loop where the CPU has it.
void adamw_allow_avx512(int on);

// MAE's lr_sched.adjust_learning_rate: `epoch` is fractional (epoch + step/steps_per_epoch).
// Linear warm-up from 0 over warmup_epochs, then a half-cosine from base_lr down to min_lr at
// `epochs`.
double lr_schedule(double epoch, double base_lr, double min_lr, double warmup_epochs, double epochs);

#endif
