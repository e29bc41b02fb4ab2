#include "prep/register.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "prep/mask.h"  // mask_dilate_box
#include "util/affine.h"
#include "util/error.h"
#include "util/gaussian.h"  // gaussian_filter3d (scipy mode nearest, truncate 3)
#include "util/rng.h"

void reg_options_default(reg_options *o) {
    memset(o, 0, sizeof *o);
    o->nlevels = 3;
    o->shrink[0] = 4, o->shrink[1] = 2, o->shrink[2] = 1;
    o->sigma_mm[0] = 4, o->sigma_mm[1] = 2, o->sigma_mm[2] = 1;
    o->rigid_levels = 1;
    o->affine = 1;
    o->samples = 20000;
    o->bins = 32;
    o->iters = 150;
    o->step_mm = 2;
    o->min_step_mm = 0.02;
    o->margin_mm = 12;
    o->seed = 1;
    o->orientation_search = 1;
}

enum { PAD = 2, NCHUNK = 64, EVAL_PARALLEL_MIN = 200000 };

static size_t vidx(const volume *v, int i, int j, int k) {
    return (size_t)i + (size_t)v->nx * ((size_t)j + (size_t)v->ny * k);
}

// ---- image statistics -------------------------------------------------------------------------

// The q-quantiles (0..1) of v's voxels from a 4096-bin histogram between its min and max.
static void quantiles(const float *x, size_t n, const double *q, double *out, int nq) {
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) lo = fminf(lo, x[i]), hi = fmaxf(hi, x[i]);
    enum { NB = 4096 };
    size_t *h = as_calloc(NB, sizeof *h);
    double w = hi > lo ? (hi - lo) / NB : 1;
    for (size_t i = 0; i < n; i++) {
        int b = (int)((x[i] - lo) / w);
        h[b < 0 ? 0 : b >= NB ? NB - 1 : b]++;
    }
    for (int t = 0; t < nq; t++) {
        size_t cum = 0;
        int b = 0;
        while (b < NB - 1 && (double)(cum + h[b]) < q[t] * n) cum += h[b++];
        out[t] = lo + (b + 0.5) * w;
    }
    free(h);
}

void reg_centre_of_mass(double c[3], const volume *v) {
    double q = 0.99, p99;
    size_t n = volume_voxels(v);
    quantiles(v->data, n, &q, &p99, 1);
    double thr = 0.1 * p99, s = 0, m[3] = {0, 0, 0};
    for (int k = 0; k < v->nz; k++)
        for (int j = 0; j < v->ny; j++)
            for (int i = 0; i < v->nx; i++) {
                double x = v->data[vidx(v, i, j, k)];
                if (!(x > thr)) continue;
                s += x, m[0] += x * i, m[1] += x * j, m[2] += x * k;
            }
    double p[3] = {v->nx / 2.0, v->ny / 2.0, v->nz / 2.0};
    if (s > 0)
        for (int d = 0; d < 3; d++) p[d] = m[d] / s;
    affine_apply(c, v->affine, p);
}

// ---- the pyramid: block averages and Gaussian smoothing ---------------------------------------

// out = in averaged over f x f x f blocks (partial blocks at the far edges averaged over what
// they hold); the affine follows: voxel i of out is the centre of block i.
static void shrink_volume(volume *out, const volume *in, int f) {
    int n[3] = {(in->nx + f - 1) / f, (in->ny + f - 1) / f, (in->nz + f - 1) / f};
    float pd[3] = {in->pixdim[0] * f, in->pixdim[1] * f, in->pixdim[2] * f};
    volume_alloc(out, n[0], n[1], n[2], pd);
    double S[4][4];
    affine_identity(S);
    for (int d = 0; d < 3; d++) S[d][d] = f, S[d][3] = (f - 1) / 2.0;
    affine_mul(out->affine, in->affine, S);
#pragma omp parallel for schedule(static)
    for (int k = 0; k < n[2]; k++)
        for (int j = 0; j < n[1]; j++)
            for (int i = 0; i < n[0]; i++) {
                double s = 0;
                int cnt = 0;
                for (int c = k * f; c < (k + 1) * f && c < in->nz; c++)
                    for (int b = j * f; b < (j + 1) * f && b < in->ny; b++)
                        for (int a = i * f; a < (i + 1) * f && a < in->nx; a++) s += in->data[vidx(in, a, b, c)], cnt++;
                out->data[vidx(out, i, j, k)] = (float)(s / cnt);
            }
}

