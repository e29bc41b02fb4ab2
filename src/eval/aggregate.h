// Aggregating per-subject (or per-slice) metric values: mean ± std over the defined values and
// 95% percentile-bootstrap confidence intervals over subjects, seeded and reproducible.
// Undefined values (NAN, printed "n/a") are skipped and counted separately, never averaged.
#ifndef ANOSWIN_EVAL_AGGREGATE_H
#define ANOSWIN_EVAL_AGGREGATE_H

#include <stdint.h>

typedef struct metric_summary {
    int n;              // defined values used
    int n_undefined;    // values skipped (n/a)
    double value;       // mean over the defined values (or a pooled value); NAN when n == 0
    double std;         // population standard deviation (numpy's default, ddof=0); NAN when n == 0
    double ci_lo, ci_hi;  // bootstrap interval; NAN when not computed or n == 0
} metric_summary;

// mean ± std of the defined values of x[0..n); no interval (ci = NAN).
void metric_summary_of(metric_summary *s, const double *x, int n);
// A single value (e.g. a pooled metric): n = 1 when defined; std and ci NAN.
void metric_summary_single(metric_summary *s, double v);

// A statistic of a resample: idx[0..n) are subject indices drawn with replacement.
// Returns NAN when the resample has no defined value (such resamples are skipped).
typedef double (*bootstrap_stat)(const int *idx, int n, void *ctx);

// Percentile bootstrap over n subjects: `reps` resamples drawn with rng(seed), the statistic
// of each, and the (1-level)/2 and (1+level)/2 quantiles (linear interpolation, as numpy's
// default). Deterministic for a seed. Returns 0, or -1 with *lo = *hi = NAN when n == 0 or no
// resample gave a defined value.
int bootstrap_ci(double *lo, double *hi, bootstrap_stat stat, void *ctx, int n, int reps, uint64_t seed,
                 double level);

// Statistic: mean of the defined values of ((const double *)ctx)[idx[i]].
double bootstrap_stat_mean(const int *idx, int n, void *ctx);
// Fills s->ci_lo/ci_hi with bootstrap_ci of the mean of x (s from metric_summary_of).
void metric_summary_bootstrap(metric_summary *s, const double *x, int n, int reps, uint64_t seed);

#endif
