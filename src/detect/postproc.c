// The A.1 post-processing pipeline (see postproc.h): erosion, threshold, components, top-N by
// mean map value, dilation, Atropos-like segmentation, and the best-overlap refinement.
#include "detect/postproc.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "detect/segment.h"  // atropos_segment
#include "util/error.h"      // as_fail, as_malloc
#include "util/morph.h"      // morph_erode_f32, morph_dilate_u8, morph_label, morph_keep_top

void postproc_defaults(postproc_params *p) {
    *p = (postproc_params){.ndim = 2, .erode_k = 3, .threshold = 0.5f, .connectivity = 0, .keep_top = 2,
                           .dilate_k = 3, .rank_on = POSTPROC_RANK_MAP, .seg_classes = 5, .mrf_beta = 0.2f,
                           .mrf_radius = 1, .seg_iterations = 5, .match = POSTPROC_MATCH_AREA,
                           .keep_unmatched = 1, .grow = 0, .bound = 6, .floor = 0.5f,
                           .mode = POSTPROC_A1, .low = 0, .min_voxels = 0, .refine = 0};
}

int postproc_preset(postproc_params *p, const char *name) {
    postproc_defaults(p);
    if (!strcmp(name, "brats")) {
        p->erode_k = 3, p->keep_top = 2;
    } else if (!strcmp(name, "mslub") || !strcmp(name, "wmh")) {
        p->erode_k = 1, p->keep_top = 7;
    } else if (!strcmp(name, "calibrated")) {
        p->mode = POSTPROC_CALIBRATED, p->ndim = 3, p->threshold = NAN;
    } else {
        return as_fail("post-processing preset '%s': expected calibrated, brats, mslub or wmh", name);
    }
    return 0;
}

static int parse_int(int *out, const char *key, const char *v) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < -1000000 || x > 1000000)
        return as_fail("post-processing %s: '%s' is not an integer", key, v);
    *out = (int)x;
    return 0;
}

static int parse_float(float *out, const char *key, const char *v) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !(x == x)) return as_fail("post-processing %s: '%s' is not a number", key, v);
    *out = (float)x;
    return 0;
}

int postproc_set(postproc_params *p, const char *key, const char *v) {
    if (!strcmp(key, "ndim")) return parse_int(&p->ndim, key, v);
    if (!strcmp(key, "erode_k")) return parse_int(&p->erode_k, key, v);
    if (!strcmp(key, "threshold")) return parse_float(&p->threshold, key, v);
    if (!strcmp(key, "connectivity")) return parse_int(&p->connectivity, key, v);
    if (!strcmp(key, "keep_top")) return parse_int(&p->keep_top, key, v);
    if (!strcmp(key, "dilate_k")) return parse_int(&p->dilate_k, key, v);
    if (!strcmp(key, "seg_classes")) return parse_int(&p->seg_classes, key, v);
    if (!strcmp(key, "mrf_beta")) return parse_float(&p->mrf_beta, key, v);
    if (!strcmp(key, "mrf_radius")) return parse_int(&p->mrf_radius, key, v);
    if (!strcmp(key, "seg_iterations")) return parse_int(&p->seg_iterations, key, v);
    if (!strcmp(key, "keep_unmatched")) return parse_int(&p->keep_unmatched, key, v);
    if (!strcmp(key, "grow")) return parse_int(&p->grow, key, v);
    if (!strcmp(key, "bound")) return parse_int(&p->bound, key, v);
    if (!strcmp(key, "floor")) return parse_float(&p->floor, key, v);
    if (!strcmp(key, "low")) return parse_float(&p->low, key, v);
    if (!strcmp(key, "min_voxels")) return parse_int(&p->min_voxels, key, v);
    if (!strcmp(key, "refine")) return parse_int(&p->refine, key, v);
    if (!strcmp(key, "rank_on")) {
        if (!strcmp(v, "map")) return p->rank_on = POSTPROC_RANK_MAP, 0;
        if (!strcmp(v, "eroded")) return p->rank_on = POSTPROC_RANK_ERODED, 0;
        return as_fail("post-processing rank_on: '%s' (map or eroded)", v);
    }
    if (!strcmp(key, "match")) {
        if (!strcmp(v, "area")) return p->match = POSTPROC_MATCH_AREA, 0;
        if (!strcmp(v, "iou")) return p->match = POSTPROC_MATCH_IOU, 0;
        return as_fail("post-processing match: '%s' (area or iou)", v);
    }
    return as_fail("post-processing: unknown parameter '%s'", key);
}

