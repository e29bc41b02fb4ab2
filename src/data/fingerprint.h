// What a model was trained on, and whether a scan looks like it: the input guard.
//
// `train` measures every training volume (scan_print) and records their summary (fingerprint)
// in each model checkpoint under the metadata key "anoswin.fingerprint" (one JSON object);
// `detect` and `calibrate` measure each scan the same way and warn, one line per difference,
// when it does not look like the training data (docs/detection.md, "Input guard"):
//   modality      both known and different: the data set's (layouts that name it, not
//                 manifests) or a token of the file name (_t1, -T2, FLAIR, T1w, ...);
//   grid          other dimensions than the training volumes' (when those all shared one);
//   voxel size    outside the training range by more than FP_VOXEL_TOL on any axis;
//   head          the foreground (image > 0) is a head rather than a brain: its volume is above
//                 FP_HEAD_VOLUME x the largest training foreground, or more of the volume's
//                 border is foreground than max(FP_HEAD_BORDER, 2 x training's largest share)
//                 (a skull-stripped brain floats inside its field of view; a head fills it, is
//                 cut at the neck, and a raw scan's noisy background is > 0 everywhere);
//   intensities   the brain's intensity distribution, scaled by its 99th percentile (scale-free:
//                 scanners' units differ), is further from training's mean than
//                 max(FP_INTENSITY_FLOOR, 2 x the furthest training volume); the distance is
//                 the mean absolute difference of FP_LEVELS quantiles (5..95 %), about the
//                 Wasserstein-1 distance of the two scaled distributions.
// The brain is the scan's brain mask when given, else image > 0, as in the slice pipeline.
// Orientation is recorded but not checked: the slice pipeline reorients every scan to RAS.
#ifndef ANOSWIN_DATA_FINGERPRINT_H
#define ANOSWIN_DATA_FINGERPRINT_H

#include <stddef.h>
#include <stdint.h>

#include "data/slices.h"
#include "data/volume.h"

#define FINGERPRINT_KEY "anoswin.fingerprint"
#define FP_LEVELS 19                 // quantiles at 5, 10, ..., 95 %
#define FP_VOXEL_TOL 0.02            // relative voxel size difference tolerated
#define FP_HEAD_VOLUME 1.4           // foreground volume / largest training foreground
#define FP_HEAD_BORDER 0.05          // share of the border voxels that are foreground
#define FP_INTENSITY_FLOOR 0.08      // smallest distance that warns (units of the 99th percentile)
#define FP_MAX_WARNINGS 8
#define FP_WARNING_LEN 320

// One volume's measurements.
typedef struct scan_print {
    int dims[3];              // native voxel grid
    float voxel_mm[3];
    char orientation[4];      // nibabel's aff2axcodes, e.g. "RAS"
    double fg_ml;             // foreground (image > 0) volume
    double border_share;      // share of the voxels on the volume's six faces that are foreground
    int64_t brain_voxels;
    double raw_q[3];          // brain intensities' 1st, 50th and 99th percentiles, in file units
    double q[FP_LEVELS];      // brain quantiles 5..95 % divided by the 99th percentile
} scan_print;

// The training data's summary.
typedef struct fingerprint {
    int scans;
    char modality[8];         // "" when the data set does not say
    int dims[3];              // 0,0,0 when the training grids differ
    float voxel_min[3], voxel_max[3];
    char orientation[8];      // "mixed" when they differ
    double fg_ml_min, fg_ml_mean, fg_ml_max, border_max;
    double raw_q[3];          // means over the volumes
    double q[FP_LEVELS];      // mean scaled quantiles
    double q_spread;          // largest distance of a training volume from that mean
    double *all_q;            // while accumulating: every volume's q (scans x FP_LEVELS)
} fingerprint;

// Measures img (brain: mask > 0 when mask is not NULL, else img > 0; same grid). An empty brain
// gives zero quantiles.
void scan_print_measure(scan_print *p, const volume *img, const volume *mask_or_NULL);
// Reads image (and mask), builds the slice stack (slices.h) and measures the volume, one read.
int scan_print_load_slices(slice_stack *s, scan_print *p, const char *image, const char *mask_or_NULL,
                           const slice_options *o);
// The scan's measurements as a JSON object (one line).
int scan_print_to_json(const scan_print *p, char *out, size_t n);

void fingerprint_begin(fingerprint *f, const char *modality_or_empty);
void fingerprint_add(fingerprint *f, const scan_print *p);
// Computes the means and the spread; frees the accumulation.
void fingerprint_end(fingerprint *f);
void fingerprint_free(fingerprint *f);
int fingerprint_to_json(const fingerprint *f, char *out, size_t n);
// Errors name `what`.
int fingerprint_from_json(fingerprint *f, const char *json, const char *what);
// The fingerprint of a checkpoint file: 1 read, 0 when it has none (older or converted
// checkpoints), -1 on error (naming the file).
int fingerprint_read(fingerprint *f, const char *checkpoint);

// "t1", "t2", "flair" or "t1ce" from a token of the file's name, or "" when none says.
void fingerprint_modality_of_name(const char *path, char out[8]);
// The differences between scan p (of modality `modality`, "" or NULL when unknown) and f, one
// sentence each, in lines (at most FP_MAX_WARNINGS). Returns their number.
int fingerprint_check(const fingerprint *f, const scan_print *p, const char *modality,
                      char lines[][FP_WARNING_LEN]);

#endif
