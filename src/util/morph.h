// Morphology and connected components on 2-D slices and 3-D volumes (post-processing, paper A.1).
//
// Layout: x fastest, data[x + nx*(y + ny*z)] (as src/data/volume.h). A 2-D image is nz = 1.
// `ndim` picks the structuring element: 2 = in-plane only (each z-slice on its own, as the paper
// works per axial slice), 3 = volumetric (k x k x k).
//
// Structuring elements (flat), k >= 1:
//   MORPH_SQUARE: the k x k (x k) box. Offsets along each axis run from -(k/2) to k-1-(k/2), i.e.
//                 the centre is element k/2, SciPy's convention (origin 0) also for even k.
//   MORPH_CROSS:  offsets with at most one non-zero coordinate, |d| <= k/2 (k odd): k=3 is
//                 scipy.ndimage.generate_binary_structure(ndim, 1).
// With S the offset set:
//   erosion   out[i] = min_{d in S} in[i + d]
//   dilation  out[i] = max_{d in S} in[i - d]      (reflected set: the Minkowski sum, as SciPy)
// Border: grey ops ignore positions outside the image (the min/max runs over the in-bounds part of
// the footprint). This equals scipy.ndimage.grey_erosion/grey_dilation with mode='nearest' and,
// for odd symmetric footprints, the default mode='reflect'; it is also OpenCV's erode/dilate
// default (constant border of +inf / -inf). Binary erosion treats outside as `border_value`
// (SciPy's binary_erosion default is 0: foreground touching the border erodes); binary dilation
// treats outside as 0 (SciPy's default).
//
// Erosion of the continuous coarse map (the paper erodes the combined map before thresholding)
// is the grey erosion above: a local minimum over the k x k window, so a pixel survives the 0.5
// threshold only if its whole window is above 0.5. For k = 1 it is the identity.
#ifndef ANOSWIN_UTIL_MORPH_H
#define ANOSWIN_UTIL_MORPH_H

#include <stddef.h>
#include <stdint.h>

typedef enum morph_shape { MORPH_SQUARE = 0, MORPH_CROSS = 1 } morph_shape;

// Grey erosion / dilation. out and in (nz, ny, nx); out must not alias in.
void morph_erode_f32(float *out, const float *in, int nx, int ny, int nz, int ndim, morph_shape shape, int k);
void morph_dilate_f32(float *out, const float *in, int nx, int ny, int nz, int ndim, morph_shape shape, int k);
// Binary erosion / dilation of a 0/non-0 mask into 0/1. out must not alias in.
void morph_erode_u8(uint8_t *out, const uint8_t *in, int nx, int ny, int nz, int ndim, morph_shape shape, int k,
                    int border_value);
void morph_dilate_u8(uint8_t *out, const uint8_t *in, int nx, int ny, int nz, int ndim, morph_shape shape, int k);

// Connected components of the non-zero voxels of mask. connectivity: 4 or 8 (in-plane only:
// every z-slice is labelled on its own, numbers continue across slices) or 6, 18, 26 (3-D).
// labels (nz, ny, nx) gets 0 for background and 1..n for components, numbered in the order in
// which their first voxel appears in memory order (scipy.ndimage.label's order).
// Returns n, or -1 (as_fail) for an invalid connectivity.
int morph_label(int32_t *labels, const uint8_t *mask, int nx, int ny, int nz, int connectivity);

// Per component l = 1..n: size[l] (voxels) and mean[l] = mean of value over the component.
// size and mean have n+1 entries; entry 0 describes the background. value may be NULL (mean = 0).
void morph_component_stats(int64_t *size, double *mean, const int32_t *labels, const float *value, size_t nvox,
                           int n);
// Keeps the `keep` components with the highest score[l] (l = 1..n); ties go to the lower label
// (earlier in scan order). keep <= 0 keeps all. out (0/1) may be NULL. If keep_label is not NULL
// it gets the kept labels (up to min(keep, n) entries) in rank order. Returns how many were kept.
int morph_keep_top(uint8_t *out, int *keep_label, const int32_t *labels, size_t nvox, const double *score, int n,
                   int keep);

#endif
