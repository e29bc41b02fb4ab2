#include "latent/umap.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "latent/linalg.h"
#include "util/error.h"
#include "util/rng.h"
#include "util/timer.h"

// umap-learn's constants (umap/umap_.py).
#define SMOOTH_K_TOLERANCE 1e-5
#define MIN_K_DIST_SCALE 1e-3

void umap_params_default(umap_params *p) {
    *p = (umap_params){.n_neighbors = 15,
                       .dim = 2,
                       .n_epochs = 0,
                       .min_dist = 0.1f,
                       .spread = 1.0f,
                       .negative_sample_rate = 5.0f,
                       .repulsion = 1.0f,
                       .learning_rate = 1.0f,
                       .init = UMAP_INIT_SPECTRAL,
                       .seed = 0,
                       .verbose = 0};
}

void umap_graph_free(umap_graph *g) {
    free(g->row_ptr);
    free(g->col);
    free(g->val);
    memset(g, 0, sizeof *g);
}

// ---- k nearest neighbours -----------------------------------------------------------------------
typedef struct cand {
    double d;
    int j;
} cand;

static int cand_cmp(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->d != y->d) return x->d < y->d ? -1 : 1;
    return (x->j > y->j) - (x->j < y->j);
}

void umap_knn(const float *X, int n, int d, int k, int *idx, float *dist) {
    // Centring keeps |x|^2 + |y|^2 - 2 x.y from cancelling away the small distances in float;
    // the float GEMM only preselects k - 1 + EXTRA candidates, whose distances are then recomputed
    // exactly, so only near-ties at float precision could be decided differently from NumPy.
    enum { EXTRA = 8, BLOCK = 256 };
    float *Xc = as_malloc(sizeof(float) * (size_t)n * d);
    double *mean = as_calloc((size_t)d, sizeof(double));
    for (int i = 0; i < n; i++)
        for (int c = 0; c < d; c++) mean[c] += X[(size_t)i * d + c];
    for (int c = 0; c < d; c++) mean[c] /= n;
    float *sq = as_malloc(sizeof(float) * (size_t)n);
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int c = 0; c < d; c++) {
            float v = (float)(X[(size_t)i * d + c] - mean[c]);
            Xc[(size_t)i * d + c] = v;
            s += (double)v * v;
        }
        sq[i] = (float)s;
    }
    const int want = k - 1, nc = want + EXTRA < n - 1 ? want + EXTRA : n - 1;
    float *G = as_malloc(sizeof(float) * (size_t)BLOCK * n);
    for (int r0 = 0; r0 < n; r0 += BLOCK) {
        int rb = n - r0 < BLOCK ? n - r0 : BLOCK;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rb, n, d, 1.0f, Xc + (size_t)r0 * d, d, Xc, d, 0.0f, G,
                    n);
#pragma omp parallel for schedule(dynamic, 8)
        for (int r = 0; r < rb; r++) {
            const int i = r0 + r;
            const float *g = G + (size_t)r * n;
            cand *c = as_malloc(sizeof(cand) * (size_t)(nc + 1));
            int m = 0;
            // Insertion into a sorted list of the nc smallest approximate distances.
            for (int j = 0; j < n; j++) {
                if (j == i) continue;
                double a = (double)sq[i] + sq[j] - 2.0 * g[j];
                if (m == nc && a >= c[m - 1].d) continue;
                int p = m < nc ? m++ : m - 1;
                while (p > 0 && c[p - 1].d > a) {
                    c[p] = c[p - 1];
                    p--;
                }
                c[p] = (cand){a, j};
            }
            for (int q = 0; q < m; q++) {
                const float *xi = X + (size_t)i * d, *xj = X + (size_t)c[q].j * d;
                double s = 0;
                for (int t = 0; t < d; t++) {
                    double v = (double)xi[t] - xj[t];
                    s += v * v;
                }
                c[q].d = sqrt(s);
            }
            qsort(c, (size_t)m, sizeof(cand), cand_cmp);
            idx[(size_t)i * k] = i;
            dist[(size_t)i * k] = 0.0f;
            for (int q = 0; q < want; q++) {
                idx[(size_t)i * k + 1 + q] = c[q].j;
                dist[(size_t)i * k + 1 + q] = (float)c[q].d;
            }
            free(c);
        }
    }
    free(G);
    free(sq);
    free(mean);
    free(Xc);
}

