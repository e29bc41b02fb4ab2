#include "prep/prep.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "data/dataset.h"   // dataset_open, volume_check_same_grid
#include "data/reorient.h"  // volume_to_ras
#include "data/resample.h"  // volume_sample_linear
#include "io/png.h"         // rgb_image_*, image_axial_slice, pngfile_write_rgb
#include "prep/mask.h"      // mask_refine
#include "prep/n4.h"        // n4_correct
#include "prep/template.h"  // prep_template_load
#include "util/affine.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/timer.h"

void prep_options_default(prep_options *o) {
    memset(o, 0, sizeof *o);
    o->modality = "t1";
    o->n4 = 1;
    o->min_mi = 0.3;
    reg_options_default(&o->reg);
}

// A transform is refused when the metric ends below o->min_mi (registered heads end at 1.1-1.5,
// a T1 with its contrast inverted at 1.27; pure noise at 0.01, a uniform ellipsoid at 0.18), when
// a scale leaves [PREP_MIN_SCALE, PREP_MAX_SCALE] or the largest
// over the smallest exceeds PREP_MAX_ANISO (heads differ by ~20 % in size, not by half), when
// the metric ended below where it started, or when less than PREP_MIN_FOV of the template's
// brain lands inside the scan.
#define PREP_MIN_SCALE 0.67
#define PREP_MAX_SCALE 1.5
#define PREP_MAX_ANISO 1.4
#define PREP_MIN_FOV 0.9

typedef struct prep_input {
    char id[256], split[256];
    char image[4096], label[4096];  // label "" when none
} prep_input;

typedef struct prep_result {
    int ok;
    char error[1024];
    reg_result reg;
    double brain_ml, fov_fraction;
    double t_read, t_n4, t_register, t_strip, t_write, t_total;
    char dir[4096];
} prep_result;

// ---- inputs -----------------------------------------------------------------------------------

static int has_suffix_ci(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcasecmp(s + a - b, suf);
}

static void file_input(prep_input *in, const char *path, const char *modality) {
    memset(in, 0, sizeof *in);
    snprintf(in->image, sizeof in->image, "%s", path);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(in->id, sizeof in->id, "%s", base);
    if (has_suffix_ci(in->id, ".nii.gz")) in->id[strlen(in->id) - 7] = 0;
    else if (has_suffix_ci(in->id, ".nii")) in->id[strlen(in->id) - 4] = 0;
    char suf[32];
    snprintf(suf, sizeof suf, "_%s", modality);
    if (has_suffix_ci(in->id, suf) && strlen(in->id) > strlen(suf)) in->id[strlen(in->id) - strlen(suf)] = 0;
    int nd = (int)(base - path);
    if (nd + strlen(in->id) + 16 < sizeof in->label) {
        snprintf(in->label, sizeof in->label, "%.*s%s_seg.nii.gz", nd, path, in->id);
        if (!fs_exists(in->label)) in->label[0] = 0;
    }
}

static int collect_inputs(prep_input **out, int *n, const prep_options *o, char *const *inputs, int ninputs) {
    prep_input *v = NULL;
    int cnt = 0;
    for (int i = 0; i < ninputs; i++) {
        if (fs_is_dir(inputs[i])) {
            dataset d;
            if (dataset_open(&d, inputs[i], o->modality) != 0) {
                free(v);
                return -1;
            }
            v = as_realloc(v, (size_t)(cnt + d.n) * sizeof *v);
            for (int s = 0; s < d.n; s++) {
                prep_input *p = &v[cnt++];
                memset(p, 0, sizeof *p);
                snprintf(p->id, sizeof p->id, "%s", d.subjects[s].id);
                snprintf(p->split, sizeof p->split, "%s", d.subjects[s].split);
                snprintf(p->image, sizeof p->image, "%s", d.subjects[s].image);
                snprintf(p->label, sizeof p->label, "%s", d.subjects[s].label);
            }
            dataset_free(&d);
        } else {
            v = as_realloc(v, (size_t)(cnt + 1) * sizeof *v);
            file_input(&v[cnt++], inputs[i], o->modality);
        }
    }
    for (int a = 0; a < cnt; a++)
        for (int b = a + 1; b < cnt; b++)
            if (!strcmp(v[a].id, v[b].id) && !strcmp(v[a].split, v[b].split)) {
                int rc = as_fail("%s: subject id '%s' also comes from %s (ids must differ)", v[b].image, v[b].id, v[a].image);
                free(v);
                return rc;
            }
    *out = v;
    *n = cnt;
    return 0;
}

