// What a training run records about itself, and its JSON: the options (the run's record, and
// what --resume reads back) and the state --resume needs besides the parameters and the AdamW
// moments. Both live in RUN/resume.safetensors as metadata (train/checkpoint_io.h), which is why
// they are apart from the trainer: the trainer writes checkpoints, the checkpoint files hold these.
#ifndef ANOSWIN_TRAIN_TRAIN_STATE_H
#define ANOSWIN_TRAIN_TRAIN_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "data/nyul.h"    // nyul_standard
#include "model/model.h"  // model_shape

typedef struct train_options {
    char method[32];        // the model's method (model/model.h)
    char config[1024];      // its config JSON, as the method writes it (train_options_set_config)
    model_shape shape;      // the input geometry the config fixes
    int epochs, batch;
    double lr, min_lr, warmup_epochs;
    double mask_ratio;
    int mask_unit;          // px; 0 = 4 patches (16 px at patch 4)
    int mask_brain;         // 1: mask only brain units (the paper); 0: anywhere (reference code)
    double brain_cover;     // brain unit threshold (fraction of the unit's pixels)
    int drop_path;          // 1: the method's stochastic regularisation (DropPath) during training
    uint64_t seed;
    int threads;            // 0: leave as is
    int precision;          // NN_FP32 or NN_BF16 (nn/nn.h): the GEMMs' operands; a training option
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
    int nyul;  // 1: standardise intensities (data/nyul.h), 0: min-max only (the paper)
    // Data-parallel ranks the run trains with (set by train_run from dist_size(); `batch` is
    // per rank, the global batch is ranks * batch). --resume needs the same number of ranks.
    int ranks;
    // What the data looks like (data/fingerprint.h), as JSON, recorded in every model checkpoint
    // (NULL: none). Measured from the data each time it is loaded, so not stored in the run.
    const char *fingerprint;
    // The intensity standard measured on the data when nyul is set (train_data_load), given to
    // the model and so to every checkpoint. Measured each time, like the fingerprint.
    nyul_standard nyul_std;
} train_options;

// The defaults: the default method with its default config.
void train_options_default(train_options *o);
// Applies `text` (the method's config JSON or "key=value,..." overrides) on top of o->config.
// Errors name `what`.
int train_options_set_config(train_options *o, const char *text, const char *what);
// Options <-> the JSON stored in the run (errors name `what`).
int train_options_to_json(const train_options *o, char *out, size_t n);
int train_options_from_json(train_options *o, const char *json, const char *what);

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

#endif
