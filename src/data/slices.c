#include "data/slices.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/resample.h"
#include "util/error.h"

void slice_options_default(slice_options *o, int training) {
    memset(o, 0, sizeof *o);
    o->size = 224;
    o->z_first = training ? 60 : 75;
    o->z_last = training ? 109 : 94;
    o->clip_range = 0;
    o->norm = SLICE_NORM_MINMAX;
    o->pct_lo = 1;
    o->pct_hi = 99;
}

// Puts the k[t]-th smallest of a[lo..hi] at a[k[t]] for each of the nk ranks k (ascending, within
// lo..hi), smaller ones before and larger ones after (quickselect, median-of-three pivots, the
// wanted ranks split at each pivot): O(n log nk), where sorting millions of voxels took seconds.
static void select_ranks(float *a, size_t lo, size_t hi, const size_t *k, int nk) {
    while (nk > 0 && hi > lo) {
        size_t mid = lo + (hi - lo) / 2;
        // order a[lo] <= a[mid] <= a[hi], then partition around a[mid]
        if (a[mid] < a[lo]) { float t = a[mid]; a[mid] = a[lo]; a[lo] = t; }
        if (a[hi] < a[lo]) { float t = a[hi]; a[hi] = a[lo]; a[lo] = t; }
        if (a[hi] < a[mid]) { float t = a[hi]; a[hi] = a[mid]; a[mid] = t; }
        float pivot = a[mid];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i <= j) {
                float t = a[i]; a[i] = a[j]; a[j] = t;
                i++;
                if (j == 0) break;
                j--;
            }
        }
        // now a[lo..j] <= pivot <= a[i..hi], and lo <= j < i <= hi + 1; ranks between j and i
        // hold values equal to the pivot: placed
        int left = 0, placed = 0;
        while (left < nk && k[left] <= j) left++;
        placed = left;
        while (placed < nk && k[placed] < i) placed++;
        if (left) select_ranks(a, lo, j, k, left);
        k += placed, nk -= placed, lo = i;
    }
}

void slices_percentiles(double *out, float *a, size_t n, const double *q, int nq) {
    size_t *k = as_malloc(sizeof(size_t) * 2 * (size_t)(nq > 0 ? nq : 1)), next = 0;
    int nk = 0;
    for (int t = 0; t < nq; t++) {  // each percentile needs its rank and the next
        size_t i = (size_t)floor(q[t] / 100.0 * (double)(n - 1));
        if (i >= n - 1) i = n - 1;
        for (size_t r = i; r <= i + 1 && r < n; r++)
            if (r >= next) k[nk++] = r, next = r + 1;
    }
    select_ranks(a, 0, n - 1, k, nk);
    free(k);
    for (int t = 0; t < nq; t++) {
        double pos = q[t] / 100.0 * (double)(n - 1);
        size_t i = (size_t)floor(pos);
        if (i >= n - 1) i = n - 1;
        out[t] = i == n - 1 ? a[i] : a[i] + ((double)a[i + 1] - a[i]) * (pos - (double)i);
    }
}

double slices_percentile(float *a, size_t n, double q) {
    double v;
    slices_percentiles(&v, a, n, &q, 1);
    return v;
}

// The RAS volume resized in-plane: rv[k][h][w] for every RAS slice k (S x S each).
static float *resize_volume(const volume *ras, int S) {
    int rx = ras->nx, ry = ras->ny, rz = ras->nz;
    float *rv = as_malloc((size_t)rz * S * S * sizeof(float));
#pragma omp parallel for schedule(static)
    for (int k = 0; k < rz; k++)
        resize_linear_ac(rv + (size_t)k * S * S, S, S, S, 1, ras->data + (size_t)k * rx * ry, rx, ry, 1, rx);
    return rv;
}

