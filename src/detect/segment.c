// Gaussian mixture + k-means + Potts-MRF tissue segmentation (see segment.h for the model and
// how it follows Atropos). All statistics in double; images are float.
#include "detect/segment.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"  // as_fail, as_malloc

#define LOG_2PI 1.8378770664093453

// ---- k-means -----------------------------------------------------------------------------------

static int nearest_centre(const double *c, int k, double x) {
    int best = 0;
    double bd = (x - c[0]) * (x - c[0]);
    for (int j = 1; j < k; j++) {
        double d = (x - c[j]) * (x - c[j]);
        if (d < bd) bd = d, best = j;
    }
    return best;
}

int kmeans1d(double *centres, int *labels, const float *x, size_t n, int k, int max_iter) {
    int *lab = labels ? labels : as_malloc(sizeof(int) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) lab[i] = -1;
    double sum[GMM_MAX_CLASSES], cnt[GMM_MAX_CLASSES];
    int it = 0, converged = 0;
    while (it < max_iter) {
        it++;
        int changed = 0;
        for (int j = 0; j < k; j++) sum[j] = cnt[j] = 0;
        for (size_t i = 0; i < n; i++) {
            int b = nearest_centre(centres, k, x[i]);
            changed |= b != lab[i];
            lab[i] = b;
            sum[b] += x[i];
            cnt[b] += 1;
        }
        for (int j = 0; j < k; j++)
            if (cnt[j] > 0) centres[j] = sum[j] / cnt[j];
        if (!changed) {
            converged = 1;
            break;
        }
    }
    // Not converged: labels were computed with the previous centres; make them consistent.
    if (!converged)
        for (size_t i = 0; i < n; i++) lab[i] = nearest_centre(centres, k, x[i]);
    if (!labels) free(lab);
    return it;
}

// ---- Gaussian mixture --------------------------------------------------------------------------

// Per class: log weight - 0.5 log(2 pi var), and 0.5 / var.
static void gmm_consts(const gmm1d *g, double *c0, double *h) {
    for (int j = 0; j < g->k; j++) {
        c0[j] = log(g->weight[j]) - 0.5 * (LOG_2PI + log(g->var[j]));
        h[j] = 0.5 / g->var[j];
    }
}

// log of the sum of exp(lp[0..k-1]) and, if post != NULL, the normalised posteriors.
static double log_normalise(double *post, const double *lp, int k) {
    double m = lp[0];
    for (int j = 1; j < k; j++) m = lp[j] > m ? lp[j] : m;
    double s = 0;
    for (int j = 0; j < k; j++) s += exp(lp[j] - m);
    double lse = m + log(s);
    if (post)
        for (int j = 0; j < k; j++) post[j] = exp(lp[j] - lse);
    return lse;
}

double gmm1d_estep(double *resp, const gmm1d *g, const float *x, size_t n) {
    double c0[GMM_MAX_CLASSES], h[GMM_MAX_CLASSES], lp[GMM_MAX_CLASSES];
    gmm_consts(g, c0, h);
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        for (int j = 0; j < g->k; j++) {
            double d = x[i] - g->mean[j];
            lp[j] = c0[j] - h[j] * d * d;
        }
        total += log_normalise(resp ? resp + i * g->k : NULL, lp, g->k);
    }
    return n ? total / (double)n : 0.0;
}

double gmm1d_score(const gmm1d *g, const float *x, size_t n) { return gmm1d_estep(NULL, g, x, n); }

void gmm1d_mstep(gmm1d *g, const double *resp, const float *x, size_t n, double reg_covar) {
    int k = g->k;
    double nk[GMM_MAX_CLASSES], sx[GMM_MAX_CLASSES], sd[GMM_MAX_CLASSES], tot = 0;
    for (int j = 0; j < k; j++) nk[j] = sx[j] = sd[j] = 0;
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < k; j++) {
            nk[j] += resp[i * k + j];
            sx[j] += resp[i * k + j] * x[i];
        }
    for (int j = 0; j < k; j++) {
        nk[j] += 10 * DBL_EPSILON;  // as sklearn: keeps empty classes finite
        g->mean[j] = sx[j] / nk[j];
        tot += nk[j];
    }
    // Variances around the new means (two passes, as sklearn).
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < k; j++) {
            double d = x[i] - g->mean[j];
            sd[j] += resp[i * k + j] * d * d;
        }
    for (int j = 0; j < k; j++) {
        g->var[j] = sd[j] / nk[j] + reg_covar;
        g->weight[j] = nk[j] / tot;
    }
}

