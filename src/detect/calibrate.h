// Thresholds calibrated on healthy scans: the anomaly map of each healthy scan is computed with
// the detection's own settings, and the map value exceeded by a fraction f of all brain voxels in
// the scored slices is the threshold at voxel false-positive rate f. With the map in residual
// units (no per-slice scaling, anomaly_map.h) that threshold means the same in every slice and
// subject, so the calibrated post-processing (postproc.h) can return an empty mask.
//
// The file (JSON, one object; written by `anoswin calibrate` and by `detect --healthy`) records
// the map settings, the checkpoint and a hash of its weights, the scans and voxels used, and a
// table of thresholds at fixed rates (1, 2, 5 x 10^k from 1e-5 to 0.5): threshold[i] is numpy's
// quantile(values, 1 - fpr[i]) (linear interpolation). A rate between two entries is interpolated
// linearly in log(rate). detect refuses a calibration made with other map settings or weights.
#ifndef ANOSWIN_DETECT_CALIBRATE_H
#define ANOSWIN_DETECT_CALIBRATE_H

#include <stddef.h>
#include <stdint.h>

#include "detect/anomaly_map.h"
#include "detect/normative.h"
#include "data/slices.h"

enum { CALIB_LEVELS = 15 };
extern const double calib_fpr_levels[CALIB_LEVELS];

typedef struct calibration {
    // map settings the thresholds belong to
    int window, stride, positive_residual, window_norm, slice_norm, restrict_to_brain, norm;
    int precision;        // NN_FP32 / NN_BF16 (nn.h): the GEMMs' precision the maps were made in
    int z_first, z_last;  // slice range of the healthy scans (informative)
    char checkpoint[1024];
    uint64_t weights_hash;  // hash_floats (util/hash.h) of the model's parameters
    int scans;
    int64_t voxels;
    double threshold[CALIB_LEVELS];  // at calib_fpr_levels
    // normative calibration (normative.h; sigma > 0): the thresholds are thresholds of the
    // multi-scale score (z-scores with one scale), and mean / sd (scales, slices, size, size) cover
    // RAS axial slices z_first..z_last on the model grid, one model per scale
    float norm_sigma, norm_floor;
    int norm_size, norm_nscales;
    float norm_scales[NORMATIVE_MAX_SCALES], norm_unit[NORMATIVE_MAX_SCALES];
    float *norm_mean, *norm_sd;  // owned; NULL when not normative
} calibration;

// Records the map settings of a and s (and the process's GEMM precision) into c.
void calibration_set_map(calibration *c, const amap_params *a, const slice_options *s);
// Thresholds from the pooled healthy brain-voxel map values (sorted in place).
void calibration_set_values(calibration *c, float *values, size_t n);
// Threshold at voxel false-positive rate fpr (calib_fpr_levels[0] .. [last]); NAN outside.
double calibration_threshold(const calibration *c, double fpr);

// A normative calibration also writes its mean and sd maps, float32 little-endian, for each scale
// its mean then its sd, to PATH with ".json" replaced by ".normative.f32" (named in the JSON as "normative_file",
// relative to the JSON's folder).
int calibration_write(const calibration *c, const char *path);
// Errors name the file: missing keys, a table that is not decreasing, a normative file of the
// wrong size.
int calibration_read(calibration *c, const char *path);
void calibration_free(calibration *c);
// Normative calibration: maps (n, S, S) of RAS axial slices z[0..n) -> multi-scale scores
// (normative.h; z-scores with one scale) in place. Error
// (naming path) for a slice outside the calibrated range or another size.
int calibration_normalise(const calibration *c, const char *path, float *maps, const int *z, int n, int S);
// 0 when c fits the map settings and weights; else -1 (as_fail naming `path` and the difference).
int calibration_check(const calibration *c, const char *path, const amap_params *a, const slice_options *s,
                      uint64_t weights_hash);

#endif
