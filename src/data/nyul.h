// Intensity standardisation (Nyúl and Udupa): one scale for every scan's brain intensities.
//
// MR intensities have no units: the same tissue sits at other values from scan to scan (scanner,
// coil, bias field, the subject's own T2). Min-max scaling fixes the range but not the shape, and
// a model trained on healthy scans then calls a scan's darker white matter an anomaly. Nyúl's
// method maps each scan's brain histogram onto a standard one through landmarks: the brain's
// percentiles 1, 10, 20, ..., 90, 99 (deciles, as Shah et al. 2011). Training measures them on
// every healthy volume, maps each set linearly so that p1 -> NYUL_LO and p99 -> NYUL_HI, and
// keeps the mean: the standard, stored in each model checkpoint (metadata NYUL_KEY). Every scan
// the model later reads is mapped piecewise linearly from its own landmarks onto the standard,
// the end segments extended beyond p1 and p99 (as Nyúl maps the whole range; a clamp at p1 made
// every voxel of a lesion darker than p1 the same value), never below NYUL_FLOOR (brain > 0);
// voxels outside the brain become 0. The slice pipeline (data/slices.h) then divides by NYUL_HI,
// one fixed scale for every scan, instead of its per-volume min-max, which would hand each scan
// its own scale again through its brightest voxel.
// Nyúl, Udupa, Zhang, IEEE TMI 19(2), 2000; Shah et al., Medical Image Analysis 15(2), 2011.
// The brain is the mask (> 0) when one is given, else image > 0, as everywhere in the pipeline.
// tools/nyul_standardise.py is the NumPy reference (and the session 12 experiment).
#ifndef ANOSWIN_DATA_NYUL_H
#define ANOSWIN_DATA_NYUL_H

#include <stddef.h>

#define NYUL_N 11  // landmarks
#define NYUL_LO 50.0
#define NYUL_HI 1000.0
#define NYUL_FLOOR 1.0  // the lowest standardised brain value: dark, but not background
#define NYUL_KEY "anoswin.intensity"

extern const double nyul_percentiles[NYUL_N];  // 1, 10, 20, ..., 90, 99

typedef struct nyul_standard {
    int on;                    // 0: no standardisation (min-max only, the paper's pipeline)
    int scans;                 // training volumes the standard was measured on
    double landmarks[NYUL_N];  // the standard scale, ascending, NYUL_LO..NYUL_HI
    int clamped;               // 1: below p1 -> NYUL_LO, above p99 -> NYUL_HI (session 13's standards)
} nyul_standard;

// The brain's landmarks of v (n voxels; brain: mask[i] > 0, or v[i] > 0 when mask is NULL).
// Returns the number of brain voxels (0: lm untouched).
size_t nyul_landmarks(double lm[NYUL_N], const float *v, const float *mask_or_NULL, size_t n);

// Accumulates standards over training scans: begin, add each scan's landmarks, end (the mean of
// the linearly rescaled sets). end fails when no scan was added or a scan's p1 equals its p99.
void nyul_begin(nyul_standard *s);
void nyul_add(nyul_standard *s, const double lm[NYUL_N]);
int nyul_end(nyul_standard *s, const char *what);

// Maps v in place onto the standard (see above): the brain to NYUL_FLOOR or more, the rest to 0.
// A scan whose brain is empty or flat (p1 = p99) gets NYUL_LO in the brain.
void nyul_apply(float *v, const float *mask_or_NULL, size_t n, const nyul_standard *s);

// A training run's intensity setting: "nyul" -> *nyul = 1, "minmax" (the paper's) -> 0; anything
// else fails with "intensity 'TEXT': expected minmax or nyul".
int nyul_parse_setting(const char *text, int *nyul);

// The standard as the JSON of NYUL_KEY, and back (errors name `what`).
int nyul_to_json(const nyul_standard *s, char *out, size_t n);
int nyul_from_json(nyul_standard *s, const char *json, const char *what);

#endif