// ---- fuzzy simplicial set -------------------------------------------------------------------------
void umap_smooth_knn_dist(const float *dist, int n, int k, float *sigma, float *rho) {
    const double target = log2((double)k);
    double mean_all = 0;
    for (size_t i = 0; i < (size_t)n * k; i++) mean_all += dist[i];
    mean_all /= (double)n * k;
    for (int i = 0; i < n; i++) {
        const float *di = dist + (size_t)i * k;
        // local_connectivity 1: rho is the first non-zero distance (the nearest point that is not
        // a duplicate), 0 when all are duplicates.
        float r = 0.0f;
        for (int j = 0; j < k; j++)
            if (di[j] > 0.0f) {
                r = di[j];
                break;
            }
        double lo = 0.0, hi = FLT_MAX, mid = 1.0;
        for (int it = 0; it < 64; it++) {
            double psum = 0.0;
            for (int j = 1; j < k; j++) {
                double dd = (double)di[j] - r;
                psum += dd > 0 ? exp(-(dd / mid)) : 1.0;
            }
            if (fabs(psum - target) < SMOOTH_K_TOLERANCE) break;
            if (psum > target) {
                hi = mid;
                mid = (lo + hi) / 2.0;
            } else {
                lo = mid;
                if (hi >= FLT_MAX) mid *= 2;
                else mid = (lo + hi) / 2.0;
            }
        }
        float s = (float)mid;
        if (r > 0.0f) {
            double mi = 0;
            for (int j = 0; j < k; j++) mi += di[j];
            mi /= k;
            if (s < MIN_K_DIST_SCALE * mi) s = (float)(MIN_K_DIST_SCALE * mi);
        } else if (s < MIN_K_DIST_SCALE * mean_all) {
            s = (float)(MIN_K_DIST_SCALE * mean_all);
        }
        sigma[i] = s;
        rho[i] = r;
    }
}

typedef struct entry {
    int r, c;
    float v;
} entry;

static int entry_cmp(const void *a, const void *b) {
    const entry *x = a, *y = b;
    if (x->r != y->r) return x->r < y->r ? -1 : 1;
    return (x->c > y->c) - (x->c < y->c);
}

void umap_fuzzy_simplicial_set(const int *idx, const float *dist, int n, int k, umap_graph *g, float *sigma_out,
                               float *rho_out) {
    float *sigma = sigma_out ? sigma_out : as_malloc(sizeof(float) * (size_t)n);
    float *rho = rho_out ? rho_out : as_malloc(sizeof(float) * (size_t)n);
    umap_smooth_knn_dist(dist, n, k, sigma, rho);
    // A (directed memberships) and A' as one list of (row, col, a, t) pieces: each directed
    // entry (i, j, v) contributes a = v at (i, j) and t = v at (j, i); the union of a cell is
    // a + t - a t.
    size_t m = 0;
    entry *e = as_malloc(sizeof(entry) * (size_t)n * k * 2);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++) {
            int c = idx[(size_t)i * k + j];
            if (c < 0 || c == i) continue;
            float dd = dist[(size_t)i * k + j] - rho[i];
            float v = (dd <= 0.0f || sigma[i] == 0.0f) ? 1.0f : (float)exp(-((double)dd / sigma[i]));
            if (v == 0.0f) continue;
            e[m++] = (entry){i, c, v};
            e[m++] = (entry){c, i, -v};  // the transpose's piece, marked by its sign
        }
    qsort(e, m, sizeof(entry), entry_cmp);
    g->n = n;
    g->row_ptr = as_calloc((size_t)n + 1, sizeof(int));
    g->col = as_malloc(sizeof(int) * (m ? m : 1));
    g->val = as_malloc(sizeof(float) * (m ? m : 1));
    int nnz = 0;
    for (size_t q = 0; q < m;) {
        size_t q2 = q;
        double a = 0, t = 0;
        while (q2 < m && e[q2].r == e[q].r && e[q2].c == e[q].c) {
            if (e[q2].v > 0) a += e[q2].v;
            else t -= e[q2].v;
            q2++;
        }
        double v = a + t - a * t;
        if (v != 0.0) {
            g->col[nnz] = e[q].c;
            g->val[nnz] = (float)v;
            g->row_ptr[e[q].r + 1]++;
            nnz++;
        }
        q = q2;
    }
    for (int i = 0; i < n; i++) g->row_ptr[i + 1] += g->row_ptr[i];
    g->nnz = nnz;
    free(e);
    if (!sigma_out) free(sigma);
    if (!rho_out) free(rho);
}