// ---- one pyramid level: samples of the template, the smoothed subject and its gradient ----------

typedef struct level {
    int n;          // samples
    float *x;       // (n, 3) world position of the sample minus the centre c
    float *f;       // template intensity at the sample
    int nx, ny, nz;
    float *vg;      // (nz, ny, nx, 4): smoothed subject, d/di, d/dj, d/dk
    double w2v[4][4];  // subject world -> voxel
    int bins;
    double fmin, fw, mmin, mw;  // histogram origins and bin widths
    // per-sample scratch of one evaluation
    uint8_t *ok;
    int *fb;
    float *mc, *gw;  // continuous subject bin, world gradient (n, 3)
    double *hist;    // (NCHUNK, bins, bins)
} level;

static void level_free(level *L) {
    free(L->x), free(L->f), free(L->vg), free(L->ok), free(L->fb), free(L->mc), free(L->gw), free(L->hist);
    memset(L, 0, sizeof *L);
}

// Level `lev` with shrink s: the template averaged over s^3 blocks (a sample per block whose
// region holds a voxel), the subject over (s/2)^3 blocks (interpolation needs the finer grid),
// both smoothed by sigma_mm.
static int level_build(level *L, const volume *fixed, const uint8_t *region, const volume *moving, const double c[3],
                       const reg_options *o, int lev) {
    memset(L, 0, sizeof *L);
    int s = o->shrink[lev] < 1 ? 1 : o->shrink[lev], sm = s / 2 < 1 ? 1 : s / 2;
    L->bins = o->bins;
    volume fs, rs, ms;
    shrink_volume(&fs, fixed, s);
    {  // the region at the template's level: a block is in when any of its voxels is
        volume rf;
        volume_alloc(&rf, fixed->nx, fixed->ny, fixed->nz, NULL);
        for (size_t i = 0; i < volume_voxels(fixed); i++) rf.data[i] = region[i] != 0;
        shrink_volume(&rs, &rf, s);
        volume_free(&rf);
    }
    double sig[3];
    for (int d = 0; d < 3; d++) sig[d] = o->sigma_mm[lev] / fs.pixdim[d];
    gaussian_filter3d(fs.data, fs.nx, fs.ny, fs.nz, sig, 3.0, GAUSS_NEAREST);
    // candidates: region blocks; a seeded partial shuffle picks the samples
    size_t nvf = volume_voxels(&fs), ncand = 0;
    for (size_t i = 0; i < nvf; i++) ncand += rs.data[i] > 0;
    if (ncand == 0) {
        volume_free(&fs), volume_free(&rs);
        return as_fail("%s: the template's brain mask is empty", volume_source_name(fixed));
    }
    size_t *cand = as_malloc(ncand * sizeof *cand), q = 0;
    for (size_t i = 0; i < nvf; i++)
        if (rs.data[i] > 0) cand[q++] = i;
    volume_free(&rs);
    rng r;
    rng_seed_stream(&r, o->seed, (uint64_t)lev);
    size_t n = ncand < (size_t)o->samples ? ncand : (size_t)o->samples;
    for (size_t a = 0; a < n; a++) {
        size_t b = a + (size_t)(rng_uniform(&r) * (double)(ncand - a));
        if (b >= ncand) b = ncand - 1;
        size_t tmp = cand[a];
        cand[a] = cand[b], cand[b] = tmp;
    }
    L->n = (int)n;
    L->x = as_malloc(n * 3 * sizeof(float));
    L->f = as_malloc(n * sizeof(float));
    double fmin = INFINITY, fmax = -INFINITY;
    for (size_t a = 0; a < n; a++) {
        size_t id = cand[a];
        double p[3] = {(double)(id % fs.nx), (double)((id / fs.nx) % fs.ny), (double)(id / ((size_t)fs.nx * fs.ny))}, w[3];
        affine_apply(w, fs.affine, p);
        for (int d = 0; d < 3; d++) L->x[3 * a + d] = (float)(w[d] - c[d]);
        L->f[a] = fs.data[id];
        fmin = fmin < fs.data[id] ? fmin : fs.data[id];
        fmax = fmax > fs.data[id] ? fmax : fs.data[id];
    }
    free(cand);
    volume_free(&fs);
    // the subject, smoothed, with central-difference gradients (one-sided at the borders)
    shrink_volume(&ms, moving, sm);
    for (int d = 0; d < 3; d++) sig[d] = o->sigma_mm[lev] / ms.pixdim[d];
    gaussian_filter3d(ms.data, ms.nx, ms.ny, ms.nz, sig, 3.0, GAUSS_NEAREST);
    L->nx = ms.nx, L->ny = ms.ny, L->nz = ms.nz;
    size_t nv = volume_voxels(&ms);
    double qs[2] = {0.001, 0.999}, mq[2];
    quantiles(ms.data, nv, qs, mq, 2);
    L->vg = as_malloc(nv * 4 * sizeof(float));
    int dims[3] = {L->nx, L->ny, L->nz};
    size_t st[3] = {1, (size_t)L->nx, (size_t)L->nx * L->ny};
    const float *m = ms.data;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < L->nz; k++)
        for (int j = 0; j < L->ny; j++)
            for (int i = 0; i < L->nx; i++) {
                size_t id = vidx(&ms, i, j, k);
                int p[3] = {i, j, k};
                float *o4 = L->vg + 4 * id;
                o4[0] = m[id];
                for (int d = 0; d < 3; d++) {
                    int lo = p[d] > 0, hi = p[d] < dims[d] - 1;
                    o4[1 + d] = (lo + hi) ? (m[id + hi * st[d]] - m[id - lo * st[d]]) / (float)(lo + hi) : 0.0f;
                }
            }
    int rc = affine_invert(L->w2v, ms.affine);
    volume_free(&ms);
    if (rc != 0) {
        level_free(L);
        return as_fail("%s: singular affine", volume_source_name(moving));
    }
    int nb = o->bins - 2 * PAD;
    if (!(fmax > fmin) || !(mq[1] > mq[0])) {
        level_free(L);
        return as_fail("%s: flat image (no intensity contrast)", volume_source_name(!(fmax > fmin) ? fixed : moving));
    }
    L->fmin = fmin, L->fw = (fmax - fmin) / nb * (1 + 1e-9);
    L->mmin = mq[0], L->mw = (mq[1] - mq[0]) / nb;
    L->ok = as_malloc(n);
    L->fb = as_malloc(n * sizeof(int));
    L->mc = as_malloc(n * sizeof(float));
    L->gw = as_malloc(n * 3 * sizeof(float));
    L->hist = as_malloc((size_t)NCHUNK * o->bins * o->bins * sizeof(double));
    return 0;
}

