// One subject through detection (see detect.h).
#include "detect/detect.h"

#include <math.h>
#include <nifti1.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/model_adapter.h"
#include "detect/normative.h"
#include "io/png.h"
#include "nn/nn.h"  // nn_precision: the GEMMs' precision, for the summary
#include "util/error.h"
#include "util/fs.h"
#include "util/hash.h"  // hash_floats
#include "util/json.h"
#include "util/morph.h"  // morph_label
#include "util/stats.h"  // sort_floats, quantile_sorted_f32
#include "util/timer.h"

void detect_options_default(detect_options *o) {
    memset(o, 0, sizeof *o);
    amap_defaults(&o->amap);
    postproc_preset(&o->post, "calibrated");
    slice_options_default(&o->slices, 0);
    o->preset = "calibrated";
    o->fpr = DETECT_DEFAULT_FPR, o->fpr_low = DETECT_DEFAULT_FPR_LOW;
    o->normative_sigma = DETECT_DEFAULT_NORMATIVE_SIGMA;
    detect_parse_scales(o, DETECT_DEFAULT_SCALES);
    o->amap.window_norm = 0, o->amap.slice_norm = 0;  // residual units, as the calibrated preset needs
    o->checkpoint = "";
    o->overlays = 1;
}

int detect_parse_scales(detect_options *o, const char *text) {
    float v[NORMATIVE_MAX_SCALES];
    int n = 0;
    const char *p = text;
    for (;;) {
        char *end;
        double d = strtod(p, &end);
        if (end == p || !(d >= 0 && d <= 64) || n == NORMATIVE_MAX_SCALES)
            return as_fail("scales \"%s\": 1 to %d comma-separated smoothing scales in 0..64 px", text,
                           NORMATIVE_MAX_SCALES);
        for (int k = 0; k < n; k++)
            if (v[k] == (float)d) return as_fail("scales \"%s\": scale %g given twice", text, d);
        v[n++] = (float)d;
        if (*end == 0) break;
        if (*end != ',') return as_fail("scales \"%s\": 1 to %d comma-separated numbers", text, NORMATIVE_MAX_SCALES);
        p = end + 1;
    }
    memcpy(o->scales, v, sizeof(float) * n);
    o->n_scales = n;
    return 0;
}

void detect_view_slice(float *out, const float *in, int S) {
    for (int r = 0; r < S; r++)
        for (int c = 0; c < S; c++) out[(size_t)r * S + c] = in[(size_t)c * S + (S - 1 - r)];
}

static void view_u8(uint8_t *out, const uint8_t *in, int S) {
    for (int r = 0; r < S; r++)
        for (int c = 0; c < S; c++) out[(size_t)r * S + c] = in[(size_t)c * S + (S - 1 - r)];
}

// input | reconstruction | map | mask overlay [| ground truth overlay], for model-grid slice data.
static int write_overlay(const char *path, const float *img, const float *rec, const float *map, const uint8_t *mask,
                         const uint8_t *gt, int S) {
    size_t n = (size_t)S * S;
    float *vi = as_malloc(sizeof(float) * n), *vr = as_malloc(sizeof(float) * n), *vm = as_malloc(sizeof(float) * n);
    uint8_t *vk = as_malloc(n), *vg = as_malloc(n);
    detect_view_slice(vi, img, S), detect_view_slice(vr, rec, S), detect_view_slice(vm, map, S);
    view_u8(vk, mask, S);
    rgb_image tiles[5];
    int nt = 0;
    rgb_image_from_grey(&tiles[nt++], vi, S, S, 0, 1);
    rgb_image_from_grey(&tiles[nt++], vr, S, S, 0, 1);
    rgb_image_from_map(&tiles[nt++], vm, S, S, 0, 1, COLORMAP_HOT);
    static const unsigned char red[3] = {255, 40, 40}, green[3] = {40, 255, 40};
    rgb_image_from_grey(&tiles[nt], vi, S, S, 0, 1);
    rgb_image_overlay_mask(&tiles[nt++], vk, red, 0.45f, 0);
    if (gt) {
        view_u8(vg, gt, S);
        rgb_image_from_grey(&tiles[nt], vi, S, S, 0, 1);
        rgb_image_overlay_mask(&tiles[nt], vg, green, 0.45f, 0);
        rgb_image_overlay_mask(&tiles[nt++], vk, red, 1.0f, 1);
    }
    rgb_image panel;
    rgb_image_panel(&panel, tiles, nt, 4);
    int rc = pngfile_write_rgb(path, &panel);
    rgb_image_free(&panel);
    for (int i = 0; i < nt; i++) rgb_image_free(&tiles[i]);
    free(vi), free(vr), free(vm), free(vk), free(vg);
    return rc;
}

