// Order statistics of samples, shared by calibration, detection, evaluation and the models.
#ifndef ANOSWIN_UTIL_STATS_H
#define ANOSWIN_UTIL_STATS_H

#include <stddef.h>

// Ascending sort in place.
void sort_floats(float *v, size_t n);
// numpy.quantile(v, q) with the default 'linear' method, q in [0, 1], of n ascending values; NAN
// when n is 0.
double quantile_sorted_f32(const float *v, size_t n, double q);
double quantile_sorted_f64(const double *v, size_t n, double q);

#endif
