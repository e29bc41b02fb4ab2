// The input guard's measurements and checks (see fingerprint.h).
#include "data/fingerprint.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/reorient.h"   // orientation_codes
#include "io/safetensors.h"  // st_open, st_meta
#include "util/error.h"
#include "util/json.h"

static double level(int i) { return 5.0 * (i + 1); }  // 5, 10, ..., 95 %

// ---- one volume -------------------------------------------------------------------------------

void scan_print_measure(scan_print *p, const volume *img, const volume *mask) {
    memset(p, 0, sizeof *p);
    int nx = img->nx, ny = img->ny, nz = img->nz;
    p->dims[0] = nx, p->dims[1] = ny, p->dims[2] = nz;
    for (int a = 0; a < 3; a++) p->voxel_mm[a] = fabsf(img->pixdim[a]);
    orientation_codes(img->affine, p->orientation);
    size_t n = volume_voxels(img), fg = 0, border = 0, border_fg = 0, nb = 0;
    for (int k = 0; k < nz; k++)
        for (int j = 0; j < ny; j++)
            for (int i = 0; i < nx; i++) {
                size_t q = (size_t)i + (size_t)nx * ((size_t)j + (size_t)ny * k);
                int on = img->data[q] > 0;
                fg += on;
                if (i == 0 || j == 0 || k == 0 || i == nx - 1 || j == ny - 1 || k == nz - 1) border++, border_fg += on;
                nb += mask ? mask->data[q] > 0 : on;
            }
    double voxel_ml = (double)p->voxel_mm[0] * p->voxel_mm[1] * p->voxel_mm[2] / 1000.0;
    p->fg_ml = (double)fg * voxel_ml;
    p->border_share = border ? (double)border_fg / (double)border : 0;
    p->brain_voxels = (int64_t)nb;
    if (!nb) return;
    float *v = as_malloc(sizeof(float) * nb);
    for (size_t q = 0, m = 0; q < n; q++)
        if (mask ? mask->data[q] > 0 : img->data[q] > 0) v[m++] = img->data[q];
    // 1, 5, 10, ..., 95, 99 %, in one partitioning
    double lv[FP_LEVELS + 2], qv[FP_LEVELS + 2];
    lv[0] = 1, lv[FP_LEVELS + 1] = 99;
    for (int l = 0; l < FP_LEVELS; l++) lv[l + 1] = level(l);
    slices_percentiles(qv, v, nb, lv, FP_LEVELS + 2);
    free(v);
    p->raw_q[0] = qv[0], p->raw_q[1] = qv[10], p->raw_q[2] = qv[FP_LEVELS + 1];
    double unit = p->raw_q[2] != 0 ? p->raw_q[2] : 1;
    for (int l = 0; l < FP_LEVELS; l++) p->q[l] = qv[l + 1] / unit;
}

int scan_print_load_slices(slice_stack *s, scan_print *p, const char *image, const char *mask_path,
                           const slice_options *o) {
    memset(s, 0, sizeof *s);
    volume img, mask;
    if (volume_read(&img, image)) return -1;
    if (mask_path && volume_read(&mask, mask_path)) {
        volume_free(&img);
        return -1;
    }
    int rc = slices_from_volume(s, &img, mask_path ? &mask : NULL, o);  // checks the grids first
    if (!rc) scan_print_measure(p, &img, mask_path ? &mask : NULL);
    if (mask_path) volume_free(&mask);
    volume_free(&img);
    return rc;
}

int scan_print_to_json(const scan_print *p, char *out, size_t n) {
    json_mem m;
    if (json_mem_open(&m)) return -1;
    FILE *f = m.f;
    fprintf(f, "{\"grid\":[%d,%d,%d],\"voxel_mm\":[%g,%g,%g],\"orientation\":", p->dims[0], p->dims[1], p->dims[2],
            p->voxel_mm[0], p->voxel_mm[1], p->voxel_mm[2]);
    json_write_string(f, p->orientation);
    fputs(",\"foreground_ml\":", f);
    json_write_number(f, p->fg_ml);
    fputs(",\"border_share\":", f);
    json_write_number(f, p->border_share);
    fprintf(f, ",\"brain_voxels\":%lld,\"brain_raw_q01_q50_q99\":", (long long)p->brain_voxels);
    json_write_numbers(f, p->raw_q, 3);
    fputs(",\"brain_quantiles\":", f);
    json_write_numbers(f, p->q, FP_LEVELS);
    fputc('}', f);
    return json_mem_close(&m, out, n);
}