// ---- resampling -------------------------------------------------------------------------------

// out (on grid `g`) = src at the points matrix * world(g voxel); nearest for labels. inside
// (may be NULL) gets 1 where the point falls inside src's grid.
static void resample(float *out, uint8_t *inside, const volume *g, const volume *src, const double matrix[4][4],
                     int nearest) {
    double inv[4][4], V[4][4];
    affine_invert(inv, src->affine);  // checked when src was read
    affine_mul(V, matrix, g->affine);
    affine_mul(V, inv, V);
#pragma omp parallel for schedule(static)
    for (int k = 0; k < g->nz; k++)
        for (int j = 0; j < g->ny; j++)
            for (int i = 0; i < g->nx; i++) {
                double p[3] = {i, j, k}, q[3];
                affine_apply(q, V, p);
                size_t id = (size_t)i + (size_t)g->nx * ((size_t)j + (size_t)g->ny * k);
                int in = q[0] >= -0.5 && q[1] >= -0.5 && q[2] >= -0.5 && q[0] <= src->nx - 0.5 && q[1] <= src->ny - 0.5 &&
                         q[2] <= src->nz - 0.5;
                if (inside) inside[id] = (uint8_t)in;
                if (nearest) {
                    long a = lround(q[0]), b = lround(q[1]), c = lround(q[2]);
                    out[id] = in && a < src->nx && b < src->ny && c < src->nz
                                  ? src->data[(size_t)a + (size_t)src->nx * ((size_t)b + (size_t)src->ny * c)]
                                  : 0.0f;
                } else {
                    out[id] = volume_sample_linear(src, q);
                }
            }
}

// ---- QC picture -------------------------------------------------------------------------------

static int write_qc(const char *path, const volume *reg, const uint8_t *brain) {
    int nx = reg->nx, ny = reg->ny, nz = reg->nz;
    size_t nv = volume_voxels(reg), hw = (size_t)nx * ny;
    float lo, hi;
    image_window_percentile(&lo, &hi, reg->data, brain, nv, 1, 99.5);
    int zlo = nz, zhi = -1;
    for (int k = 0; k < nz; k++)
        for (size_t q = 0; q < hw; q++)
            if (brain[hw * k + q]) {
                if (k < zlo) zlo = k;
                if (k > zhi) zhi = k;
                break;
            }
    if (zhi < 0) zlo = zhi = nz / 2;
    float *sl = as_malloc(hw * sizeof(float)), *mf = as_malloc(nv * sizeof(float)), *ms = as_malloc(hw * sizeof(float));
    unsigned char *mu = as_malloc(hw);
    for (size_t i = 0; i < nv; i++) mf[i] = brain[i];
    rgb_image tiles[3];
    static const unsigned char red[3] = {255, 40, 40};
    for (int t = 0; t < 3; t++) {
        int k = zlo + (zhi - zlo) * (t + 1) / 4;
        image_axial_slice(sl, reg->data, nx, ny, k);
        image_axial_slice(ms, mf, nx, ny, k);
        for (size_t i = 0; i < hw; i++) mu[i] = ms[i] > 0.5f;
        rgb_image_from_grey(&tiles[t], sl, nx, ny, lo, hi);
        rgb_image_overlay_mask(&tiles[t], mu, red, 1.0f, 1);
    }
    rgb_image panel;
    rgb_image_panel(&panel, tiles, 3, 4);
    int rc = pngfile_write_rgb(path, &panel);
    rgb_image_free(&panel);
    for (int t = 0; t < 3; t++) rgb_image_free(&tiles[t]);
    free(sl), free(mf), free(ms), free(mu);
    return rc;
}

// ---- reports ----------------------------------------------------------------------------------

static void json_numbers(FILE *f, const double *v, int n) {
    fputc('[', f);
    for (int i = 0; i < n; i++) {
        if (i) fputs(", ", f);
        json_write_number(f, v[i]);
    }
    fputc(']', f);
}

