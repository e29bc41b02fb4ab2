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

#include "model/config.h"
#include "train/masking.h"

// Slices at model size, in memory.
typedef struct slice_set {
    int n, size;     // n slices of size x size
    float *img;      // (n, size, size) in [0, 1]
    uint8_t *brain;  // (n, size, size) 1 = brain
} slice_set;

void slice_set_append(slice_set *s, const float *img, const uint8_t *brain, int n, int size);
void slice_set_free(slice_set *s);

typedef struct train_options {
    swinmae_config cfg;
    int epochs, batch;
    double lr, min_lr, warmup_epochs;
    double mask_ratio;
    int mask_unit;          // px; 0 = 4 patches (16 px at patch 4)
    int mask_brain;         // 1: mask only brain units (the paper); 0: anywhere (reference code)
    double brain_cover;     // brain unit threshold (fraction of the unit's pixels)
    int drop_path;          // 1: DropPath at cfg.drop_path_rate during training
    uint64_t seed;
    int threads;            // 0: leave as is
    int save_every;         // epochs between numbered checkpoints (0: none)
    int recon_count;        // slices per reconstruction PNG (0: none)
    long max_steps;         // stop (and save) once the global step reaches this (0: no limit)
    int quiet;              // no progress lines
    const char *out_dir;
    // Data settings: not used by train_run, but stored in the run so that --resume reloads the
    // same slices (see train_load_options).
    char data[4096], modality[16];
    int z_first, z_last;
    double val_fraction;
    // Data-parallel ranks the run trains with (set by train_run from dist_size(); `batch` is
    // per rank, the global batch is ranks * batch). --resume needs the same number of ranks.
    int ranks;
} train_options;

void train_options_default(train_options *o);
// Reads the options stored in RUN/resume.safetensors into *o (out_dir is left as is).
int train_load_options(train_options *o, const char *out_dir);
// Options <-> the JSON stored in the run (errors name `what`).
int train_options_to_json(const train_options *o, char *out, size_t n);
int train_options_from_json(train_options *o, const char *json, const char *what);

typedef struct train_result {
    long global_step;
    int epoch;               // epochs completed
    double last_train_loss;  // mean over the last completed epoch (or partial epoch)
    double last_val_loss;    // NAN when no validation set
    double best_val_loss;
    int interrupted;         // stopped by SIGINT/SIGTERM (state saved)
    double img_per_s;
} train_result;

// What --resume needs besides the parameters and the AdamW moments.
typedef struct train_state {
    long global_step;         // steps done
    double best_val;          // lowest validation loss so far (inf when none)
    int best_epoch;           // its epoch (1-based; -1 when none)
    double elapsed;           // training seconds so far
    double loss_sum;          // running sum / count of the current epoch's step losses
    long loss_count;
    int n_train, n_val;       // slices seen by the run, and a hash of their contents
    uint64_t data_hash;
} train_state;

int train_state_to_json(const train_state *s, char *out, size_t n);
int train_state_from_json(train_state *s, const char *json, const char *what);

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