int slices_from_volume(slice_stack *s, const volume *img, const volume *mask, const slice_options *o) {
    memset(s, 0, sizeof *s);
    const char *name = volume_source_name(img);
    int S = o->size;
    if (S < 2 || S > 8192) return as_fail("%s: model size %d out of range [2, 8192]", name, S);
    if (o->norm == SLICE_NORM_PERCENTILE && !(o->pct_lo >= 0 && o->pct_lo < o->pct_hi && o->pct_hi <= 100))
        return as_fail("%s: percentiles %g..%g must satisfy 0 <= lo < hi <= 100", name, o->pct_lo, o->pct_hi);
    if (mask && !volume_same_grid(img, mask))
        return as_fail("%s: mask %s is on a different grid (%dx%dx%d vs %dx%dx%d, or another affine)",
                       volume_source_name(mask), name, mask->nx, mask->ny, mask->nz, img->nx, img->ny, img->nz);
    volume ras;
    orientation orient;
    volume_to_ras(&ras, img, &orient);
    int rz = ras.nz;
    int z0 = o->z_first, z1 = o->z_last;
    if (z0 < 0) {
        z0 = 0;
        z1 = rz - 1;
    } else if (z1 < z0) {
        volume_free(&ras);
        return as_fail("%s: empty slice range %d..%d", name, z0, z1);
    } else if (z1 > rz - 1) {
        if (!o->clip_range || z0 > rz - 1) {
            volume_free(&ras);
            return as_fail("%s: slice range %d..%d does not fit the volume's %d axial slices (0..%d)", name, z0, z1, rz,
                           rz - 1);
        }
        z1 = rz - 1;
    }
    volume mras = {0};  // the binary mask in RAS
    if (mask) {
        volume bin;
        volume_alloc(&bin, mask->nx, mask->ny, mask->nz, mask->pixdim);
        memcpy(bin.affine, mask->affine, sizeof bin.affine);
        for (size_t i = 0; i < volume_voxels(mask); i++) bin.data[i] = mask->data[i] > 0 ? 1.0f : 0.0f;
        volume_to_ras(&mras, &bin, NULL);
        volume_free(&bin);
    }
    // On the native voxels, before any interpolation mixes brain and background: the same
    // numbers as tools/nyul_standardise.py gives the file.
    if (o->nyul.on) nyul_apply(ras.data, mask ? mras.data : NULL, volume_voxels(&ras), &o->nyul);
    float *rv = resize_volume(&ras, S);
    size_t plane = (size_t)S * S, total = plane * rz;
    // Brain mask on the model grid.
    uint8_t *brain = as_malloc(total);
    if (mask) {
        float *mv = resize_volume(&mras, S);
        for (size_t i = 0; i < total; i++) brain[i] = mv[i] >= 0.5f;
        free(mv);
        volume_free(&mras);
    } else {
        for (size_t i = 0; i < total; i++) brain[i] = rv[i] > 0;
    }
    // Intensities to [0,1].
    float lo = INFINITY, hi = -INFINITY;
    if (o->norm == SLICE_NORM_PERCENTILE) {
        size_t nb = 0;
        for (size_t i = 0; i < total; i++) nb += brain[i];
        if (nb == 0) {
            free(rv);
            free(brain);
            volume_free(&ras);
            return as_fail("%s: empty brain mask (no voxel %s)", mask ? volume_source_name(mask) : name,
                           mask ? "inside the mask" : "above 0");
        }
        float *vals = as_malloc(nb * sizeof(float));
        for (size_t i = 0, j = 0; i < total; i++)
            if (brain[i]) vals[j++] = rv[i];
        lo = (float)slices_percentile(vals, nb, o->pct_lo);
        hi = (float)slices_percentile(vals, nb, o->pct_hi);
        free(vals);
        float scale = hi > lo ? 1.0f / (hi - lo) : 0.0f;
        for (size_t i = 0; i < total; i++) {
            float x = brain[i] ? (rv[i] - lo) * scale : 0.0f;
            rv[i] = x < 0 ? 0 : x > 1 ? 1 : x;
        }
    } else if (o->nyul.on) {
        // One scale for every scan (data/nyul.h); a voxel beyond the standard's p99 may pass 1.
        lo = 0.0f;
        hi = (float)NYUL_HI;
        for (size_t i = 0; i < total; i++) rv[i] /= hi;
    } else {
        for (size_t i = 0; i < total; i++) {
            if (rv[i] < lo) lo = rv[i];
            if (rv[i] > hi) hi = rv[i];
        }
        // (x - min) / (max - min) as the reference computes it; a constant volume becomes 0.
        float range = hi - lo;
        for (size_t i = 0; i < total; i++) rv[i] = range > 0 ? (rv[i] - lo) / range : 0.0f;
    }
    s->n = z1 - z0 + 1;
    s->size = S;
    s->z = as_malloc(sizeof(int) * s->n);
    s->img = as_malloc(plane * s->n * sizeof(float));
    s->brain = as_malloc(plane * s->n);
    for (int i = 0; i < s->n; i++) {
        s->z[i] = z0 + i;
        memcpy(s->img + plane * i, rv + plane * (z0 + i), plane * sizeof(float));
        memcpy(s->brain + plane * i, brain + plane * (z0 + i), plane);
    }
    volume_copy_geometry(&s->native, img);
    s->orient = orient;
    s->ras_n[0] = ras.nx;
    s->ras_n[1] = ras.ny;
    s->ras_n[2] = ras.nz;
    s->lo = lo;
    s->hi = hi;
    free(rv);
    free(brain);
    volume_free(&ras);
    return 0;
}

