#include "prep/bspline.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"  // as_malloc, as_calloc

void bspline_lattice_init(bspline_lattice *L, const int mesh[3], int order) {
    L->order = order;
    for (int d = 0; d < 3; d++) L->ncp[d] = mesh[d] + order;
    L->c = as_calloc((size_t)L->ncp[0] * L->ncp[1] * L->ncp[2], sizeof(double));
}

void bspline_lattice_free(bspline_lattice *L) {
    free(L->c);
    L->c = NULL;
}

// The order+1 non-zero uniform B-spline basis values at t in [0, 1] of a cell (Piegl and
// Tiller's BasisFuns on integer knots: left[j] = t + j - 1, right[j] = j - t, so every
// denominator is j and never 0). N[r] belongs to the cell's r-th control point.
static void basis(double *N, double t, int order) {
    N[0] = 1;
    for (int j = 1; j <= order; j++) {
        double saved = 0;
        for (int r = 0; r < j; r++) {
            double right = r + 1 - t, left = t + (j - r) - 1;
            double tmp = N[r] / j;
            N[r] = saved + right * tmp;
            saved = left * tmp;
        }
        N[j] = saved;
    }
}

void bspline_axis_init(bspline_axis *a, const double *pos, int n, double extent, int ncp, int order) {
    int spans = ncp - order, k = order + 1;
    a->n = n;
    a->ncp = ncp;
    a->order = order;
    a->first = as_malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    a->w = as_malloc(sizeof(double) * (size_t)(n > 0 ? n : 1) * k);
    a->lo = as_malloc(sizeof(int) * (size_t)ncp);
    a->hi = as_malloc(sizeof(int) * (size_t)ncp);
    for (int i = 0; i < n; i++) {
        double u = extent > 0 ? pos[i] * spans / extent : 0;
        u = u < 0 ? 0 : u > spans ? spans : u;
        // The last voxel (u = spans) belongs to the last cell at t = 1, as the spline is
        // continuous there; ITK nudges it by epsilon instead.
        int cell = (int)floor(u);
        if (cell > spans - 1) cell = spans - 1;
        a->first[i] = cell;
        basis(a->w + (size_t)i * k, u - cell, order);
    }
    for (int c = 0, lo = 0, hi = 0; c < ncp; c++) {
        while (lo < n && a->first[lo] + order < c) lo++;
        if (hi < lo) hi = lo;
        while (hi < n && a->first[hi] <= c) hi++;
        a->lo[c] = lo;
        a->hi[c] = hi;
    }
}

void bspline_axis_free(bspline_axis *a) {
    free(a->first);
    free(a->w);
    free(a->lo);
    free(a->hi);
    memset(a, 0, sizeof *a);
}

// ---- separable passes over one axis of an x-fastest (dim[0], dim[1], dim[2]) array -------------
// `inner` is the stride of the axis (product of the dims below it), `outer` the product above.

static void axis_strides(const int dim[3], int axis, size_t *inner, size_t *outer) {
    *inner = 1;
    *outer = 1;
    for (int d = 0; d < axis; d++) *inner *= (size_t)dim[d];
    for (int d = axis + 1; d < 3; d++) *outer *= (size_t)dim[d];
}

// Control points -> samples along `axis` (in has dim[axis] = ncp, out has n there). Exactly one
// of out/outf is non-NULL (double or float output).
static void pass_eval(double *out, float *outf, const double *in, const int dim[3], int axis, const bspline_axis *A) {
    size_t inner, outer;
    axis_strides(dim, axis, &inner, &outer);
    int n = A->n, ncp = A->ncp, k = A->order + 1;
    long rows = (long)outer * n;
#pragma omp parallel for schedule(static) if (rows * (long)inner > (1L << 20))
    for (long r = 0; r < rows; r++) {
        size_t o = (size_t)r / n;
        int i = (int)(r % n);
        const double *w = A->w + (size_t)i * k;
        const double *src = in + (o * ncp + A->first[i]) * inner;
        size_t dst = ((size_t)o * n + i) * inner;
        for (size_t s = 0; s < inner; s++) {
            double acc = 0;
            for (int t = 0; t < k; t++) acc += w[t] * src[t * inner + s];
            if (outf) outf[dst + s] = (float)acc;
            else out[dst + s] = acc;
        }
    }
}

// Samples -> control points along `axis`, each sample's weights raised to `power` (the
// transpose of pass_eval for power 1). in has dim[axis] = n, out has ncp there. A gather over the
// samples that see each control point, so rows are independent and the sums' order fixed.
static void pass_adjoint(double *out, const double *in, const int dim[3], int axis, const bspline_axis *A, int power) {
    size_t inner, outer;
    axis_strides(dim, axis, &inner, &outer);
    int n = A->n, ncp = A->ncp, k = A->order + 1;
    long rows = (long)outer * ncp;
#pragma omp parallel for schedule(static) if (rows * (long)inner > (1L << 20))
    for (long r = 0; r < rows; r++) {
        size_t o = (size_t)r / ncp;
        int c = (int)(r % ncp);
        double *dst = out + ((size_t)o * ncp + c) * inner;
        for (size_t s = 0; s < inner; s++) dst[s] = 0;
        for (int i = A->lo[c]; i < A->hi[c]; i++) {
            double w = A->w[(size_t)i * k + (c - A->first[i])], wp = w;
            for (int p = 1; p < power; p++) wp *= w;
            const double *src = in + ((size_t)o * n + i) * inner;
            for (size_t s = 0; s < inner; s++) dst[s] += wp * src[s];
        }
    }
}

