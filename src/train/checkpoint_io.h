// The training run's files: model checkpoints (model/checkpoint.h, loadable strictly in
// PyTorch) with the training position as metadata, and the single resume file
// (RUN/resume.safetensors): tensors "params" (n_floats, the flat parameter buffer), "adamw.m",
// "adamw.v" (n_floats each), metadata "anoswin.method", "anoswin.config", "anoswin.options" (train options JSON),
// "anoswin.state" (train_state JSON), "adamw.step". One file, written atomically, so a kill at
// any moment leaves either the previous or the new resume point, never a mix.
#ifndef ANOSWIN_TRAIN_CHECKPOINT_IO_H
#define ANOSWIN_TRAIN_CHECKPOINT_IO_H

#include <stddef.h>

#include "model/model.h"
#include "train/adamw.h"
#include "train/train_state.h"  // train_state

// fingerprint: the training data's (data/fingerprint.h) JSON, or NULL.
int run_save_model(const char *path, const model *m, const train_state *st, const char *fingerprint);
int run_save_resume(const char *path, const model *m, const adamw *opt, const char *options_json,
                    const train_state *st);
// Loads parameters, AdamW moments and step, and the state; checks the config matches m's.
int run_load_resume(const char *path, model *m, adamw *opt, train_state *st);
// The options and state JSON of a resume file.
int run_read_metadata(const char *path, char *options, size_t n_options, char *state, size_t n_state);

#endif