// ---- the metric --------------------------------------------------------------------------------

static inline double bspline3(double u) {
    u = fabs(u);
    if (u < 1) return (4 - 6 * u * u + 3 * u * u * u) / 6;
    if (u < 2) return (2 - u) * (2 - u) * (2 - u) / 6;
    return 0;
}
static inline double bspline3_d(double u) {
    double a = fabs(u), s = u < 0 ? -1 : 1;
    if (a < 1) return s * (-2 * a + 1.5 * a * a);
    if (a < 2) return -s * 0.5 * (2 - a) * (2 - a);
    return 0;
}

// The transform as y = A x' + b (x' = x - c, b = c + t). Returns the MI; with dydp (P blocks of
// a function filling J = dy/dp at x') the gradient into grad[P].
typedef struct xform {
    double A[3][3], b[3];
    int P;                   // 6 (rigid) or 12 (affine)
    double dR[3][3][3];      // rigid: dR/dtheta_k
} xform;

static double level_eval(level *L, const xform *T, double *grad) {
    int B = L->bins;
    // subject voxel coordinates: V = w2v * [A | b]
    double V[3][3], v0[3];
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++)
            V[i][j] = L->w2v[i][0] * T->A[0][j] + L->w2v[i][1] * T->A[1][j] + L->w2v[i][2] * T->A[2][j];
        v0[i] = L->w2v[i][0] * T->b[0] + L->w2v[i][1] * T->b[1] + L->w2v[i][2] * T->b[2] + L->w2v[i][3];
    }
    memset(L->hist, 0, (size_t)NCHUNK * B * B * sizeof(double));
    int n = L->n;
    // A few ms of work per pass at the default 20000 samples: threads cost more than they save
    // there (measured on the shared 2-core VM: 11.4 s of registration with 2 threads, 3.5 s with
    // 1), so the passes go parallel only for large sample sets. Same sums either way.
