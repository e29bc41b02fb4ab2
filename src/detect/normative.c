// Voxel-wise normative model (see normative.h).
#include "detect/normative.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"  // as_malloc

// scipy's 'reflect' extension: (d c b a | a b c d | d c b a), repeated.
static int reflect(int i, int n) {
    int period = 2 * n;
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - 1 - i;
}

// One axis of the separable filter: `n` samples `stride` apart, `count` lines starting at the
// offsets of `line_start` (a function of the line index through the other two axes).
static void filter_axis(float *x, int nx, int ny, int nz, int axis, const double *w, int r) {
    int n = axis == 0 ? nx : axis == 1 ? ny : nz;
    size_t stride = axis == 0 ? 1 : axis == 1 ? (size_t)nx : (size_t)nx * ny;
    int na = axis == 0 ? ny : nx, nb = axis == 2 ? ny : nz;
    double *line = as_malloc(sizeof(double) * (size_t)n);
    for (int b = 0; b < nb; b++)
        for (int a = 0; a < na; a++) {
            size_t base = axis == 0   ? (size_t)nx * (a + (size_t)ny * b)
                          : axis == 1 ? a + (size_t)nx * ny * b
                                      : a + (size_t)nx * b;
            for (int i = 0; i < n; i++) line[i] = x[base + stride * i];
            for (int i = 0; i < n; i++) {
                double s = 0;
                for (int k = -r; k <= r; k++) s += w[k + r] * line[reflect(i + k, n)];
                x[base + stride * i] = (float)s;
            }
        }
    free(line);
}

void gaussian_filter3d(float *x, int nx, int ny, int nz, float sigma) {
    if (!(sigma > 0)) return;
    int r = (int)(4.0 * sigma + 0.5);  // scipy: radius = int(truncate * sd + 0.5)
    double *w = as_malloc(sizeof(double) * (size_t)(2 * r + 1)), sum = 0;
    for (int k = -r; k <= r; k++) sum += w[k + r] = exp(-0.5 * k * k / ((double)sigma * sigma));
    for (int k = 0; k <= 2 * r; k++) w[k] /= sum;
    for (int axis = 0; axis < 3; axis++) filter_axis(x, nx, ny, nz, axis, w, r);
    free(w);
}

void smooth_slices(float *out, const float *in, int nx, int ny, int nz, float s) {
    size_t hw = (size_t)nx * ny;
    if (out != in) memcpy(out, in, sizeof(float) * hw * nz);
    // a single-slice volume: the third axis is the identity (reflect of one sample)
    if (s > 0)
        for (int k = 0; k < nz; k++) gaussian_filter3d(out + hw * k, nx, ny, 1, s);
}

void normative_fit(float *mean, float *sd, const float *maps, int n, int skip, int nx, int ny, int nz, float sigma,
                   float sd_floor) {
    size_t nvox = (size_t)nx * ny * nz;
    int used = n - (skip >= 0 && skip < n);
    for (size_t q = 0; q < nvox; q++) {
        double s1 = 0, s2 = 0;
        for (int i = 0; i < n; i++) {
            if (i == skip) continue;
            double v = maps[(size_t)i * nvox + q];
            s1 += v, s2 += v * v;
        }
        double mu = s1 / used;
        mean[q] = (float)mu;
        sd[q] = (float)fmax(s2 / used - mu * mu, 0);  // population variance, as numpy's var
    }
    gaussian_filter3d(mean, nx, ny, nz, sigma);
    gaussian_filter3d(sd, nx, ny, nz, sigma);
    for (size_t q = 0; q < nvox; q++) sd[q] = sqrtf(fmaxf(sd[q], 0)) + sd_floor;
}

void normative_z(float *out, const float *map, const float *mean, const float *sd, size_t nvox) {
    for (size_t q = 0; q < nvox; q++) out[q] = (map[q] - mean[q]) / sd[q];
}
