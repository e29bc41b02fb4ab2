// `anoswin detect` for one subject: slices on the model grid (slices.h), the coarse anomaly map of
// every slice in the axial range through the model (model/model.h) (anomaly_map.h, model_adapter.h), the A.1
// post-processing on the model grid (postproc.h, per slice), and the results back on the input's
// native grid and header (slices_to_native):
//
//   OUT/anomaly_map.nii.gz     float32 coarse map in [0,1] (linear back to the native grid; 0
//                              outside the evaluated slices)
//   OUT/reconstruction.nii.gz  float32, input intensities: inside every scored window what the
//                              model predicts there with that window masked; elsewhere the input
//   OUT/mask.nii.gz            uint8 0/1 final lesion mask (nearest neighbour back)
//   OUT/overlays/z<k>.png      slices with findings: input | reconstruction | map | mask overlay
//                              [| ground truth overlay]; anterior up, patient's left on the left
//   OUT/attention/z<k>_stage<s>.png  (attention_maps, methods with stage maps) channel mean of
//                              encoder stage s's output for the unmasked slice (paper A.2),
//                              min-max scaled, upsampled
//   OUT/summary.json           see detect_write_summary in detect.c; eval reads "slice_range"
//                              (RAS axial k range, inclusive), "seconds_per_slice", "parameters"
// Every file is written atomically.
#ifndef ANOSWIN_DETECT_DETECT_H
#define ANOSWIN_DETECT_DETECT_H

#include <stdint.h>

#include "data/fingerprint.h"
#include "data/slices.h"
#include "detect/anomaly_map.h"
#include "detect/calibrate.h"
#include "detect/postproc.h"
#include "model/model.h"

// Voxel false-positive rates on healthy scans for the calibrated thresholds (chosen on tuning
// sets, docs/detection.md).
#define DETECT_DEFAULT_FPR 2e-4
#define DETECT_DEFAULT_FPR_LOW 6e-3
// Gaussian sigma (model-grid px) of the normative calibration's mean and sd maps; 0: one global
// threshold (normative.h).
#define DETECT_DEFAULT_NORMATIVE_SIGMA 2.0f
#define DETECT_NORMATIVE_SD_FLOOR 0.02f
// Smoothing scales (px) of the multi-scale normative score (normative.h), chosen on tuning sets
// (docs/detection.md): the raw map and the map smoothed with sigma 3 px.
#define DETECT_DEFAULT_SCALES "0,3"

typedef struct detect_options {
    amap_params amap;        // window, grid (patch and batch are taken from the model)
    postproc_params post;    // A.1 parameters
    slice_options slices;    // axial range and normalisation (size is taken from the model)
    const char *preset;      // name recorded in the summary
    const char *checkpoint;  // path recorded in the summary and named in errors
    int attention_maps;      // write attention/ PNGs
    int overlays;            // write overlays/ PNGs (default 1)
    int verbose;             // progress on stderr
    int save_model_grid;     // also write OUT/model_grid_map.f32: the maps on the model grid, raw
                             // little-endian float32 (slices, S, S), [h][w] = RAS (i, j), and
                             // model_grid_brain.u8 / model_grid_label.u8 (0/1, same layout)
    const char *maps_from;   // read <maps_from>/<id>/model_grid_map.f32 instead of running the model
                             // (saved with the same settings and slice_norm 0; with slice_norm 1 each
                             // slice is divided by its maximum as amap_slice would); for trying
                             // post-processing settings on saved maps; the reconstruction is the input
    // calibrated mode (post.mode == POSTPROC_CALIBRATED): where the thresholds came from
    double fpr, fpr_low;     // voxel false-positive rates on healthy scans for threshold and low
    float normative_sigma;   // calibration: voxel-wise normative model (> 0) or one global threshold
    int n_scales;            // calibration: smoothing scales of the normative score (normative.h)
    float scales[NORMATIVE_MAX_SCALES];
    const calibration *calib;  // NULL when the thresholds were set by hand
    const char *calib_path;
    // The input guard (data/fingerprint.h): each scan is compared with the checkpoint's training
    // fingerprint (NULL: the checkpoint has none, nothing is checked) and each difference is one
    // warning line on stderr ("anoswin: warning: <scan>: <difference>"), unless force; the
    // summary records the differences either way, and whether they were forced.
    const fingerprint *guard;
    int force;
} detect_options;

void detect_options_default(detect_options *o);
// "0,2" -> o->scales / o->n_scales: 1..NORMATIVE_MAX_SCALES distinct values in 0..64 px. 0 or -1
// (as_fail naming the text).
int detect_parse_scales(detect_options *o, const char *text);

typedef struct detect_result {
    int slices, windows, slices_with_findings, components;
    int64_t lesion_voxels;
    double lesion_ml;
    double map_seconds, post_seconds, total_seconds;
    scan_print scan;  // the input guard's measurements of the scan
    int n_warnings;   // its differences from the training fingerprint
    char warnings[FP_MAX_WARNINGS][FP_WARNING_LEN];
} detect_result;

typedef struct detect_input {
    const char *id;     // subject id (output folder name)
    const char *image;  // NIfTI scan
    const char *mask;   // brain mask or NULL/"" (then image > 0)
    const char *label;  // ground truth or NULL/"" (overlays only)
    char modality[8];   // "t1", "t2", "flair", "t1ce" when the data set or the file name says; else ""
} detect_input;

// The slices of one subject and their coarse maps (n, S, S) (and recon, the reconstruction
// composite, when not NULL), from the model or from o->maps_from. The caller frees *maps, *recon
// and the stack. With o->guard, the scan is checked against it first (detect_guard), its
// measurements and differences in *scan, warnings[] and *n_warnings (NULL: not kept). Returns 0
// or -1 naming the file.
int detect_maps(slice_stack *s, float **maps, float **recon, int *windows, model *m, const detect_input *in,
                const detect_options *o, scan_print *scan, char warnings[][FP_WARNING_LEN], int *n_warnings);

// The differences of scan p from o->guard (none without one) into lines; each printed on stderr
// as "anoswin: warning: <image>: <difference>" unless o->force. Returns their number.
int detect_guard(char lines[][FP_WARNING_LEN], const detect_input *in, const scan_print *p, const detect_options *o);

// Fewest healthy scans a normative calibration is trusted with: each is scored leave-one-out
// against the other n-1, and with n = 3 that is a mean and a spread of 2 scans (one degree of
// freedom), whose tails set the threshold far above what a test scan, scored against n, needs
// (docs/demo.md, session 12). Fewer gives a warning; `demo --data` keeps at least this many.
#define DETECT_CALIB_MIN_SCANS 4

// Calibration (calibrate.h) on n healthy subjects with o's map settings. Progress on stderr when
// o->verbose. Returns 0 or -1.
int detect_calibrate(calibration *c, model *m, const detect_input *in, int n, const detect_options *o);

// Sets o->post.threshold and o->post.low from c at o->fpr and o->fpr_low. Returns 0 or -1 (a rate
// outside the table).
int detect_apply_calibration(detect_options *o, const calibration *c, const char *path);

// Runs one subject and writes out_dir/<files above> (out_dir is created). Returns 0, or -1 with
// an error naming the file at fault.
int detect_subject(detect_result *r, model *m, const detect_input *in, const char *out_dir,
                   const detect_options *o);

// Model-grid slice (S x S, pixel [h][w] = RAS (i=h, j=w)) -> viewer picture (anterior up, x = i
// left to right): out[r][c] = in[h=c][w=S-1-r].
void detect_view_slice(float *out, const float *in, int S);

#endif
