// Per-subject pictures for the HTML report (see report.h: eval_panels_write).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/volume.h"  // volume_read, volume_free
#include "eval/report.h"
#include "eval/viewer.h"  // eval_viewer_write
#include "io/png.h"       // rgb_image_*, pngfile_write_rgb, image_window_percentile
#include "util/error.h"   // as_malloc
#include "util/fs.h"      // fs_join, fs_exists, fs_mkdirs
#include "util/json.h"    // json_read_file, json_top_*

// Axial slice k (RAS index) of a native-grid volume as a picture in the viewer convention of
// png.h (anterior at the top, patient's left on the left). out has (h, w) = (nA, nR).
static void ras_axial(float *out, int *w, int *h, const volume *v, const int wa[3], const int fl[3], int k) {
    int n3[3] = {v->nx, v->ny, v->nz}, axis_of[3];
    for (int a = 0; a < 3; a++) axis_of[wa[a]] = a;
    int ar = axis_of[0], aa = axis_of[1], as = axis_of[2];
    *w = n3[ar];
    *h = n3[aa];
    for (int y = 0; y < *h; y++)
        for (int x = 0; x < *w; x++) {
            int ras[3] = {x, *h - 1 - y, k}, idx[3];
            int axes[3] = {ar, aa, as};
            for (int t = 0; t < 3; t++) idx[axes[t]] = fl[axes[t]] ? n3[axes[t]] - 1 - ras[t] : ras[t];
            out[(size_t)y * *w + x] = v->data[(size_t)idx[0] + (size_t)v->nx * ((size_t)idx[1] + (size_t)v->ny * idx[2])];
        }
}

static void normalise(float *out, const float *img, const unsigned char *brain, size_t n) {
    float lo, hi;
    image_window_percentile(&lo, &hi, img, brain, n, 1, 99);
    for (size_t i = 0; i < n; i++) {
        float t = hi > lo ? (img[i] - lo) / (hi - lo) : 0;
        out[i] = t < 0 ? 0 : t > 1 ? 1 : t;
    }
}

// Optional inputs: a picture is skipped when its volume is missing, unreadable or on another grid.
static void read_optional(volume *v, const char *path, const volume *like) {
    memset(v, 0, sizeof *v);
    if (!path || !*path || !fs_exists(path) || volume_read(v, path) != 0) return;
    if (v->nx != like->nx || v->ny != like->ny || v->nz != like->nz) volume_free(v);
}

// The anomaly map's units as detect recorded them (summary.json "map": {"units": ...}): "map
// units" when they cannot be told.
static void map_units(char *out, size_t n, const char *pred_dir) {
    char path[4096];
    snprintf(out, n, "map units");
    fs_join(path, sizeof path, pred_dir, "summary.json");
    char *text = fs_exists(path) ? json_read_file(path) : NULL;
    const char *map = text ? json_top_value(text, "map") : NULL;
    char units[64];
    if (map && !json_top_string(map, "units", units, sizeof units)) snprintf(out, n, "%s", units);
    free(text);
}