#pragma omp parallel for schedule(dynamic, 1) if (n >= EVAL_PARALLEL_MIN)
    for (int ch = 0; ch < NCHUNK; ch++) {
        double *h = L->hist + (size_t)ch * B * B;
        int a0 = (int)((long)n * ch / NCHUNK), a1 = (int)((long)n * (ch + 1) / NCHUNK);
        for (int a = a0; a < a1; a++) {
            const float *x = L->x + 3 * a;
            double p[3];
            for (int i = 0; i < 3; i++) p[i] = V[i][0] * x[0] + V[i][1] * x[1] + V[i][2] * x[2] + v0[i];
            L->ok[a] = 0;
            if (!(p[0] >= 0 && p[1] >= 0 && p[2] >= 0 && p[0] < L->nx - 1 && p[1] < L->ny - 1 && p[2] < L->nz - 1))
                continue;
            int i0 = (int)p[0], j0 = (int)p[1], k0 = (int)p[2];
            double ax = p[0] - i0, ay = p[1] - j0, az = p[2] - k0, s[4] = {0, 0, 0, 0};
            for (int cc = 0; cc < 8; cc++) {
                int di = cc & 1, dj = (cc >> 1) & 1, dk = cc >> 2;
                double w = (di ? ax : 1 - ax) * (dj ? ay : 1 - ay) * (dk ? az : 1 - az);
                const float *g = L->vg + 4 * ((size_t)(i0 + di) + (size_t)L->nx * ((size_t)(j0 + dj) + (size_t)L->ny * (k0 + dk)));
                for (int e = 0; e < 4; e++) s[e] += w * g[e];
            }
            L->ok[a] = 1;
            int fb = (int)((L->f[a] - L->fmin) / L->fw) + PAD;
            fb = fb < PAD ? PAD : fb > B - PAD - 1 ? B - PAD - 1 : fb;
            double mc = (s[0] - L->mmin) / L->mw + PAD;
            mc = mc < PAD ? PAD : mc > B - PAD - 1 ? B - PAD - 1 : mc;
            L->fb[a] = fb;
            L->mc[a] = (float)mc;
            // world gradient: dM/dy = w2v^T dM/dijk; zero where the value was clamped
            int clamped = s[0] < L->mmin || s[0] > L->mmin + L->mw * (B - 2 * PAD - 1);
            for (int d = 0; d < 3; d++)
                L->gw[3 * a + d] =
                    clamped ? 0.0f : (float)(L->w2v[0][d] * s[1] + L->w2v[1][d] * s[2] + L->w2v[2][d] * s[3]);
            int m0 = (int)floor(mc) - 1;
            for (int m = m0; m < m0 + 4; m++) h[fb * B + m] += bspline3(m - mc);
        }
    }
    // joint and marginal probabilities, summed over the chunks in order
    double *pj = as_calloc((size_t)B * B, sizeof(double)), pf[64] = {0}, pm[64] = {0}, tot = 0;
    for (int ch = 0; ch < NCHUNK; ch++)
        for (int e = 0; e < B * B; e++) pj[e] += L->hist[(size_t)ch * B * B + e];
    for (int e = 0; e < B * B; e++) tot += pj[e];
    if (!(tot > 0)) {
        free(pj);
        if (grad) memset(grad, 0, T->P * sizeof(double));
        return 0;
    }
    for (int e = 0; e < B * B; e++) pj[e] /= tot;
    for (int f = 0; f < B; f++)
        for (int m = 0; m < B; m++) pf[f] += pj[f * B + m], pm[m] += pj[f * B + m];
    double mi = 0;
    for (int f = 0; f < B; f++)
        for (int m = 0; m < B; m++) {
            double p = pj[f * B + m];
            if (p > 1e-16) mi += p * log(p / (pf[f] * pm[m]));
        }
    if (grad) {
        // dMI/dp = sum_{f,m} dP(f,m)/dp log(P(f,m)/Pm(m)) (the fixed marginal does not move, and
        // sum dP = 0); dP(f,m)/dp = 1/N sum_samples in f of -bspline3'(m - mc) dmc/dp, with
        // dmc/dp = grad M . dy/dp / mw.
        double *W = pj;  // reused in place: log(P/Pm)
        for (int f = 0; f < B; f++)
            for (int m = 0; m < B; m++) {
                double p = pj[f * B + m];
                W[f * B + m] = p > 1e-16 ? log(p / pm[m]) : 0;
            }
        double *gc = as_calloc((size_t)NCHUNK * 12, sizeof(double));
        int P = T->P;
#pragma omp parallel for schedule(dynamic, 1) if (n >= EVAL_PARALLEL_MIN)
        for (int ch = 0; ch < NCHUNK; ch++) {
            double *g = gc + (size_t)ch * 12;
            int a0 = (int)((long)n * ch / NCHUNK), a1 = (int)((long)n * (ch + 1) / NCHUNK);
            for (int a = a0; a < a1; a++) {
                if (!L->ok[a]) continue;
                double mc = L->mc[a], w = 0;
                int m0 = (int)floor(mc) - 1;
                for (int m = m0; m < m0 + 4; m++) w -= W[L->fb[a] * B + m] * bspline3_d(m - mc);
                if (w == 0) continue;
                const float *gw = L->gw + 3 * a, *x = L->x + 3 * a;
                if (P == 12) {
                    for (int i = 0; i < 3; i++) {
                        double gi = w * gw[i];
                        g[3 * i + 0] += gi * x[0], g[3 * i + 1] += gi * x[1], g[3 * i + 2] += gi * x[2];
                        g[9 + i] += gi;
                    }
                } else {
                    for (int k = 0; k < 3; k++) {
                        double s = 0;
                        for (int i = 0; i < 3; i++)
                            s += gw[i] * (T->dR[k][i][0] * x[0] + T->dR[k][i][1] * x[1] + T->dR[k][i][2] * x[2]);
                        g[k] += w * s;
                    }
                    for (int i = 0; i < 3; i++) g[3 + i] += w * gw[i];
                }
            }
        }
        for (int e = 0; e < P; e++) grad[e] = 0;
        for (int ch = 0; ch < NCHUNK; ch++)
            for (int e = 0; e < P; e++) grad[e] += gc[(size_t)ch * 12 + e];
        for (int e = 0; e < P; e++) grad[e] /= tot * L->mw;
        free(gc);
    }
    free(pj);
    return mi;
}

