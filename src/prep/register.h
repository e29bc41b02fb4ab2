// Affine registration of a subject scan to a template by Mattes mutual information (Mattes et
// al. 2003, as ITK's MattesMutualInformationImageToImageMetric and elastix's
// AdvancedMattesMutualInformation): a joint histogram with a zero-order Parzen window on the
// template's intensities and a cubic B-spline window on the subject's, so that the metric has an
// analytic gradient; maximised by regular-step gradient ascent (ITK's RegularStepGradient-
// Descent: a fixed step along the scaled gradient, halved when the gradient turns back),
// first over a rigid transform (at the coarsest level), then over a full affine one, on a
// pyramid (samples on every 4th, 2nd, then every template voxel, both images smoothed by a
// Gaussian of 4, 2, 1 mm). Mutual information compares intensity distributions, not values, so
// a T2 or FLAIR scan registers to a T1 template.
//
// The transform maps template world coordinates (mm) to subject world coordinates:
// y = A (x - c) + c + t, c the template's centre of mass; it starts from the subject's centre
// of mass, with A the best of the 24 rotations that map axes onto axes after a short rigid
// ascent from each (so a head tilted far, or a header wrong by 90 degrees, still registers). The metric is sampled at template voxels in the template's brain mask dilated
// by a margin (the skull and scalp inside it help), a seeded random subset of them, the same at
// every iteration: a run is reproducible and does not depend on the thread count (the sums go
// over fixed chunks in a fixed order).
#ifndef ANOSWIN_PREP_REGISTER_H
#define ANOSWIN_PREP_REGISTER_H

#include <stdint.h>

#include "data/volume.h"

enum { REG_MAX_LEVELS = 4 };

typedef struct reg_options {
    int nlevels;                  // 3
    int shrink[REG_MAX_LEVELS];   // 4, 2, 1: the template grid stride of the samples
    float sigma_mm[REG_MAX_LEVELS];  // 4, 2, 1: Gaussian smoothing of both images
    int rigid_levels;             // 1: the rigid stage runs on the first this many levels, the affine
                                  // stage from the last of them on
    int affine;                   // 1: an affine stage after the rigid one; 0: rigid on every level
    int samples;                  // 20000 per level
    int bins;                     // 32 histogram bins (2 of padding at each end)
    int iters;                    // 150 per level and stage at most
    double step_mm;               // 2: the first step (mm of motion at the brain's radius) times the shrink
    double min_step_mm;           // 0.02: a level ends when the step falls below this
    double margin_mm;             // 12: the sampling region is the brain mask dilated by this
    uint64_t seed;                // 1
    int orientation_search;       // 1: start from the best of the 24 axis-aligned rotations (see
                                  // register.c); 0: from the identity only
} reg_options;

void reg_options_default(reg_options *o);

typedef struct reg_result {
    double matrix[4][4];    // template world -> subject world
    double mi_initial;      // Mattes MI at the finest level at the start (centres of mass)
    double mi_final;        // and at the end
    double sv[3];           // singular values of the linear part, largest first
    int iterations;         // over all levels and stages
    double valid_fraction;  // of the finest level's samples inside the subject's grid, at the end
} reg_result;

// fixed: the template (any grid); fixed_mask: its brain (same grid, non-zero = brain); moving:
// the subject. 0, or -1 with a message (no sample inside the subject's field of view, a flat
// image).
int reg_affine(reg_result *res, const volume *fixed, const uint8_t *fixed_mask, const volume *moving,
               const reg_options *o);

// Mattes MI for the test against finite differences: mi[e] of level `lev` (the sampling of
// reg_affine) at the n matrices m[e] (template world -> subject world, affine parameterisation
// y = A x + t); grad (12: d/dA row-major, then d/dt; may be NULL) at m[0]. 0 or -1.
int reg_mattes_mi(double *mi, double grad[12], const volume *fixed, const uint8_t *fixed_mask, const volume *moving,
                  const reg_options *o, int lev, const double (*m)[4][4], int n);

// Centre of mass (world mm) of the voxels above 10 % of the 99th intensity percentile, weighted
// by intensity: the head's, with the background noise left out.
void reg_centre_of_mass(double c[3], const volume *v);

#endif
