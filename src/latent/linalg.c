#include "latent/linalg.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

static double col_dot(const double *Q, int m, int p, int a, const double *v, int b) {
    double s = 0;
    for (int i = 0; i < m; i++) s += Q[(size_t)i * p + a] * (b < 0 ? v[i] : v[(size_t)i * p + b]);
    return s;
}

void linalg_orthonormalize(double *Q, int m, int p, const double *v0) {
    for (int c = 0; c < p; c++) {
        for (int pass = 0; pass < 2; pass++) {
            if (v0) {
                double s = col_dot(Q, m, p, c, v0, -1);
                for (int i = 0; i < m; i++) Q[(size_t)i * p + c] -= s * v0[i];
            }
            for (int o = 0; o < c; o++) {
                double s = col_dot(Q, m, p, c, Q, o);
                for (int i = 0; i < m; i++) Q[(size_t)i * p + c] -= s * Q[(size_t)i * p + o];
            }
        }
        double nn = sqrt(col_dot(Q, m, p, c, Q, c));
        if (nn < 1e-300) {
            // A dependent column: restart it from a coordinate vector and orthogonalise again.
            for (int i = 0; i < m; i++) Q[(size_t)i * p + c] = i == c % m ? 1.0 : 0.0;
            c--;
            continue;
        }
        for (int i = 0; i < m; i++) Q[(size_t)i * p + c] /= nn;
    }
}

void linalg_gram(double *H, const double *Q, const double *Z, int m, int p) {
    memset(H, 0, sizeof(double) * (size_t)p * p);
    for (int i = 0; i < m; i++)
        for (int a = 0; a < p; a++)
            for (int b = 0; b < p; b++) H[a * p + b] += Q[(size_t)i * p + a] * Z[(size_t)i * p + b];
    for (int a = 0; a < p; a++)  // symmetrise what rounding left
        for (int b = a + 1; b < p; b++) H[a * p + b] = H[b * p + a] = 0.5 * (H[a * p + b] + H[b * p + a]);
}

void linalg_sym_eigen(double *A, int p, double *theta, double *V) {
    for (int i = 0; i < p * p; i++) V[i] = (i / p == i % p);
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0, tot = 0;
        for (int i = 0; i < p; i++)
            for (int j = 0; j < p; j++) {
                tot += A[i * p + j] * A[i * p + j];
                if (i != j) off += A[i * p + j] * A[i * p + j];
            }
        if (off <= 1e-30 * tot || off == 0) break;
        for (int q = 0; q < p; q++)
            for (int r = q + 1; r < p; r++) {
                double aqr = A[q * p + r];
                if (aqr == 0) continue;
                double tau = (A[r * p + r] - A[q * p + q]) / (2 * aqr);
                double t = (tau >= 0 ? 1 : -1) / (fabs(tau) + sqrt(1 + tau * tau));
                double c = 1 / sqrt(1 + t * t), s = t * c;
                for (int k = 0; k < p; k++) {  // A = J' A J
                    double akq = A[k * p + q], akr = A[k * p + r];
                    A[k * p + q] = c * akq - s * akr;
                    A[k * p + r] = s * akq + c * akr;
                }
                for (int k = 0; k < p; k++) {
                    double aqk = A[q * p + k], ark = A[r * p + k];
                    A[q * p + k] = c * aqk - s * ark;
                    A[r * p + k] = s * aqk + c * ark;
                }
                for (int k = 0; k < p; k++) {
                    double vkq = V[k * p + q], vkr = V[k * p + r];
                    V[k * p + q] = c * vkq - s * vkr;
                    V[k * p + r] = s * vkq + c * vkr;
                }
            }
    }
    for (int i = 0; i < p; i++) theta[i] = A[i * p + i];
    // Selection sort, descending, with the columns of V.
    for (int i = 0; i < p; i++) {
        int b = i;
        for (int j = i + 1; j < p; j++)
            if (theta[j] > theta[b]) b = j;
        if (b != i) {
            double t = theta[i];
            theta[i] = theta[b], theta[b] = t;
            for (int k = 0; k < p; k++) {
                double v = V[k * p + i];
                V[k * p + i] = V[k * p + b], V[k * p + b] = v;
            }
        }
        int big = 0;
        for (int k = 1; k < p; k++)
            if (fabs(V[k * p + i]) > fabs(V[big * p + i])) big = k;
        if (V[big * p + i] < 0)
            for (int k = 0; k < p; k++) V[k * p + i] = -V[k * p + i];
    }
}

