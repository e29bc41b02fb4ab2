#include "latent/separation.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "util/rng.h"

static double dist2(const float *a, const float *b, int d) {
    double s = 0;
    for (int t = 0; t < d; t++) {
        double v = (double)a[t] - b[t];
        s += v * v;
    }
    return s;
}

double sep_silhouette(const float *X, int n, int d, const int *label) {
    int nl = 0;
    for (int i = 0; i < n; i++) nl = label[i] + 1 > nl ? label[i] + 1 : nl;
    int *cnt = as_calloc((size_t)(nl ? nl : 1), sizeof(int));
    for (int i = 0; i < n; i++) cnt[label[i]]++;
    int present = 0;
    for (int l = 0; l < nl; l++) present += cnt[l] > 0;
    if (present < 2) {
        free(cnt);
        return NAN;
    }
    double total = 0;
#pragma omp parallel for schedule(dynamic, 16) reduction(+ : total)
    for (int i = 0; i < n; i++) {
        double *sum = calloc((size_t)nl, sizeof(double));
        if (!sum) abort();
        for (int j = 0; j < n; j++)
            if (j != i) sum[label[j]] += sqrt(dist2(X + (size_t)i * d, X + (size_t)j * d, d));
        int li = label[i];
        if (cnt[li] > 1) {
            double a = sum[li] / (cnt[li] - 1), b = INFINITY;
            for (int l = 0; l < nl; l++)
                if (l != li && cnt[l] > 0) b = fmin(b, sum[l] / cnt[l]);
            double m = fmax(a, b);
            total += m > 0 ? (b - a) / m : 0.0;
        }
        free(sum);
    }
    free(cnt);
    return total / n;
}

typedef struct nb {
    double d;
    int j;
} nb;

double sep_knn_accuracy(const float *X, int n, int d, const int *label, const int *subject, int k) {
    if (k > n - 1) k = n - 1;
    if (k < 1) return NAN;
    int nl = 0;
    for (int i = 0; i < n; i++) nl = label[i] + 1 > nl ? label[i] + 1 : nl;
    int correct = 0, counted = 0;
#pragma omp parallel for schedule(dynamic, 16) reduction(+ : correct, counted)
    for (int i = 0; i < n; i++) {
        nb *best = malloc(sizeof(nb) * (size_t)k);
        int *votes = calloc((size_t)nl, sizeof(int));
        if (!best || !votes) abort();
        int m = 0;
        for (int j = 0; j < n; j++) {
            if (j == i || (subject && subject[j] == subject[i])) continue;
            double dd = dist2(X + (size_t)i * d, X + (size_t)j * d, d);
            if (m == k && dd >= best[m - 1].d) continue;  // ties keep the smaller index
            int p = m < k ? m++ : m - 1;
            while (p > 0 && best[p - 1].d > dd) {
                best[p] = best[p - 1];
                p--;
            }
            best[p] = (nb){dd, j};
        }
        for (int q = 0; q < m; q++) votes[label[best[q].j]]++;
        int win = 0;
        for (int l = 1; l < nl; l++)
            if (votes[l] > votes[win]) win = l;
        if (m > 0) correct += win == label[i], counted++;
        free(votes);
        free(best);
    }
    return counted ? (double)correct / counted : NAN;
}

static double lloyd(const float *X, int n, int d, int k, int *assign, double *c) {
    double inertia = 0;
    int *cnt = as_malloc(sizeof(int) * (size_t)k);
    for (int it = 0; it < 300; it++) {
        int changed = 0;
        inertia = 0;
        for (int i = 0; i < n; i++) {
            int best = 0;
            double bd = INFINITY;
            for (int q = 0; q < k; q++) {
                double s = 0;
                for (int t = 0; t < d; t++) {
                    double v = X[(size_t)i * d + t] - c[(size_t)q * d + t];
                    s += v * v;
                }
                if (s < bd) bd = s, best = q;
            }
            changed += assign[i] != best;
            assign[i] = best;
            inertia += bd;
        }
        if (!changed && it > 0) break;
        memset(cnt, 0, sizeof(int) * (size_t)k);
        double *old = as_malloc(sizeof(double) * (size_t)k * d);
        memcpy(old, c, sizeof(double) * (size_t)k * d);
        memset(c, 0, sizeof(double) * (size_t)k * d);
        for (int i = 0; i < n; i++) {
            cnt[assign[i]]++;
            for (int t = 0; t < d; t++) c[(size_t)assign[i] * d + t] += X[(size_t)i * d + t];
        }
        for (int q = 0; q < k; q++)
            for (int t = 0; t < d; t++)
                c[(size_t)q * d + t] = cnt[q] ? c[(size_t)q * d + t] / cnt[q] : old[(size_t)q * d + t];
        free(old);
    }
    free(cnt);
    return inertia;
}