static int effective_connectivity(const postproc_params *p) {
    return p->connectivity ? p->connectivity : p->ndim == 3 ? 26 : 8;
}

int postproc_validate(const postproc_params *p) {
    if (p->ndim != 2 && p->ndim != 3) return as_fail("post-processing: ndim %d (2 or 3)", p->ndim);
    int c = effective_connectivity(p);
    if (p->ndim == 2 ? c != 4 && c != 8 : c != 6 && c != 18 && c != 26 && c != 4 && c != 8)
        return as_fail("post-processing: connectivity %d does not fit %d-D (2-D: 4, 8; 3-D: 6, 18, 26)", c, p->ndim);
    if (p->erode_k < 1 || p->erode_k > 31) return as_fail("post-processing: erode_k %d (1..31)", p->erode_k);
    if (p->dilate_k < 1 || p->dilate_k > 31) return as_fail("post-processing: dilate_k %d (1..31)", p->dilate_k);
    if (p->seg_classes < 0 || p->seg_classes > GMM_MAX_CLASSES)
        return as_fail("post-processing: seg_classes %d (0..%d)", p->seg_classes, GMM_MAX_CLASSES);
    if (!(p->mrf_beta >= 0)) return as_fail("post-processing: mrf_beta %g < 0", p->mrf_beta);
    if (p->mrf_radius < 0 || p->mrf_radius > 3) return as_fail("post-processing: mrf_radius %d (0..3)", p->mrf_radius);
    if (p->grow < 0 || p->grow > 15) return as_fail("post-processing: grow %d (0..15)", p->grow);
    if (p->bound < 0 || p->bound > 64) return as_fail("post-processing: bound %d (0..64)", p->bound);
    if (!(p->floor >= 0 && p->floor <= 1)) return as_fail("post-processing: floor %g (0..1)", p->floor);
    if (p->mode == POSTPROC_CALIBRATED && !isfinite(p->threshold))
        return as_fail("the calibrated detection needs a threshold: give --healthy DIR (healthy scans to calibrate "
                       "on) or --calibration FILE (from anoswin calibrate), or --set threshold=T; --preset "
                       "brats|mslub|wmh runs the paper's top-N-per-slice instead");
    if (!(p->low >= 0)) return as_fail("post-processing: low %g < 0", p->low);
    if (p->min_voxels < 0) return as_fail("post-processing: min_voxels %d < 0", p->min_voxels);
    if (p->refine != 0 && p->refine != 1) return as_fail("post-processing: refine %d (0 or 1)", p->refine);
    if (p->seg_iterations < 1) return as_fail("post-processing: seg_iterations %d < 1", p->seg_iterations);
    if (p->match != POSTPROC_MATCH_AREA && p->match != POSTPROC_MATCH_IOU)
        return as_fail("post-processing: match %d", p->match);
    if (p->rank_on != POSTPROC_RANK_MAP && p->rank_on != POSTPROC_RANK_ERODED)
        return as_fail("post-processing: rank_on %d", p->rank_on);
    return 0;
}

// ---- refinement --------------------------------------------------------------------------------

