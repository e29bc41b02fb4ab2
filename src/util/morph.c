// Flat-structuring-element morphology and connected-component labelling (see morph.h).
// Each operation loops over the offsets of the structuring element and, per offset, over the
// rows of the image with the x range where the neighbour is inside: no per-pixel bounds tests.
#include "util/morph.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"  // as_fail, as_malloc

// ---- structuring elements ----------------------------------------------------------------------

// Offsets (dx,dy,dz) of the element into d[3*i..]; returns their count. Caller frees d.
static int se_offsets(int **d, int ndim, morph_shape shape, int k) {
    if (k < 1) k = 1;
    int lo = -(k / 2), hi = k - 1 - k / 2;
    int zlo = ndim == 3 ? lo : 0, zhi = ndim == 3 ? hi : 0;
    int n = 0, cap = (hi - lo + 1) * (hi - lo + 1) * (zhi - zlo + 1);
    *d = as_malloc(sizeof(int) * 3 * (size_t)cap);
    for (int dz = zlo; dz <= zhi; dz++)
        for (int dy = lo; dy <= hi; dy++)
            for (int dx = lo; dx <= hi; dx++) {
                int nonzero = (dx != 0) + (dy != 0) + (dz != 0);
                if (shape == MORPH_CROSS && nonzero > 1) continue;
                (*d)[3 * n] = dx, (*d)[3 * n + 1] = dy, (*d)[3 * n + 2] = dz;
                n++;
            }
    return n;
}

// ---- grey (float) ------------------------------------------------------------------------------

// out[i] = op_{d in S} in[i + sign*d] over in-bounds neighbours; op = min (is_max 0) or max.
static void grey_apply(float *out, const float *in, int nx, int ny, int nz, int ndim, morph_shape shape, int k,
                       int sign, int is_max) {
    int *d;
    int nd = se_offsets(&d, ndim, shape, k);
    size_t nvox = (size_t)nx * ny * nz;
    float init = is_max ? -FLT_MAX : FLT_MAX;
    for (size_t i = 0; i < nvox; i++) out[i] = init;
    for (int e = 0; e < nd; e++) {
        int dx = sign * d[3 * e], dy = sign * d[3 * e + 1], dz = sign * d[3 * e + 2];
        int xl = dx < 0 ? -dx : 0, xh = dx > 0 ? nx - dx : nx;
        for (int z = 0; z < nz; z++) {
            int zz = z + dz;
            if (zz < 0 || zz >= nz) continue;
            for (int y = 0; y < ny; y++) {
                int yy = y + dy;
                if (yy < 0 || yy >= ny) continue;
                float *o = out + (size_t)nx * (y + (size_t)ny * z);
                const float *s = in + (size_t)nx * (yy + (size_t)ny * zz) + dx;
                if (is_max)
                    for (int x = xl; x < xh; x++) o[x] = s[x] > o[x] ? s[x] : o[x];
                else
                    for (int x = xl; x < xh; x++) o[x] = s[x] < o[x] ? s[x] : o[x];
            }
        }
    }
    free(d);
}

void morph_erode_f32(float *out, const float *in, int nx, int ny, int nz, int ndim, morph_shape shape, int k) {
    grey_apply(out, in, nx, ny, nz, ndim, shape, k, +1, 0);
}

void morph_dilate_f32(float *out, const float *in, int nx, int ny, int nz, int ndim, morph_shape shape, int k) {
    grey_apply(out, in, nx, ny, nz, ndim, shape, k, -1, 1);
}

// ---- binary (uint8) ----------------------------------------------------------------------------

void morph_erode_u8(uint8_t *out, const uint8_t *in, int nx, int ny, int nz, int ndim, morph_shape shape, int k,
                    int border_value) {
    int *d;
    int nd = se_offsets(&d, ndim, shape, k);
    size_t nvox = (size_t)nx * ny * nz;
    for (size_t i = 0; i < nvox; i++) out[i] = in[i] != 0;
    for (int e = 0; e < nd; e++) {
        int dx = d[3 * e], dy = d[3 * e + 1], dz = d[3 * e + 2];
        int xl = dx < 0 ? -dx : 0, xh = dx > 0 ? nx - dx : nx;
        if (xh < xl) xh = xl;
        for (int z = 0; z < nz; z++) {
            int zz = z + dz;
            for (int y = 0; y < ny; y++) {
                int yy = y + dy;
                uint8_t *o = out + (size_t)nx * (y + (size_t)ny * z);
                if (zz < 0 || zz >= nz || yy < 0 || yy >= ny) {
                    // the whole row's neighbour is outside: outside counts as border_value
                    if (!border_value) memset(o, 0, (size_t)nx);
                    continue;
                }
                const uint8_t *s = in + (size_t)nx * (yy + (size_t)ny * zz) + dx;
                for (int x = xl; x < xh; x++) o[x] &= s[x] != 0;
                if (!border_value) {
                    for (int x = 0; x < xl && x < nx; x++) o[x] = 0;
                    for (int x = xh; x < nx; x++) o[x] = 0;
                }
            }
        }
    }
    free(d);
}