static double level_valid_fraction(const level *L) {
    long k = 0;
    for (int a = 0; a < L->n; a++) k += L->ok[a];
    return L->n ? (double)k / L->n : 0;
}

// ---- parameterisations ------------------------------------------------------------------------

static void rot3(double R[3][3], const double th[3], int deriv) {
    // R = Rz Ry Rx; deriv 0..2 gives dR/dtheta_deriv, -1 R itself
    double M[3][3][3];
    for (int a = 0; a < 3; a++) {
        double c = cos(th[a]), s = sin(th[a]);
        int d = a == deriv;
        double cc = d ? -s : c, ss = d ? c : s, one = d ? 0 : 1;
        memset(M[a], 0, sizeof M[a]);
        int u = (a + 1) % 3, v = (a + 2) % 3;  // x: (y, z), y: (z, x), z: (x, y)
        M[a][a][a] = one;
        M[a][u][u] = cc, M[a][v][v] = cc, M[a][u][v] = -ss, M[a][v][u] = ss;
    }
    double T[3][3];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) T[i][j] = M[2][i][0] * M[1][0][j] + M[2][i][1] * M[1][1][j] + M[2][i][2] * M[1][2][j];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) R[i][j] = T[i][0] * M[0][0][j] + T[i][1] * M[0][1][j] + T[i][2] * M[0][2][j];
}

static void mat3_mul(double out[3][3], const double a[3][3], const double b[3][3]) {
    double r[3][3];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) r[i][j] = a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j];
    memcpy(out, r, sizeof r);
}

// y = R0 R(theta) x' + c + t: the rigid parameters turn about a base rotation R0 (the start
// the orientation search chose; identity otherwise).
static void xform_rigid(xform *T, const double *p, const double c[3], const double R0[3][3]) {
    T->P = 6;
    rot3(T->A, p, -1);
    mat3_mul(T->A, R0, T->A);
    for (int k = 0; k < 3; k++) {
        rot3(T->dR[k], p, k);
        mat3_mul(T->dR[k], R0, T->dR[k]);
    }
    for (int i = 0; i < 3; i++) T->b[i] = c[i] + p[3 + i];
}