void linalg_rotate(double *Q, const double *V, int m, int p) {
    double *row = as_malloc(sizeof(double) * (size_t)p);
    for (int i = 0; i < m; i++) {
        double *q = Q + (size_t)i * p;
        for (int b = 0; b < p; b++) {
            double s = 0;
            for (int a = 0; a < p; a++) s += q[a] * V[a * p + b];
            row[b] = s;
        }
        memcpy(q, row, sizeof(double) * (size_t)p);
    }
    free(row);
}

void linalg_pca(const float *X, int n, int d, int k, float *out, double *var) {
    // Covariance (d, d) in double, then its top k eigenvectors by subspace iteration with
    // Rayleigh-Ritz (d is a latent width, a few hundred at most here).
    double *mean = as_calloc((size_t)d, sizeof(double));
    for (int i = 0; i < n; i++)
        for (int c = 0; c < d; c++) mean[c] += X[(size_t)i * d + c];
    for (int c = 0; c < d; c++) mean[c] /= n;
    double *C = as_calloc((size_t)d * d, sizeof(double)), *xc = as_malloc(sizeof(double) * (size_t)d);
    for (int i = 0; i < n; i++) {
        for (int c = 0; c < d; c++) xc[c] = X[(size_t)i * d + c] - mean[c];
        for (int a = 0; a < d; a++)
            for (int b = a; b < d; b++) C[(size_t)a * d + b] += xc[a] * xc[b];
    }
    for (int a = 0; a < d; a++)
        for (int b = a; b < d; b++) C[(size_t)b * d + a] = C[(size_t)a * d + b] /= (n > 1 ? n - 1 : 1);
    int p = k + 4 < d ? k + 4 : d;
    double *Q = as_malloc(sizeof(double) * (size_t)d * p), *Z = as_malloc(sizeof(double) * (size_t)d * p);
    double *H = as_malloc(sizeof(double) * (size_t)p * p), *V = as_malloc(sizeof(double) * (size_t)p * p);
    double *theta = as_malloc(sizeof(double) * (size_t)p);
    // A fixed start (no seed needed): a deterministic pseudo-random block.
    uint32_t h = 12345;
    for (size_t i = 0; i < (size_t)d * p; i++) {
        h = h * 1664525u + 1013904223u;
        Q[i] = (double)(h >> 8) / (1 << 24) - 0.5;
    }
    linalg_orthonormalize(Q, d, p, NULL);
    double prev = -1;
    for (int it = 0; it < 500; it++) {
        for (int a = 0; a < d; a++)
            for (int t = 0; t < p; t++) {
                double s = 0;
                for (int b = 0; b < d; b++) s += C[(size_t)a * d + b] * Q[(size_t)b * p + t];
                Z[(size_t)a * p + t] = s;
            }
        linalg_gram(H, Q, Z, d, p);
        linalg_sym_eigen(H, p, theta, V);
        linalg_rotate(Z, V, d, p);
        memcpy(Q, Z, sizeof(double) * (size_t)d * p);
        linalg_orthonormalize(Q, d, p, NULL);
        double s = 0;
        for (int t = 0; t < k; t++) s += theta[t];
        if (fabs(s - prev) <= 1e-13 * fabs(s) && it > 5) break;
        prev = s;
    }
    // Final Ritz vectors, signed like linalg_sym_eigen's convention.
    for (int t = 0; t < k; t++) {
        int big = 0;
        for (int a = 1; a < d; a++)
            if (fabs(Q[(size_t)a * p + t]) > fabs(Q[(size_t)big * p + t])) big = a;
        double sg = Q[(size_t)big * p + t] < 0 ? -1 : 1;
        for (int a = 0; a < d; a++) Q[(size_t)a * p + t] *= sg;
        if (var) var[t] = theta[t];
    }
    for (int i = 0; i < n; i++)
        for (int t = 0; t < k; t++) {
            double s = 0;
            for (int c = 0; c < d; c++) s += (X[(size_t)i * d + c] - mean[c]) * Q[(size_t)c * p + t];
            out[(size_t)i * k + t] = (float)s;
        }
    free(theta);
    free(V);
    free(H);
    free(Z);
    free(Q);
    free(xc);
    free(C);
    free(mean);
}