void morph_dilate_u8(uint8_t *out, const uint8_t *in, int nx, int ny, int nz, int ndim, morph_shape shape, int k) {
    int *d;
    int nd = se_offsets(&d, ndim, shape, k);
    size_t nvox = (size_t)nx * ny * nz;
    memset(out, 0, nvox);
    for (int e = 0; e < nd; e++) {
        int dx = -d[3 * e], dy = -d[3 * e + 1], dz = -d[3 * e + 2];  // reflected element
        int xl = dx < 0 ? -dx : 0, xh = dx > 0 ? nx - dx : nx;
        for (int z = 0; z < nz; z++) {
            int zz = z + dz;
            if (zz < 0 || zz >= nz) continue;
            for (int y = 0; y < ny; y++) {
                int yy = y + dy;
                if (yy < 0 || yy >= ny) continue;
                uint8_t *o = out + (size_t)nx * (y + (size_t)ny * z);
                const uint8_t *s = in + (size_t)nx * (yy + (size_t)ny * zz) + dx;
                for (int x = xl; x < xh; x++) o[x] |= s[x] != 0;
            }
        }
    }
    free(d);
}

// ---- connected components ----------------------------------------------------------------------

static int32_t uf_find(int32_t *parent, int32_t i) {
    while (parent[i] != i) {
        parent[i] = parent[parent[i]];  // path halving
        i = parent[i];
    }
    return i;
}

int morph_label(int32_t *labels, const uint8_t *mask, int nx, int ny, int nz, int connectivity) {
    int planar;
    int max_nonzero;
    switch (connectivity) {
    case 4: planar = 1, max_nonzero = 1; break;
    case 8: planar = 1, max_nonzero = 2; break;
    case 6: planar = 0, max_nonzero = 1; break;
    case 18: planar = 0, max_nonzero = 2; break;
    case 26: planar = 0, max_nonzero = 3; break;
    default: return as_fail("connected components: connectivity %d is not 4, 8 (2-D) or 6, 18, 26 (3-D)",
                            connectivity);
    }
    // The neighbours that come earlier in memory order (half of the connectivity set).
    int back[13][3], nb = 0;
    for (int dz = planar ? 0 : -1; dz <= 0; dz++)
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++) {
                int before = dz < 0 || (dz == 0 && (dy < 0 || (dy == 0 && dx < 0)));
                int nonzero = (dx != 0) + (dy != 0) + (dz != 0);
                if (!before || nonzero > max_nonzero) continue;
                back[nb][0] = dx, back[nb][1] = dy, back[nb][2] = dz;
                nb++;
            }
    size_t nvox = (size_t)nx * ny * nz;
    int32_t *parent = as_malloc(sizeof(int32_t) * (nvox ? nvox : 1));
    // Pass 1: union each foreground voxel with its earlier foreground neighbours. The root of a
    // set is always its smallest index, i.e. the component's first voxel in scan order.
    for (int z = 0; z < nz; z++)
        for (int y = 0; y < ny; y++)
            for (int x = 0; x < nx; x++) {
                int32_t i = (int32_t)(x + (size_t)nx * (y + (size_t)ny * z));
                if (!mask[i]) continue;
                parent[i] = i;
                for (int b = 0; b < nb; b++) {
                    int xx = x + back[b][0], yy = y + back[b][1], zz = z + back[b][2];
                    if (xx < 0 || xx >= nx || yy < 0 || yy >= ny || zz < 0) continue;
                    int32_t j = (int32_t)(xx + (size_t)nx * (yy + (size_t)ny * zz));
                    if (!mask[j]) continue;
                    int32_t ri = uf_find(parent, i), rj = uf_find(parent, j);
                    if (ri < rj) parent[rj] = ri;
                    else if (rj < ri) parent[ri] = rj;
                }
            }
    // Pass 2: a voxel that is its own root is the first of its component: next label.
    int n = 0;
    for (size_t i = 0; i < nvox; i++) {
        if (!mask[i]) {
            labels[i] = 0;
            continue;
        }
        int32_t r = uf_find(parent, (int32_t)i);
        labels[i] = r == (int32_t)i ? ++n : labels[r];
    }
    free(parent);
    return n;
}

void morph_component_stats(int64_t *size, double *mean, const int32_t *labels, const float *value, size_t nvox,
                           int n) {
    memset(size, 0, sizeof(int64_t) * (size_t)(n + 1));
    if (mean) memset(mean, 0, sizeof(double) * (size_t)(n + 1));
    for (size_t i = 0; i < nvox; i++) {
        size[labels[i]]++;
        if (mean && value) mean[labels[i]] += value[i];
    }
    if (mean)
        for (int l = 0; l <= n; l++) mean[l] = size[l] ? mean[l] / (double)size[l] : 0.0;
}

typedef struct ranked { double score; int label; } ranked;

static int ranked_cmp(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;  // higher score first
    return (x->label > y->label) - (x->label < y->label);           // then earlier label
}

int morph_keep_top(uint8_t *out, int *keep_label, const int32_t *labels, size_t nvox, const double *score, int n,
                   int keep) {
    if (keep <= 0 || keep > n) keep = n;
    ranked *r = as_malloc(sizeof(ranked) * (size_t)(n + 1));
    for (int l = 1; l <= n; l++) r[l - 1] = (ranked){score[l], l};
    qsort(r, (size_t)n, sizeof(ranked), ranked_cmp);
    uint8_t *kept = as_calloc((size_t)n + 1, 1);
    for (int i = 0; i < keep; i++) {
        kept[r[i].label] = 1;
        if (keep_label) keep_label[i] = r[i].label;
    }
    if (out)
        for (size_t i = 0; i < nvox; i++) out[i] = kept[labels[i]];
    free(kept);
    free(r);
    return keep;
}
