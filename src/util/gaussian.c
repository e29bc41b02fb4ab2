// Separable Gaussian smoothing (see gaussian.h).
#include "util/gaussian.h"

#include <math.h>
#include <stdlib.h>

#include "util/error.h"  // as_malloc

// Where sample i of a line of n lands for the border mode; reflect repeats for radii beyond n.
static int border_index(int i, int n, gauss_border border) {
    if (border == GAUSS_NEAREST) return i < 0 ? 0 : i >= n ? n - 1 : i;
    int period = 2 * n;
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - 1 - i;
}

void gaussian_filter3d(float *x, int nx, int ny, int nz, const double sigma[3], double truncate, gauss_border border) {
    const int n[3] = {nx, ny, nz};
    const size_t st[3] = {1, (size_t)nx, (size_t)nx * ny};
    for (int a = 0; a < 3; a++) {
        if (!(sigma[a] > 0)) continue;
        const int r = (int)(truncate * sigma[a] + 0.5), len = n[a];  // scipy's radius
        double *w = as_malloc(sizeof(double) * (size_t)(2 * r + 1)), sum = 0;
        for (int k = -r; k <= r; k++) sum += w[k + r] = exp(-0.5 * k * k / (sigma[a] * sigma[a]));
        for (int k = 0; k <= 2 * r; k++) w[k] /= sum;
        const int b = a == 0 ? 1 : 0, c = a == 2 ? 1 : 2;
        const long lines = (long)n[b] * n[c];
#pragma omp parallel
        {
            // the line with r samples of border on each side, so the inner loop has no branches
            float *line = as_malloc(sizeof(float) * (size_t)(len + 2 * r));
#pragma omp for schedule(static)
            for (long l = 0; l < lines; l++) {
                float *p = x + st[b] * (size_t)(l % n[b]) + st[c] * (size_t)(l / n[b]);
                for (int i = -r; i < len + r; i++) line[r + i] = p[st[a] * (size_t)border_index(i, len, border)];
                for (int i = 0; i < len; i++) {
                    double s = 0;
                    const float *q = line + i;
                    for (int k = 0; k <= 2 * r; k++) s += w[k] * q[k];
                    p[st[a] * (size_t)i] = (float)s;
                }
            }
            free(line);
        }
        free(w);
    }
}