// Attention maps (paper A.2) of one slice from the method's stage maps (model.h), min-max scaled
// and upsampled (nearest) to the image size. Methods without them write none.
static int write_attention(const char *dir, int k, model *m, const float *img, int S) {
    if (!m->method->stage_maps) return 0;
    enum { MAX_STAGES = 8 };
    int C = m->in_chans, res[MAX_STAGES];
    size_t n = (size_t)S * S;
    float *in = as_malloc(sizeof(float) * C * n), *up = as_malloc(sizeof(float) * n), *view = as_malloc(sizeof(float) * n);
    float *maps[MAX_STAGES];
    for (int s = 0; s < MAX_STAGES; s++) maps[s] = as_malloc(sizeof(float) * n);
    for (int ch = 0; ch < C; ch++) memcpy(in + ch * n, img, sizeof(float) * n);
    int stages = m->method->stage_maps(m, in, maps, res, MAX_STAGES), rc = 0;
    for (int s = 0; s < stages && !rc; s++) {
        int R = res[s];
        const float *a = maps[s];
        float lo = INFINITY, hi = -INFINITY;
        for (int t = 0; t < R * R; t++) lo = fminf(lo, a[t]), hi = fmaxf(hi, a[t]);
        int f = S / R;
        for (int y = 0; y < S; y++)
            for (int xx = 0; xx < S; xx++) {
                float v = a[(y / f) * R + xx / f];
                up[(size_t)y * S + xx] = hi > lo ? (v - lo) / (hi - lo) : 0.0f;
            }
        detect_view_slice(view, up, S);
        char name[64], path[4200];
        snprintf(name, sizeof name, "z%03d_stage%d.png", k, s);
        fs_join(path, sizeof path, dir, name);
        rc = pngfile_write_map(path, view, S, S, 0, 1, COLORMAP_INFERNO);
    }
    for (int s = 0; s < MAX_STAGES; s++) free(maps[s]);
    free(in), free(up), free(view);
    return rc;
}

// What the written anomaly map's values mean, from the map settings and the calibration; the
// threshold applies to these values, so it is in the same units. Eval's panels label their colour
// bars with `units`.
static void map_units(const detect_options *o, char *units, size_t nu, char *norm, size_t nn) {
    const amap_params *a = &o->amap;
    const calibration *c = o->calib && o->calib->norm_mean ? o->calib : NULL;  // normative
    const char *scaled = a->window_norm && a->slice_norm ? "window minmax, slice max"
                         : a->window_norm               ? "window minmax"
                         : a->slice_norm                ? "slice max"
                                                        : "none";
    if (c)
        snprintf(norm, nn, "%s%snormative z-score (sigma %g px, %d scale%s)", strcmp(scaled, "none") ? scaled : "",
                 strcmp(scaled, "none") ? ", then " : "", (double)c->norm_sigma, c->norm_nscales,
                 c->norm_nscales == 1 ? "" : "s, max of z / unit");
    else snprintf(norm, nn, "%s", scaled);
    snprintf(units, nu, "%s", c ? "normative z-score units" : strcmp(scaled, "none") ? "normalised residual units"
                                                                                    : "residual units");
}

// The method's own anomaly score of each slice (model.h image_score; NaN for a slice without
// brain), or NULL when the method has none.
static float *slice_scores(model *m, const slice_stack *s) {
    if (!m->method->image_score) return NULL;
    const int C = m->in_chans, B = m->max_batch;
    const size_t hw = (size_t)s->size * s->size;
    float *score = as_malloc(sizeof(float) * (size_t)s->n), *in = as_malloc(sizeof(float) * B * C * hw),
          *out = as_malloc(sizeof(float) * B);
    int *idx = as_malloc(sizeof(int) * B), nb = 0;
    for (int i = 0; i <= s->n; i++) {
        if (i < s->n) {
            score[i] = NAN;
            int any = 0;
            for (size_t q = 0; q < hw && !any; q++) any = s->brain[i * hw + q];
            if (any) slices_input(in + (size_t)nb * C * hw, s, i, C), idx[nb++] = i;
        }
        if (nb == B || (i == s->n && nb > 0)) {
            m->method->image_score(m, out, in, nb);
            for (int k = 0; k < nb; k++) score[idx[k]] = out[k];
            nb = 0;
        }
    }
    free(in), free(out), free(idx);
    return score;
}

