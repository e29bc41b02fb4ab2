#include "prep/n4.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "prep/bspline.h"  // bspline_lattice, bspline_axis, bspline_fit/eval/refine
#include "util/error.h"    // as_fail, as_malloc, as_calloc

void n4_options_default(n4_options *o) {
    memset(o, 0, sizeof *o);
    o->shrink = 4;
    o->levels = 4;
    for (int l = 0; l < N4_MAX_LEVELS; l++) o->iterations[l] = 50;
    o->convergence = 0.001;
    o->order = 3;
    o->mesh[0] = o->mesh[1] = o->mesh[2] = 1;
    o->spline_distance = 0;
    o->bins = 200;
    o->fwhm = 0.15;
    o->wiener_noise = 0.01;
}

// ---- histogram sharpening ----------------------------------------------------------------------

// In-place radix-2 FFT of n (a power of two) complex values; forward is numpy's sign
// (exp(-2 pi i k n / N)), inverse scales by 1/n.
static void fft(double *re, double *im, int n, int inverse) {
    for (int i = 1, j = 0; i < n; i++) {
        int bit = n >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j ^= bit;
        if (i < j) {
            double t = re[i];
            re[i] = re[j];
            re[j] = t;
            t = im[i];
            im[i] = im[j];
            im[j] = t;
        }
    }
    for (int len = 2; len <= n; len <<= 1) {
        double ang = (inverse ? 2 : -2) * M_PI / len;
        for (int i = 0; i < n; i += len)
            for (int k = 0; k < len / 2; k++) {
                // Twiddles from cos/sin of each angle rather than a running product, which
                // drifts for long transforms.
                double wr = cos(ang * k), wi = sin(ang * k);
                int a = i + k, b = i + k + len / 2;
                double xr = re[b] * wr - im[b] * wi, xi = re[b] * wi + im[b] * wr;
                re[b] = re[a] - xr;
                im[b] = im[a] - xi;
                re[a] += xr;
                im[a] += xi;
            }
    }
    if (inverse)
        for (int i = 0; i < n; i++) {
            re[i] /= n;
            im[i] /= n;
        }
}

// x <- real part of ifft(fft(x) * Ff), Ff real: circular convolution with the Gaussian.
static void convolve_real(double *x, double *tmp, const double *Ff, int n) {
    memset(tmp, 0, sizeof(double) * (size_t)n);
    fft(x, tmp, n, 0);
    for (int i = 0; i < n; i++) {
        x[i] *= Ff[i];
        tmp[i] *= Ff[i];
    }
    fft(x, tmp, n, 1);
}

