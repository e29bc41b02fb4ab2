// N4 bias-field correction (Tustison et al. 2010, "N4ITK: improved N3 bias correction"), as
// ITK's N4BiasFieldCorrectionImageFilter does it, for `anoswin prep`.
//
// The image is modelled as v = u * b with b a smooth multiplicative field. In log space, on a
// grid shrunk by `shrink` inside the foreground mask, each iteration
//   1. sharpens the histogram of the current log image (log v - log b): Wiener deconvolution of
//      a Gaussian of width `fwhm` (log units) from it, then E[u | v] maps each voxel to the
//      sharpened intensities (n4_sharpen);
//   2. fits a B-spline (prep/bspline.h, Lee-Wolberg-Shin) to the residual log image - sharpened
//      and adds its control points to the log bias's lattice;
//   3. stops the level when the coefficient of variation of exp(change of log bias) over the
//      mask falls to `convergence`, or after iterations[level] iterations.
// Each level doubles the lattice's mesh (an exact B-spline subdivision). The log bias is finally
// evaluated from the lattice at every full-resolution voxel (not an upsampled image).
// Deterministic: the same result for every OpenMP thread count.
#ifndef ANOSWIN_PREP_N4_H
#define ANOSWIN_PREP_N4_H

#include <stddef.h>
#include <stdint.h>

enum { N4_MAX_LEVELS = 8 };

typedef struct n4_options {
    int shrink;                     // 4: the fit sees every shrink-th voxel along each axis
    int levels;                     // 4: fitting levels (1..N4_MAX_LEVELS)
    int iterations[N4_MAX_LEVELS];  // 50 per level
    double convergence;             // 0.001 (ITK's default)
    int order;                      // 3: B-spline degree (1..5)
    int mesh[3];                    // 1,1,1: mesh elements per axis at the first level (ITK's
                                    // 4 control points = 1 element + order)
    double spline_distance;         // 0: use mesh; > 0: first-level mesh = ceil(extent mm / this)
    int bins;                       // 200 histogram bins
    double fwhm;                    // 0.15: Gaussian (log intensity) deconvolved from the histogram
    double wiener_noise;            // 0.01
} n4_options;

void n4_options_default(n4_options *o);

// img, out, log_bias (nz, ny, nx) x fastest; spacing (x, y, z) mm; mask (optional, NULL = the
// Otsu foreground of img, n4_otsu_threshold) selects the voxels the fit sees, of which those
// with img <= 0 are left out (no logarithm). o NULL = defaults. Writes out = img / exp(log_bias)
// at every voxel, and log_bias when non-NULL (it is defined up to a constant: the fit sets its
// level, ITK's way). out may be img (in place). Returns 0, or -1 with as_error() =
// "n4: <problem>" (bad sizes, spacing or options, a non-finite voxel, an empty foreground);
// nothing is written on failure.
int n4_correct(const float *img, const uint8_t *mask, int nx, int ny, int nz, const float spacing[3],
               const n4_options *o, float *out, float *log_bias);

// ---- steps, exposed for the tests ---------------------------------------------------------------

// One sharpening step on the n values v where mask != 0 (mask NULL: all): sharp gets E[u | v]
// there (0 elsewhere). ITK's SharpenImage: histogram of `bins` bins over [min, max] by linear
// (triangular Parzen) splitting, zero-padded to the power of two 2^(ceil(log2 bins) + 1) and
// centred; Wiener deconvolution of a Gaussian of FWHM `fwhm` with noise `wiener_noise` by FFT;
// E[u | v] = (G * (u U)) / (G * U), linearly interpolated between bins. A constant input is
// returned unchanged.
void n4_sharpen(float *sharp, const float *v, const uint8_t *mask, size_t n, int bins, double fwhm,
                double wiener_noise);

// Otsu's threshold of the n values (256 bins between their min and max; the upper edge of the
// last bin of the lower class): the foreground is img > threshold. When all values are equal,
// the float just below them (all foreground).
float n4_otsu_threshold(const float *img, size_t n);

#endif
