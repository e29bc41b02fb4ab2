// libanoswin: anomaly detection in brain MRI with masked autoencoders (the Swin MAE of
// Ano-swinMAE; a method is chosen by the checkpoint). This small header is the library's whole
// public surface: data sets, models, training, detection and evaluation, each as the CLI does it
// (`anoswin data list | train | detect | eval`), with the CLI's defaults.
//
// Conventions: functions returning int return 0 on success and -1 on failure; anoswin_error()
// then says why, naming the file at fault. Paths are NIfTI files (.nii, .nii.gz), folders in a
// known layout (BraTS21, benchmark, WMH, MSLUB, IXI) or manifest CSVs. Not thread-safe: one
// call at a time per process (computations are parallel inside; see anoswin_set_threads).
#ifndef ANOSWIN_H
#define ANOSWIN_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---- library ------------------------------------------------------------------------------------
const char *anoswin_version(void);
// The message of the last failure ("" when none).
const char *anoswin_error(void);
// Threads of the computations (0: all cores).
void anoswin_set_threads(int threads);
// The input guard of anoswin_detect (as `anoswin detect --force`): 0 (the default) prints each
// way a scan differs from the model's training data on stderr ("anoswin: warning: SCAN: ...");
// 1 prints nothing. Either way anoswin_detection and summary.json list the differences.
void anoswin_set_force(int force);

// ---- data sets ----------------------------------------------------------------------------------
typedef struct anoswin_dataset anoswin_dataset;

// The subjects of a folder or manifest in one modality ("t1", "t2", "flair"; NULL: "t2").
anoswin_dataset *anoswin_dataset_open(const char *path, const char *modality);
void anoswin_dataset_free(anoswin_dataset *d);
int anoswin_dataset_size(const anoswin_dataset *d);
// Subject i (0 <= i < size): its id, scan, lesion label and brain mask ("" when absent).
const char *anoswin_dataset_id(const anoswin_dataset *d, int i);
const char *anoswin_dataset_image(const anoswin_dataset *d, int i);
const char *anoswin_dataset_label(const anoswin_dataset *d, int i);
const char *anoswin_dataset_brain_mask(const anoswin_dataset *d, int i);

// ---- models -------------------------------------------------------------------------------------
typedef struct anoswin_model anoswin_model;

// A checkpoint (.safetensors from anoswin train, or converted from PyTorch) for inference on
// batches of up to max_batch images.
anoswin_model *anoswin_model_load(const char *checkpoint, int max_batch);
void anoswin_model_free(anoswin_model *m);
const char *anoswin_model_method(const anoswin_model *m);  // e.g. "swinmae"
int anoswin_model_image_size(const anoswin_model *m);      // side of the model grid in pixels
size_t anoswin_model_parameters(const anoswin_model *m);   // trainable parameters

// ---- training -----------------------------------------------------------------------------------
typedef struct anoswin_train_settings {
    const char *data;      // healthy scans (split 'healthy' or 'train', else all unlabelled)
    const char *modality;  // NULL: "t2"
    const char *out;       // run folder (created; must not hold a run)
    const char *config;    // model config ("key=value,..." or JSON; NULL: the paper's)
    int epochs, batch;     // 0: the defaults (400, 10)
    long max_steps;        // 0: no limit
    int quiet;             // no progress lines
    const char *intensity;  // NULL or "minmax" (the paper's), or "nyul": `anoswin train --intensity`
} anoswin_train_settings;

// Trains and writes RUN/last.safetensors (and the rest of `anoswin train`'s run folder).
int anoswin_train(const anoswin_train_settings *s);

// ---- detection ----------------------------------------------------------------------------------
typedef struct anoswin_detection {
    int slices;                // axial slices scored
    int components;            // connected lesion components in the final mask
    long long lesion_voxels;
    double lesion_ml;
    // The input guard, as `anoswin detect`'s: how the scan differs from what the model was
    // trained on (modality, grid, voxel size, a head rather than a brain, intensities), one
    // sentence each; findings on such a scan may mean nothing. 0 when it looks like the
    // training data, or when the checkpoint records no training data (an older or converted one).
    int warnings;
    char warning[8][320];
} anoswin_detection;

// Detects lesions in one scan (brain_mask may be NULL: image > 0) and writes out_dir/ as
// `anoswin detect` does for one subject (anomaly_map, reconstruction, mask, summary.json). preset:
// "brats", "mslub" or "wmh" (the paper's post-processing), or "calibrated" with `calibration` (a
// file from `anoswin calibrate` with detect's default map settings). r may be NULL.
int anoswin_detect(anoswin_model *m, const char *image, const char *brain_mask, const char *out_dir,
                   const char *preset, const char *calibration, anoswin_detection *r);

// ---- evaluation ---------------------------------------------------------------------------------
// Evaluates detect outputs (pred_dir/<subject>/) against the labelled subjects of `data` and
// writes the report to out_dir (report.{md,csv,json,html}) like `anoswin eval`.
int anoswin_eval(const char *pred_dir, const char *data, const char *modality, const char *out_dir);

#ifdef __cplusplus
}
#endif

#endif