// ---- the training data ------------------------------------------------------------------------

void fingerprint_begin(fingerprint *f, const char *modality) {
    memset(f, 0, sizeof *f);
    snprintf(f->modality, sizeof f->modality, "%s", modality ? modality : "");
}

void fingerprint_add(fingerprint *f, const scan_print *p) {
    int first = f->scans == 0;
    if (first) {
        memcpy(f->dims, p->dims, sizeof f->dims);
        memcpy(f->voxel_min, p->voxel_mm, sizeof f->voxel_min);
        memcpy(f->voxel_max, p->voxel_mm, sizeof f->voxel_max);
        snprintf(f->orientation, sizeof f->orientation, "%s", p->orientation);
        f->fg_ml_min = f->fg_ml_max = p->fg_ml;
    }
    if (memcmp(f->dims, p->dims, sizeof f->dims)) memset(f->dims, 0, sizeof f->dims);
    for (int a = 0; a < 3; a++) {
        f->voxel_min[a] = fminf(f->voxel_min[a], p->voxel_mm[a]);
        f->voxel_max[a] = fmaxf(f->voxel_max[a], p->voxel_mm[a]);
    }
    if (strcmp(f->orientation, p->orientation)) snprintf(f->orientation, sizeof f->orientation, "mixed");
    f->fg_ml_min = fmin(f->fg_ml_min, p->fg_ml), f->fg_ml_max = fmax(f->fg_ml_max, p->fg_ml);
    f->fg_ml_mean += p->fg_ml;
    f->border_max = fmax(f->border_max, p->border_share);
    for (int i = 0; i < 3; i++) f->raw_q[i] += p->raw_q[i];
    f->all_q = as_realloc(f->all_q, sizeof(double) * FP_LEVELS * (size_t)(f->scans + 1));
    memcpy(f->all_q + (size_t)FP_LEVELS * f->scans, p->q, sizeof p->q);
    f->scans++;
}

static double q_distance(const double *a, const double *b) {
    double d = 0;
    for (int l = 0; l < FP_LEVELS; l++) d += fabs(a[l] - b[l]);
    return d / FP_LEVELS;
}

void fingerprint_end(fingerprint *f) {
    if (f->scans) {
        f->fg_ml_mean /= f->scans;
        for (int i = 0; i < 3; i++) f->raw_q[i] /= f->scans;
        memset(f->q, 0, sizeof f->q);
        for (int s = 0; s < f->scans; s++)
            for (int l = 0; l < FP_LEVELS; l++) f->q[l] += f->all_q[(size_t)FP_LEVELS * s + l] / f->scans;
        f->q_spread = 0;
        for (int s = 0; s < f->scans; s++) f->q_spread = fmax(f->q_spread, q_distance(f->all_q + (size_t)FP_LEVELS * s, f->q));
    }
    free(f->all_q);
    f->all_q = NULL;
}

void fingerprint_free(fingerprint *f) {
    free(f->all_q);
    f->all_q = NULL;
}

