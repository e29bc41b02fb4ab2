// The slice pipeline of the reference (section 3 of ano-swinmae-reference.md), from a NIfTI
// volume to model inputs and back:
//   1. reorient to RAS exactly like nibabel's as_closest_canonical (reorient.h);
//   2. resize in-plane to size x size, depth unchanged, linear with align_corners=True: the same
//      numbers as torch F.interpolate(vol[None,None], size=(S,S,D), mode='trilinear',
//      align_corners=True) (resample.h);
//   3. intensities to [0,1] per volume: min-max over the whole resized volume (reference), or
//      percentiles of the brain voxels clipped to [0,1] (outside the brain then set to 0); with
//      the model's Nyúl standardisation (data/nyul.h) instead the standard's fixed scale,
//      divided by NYUL_HI (a voxel past the standard's p99 may exceed 1);
//   4. brain mask on the model grid: resized image > 0 (skull-stripped data), or a given mask
//      file (same grid as the image) resized linearly and thresholded at 0.5;
//   5. axial slices k = z_first..z_last (inclusive) along the last RAS axis.
// Model image pixel [h][w] of slice k is resized RAS voxel (i=h, j=w, k): numpy indexing of the
// canonical array, as in the reference, so the authors' checkpoints see the same orientation.
#ifndef ANOSWIN_DATA_SLICES_H
#define ANOSWIN_DATA_SLICES_H

#include <stdint.h>

#include "data/nyul.h"
#include "data/reorient.h"
#include "data/volume.h"

enum { SLICE_NORM_MINMAX = 0, SLICE_NORM_PERCENTILE = 1 };

typedef struct slice_options {
    int size;              // model input side S (default 224)
    int z_first, z_last;   // inclusive RAS axial range; z_first = -1: every slice
    int clip_range;        // 0 (default): a range outside the volume is an error; 1: clip it to the volume
    int norm;              // SLICE_NORM_MINMAX (default) or SLICE_NORM_PERCENTILE
    float pct_lo, pct_hi;  // percentiles for SLICE_NORM_PERCENTILE (default 1, 99)
    nyul_standard nyul;    // .on: map the brain onto this standard first (the model's, data/nyul.h)
} slice_options;

// Paper defaults: size 224, min-max, slices 60..109 for training, 75..94 otherwise.
void slice_options_default(slice_options *o, int training);

typedef struct slice_stack {
    int n, size;           // n slices of size x size
    int *z;                // (n) RAS axial index k of each slice
    float *img;            // (n,size,size) intensities in [0,1]
    uint8_t *brain;        // (n,size,size) 1 inside the brain, else 0
    // Geometry for the inverse (model grid -> native grid):
    volume native;         // the source's grid and geometry (data NULL); header kept for writing
    orientation orient;    // native voxel axes -> RAS axes
    int ras_n[3];          // RAS grid before resizing (rx, ry, rz)
    float lo, hi;          // source intensities (standardised ones with .nyul: 0, NYUL_HI) mapped to 0 and 1
} slice_stack;

// Builds the stack from volumes in memory (mask_or_NULL: a brain mask on the same grid as img;
// NULL means img > 0). Errors name the files the volumes came from.
int slices_from_volume(slice_stack *s, const volume *img, const volume *mask_or_NULL, const slice_options *o);
// Reads image (and mask) and builds the stack.
int slices_load(slice_stack *s, const char *image_path, const char *mask_path_or_NULL, const slice_options *o);
// Slice idx as model input (channels,size,size): the grey slice repeated (channels = 1 or 3).
void slices_input(float *out, const slice_stack *s, int idx, int channels);
// A label volume on the source's grid (e.g. BraTS seg) taken to the model grid like the image,
// nearest neighbour, as (n,size,size) of (label > 0). Error if its grid differs.
int slices_labels(uint8_t *out, const slice_stack *s, const volume *label);
// maps (n,size,size) on the model grid -> a new volume on the native grid of the source (zeros
// outside the slice range), linear with align_corners=True (nearest = 1: nearest neighbour, for
// label maps). out has the source's geometry, ready for volume_write(out, out, ...).
int slices_to_native(volume *out, const slice_stack *s, const float *maps, int nearest);
void slices_free(slice_stack *s);
// numpy.percentile(a, q) (q in 0..100, the default linear method) of n >= 1 values; reorders a.
double slices_percentile(float *a, size_t n, double q);
// The same for nq percentiles q (ascending) at once, into out: one partitioning, not nq.
void slices_percentiles(double *out, float *a, size_t n, const double *q, int nq);

#endif
