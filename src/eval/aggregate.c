#include "eval/aggregate.h"

#include <math.h>
#include <stdlib.h>

#include "util/error.h"  // as_malloc
#include "util/rng.h"    // rng_seed, rng_below
#include "util/stats.h"  // quantile_sorted_f64

void metric_summary_of(metric_summary *s, const double *x, int n) {
    double sum = 0;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(x[i])) sum += x[i], m++;
    s->n = m;
    s->n_undefined = n - m;
    s->ci_lo = s->ci_hi = NAN;
    if (m == 0) {
        s->value = s->std = NAN;
        return;
    }
    double mean = sum / m, ss = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(x[i])) ss += (x[i] - mean) * (x[i] - mean);
    s->value = mean;
    s->std = sqrt(ss / m);
}

void metric_summary_single(metric_summary *s, double v) {
    s->n = !isnan(v);
    s->n_undefined = isnan(v);
    s->value = v;
    s->std = s->ci_lo = s->ci_hi = NAN;
}

double bootstrap_stat_mean(const int *idx, int n, void *ctx) {
    const double *x = ctx;
    double sum = 0;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(x[idx[i]])) sum += x[idx[i]], m++;
    return m ? sum / m : NAN;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int bootstrap_ci(double *lo, double *hi, bootstrap_stat stat, void *ctx, int n, int reps, uint64_t seed,
                 double level) {
    *lo = *hi = NAN;
    if (n <= 0 || reps <= 0) return -1;
    rng r;
    rng_seed(&r, seed);
    int *idx = as_malloc((size_t)n * sizeof *idx);
    double *vals = as_malloc((size_t)reps * sizeof *vals);
    int m = 0;
    for (int b = 0; b < reps; b++) {
        for (int i = 0; i < n; i++) idx[i] = (int)rng_below(&r, (uint32_t)n);
        double v = stat(idx, n, ctx);
        if (!isnan(v)) vals[m++] = v;
    }
    free(idx);
    if (m == 0) {
        free(vals);
        return -1;
    }
    qsort(vals, (size_t)m, sizeof *vals, cmp_double);
    *lo = quantile_sorted_f64(vals, (size_t)m, (1 - level) / 2);
    *hi = quantile_sorted_f64(vals, (size_t)m, (1 + level) / 2);
    free(vals);
    return 0;
}

void metric_summary_bootstrap(metric_summary *s, const double *x, int n, int reps, uint64_t seed) {
    bootstrap_ci(&s->ci_lo, &s->ci_hi, bootstrap_stat_mean, (void *)x, n, reps, seed, 0.95);
}