int fingerprint_to_json(const fingerprint *f, char *out, size_t n) {
    json_mem m;
    if (json_mem_open(&m)) return -1;
    FILE *o = m.f;
    fprintf(o, "{\"version\":1,\"scans\":%d,\"modality\":", f->scans);
    json_write_string(o, f->modality);
    fprintf(o, ",\"grid\":[%d,%d,%d],\"voxel_mm_min\":[%g,%g,%g],\"voxel_mm_max\":[%g,%g,%g],\"orientation\":",
            f->dims[0], f->dims[1], f->dims[2], f->voxel_min[0], f->voxel_min[1], f->voxel_min[2], f->voxel_max[0],
            f->voxel_max[1], f->voxel_max[2]);
    json_write_string(o, f->orientation);
    double fg[3] = {f->fg_ml_min, f->fg_ml_mean, f->fg_ml_max};
    fputs(",\"foreground_ml_min_mean_max\":", o);
    json_write_numbers(o, fg, 3);
    fputs(",\"border_share_max\":", o);
    json_write_number(o, f->border_max);
    fputs(",\"brain_raw_q01_q50_q99\":", o);
    json_write_numbers(o, f->raw_q, 3);
    double lv[FP_LEVELS];
    for (int l = 0; l < FP_LEVELS; l++) lv[l] = level(l);
    fputs(",\"quantile_levels\":", o);
    json_write_numbers(o, lv, FP_LEVELS);
    fputs(",\"brain_quantiles\":", o);
    json_write_numbers(o, f->q, FP_LEVELS);
    fputs(",\"quantile_spread\":", o);
    json_write_number(o, f->q_spread);
    fputc('}', o);
    return json_mem_close(&m, out, n);
}

int fingerprint_from_json(fingerprint *f, const char *json, const char *what) {
    memset(f, 0, sizeof *f);
    if (json_check(json, what)) return -1;
    double v[FP_LEVELS], x;
    if (json_top_number(json, "version", &x) || x != 1) return as_fail("%s: fingerprint of an unknown version", what);
    if (json_top_number(json, "scans", &x) || !(x >= 1 && x < 1e9)) return as_fail("%s: fingerprint: bad scans", what);
    f->scans = (int)x;
    if (json_top_string(json, "modality", f->modality, sizeof f->modality) ||
        json_top_string(json, "orientation", f->orientation, sizeof f->orientation))
        return as_fail("%s: fingerprint: no modality or orientation", what);
    if (json_top_numbers(json, "grid", v, 3) != 3) return as_fail("%s: fingerprint: bad grid", what);
    for (int a = 0; a < 3; a++) f->dims[a] = v[a] >= 0 && v[a] < 1e9 ? (int)v[a] : 0;
    if (json_top_numbers(json, "voxel_mm_min", v, 3) != 3) return as_fail("%s: fingerprint: bad voxel_mm_min", what);
    for (int a = 0; a < 3; a++) f->voxel_min[a] = (float)v[a];
    if (json_top_numbers(json, "voxel_mm_max", v, 3) != 3) return as_fail("%s: fingerprint: bad voxel_mm_max", what);
    for (int a = 0; a < 3; a++) f->voxel_max[a] = (float)v[a];
    if (json_top_numbers(json, "foreground_ml_min_mean_max", v, 3) != 3)
        return as_fail("%s: fingerprint: bad foreground_ml_min_mean_max", what);
    f->fg_ml_min = v[0], f->fg_ml_mean = v[1], f->fg_ml_max = v[2];
    if (json_top_number(json, "border_share_max", &f->border_max) ||
        json_top_number(json, "quantile_spread", &f->q_spread) ||
        json_top_numbers(json, "brain_raw_q01_q50_q99", f->raw_q, 3) != 3 ||
        json_top_numbers(json, "brain_quantiles", f->q, FP_LEVELS) != FP_LEVELS)
        return as_fail("%s: fingerprint: bad intensity statistics", what);
    return 0;
}

int fingerprint_read(fingerprint *f, const char *checkpoint) {
    memset(f, 0, sizeof *f);
    st_file sf;
    if (st_open(&sf, checkpoint)) return -1;
    const char *json = st_meta(&sf, FINGERPRINT_KEY);
    char what[4200];
    snprintf(what, sizeof what, "%s: metadata " FINGERPRINT_KEY, checkpoint);
    int rc = json ? (fingerprint_from_json(f, json, what) ? -1 : 1) : 0;
    st_close(&sf);
    return rc;
}

// ---- a scan against it ------------------------------------------------------------------------