static void xform_affine(xform *T, const double *p, const double c[3]) {
    T->P = 12;
    for (int i = 0; i < 9; i++) T->A[i / 3][i % 3] = p[i];
    for (int i = 0; i < 3; i++) T->b[i] = c[i] + p[9 + i];
}

// Regular-step gradient ascent on the parameters p (P of them), scaled so that a unit step
// moves points by about 1 mm: rotations and matrix entries by the sampling radius.
static int optimise(level *L, double *p, int rigid, const double c[3], const double R0[3][3], double radius,
                    double step, double min_step, int iters) {
    int P = rigid ? 6 : 12, it;
    double scale[12], g[12], prev[12], best[12], best_mi = -INFINITY;
    for (int e = 0; e < P; e++) scale[e] = (rigid ? e < 3 : e < 9) ? radius : 1.0;
    memcpy(best, p, P * sizeof(double));
    memset(prev, 0, sizeof prev);
    xform T;
    for (it = 0; it < iters && step >= min_step; it++) {
        if (rigid) xform_rigid(&T, p, c, R0);
        else xform_affine(&T, p, c);
        double mi = level_eval(L, &T, g), norm = 0, dot = 0;
        if (mi > best_mi) best_mi = mi, memcpy(best, p, P * sizeof(double));
        for (int e = 0; e < P; e++) {
            g[e] /= scale[e];
            norm += g[e] * g[e];
            dot += g[e] * prev[e];
        }
        if (it > 0 && dot < 0) step *= 0.5;
        norm = sqrt(norm);
        if (!(norm > 0)) break;
        for (int e = 0; e < P; e++) p[e] += step * g[e] / norm / scale[e];
        memcpy(prev, g, P * sizeof(double));
    }
    // the last step is not evaluated: keep the best point seen
    if (rigid) xform_rigid(&T, p, c, R0);
    else xform_affine(&T, p, c);
    double mi = level_eval(L, &T, NULL);
    if (best_mi > mi) memcpy(p, best, P * sizeof(double));
    return it;
}

// The orientation search: a short rigid optimisation from each of the 24 rotations that map
// the axes onto the axes (a scan whose header is wrong by a multiple of 90 degrees, or which is
// tilted far: beyond ~45 degrees the gradient ascent alone finds another optimum), on a subset
// of the coarsest level's samples; the best by the metric becomes the base rotation R0. The
// identity comes first and wins ties.
static int orientation_search(level *L, double *p, double R0[3][3], const double c[3], double radius, double step,
                              double min_step) {
    static const int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    int n = L->n, iters = 0;
    L->n = n < 4000 ? n : 4000;
    double best_mi = -INFINITY, best_p[6], start[6];
    memcpy(start, p, sizeof start);
    for (int q = 0; q < 6; q++)
        for (int sg = 0; sg < 8; sg++) {
            double R[3][3] = {{0}};
            for (int i = 0; i < 3; i++) R[i][perms[q][i]] = (sg >> i) & 1 ? -1 : 1;
            if (R[0][0] * (R[1][1] * R[2][2] - R[1][2] * R[2][1]) - R[0][1] * (R[1][0] * R[2][2] - R[1][2] * R[2][0]) +
                    R[0][2] * (R[1][0] * R[2][1] - R[1][1] * R[2][0]) < 0)
                continue;  // a mirror, not a rotation
            double pp[6];
            memcpy(pp, start, sizeof pp);
            iters += optimise(L, pp, 1, c, (const double(*)[3])R, radius, step, min_step * 10, 30);
            xform T;
            xform_rigid(&T, pp, c, (const double(*)[3])R);
            double mi = level_eval(L, &T, NULL);
            if (mi > best_mi) best_mi = mi, memcpy(best_p, pp, sizeof pp), memcpy(R0, R, sizeof R);
        }
    L->n = n;
    memcpy(p, best_p, sizeof best_p);
    return iters;
}