// ---- a, b ------------------------------------------------------------------------------------------
void umap_find_ab(float spread, float min_dist, float *a_out, float *b_out) {
    enum { NP = 300 };
    double xv[NP], yv[NP];
    for (int i = 0; i < NP; i++) {
        xv[i] = 3.0 * spread * i / (NP - 1);  // np.linspace(0, spread * 3, 300)
        yv[i] = xv[i] < min_dist ? 1.0 : exp(-(xv[i] - min_dist) / spread);
    }
    // Levenberg-Marquardt on f = 1 / (1 + a x^2b): df/da = -x^2b f^2, df/db = -2 a ln(x) x^2b f^2.
    double a = 1.0, b = 1.0, lambda = 1e-3;
    double cost = 0;
    for (int i = 0; i < NP; i++) {
        double f = 1.0 / (1.0 + a * pow(xv[i], 2 * b)), r = yv[i] - f;
        cost += r * r;
    }
    for (int it = 0; it < 200; it++) {
        double JtJ[3] = {0, 0, 0}, Jtr[2] = {0, 0};
        for (int i = 0; i < NP; i++) {
            double x2b = xv[i] > 0 ? pow(xv[i], 2 * b) : 0.0, f = 1.0 / (1.0 + a * x2b), r = yv[i] - f;
            double ja = -x2b * f * f, jb = xv[i] > 0 ? -2.0 * a * log(xv[i]) * x2b * f * f : 0.0;
            JtJ[0] += ja * ja, JtJ[1] += ja * jb, JtJ[2] += jb * jb;
            Jtr[0] += ja * r, Jtr[1] += jb * r;
        }
        int accepted = 0;
        for (int tries = 0; tries < 30 && !accepted; tries++) {
            double m00 = JtJ[0] * (1 + lambda), m11 = JtJ[2] * (1 + lambda), m01 = JtJ[1];
            double det = m00 * m11 - m01 * m01;
            if (det == 0) break;
            // Gauss-Newton step for r = y - f(p): J'J delta = J'r (J = df/dp), damped.
            double da = (m11 * Jtr[0] - m01 * Jtr[1]) / det, db = (m00 * Jtr[1] - m01 * Jtr[0]) / det;
            double na = a + da, nb = b + db, nc = 0;
            for (int i = 0; i < NP; i++) {
                double f = 1.0 / (1.0 + na * pow(xv[i], 2 * nb)), r = yv[i] - f;
                nc += r * r;
            }
            if (isfinite(nc) && nc <= cost) {
                int small = fabs(da) <= 1e-12 * (1 + fabs(a)) && fabs(db) <= 1e-12 * (1 + fabs(b));
                a = na, b = nb, lambda *= 0.1;
                double rel = (cost - nc) / (cost > 0 ? cost : 1);
                cost = nc;
                accepted = 1;
                if (small || rel < 1e-15) it = 1 << 20;
            } else {
                lambda *= 10;
            }
        }
        if (!accepted) break;
    }
    *a_out = (float)a;
    *b_out = (float)b;
}