void postproc_refine(uint8_t *out, int *n_objects, const uint8_t *filtered, const uint8_t *seg, int nx, int ny,
                     int nz, int connectivity, int match, int keep_unmatched, int grow) {
    size_t nvox = (size_t)nx * ny * nz;
    int32_t *fl = as_malloc(sizeof(int32_t) * nvox);
    int nf = morph_label(fl, filtered, nx, ny, nz, connectivity);
    if (n_objects) *n_objects = nf;
    memset(out, 0, nvox);
    if (nf <= 0) {
        free(fl);
        return;
    }
    // Segmentation components: each class labelled on its own, ids concatenated, so that every
    // S is one connected region of one class. Ids follow (class, scan order).
    int maxc = 0;
    for (size_t i = 0; i < nvox; i++) maxc = seg[i] > maxc ? seg[i] : maxc;
    int32_t *sl = as_calloc(nvox, sizeof(int32_t)), *tmp = as_malloc(sizeof(int32_t) * nvox);
    uint8_t *cm = as_malloc(nvox);
    int ns = 0;
    for (int c = 1; c <= maxc; c++) {
        int any = 0;
        for (size_t i = 0; i < nvox; i++) any |= cm[i] = seg[i] == c;
        if (!any) continue;
        int n = morph_label(tmp, cm, nx, ny, nz, connectivity);
        for (size_t i = 0; i < nvox; i++)
            if (tmp[i]) sl[i] = ns + tmp[i];
        ns += n;
    }
    free(cm);
    free(tmp);
    int64_t *ssize = as_calloc((size_t)ns + 1, sizeof(int64_t)), *fsize = as_calloc((size_t)nf + 1, sizeof(int64_t));
    for (size_t i = 0; i < nvox; i++) ssize[sl[i]]++, fsize[fl[i]]++;
    // Voxels of each F grouped by a counting sort, then per F the overlap with every S it touches.
    size_t *start = as_calloc((size_t)nf + 2, sizeof(size_t)), *vox = as_malloc(sizeof(size_t) * nvox);
    for (int f = 1; f <= nf; f++) start[f + 1] = start[f] + (size_t)fsize[f];
    size_t *fill = as_malloc(sizeof(size_t) * ((size_t)nf + 2));
    memcpy(fill, start, sizeof(size_t) * ((size_t)nf + 2));
    for (size_t i = 0; i < nvox; i++)
        if (fl[i]) vox[fill[fl[i]]++] = i;
    int64_t *cnt = as_calloc((size_t)ns + 1, sizeof(int64_t));
    uint8_t *chosen = as_calloc((size_t)ns + 1, 1), *unmatched = as_calloc((size_t)nf + 1, 1);
    for (int f = 1; f <= nf; f++) {
        int best = 0;
        for (size_t q = start[f]; q < start[f + 1]; q++) cnt[sl[vox[q]]]++;
        for (size_t q = start[f]; q < start[f + 1]; q++) {
            int s = sl[vox[q]];
            if (!s || s == best) continue;
            if (!best) {
                best = s;
                continue;
            }
            int better;
            if (match == POSTPROC_MATCH_IOU) {
                // |F∩S|/|F∪S| compared by cross-multiplication (exact in integers)
                double a = (double)cnt[s] * (double)(fsize[f] + ssize[best] - cnt[best]);
                double b = (double)cnt[best] * (double)(fsize[f] + ssize[s] - cnt[s]);
                better = a > b || (a == b && (cnt[s] > cnt[best] || (cnt[s] == cnt[best] && s < best)));
            } else {
                better = cnt[s] > cnt[best] || (cnt[s] == cnt[best] && (ssize[s] < ssize[best] ||
                                                                        (ssize[s] == ssize[best] && s < best)));
            }
            if (better) best = s;
        }
        if (best) chosen[best] = 1;
        else unmatched[f] = 1;
        for (size_t q = start[f]; q < start[f + 1]; q++) cnt[sl[vox[q]]] = 0;
    }
    for (size_t i = 0; i < nvox; i++)
        out[i] = chosen[sl[i]] && sl[i] ? 1 : (keep_unmatched && unmatched[fl[i]] && fl[i]) ? 1 : 0;
    if (grow > 0) {  // step 8: components mostly within grow px of the refined mask join it
        uint8_t *near = as_malloc(nvox);
        morph_dilate_u8(near, out, nx, ny, nz, nz > 1 ? 3 : 2, MORPH_SQUARE, 2 * grow + 1);
        int64_t *near_count = as_calloc((size_t)ns + 1, sizeof(int64_t));
        for (size_t i = 0; i < nvox; i++)
            if (near[i]) near_count[sl[i]]++;
        uint8_t *joins = as_calloc((size_t)ns + 1, 1);
        for (int s = 1; s <= ns; s++) joins[s] = !chosen[s] && 2 * near_count[s] >= ssize[s];
        // near[] becomes the refined mask plus the joining components; only the objects of it that
        // contain refined voxels are kept, so that specks near a lesion do not become findings.
        for (size_t i = 0; i < nvox; i++) near[i] = out[i] || (sl[i] && joins[sl[i]]);
        int32_t *grown = as_malloc(sizeof(int32_t) * nvox);
        int ng = morph_label(grown, near, nx, ny, nz, connectivity);
        uint8_t *anchored = as_calloc((size_t)ng + 1, 1);
        for (size_t i = 0; i < nvox; i++)
            if (out[i]) anchored[grown[i]] = 1;
        for (size_t i = 0; i < nvox; i++) out[i] = anchored[grown[i]] && grown[i];
        free(anchored);
        free(grown);
        free(joins);
        free(near_count);
        free(near);
    }
    free(unmatched);
    free(chosen);
    free(cnt);
    free(fill);
    free(vox);
    free(start);
    free(fsize);
    free(ssize);
    free(sl);
    free(fl);
}