// Singular values of a 3x3 matrix: square roots of the eigenvalues of A^T A (cyclic Jacobi).
static void singular_values(double sv[3], const double A[3][3]) {
    double S[3][3];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) S[i][j] = A[0][i] * A[0][j] + A[1][i] * A[1][j] + A[2][i] * A[2][j];
    for (int sweep = 0; sweep < 50; sweep++) {
        double off = fabs(S[0][1]) + fabs(S[0][2]) + fabs(S[1][2]);
        if (off < 1e-15) break;
        for (int pq = 0; pq < 3; pq++) {
            int p = pq == 2 ? 1 : 0, q = pq == 0 ? 1 : 2;
            if (fabs(S[p][q]) < 1e-300) continue;
            double th = 0.5 * atan2(2 * S[p][q], S[q][q] - S[p][p]), cs = cos(th), sn = sin(th);
            for (int k = 0; k < 3; k++) {  // S = J^T S J
                double a = S[k][p], b = S[k][q];
                S[k][p] = cs * a - sn * b, S[k][q] = sn * a + cs * b;
            }
            for (int k = 0; k < 3; k++) {
                double a = S[p][k], b = S[q][k];
                S[p][k] = cs * a - sn * b, S[q][k] = sn * a + cs * b;
            }
        }
    }
    for (int i = 0; i < 3; i++) sv[i] = sqrt(fmax(S[i][i], 0));
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            if (sv[j] > sv[i]) {
                double t = sv[i];
                sv[i] = sv[j], sv[j] = t;
            }
}

// ---- the whole registration -------------------------------------------------------------------

static uint8_t *sampling_region(const volume *fixed, const uint8_t *mask, double margin) {
    size_t nv = volume_voxels(fixed);
    uint8_t *r = as_malloc(nv);
    for (size_t i = 0; i < nv; i++) r[i] = mask[i] != 0;
    int rad[3];
    for (int d = 0; d < 3; d++) rad[d] = (int)lround(margin / fixed->pixdim[d]);
    mask_dilate_box(r, fixed->nx, fixed->ny, fixed->nz, rad);
    return r;
}

static double sample_radius(const level *L) {
    double s = 0;
    for (int a = 0; a < L->n; a++) s += L->x[3 * a] * L->x[3 * a] + L->x[3 * a + 1] * L->x[3 * a + 1] + L->x[3 * a + 2] * L->x[3 * a + 2];
    return L->n ? sqrt(s / L->n) : 1;
}

static void fixed_centre(double c[3], const volume *fixed, const uint8_t *region) {
    // centre of the sampling region's intensity (the head the samples see)
    double s = 0, m[3] = {0, 0, 0};
    for (int k = 0; k < fixed->nz; k++)
        for (int j = 0; j < fixed->ny; j++)
            for (int i = 0; i < fixed->nx; i++) {
                size_t id = vidx(fixed, i, j, k);
                if (!region[id] || !(fixed->data[id] > 0)) continue;
                double x = fixed->data[id];
                s += x, m[0] += x * i, m[1] += x * j, m[2] += x * k;
            }
    double p[3] = {fixed->nx / 2.0, fixed->ny / 2.0, fixed->nz / 2.0};
    if (s > 0)
        for (int d = 0; d < 3; d++) p[d] = m[d] / s;
    affine_apply(c, fixed->affine, p);
}

static void matrix_from(double M[4][4], const xform *T, const double c[3]) {
    affine_identity(M);
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++) M[i][j] = T->A[i][j];
        M[i][3] = T->b[i] - (T->A[i][0] * c[0] + T->A[i][1] * c[1] + T->A[i][2] * c[2]);
    }
}

static int check_options(const reg_options *o) {
    if (o->nlevels < 1 || o->nlevels > REG_MAX_LEVELS || o->bins < 8 || o->bins > 64 || o->samples < 100)
        return as_fail("registration: bad options (levels %d, bins %d, samples %d)", o->nlevels, o->bins, o->samples);
    return 0;
}