// ---- initial layout ----------------------------------------------------------------------------------
// Connected components: labels 0.. in order of their first vertex.
static int components(const umap_graph *g, int *label) {
    int nc = 0, *stack = as_malloc(sizeof(int) * (size_t)g->n);
    for (int i = 0; i < g->n; i++) label[i] = -1;
    for (int s = 0; s < g->n; s++) {
        if (label[s] >= 0) continue;
        int top = 0;
        stack[top++] = s;
        label[s] = nc;
        while (top) {
            int v = stack[--top];
            for (int q = g->row_ptr[v]; q < g->row_ptr[v + 1]; q++)
                if (label[g->col[q]] < 0) {
                    label[g->col[q]] = nc;
                    stack[top++] = g->col[q];
                }
        }
        nc++;
    }
    free(stack);
    return nc;
}

// The spectral embedding of the vertices with label[v] == lab (m of them, m > dim + 1): the
// eigenvectors of the 2nd..(dim+1)-th smallest eigenvalues of the normalised Laplacian
// I - D^-1/2 W D^-1/2, i.e. the largest of A = (I + D^-1/2 W D^-1/2) / 2 (eigenvalues in
// [0, 1], so the largest are also the largest in magnitude) after the known first one, sqrt(deg).
// Subspace iteration with Rayleigh-Ritz, to umap's eigsh tolerance 1e-4 or 500 steps (a start
// for the SGD needs no more).
static void spectral_component(const umap_graph *g, const int *label, int lab, int m, int dim, rng *r,
                               float *out /* (m, dim) in vertex order */) {
    int *loc = as_malloc(sizeof(int) * (size_t)g->n), *vert = as_malloc(sizeof(int) * (size_t)m);
    int c = 0;
    for (int v = 0; v < g->n; v++) {
        loc[v] = label[v] == lab ? c : -1;
        if (label[v] == lab) vert[c++] = v;
    }
    double *isd = as_malloc(sizeof(double) * (size_t)m), *v0 = as_malloc(sizeof(double) * (size_t)m);
    double nv0 = 0;
    for (int i = 0; i < m; i++) {
        int v = vert[i];
        double deg = 0;
        for (int q = g->row_ptr[v]; q < g->row_ptr[v + 1]; q++) deg += g->val[q];
        isd[i] = deg > 0 ? 1.0 / sqrt(deg) : 0.0;
        v0[i] = sqrt(deg);
        nv0 += deg;
    }
    nv0 = sqrt(nv0);
    for (int i = 0; i < m; i++) v0[i] /= nv0;
    int p = dim + 6 < m - 1 ? dim + 6 : m - 1;
    double *Q = as_malloc(sizeof(double) * (size_t)m * p), *Z = as_malloc(sizeof(double) * (size_t)m * p);
    double *H = as_malloc(sizeof(double) * (size_t)p * p), *V = as_malloc(sizeof(double) * (size_t)p * p);
    double *theta = as_malloc(sizeof(double) * (size_t)p);
    for (size_t i = 0; i < (size_t)m * p; i++) Q[i] = rng_normal(r);
    // A x for the p columns of X (m, p) row-major.
    #define APPLY(Y, X)                                                                              \
        do {                                                                                         \
            _Pragma("omp parallel for schedule(static)") for (int i = 0; i < m; i++) {              \
                int v = vert[i];                                                                     \
                double *yi = (Y) + (size_t)i * p;                                                    \
                for (int t = 0; t < p; t++) yi[t] = 0.5 * (X)[(size_t)i * p + t];                   \
                for (int q = g->row_ptr[v]; q < g->row_ptr[v + 1]; q++) {                            \
                    int j = loc[g->col[q]];                                                          \
                    double w = 0.5 * isd[i] * g->val[q] * isd[j];                                    \
                    for (int t = 0; t < p; t++) yi[t] += w * (X)[(size_t)j * p + t];                \
                }                                                                                    \
            }                                                                                        \
        } while (0)
    linalg_orthonormalize(Q, m, p, v0);
    for (int it = 1; it <= 500; it++) {
        APPLY(Z, Q);
        if (it % 10 == 0 || it == 500) {
            // Rayleigh-Ritz: H = Q' A Q, rotate Q to H's eigenvectors, residuals |A q - theta q|.
            linalg_gram(H, Q, Z, m, p);
            linalg_sym_eigen(H, p, theta, V);
            linalg_rotate(Q, V, m, p);
            linalg_rotate(Z, V, m, p);
            double worst = 0;
            for (int t = 0; t < dim; t++) {
                double s = 0;
                for (int i = 0; i < m; i++) {
                    double e = Z[(size_t)i * p + t] - theta[t] * Q[(size_t)i * p + t];
                    s += e * e;
                }
                worst = fmax(worst, sqrt(s));
            }
            if (worst < 1e-4) break;
        }
        double *tmp = Q;
        Q = Z, Z = tmp;
        linalg_orthonormalize(Q, m, p, v0);
    }
    #undef APPLY
    for (int i = 0; i < m; i++)
        for (int t = 0; t < dim; t++) out[(size_t)i * dim + t] = (float)Q[(size_t)i * p + t];
    free(theta);
    free(V);
    free(H);
    free(Z);
    free(Q);
    free(v0);
    free(isd);
    free(vert);
    free(loc);
}