void fingerprint_modality_of_name(const char *path, char out[8]) {
    out[0] = 0;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    if (len > 7 && !strcmp(base + len - 7, ".nii.gz")) len -= 7;
    else if (len > 4 && !strcmp(base + len - 4, ".nii")) len -= 4;
    static const char *const tokens[][2] = {{"t1", "t1"},     {"t1w", "t1"},   {"t2", "t2"},     {"t2w", "t2"},
                                            {"flair", "flair"}, {"t1ce", "t1ce"}, {"t1c", "t1ce"}, {"t1gd", "t1ce"}};
    for (size_t i = 0; i < len;) {
        while (i < len && !isalnum((unsigned char)base[i])) i++;
        char tok[16];
        size_t t = 0;
        while (i < len && isalnum((unsigned char)base[i])) {
            if (t + 1 < sizeof tok) tok[t++] = (char)tolower((unsigned char)base[i]);
            i++;
        }
        tok[t] = 0;
        for (size_t k = 0; k < sizeof tokens / sizeof tokens[0]; k++)
            if (!strcmp(tok, tokens[k][0])) {
                snprintf(out, 8, "%s", tokens[k][1]);  // the last such token wins (IXI: ...-T2)
            }
    }
}

// "1.1x1.1x1.3" (3 significant digits)
static void mm3(char *out, size_t n, const float v[3]) { snprintf(out, n, "%.3gx%.3gx%.3g", v[0], v[1], v[2]); }

int fingerprint_check(const fingerprint *f, const scan_print *p, const char *modality, char lines[][FP_WARNING_LEN]) {
    int n = 0;
    if (f->modality[0] && modality && modality[0] && strcmp(f->modality, modality))
        snprintf(lines[n++], FP_WARNING_LEN, "modality %s, trained on %s", modality, f->modality);
    if (f->dims[0] && memcmp(f->dims, p->dims, sizeof f->dims))
        snprintf(lines[n++], FP_WARNING_LEN, "grid %dx%dx%d, trained on %dx%dx%d", p->dims[0], p->dims[1], p->dims[2],
                 f->dims[0], f->dims[1], f->dims[2]);
    int off = 0;
    for (int a = 0; a < 3; a++)
        off |= p->voxel_mm[a] < f->voxel_min[a] * (1 - FP_VOXEL_TOL) || p->voxel_mm[a] > f->voxel_max[a] * (1 + FP_VOXEL_TOL);
    if (off) {
        char s[64], lo[64], hi[64];
        mm3(s, sizeof s, p->voxel_mm), mm3(lo, sizeof lo, f->voxel_min), mm3(hi, sizeof hi, f->voxel_max);
        if (strcmp(lo, hi)) snprintf(lines[n++], FP_WARNING_LEN, "voxel size %s mm, trained on %s to %s mm", s, lo, hi);
        else snprintf(lines[n++], FP_WARNING_LEN, "voxel size %s mm, trained on %s mm", s, lo);
    }
    double border_limit = fmax(FP_HEAD_BORDER, 2 * f->border_max);
    if (p->fg_ml > FP_HEAD_VOLUME * f->fg_ml_max || p->border_share > border_limit)
        snprintf(lines[n++], FP_WARNING_LEN,
                 "the foreground (image > 0) is a head rather than a brain (skull not stripped?): %.0f ml, training "
                 "foregrounds %.0f..%.0f ml; %.1f%% of the volume's border is foreground, trained at most %.1f%%",
                 p->fg_ml, f->fg_ml_min, f->fg_ml_max, 100 * p->border_share, 100 * f->border_max);
    double d = q_distance(p->q, f->q), limit = fmax(FP_INTENSITY_FLOOR, 2 * f->q_spread);
    if (p->brain_voxels > 0 && d > limit)
        snprintf(lines[n++], FP_WARNING_LEN,
                 "brain intensities unlike training's: quantiles 5/50/95%% at %.2f/%.2f/%.2f of the 99th percentile, "
                 "trained %.2f/%.2f/%.2f (distance %.3f, limit %.3f)",
                 p->q[0], p->q[9], p->q[18], f->q[0], f->q[9], f->q[18], d, limit);
    return n;
}
