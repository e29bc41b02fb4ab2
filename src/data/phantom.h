// A procedural brain-like phantom for unit tests: no package, no file, a few milliseconds.
// Nested ellipsoids on an (nx, ny, nz) 1 mm grid: a CSF rim, a cortical GM shell with a
// wavy inner border (gyri-like), WM inside, two lateral ventricles (CSF) and a midline
// fissure. Intensities are T2-like (CSF 1.0, GM 0.55, WM 0.33, background exactly 0), so
// image > 0 is the brain mask, as for skull-stripped scans.
#ifndef ANOSWIN_DATA_PHANTOM_H
#define ANOSWIN_DATA_PHANTOM_H

#include <stdint.h>

#include "data/volume.h"

enum { PHANTOM_BG = 0, PHANTOM_CSF = 1, PHANTOM_GM = 2, PHANTOM_WM = 3 };

typedef struct phantom_options {
    int nx, ny, nz;   // grid (e.g. 64x64x48)
    int lesions;      // 0: healthy; > 0: that many lesions (synth_lesions, sizes scaled to the grid)
    double noise;     // Rician noise sigma relative to CSF = 1 (0: none)
    uint64_t seed;    // shape jitter, lesions and noise; same seed -> same phantom
} phantom_options;

// img: the T2-like image; tissue (optional, may be NULL): PHANTOM_* classes; label (optional):
// lesion labels (LESION_CORE/HALO/BODY from synth.h, 0 elsewhere). All allocated here with
// volume_alloc (1 mm, identity affine).
void phantom_make(volume *img, volume *tissue, volume *label, const phantom_options *o);

#endif