void n4_sharpen(float *sharp, const float *v, const uint8_t *mask, size_t n, int bins, double fwhm,
                double wiener_noise) {
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (!mask || mask[i]) {
            if (v[i] < lo) lo = v[i];
            if (v[i] > hi) hi = v[i];
        }
    if (!(hi > lo)) {  // nothing, or one value: nothing to sharpen
        for (size_t i = 0; i < n; i++) sharp[i] = (!mask || mask[i]) ? v[i] : 0;
        return;
    }
    double slope = (hi - lo) / (bins - 1);
    double *H = as_calloc((size_t)bins, sizeof(double));
    for (size_t i = 0; i < n; i++) {
        if (mask && !mask[i]) continue;
        double c = (v[i] - lo) / slope;
        int b = (int)floor(c);
        if (b >= bins - 1) H[bins - 1] += 1;
        else {
            H[b] += 1 - (c - b);
            H[b + 1] += c - b;
        }
    }
    // Zero-pad to twice the next power of two so that the circular convolutions do not wrap
    // the histogram's tails onto each other.
    int P = 1;
    while (P < bins) P <<= 1;
    P <<= 1;
    int off = (P - bins) / 2;
    double *buf = as_calloc((size_t)P * 6, sizeof(double));
    double *Vr = buf, *Vi = buf + P, *Ff = buf + 2 * P, *Fi = buf + 3 * P, *Ur = buf + 4 * P, *Ui = buf + 5 * P;
    for (int b = 0; b < bins; b++) Vr[b + off] = H[b];
    fft(Vr, Vi, P, 0);
    // The Gaussian, in bins, with unit area; its transform is real (it is symmetric).
    double sf = fwhm / slope, expf_ = 4 * log(2.0) / (sf * sf), scale = 2 * sqrt(log(2.0) / M_PI) / sf;
    Ff[0] = scale;
    for (int k = 1; k <= P / 2; k++) Ff[k] = Ff[P - k] = scale * exp(-(double)k * k * expf_);
    fft(Ff, Fi, P, 0);
    // Wiener filter conj(F) / (|F|^2 + noise); F is real, and ITK keeps the real part.
    for (int k = 0; k < P; k++) {
        double g = Ff[k] / (Ff[k] * Ff[k] + wiener_noise);
        Ur[k] = Vr[k] * g;
        Ui[k] = Vi[k] * g;
    }
    fft(Ur, Ui, P, 1);
    // E[u | v] = (G * (u U)) / (G * U) at each bin, u the bin centres.
    double *num = Vr, *den = Ui, *tmp = Vi;  // Vr, Vi and Ui are free now
    for (int k = 0; k < P; k++) {
        double u = Ur[k] > 0 ? Ur[k] : 0;
        den[k] = u;
        num[k] = (lo + (double)(k - off) * slope) * u;
    }
    convolve_real(num, tmp, Ff, P);
    convolve_real(den, tmp, Ff, P);
    double *E = H;  // bins values, reusing H
    for (int b = 0; b < bins; b++) E[b] = den[b + off] != 0 ? num[b + off] / den[b + off] : 0;
    for (size_t i = 0; i < n; i++) {
        if (mask && !mask[i]) {
            sharp[i] = 0;
            continue;
        }
        double c = (v[i] - lo) / slope;
        int b = (int)floor(c);
        sharp[i] = (float)(b < bins - 1 ? E[b] + (E[b + 1] - E[b]) * (c - b) : E[bins - 1]);
    }
    free(buf);
    free(H);
}

// ---- foreground ----------------------------------------------------------------------------------

float n4_otsu_threshold(const float *img, size_t n) {
    enum { NB = 256 };
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (img[i] < lo) lo = img[i];
        if (img[i] > hi) hi = img[i];
    }
    if (!(hi > lo)) return nextafterf((float)lo, -INFINITY);  // all equal: all foreground
    double hist[NB] = {0}, width = (hi - lo) / NB;
    for (size_t i = 0; i < n; i++) {
        int b = (int)((img[i] - lo) / (hi - lo) * NB);
        hist[b < NB ? b : NB - 1] += 1;
    }
    double total = 0, sum = 0;
    for (int b = 0; b < NB; b++) {
        total += hist[b];
        sum += hist[b] * (b + 0.5);
    }
    double w0 = 0, s0 = 0, best = -1;
    int tbest = 0;
    for (int t = 0; t < NB - 1; t++) {
        w0 += hist[t];
        s0 += hist[t] * (t + 0.5);
        double w1 = total - w0;
        if (w0 == 0 || w1 == 0) continue;
        double d = s0 / w0 - (sum - s0) / w1, between = w0 * w1 * d * d;
        if (between > best) {
            best = between;
            tbest = t;
        }
    }
    return (float)(lo + (tbest + 1) * width);
}

// ---- the correction --------------------------------------------------------------------------------