int eval_panels_write(const eval_input *in, eval_subject *es, const char *run_dir, int viewer) {
    char dir[4096], path[4096];
    fs_join(dir, sizeof dir, run_dir, "panels");
    if (fs_mkdirs(dir) != 0) return -1;
    volume img = {0}, rec = {0}, map = {0}, pred = {0}, lab = {0}, brain = {0};
    int rc = -1;
    float *s_img = NULL, *s_rec = NULL, *s_map = NULL, *tmp = NULL, *tmp2 = NULL;
    unsigned char *bm = NULL, *u8 = NULL;
    if (volume_read(&img, in->image) != 0) goto done;
    int wa[3], fl[3];
    eval_ras_axes(img.affine, wa, fl);
    int flip, axis = eval_axial_axis(img.affine, &flip);
    int n3[3] = {img.nx, img.ny, img.nz}, nk = n3[axis];
    fs_join(path, sizeof path, in->pred_dir, "reconstruction.nii.gz");
    read_optional(&rec, path, &img);
    fs_join(path, sizeof path, in->pred_dir, "anomaly_map.nii.gz");
    read_optional(&map, path, &img);
    fs_join(path, sizeof path, in->pred_dir, "mask.nii.gz");
    read_optional(&pred, path, &img);
    read_optional(&lab, in->label, &img);
    read_optional(&brain, in->mask, &img);
    // The slice with the most ground truth inside the evaluated range, else the middle one.
    int best_k = (es->slice_lo + es->slice_hi) / 2;
    if (best_k < 0 || best_k >= nk) best_k = nk / 2;
    if (lab.data) {
        int64_t *cnt = as_calloc((size_t)nk, sizeof *cnt);
        int64_t best = 0;
        for (int k = 0; k < img.nz; k++)
            for (int j = 0; j < img.ny; j++)
                for (int i = 0; i < img.nx; i++) {
                    int idx[3] = {i, j, k};
                    if (lab.data[(size_t)i + (size_t)img.nx * ((size_t)j + (size_t)img.ny * k)] > 0)
                        cnt[flip ? nk - 1 - idx[axis] : idx[axis]]++;
                }
        for (int k = es->slice_lo; k <= es->slice_hi && k < nk; k++)
            if (k >= 0 && cnt[k] > best) best = cnt[k], best_k = k;
        free(cnt);
    }
    int w, h;
    size_t area = (size_t)img.nx * img.ny + (size_t)img.ny * img.nz + (size_t)img.nx * img.nz;  // >= any slice
    s_img = as_malloc(area * sizeof(float));
    tmp = as_malloc(area * sizeof(float));
    tmp2 = as_malloc(area * sizeof(float));
    bm = as_malloc(area);
    u8 = as_malloc(area);
    ras_axial(s_img, &w, &h, &img, wa, fl, best_k);
    size_t np = (size_t)w * h;
    if (brain.data) {
        ras_axial(tmp, &w, &h, &brain, wa, fl, best_k);
        for (size_t i = 0; i < np; i++) bm[i] = tmp[i] > 0;
    } else
        for (size_t i = 0; i < np; i++) bm[i] = s_img[i] > 0;
    float lo, hi;
    image_window_percentile(&lo, &hi, s_img, bm, np, 1, 99);
    rgb_image im;
    // input
    report_panel_path(path, sizeof path, run_dir, es->id, "input");
    rgb_image_from_grey(&im, s_img, w, h, lo, hi);
    int bad = pngfile_write_rgb(path, &im);
    rgb_image_free(&im);
    if (bad) goto done;
    // reconstruction and residual
    if (rec.data) {
        s_rec = as_malloc(area * sizeof(float));
        ras_axial(s_rec, &w, &h, &rec, wa, fl, best_k);
        float rlo, rhi;
        image_window_percentile(&rlo, &rhi, s_rec, bm, np, 1, 99);
        report_panel_path(path, sizeof path, run_dir, es->id, "reconstruction");
        rgb_image_from_grey(&im, s_rec, w, h, rlo, rhi);
        bad = pngfile_write_rgb(path, &im);
        rgb_image_free(&im);
        if (bad) goto done;
        normalise(tmp, s_img, bm, np);
        normalise(tmp2, s_rec, bm, np);
        float mx = 0;
        for (size_t i = 0; i < np; i++) {
            tmp[i] = bm[i] ? fabsf(tmp[i] - tmp2[i]) : 0;
            mx = fmaxf(mx, tmp[i]);
        }
        report_panel_path(path, sizeof path, run_dir, es->id, "residual");
        es->panel_hi[0] = mx > 0 ? mx : 1;
        if (pngfile_write_map(path, tmp, w, h, 0, es->panel_hi[0], COLORMAP_HOT) != 0) goto done;
    }
    if (map.data) {
        s_map = as_malloc(area * sizeof(float));
        ras_axial(s_map, &w, &h, &map, wa, fl, best_k);
        // 0 .. the slice's maximum in the brain: a z-score map is not bounded by 1.
        float mx = 0;
        for (size_t i = 0; i < np; i++)
            if (bm[i] && isfinite(s_map[i])) mx = fmaxf(mx, s_map[i]);
        es->panel_hi[1] = mx > 0 ? mx : 1;
        map_units(es->map_units, sizeof es->map_units, in->pred_dir);
        report_panel_path(path, sizeof path, run_dir, es->id, "map");
        if (pngfile_write_map(path, s_map, w, h, 0, es->panel_hi[1], COLORMAP_INFERNO) != 0) goto done;
    }
    static const unsigned char red[3] = {255, 40, 40}, green[3] = {40, 220, 40};
    const volume *ov[2] = {&pred, &lab};
    const char *kind[2] = {"mask", "gt"};
    for (int t = 0; t < 2; t++) {
        if (!ov[t]->data) continue;
        ras_axial(tmp, &w, &h, ov[t], wa, fl, best_k);
        for (size_t i = 0; i < np; i++) u8[i] = tmp[i] > 0;
        rgb_image_from_grey(&im, s_img, w, h, lo, hi);
        rgb_image_overlay_mask(&im, u8, t ? green : red, 0.5f, 0);
        report_panel_path(path, sizeof path, run_dir, es->id, kind[t]);
        bad = pngfile_write_rgb(path, &im);
        rgb_image_free(&im);
        if (bad) goto done;
    }
    if (viewer && eval_viewer_write(&img, &map, &pred, &lab, &brain, es->id, run_dir, VIEWER_MAX_VOXELS) != 0) goto done;
    rc = 0;
done:
    free(s_img);
    free(s_rec);
    free(s_map);
    free(tmp);
    free(tmp2);
    free(bm);
    free(u8);
    volume_free(&img);
    volume_free(&rec);
    volume_free(&map);
    volume_free(&pred);
    volume_free(&lab);
    volume_free(&brain);
    return rc;
}