static int write_summary(const char *path, const detect_result *r, const detect_input *in, const model *m,
                         const slice_stack *s, const detect_options *o, const int *finding_z, const float *score) {
    fs_file af;
    if (fs_file_open(&af, path)) return -1;
    FILE *f = af.f;
    char cfg[1024];
    model_config_json(m, cfg, sizeof cfg);
    fprintf(f, "{\n  \"subject\": ");
    json_write_string(f, in->id);
    fprintf(f, ",\n  \"image\": ");
    json_write_string(f, in->image);
    fprintf(f, ",\n  \"brain_mask\": ");
    json_write_string(f, in->mask && in->mask[0] ? in->mask : "");
    fprintf(f, ",\n  \"checkpoint\": ");
    json_write_string(f, o->checkpoint ? o->checkpoint : "");
    fprintf(f, ",\n  \"config\": %s,\n  \"parameters\": %zu,\n  \"parameters_total\": %zu,\n", cfg,
            m->table->n_trainable, m->table->n_floats);
    fprintf(f, "  \"precision\": \"%s\",\n", nn_precision_name(nn_precision()));
    fprintf(f, "  \"native_shape\": [%d, %d, %d],\n  \"voxel_size_mm\": [%g, %g, %g],\n", s->native.nx,
            s->native.ny, s->native.nz, s->native.pixdim[0], s->native.pixdim[1], s->native.pixdim[2]);
    fprintf(f, "  \"slice_range\": [%d, %d],\n  \"slices\": %d,\n", s->z[0], s->z[s->n - 1], s->n);
    fprintf(f, "  \"mask_size\": %d,\n  \"stride\": %d,\n  \"grid\": ", o->amap.window,
            o->amap.stride > 0 ? o->amap.stride : o->amap.window);
    if (o->amap.auto_grid) fprintf(f, "\"brain bounding box\",\n");
    else fprintf(f, "[%d, %d],\n", o->amap.origin_x, o->amap.origin_y);
    fprintf(f, "  \"residual\": \"%s\",\n  \"brain_only\": %s,\n  \"window_norm\": \"%s\",\n",
            o->amap.positive_residual ? "positive" : "abs", o->amap.restrict_to_brain ? "true" : "false",
            o->amap.window_norm ? "minmax" : "none");
    fprintf(f, "  \"slice_norm\": \"%s\",\n", o->amap.slice_norm ? "max" : "none");
    char units[64], norm[160];
    map_units(o, units, sizeof units, norm, sizeof norm);
    fprintf(f,
            "  \"map\": {\"units\": \"%s\", \"residual\": \"%s (mean over channels), intensities scaled %s\", "
            "\"normalisation\": \"%s\", \"threshold_units\": \"%s\"},\n",
            units, o->amap.positive_residual ? "max(input - reconstruction, 0)" : "|input - reconstruction|",
            o->slices.norm == SLICE_NORM_PERCENTILE ? "by percentiles" : "minmax", norm, units);
    fputs("  \"intensity_standard\": ", f);  // the model's (data/nyul.h): scans were mapped onto it first
    char std[1024];
    if (m->intensity.on && !nyul_to_json(&m->intensity, std, sizeof std))
        fprintf(f, "%s,\n", std);
    else
        fputs("null,\n", f);
    if (o->post.mode == POSTPROC_CALIBRATED) {
        fprintf(f, "  \"calibration\": {\"file\": ");
        json_write_string(f, o->calib_path ? o->calib_path : "");
        if (o->calib)
            fprintf(f, ", \"scans\": %d, \"voxels\": %lld, \"fpr\": %g, \"fpr_low\": %g", o->calib->scans,
                    (long long)o->calib->voxels, o->fpr, o->fpr_low);
        fprintf(f, ", \"threshold\": %.9g, \"low\": %.9g},\n", o->post.threshold,
                o->post.low > 0 && o->post.low < o->post.threshold ? o->post.low : o->post.threshold);
    }
    char scan[2048];
    if (scan_print_to_json(&r->scan, scan, sizeof scan)) scan[0] = 0;
    fprintf(f, "  \"input_guard\": {\"fingerprint\": %s, \"forced\": %s, \"warnings\": [", o->guard ? "true" : "false",
            o->force ? "true" : "false");
    for (int i = 0; i < r->n_warnings; i++) {
        fprintf(f, "%s", i ? ", " : "");
        json_write_string(f, r->warnings[i]);
    }
    fprintf(f, "], \"scan\": %s},\n", scan[0] ? scan : "null");
    fprintf(f, "  \"windows\": %d,\n  \"preset\": ", r->windows);
    json_write_string(f, o->preset ? o->preset : "");
    const postproc_params *p = &o->post;
    fprintf(f,
            ",\n  \"postproc\": {\"ndim\": %d, \"erode_k\": %d, \"threshold\": %g, \"connectivity\": %d, "
            "\"keep_top\": %d, \"dilate_k\": %d, \"rank_on\": \"%s\", \"seg_classes\": %d, \"mrf_beta\": %g, "
            "\"mrf_radius\": %d, \"seg_iterations\": %d, \"match\": \"%s\", \"keep_unmatched\": %d, \"grow\": %d, "
            "\"bound\": %d, \"floor\": %g, \"mode\": \"%s\", \"low\": %g, \"min_voxels\": %d, \"refine\": %d},\n",
            p->ndim, p->erode_k, p->threshold, p->connectivity, p->keep_top, p->dilate_k,
            p->rank_on == POSTPROC_RANK_ERODED ? "eroded" : "map", p->seg_classes, p->mrf_beta, p->mrf_radius,
            p->seg_iterations, p->match == POSTPROC_MATCH_IOU ? "iou" : "area", p->keep_unmatched, p->grow,
            p->bound, p->floor, p->mode == POSTPROC_CALIBRATED ? "calibrated" : "A.1", p->low, p->min_voxels,
            p->refine);
    fprintf(f, "  \"lesion_voxels\": %lld,\n  \"lesion_volume_ml\": %.6g,\n  \"components\": %d,\n",
            (long long)r->lesion_voxels, r->lesion_ml, r->components);
    fprintf(f, "  \"slices_with_findings\": [");
    for (int i = 0; i < r->slices_with_findings; i++) fprintf(f, "%s%d", i ? ", " : "", finding_z[i]);
    fprintf(f, "],\n");
    if (score) {  // the method's own image-level score per slice (null: no brain in the slice)
        float mx = -INFINITY;
        fprintf(f, "  \"image_score\": {\"name\": ");
        json_write_string(f, m->method->image_score_name ? m->method->image_score_name : "");
        fprintf(f, ", \"z\": [");
        for (int i = 0; i < s->n; i++) fprintf(f, "%s%d", i ? ", " : "", s->z[i]);
        fprintf(f, "], \"score\": [");
        for (int i = 0; i < s->n; i++) {
            if (isnan(score[i])) fprintf(f, "%snull", i ? ", " : "");
            else fprintf(f, "%s%.9g", i ? ", " : "", score[i]), mx = fmaxf(mx, score[i]);
        }
        fprintf(f, "], \"max\": ");
        if (isinf(mx)) fprintf(f, "null},\n");
        else fprintf(f, "%.9g},\n", mx);
    }
    fprintf(f, "  \"seconds_per_slice\": %.6g,\n  \"postproc_ms_per_slice\": %.6g,\n  \"seconds_total\": %.6g\n}\n",
            r->map_seconds / (r->slices > 0 ? r->slices : 1), 1e3 * r->post_seconds / (r->slices > 0 ? r->slices : 1),
            r->total_seconds);
    if (ferror(f)) {
        fs_file_abort(&af);
        return as_fail("%s: write error", path);
    }
    return fs_file_commit(&af);
}