void bspline_eval(float *out, const bspline_lattice *L, const bspline_axis ax[3]) {
    int d1[3] = {ax[0].n, L->ncp[1], L->ncp[2]}, d2[3] = {ax[0].n, ax[1].n, L->ncp[2]};
    double *t1 = as_malloc(sizeof(double) * ((size_t)d1[0] * d1[1] * d1[2] + 1));
    double *t2 = as_malloc(sizeof(double) * ((size_t)d2[0] * d2[1] * d2[2] + 1));
    pass_eval(t1, NULL, L->c, L->ncp, 0, &ax[0]);
    pass_eval(t2, NULL, t1, d1, 1, &ax[1]);
    pass_eval(NULL, out, t2, d2, 2, &ax[2]);
    free(t1);
    free(t2);
}

void bspline_fit(bspline_lattice *phi, const float *val, const uint8_t *mask, const bspline_axis ax[3]) {
    int n0 = ax[0].n, n1 = ax[1].n, n2 = ax[2].n, k = phi->order + 1;
    size_t n = (size_t)n0 * n1 * n2;
    // Per-axis sums of squared weights: sum_c w_pc^2 = Sx(i) Sy(j) Sz(k).
    double *S[3];
    for (int d = 0; d < 3; d++) {
        S[d] = as_malloc(sizeof(double) * (size_t)ax[d].n);
        for (int i = 0; i < ax[d].n; i++) {
            double s = 0;
            for (int t = 0; t < k; t++) s += ax[d].w[(size_t)i * k + t] * ax[d].w[(size_t)i * k + t];
            S[d][i] = s;
        }
    }
    double *g = as_malloc(sizeof(double) * n), *m = as_malloc(sizeof(double) * n);
    for (int z = 0; z < n2; z++)
        for (int y = 0; y < n1; y++)
            for (int x = 0; x < n0; x++) {
                size_t p = (size_t)x + (size_t)n0 * ((size_t)y + (size_t)n1 * z);
                int in = !mask || mask[p];
                m[p] = in;
                g[p] = in ? val[p] / (S[0][x] * S[1][y] * S[2][z]) : 0;
            }
    int c0 = phi->ncp[0], c1 = phi->ncp[1], c2 = phi->ncp[2];
    int da[3] = {n0, n1, n2}, db[3] = {c0, n1, n2}, dc[3] = {c0, c1, n2};
    double *ta = as_malloc(sizeof(double) * (size_t)c0 * n1 * n2);
    double *tb = as_malloc(sizeof(double) * (size_t)c0 * c1 * n2);
    size_t nc = (size_t)c0 * c1 * c2;
    double *delta = as_malloc(sizeof(double) * nc), *omega = as_malloc(sizeof(double) * nc);
    pass_adjoint(ta, g, da, 0, &ax[0], 3);
    pass_adjoint(tb, ta, db, 1, &ax[1], 3);
    pass_adjoint(delta, tb, dc, 2, &ax[2], 3);
    pass_adjoint(ta, m, da, 0, &ax[0], 2);
    pass_adjoint(tb, ta, db, 1, &ax[1], 2);
    pass_adjoint(omega, tb, dc, 2, &ax[2], 2);
    for (size_t c = 0; c < nc; c++) phi->c[c] = omega[c] > 0 ? delta[c] / omega[c] : 0;
    for (int d = 0; d < 3; d++) free(S[d]);
    free(g);
    free(m);
    free(ta);
    free(tb);
    free(delta);
    free(omega);
}

// ---- refinement ----------------------------------------------------------------------------------

// One axis of B-spline subdivision. A control point k of the coarse lattice is centred at
// u = k - (order-1)/2; its basis function is 2^-order * sum_j C(order+1, j) times fine basis
// functions centred half a coarse span apart, which puts coarse k's j-th share on fine control
// point 2k + j - order.
static void refine_axis(double *out, const double *in, const int dim[3], int axis, int order) {
    size_t inner, outer;
    axis_strides(dim, axis, &inner, &outer);
    int ncp = dim[axis], nnew = 2 * (ncp - order) + order;
    double binom[BSPLINE_MAX_ORDER + 2];
    binom[0] = 1;
    for (int j = 1; j <= order + 1; j++) binom[j] = binom[j - 1] * (order + 2 - j) / j;
    double scale = ldexp(1.0, -order);
    for (size_t o = 0; o < outer; o++)
        for (int kf = 0; kf < nnew; kf++) {
            double *dst = out + ((size_t)o * nnew + kf) * inner;
            for (size_t s = 0; s < inner; s++) dst[s] = 0;
            for (int j = 0; j <= order + 1; j++) {
                int twice = kf - j + order;  // 2k
                if (twice & 1) continue;
                int kc = twice / 2;
                if (kc < 0 || kc >= ncp) continue;
                const double *src = in + ((size_t)o * ncp + kc) * inner;
                double w = scale * binom[j];
                for (size_t s = 0; s < inner; s++) dst[s] += w * src[s];
            }
        }
}

void bspline_refine(bspline_lattice *out, const bspline_lattice *in) {
    int d = in->order, dim[3] = {in->ncp[0], in->ncp[1], in->ncp[2]};
    double *cur = as_malloc(sizeof(double) * (size_t)dim[0] * dim[1] * dim[2]);
    memcpy(cur, in->c, sizeof(double) * (size_t)dim[0] * dim[1] * dim[2]);
    for (int a = 0; a < 3; a++) {
        int nd[3] = {dim[0], dim[1], dim[2]};
        nd[a] = 2 * (dim[a] - d) + d;
        double *next = as_malloc(sizeof(double) * (size_t)nd[0] * nd[1] * nd[2]);
        refine_axis(next, cur, dim, a, d);
        free(cur);
        cur = next;
        dim[a] = nd[a];
    }
    out->order = d;
    for (int a = 0; a < 3; a++) out->ncp[a] = dim[a];
    out->c = cur;
}
