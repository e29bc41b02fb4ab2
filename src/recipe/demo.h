// The demo recipe: the whole mission on the embedded synthetic data (or a user's data set), in
// minutes on 2 cores: data synth -> train a demo-sized Swin MAE -> calibrate -> detect -> eval,
// each step a command line of this executable run by the recipes' step runner (step.h). See
// `anoswin demo --help` and docs/demo.md.
#ifndef ANOSWIN_RECIPE_DEMO_H
#define ANOSWIN_RECIPE_DEMO_H

#include "recipe/arglist.h"

// ---- the demo configuration (docs/demo.md: what and why; values in demo.c) ------------
// The residual of the demo's map (docs/demo.md: chosen on tuning sets).
#define DEMO_RESIDUAL "abs"

typedef struct demo_config {
    const char *name;
    int healthy, test;            // synthetic training set (healthy) and lesion test set
    int val_test, val_healthy;    // separate validation set: lesion subjects (val-threshold) and
                                  // healthy subjects (the detection threshold is calibrated on them)
    const char *model;            // --config of anoswin train (the Swin MAE)
    int img_size;                 // the model's image side (other methods: their default config at it)
    int epochs, batch, warmup_epochs;
    int epochs_fp32;              // epochs in fp32 (no AVX512-BF16, or --precision fp32); 0: epochs
    int epochs_fp32_data;         // the same for --data (a user's set: no 15-minute budget); 0: epochs_fp32
    double lr;
    int mask_size;                // training mask unit (px at the model grid)
    long max_steps;               // 0: none
    int window;                   // detection mask window (px at the model grid)
    int stride;                   // step of the window grid (px; = window: the paper's grid)
    const char *residual;         // "abs" (the paper) or "positive"
    const char *intensity;        // train --intensity: "nyul" (data/nyul.h, the demo's) or "minmax" (the paper)
    int healthy_test;             // held-out healthy scans, detected for their false-positive volume
    const char *train_slices[2];  // RAS axial range for training (z-first, z-last)
    const char *test_slices[2];   // RAS axial range scored by detect (z-first, z-last)
    int bootstrap;
} demo_config;

// The full demo and the --small one (CI).
extern const demo_config demo_full, demo_small;

// Appends the map options of calibrate and detect under cfg (modality, window and stride, residual,
// slice range, threads, precision): what the demo and `experiment profiles` detect with. A
// whole-image method (VAE, f-AnoGAN, autoDDPM) reads no mask: it gets neither the window nor the
// stride, which its own patch size may not divide.
void demo_map_options(arglist *a, const demo_config *cfg, int whole_image, const char *modality,
                      const char *precision, long threads);

typedef struct demo_options {
    const char *out;       // output folder
    double minutes;        // safety bound on training minutes
    long seed, threads;    // threads > 0
    int force;             // redo every step
    int small;             // demo_small instead of demo_full
    const char *data;      // a user's data set (healthy/ + test/), or NULL: synthetic data
    const char *modality;  // of --data
    const char *method;    // NULL: the Swin MAE; another method trains its default config at img_size
    const char *precision; // "fp32" or "bf16" for train, calibrate and detect; NULL: bf16 where the CPU
                           // has AVX512-BF16, else fp32 (docs/demo.md: why and what it changes)
    const char *intensity;  // train --intensity; NULL: the config's
} demo_options;

// Runs the recipe and prints its summary on stdout. Returns 0, or -1 with an error (after a
// SIGINT/SIGTERM, arg_interrupted() says which).
int demo_run(const demo_options *o);

#endif
