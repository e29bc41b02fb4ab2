// One interface for every anomaly-detection method (Swin MAE today; VAE, f-AnoGAN, ViT MAE,
// autoDDPM to come): a small table of functions each method fills in its own folder
// (src/model/<method>/), and a registry that finds a method by the type tag its checkpoints
// carry. Training, detection, evaluation and the CLI talk to a `model` through this table only,
// so a new method touches its folder, one registry line and its tests.
//
// Checkpoints name their method in the metadata key "anoswin.method"; a file without it (written
// before the tag existed, or converted from PyTorch) is a Swin MAE.
#ifndef ANOSWIN_MODEL_MODEL_H
#define ANOSWIN_MODEL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "data/nyul.h"       // nyul_standard
#include "data/slices.h"     // slice_options
#include "io/safetensors.h"  // st_file, st_kv
#include "model/params.h"    // param_table

typedef struct model_method model_method;

// A named config of a method ("tiny" for smoke runs and tests): the text goes to config_parse.
typedef struct model_preset {
    const char *name, *config;
} model_preset;

// A method's training recipe from its own paper or code: what `anoswin experiment` trains it with
// when the user gives no --epochs/--batch. Zero fields take train's defaults (the Swin MAE's).
typedef struct model_recipe {
    int epochs;
    int batch, batch_t1;  // images per step; batch_t1 (0: batch) when training on T1 scans
    double lr;            // peak learning rate (0: train's default)
    int constant_lr;      // 1: no warm-up and no decay (the authors' plain Adam)
    const char *source;   // where these values come from, for people
    const model_preset *presets;  // named configs, ended by {NULL, NULL} (may be NULL)
} model_recipe;

// The input geometry a config fixes: images (B, in_chans, img_size, img_size); masks for
// training and detection come in whole patch_size x patch_size tokens.
typedef struct model_shape {
    int img_size, in_chans, patch_size;
} model_shape;

typedef struct model {
    const model_method *method;
    void *impl;                 // the method's own state
    const param_table *table;   // (name, shape) of every parameter: safetensors I/O, AdamW, counts
    float *params;              // table->n_floats
    float *grads;               // table->n_floats; NULL for inference
    int img_size, in_chans;     // input images (B, in_chans, img_size, img_size) in [0, 1]
    int patch_size;             // token side in px: masks for detection come in whole tokens
    int max_batch;
    // The intensity standard the model was trained with (data/nyul.h; .on = 0: none): every scan
    // it reads goes through it, so it travels with the weights (checkpoint metadata NYUL_KEY).
    nyul_standard intensity;
} model;

struct model_method {
    const char *name;   // the type tag ("swinmae")
    const char *title;  // for people ("Swin MAE")
    // 1: the method reconstructs the whole image and ignores token masks (VAE, f-AnoGAN), so
    // detection runs it once per slice and scores its residual, instead of once per window.
    int whole_image;
    // The config JSON of `text` (the method's JSON, or a "key=value,..." override list; NULL: no
    // overrides) applied on top of `base` (a config JSON; NULL: the defaults), validated, and its
    // shape (may be NULL). Errors name `what`.
    int (*config_parse)(const char *base, const char *text, char *out, size_t n, model_shape *shape,
                        const char *what);
    // One line describing the model's config.
    void (*describe)(const model *m, char *out, size_t n);
    // From the method's config JSON (NULL: the default config). training: gradients and what
    // backward needs are allocated. Errors name `what`.
    int (*create)(model *m, const char *config_json, int max_batch, int training, const char *what);
    void (*free)(model *m);
    int (*config_to_json)(const model *m, char *out, size_t n);
    // Fresh parameters for training, a pure function of the seed.
    void (*init_params)(model *m, uint64_t seed);
    // The config JSON of an open checkpoint of this method (inferred from tensor shapes where the
    // file has no config metadata). Errors name the file.
    int (*checkpoint_config)(const st_file *f, char *out, size_t n);
    // One training batch: forward, loss, and grads += d loss / d params. token_mask (B, L) uint8,
    // 1 = hidden (methods that do not mask ignore it); drop_seed seeds the method's stochastic
    // regularisation, applied when drop_path is 1. Returns the loss.
    float (*train_batch)(model *m, const float *images, const uint8_t *token_mask, int B, int drop_path,
                         uint64_t drop_seed);
    // Optional (NULL: the trainer applies its AdamW to train_batch's gradients): a method that
    // trains with its own optimisers and stages (f-AnoGAN) takes whole steps here: step `step` of
    // a run of `total` steps on B images (gradients and parameter updates), seed drawing its
    // randomness. Its optimiser moments live in opt_m, opt_v (table->n_floats each, zero at the
    // start of a run), which the trainer saves and restores with the run, so that a resumed run
    // repeats an uninterrupted one. Returns the step's loss. One process only (no allreduce).
    float (*train_step)(model *m, const float *images, int B, long step, long total, uint64_t seed, float *opt_m,
                        float *opt_v);
    // Detection: the reconstruction out (B, in_chans, H, W) of images whose tokens under
    // token_mask are hidden (or noised); valid at the hidden tokens at least. Returns the loss
    // there. B <= max_batch.
    float (*reconstruct)(model *m, float *out, const float *images, const uint8_t *token_mask, int B);
    // Evaluation without stochastic regularisation: the reconstruction out (B, in_chans, H, W) at
    // every pixel (out NULL: the loss only) of images whose tokens under token_mask are hidden (or
    // noised); returns the loss at the hidden tokens. Training's validation and previews, and
    // `anoswin reconstruct`. B <= max_batch.
    float (*predict)(model *m, float *out, const float *images, const uint8_t *token_mask, int B);
    // Optional (NULL: the method has none): the attention maps of the paper's A.2 for one unmasked
    // image (1, in_chans, H, W): for encoder stage s < max, the channel mean of its output on its
    // res[s] x res[s] token grid into maps[s] (img_size^2 floats each). Returns the stages written.
    int (*stage_maps)(model *m, const float *image, float **maps, int *res, int max);
    // FLOPs per image of a forward pass (training = 0) or a training step (1).
    double (*flops_per_image)(const model *m, int training);
    // Optional (NULL: the method has none): the encoder's latent of each image, the vector the
    // latent analysis (src/latent/) projects: out (B, n) for images whose tokens under token_mask
    // are hidden (evaluation mode). Returns n, the latent's length; out NULL: only n. B <=
    // max_batch.
    int (*latent)(model *m, float *out, const float *images, const uint8_t *token_mask, int B);
    // Optional (NULL: the method has none): the method's own anomaly score of each whole image,
    // higher = more anomalous, into score (B), for unmasked images in evaluation mode (f-AnoGAN's
    // izi_f score); image_score_name says what it is. B <= max_batch.
    void (*image_score)(model *m, float *score, const float *images, int B);
    const char *image_score_name;
    // Optional (NULL: train's defaults, no presets): the method's training recipe.
    const model_recipe *recipe;
};

