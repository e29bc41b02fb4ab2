#include "data/resample.h"

#include <math.h>
#include <stdlib.h>

#include "util/error.h"

// PyTorch's CPU kernel (aten/src/ATen/native/UpSample.h, torch 1.13): scale = (in-1)/(out-1)
// in float; the source position scale*dst is formed in double (CPU acc_type of float),
// i0 = min(floor(src), in-1), lambda1 = (float)clamp(src - i0, 0, 1), lambda0 = 1 - lambda1 in
// float, i1 = i0 + (i0 < in-1). The double matters: e.g. 61 -> 32 has 31*scale = 59.9999982,
// which float rounding would turn into 60 and a different pair of taps. Probed weight by weight
// against torch (tools/slices_reference.py checks whole volumes).
typedef struct tap {
    int i0, i1;
    float l0, l1;
} tap;

static void taps(tap *t, int out, int in) {
    float scale = out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f;
    for (int d = 0; d < out; d++) {
        double src = (double)scale * d;
        int i0 = (int)floor(src);
        if (i0 > in - 1) i0 = in - 1;
        double l = src - i0;
        float l1 = (float)(l < 0 ? 0 : l > 1 ? 1 : l);
        t[d].i0 = i0;
        t[d].i1 = i0 + (i0 < in - 1 ? 1 : 0);
        t[d].l0 = 1.0f - l1;
        t[d].l1 = l1;
    }
}

void resize_linear_ac(float *out, int oh, int ow, ptrdiff_t os_a, ptrdiff_t os_b, const float *in, int ih, int iw,
                      ptrdiff_t is_a, ptrdiff_t is_b) {
    tap *ta = as_malloc(sizeof(tap) * (size_t)(oh + ow)), *tb = ta + oh;
    taps(ta, oh, ih);
    taps(tb, ow, iw);
    for (int a = 0; a < oh; a++) {
        const float *r0 = in + ta[a].i0 * is_a, *r1 = in + ta[a].i1 * is_a;
        float h0 = ta[a].l0, h1 = ta[a].l1;
        for (int b = 0; b < ow; b++) {
            ptrdiff_t c0 = tb[b].i0 * is_b, c1 = tb[b].i1 * is_b;
            float w0 = tb[b].l0, w1 = tb[b].l1;
            out[a * os_a + b * os_b] = h0 * (w0 * r0[c0] + w1 * r0[c1]) + h1 * (w0 * r1[c0] + w1 * r1[c1]);
        }
    }
    free(ta);
}

void resize_nearest_ac(float *out, int oh, int ow, ptrdiff_t os_a, ptrdiff_t os_b, const float *in, int ih, int iw,
                       ptrdiff_t is_a, ptrdiff_t is_b) {
    double sa = oh > 1 ? (double)(ih - 1) / (oh - 1) : 0, sb = ow > 1 ? (double)(iw - 1) / (ow - 1) : 0;
    for (int a = 0; a < oh; a++) {
        long ia = lround(sa * a);
        if (ia > ih - 1) ia = ih - 1;
        for (int b = 0; b < ow; b++) {
            long ib = lround(sb * b);
            if (ib > iw - 1) ib = iw - 1;
            out[a * os_a + b * os_b] = in[ia * is_a + ib * is_b];
        }
    }
}

float volume_sample_linear(const volume *v, const double p[3]) {
    double fx = floor(p[0]), fy = floor(p[1]), fz = floor(p[2]);
    if (!(fx >= -1 && fy >= -1 && fz >= -1 && fx < v->nx && fy < v->ny && fz < v->nz)) return 0;
    int x = (int)fx, y = (int)fy, z = (int)fz;
    double ax = p[0] - fx, ay = p[1] - fy, az = p[2] - fz, s = 0;
    for (int c = 0; c < 8; c++) {
        int i = x + (c & 1), j = y + ((c >> 1) & 1), k = z + (c >> 2);
        if (i < 0 || j < 0 || k < 0 || i >= v->nx || j >= v->ny || k >= v->nz) continue;
        double w = ((c & 1) ? ax : 1 - ax) * (((c >> 1) & 1) ? ay : 1 - ay) * ((c >> 2) ? az : 1 - az);
        s += w * v->data[(size_t)i + (size_t)v->nx * ((size_t)j + (size_t)v->ny * k)];
    }
    return (float)s;
}
