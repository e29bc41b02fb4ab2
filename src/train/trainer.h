// The training loop of `anoswin train`: AdamW + warm-up/cosine schedule over shuffled healthy
// slices, masked MSE on window masks, a held-out validation loss each epoch, checkpoints,
// reconstructions as PNG, and exact resume.
//
// Run folder layout (RUN = options.out_dir):
//   RUN/log.csv                    one row per epoch: epoch,step,lr,train_loss,val_loss,img_per_s,elapsed_s
//   RUN/last.safetensors           model after the latest saved step (loads strictly in PyTorch)
//   RUN/best.safetensors           model with the lowest validation loss so far
//   RUN/epoch_NNNN.safetensors     model every `save_every` epochs
//   RUN/resume.safetensors         everything --resume needs, in ONE file (so that a kill at any
//                                  moment leaves a consistent pair): parameters, AdamW moments,
//                                  and the training state + options as metadata
//   RUN/recon/epoch_NNNN.png       a few validation slices: input | masked input |
//                                  reconstruction (prediction in the masked units) | raw prediction
// Every file is written atomically (temp file + fsync + rename).
//
// Reproducibility: every random choice is a pure function of (seed, position), never of a
// running generator, so a resumed run repeats an uninterrupted one exactly (same thread count):
//   epoch e's slice order      = permutation from rng_seed_stream(seed ^ SHUFFLE, e)
//   masks of global step t     = mask_generate(seed ^ MASK, stream t*batch + i) for sample i
//   DropPath of global step t  = seed drawn from rng_seed_stream(seed ^ DROP, t)
//   validation masks           = mask_generate(seed ^ VAL, stream = validation slice index)
// Steps per epoch = floor(n_train / batch) (the last partial batch is dropped, as MAE's loader).
#ifndef ANOSWIN_TRAIN_TRAINER_H
#define ANOSWIN_TRAIN_TRAINER_H

#include <stddef.h>
#include <stdint.h>

#include "train/train_state.h"  // train_options, train_state

// Slices at model size, in memory.
typedef struct slice_set {
    int n, size;     // n slices of size x size
    float *img;      // (n, size, size) in [0, 1]
    uint8_t *brain;  // (n, size, size) 1 = brain
} slice_set;

void slice_set_append(slice_set *s, const float *img, const uint8_t *brain, int n, int size);
void slice_set_free(slice_set *s);

typedef struct train_result {
    long global_step;
    int epoch;               // epochs completed
    double last_train_loss;  // mean over the last completed epoch (or partial epoch)
    double last_val_loss;    // NAN when no validation set
    double best_val_loss;
    int interrupted;         // stopped by SIGINT/SIGTERM (state saved)
    double img_per_s;
} train_result;

// Reads the options stored in RUN/resume.safetensors into *o (out_dir is left as is).
int train_load_options(train_options *o, const char *out_dir);

// Trains from scratch (resume = 0) or continues RUN/resume.safetensors (resume = 1; then the
// options stored in the run are used and only threads, max_steps and quiet are taken from *o).
// val may be NULL or empty (no validation loss, no best checkpoint).
// step_losses, when non-NULL, receives the loss of every step run by this call, indexed by
// global step (array of at least max_steps or epochs*steps_per_epoch entries).
int train_run(const train_options *o, const slice_set *train, const slice_set *val, int resume,
              train_result *res, float *step_losses);

// Installs SIGINT/SIGTERM handlers that ask train_run to stop after the current step (a second
// signal kills the process as usual). Returns the signal received so far (0 = none).
void train_install_signal_handlers(void);
int train_stop_signal(void);

#endif