int gmm1d_em(gmm1d *g, double *lower_bound, double *resp, const float *x, size_t n, int max_iter, double tol,
             double reg_covar) {
    double *r = resp ? resp : as_malloc(sizeof(double) * (n ? n : 1) * g->k);
    double lb = -INFINITY;
    int it = 0;
    while (it < max_iter) {
        it++;
        double prev = lb;
        lb = gmm1d_estep(r, g, x, n);
        gmm1d_mstep(g, r, x, n, reg_covar);
        if (fabs(lb - prev) < tol) break;
    }
    if (lower_bound) *lower_bound = lb;
    if (!resp) free(r);
    return it;
}

// ---- Atropos-like segmentation -----------------------------------------------------------------

void atropos_defaults(atropos_params *p) {
    *p = (atropos_params){.classes = 5, .ndim = 2, .mrf_beta = 0.2f, .mrf_radius = 1, .iterations = 5,
                          .tol = 0.0, .kmeans_iters = 100, .reg_covar = 1e-6};
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int atropos_segment(uint8_t *labels, gmm1d *gout, const float *image, const uint8_t *mask, int nx, int ny, int nz,
                    const atropos_params *p) {
    int k = p->classes;
    if (k < 1 || k > GMM_MAX_CLASSES) return as_fail("segmentation: %d classes (1..%d)", k, GMM_MAX_CLASSES);
    if (p->ndim != 2 && p->ndim != 3) return as_fail("segmentation: ndim %d (2 or 3)", p->ndim);
    if (p->mrf_radius < 0 || p->mrf_radius > 3) return as_fail("segmentation: MRF radius %d (0..3)", p->mrf_radius);
    if (!(p->mrf_beta >= 0)) return as_fail("segmentation: MRF smoothing factor %g < 0", p->mrf_beta);
    size_t nvox = (size_t)nx * ny * nz;
    memset(labels, 0, nvox);

    // Masked voxels, in memory order.
    size_t m = 0;
    for (size_t i = 0; i < nvox; i++) m += !mask || mask[i];
    if (m == 0) {
        if (gout) memset(gout, 0, sizeof *gout), gout->k = k;
        return 0;
    }
    size_t *idx = as_malloc(sizeof(size_t) * m);
    float *x = as_malloc(sizeof(float) * m);
    m = 0;
    for (size_t i = 0; i < nvox; i++)
        if (!mask || mask[i]) idx[m] = i, x[m] = image[i], m++;

    // k-means from evenly spaced centres, then sorted.
    double lo = x[0], hi = x[0];
    for (size_t i = 1; i < m; i++) lo = x[i] < lo ? x[i] : lo, hi = x[i] > hi ? x[i] : hi;
    double c[GMM_MAX_CLASSES];
    for (int j = 0; j < k; j++) c[j] = lo + (hi - lo) * (j + 1) / (k + 1);
    int *kl = as_malloc(sizeof(int) * m);
    kmeans1d(c, kl, x, m, k, p->kmeans_iters);
    qsort(c, (size_t)k, sizeof(double), cmp_double);
    double *resp = as_calloc(m * (size_t)k, sizeof(double));
    for (size_t i = 0; i < m; i++) {
        int b = nearest_centre(c, k, x[i]);
        resp[i * k + b] = 1.0;
        labels[idx[i]] = (uint8_t)(b + 1);
    }
    free(kl);
    gmm1d g = {.k = k};
    gmm1d_mstep(&g, resp, x, m, p->reg_covar);

    // MRF neighbourhood: offsets and 1/distance weights (centre excluded).
    int r = p->mrf_beta > 0 ? p->mrf_radius : 0, rz = p->ndim == 3 ? r : 0;
    int nnb = 0, nb[342][3];
    double nbw[342];
    for (int dz = -rz; dz <= rz; dz++)
        for (int dy = -r; dy <= r; dy++)
            for (int dx = -r; dx <= r; dx++) {
                if (!dx && !dy && !dz) continue;
                nb[nnb][0] = dx, nb[nnb][1] = dy, nb[nnb][2] = dz;
                nbw[nnb++] = p->mrf_beta / sqrt((double)(dx * dx + dy * dy + dz * dz));
            }
    // ICM colouring: residues modulo r+1 per axis; same colour => never neighbours.
    int mod = r + 1, ncol = mod * mod * (rz ? mod : 1);
    uint8_t *col = as_malloc(m);
    int *xyz = as_malloc(sizeof(int) * 3 * m);
    for (size_t i = 0; i < m; i++) {
        size_t v = idx[i];
        int xx = (int)(v % nx), yy = (int)(v / nx % ny), zz = (int)(v / ((size_t)nx * ny));
        xyz[3 * i] = xx, xyz[3 * i + 1] = yy, xyz[3 * i + 2] = zz;
        col[i] = (uint8_t)(xx % mod + mod * (yy % mod) + (rz ? mod * mod * (zz % mod) : 0));
    }

    double prev_meanmax = -1;
    for (int it = 0; it < p->iterations; it++) {
        double c0[GMM_MAX_CLASSES], h[GMM_MAX_CLASSES];
        gmm_consts(&g, c0, h);
        double meanmax = 0;
        // Colour groups in turn: voxels of one colour are never neighbours (asynchronous ICM).
        for (int cc = 0; cc < (nnb ? ncol : 1); cc++) {
            for (size_t i = 0; i < m; i++) {
                if (nnb && col[i] != cc) continue;
                double lp[GMM_MAX_CLASSES];
                for (int j = 0; j < k; j++) {
                    double d = x[i] - g.mean[j];
                    lp[j] = c0[j] - h[j] * d * d;
                }
                if (nnb) {
                    int xx = xyz[3 * i], yy = xyz[3 * i + 1], zz = xyz[3 * i + 2];
                    for (int e = 0; e < nnb; e++) {
                        int ax = xx + nb[e][0], ay = yy + nb[e][1], az = zz + nb[e][2];
                        if (ax < 0 || ax >= nx || ay < 0 || ay >= ny || az < 0 || az >= nz) continue;
                        int l = labels[ax + (size_t)nx * (ay + (size_t)ny * az)];
                        if (l) lp[l - 1] += nbw[e];  // outside the mask (0) carries no vote
                    }
                }
                // posteriors = softmax(lp); the label is the argmax
                double *post = resp + i * k, mx = lp[0], sum = 0;
                int b = 0;
                for (int j = 1; j < k; j++)
                    if (lp[j] > mx) mx = lp[j], b = j;
                for (int j = 0; j < k; j++) sum += post[j] = exp(lp[j] - mx);
                for (int j = 0; j < k; j++) post[j] /= sum;
                labels[idx[i]] = (uint8_t)(b + 1);
                meanmax += post[b];
            }
        }
        meanmax /= (double)m;
        gmm1d_mstep(&g, resp, x, m, p->reg_covar);
        if (p->tol > 0 && fabs(meanmax - prev_meanmax) < p->tol) break;
        prev_meanmax = meanmax;
    }

    // Order classes by mean (the M-step can swap two close classes).
    int order[GMM_MAX_CLASSES], rank[GMM_MAX_CLASSES];
    for (int j = 0; j < k; j++) order[j] = j;
    for (int a = 1; a < k; a++)  // insertion sort, stable
        for (int b = a; b > 0 && g.mean[order[b]] < g.mean[order[b - 1]]; b--) {
            int t = order[b];
            order[b] = order[b - 1], order[b - 1] = t;
        }
    for (int j = 0; j < k; j++) rank[order[j]] = j;
    for (size_t i = 0; i < m; i++) labels[idx[i]] = (uint8_t)(rank[labels[idx[i]] - 1] + 1);
    if (gout) {
        gout->k = k;
        for (int j = 0; j < k; j++)
            gout->weight[j] = g.weight[order[j]], gout->mean[j] = g.mean[order[j]], gout->var[j] = g.var[order[j]];
    }
    free(xyz);
    free(col);
    free(resp);
    free(x);
    free(idx);
    return 0;
}
