// One subject through detection (see detect.h).
#include "detect/detect.h"

#include <math.h>
#include <nifti1.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/model_adapter.h"
#include "detect/morph.h"   // morph_label
#include "io/png.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/timer.h"

void detect_options_default(detect_options *o) {
    memset(o, 0, sizeof *o);
    amap_defaults(&o->amap);
    postproc_defaults(&o->post);
    slice_options_default(&o->slices, 0);
    o->preset = "brats";
    o->checkpoint = "";
    o->overlays = 1;
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

// Attention maps (paper A.2) of one slice: an unmasked forward, then the channel mean of each
// encoder stage output, min-max scaled and upsampled (nearest) to the image size.
static int write_attention(const char *dir, int k, swinmae *m, const float *img, int S) {
    const swinmae_config *c = &m->cfg;
    int C = c->in_chans, L = swinmae_num_tokens(c);
    size_t n = (size_t)S * S;
    float *in = as_malloc(sizeof(float) * C * n), *up = as_malloc(sizeof(float) * n), *view = as_malloc(sizeof(float) * n);
    uint8_t *tm = as_calloc((size_t)L, 1);
    for (int ch = 0; ch < C; ch++) memcpy(in + ch * n, img, sizeof(float) * n);
    swinmae_forward(m, in, tm, 1, 0, 0);
    int rc = 0;
    for (int s = 0; s < SWINMAE_STAGES && !rc; s++) {
        int R = swinmae_stage_res(c, s), D = swinmae_stage_dim(c, s);
        const float *x = swinmae_stage_output(m, s);  // (1, R, R, D)
        float *a = as_malloc(sizeof(float) * R * R), lo = INFINITY, hi = -INFINITY;
        for (int t = 0; t < R * R; t++) {
            double sum = 0;
            for (int d = 0; d < D; d++) sum += x[(size_t)t * D + d];
            a[t] = (float)(sum / D);
            lo = fminf(lo, a[t]), hi = fmaxf(hi, a[t]);
        }
        int f = S / R;
        for (int y = 0; y < S; y++)
            for (int xx = 0; xx < S; xx++) {
                float v = a[(y / f) * R + xx / f];
                up[(size_t)y * S + xx] = hi > lo ? (v - lo) / (hi - lo) : 0.0f;
            }
        free(a);
        detect_view_slice(view, up, S);
        char name[64], path[4200];
        snprintf(name, sizeof name, "z%03d_stage%d.png", k, s);
        fs_join(path, sizeof path, dir, name);
        rc = pngfile_write_map(path, view, S, S, 0, 1, COLORMAP_INFERNO);
    }
    free(in), free(up), free(view), free(tm);
    return rc;
}

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

static int write_summary(const char *path, const detect_result *r, const detect_input *in, const swinmae *m,
                         const slice_stack *s, const detect_options *o, const int *finding_z) {
    fs_file af;
    if (fs_file_open(&af, path)) return -1;
    FILE *f = af.f;
    char cfg[1024];
    swinmae_config_to_json(&m->cfg, cfg, sizeof cfg);
    fprintf(f, "{\n  \"subject\": ");
    json_string(f, in->id);
    fprintf(f, ",\n  \"image\": ");
    json_string(f, in->image);
    fprintf(f, ",\n  \"brain_mask\": ");
    json_string(f, in->mask && in->mask[0] ? in->mask : "");
    fprintf(f, ",\n  \"checkpoint\": ");
    json_string(f, o->checkpoint ? o->checkpoint : "");
    fprintf(f, ",\n  \"config\": %s,\n  \"parameters\": %zu,\n  \"parameters_total\": %zu,\n", cfg,
            m->table.n_trainable, m->table.n_floats);
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
    fprintf(f, "  \"windows\": %d,\n  \"preset\": ", r->windows);
    json_string(f, o->preset ? o->preset : "");
    const postproc_params *p = &o->post;
    fprintf(f,
            ",\n  \"postproc\": {\"ndim\": %d, \"erode_k\": %d, \"threshold\": %g, \"connectivity\": %d, "
            "\"keep_top\": %d, \"dilate_k\": %d, \"rank_on\": \"%s\", \"seg_classes\": %d, \"mrf_beta\": %g, "
            "\"mrf_radius\": %d, \"seg_iterations\": %d, \"match\": \"%s\", \"keep_unmatched\": %d, \"grow\": %d},\n",
            p->ndim, p->erode_k, p->threshold, p->connectivity, p->keep_top, p->dilate_k,
            p->rank_on == POSTPROC_RANK_ERODED ? "eroded" : "map", p->seg_classes, p->mrf_beta, p->mrf_radius,
            p->seg_iterations, p->match == POSTPROC_MATCH_IOU ? "iou" : "area", p->keep_unmatched, p->grow);
    fprintf(f, "  \"lesion_voxels\": %lld,\n  \"lesion_volume_ml\": %.6g,\n  \"components\": %d,\n",
            (long long)r->lesion_voxels, r->lesion_ml, r->components);
    fprintf(f, "  \"slices_with_findings\": [");
    for (int i = 0; i < r->slices_with_findings; i++) fprintf(f, "%s%d", i ? ", " : "", finding_z[i]);
    fprintf(f, "],\n");
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

int detect_subject(detect_result *r, swinmae *m, const detect_input *in, const char *out_dir, const detect_options *o) {
    memset(r, 0, sizeof *r);
    double t0 = now_seconds();
    const swinmae_config *c = &m->cfg;
    const char *ckpt = o->checkpoint && o->checkpoint[0] ? o->checkpoint : "checkpoint";
    if (amap_check_model(c, c->img_size, o->amap.window, ckpt)) return -1;
    if (postproc_validate(&o->post)) return -1;
    slice_options so = o->slices;
    so.size = c->img_size;
    slice_stack s;
    if (slices_load(&s, in->image, in->mask && in->mask[0] ? in->mask : NULL, &so)) return -1;
    int S = s.size, n = s.n, C = c->in_chans;
    size_t hw = (size_t)S * S, nv = (size_t)n * hw;
    float *maps = as_calloc(nv, sizeof(float)), *recon = as_malloc(sizeof(float) * nv);
    uint8_t *mask = as_calloc(nv, 1), *gt = NULL;
    int *finding_z = as_calloc((size_t)n + 1, sizeof(int));
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

    // 1. coarse anomaly maps, one slice at a time (its windows are the batch)
    amap_params ap = o->amap;
    amap_params_for_model(&ap, m);
    progress pr;
    char label[300];
    snprintf(label, sizeof label, "detect %s", in->id);
    if (o->verbose) progress_begin(&pr, label, n);
    double tm0 = now_seconds();
    for (int i = 0; i < n; i++) {
        const float *img = s.img + i * hw;
        memcpy(recon + i * hw, img, sizeof(float) * hw);
        amap_model_ctx ctx = {.model = m, .composite = recon + i * hw};
        int nw = amap_slice(maps + i * hw, img, s.brain + i * hw, S, S, C, &ap, amap_model_swinmae, &ctx);
        if (nw < 0) goto done;
        r->windows += nw;
        if (o->verbose) {
            char extra[64];
            snprintf(extra, sizeof extra, "z=%d, %d windows", s.z[i], nw);
            progress_update(&pr, i + 1, "slices", extra);
        }
    }
    if (o->verbose) progress_end(&pr);
    r->map_seconds = now_seconds() - tm0;
    r->slices = n;

    // 2. post-processing on the model grid (x = w fastest, y = h, z = slice)
    double tp0 = now_seconds();
    if (postprocess(mask, NULL, maps, s.img, s.brain, S, S, n, &o->post)) goto done;
    r->post_seconds = now_seconds() - tp0;

    // 3. native grid
    if (o->save_model_grid) {
        char path[4300];
        fs_join(path, sizeof path, out_dir, "model_grid_map.f32");
        if (fs_write_all(path, maps, sizeof(float) * nv)) goto done;
    }
    if (write_native(out_dir, "anomaly_map.nii.gz", &s, maps, 0, NIFTI_TYPE_FLOAT32, NULL)) goto done;
    float *scaled = as_malloc(sizeof(float) * nv), span = s.hi - s.lo;
    for (size_t i = 0; i < nv; i++) scaled[i] = s.lo + recon[i] * span;  // back to input intensities
    int e = write_native(out_dir, "reconstruction.nii.gz", &s, scaled, 0, NIFTI_TYPE_FLOAT32, NULL);
    for (size_t i = 0; i < nv; i++) scaled[i] = mask[i];
    volume vm = {0};
    if (!e) e = write_native(out_dir, "mask.nii.gz", &s, scaled, 1, NIFTI_TYPE_UINT8, &vm);
    free(scaled);
    if (e) goto done;
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
    char path[4300];
    fs_join(path, sizeof path, out_dir, "summary.json");
    rc = write_summary(path, r, in, m, &s, o, finding_z);
done:
    free(maps), free(recon), free(mask), free(gt), free(finding_z);
    slices_free(&s);
    return rc;
}