// maps (n, S, S) on the model grid -> native volume written as `name` in out_dir.
static int write_native(const char *out_dir, const char *name, const slice_stack *s, const float *maps, int nearest,
                        int dtype, volume *keep) {
    volume v;
    if (slices_to_native(&v, s, maps, nearest)) return -1;
    char path[4200];
    fs_join(path, sizeof path, out_dir, name);
    int rc = volume_write(&v, &v, path, dtype);
    if (keep && !rc) *keep = v;
    else volume_free(&v);
    return rc;
}

int detect_guard(char lines[][FP_WARNING_LEN], const detect_input *in, const scan_print *p, const detect_options *o) {
    if (!o->guard) return 0;
    int n = fingerprint_check(o->guard, p, in->modality, lines);
    for (int i = 0; i < n && !o->force; i++) fprintf(stderr, "anoswin: warning: %s: %s\n", in->image, lines[i]);
    return n;
}

int detect_maps(slice_stack *s, float **maps_out, float **recon_out, int *windows, model *m,
                const detect_input *in, const detect_options *o, scan_print *scan, char warnings[][FP_WARNING_LEN],
                int *n_warnings) {
    slice_options so = o->slices;
    model_slice_options(m, &so);
    *maps_out = NULL;
    if (recon_out) *recon_out = NULL;
    *windows = 0;
    scan_print sp;
    char lines[FP_MAX_WARNINGS][FP_WARNING_LEN];
    if (scan_print_load_slices(s, &sp, in->image, in->mask && in->mask[0] ? in->mask : NULL, &so)) return -1;
    int nw = detect_guard(lines, in, &sp, o);  // before minutes of model work
    if (scan) *scan = sp;
    if (warnings) memcpy(warnings, lines, sizeof(lines[0]) * (size_t)nw);
    if (n_warnings) *n_warnings = nw;
    int S = s->size, n = s->n, C = m->in_chans;
    size_t hw = (size_t)S * S, nv = (size_t)n * hw;
    float *maps = as_calloc(nv, sizeof(float)), *recon = recon_out ? as_malloc(sizeof(float) * nv) : NULL;
    if (recon) memcpy(recon, s->img, sizeof(float) * nv);
    if (o->maps_from) {  // saved maps of an earlier run with the same settings
        char dir[4200], path[4300];
        fs_join(dir, sizeof dir, o->maps_from, in->id);
        fs_join(path, sizeof path, dir, "model_grid_map.f32");
        unsigned char *buf;
        size_t len;
        if (fs_read_all(path, &buf, &len)) goto fail;
        if (len != sizeof(float) * nv) {
            free(buf);
            as_fail("%s: %zu bytes, expected %zu (%d slices of %dx%d): saved with other settings", path, len,
                    sizeof(float) * nv, n, S, S);
            goto fail;
        }
        memcpy(maps, buf, len);
        free(buf);
        if (o->amap.slice_norm)  // what amap_slice's last step would have done to a raw map
            for (int i = 0; i < n; i++) {
                float mx = 0, *m1 = maps + i * hw;
                for (size_t q = 0; q < hw; q++) mx = m1[q] > mx ? m1[q] : mx;
                if (mx > 0)
                    for (size_t q = 0; q < hw; q++) m1[q] /= mx;
            }
    } else {
        amap_params ap = o->amap;
        amap_params_for_model(&ap, m);
        progress pr;
        char label[300];
        snprintf(label, sizeof label, "detect %s", in->id);
        if (o->verbose) progress_begin(&pr, label, n);
        // A whole-image method: max_batch slices per call (one autoDDPM inference for the batch).
        for (int i = 0; i < n && ap.whole_image;) {
            int nb = n - i < ap.max_batch ? n - i : ap.max_batch, nw[256];
            if (nb > 256) nb = 256;
            amap_model_ctx ctx = {.model = m};
            if (amap_slices_whole(maps + i * hw, recon ? recon + i * hw : NULL, nw, s->img + i * hw,
                                  s->brain + i * hw, nb, S, S, C, &ap, amap_model_run, &ctx))
                goto fail;
            for (int k = 0; k < nb; k++) *windows += nw[k];
            i += nb;
            if (o->verbose) {
                char extra[64];
                snprintf(extra, sizeof extra, "z=%d, %d slices per batch", s->z[i - 1], nb);
                progress_update(&pr, i, "slices", extra);
            }
        }
        for (int i = 0; i < n && !ap.whole_image; i++) {
            amap_model_ctx ctx = {.model = m, .composite = recon ? recon + i * hw : NULL};
            int nw = amap_slice(maps + i * hw, s->img + i * hw, s->brain + i * hw, S, S, C, &ap, amap_model_run,
                                &ctx);
            if (nw < 0) goto fail;
            *windows += nw;
            if (o->verbose) {
                char extra[64];
                snprintf(extra, sizeof extra, "z=%d, %d windows", s->z[i], nw);
                progress_update(&pr, i + 1, "slices", extra);
            }
        }
        if (o->verbose) progress_end(&pr);
    }
    *maps_out = maps;
    if (recon_out) *recon_out = recon;
    return 0;
fail:
    free(maps), free(recon);
    slices_free(s);
    return -1;
}

