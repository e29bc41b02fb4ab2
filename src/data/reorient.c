#include "data/reorient.h"

#include <math.h>
#include <string.h>

#include "util/error.h"

static void inverse3(double out[3][3], const double m[3][3]) {
    double det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
                 m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    double r = det != 0 ? 1.0 / det : 0;
    out[0][0] = (m[1][1] * m[2][2] - m[1][2] * m[2][1]) * r;
    out[0][1] = (m[0][2] * m[2][1] - m[0][1] * m[2][2]) * r;
    out[0][2] = (m[0][1] * m[1][2] - m[0][2] * m[1][1]) * r;
    out[1][0] = (m[1][2] * m[2][0] - m[1][0] * m[2][2]) * r;
    out[1][1] = (m[0][0] * m[2][2] - m[0][2] * m[2][0]) * r;
    out[1][2] = (m[0][2] * m[1][0] - m[0][0] * m[1][2]) * r;
    out[2][0] = (m[1][0] * m[2][1] - m[1][1] * m[2][0]) * r;
    out[2][1] = (m[0][1] * m[2][0] - m[0][0] * m[2][1]) * r;
    out[2][2] = (m[0][0] * m[1][1] - m[0][1] * m[1][0]) * r;
}

// nibabel: R = P @ Qs from the SVD of the column-normalised matrix, i.e. its orthogonal polar
// factor. Newton's iteration X <- (X + X^-T)/2 converges to the same matrix for any
// non-singular input (volume_read rejects singular affines).
static void polar_factor(double r[3][3], const double m[3][3]) {
    double x[3][3], inv[3][3];
    memcpy(x, m, sizeof x);
    for (int it = 0; it < 100; it++) {
        inverse3(inv, x);
        double change = 0;
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) {
                double nx = 0.5 * (x[i][j] + inv[j][i]);
                change = fmax(change, fabs(nx - x[i][j]));
                r[i][j] = nx;
            }
        memcpy(x, r, sizeof x);
        if (change < 1e-15) break;
    }
}

void orientation_from_affine(orientation *o, const double a[4][4]) {
    double rs[3][3], r[3][3];
    for (int j = 0; j < 3; j++) {
        double z = sqrt(a[0][j] * a[0][j] + a[1][j] * a[1][j] + a[2][j] * a[2][j]);
        if (z == 0) z = 1;
        for (int i = 0; i < 3; i++) rs[i][j] = a[i][j] / z;
    }
    polar_factor(r, rs);
    int used[3] = {0, 0, 0};
    for (int in = 0; in < 3; in++) {
        int best = -1;
        double bv = -1;
        for (int out = 0; out < 3; out++)  // first maximum, as np.argmax
            if (fabs(r[out][in]) > bv) {
                bv = fabs(r[out][in]);
                best = out;
            }
        if (bv <= 1e-8) {  // cannot happen for a non-singular affine; keep the axis where it is
            for (best = 0; used[best]; best++) {}
        }
        o->axis[in] = best;
        o->flip[in] = r[best][in] < 0;
        used[best] = 1;
        for (int j = 0; j < 3; j++) r[best][j] = 0;  // this world axis is taken
    }
}

void orientation_codes(const double affine[4][4], char code[4]) {
    static const char pos[3] = {'R', 'A', 'S'}, neg[3] = {'L', 'P', 'I'};
    orientation o;
    orientation_from_affine(&o, affine);
    for (int i = 0; i < 3; i++) code[i] = o.flip[i] ? neg[o.axis[i]] : pos[o.axis[i]];
    code[3] = '\0';
}

void orientation_ras_shape(int ras_n[3], const int native_n[3], const orientation *o) {
    for (int i = 0; i < 3; i++) ras_n[o->axis[i]] = native_n[i];
}

// Strides of the RAS array, expressed per native axis (negative when flipped), plus the RAS
// offset of native voxel (0,0,0): then ras index = base + sum_i p[i]*step[i].
static void ras_steps(const int n[3], const orientation *o, ptrdiff_t step[3], ptrdiff_t *base) {
    int rn[3];
    orientation_ras_shape(rn, n, o);
    ptrdiff_t rstride[3] = {1, rn[0], (ptrdiff_t)rn[0] * rn[1]};
    *base = 0;
    for (int i = 0; i < 3; i++) {
        ptrdiff_t s = rstride[o->axis[i]];
        if (o->flip[i]) {
            *base += (ptrdiff_t)(n[i] - 1) * s;
            s = -s;
        }
        step[i] = s;
    }
}

void volume_to_ras(volume *out, const volume *in, orientation *o_out) {
    orientation o;
    orientation_from_affine(&o, in->affine);
    if (o_out) *o_out = o;
    int n[3] = {in->nx, in->ny, in->nz}, rn[3];
    orientation_ras_shape(rn, n, &o);
    float pd[3];
    for (int i = 0; i < 3; i++) pd[o.axis[i]] = in->pixdim[i];
    volume_alloc(out, rn[0], rn[1], rn[2], pd);
    ptrdiff_t step[3], base;
    ras_steps(n, &o, step, &base);
    for (int k = 0; k < n[2]; k++)
        for (int j = 0; j < n[1]; j++) {
            const float *src = in->data + (size_t)n[0] * (j + (size_t)n[1] * k);
            float *dst = out->data + base + j * step[1] + k * step[2];
            for (int i = 0; i < n[0]; i++) dst[i * step[0]] = src[i];
        }
    // new affine = affine @ M, where M takes a RAS voxel index c to the native index p:
    // p[i] = flip[i] ? n[i]-1-c[axis[i]] : c[axis[i]].
    double m[4][4] = {{0}};
    for (int i = 0; i < 3; i++) {
        m[i][o.axis[i]] = o.flip[i] ? -1 : 1;
        m[i][3] = o.flip[i] ? n[i] - 1 : 0;
    }
    m[3][3] = 1;
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) {
            double s = 0;
            for (int k = 0; k < 4; k++) s += in->affine[r][k] * m[k][c];
            out->affine[r][c] = s;
        }
}

void ras_to_native(float *native, const float *ras, const int n[3], const orientation *o) {
    ptrdiff_t step[3], base;
    ras_steps(n, o, step, &base);
    for (int k = 0; k < n[2]; k++)
        for (int j = 0; j < n[1]; j++) {
            float *dst = native + (size_t)n[0] * (j + (size_t)n[1] * k);
            const float *src = ras + base + j * step[1] + k * step[2];
            for (int i = 0; i < n[0]; i++) dst[i] = src[i * step[0]];
        }
}
