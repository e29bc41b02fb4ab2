// Voxel-wise normative model of healthy anomaly maps. Scans on a common template grid (the
// benchmark layouts are registered to SRI24/MNI) leave a residual that depends on where a voxel
// is: cortex borders, ventricle walls and the brain edge are reconstructed worse than deep white
// matter, so one global threshold either floods those places or misses lesions elsewhere. The
// healthy calibration scans give, at each model-grid voxel, the mean and the variance of their
// maps; both are smoothed with a Gaussian of sigma px (few scans make a noisy estimate), and a
// new map becomes the z-score (map - mean) / (sqrt(var) + sd_floor). The floor keeps places where
// every healthy scan agrees (outside the brain: all 0) from turning noise into large scores.
#ifndef ANOSWIN_DETECT_NORMATIVE_H
#define ANOSWIN_DETECT_NORMATIVE_H

#include <stddef.h>

// Multi-scale scoring. A large lesion leaves a residual that is moderate at each voxel but
// coherent over many; a small one a few high voxels. Each raw map is therefore also scored after
// smoothing each slice in-plane with a Gaussian of s px (scale 0: as is), each scale against its
// own normative model, and the map becomes the voxel-wise maximum over scales of
// z_s / unit_s, where unit_s is the healthy scans' leave-one-out z at 1 - NORMATIVE_UNIT_FPR (so
// that one scale's heavier tail does not dominate; 1 with a single scale, which leaves plain
// z-scores). In-plane, so that a slice scores the same whatever range it is detected with.
enum { NORMATIVE_MAX_SCALES = 4 };
#define NORMATIVE_UNIT_FPR 1e-3

// Each of the nz slices (nx x ny) of in smoothed in-plane with a Gaussian of s px (scipy's
// gaussian_filter with sigma (0, s, s)); s = 0 copies. out may alias in.
void smooth_slices(float *out, const float *in, int nx, int ny, int nz, float s);

// mean and sd (each nvox = nx*ny*nz) from n maps stacked in maps (n, nvox); skip >= 0 leaves that
// map out (leave-one-out). sd is the predictive sd of a new map (normative.c), which needs
// n - (skip >= 0) >= 2; with 1 map it is sd_floor alone.
void normative_fit(float *mean, float *sd, const float *maps, int n, int skip, int nx, int ny, int nz, float sigma,
                   float sd_floor);
// out = (map - mean) / sd, elementwise; out may alias map.
void normative_z(float *out, const float *map, const float *mean, const float *sd, size_t nvox);

#endif