static int check_options(const n4_options *o) {
    if (o->shrink < 1 || o->shrink > 64) return as_fail("n4: shrink factor %d outside 1..64", o->shrink);
    if (o->levels < 1 || o->levels > N4_MAX_LEVELS)
        return as_fail("n4: %d fitting levels outside 1..%d", o->levels, N4_MAX_LEVELS);
    for (int l = 0; l < o->levels; l++)
        if (o->iterations[l] < 1) return as_fail("n4: %d iterations at level %d (need >= 1)", o->iterations[l], l + 1);
    if (!(o->convergence >= 0)) return as_fail("n4: convergence threshold %g is not >= 0", o->convergence);
    if (o->order < 1 || o->order > BSPLINE_MAX_ORDER)
        return as_fail("n4: spline order %d outside 1..%d", o->order, BSPLINE_MAX_ORDER);
    for (int d = 0; d < 3; d++)
        if (o->mesh[d] < 1 || o->mesh[d] > 4096) return as_fail("n4: mesh size %d outside 1..4096", o->mesh[d]);
    if (!(o->spline_distance >= 0) || isinf(o->spline_distance))
        return as_fail("n4: spline distance %g is not a finite value >= 0", o->spline_distance);
    if (o->bins < 2 || o->bins > 1 << 16) return as_fail("n4: %d histogram bins outside 2..65536", o->bins);
    if (!(o->fwhm > 0) || isinf(o->fwhm)) return as_fail("n4: histogram FWHM %g is not a finite value > 0", o->fwhm);
    if (!(o->wiener_noise >= 0) || isinf(o->wiener_noise))
        return as_fail("n4: Wiener noise %g is not a finite value >= 0", o->wiener_noise);
    return 0;
}

// Coefficient of variation of exp(a - b) over the mask: ITK's convergence measure. tmp: n floats.
static double change_cv(const float *a, const float *b, const uint8_t *m, size_t n, float *tmp) {
    double s = 0, s2 = 0;
    size_t cnt = 0;
    for (size_t i = 0; i < n; i++)
        if (m[i]) {
            tmp[cnt] = (float)exp((double)a[i] - b[i]);
            s += tmp[cnt++];
        }
    if (cnt < 2) return 0;
    double mu = s / cnt;
    for (size_t i = 0; i < cnt; i++) s2 += (tmp[i] - mu) * (tmp[i] - mu);
    return sqrt(s2 / (cnt - 1)) / mu;
}

// Sample positions along one axis: every s-th voxel from the block centre (s-1)/2.
static int shrink_positions(double *pos, int n, int s) {
    int off = (s - 1) / 2 < n - 1 ? (s - 1) / 2 : n - 1, m = (n - 1 - off) / s + 1;
    for (int j = 0; j < m; j++) pos[j] = (double)j * s + off;
    return m;
}

static void axes_init(bspline_axis ax[3], double *const pos[3], const int m[3], const int n[3], const int ncp[3],
                      int order) {
    for (int d = 0; d < 3; d++) bspline_axis_init(&ax[d], pos[d], m[d], n[d] - 1, ncp[d], order);
}

static void axes_free(bspline_axis ax[3]) {
    for (int d = 0; d < 3; d++) bspline_axis_free(&ax[d]);
}