static void spectral_layout(const umap_graph *g, const float *X, int d, int dim, rng *r, float *Y) {
    const int n = g->n;
    int *label = as_malloc(sizeof(int) * (size_t)n);
    int nc = components(g, label);
    if (nc == 1) {
        spectral_component(g, label, 0, n, dim, r, Y);
        free(label);
        return;
    }
    // umap's multi_component_layout: each component's own spectral layout, scaled to half the
    // distance to the nearest other component's anchor, around anchors on the +-axes (up to 2 dim
    // components) or at the PCA of the components' centroids.
    double *meta = as_calloc((size_t)nc * dim, sizeof(double));
    if (nc <= 2 * dim) {
        int kk = (nc + 1) / 2;
        for (int c = 0; c < nc; c++) meta[(size_t)c * dim + (c % kk)] = c < kk ? 1.0 : -1.0;
    } else {
        double *cent = as_calloc((size_t)nc * d, sizeof(double));
        int *cnt = as_calloc((size_t)nc, sizeof(int));
        for (int i = 0; i < n; i++) {
            cnt[label[i]]++;
            for (int t = 0; t < d; t++) cent[(size_t)label[i] * d + t] += X[(size_t)i * d + t];
        }
        float *cf = as_malloc(sizeof(float) * (size_t)nc * d), *pc = as_malloc(sizeof(float) * (size_t)nc * dim);
        for (int c = 0; c < nc; c++)
            for (int t = 0; t < d; t++) cf[(size_t)c * d + t] = (float)(cent[(size_t)c * d + t] / cnt[c]);
        linalg_pca(cf, nc, d, dim, pc, NULL);
        double mx = 0;
        for (size_t i = 0; i < (size_t)nc * dim; i++) mx = fmax(mx, fabs(pc[i]));
        for (size_t i = 0; i < (size_t)nc * dim; i++) meta[i] = mx > 0 ? pc[i] / mx : 0.0;
        free(pc);
        free(cf);
        free(cnt);
        free(cent);
    }
    int *size = as_calloc((size_t)nc, sizeof(int));
    for (int i = 0; i < n; i++) size[label[i]]++;
    float *part = as_malloc(sizeof(float) * (size_t)n * dim);
    for (int c = 0; c < nc; c++) {
        double range = INFINITY;
        for (int o = 0; o < nc; o++) {
            double s = 0;
            for (int t = 0; t < dim; t++) {
                double v = meta[(size_t)c * dim + t] - meta[(size_t)o * dim + t];
                s += v * v;
            }
            if (s > 0) range = fmin(range, sqrt(s));
        }
        range = isfinite(range) ? range / 2 : 1.0;
        int m = size[c];
        if (m < 2 * dim || m <= dim + 1) {
            for (int i = 0; i < n; i++)
                if (label[i] == c)
                    for (int t = 0; t < dim; t++)
                        Y[(size_t)i * dim + t] =
                            (float)(rng_uniform_range(r, -range, range) + meta[(size_t)c * dim + t]);
            continue;
        }
        spectral_component(g, label, c, m, dim, r, part);
        double mx = 0;
        for (size_t i = 0; i < (size_t)m * dim; i++) mx = fmax(mx, fabs(part[i]));
        double scale = mx > 0 ? range / mx : 0;
        int q = 0;
        for (int i = 0; i < n; i++)
            if (label[i] == c) {
                for (int t = 0; t < dim; t++)
                    Y[(size_t)i * dim + t] = (float)(part[(size_t)q * dim + t] * scale + meta[(size_t)c * dim + t]);
                q++;
            }
    }
    free(part);
    free(size);
    free(meta);
    free(label);
}