static void write_subject(FILE *f, const prep_input *in, const prep_result *r, const prep_options *o, const char *ind) {
    fprintf(f, "{\n%s  \"subject\": ", ind);
    json_write_string(f, in->id);
    fprintf(f, ",\n%s  \"split\": ", ind);
    json_write_string(f, in->split);
    fprintf(f, ",\n%s  \"input\": ", ind);
    json_write_string(f, in->image);
    fprintf(f, ",\n%s  \"label\": ", ind);
    json_write_string(f, in->label);
    fprintf(f, ",\n%s  \"status\": \"%s\",\n%s  \"error\": ", ind, r->ok ? "ok" : "failed", ind);
    json_write_string(f, r->error);
    fprintf(f, ",\n%s  \"output\": ", ind);
    json_write_string(f, r->ok ? r->dir : "");
    fprintf(f, ",\n%s  \"n4\": %s", ind, o->n4 ? "true" : "false");
    if (r->reg.iterations > 0) {
        double m[16];
        for (int i = 0; i < 16; i++) m[i] = r->reg.matrix[i / 4][i % 4];
        fprintf(f, ",\n%s  \"template_to_subject\": ", ind);
        json_numbers(f, m, 16);
        fprintf(f, ",\n%s  \"mattes_mi_initial\": ", ind);
        json_write_number(f, r->reg.mi_initial);
        fprintf(f, ",\n%s  \"mattes_mi_final\": ", ind);
        json_write_number(f, r->reg.mi_final);
        fprintf(f, ",\n%s  \"scales\": ", ind);
        json_numbers(f, r->reg.sv, 3);
        fprintf(f, ",\n%s  \"iterations\": %d,\n%s  \"samples_inside\": ", ind, r->reg.iterations, ind);
        json_write_number(f, r->reg.valid_fraction);
    }
    if (r->ok) {
        fprintf(f, ",\n%s  \"brain_volume_ml\": ", ind);
        json_write_number(f, r->brain_ml);
        fprintf(f, ",\n%s  \"brain_volume_ml_native\": ", ind);
        json_write_number(f, r->brain_ml * fabs(affine_det3(r->reg.matrix)));
        fprintf(f, ",\n%s  \"brain_in_field_of_view\": ", ind);
        json_write_number(f, r->fov_fraction);
    }
    double t[6] = {r->t_read, r->t_n4, r->t_register, r->t_strip, r->t_write, r->t_total};
    fprintf(f, ",\n%s  \"seconds\": {\"read\": %.3f, \"n4\": %.3f, \"register\": %.3f, \"strip_resample\": %.3f, "
               "\"write\": %.3f, \"total\": %.3f}\n%s}",
            ind, t[0], t[1], t[2], t[3], t[4], t[5], ind);
}

static int write_subject_json(const char *path, const prep_input *in, const prep_result *r, const prep_options *o) {
    fs_file af;
    if (fs_file_open(&af, path) != 0) return -1;
    write_subject(af.f, in, r, o, "");
    fputc('\n', af.f);
    if (ferror(af.f)) {
        fs_file_abort(&af);
        return as_fail("%s: write failed", path);
    }
    return fs_file_commit(&af);
}

int prep_check_registration(const reg_result *g, double min_mi, char *why, size_t n) {
    if (!(g->mi_final > g->mi_initial))
        snprintf(why, n, "diverged (Mattes MI %.4f at the start, %.4f at the end)", g->mi_initial, g->mi_final);
    else if (!(g->mi_final >= min_mi))
        snprintf(why, n, "found too little of the template in the scan (Mattes MI %.3f at the end, below %.2f: "
                 "not a head scan?)", g->mi_final, min_mi);
    else if (!(g->sv[2] >= PREP_MIN_SCALE && g->sv[0] <= PREP_MAX_SCALE && g->sv[0] <= PREP_MAX_ANISO * g->sv[2]))
        snprintf(why, n, "implausible transform (scales %.3f, %.3f, %.3f)", g->sv[0], g->sv[1], g->sv[2]);
    else return 0;
    return -1;
}

// ---- one subject ------------------------------------------------------------------------------