int slices_load(slice_stack *s, const char *image_path, const char *mask_path, const slice_options *o) {
    memset(s, 0, sizeof *s);
    volume img, mask;
    if (volume_read(&img, image_path)) return -1;
    if (mask_path && volume_read(&mask, mask_path)) {
        volume_free(&img);
        return -1;
    }
    int rc = slices_from_volume(s, &img, mask_path ? &mask : NULL, o);
    if (mask_path) volume_free(&mask);
    volume_free(&img);
    return rc;
}

void slices_input(float *out, const slice_stack *s, int idx, int channels) {
    size_t plane = (size_t)s->size * s->size;
    for (int c = 0; c < channels; c++) memcpy(out + plane * c, s->img + plane * idx, plane * sizeof(float));
}

int slices_labels(uint8_t *out, const slice_stack *s, const volume *label) {
    if (!volume_same_grid(label, &s->native))
        return as_fail("%s: label is on a different grid from its image %s (%dx%dx%d vs %dx%dx%d, or another affine)",
                       volume_source_name(label), volume_source_name(&s->native), label->nx, label->ny, label->nz,
                       s->native.nx, s->native.ny, s->native.nz);
    volume ras;
    volume_to_ras(&ras, label, NULL);
    int S = s->size, rx = ras.nx, ry = ras.ny;
    size_t plane = (size_t)S * S;
    float *tmp = as_malloc(plane * sizeof(float));
    for (int i = 0; i < s->n; i++) {
        resize_nearest_ac(tmp, S, S, S, 1, ras.data + (size_t)s->z[i] * rx * ry, rx, ry, 1, rx);
        for (size_t p = 0; p < plane; p++) out[plane * i + p] = tmp[p] > 0;
    }
    free(tmp);
    volume_free(&ras);
    return 0;
}

int slices_to_native(volume *out, const slice_stack *s, const float *maps, int nearest) {
    int rx = s->ras_n[0], ry = s->ras_n[1], rz = s->ras_n[2], S = s->size;
    float *ras = as_calloc((size_t)rx * ry * rz, sizeof(float));
    for (int i = 0; i < s->n; i++) {
        if (s->z[i] < 0 || s->z[i] >= rz) {
            free(ras);
            return as_fail("%s: slice %d outside the volume", volume_source_name(&s->native), s->z[i]);
        }
        float *dst = ras + (size_t)s->z[i] * rx * ry;
        const float *src = maps + (size_t)i * S * S;
        if (nearest)
            resize_nearest_ac(dst, rx, ry, 1, rx, src, S, S, S, 1);
        else
            resize_linear_ac(dst, rx, ry, 1, rx, src, S, S, S, 1);
    }
    volume_alloc_like(out, &s->native);
    int n[3] = {out->nx, out->ny, out->nz};
    ras_to_native(out->data, ras, n, &s->orient);
    free(ras);
    return 0;
}

void slices_free(slice_stack *s) {
    if (!s) return;
    free(s->z);
    free(s->img);
    free(s->brain);
    volume_free(&s->native);
    memset(s, 0, sizeof *s);
}