int n4_correct(const float *img, const uint8_t *mask, int nx, int ny, int nz, const float spacing[3],
               const n4_options *opt, float *out, float *log_bias) {
    n4_options defaults;
    if (!opt) {
        n4_options_default(&defaults);
        opt = &defaults;
    }
    if (!img || !out || !spacing) return as_fail("n4: missing image, output or spacing");
    if (nx < 1 || ny < 1 || nz < 1 || (double)nx * ny * nz > 1e10)
        return as_fail("n4: bad image size %d x %d x %d", nx, ny, nz);
    for (int d = 0; d < 3; d++)
        if (!(spacing[d] > 0) || isinf(spacing[d])) return as_fail("n4: voxel size %g is not a finite value > 0", spacing[d]);
    if (check_options(opt) != 0) return -1;
    int n[3] = {nx, ny, nz}, order = opt->order;
    int mesh[3];
    for (int d = 0; d < 3; d++) {
        mesh[d] = opt->mesh[d];
        if (opt->spline_distance > 0) {
            double m = ceil((n[d] - 1) * (double)spacing[d] / opt->spline_distance);
            mesh[d] = m < 1 ? 1 : m > 4096 ? 4096 : (int)m;
        }
        if ((double)mesh[d] * (1 << (opt->levels - 1)) > 65536)
            return as_fail("n4: a mesh of %d elements refined over %d levels is too fine", mesh[d], opt->levels);
    }
    size_t nvox = (size_t)nx * ny * nz;
    for (size_t i = 0; i < nvox; i++)
        if (!isfinite(img[i])) return as_fail("n4: voxel %zu is not finite", i);
    float thr = mask ? 0 : n4_otsu_threshold(img, nvox);

    // The shrunk grid: positions in full-resolution voxels, log intensities and the fit's mask.
    double *pos[3];
    int m[3];
    for (int d = 0; d < 3; d++) {
        pos[d] = as_malloc(sizeof(double) * (size_t)n[d]);
        m[d] = shrink_positions(pos[d], n[d], opt->shrink);
    }
    size_t ns = (size_t)m[0] * m[1] * m[2], nin = 0;
    float *logv = as_calloc(ns, sizeof(float)), *logb = as_calloc(ns, sizeof(float));
    float *logu = as_calloc(ns, sizeof(float)), *sharp = as_calloc(ns, sizeof(float)), *newb = as_calloc(ns, sizeof(float));
    uint8_t *sm = as_calloc(ns, 1);
    for (int k = 0; k < m[2]; k++)
        for (int j = 0; j < m[1]; j++)
            for (int i = 0; i < m[0]; i++) {
                size_t p = (size_t)pos[0][i] + (size_t)nx * ((size_t)pos[1][j] + (size_t)ny * (size_t)pos[2][k]);
                size_t q = (size_t)i + (size_t)m[0] * ((size_t)j + (size_t)m[1] * k);
                float x = img[p];
                if ((mask ? mask[p] != 0 : x > thr) && x > 0) {
                    sm[q] = 1;
                    logv[q] = logf(x);
                    nin++;
                }
            }
    int rc = 0;
    if (nin == 0) {
        rc = as_fail("n4: the foreground is empty (no voxel > 0 in the mask at shrink factor %d)", opt->shrink);
        goto done;
    }

    bspline_lattice total, phi;
    bspline_lattice_init(&total, mesh, order);
    bspline_axis ax[3];
    axes_init(ax, pos, m, n, total.ncp, order);
    for (int level = 0; level < opt->levels; level++) {
        double conv = INFINITY;
        for (int it = 0; it < opt->iterations[level] && conv > opt->convergence; it++) {
            for (size_t q = 0; q < ns; q++) logu[q] = sm[q] ? logv[q] - logb[q] : 0;
            n4_sharpen(sharp, logu, sm, ns, opt->bins, opt->fwhm, opt->wiener_noise);
            for (size_t q = 0; q < ns; q++) logu[q] = sm[q] ? logu[q] - sharp[q] : 0;  // the residual
            int cur[3] = {total.ncp[0] - order, total.ncp[1] - order, total.ncp[2] - order};
            bspline_lattice_init(&phi, cur, order);
            bspline_fit(&phi, logu, sm, ax);
            for (size_t c = 0; c < (size_t)total.ncp[0] * total.ncp[1] * total.ncp[2]; c++) total.c[c] += phi.c[c];
            bspline_lattice_free(&phi);
            bspline_eval(newb, &total, ax);
            conv = change_cv(newb, logb, sm, ns, sharp);  // sharp is free until the next iteration
            float *t = logb;
            logb = newb;
            newb = t;
        }
        if (level + 1 < opt->levels) {
            bspline_lattice finer;
            bspline_refine(&finer, &total);
            bspline_lattice_free(&total);
            total = finer;
            axes_free(ax);
            axes_init(ax, pos, m, n, total.ncp, order);
        }
    }
    axes_free(ax);

    // The log bias at every voxel, from the lattice: positions 0..n-1 of the full grid.
    for (int d = 0; d < 3; d++) {
        for (int i = 0; i < n[d]; i++) pos[d][i] = i;
        bspline_axis_init(&ax[d], pos[d], n[d], n[d] - 1, total.ncp[d], order);
    }
    float *lb = log_bias ? log_bias : out != img ? out : as_malloc(sizeof(float) * nvox);
    bspline_eval(lb, &total, ax);
    axes_free(ax);
    bspline_lattice_free(&total);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < nvox; i++) out[i] = img[i] * expf(-lb[i]);
    if (lb != log_bias && lb != out) free(lb);

done:
    for (int d = 0; d < 3; d++) free(pos[d]);
    free(logv);
    free(logb);
    free(logu);
    free(sharp);
    free(newb);
    free(sm);
    return rc;
}
