// Brain masks for `anoswin prep`: box morphology in separable passes (a dilation by r voxels
// costs the same for any r), and the skull stripping's refinement of the template's mask on the
// subject's own intensities.
#ifndef ANOSWIN_PREP_MASK_H
#define ANOSWIN_PREP_MASK_H

#include <stdint.h>

// In place, 0/1 out: dilation / erosion by the box of half-widths r[3] voxels (outside the
// volume counts as background for both).
void mask_dilate_box(uint8_t *m, int nx, int ny, int nz, const int r[3]);
void mask_erode_box(uint8_t *m, int nx, int ny, int nz, const int r[3]);

// Skull stripping on the template grid: mask (in: the template's brain mask, out: refined),
// img the subject resampled onto that grid, spacing in mm. Steps: the interior (the mask eroded
// by 3 mm) gives the brain's darkest tissue (its 1st intensity percentile; 80 % of it is the
// cut); outer-rim voxels (within 2 mm of the mask's edge) darker than the cut are taken out
// (skull, dura, air let in by a small misregistration); an opening (1 voxel) removes the threads
// this leaves, only the largest 6-connected part is kept and its holes are filled. The mask only
// shrinks. Returns the voxels kept.
long mask_refine(uint8_t *mask, const float *img, int nx, int ny, int nz, const float spacing[3]);

#endif