void umap_init_layout(const umap_graph *g, const float *X, int d, const umap_params *p, float *Y) {
    const int n = g->n, dim = p->dim;
    rng r;
    rng_seed_stream(&r, p->seed, 1);
    if (p->init == UMAP_INIT_RANDOM) {
        for (size_t i = 0; i < (size_t)n * dim; i++) Y[i] = (float)rng_uniform_range(&r, -10.0, 10.0);
    } else {
        spectral_layout(g, X, d, dim, &r, Y);
        // noisy_scale_coords: largest |coordinate| 10, plus N(0, 1e-4) noise against ties.
        double mx = 0;
        for (size_t i = 0; i < (size_t)n * dim; i++) mx = fmax(mx, fabs(Y[i]));
        for (size_t i = 0; i < (size_t)n * dim; i++)
            Y[i] = (float)(Y[i] * (mx > 0 ? 10.0 / mx : 1.0)) + (float)(1e-4 * rng_normal(&r));
    }
    // simplicial_set_embedding then maps every coordinate onto [0, 10].
    for (int t = 0; t < dim; t++) {
        float lo = INFINITY, hi = -INFINITY;
        for (int i = 0; i < n; i++) {
            lo = fminf(lo, Y[(size_t)i * dim + t]);
            hi = fmaxf(hi, Y[(size_t)i * dim + t]);
        }
        float w = hi - lo;
        for (int i = 0; i < n; i++) Y[(size_t)i * dim + t] = w > 0 ? 10.0f * (Y[(size_t)i * dim + t] - lo) / w : 0.0f;
    }
}

// ---- SGD ------------------------------------------------------------------------------------------------
static inline float clip4(float v) { return v > 4.0f ? 4.0f : v < -4.0f ? -4.0f : v; }

