// Reorientation to RAS+ exactly as nibabel does it (io_orientation / as_closest_canonical /
// aff2axcodes): each voxel axis goes to the world axis it is closest to (greedy over the voxel
// axes, after removing scale and shear), flipped when it points the negative way.
#ifndef ANOSWIN_DATA_REORIENT_H
#define ANOSWIN_DATA_REORIENT_H

#include "data/volume.h"

typedef struct orientation {
    int axis[3];  // voxel axis i becomes RAS axis axis[i] (0 = R, 1 = A, 2 = S)
    int flip[3];  // 1 when voxel axis i points L, P or I (its index is reversed)
} orientation;

// nibabel.orientations.io_orientation(affine).
void orientation_from_affine(orientation *o, const double affine[4][4]);
// nibabel.aff2axcodes(affine) as a string, e.g. "RAS", "LPS", "PIR".
void orientation_codes(const double affine[4][4], char code[4]);
// A new RAS volume (data, pixdim and affine updated; header NULL) = as_closest_canonical(in).
// *o (may be NULL) gets the orientation used, for ras_to_native.
void volume_to_ras(volume *out, const volume *in, orientation *o);
// Inverse of the data reordering: ras (RAS grid) -> native (native_n grid, x fastest).
void ras_to_native(float *native, const float *ras, const int native_n[3], const orientation *o);
// The RAS grid size of a native grid.
void orientation_ras_shape(int ras_n[3], const int native_n[3], const orientation *o);

#endif
