#include "prep/mask.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/morph.h"  // morph_label, morph_component_stats, morph_keep_top
#include "util/error.h"

void mask_dilate_box(uint8_t *m, int nx, int ny, int nz, const int r[3]) {
    int n[3] = {nx, ny, nz};
    size_t stride[3] = {1, (size_t)nx, (size_t)nx * ny};
    for (int a = 0; a < 3; a++) {
        if (r[a] <= 0) continue;
        int b = a == 0 ? 1 : 0, c = a == 2 ? 1 : 2, len = n[a];
        long lines = (long)n[b] * n[c];
#pragma omp parallel
        {
            uint8_t *line = as_malloc((size_t)len);
#pragma omp for schedule(static)
            for (long l = 0; l < lines; l++) {
                uint8_t *p = m + stride[b] * (size_t)(l % n[b]) + stride[c] * (size_t)(l / n[b]);
                int cnt = 0;
                for (int i = 0; i < len; i++) line[i] = p[stride[a] * i] != 0;
                for (int i = 0; i < r[a] && i < len; i++) cnt += line[i];
                for (int i = 0; i < len; i++) {  // window [i - r, i + r]
                    if (i + r[a] < len) cnt += line[i + r[a]];
                    if (i - r[a] - 1 >= 0) cnt -= line[i - r[a] - 1];
                    p[stride[a] * i] = cnt > 0;
                }
            }
            free(line);
        }
    }
}

void mask_erode_box(uint8_t *m, int nx, int ny, int nz, const int r[3]) {
    // erosion = complement of the dilation of the complement, with outside = background: pad
    // by one voxel so the complement's border (outside) dilates in
    int px = nx + 2, py = ny + 2, pz = nz + 2;
    size_t np = (size_t)px * py * pz;
    uint8_t *c = as_malloc(np);
    memset(c, 1, np);
    for (int k = 0; k < nz; k++)
        for (int j = 0; j < ny; j++)
            for (int i = 0; i < nx; i++)
                c[(size_t)(i + 1) + (size_t)px * ((size_t)(j + 1) + (size_t)py * (k + 1))] =
                    !m[(size_t)i + (size_t)nx * ((size_t)j + (size_t)ny * k)];
    mask_dilate_box(c, px, py, pz, r);
    for (int k = 0; k < nz; k++)
        for (int j = 0; j < ny; j++)
            for (int i = 0; i < nx; i++)
                m[(size_t)i + (size_t)nx * ((size_t)j + (size_t)ny * k)] =
                    !c[(size_t)(i + 1) + (size_t)px * ((size_t)(j + 1) + (size_t)py * (k + 1))];
    free(c);
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

long mask_refine(uint8_t *mask, const float *img, int nx, int ny, int nz, const float spacing[3]) {
    size_t nv = (size_t)nx * ny * nz;
    int r3[3], r2[3], r1[3] = {1, 1, 1};
    for (int d = 0; d < 3; d++) {
        r3[d] = (int)lround(3 / spacing[d]);
        r2[d] = (int)lround(2 / spacing[d]);
    }
    uint8_t *in = as_malloc(nv), *rim = as_malloc(nv);
    memcpy(in, mask, nv);
    mask_erode_box(in, nx, ny, nz, r3);
    memcpy(rim, mask, nv);
    mask_erode_box(rim, nx, ny, nz, r2);
    size_t ni = 0;
    for (size_t i = 0; i < nv; i++) ni += in[i];
    if (ni > 0) {
        float *v = as_malloc(ni * sizeof(float));
        size_t q = 0;
        for (size_t i = 0; i < nv; i++)
            if (in[i]) v[q++] = img[i];
        qsort(v, ni, sizeof(float), cmp_float);
        float cut = 0.8f * v[(size_t)(0.01 * (double)(ni - 1))];
        free(v);
        for (size_t i = 0; i < nv; i++)
            if (mask[i] && !rim[i] && img[i] < cut) mask[i] = 0;
    }
    // opening by one voxel, kept inside the mask
    memcpy(rim, mask, nv);
    mask_erode_box(rim, nx, ny, nz, r1);
    mask_dilate_box(rim, nx, ny, nz, r1);
    for (size_t i = 0; i < nv; i++) mask[i] = mask[i] && rim[i];
    // the largest 6-connected part, holes filled (background parts that do not touch the border)
    int32_t *lab = as_malloc(nv * sizeof(int32_t));
    int n = morph_label(lab, mask, nx, ny, nz, 6);
    if (n > 1) {
        int64_t *size = as_malloc((size_t)(n + 1) * sizeof(int64_t));
        double *score = as_malloc((size_t)(n + 1) * sizeof(double));
        morph_component_stats(size, score, lab, NULL, nv, n);
        for (int l = 0; l <= n; l++) score[l] = (double)size[l];
        morph_keep_top(mask, NULL, lab, nv, score, n, 1);
        free(size), free(score);
    }
    for (size_t i = 0; i < nv; i++) rim[i] = !mask[i];
    n = morph_label(lab, rim, nx, ny, nz, 6);
    if (n > 0) {
        uint8_t *border = as_calloc((size_t)n + 1, 1);
        for (int k = 0; k < nz; k++)
            for (int j = 0; j < ny; j++)
                for (int i = 0; i < nx; i++)
                    if (i == 0 || j == 0 || k == 0 || i == nx - 1 || j == ny - 1 || k == nz - 1)
                        border[lab[(size_t)i + (size_t)nx * ((size_t)j + (size_t)ny * k)]] = 1;
        for (size_t i = 0; i < nv; i++)
            if (lab[i] > 0 && !border[lab[i]]) mask[i] = 1;
        free(border);
    }
    free(lab), free(in), free(rim);
    long kept = 0;
    for (size_t i = 0; i < nv; i++) kept += mask[i];
    return kept;
}