static int subject_fail(prep_result *r, const char *msg) {
    snprintf(r->error, sizeof r->error, "%.1000s", msg);
    r->ok = 0;
    return -1;
}

// N4's second pass, as ANTs-based pipelines run it (brain mask first, then N4 inside the brain):
// on the scan as read (orig), inside the template's brain carried onto the scan's grid through
// the registration (nearest). Fitted to the head's foreground, the field also bends to the
// scalp's fat, the muscles and the skull; inside the brain it follows the brain's bias alone
// (measured in docs/prep.md). ras gets orig / field; field (may be NULL) the field itself.
static int n4_brain(prep_result *r, const prep_input *in, const prep_template *tpl, volume *ras, const float *orig,
                    float *field) {
    double t = now_seconds(), inv[4][4], V[4][4];
    size_t nr = volume_voxels(ras);
    const volume *h = &tpl->head;
    affine_invert(inv, r->reg.matrix);  // its scales were checked
    affine_mul(V, inv, ras->affine);
    affine_invert(inv, h->affine);
    affine_mul(V, inv, V);
    uint8_t *brain = as_malloc(nr);
    size_t nb = 0;
#pragma omp parallel for schedule(static) reduction(+ : nb)
    for (int k = 0; k < ras->nz; k++)
        for (int j = 0; j < ras->ny; j++)
            for (int i = 0; i < ras->nx; i++) {
                double p[3] = {i, j, k}, q[3];
                affine_apply(q, V, p);
                long a = lround(q[0]), b = lround(q[1]), c = lround(q[2]);
                size_t id = (size_t)i + (size_t)ras->nx * ((size_t)j + (size_t)ras->ny * k);
                brain[id] = a >= 0 && b >= 0 && c >= 0 && a < h->nx && b < h->ny && c < h->nz &&
                            tpl->brain[(size_t)a + (size_t)h->nx * ((size_t)b + (size_t)h->ny * c)];
                nb += brain[id];
            }
    int rc = nb ? n4_correct(orig, brain, ras->nx, ras->ny, ras->nz, ras->pixdim, NULL, ras->data, field) : -1;
    free(brain);
    if (rc != 0) {
        char msg[8192];
        if (nb) snprintf(msg, sizeof msg, "%s: bias correction in the brain failed: %s", in->image, as_error());
        else snprintf(msg, sizeof msg, "%s: the template's brain falls outside the scan", in->image);
        return subject_fail(r, msg);
    }
    if (field)
        for (size_t i = 0; i < nr; i++) field[i] = expf(field[i]);
    r->t_n4 += now_seconds() - t;
    return 0;
}