int detect_calibrate(calibration *c, model *m, const detect_input *in, int n, const detect_options *o) {
    memset(c, 0, sizeof *c);
    slice_options so = o->slices;
    calibration_set_map(c, &o->amap, &so);
    snprintf(c->checkpoint, sizeof c->checkpoint, "%s", o->checkpoint ? o->checkpoint : "");
    c->weights_hash = hash_floats(m->params, m->table->n_floats);
    if (o->normative_sigma > 0 && n < 2)
        return as_fail("calibration: a normative calibration needs at least 2 healthy scans (got %d); --normative 0 "
                       "uses one global threshold", n);
    if (o->normative_sigma > 0 && n < DETECT_CALIB_MIN_SCANS)
        fprintf(stderr,
                "calibration: warning: %d healthy scans give a loose, high threshold; calibrate on %d or more\n", n,
                DETECT_CALIB_MIN_SCANS);
    // Every scan's maps and brain, kept: the normative model needs them all before any z-score.
    float *stack = NULL;
    uint8_t *brains = NULL;
    size_t nv = 0;
    int S = 0, ns = 0, rc = -1;
    for (int i = 0; i < n; i++) {
        slice_stack s;
        float *maps;
        int windows;
        if (detect_maps(&s, &maps, NULL, &windows, m, &in[i], o, NULL, NULL, NULL)) goto done;
        if (i == 0) {
            c->z_first = s.z[0], c->z_last = s.z[s.n - 1], S = s.size, ns = s.n;
            nv = (size_t)ns * S * S;
            stack = as_malloc(sizeof(float) * nv * (size_t)n), brains = as_malloc(nv * (size_t)n);
        } else if (s.n != ns || s.z[0] != c->z_first || s.size != S) {
            as_fail("%s: slices %d..%d, but the first healthy scan has %d..%d: calibration scans must cover the same "
                    "slices", in[i].image, s.z[0], s.z[s.n - 1], c->z_first, c->z_last);
            free(maps), slices_free(&s);
            goto done;
        }
        memcpy(stack + nv * i, maps, sizeof(float) * nv);
        memcpy(brains + nv * i, s.brain, nv);
        free(maps);
        slices_free(&s);
        c->scans++;
    }
    // Each scale: every scan smoothed, scored against the others (an honest false-positive rate),
    // its unit from those leave-one-out scores; the calibration's score is the maximum over scales.
    int K = o->normative_sigma > 0 ? o->n_scales : 1;
    size_t nval = 0;
    float *vals = as_malloc(sizeof(float) * nv * (size_t)n), *score = as_malloc(sizeof(float) * nv * (size_t)n);
    float *smooth = as_malloc(sizeof(float) * nv * (size_t)n), *loo = as_malloc(sizeof(float) * nv * (size_t)n);
    float *mean = as_malloc(sizeof(float) * nv * K), *sd = as_malloc(sizeof(float) * nv * K);
    float *lmean = as_malloc(sizeof(float) * nv), *lsd = as_malloc(sizeof(float) * nv);  // leave-one-out model
    if (o->normative_sigma <= 0) memcpy(score, stack, sizeof(float) * nv * n);
    for (int k = 0; k < K && o->normative_sigma > 0; k++) {
        float s = o->scales[k];
        for (int i = 0; i < n; i++) smooth_slices(smooth + nv * i, stack + nv * i, S, S, ns, s);
        nval = 0;
        for (int i = 0; i < n; i++) {
            normative_fit(lmean, lsd, smooth, n, i, S, S, ns, o->normative_sigma, DETECT_NORMATIVE_SD_FLOOR);
            normative_z(loo + nv * i, smooth + nv * i, lmean, lsd, nv);
            for (size_t q = 0; q < nv; q++)
                if (brains[nv * i + q]) vals[nval++] = loo[nv * i + q];
        }
        float unit = 1;
        if (K > 1 && nval) {
            sort_floats(vals, nval);
            unit = (float)quantile_sorted_f32(vals, nval, 1.0 - NORMATIVE_UNIT_FPR);
            if (!(unit > 0)) unit = 1;  // a scale without a positive tail: plain z-scores
        }
        c->norm_scales[k] = s, c->norm_unit[k] = unit;
        for (size_t q = 0; q < nv * n; q++) {
            float v = loo[q] / unit;
            score[q] = k == 0 || v > score[q] ? v : score[q];
        }
        normative_fit(mean + nv * k, sd + nv * k, smooth, n, -1, S, S, ns, o->normative_sigma,
                      DETECT_NORMATIVE_SD_FLOOR);
    }
    nval = 0;
    for (int i = 0; i < n; i++)
        for (size_t q = 0; q < nv; q++)
            if (brains[nv * i + q]) vals[nval++] = score[nv * i + q];
    if (nval && o->normative_sigma > 0) {
        c->norm_mean = mean, c->norm_sd = sd, mean = sd = NULL;
        c->norm_sigma = o->normative_sigma, c->norm_floor = DETECT_NORMATIVE_SD_FLOOR, c->norm_size = S;
        c->norm_nscales = K;
    }
    if (nval) calibration_set_values(c, vals, nval);
    else as_fail("calibration: no brain voxel in the %d healthy scan%s", n, n == 1 ? "" : "s");
    free(vals), free(score), free(smooth), free(loo), free(mean), free(sd), free(lmean), free(lsd);
    rc = nval ? 0 : -1;
done:
    free(stack), free(brains);
    if (rc) calibration_free(c);
    return rc;
}

