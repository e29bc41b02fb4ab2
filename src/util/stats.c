// Order statistics (see stats.h).
#include "util/stats.h"

#include <math.h>
#include <stdlib.h>

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

void sort_floats(float *v, size_t n) {
    if (n) qsort(v, n, sizeof *v, cmp_float);
}

// numpy 'linear': the quantile lies at rank q (n - 1), a fraction *frac past rank i.
static size_t quantile_rank(size_t n, double q, double *frac) {
    double pos = q * (double)(n - 1);
    size_t i = (size_t)floor(pos);
    *frac = pos - (double)i;
    return i;
}

double quantile_sorted_f32(const float *v, size_t n, double q) {
    if (!n) return NAN;
    double f;
    size_t i = quantile_rank(n, q, &f);
    return i + 1 < n ? v[i] + f * ((double)v[i + 1] - v[i]) : v[n - 1];
}

double quantile_sorted_f64(const double *v, size_t n, double q) {
    if (!n) return NAN;
    double f;
    size_t i = quantile_rank(n, q, &f);
    return i + 1 < n ? v[i] + f * (v[i + 1] - v[i]) : v[n - 1];
}