static int prep_subject(prep_result *r, const prep_input *in, const prep_template *tpl, const prep_options *o) {
    memset(r, 0, sizeof *r);
    double t0 = now_seconds(), t;
    volume raw, ras, lab_raw, lab;
    memset(&lab, 0, sizeof lab);
    if (volume_read(&raw, in->image) != 0) return subject_fail(r, as_error());
    size_t nv = volume_voxels(&raw), pos = 0;
    for (size_t i = 0; i < nv; i++) pos += raw.data[i] > 0;
    if (pos < 1000) {
        volume_free(&raw);
        char msg[8192];
        snprintf(msg, sizeof msg, "%s: empty image (%zu voxels above 0; a head scan has millions)", in->image, pos);
        return subject_fail(r, msg);
    }
    if (in->label[0]) {
        if (volume_read(&lab_raw, in->label) != 0) {
            volume_free(&raw);
            return subject_fail(r, as_error());
        }
        if (volume_check_same_grid(&raw, in->image, &lab_raw, in->label) != 0) {
            volume_free(&raw), volume_free(&lab_raw);
            return subject_fail(r, as_error());
        }
        volume_to_ras(&lab, &lab_raw, NULL);
        volume_free(&lab_raw);
    }
    volume_to_ras(&ras, &raw, NULL);
    volume_free(&raw);
    r->t_read = now_seconds() - t0;

    // N4 bias-field correction (src/prep/n4.h), first on the head's Otsu foreground, so that
    // the registration sees a flatter head; after it, again inside the brain (below).
    t = now_seconds();
    size_t nr = volume_voxels(&ras);
    float *orig = o->n4 ? as_malloc(nr * sizeof(float)) : NULL;
    if (orig) memcpy(orig, ras.data, nr * sizeof(float));
    if (o->n4 && n4_correct(ras.data, NULL, ras.nx, ras.ny, ras.nz, ras.pixdim, NULL, ras.data, NULL) != 0) {
        char msg[8192];
        snprintf(msg, sizeof msg, "%s: bias correction failed: %s", in->image, as_error());
        free(orig), volume_free(&ras), volume_free(&lab);
        return subject_fail(r, msg);
    }
    r->t_n4 = now_seconds() - t;
    t = now_seconds();

    int rc = reg_affine(&r->reg, &tpl->head, tpl->brain, &ras, &o->reg);
    r->t_register = now_seconds() - t;
    if (rc != 0) {
        char msg[8192];
        snprintf(msg, sizeof msg, "%s: registration failed: %s", in->image, as_error());
        free(orig), volume_free(&ras), volume_free(&lab);
        return subject_fail(r, msg);
    }
    char why[512];
    const reg_result *g = &r->reg;
    if (prep_check_registration(g, o->min_mi, why, sizeof why) != 0) {
        char msg[8192];
        snprintf(msg, sizeof msg, "%s: registration %s", in->image, why);
        free(orig), volume_free(&ras), volume_free(&lab);
        return subject_fail(r, msg);
    }
    volume bias;  // the field on the scan's grid, written with --write-bias
    memset(&bias, 0, sizeof bias);
    if (orig && o->write_bias) volume_alloc_like(&bias, &ras);
    if (orig && n4_brain(r, in, tpl, &ras, orig, bias.data) != 0) {
        free(orig), volume_free(&ras), volume_free(&lab), volume_free(&bias);
        return -1;
    }
    free(orig);

    t = now_seconds();
    volume reg, seg;
    volume_alloc_like(&reg, &tpl->head);
    size_t nt = volume_voxels(&tpl->head);
    uint8_t *inside = as_malloc(nt), *mask = as_malloc(nt);
    resample(reg.data, inside, &tpl->head, &ras, g->matrix, 0);
    memset(&seg, 0, sizeof seg);
    if (lab.data) {
        volume_alloc_like(&seg, &tpl->head);
        resample(seg.data, NULL, &tpl->head, &lab, g->matrix, 1);
    }
    volume_free(&ras), volume_free(&lab);
    size_t nb = 0, nbin = 0;
    for (size_t i = 0; i < nt; i++)
        if (tpl->brain[i]) nb++, nbin += inside[i];
    r->fov_fraction = nb ? (double)nbin / nb : 0;
    memcpy(mask, tpl->brain, nt);
    long kept = mask_refine(mask, reg.data, reg.nx, reg.ny, reg.nz, reg.pixdim);
    r->t_strip = now_seconds() - t;
    if (r->fov_fraction < PREP_MIN_FOV || kept == 0) {
        char msg[8192];
        if (kept == 0) snprintf(msg, sizeof msg, "%s: empty brain mask after skull stripping", in->image);
        else
            snprintf(msg, sizeof msg, "%s: the scan's field of view holds only %.0f %% of the template's brain", in->image,
                     100 * r->fov_fraction);
        free(inside), free(mask), volume_free(&reg), volume_free(&seg), volume_free(&bias);
        return subject_fail(r, msg);
    }
    r->brain_ml = kept * (double)reg.pixdim[0] * reg.pixdim[1] * reg.pixdim[2] / 1000;

    // ---- outputs: every file atomic, the scan last -------------------------------------------
    t = now_seconds();
    char path[4400];
    if (in->split[0]) snprintf(r->dir, sizeof r->dir, "%s/%s/%s", o->out, in->split, in->id);
    else snprintf(r->dir, sizeof r->dir, "%s/%s", o->out, in->id);
    rc = fs_mkdirs(r->dir);
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/%s_qc.png", r->dir, in->id);
        rc = write_qc(path, &reg, tpl->brain);
    }
    volume mv;
    volume_alloc_like(&mv, &tpl->head);
    for (size_t i = 0; i < nt; i++) mv.data[i] = mask[i];
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/%s_mask.nii.gz", r->dir, in->id);
        rc = volume_write(&mv, &tpl->head, path, 2);
    }
    if (rc == 0 && seg.data) {
        snprintf(path, sizeof path, "%s/%s_seg.nii.gz", r->dir, in->id);
        rc = volume_write(&seg, &tpl->head, path, 2);
    }
    if (rc == 0 && bias.data) {
        snprintf(path, sizeof path, "%s/%s_bias.nii.gz", r->dir, in->id);
        rc = volume_write(&bias, &bias, path, 16);
    }
    for (size_t i = 0; i < nt; i++)
        if (!mask[i]) reg.data[i] = 0;
    r->ok = 1;
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/%s_prep.json", r->dir, in->id);
        r->t_write = now_seconds() - t;
        r->t_total = now_seconds() - t0;
        rc = write_subject_json(path, in, r, o);
    }
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/%s_%s.nii.gz", r->dir, in->id, o->modality);
        rc = volume_write(&reg, &tpl->head, path, 16);
    }
    r->t_write = now_seconds() - t;
    r->t_total = now_seconds() - t0;
    free(inside), free(mask), volume_free(&reg), volume_free(&seg), volume_free(&mv), volume_free(&bias);
    if (rc != 0) {
        r->ok = 0;
        return subject_fail(r, as_error());
    }
    return 0;
}