int detect_apply_calibration(detect_options *o, const calibration *c, const char *path) {
    double t = calibration_threshold(c, o->fpr), lo = o->fpr_low > 0 ? calibration_threshold(c, o->fpr_low) : t;
    if (!isfinite(t) || !isfinite(lo))
        return as_fail("%s: false-positive rates %g and %g must lie in %g..%g", path, o->fpr, o->fpr_low,
                       calib_fpr_levels[0], calib_fpr_levels[CALIB_LEVELS - 1]);
    o->post.threshold = (float)t, o->post.low = (float)lo;
    o->calib = c, o->calib_path = path;
    return 0;
}

// Sets to 0 the voxels of v outside the subject's brain on the native grid (its mask file, else
// image > 0): the model-grid mask came back through nearest-neighbour resampling, which can put
// voxels just outside.
static int restrict_to_native_brain(volume *v, const detect_input *in) {
    const char *path = in->mask && in->mask[0] ? in->mask : in->image;
    volume b;
    if (volume_read(&b, path)) return -1;
    if (b.nx != v->nx || b.ny != v->ny || b.nz != v->nz) {
        volume_free(&b);
        return as_fail("%s: grid %dx%dx%d differs from the image's %dx%dx%d", path, b.nx, b.ny, b.nz, v->nx, v->ny,
                       v->nz);
    }
    size_t nvox = volume_voxels(v);
    for (size_t i = 0; i < nvox; i++)
        if (!(b.data[i] > 0)) v->data[i] = 0;
    volume_free(&b);
    return 0;
}

