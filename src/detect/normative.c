// Voxel-wise normative model (see normative.h).
#include "detect/normative.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/gaussian.h"  // gaussian_filter3d

// scipy.ndimage.gaussian_filter's defaults: mode 'reflect', truncate 4.
static void smooth(float *x, int nx, int ny, int nz, float sx, float sy, float sz) {
    const double sigma[3] = {sx, sy, sz};
    gaussian_filter3d(x, nx, ny, nz, sigma, 4.0, GAUSS_REFLECT);
}

void smooth_slices(float *out, const float *in, int nx, int ny, int nz, float s) {
    if (out != in) memcpy(out, in, sizeof(float) * (size_t)nx * ny * nz);
    if (s > 0) smooth(out, nx, ny, nz, s, s, 0.0f);
}

void normative_fit(float *mean, float *sd, const float *maps, int n, int skip, int nx, int ny, int nz, float sigma,
                   float sd_floor) {
    size_t nvox = (size_t)nx * ny * nz;
    int used = n - (skip >= 0 && skip < n);
    // The variance a new scan's map has around a mean of `used` scans, not the spread of those
    // scans: unbiased (x used/(used-1)) and widened by the mean's own error (x (1 + 1/used)). With
    // the population variance, leave-one-out scores (used = n-1) came out wider than a new scan's
    // (used = n) by sqrt(((n-1)+1)/((n-1)-1) / ((n+1)/(n-1))): 1.22 with 3 calibration scans, so
    // the calibrated threshold was set above what unseen healthy scans reach, the more so the
    // fewer the scans. One scan has no spread: the floor alone is left.
    double pred = used >= 2 ? (double)(used + 1) / (used - 1) : 0.0;
    for (size_t q = 0; q < nvox; q++) {
        double s1 = 0, s2 = 0;
        for (int i = 0; i < n; i++) {
            if (i == skip) continue;
            double v = maps[(size_t)i * nvox + q];
            s1 += v, s2 += v * v;
        }
        double mu = s1 / used;
        mean[q] = (float)mu;
        sd[q] = (float)(fmax(s2 / used - mu * mu, 0) * pred);
    }
    smooth(mean, nx, ny, nz, sigma, sigma, sigma);
    smooth(sd, nx, ny, nz, sigma, sigma, sigma);
    for (size_t q = 0; q < nvox; q++) sd[q] = sqrtf(fmaxf(sd[q], 0)) + sd_floor;
}

void normative_z(float *out, const float *map, const float *mean, const float *sd, size_t nvox) {
    for (size_t q = 0; q < nvox; q++) out[q] = (map[q] - mean[q]) / sd[q];
}