void umap_optimize(const umap_graph *g, const umap_params *p, float *Y) {
    const int n = g->n, dim = p->dim;
    const int n_epochs = p->n_epochs > 0 ? p->n_epochs : n <= 10000 ? 500 : 200;
    float a, b;
    umap_find_ab(p->spread, p->min_dist, &a, &b);
    float wmax = 0;
    for (int q = 0; q < g->nnz; q++) wmax = fmaxf(wmax, g->val[q]);
    // Edges too weak to be sampled once in n_epochs are dropped, as umap does.
    const float cut = n_epochs > 10 ? wmax / (float)n_epochs : wmax / 500.0f;
    int ne = 0;
    for (int q = 0; q < g->nnz; q++) ne += g->val[q] >= cut;
    const size_t ns = ne ? (size_t)ne : 1;
    int *head = as_malloc(sizeof(int) * ns), *tail = as_malloc(sizeof(int) * ns);
    double *eps = as_malloc(sizeof(double) * ns), *next = as_malloc(sizeof(double) * ns);
    double *epsn = as_malloc(sizeof(double) * ns), *nextn = as_malloc(sizeof(double) * ns);
    ne = 0;
    for (int i = 0; i < n; i++)
        for (int q = g->row_ptr[i]; q < g->row_ptr[i + 1]; q++) {
            if (g->val[q] < cut) continue;
            head[ne] = i, tail[ne] = g->col[q];
            // make_epochs_per_sample: n_epochs / (n_epochs * w / wmax)
            double ns = (double)n_epochs * ((double)g->val[q] / wmax);
            eps[ne] = (double)n_epochs / ns;
            next[ne] = eps[ne];
            epsn[ne] = eps[ne] / p->negative_sample_rate;
            nextn[ne] = epsn[ne];
            ne++;
        }
    rng r;
    rng_seed_stream(&r, p->seed, 2);
    const float gamma = p->repulsion;
    double alpha = p->learning_rate;
    const double t0 = now_seconds();
    for (int ep = 0; ep < n_epochs; ep++) {
        const float al = (float)alpha;
        for (int i = 0; i < ne; i++) {
            if (next[i] > ep) continue;
            const int j = head[i];
            float *cur = Y + (size_t)j * dim, *oth = Y + (size_t)tail[i] * dim;
            float d2 = 0;
            for (int t = 0; t < dim; t++) d2 += (cur[t] - oth[t]) * (cur[t] - oth[t]);
            float gc = 0.0f;
            if (d2 > 0.0f) {
                float pb = powf(d2, b);
                gc = -2.0f * a * b * pb / d2 / (a * pb + 1.0f);
            }
            for (int t = 0; t < dim; t++) {
                float gd = clip4(gc * (cur[t] - oth[t]));
                cur[t] += gd * al;
                oth[t] -= gd * al;
            }
            next[i] += eps[i];
            int nneg = (int)(((double)ep - nextn[i]) / epsn[i]);
            for (int s = 0; s < nneg; s++) {
                int kk = (int)rng_below(&r, (uint32_t)n);
                const float *o = Y + (size_t)kk * dim;
                float e2 = 0;
                for (int t = 0; t < dim; t++) e2 += (cur[t] - o[t]) * (cur[t] - o[t]);
                if (e2 > 0.0f) {
                    float rc = 2.0f * gamma * b / ((0.001f + e2) * (a * powf(e2, b) + 1.0f));
                    for (int t = 0; t < dim; t++) cur[t] += clip4(rc * (cur[t] - o[t])) * al;
                }
            }
            nextn[i] += nneg * epsn[i];
        }
        alpha = p->learning_rate * (1.0 - (double)ep / n_epochs);  // umap's schedule, n not n + 1
        if (p->verbose && (ep + 1) % 50 == 0)
            fprintf(stderr, "umap: epoch %d/%d (%.1f s)\n", ep + 1, n_epochs, now_seconds() - t0);
    }
    free(nextn);
    free(epsn);
    free(next);
    free(eps);
    free(tail);
    free(head);
}

int umap_embed(const float *X, int n, int d, const umap_params *p, float *Y) {
    if (n < 3) return as_fail("umap: %d points (at least 3 needed)", n);
    if (d < 1 || p->dim < 1) return as_fail("umap: dimensions %d -> %d", d, p->dim);
    if (p->n_neighbors < 2) return as_fail("umap: n_neighbors %d (at least 2)", p->n_neighbors);
    for (size_t i = 0; i < (size_t)n * d; i++)
        if (!isfinite(X[i])) return as_fail("umap: point %zu has a non-finite coordinate", i / (size_t)d);
    // umap-learn truncates n_neighbors to the data set's size the same way.
    const int k = p->n_neighbors < n ? p->n_neighbors : n - 1;
    const double t0 = now_seconds();
    int *idx = as_malloc(sizeof(int) * (size_t)n * k);
    float *dist = as_malloc(sizeof(float) * (size_t)n * k);
    umap_knn(X, n, d, k, idx, dist);
    if (p->verbose) fprintf(stderr, "umap: %d points, %d-NN graph (%.1f s)\n", n, k, now_seconds() - t0);
    umap_graph g;
    umap_fuzzy_simplicial_set(idx, dist, n, k, &g, NULL, NULL);
    free(dist);
    free(idx);
    umap_init_layout(&g, X, d, p, Y);
    if (p->verbose) fprintf(stderr, "umap: initial layout (%.1f s)\n", now_seconds() - t0);
    umap_optimize(&g, p, Y);
    if (p->verbose) fprintf(stderr, "umap: done (%.1f s)\n", now_seconds() - t0);
    umap_graph_free(&g);
    return 0;
}