int detect_subject(detect_result *r, model *m, const detect_input *in, const char *out_dir, const detect_options *o) {
    memset(r, 0, sizeof *r);
    double t0 = now_seconds();
    const char *ckpt = o->checkpoint && o->checkpoint[0] ? o->checkpoint : "checkpoint";
    if (amap_check_model(m, m->img_size, o->amap.window, ckpt)) return -1;
    if (postproc_validate(&o->post)) return -1;
    slice_stack s;
    float *maps, *recon;
    double tm0 = now_seconds();
    if (detect_maps(&s, &maps, &recon, &r->windows, m, in, o, &r->scan, r->warnings, &r->n_warnings)) return -1;
    r->map_seconds = now_seconds() - tm0;
    char path[4300];
    fs_join(path, sizeof path, out_dir, "model_grid_map.f32");  // raw, before any normalisation (--maps-from)
    if (o->save_model_grid && (fs_mkdirs(out_dir) || fs_write_all(path, maps, sizeof(float) * s.n * s.size * s.size))) {
        free(maps), free(recon);
        slices_free(&s);
        return -1;
    }
    if (o->calib && calibration_normalise(o->calib, o->calib_path, maps, s.z, s.n, s.size)) {
        free(maps), free(recon);
        slices_free(&s);
        return -1;
    }
    int S = s.size, n = s.n;
    size_t hw = (size_t)S * S, nv = (size_t)n * hw;
    r->slices = n;
    uint8_t *mask = as_calloc(nv, 1), *gt = NULL;
    int *finding_z = as_calloc((size_t)n + 1, sizeof(int));
    float *score = NULL;
    int rc = -1;
    if (fs_mkdirs(out_dir)) goto done;
    if (in->label && in->label[0]) {
        volume lab;
        if (volume_read(&lab, in->label)) goto done;
        gt = as_malloc(nv);
        int e = slices_labels(gt, &s, &lab);
        volume_free(&lab);
        if (e) goto done;
    }

    // 2. post-processing on the model grid (x = w fastest, y = h, z = slice)
    double tp0 = now_seconds();
    if (postprocess(mask, NULL, maps, s.img, s.brain, S, S, n, &o->post)) goto done;
    r->post_seconds = now_seconds() - tp0;

    // 3. native grid
    if (o->save_model_grid) {  // the map, and the brain and labels it is scored against
        fs_join(path, sizeof path, out_dir, "model_grid_brain.u8");
        if (fs_write_all(path, s.brain, nv)) goto done;
        fs_join(path, sizeof path, out_dir, "model_grid_label.u8");
        if (gt && fs_write_all(path, gt, nv)) goto done;
    }
    if (write_native(out_dir, "anomaly_map.nii.gz", &s, maps, 0, NIFTI_TYPE_FLOAT32, NULL)) goto done;
    float *scaled = as_malloc(sizeof(float) * nv), span = s.hi - s.lo;
    // back to input intensities (to the standard's units, NYUL_LO..NYUL_HI, when the model has one)
    for (size_t i = 0; i < nv; i++) scaled[i] = s.lo + recon[i] * span;
    int e = write_native(out_dir, "reconstruction.nii.gz", &s, scaled, 0, NIFTI_TYPE_FLOAT32, NULL);
    for (size_t i = 0; i < nv; i++) scaled[i] = mask[i];
    volume vm = {0};
    if (!e) e = slices_to_native(&vm, &s, scaled, 1);
    free(scaled);
    if (e) goto done;
    if (restrict_to_native_brain(&vm, in)) {
        volume_free(&vm);
        goto done;
    }
    char mpath[4300];
    fs_join(mpath, sizeof mpath, out_dir, "mask.nii.gz");
    if (volume_write(&vm, &vm, mpath, NIFTI_TYPE_UINT8)) {
        volume_free(&vm);
        goto done;
    }
    size_t nvox = volume_voxels(&vm);
    uint8_t *m8 = as_malloc(nvox);
    for (size_t i = 0; i < nvox; i++) {
        m8[i] = vm.data[i] > 0.5f;
        r->lesion_voxels += m8[i];
    }
    int32_t *lab = as_malloc(sizeof(int32_t) * nvox);
    r->components = morph_label(lab, m8, vm.nx, vm.ny, vm.nz, 26);
    r->lesion_ml = (double)r->lesion_voxels * vm.pixdim[0] * vm.pixdim[1] * vm.pixdim[2] / 1000.0;
    free(lab), free(m8);
    volume_free(&vm);
    if (r->components < 0) goto done;

    // 4. pictures
    char dir[4200];
    for (int i = 0; i < n; i++) {
        int any = 0;
        for (size_t j = 0; j < hw && !any; j++) any = mask[i * hw + j];
        if (!any) continue;
        finding_z[r->slices_with_findings++] = s.z[i];
        if (!o->overlays) continue;
        char name[64], path[4300];
        fs_join(dir, sizeof dir, out_dir, "overlays");
        if (fs_mkdirs(dir)) goto done;
        snprintf(name, sizeof name, "z%03d.png", s.z[i]);
        fs_join(path, sizeof path, dir, name);
        if (write_overlay(path, s.img + i * hw, recon + i * hw, maps + i * hw, mask + i * hw, gt ? gt + i * hw : NULL,
                          S))
            goto done;
    }
    if (o->attention_maps) {
        fs_join(dir, sizeof dir, out_dir, "attention");
        if (fs_mkdirs(dir)) goto done;
        for (int i = 0; i < n; i++)
            if (write_attention(dir, s.z[i], m, s.img + i * hw, S)) goto done;
    }
    r->total_seconds = now_seconds() - t0;
    fs_join(path, sizeof path, out_dir, "summary.json");
    score = slice_scores(m, &s);
    rc = write_summary(path, r, in, m, &s, o, finding_z, score);
done:
    free(maps), free(recon), free(mask), free(gt), free(finding_z), free(score);
    slices_free(&s);
    return rc;
}
