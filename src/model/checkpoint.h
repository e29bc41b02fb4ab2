// Model checkpoints as safetensors, driven by the parameter table: tensor names, order, shapes
// and dtypes equal the PyTorch reference's state_dict, so a file written here loads in PyTorch
// with load_state_dict(strict=True) and an authors' state_dict converted by
// tools/convert_checkpoint.py loads here.
//
// Metadata written: "format" = "pt", "anoswin.method" = "swinmae" (the type tag, model/model.h),
// "anoswin.config" = the config JSON (swinmae_config_to_json), plus any caller key/values (e.g.
// training state: "epoch", "step").
// Optimizer state belongs in a SEPARATE file (convention: "<run>/last.optim.safetensors",
// written by src/train with st_write: tensors "adamw.m" and "adamw.v" of n_floats each, and
// metadata such as "adamw.step"), so that the model file stays loadable strictly by PyTorch.
#ifndef ANOSWIN_MODEL_CHECKPOINT_H
#define ANOSWIN_MODEL_CHECKPOINT_H

#include "io/safetensors.h"
#include "model/swinmae/config.h"
#include "model/params.h"

// The metadata key of the type tag; checkpoints without it are Swin MAEs.
#define CHECKPOINT_METHOD_KEY "anoswin.method"

// Writes every table entry (F32 from params, I64 index buffers computed) atomically.
// extra may be NULL / 0; keys "format", "anoswin.method" and "anoswin.config" are reserved.
int checkpoint_save(const char *path, const param_table *t, const float *params, const st_kv *extra, int n_extra);
// The same for any method: its type tag and config JSON go into the metadata.
int checkpoint_save_method(const char *path, const char *method, const char *config_json, const param_table *t,
                           const float *params, const st_kv *extra, int n_extra);

// The model config of an open checkpoint: from "anoswin.config" when present, otherwise
// inferred from the tensor shapes (a file converted from PyTorch without metadata; the
// DropPath rate is then the paper's 0.1). Error names the file.
int checkpoint_config(const st_file *f, swinmae_config *cfg);
// Same, by path.
int checkpoint_read_config(const char *path, swinmae_config *cfg);

// Loads an open file into params (t->n_floats) with strict matching: every table tensor
// present with the same dtype and shape, no extra tensors, and each relative_position_index
// equal to the computed buffer (counters such as num_batches_tracked load with any value: the
// model keeps none, its BatchNorm uses a fixed momentum). Errors name the tensor and the file.
int checkpoint_load_file(const st_file *f, const param_table *t, float *params);
// Opens, loads, closes.
int checkpoint_load(const char *path, const param_table *t, float *params);

#endif