// ---- bounds (step 9) ------------------------------------------------------------------------------

void postproc_bound(uint8_t *mask, const uint8_t *filtered, const float *map, float floor_value, int bound, int nx,
                    int ny, int nz, int ndim) {
    size_t nvox = (size_t)nx * ny * nz;
    uint8_t *near = NULL;
    if (bound > 0) {
        near = as_malloc(nvox);
        morph_dilate_u8(near, filtered, nx, ny, nz, ndim, MORPH_SQUARE, 2 * bound + 1);
    }
    for (size_t i = 0; i < nvox; i++)
        if (mask[i] && ((near && !near[i]) || map[i] < floor_value)) mask[i] = 0;
    free(near);
}

// ---- the pipeline ------------------------------------------------------------------------------

// Steps 6-9 on the filtered map: segmentation inside the brain, refinement, growth, bounds.
// Returns the number of filtered objects.
static int refine_block(uint8_t *mask, uint8_t *seg_out, const uint8_t *filtered, const float *map,
                        const float *image, const uint8_t *in_brain, int nx, int ny, int nz, int conn,
                        const postproc_params *p) {
    size_t nvox = (size_t)nx * ny * nz;
    uint8_t *seg = seg_out ? seg_out : as_malloc(nvox);
    atropos_params ap;
    atropos_defaults(&ap);
    ap.classes = p->seg_classes, ap.ndim = p->ndim, ap.mrf_beta = p->mrf_beta;
    ap.mrf_radius = p->mrf_radius, ap.iterations = p->seg_iterations;
    atropos_segment(seg, NULL, image, in_brain, nx, ny, nz, &ap);  // params validated
    int nobj = 0;
    postproc_refine(mask, &nobj, filtered, seg, nx, ny, nz, conn, p->match, p->keep_unmatched, p->grow);
    postproc_bound(mask, filtered, map, p->floor * p->threshold, p->bound, nx, ny, nz, p->ndim);
    if (!seg_out) free(seg);
    return nobj;
}

// One block (a slice for ndim 2, the volume for ndim 3) of the paper's A.1. Returns the number of
// filtered objects.
static int run_block(uint8_t *mask, uint8_t *filtered_out, uint8_t *seg_out, const float *map, const float *image,
                     const uint8_t *in_brain, int nx, int ny, int nz, const postproc_params *p) {
    size_t nvox = (size_t)nx * ny * nz;
    int conn = effective_connectivity(p);
    float *eroded = as_malloc(sizeof(float) * nvox);
    uint8_t *bin = as_malloc(nvox), *kept = as_malloc(nvox);
    uint8_t *filtered = filtered_out ? filtered_out : as_malloc(nvox);
    int32_t *lab = as_malloc(sizeof(int32_t) * nvox);

    morph_erode_f32(eroded, map, nx, ny, nz, p->ndim, MORPH_SQUARE, p->erode_k);
    for (size_t i = 0; i < nvox; i++) bin[i] = eroded[i] > p->threshold;
    int n = morph_label(lab, bin, nx, ny, nz, conn);
    if (n > 0) {
        int64_t *size = as_malloc(sizeof(int64_t) * ((size_t)n + 1));
        double *mean = as_malloc(sizeof(double) * ((size_t)n + 1));
        morph_component_stats(size, mean, lab, p->rank_on == POSTPROC_RANK_ERODED ? eroded : map, nvox, n);
        morph_keep_top(kept, NULL, lab, nvox, mean, n, p->keep_top);
        free(mean);
        free(size);
        morph_dilate_u8(filtered, kept, nx, ny, nz, p->ndim, MORPH_SQUARE, p->dilate_k);
    } else {
        memset(filtered, 0, nvox);
    }
    int nobj = 0;
    if (seg_out) memset(seg_out, 0, nvox);
    if (n > 0 && p->seg_classes > 0) {
        nobj = refine_block(mask, seg_out, filtered, map, image, in_brain, nx, ny, nz, conn, p);
    } else if (n > 0) {
        memcpy(mask, filtered, nvox);
        nobj = morph_label(lab, filtered, nx, ny, nz, conn);
    } else {
        memset(mask, 0, nvox);
    }
    free(lab);
    if (!filtered_out) free(filtered);
    free(kept);
    free(bin);
    free(eroded);
    return nobj;
}