// ---- the run ----------------------------------------------------------------------------------

int prep_run(const prep_options *o, char *const *inputs, int ninputs) {
    if (!o->out || !o->out[0]) return as_fail("prep: no output folder");
    if (ninputs < 1) return as_fail("prep: no input");
    prep_input *in = NULL;
    int n = 0;
    if (collect_inputs(&in, &n, o, inputs, ninputs) != 0) return -1;
    if (n == 0) {
        free(in);
        return as_fail("%s: no scans found", inputs[0]);
    }
    prep_template tpl;
    if (prep_template_load(&tpl, o->template_path, o->template_mask) != 0) {
        free(in);
        return -1;
    }
    if (fs_mkdirs(o->out) != 0) {
        free(in), prep_template_free(&tpl);
        return -1;
    }
    prep_result *res = as_calloc((size_t)n, sizeof *res);
    int failed = 0;
    progress pr;
    progress_begin(&pr, "prep", n);
    for (int s = 0; s < n; s++) {
        double t0 = now_seconds();
        int rc_s = prep_subject(&res[s], &in[s], &tpl, o);
        if (res[s].t_total == 0) res[s].t_total = now_seconds() - t0;
        if (rc_s != 0) {
            failed++;
            fprintf(stderr, "anoswin: prep: subject %s failed: %s\n", in[s].id, res[s].error);
        }
        char extra[256];
        snprintf(extra, sizeof extra, "%.200s %s %.1f s", in[s].id, res[s].ok ? "ok" : "FAILED", res[s].t_total);
        progress_update(&pr, s + 1, "scans", extra);
    }
    progress_end(&pr);
    char path[4200];
    snprintf(path, sizeof path, "%s/prep.json", o->out);
    fs_file af;
    int rc = fs_file_open(&af, path);
    if (rc == 0) {
        FILE *f = af.f;
        fprintf(f, "{\n  \"template\": ");
        json_write_string(f, tpl.head_path);
        fprintf(f, ",\n  \"template_mask\": ");
        json_write_string(f, tpl.mask_path);
        fprintf(f, ",\n  \"grid\": [%d, %d, %d],\n  \"modality\": ", tpl.head.nx, tpl.head.ny, tpl.head.nz);
        json_write_string(f, o->modality);
        fprintf(f, ",\n  \"seed\": \"%llu\",\n  \"subjects_ok\": %d,\n  \"subjects_failed\": %d,\n  \"subjects\": [",
                (unsigned long long)o->reg.seed, n - failed, failed);
        for (int s = 0; s < n; s++) {
            fputs(s ? ",\n    " : "\n    ", f);
            write_subject(f, &in[s], &res[s], o, "    ");
        }
        fprintf(f, "\n  ]\n}\n");
        rc = ferror(f) ? (fs_file_abort(&af), as_fail("%s: write failed", path)) : fs_file_commit(&af);
    }
    free(in), free(res);
    prep_template_free(&tpl);
    if (rc != 0) return -1;
    return failed ? 1 : 0;
}