int reg_affine(reg_result *res, const volume *fixed, const uint8_t *fixed_mask, const volume *moving,
               const reg_options *o) {
    memset(res, 0, sizeof *res);
    if (check_options(o) != 0) return -1;
    uint8_t *region = sampling_region(fixed, fixed_mask, o->margin_mm);
    double c[3], cm[3];
    fixed_centre(c, fixed, region);
    // The subject's centre: of its head, matched to the template's sampled head (both centres
    // are of intensity above the background).
    reg_centre_of_mass(cm, moving);
    double cf_head[3];
    reg_centre_of_mass(cf_head, fixed);
    // start: y = x' + c + t with the heads' centres matched
    double p[12] = {0, 0, 0, 0, 0, 0};
    for (int d = 0; d < 3; d++) p[3 + d] = cm[d] - cf_head[d];
    int rc = 0, last = o->nlevels - 1, rigid_phase = 1;
    level L;
    xform T;
    double pa[12] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0};
    const double I3[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
    double R0[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
    // Level by level, coarse to fine, each level's samples and smoothed images built once: the
    // rigid stage on the first rigid_levels levels, then the affine stage from the rigid result
    // (once the affine stage has begun, the rigid one does not come back).
    for (int lev = 0; lev < o->nlevels && rc == 0; lev++) {
        if ((rc = level_build(&L, fixed, region, moving, c, o, lev)) != 0) break;
        double radius = sample_radius(&L), step = o->step_mm * o->shrink[lev];
        if (lev == 0) {  // is anything of the template inside the subject's grid?
            xform_rigid(&T, p, c, I3);
            level_eval(&L, &T, NULL);
            if (level_valid_fraction(&L) < 0.05)
                rc = as_fail("%s: the subject's field of view holds almost none of the template's brain after "
                             "matching the centres of mass", volume_source_name(moving));
            if (rc == 0 && o->orientation_search)
                res->iterations += orientation_search(&L, p, R0, c, radius, step, o->min_step_mm);
        }
        if (rc == 0 && rigid_phase && (lev < o->rigid_levels || !o->affine))
            res->iterations += optimise(&L, p, 1, c, (const double(*)[3])R0, radius, step, o->min_step_mm, o->iters);
        if (rc == 0 && o->affine && lev >= o->rigid_levels - 1) {
            if (rigid_phase) {  // the rigid result as the affine start
                xform_rigid(&T, p, c, (const double(*)[3])R0);
                for (int i = 0; i < 9; i++) pa[i] = T.A[i / 3][i % 3];
                for (int i = 0; i < 3; i++) pa[9 + i] = p[3 + i];
                rigid_phase = 0;
            }
            res->iterations += optimise(&L, pa, 0, c, I3, radius, step, o->min_step_mm, o->iters);
        }
        if (rc == 0 && lev == last) {  // the metric at the finest level, at the start and at the end
            double p0[6] = {0, 0, 0, cm[0] - cf_head[0], cm[1] - cf_head[1], cm[2] - cf_head[2]};
            xform_rigid(&T, p0, c, I3);
            res->mi_initial = level_eval(&L, &T, NULL);
            if (!rigid_phase) xform_affine(&T, pa, c);
            else xform_rigid(&T, p, c, (const double(*)[3])R0);
            res->mi_final = level_eval(&L, &T, NULL);
            res->valid_fraction = level_valid_fraction(&L);
            matrix_from(res->matrix, &T, c);
            singular_values(res->sv, T.A);
        }
        level_free(&L);
    }
    free(region);
    return rc;
}

int reg_mattes_mi(double *mi, double grad[12], const volume *fixed, const uint8_t *fixed_mask, const volume *moving,
                  const reg_options *o, int lev, const double (*m)[4][4], int n) {
    if (check_options(o) != 0 || lev < 0 || lev >= o->nlevels) return as_fail("reg_mattes_mi: bad options or level");
    uint8_t *region = sampling_region(fixed, fixed_mask, o->margin_mm);
    double c[3];
    fixed_centre(c, fixed, region);
    level L;
    int rc = level_build(&L, fixed, region, moving, c, o, lev);
    for (int e = 0; rc == 0 && e < n; e++) {
        // y = A x + m_t = A (x - c) + (A c + m_t)
        xform T;
        T.P = 12;
        for (int i = 0; i < 3; i++) {
            for (int j = 0; j < 3; j++) T.A[i][j] = m[e][i][j];
            T.b[i] = m[e][i][3] + m[e][i][0] * c[0] + m[e][i][1] * c[1] + m[e][i][2] * c[2];
        }
        mi[e] = level_eval(&L, &T, e == 0 ? grad : NULL);
        // d/dA at fixed m_t = d/dA at fixed b + d/db db/dA: g_A[i][j] + g_t[i] c[j]
        if (e == 0 && grad)
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++) grad[3 * i + j] += grad[9 + i] * c[j];
    }
    level_free(&L);
    free(region);
    return rc;
}
