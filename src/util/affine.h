// 3-D affine maps as 4x4 matrices (last row 0 0 0 1), the form of NIfTI's voxel-to-world
// affines and of registration transforms: y = M[0..2][0..2] x + M[0..2][3].
#ifndef ANOSWIN_UTIL_AFFINE_H
#define ANOSWIN_UTIL_AFFINE_H

void affine_identity(double m[4][4]);
// out = a * b (apply b first); out may alias a or b.
void affine_mul(double out[4][4], const double a[4][4], const double b[4][4]);
// out = m^-1; -1 when the linear part is singular (|det| < 1e-12), then out is untouched.
int affine_invert(double out[4][4], const double m[4][4]);
// y = m x (x, y 3-vectors; y may alias x).
void affine_apply(double y[3], const double m[4][4], const double x[3]);
double affine_det3(const double m[4][4]);

#endif