// The calibrated mode (steps C1-C3) on the whole stack. Returns the number of objects kept.
static int run_calibrated(uint8_t *mask, uint8_t *filtered_out, uint8_t *seg_out, const float *map,
                          const float *image, const uint8_t *in_brain, int nx, int ny, int nz,
                          const postproc_params *p) {
    size_t nvox = (size_t)nx * ny * nz;
    int conn = effective_connectivity(p);
    float lo = p->low > 0 && p->low < p->threshold ? p->low : p->threshold;
    uint8_t *cand = as_malloc(nvox), *filtered = filtered_out ? filtered_out : as_malloc(nvox);
    int32_t *lab = as_malloc(sizeof(int32_t) * nvox);
    for (size_t i = 0; i < nvox; i++) cand[i] = in_brain[i] && map[i] > lo;
    int n = morph_label(lab, cand, nx, ny, nz, conn);
    int64_t *size = as_calloc((size_t)n + 1, sizeof(int64_t));
    uint8_t *seeded = as_calloc((size_t)n + 1, 1);
    for (size_t i = 0; i < nvox; i++)
        if (lab[i]) {
            size[lab[i]]++;
            if (map[i] > p->threshold) seeded[lab[i]] = 1;
        }
    int kept = 0;
    for (int l = 1; l <= n; l++) {
        seeded[l] = seeded[l] && size[l] >= p->min_voxels;
        kept += seeded[l];
    }
    for (size_t i = 0; i < nvox; i++) filtered[i] = lab[i] && seeded[lab[i]];
    if (seg_out) memset(seg_out, 0, nvox);
    if (kept > 0 && p->refine && p->seg_classes > 0)
        refine_block(mask, seg_out, filtered, map, image, in_brain, nx, ny, nz, conn, p);
    else memcpy(mask, filtered, nvox);
    free(seeded);
    free(size);
    free(lab);
    if (!filtered_out) free(filtered);
    free(cand);
    return kept;
}

int postprocess(uint8_t *mask, postproc_extra *extra, const float *map, const float *image, const uint8_t *brain,
                int nx, int ny, int nz, const postproc_params *p) {
    if (postproc_validate(p)) return -1;
    if (nx < 1 || ny < 1 || nz < 1) return as_fail("post-processing: empty image %dx%dx%d", nx, ny, nz);
    uint8_t *filtered = extra ? extra->filtered : NULL, *seg = extra ? extra->segmentation : NULL;
    size_t nvox = (size_t)nx * ny * nz;
    uint8_t *in_brain = as_malloc(nvox);
    for (size_t i = 0; i < nvox; i++) in_brain[i] = brain ? brain[i] != 0 : image[i] > 0;
    int total = 0;
    if (p->mode == POSTPROC_CALIBRATED) {
        total = run_calibrated(mask, filtered, seg, map, image, in_brain, nx, ny, nz, p);
    } else if (p->ndim == 3) {
        total = run_block(mask, filtered, seg, map, image, in_brain, nx, ny, nz, p);
    } else {
        size_t ns = (size_t)nx * ny;
#pragma omp parallel for schedule(dynamic) reduction(+ : total) if (nz > 1)
        for (int z = 0; z < nz; z++) {
            size_t o = ns * (size_t)z;
            total += run_block(mask + o, filtered ? filtered + o : NULL, seg ? seg + o : NULL, map + o, image + o,
                               in_brain + o, nx, ny, 1, p);
        }
    }
    for (size_t i = 0; i < nvox; i++) mask[i] &= in_brain[i];  // step 10
    free(in_brain);
    if (extra) extra->n_objects = total;
    return 0;
}