double sep_kmeans(const float *X, int n, int d, int k, int n_init, uint64_t seed, int *assign, float *centres) {
    double best = INFINITY;
    int *a = as_malloc(sizeof(int) * (size_t)n);
    double *c = as_malloc(sizeof(double) * (size_t)k * d), *dmin = as_malloc(sizeof(double) * (size_t)n);
    for (int r = 0; r < n_init; r++) {
        rng g;
        rng_seed_stream(&g, seed, (uint64_t)r);
        // k-means++: each next centre drawn with probability proportional to D(x)^2.
        int first = (int)rng_below(&g, (uint32_t)n);
        for (int t = 0; t < d; t++) c[t] = X[(size_t)first * d + t];
        for (int i = 0; i < n; i++) dmin[i] = INFINITY;
        for (int q = 1; q < k; q++) {
            double tot = 0;
            for (int i = 0; i < n; i++) {
                double s = 0;
                for (int t = 0; t < d; t++) {
                    double v = X[(size_t)i * d + t] - c[(size_t)(q - 1) * d + t];
                    s += v * v;
                }
                dmin[i] = fmin(dmin[i], s);
                tot += dmin[i];
            }
            double u = rng_uniform(&g) * tot, acc = 0;
            int pick = n - 1;
            for (int i = 0; i < n; i++) {
                acc += dmin[i];
                if (acc > u) {
                    pick = i;
                    break;
                }
            }
            for (int t = 0; t < d; t++) c[(size_t)q * d + t] = X[(size_t)pick * d + t];
        }
        for (int i = 0; i < n; i++) a[i] = -1;
        double in = lloyd(X, n, d, k, a, c);
        if (in < best) {
            best = in;
            memcpy(assign, a, sizeof(int) * (size_t)n);
            for (size_t t = 0; t < (size_t)k * d; t++) centres[t] = (float)c[t];
        }
    }
    free(dmin);
    free(c);
    free(a);
    return best;
}

double sep_adjusted_rand(const int *a, const int *b, int n) {
    enum { L = 64 };
    long *tab = as_calloc(L * L, sizeof(long)), ra[L] = {0}, rb[L] = {0};
    for (int i = 0; i < n; i++) {
        tab[a[i] * L + b[i]]++;
        ra[a[i]]++;
        rb[b[i]]++;
    }
#define C2(x) ((double)(x) * ((double)(x) - 1) / 2)
    double sij = 0, sa = 0, sb = 0;
    for (int i = 0; i < L * L; i++) sij += C2(tab[i]);
    for (int i = 0; i < L; i++) sa += C2(ra[i]), sb += C2(rb[i]);
    double expected = sa * sb / C2(n), mx = (sa + sb) / 2;
#undef C2
    free(tab);
    // scikit-learn returns 1 for the degenerate cases (one cluster each, or all singletons).
    if (mx == expected) return 1.0;
    return (sij - expected) / (mx - expected);
}

int sep_ellipse_of(const float *Y, int n, const int *assign, int c, sep_ellipse *e) {
    double sx = 0, sy = 0;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (assign[i] == c) sx += Y[2 * i], sy += Y[2 * i + 1], m++;
    memset(e, 0, sizeof *e);
    e->n = m;
    if (!m) return 0;
    e->cx = sx / m, e->cy = sy / m;
    double cxx = 0, cyy = 0, cxy = 0;
    for (int i = 0; i < n; i++)
        if (assign[i] == c) {
            double u = Y[2 * i] - e->cx, v = Y[2 * i + 1] - e->cy;
            cxx += u * u, cyy += v * v, cxy += u * v;
        }
    double den = m > 1 ? m - 1 : 1;
    cxx /= den, cyy /= den, cxy /= den;
    double tr = cxx + cyy, det = cxx * cyy - cxy * cxy, disc = sqrt(fmax(tr * tr / 4 - det, 0));
    double l1 = tr / 2 + disc, l2 = fmax(tr / 2 - disc, 0);
    e->sd1 = sqrt(l1), e->sd2 = sqrt(l2);
    e->angle = 0.5 * atan2(2 * cxy, cxx - cyy);
    return m;
}