// The method of a tag, or NULL.
const model_method *model_method_find(const char *name);
// The method of an open checkpoint: its "anoswin.method" tag, the Swin MAE when untagged; NULL
// with a message naming the file for an unknown tag.
const model_method *model_method_of_checkpoint(const st_file *f);
// The same for a checkpoint file (reads its header only); NULL with a message naming the file.
const model_method *model_method_of_file(const char *checkpoint);

// The method of a tag, or NULL with a message naming `what`.
const model_method *model_method_get(const char *name, const char *what);
// The default method (what untagged checkpoints are).
const model_method *model_method_default(void);
// The registered methods, in registry order: method i < model_method_count(), else NULL.
int model_method_count(void);
const model_method *model_method_at(int i);
// The config text of a method's preset `name`, or NULL when it has none of that name.
const char *model_preset_find(const model_method *mm, const char *name);
// The names of a method's presets, comma-separated ("" when none).
void model_preset_names(const model_method *mm, char *out, size_t n);

// Creates a model of the named method (errors name `what`).
int model_create(model *m, const char *method, const char *config_json, int max_batch, int training,
                 const char *what);
void model_free(model *m);
// Reads a checkpoint's method and config, creates an inference model for batches of up to
// max_batch and loads the weights strictly. Errors name the file.
int model_load(model *m, const char *checkpoint, int max_batch);
// model_load with settings ("key=value,...", NULL or "": none) applied on top of the checkpoint's
// config, for a method's inference settings (autoDDPM's sampler, noise levels); a setting that
// changes a parameter's shape fails the strict load, naming the tensor.
int model_load_with(model *m, const char *checkpoint, int max_batch, const char *settings);
// Writes the parameters (loadable strictly in PyTorch) with the method tag, the config and
// `extra` metadata (may be NULL / 0).
int model_save(const model *m, const char *path, const st_kv *extra, int n_extra);
// What the model fixes of the slice pipeline, set in so: its input size and its intensity
// standard. Every path that feeds scans to a model goes through this.
void model_slice_options(const model *m, slice_options *so);
// The model's config JSON (errors: buffer too small).
int model_config_json(const model *m, char *out, size_t n);
// checkpoint_config for a method whose files must carry their config (the tensor shapes do not fix
// it): the "anoswin.config" metadata, as model_save writes it, through the method's config_parse.
// kind names the method in the error ("a VAE").
int model_config_of_metadata(const st_file *f, const char *kind,
                             int (*config_parse)(const char *base, const char *text, char *out, size_t n,
                                                 model_shape *shape, const char *what),
                             char *out, size_t n);
// Tokens per image ((img_size / patch_size)^2): the length of a token mask.
static inline int model_tokens(const model *m) {
    return (m->img_size / m->patch_size) * (m->img_size / m->patch_size);
}
// Zeroes the gradients before a training batch (train_batch adds to them).
void model_zero_grad(model *m);

#endif
