// Separable Gaussian smoothing of a volume, as scipy.ndimage.gaussian_filter.
#ifndef ANOSWIN_UTIL_GAUSSIAN_H
#define ANOSWIN_UTIL_GAUSSIAN_H

// How a line continues past its ends (scipy's names): reflect (d c b a | a b c d | d c b a),
// nearest (a a a a | a b c d | d d d d).
typedef enum gauss_border { GAUSS_REFLECT = 0, GAUSS_NEAREST = 1 } gauss_border;

// scipy.ndimage.gaussian_filter(x, (sigma[2], sigma[1], sigma[0]), mode=border, truncate=truncate)
// of the (nz, ny, nx) volume x, in place: per axis a kernel of radius int(truncate * sigma + 0.5),
// summed in double; an axis with sigma <= 0 is left alone. Lines are independent, so the result
// does not depend on the thread count.
void gaussian_filter3d(float *x, int nx, int ny, int nz, const double sigma[3], double truncate, gauss_border border);

#endif
