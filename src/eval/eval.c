#include "eval/eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"   // volume_check_same_grid
#include "data/reorient.h"  // orientation_from_affine
#include "data/volume.h"    // volume_read, volume_free
#include "util/error.h"   // as_fail, as_malloc
#include "util/fs.h"      // fs_join, fs_exists, fs_read_all
#include "util/json.h"    // json_read_file, json_top_*
#include "util/timer.h"   // progress_*

const double eval_fpr_levels[EVAL_NFPR] = {0.01, 0.05, 0.10};

void eval_options_default(eval_options *o) {
    o->slice_lo = o->slice_hi = -1;
    o->bootstrap_reps = 1000;
    o->seed = 0;
    o->verbose = 0;
}

// ---- summary.json and geometry --------------------------------------------------------------------

int eval_read_summary(const char *path, int *slice_lo, int *slice_hi, double *sec_per_slice, int64_t *params,
                      int *grow, int *calibrated, double *cal_fpr) {
    if (!fs_exists(path)) return 0;
    char *text = json_read_file(path);
    if (!text) return -1;
    double range[3], v;
    if (json_top_value(text, "slice_range")) {
        if (json_top_numbers(text, "slice_range", range, 3) == 2 && range[0] >= 0 && range[1] >= range[0] &&
            range[1] < 1e9 && range[0] == (int)range[0] && range[1] == (int)range[1])
            *slice_lo = (int)range[0], *slice_hi = (int)range[1];
        else {
            free(text);
            return as_fail("%s: \"slice_range\" is not [lo, hi]", path);
        }
    }
    if (!json_top_number(text, "seconds_per_slice", &v) && isfinite(v) && v >= 0) *sec_per_slice = v;
    if (!json_top_number(text, "parameters", &v) && v >= 0 && v < 9e18) *params = (int64_t)v;
    // The post-processing and the calibration are nested objects of the summary.
    const char *post = json_top_value(text, "postproc"), *cal = json_top_value(text, "calibration");
    if (!json_top_number(post, "grow", &v) && v >= 0 && v < 1000) *grow = (int)v;
    char mode[32];
    if (!json_top_string(post, "mode", mode, sizeof mode)) *calibrated = !strcmp(mode, "calibrated");
    if (!json_top_number(cal, "fpr", &v) && v > 0 && v < 1) *cal_fpr = v;
    free(text);
    return 0;
}

void eval_ras_axes(const double affine[4][4], int world_of_axis[3], int flip[3]) {
    orientation o;  // nibabel's io_orientation, shared with the slice pipeline detect uses
    orientation_from_affine(&o, affine);
    for (int a = 0; a < 3; a++) world_of_axis[a] = o.axis[a], flip[a] = o.flip[a];
}

int eval_axial_axis(const double affine[4][4], int *flip) {
    int w[3], f[3];
    eval_ras_axes(affine, w, f);
    for (int a = 0; a < 3; a++)
        if (w[a] == 2) {
            *flip = f[a];
            return a;
        }
    *flip = 0;
    return 2;
}

// ---- one subject ----------------------------------------------------------------------------------

typedef struct slice_stats {  // per-slice values collected over all test subjects
    double *dice, *auprc, *auroc;
    int n, cap;
} slice_stats;

static void slice_stats_push(slice_stats *s, double dice, double auprc, double auroc) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->dice = as_realloc(s->dice, (size_t)s->cap * sizeof *s->dice);
        s->auprc = as_realloc(s->auprc, (size_t)s->cap * sizeof *s->auprc);
        s->auroc = as_realloc(s->auroc, (size_t)s->cap * sizeof *s->auroc);
    }
    s->auroc[s->n] = auroc;
    s->dice[s->n] = dice;
    s->auprc[s->n] = auprc;
    s->n++;
}

static int read_optional_volume(volume *v, const char *path) {
    memset(v, 0, sizeof *v);
    if (!path || !*path) return 0;
    return volume_read(v, path);
}

// Loads one subject, builds its evaluation mask and score table; for test subjects also the
// paper-mask metrics, lesion counts, per-slice values and (when known) the val-threshold counts.
static int eval_subject_load(eval_subject *es, const eval_input *in, const eval_options *opt, double val_thr,
                             slice_stats *ss) {
    memset(es, 0, sizeof *es);
    snprintf(es->id, sizeof es->id, "%s", in->id);
    es->role = in->role;
    es->seconds_per_slice = NAN;
    es->cal_fpr = NAN;
    es->parameters = -1;
    es->pred_voxels = -1;
    es->auprc = es->auroc = NAN;
    char map_path[4096], mask_path[4096], summary_path[4096];
    fs_join(map_path, sizeof map_path, in->pred_dir, "anomaly_map.nii.gz");
    fs_join(mask_path, sizeof mask_path, in->pred_dir, "mask.nii.gz");
    fs_join(summary_path, sizeof summary_path, in->pred_dir, "summary.json");
    int lo = -1, hi = -1;
    if (eval_read_summary(summary_path, &lo, &hi, &es->seconds_per_slice, &es->parameters, &es->grow, &es->calibrated,
                          &es->cal_fpr) != 0)
        return -1;
    if (opt->slice_lo >= 0) lo = opt->slice_lo, hi = opt->slice_hi;
    if (in->role != EVAL_HEALTHY && (!in->label || !*in->label))
        return as_fail("%s: no ground-truth label for a %s subject", in->id, in->role == EVAL_VAL ? "validation" : "test");

    volume img = {0}, map = {0}, pred = {0}, lab = {0}, brain = {0};
    int rc = -1;
    uint8_t *emask = NULL, *gt = NULL, *pm = NULL;
    if (volume_read(&map, map_path) != 0) goto done;
    if (volume_read(&img, in->image) != 0 || volume_check_same_grid(&img, in->image, &map, map_path) != 0) goto done;
    if (read_optional_volume(&brain, in->mask) != 0) goto done;
    if (brain.data && volume_check_same_grid(&img, in->image, &brain, in->mask) != 0) goto done;
    if (read_optional_volume(&lab, in->role == EVAL_HEALTHY ? NULL : in->label) != 0) goto done;
    if (lab.data && volume_check_same_grid(&img, in->image, &lab, in->label) != 0) goto done;
    // Healthy scans need only the map to set the FPR thresholds; their mask, when detect wrote one,
    // gives the false-positive volume a healthy scan gets in practice.
    int has_pred = in->role == EVAL_TEST || (in->role == EVAL_HEALTHY && fs_exists(mask_path));
    if (has_pred) {
        if (volume_read(&pred, mask_path) != 0 || volume_check_same_grid(&img, in->image, &pred, mask_path) != 0) goto done;
    }
    int n3[3] = {img.nx, img.ny, img.nz};
    es->nx = img.nx, es->ny = img.ny, es->nz = img.nz;
    es->voxel_ml = (double)img.pixdim[0] * img.pixdim[1] * img.pixdim[2] / 1000;
    int flip, axis = eval_axial_axis(img.affine, &flip);
    int nk = n3[axis];
    if (lo < 0) lo = 0, hi = nk - 1;
    if (hi > nk - 1) hi = nk - 1;
    if (lo > hi) {
        as_fail("%s: evaluated slices %d..%d lie outside the volume's %d axial slices", in->id, lo, hi, nk);
        goto done;
    }
    es->slice_lo = lo, es->slice_hi = hi;
    size_t n = volume_voxels(&img);
    emask = as_malloc(n);
    gt = as_malloc(n);
    int *kras = as_malloc(n * sizeof *kras);
    for (int k = 0; k < img.nz; k++)
        for (int j = 0; j < img.ny; j++)
            for (int i = 0; i < img.nx; i++) {
                size_t v = (size_t)i + (size_t)img.nx * ((size_t)j + (size_t)img.ny * k);
                int idx[3] = {i, j, k};
                int kr = flip ? nk - 1 - idx[axis] : idx[axis];
                kras[v] = kr;
                int in_brain = brain.data ? brain.data[v] > 0 : img.data[v] > 0;
                emask[v] = in_brain && kr >= lo && kr <= hi;
                gt[v] = lab.data ? lab.data[v] > 0 : 0;
                if (emask[v]) es->voxels++, es->gt_voxels += gt[v];
            }
    if (score_table_build(&es->table, map.data, gt, emask, n) != 0) {
        as_fail("%s: %s", map_path, as_error());
        free(kras);
        goto done;
    }
    if (has_pred) {  // on a healthy scan every predicted voxel is a false positive
        pm = as_malloc(n);
        for (size_t v = 0; v < n; v++) pm[v] = pred.data[v] > 0;
        confusion_count(&es->paper, pm, gt, emask, n);
        es->pred_voxels = es->paper.tp + es->paper.fp;
    }
    if (in->role == EVAL_TEST) {
        lesion_counts_compute(&es->paper_lesions, pm, gt, emask, img.nx, img.ny, img.nz);
        es->auprc = score_table_auprc(&es->table);
        es->auroc = score_table_auroc(&es->table);
        if (!isnan(val_thr)) {
            for (size_t v = 0; v < n; v++) pm[v] = map.data[v] >= (float)val_thr;
            confusion_count(&es->at_val, pm, gt, emask, n);
            lesion_counts_compute(&es->val_lesions, pm, gt, emask, img.nx, img.ny, img.nz);
            for (size_t v = 0; v < n; v++) pm[v] = pred.data[v] > 0;
        }
        // Per slice (slices with ground truth): Dice of the paper mask and AUPRC of the map.
        int ns = hi - lo + 1;
        int64_t *start = as_calloc((size_t)ns + 1, sizeof *start);
        for (size_t v = 0; v < n; v++)
            if (emask[v]) start[kras[v] - lo + 1]++;
        for (int s = 0; s < ns; s++) start[s + 1] += start[s];
        size_t m = (size_t)start[ns];
        float *sc = as_malloc(m * sizeof *sc + 1);
        uint8_t *sg = as_malloc(m + 1), *sp = as_malloc(m + 1);
        int64_t *fill = as_malloc((size_t)ns * sizeof *fill);
        memcpy(fill, start, (size_t)ns * sizeof *fill);
        for (size_t v = 0; v < n; v++)
            if (emask[v]) {
                int64_t d = fill[kras[v] - lo]++;
                sc[d] = map.data[v], sg[d] = gt[v], sp[d] = pm[v];
            }
        for (int s = 0; s < ns; s++) {
            size_t a = (size_t)start[s], len = (size_t)(start[s + 1] - start[s]);
            confusion c;
            confusion_count(&c, sp + a, sg + a, NULL, len);
            if (c.tp + c.fn == 0) continue;
            score_table st;
            score_table_build(&st, sc + a, sg + a, NULL, len);
            slice_stats_push(ss, confusion_dice(&c), score_table_auprc(&st), score_table_auroc(&st));
            score_table_free(&st);
        }
        free(start);
        free(fill);
        free(sc);
        free(sg);
        free(sp);
    }
    free(kras);
    rc = 0;
done:
    free(emask);
    free(gt);
    free(pm);
    volume_free(&img);
    volume_free(&map);
    volume_free(&pred);
    volume_free(&lab);
    volume_free(&brain);
    if (rc != 0) score_table_free(&es->table);
    return rc;
}

// ---- rows -----------------------------------------------------------------------------------------

typedef struct pooled_ctx {
    const confusion *c;
    int which;  // 0 dice, 1 precision, 2 recall
} pooled_ctx;

static double pooled_stat(const int *idx, int n, void *ctx) {
    const pooled_ctx *p = ctx;
    confusion sum = {0, 0, 0, 0};
    for (int i = 0; i < n; i++) confusion_add(&sum, &p->c[idx[i]]);
    return p->which == 0 ? confusion_dice(&sum) : p->which == 1 ? confusion_precision(&sum) : confusion_recall(&sum);
}

static eval_row *row_add(eval_result *res, const char *protocol, const char *agg, double thr, const char *note) {
    res->rows = as_realloc(res->rows, (size_t)(res->n_rows + 1) * sizeof *res->rows);
    eval_row *r = &res->rows[res->n_rows++];
    memset(r, 0, sizeof *r);
    snprintf(r->protocol, sizeof r->protocol, "%s", protocol);
    snprintf(r->aggregation, sizeof r->aggregation, "%s", agg);
    r->threshold = thr;
    snprintf(r->note, sizeof r->note, "%s", note ? note : "");
    r->gt_lesions = r->gt_detected = r->pred_components = r->pred_false = -1;
    r->n_slices = -1;
    r->lesion_free = (fp_volume){-1, NAN, NAN, NAN};
    metric_summary_single(&r->dice, NAN);
    r->auprc = r->auroc = r->precision = r->recall = r->dice;
    return r;
}

static void fp_volume_of(fp_volume *f, const double *ml, int n) {
    f->n = n;
    f->total_ml = 0;
    f->max_ml = n ? 0 : NAN;
    for (int i = 0; i < n; i++) f->total_ml += ml[i], f->max_ml = fmax(f->max_ml, ml[i]);
    f->mean_ml = n ? f->total_ml / n : NAN;
}

// mean ± std [bootstrap CI] of x over the subjects with lesion voxels only: on a lesion-free
// subject Dice is 1 or 0 by convention, and averaging it in says nothing about segmentation.
static void lesion_mean(metric_summary *s, const double *x, const eval_result *res, const eval_options *opt) {
    double *y = as_malloc((size_t)res->n_subjects * sizeof *y + 1);
    int m = 0;
    for (int i = 0; i < res->n_subjects; i++)
        if (!eval_lesion_free(&res->subjects[i])) y[m++] = x[i];
    metric_summary_of(s, y, m);
    metric_summary_bootstrap(s, y, m, opt->bootstrap_reps, opt->seed);
    free(y);
}

// Per-volume and pooled rows for one protocol from per-subject confusions c[0..n): Dice,
// precision and recall averaged over the subjects with lesions, pooled over all, and the
// false-positive volume in the lesion-free ones.
static void rows_for_protocol(eval_result *res, const char *protocol, double thr, const confusion *c,
                              const lesion_counts *lc, const metric_summary vol_ranking[2],
                              const metric_summary pooled_ranking[2], const eval_options *opt, const char *note) {
    int n = res->n_subjects, nfree = 0;
    double *d = as_malloc((size_t)n * sizeof *d), *p = as_malloc((size_t)n * sizeof *p), *q = as_malloc((size_t)n * sizeof *q);
    double *fp = as_malloc((size_t)n * sizeof *fp);
    for (int i = 0; i < n; i++) {
        d[i] = confusion_dice(&c[i]), p[i] = confusion_precision(&c[i]), q[i] = confusion_recall(&c[i]);
        if (eval_lesion_free(&res->subjects[i])) fp[nfree++] = eval_fp_ml(&res->subjects[i], &c[i]);
    }
    fp_volume lesion_free;
    fp_volume_of(&lesion_free, fp, nfree);
    eval_row *r = row_add(res, protocol, "per-volume", thr, note);
    r->n_subjects = res->n_lesion;
    r->lesion_free = lesion_free;
    lesion_mean(&r->dice, d, res, opt);
    lesion_mean(&r->precision, p, res, opt);
    lesion_mean(&r->recall, q, res, opt);
    r->auprc = vol_ranking[0];
    r->auroc = vol_ranking[1];
    if (lc) {
        lesion_counts sum = {0, 0, 0, 0};
        for (int i = 0; i < n; i++) lesion_counts_add(&sum, &lc[i]);
        r->gt_lesions = sum.gt_lesions, r->gt_detected = sum.gt_detected;
        r->pred_components = sum.pred_components, r->pred_false = sum.pred_false;
    }
    int64_t gl = r->gt_lesions, gd = r->gt_detected, pc = r->pred_components, pf = r->pred_false;

    r = row_add(res, protocol, "pooled", thr, note);
    r->n_subjects = n;
    r->lesion_free = lesion_free;
    confusion sum = {0, 0, 0, 0};
    for (int i = 0; i < n; i++) confusion_add(&sum, &c[i]);
    metric_summary_single(&r->dice, confusion_dice(&sum));
    metric_summary_single(&r->precision, confusion_precision(&sum));
    metric_summary_single(&r->recall, confusion_recall(&sum));
    pooled_ctx pc0 = {c, 0}, pc1 = {c, 1}, pc2 = {c, 2};
    bootstrap_ci(&r->dice.ci_lo, &r->dice.ci_hi, pooled_stat, &pc0, n, opt->bootstrap_reps, opt->seed, 0.95);
    bootstrap_ci(&r->precision.ci_lo, &r->precision.ci_hi, pooled_stat, &pc1, n, opt->bootstrap_reps, opt->seed, 0.95);
    bootstrap_ci(&r->recall.ci_lo, &r->recall.ci_hi, pooled_stat, &pc2, n, opt->bootstrap_reps, opt->seed, 0.95);
    r->auprc = pooled_ranking[0];
    r->auroc = pooled_ranking[1];
    r->gt_lesions = gl, r->gt_detected = gd, r->pred_components = pc, r->pred_false = pf;
    free(d);
    free(p);
    free(q);
    free(fp);
}

// ---- the run --------------------------------------------------------------------------------------

static int load_role(eval_subject **out, int *count, const eval_input *inputs, int n, int role,
                     const eval_options *opt, double val_thr, slice_stats *ss) {
    int m = 0;
    for (int i = 0; i < n; i++) m += inputs[i].role == role;
    *out = as_calloc((size_t)m + 1, sizeof **out);
    *count = 0;
    static const char *names[3] = {"eval test", "eval val", "eval healthy"};
    progress pr;
    if (opt->verbose && m) progress_begin(&pr, names[role], m);
    for (int i = 0; i < n; i++) {
        if (inputs[i].role != role) continue;
        if (eval_subject_load(&(*out)[*count], &inputs[i], opt, val_thr, ss) != 0) return -1;
        (*count)++;
        if (opt->verbose) progress_update(&pr, *count, "subjects", (*out)[*count - 1].id);
    }
    if (opt->verbose && m) progress_end(&pr);
    return 0;
}

static void free_subjects(eval_subject *s, int n) {
    if (!s) return;
    for (int i = 0; i < n; i++) score_table_free(&s[i].table);
    free(s);
}

// Pools the tables of subjects s[0..n).
static void pool_tables(score_table *out, const eval_subject *s, int n) {
    const score_table **t = as_malloc((size_t)n * sizeof *t + 1);
    for (int i = 0; i < n; i++) t[i] = &s[i].table;
    score_table_pool(out, t, n);
    free(t);
}

int eval_run(eval_result *res, const eval_input *inputs, int n, const eval_options *opt) {
    memset(res, 0, sizeof *res);
    res->val_threshold = res->oracle_threshold = NAN;
    for (int f = 0; f < EVAL_NFPR; f++) res->fpr_threshold[f] = res->fpr_achieved[f] = NAN;
    res->seconds_per_slice = NAN;
    res->parameters = -1;
    int ntest = 0;
    for (int i = 0; i < n; i++) ntest += inputs[i].role == EVAL_TEST;
    if (ntest == 0) return as_fail("no test subjects to evaluate");

    slice_stats ss = {0};
    eval_subject *val = NULL;
    // 1. Healthy scans: thresholds at fixed false-positive rates, and the false-positive volume
    // of detect's mask on them.
    if (load_role(&res->healthy, &res->n_healthy, inputs, n, EVAL_HEALTHY, opt, NAN, &ss) != 0) goto fail;
    eval_subject *H = res->healthy;
    if (res->n_healthy > 0) {
        score_table pooled;
        pool_tables(&pooled, H, res->n_healthy);
        for (int f = 0; f < EVAL_NFPR; f++)
            res->fpr_threshold[f] = score_table_threshold_at_fpr(&pooled, eval_fpr_levels[f], &res->fpr_achieved[f]);
        score_table_free(&pooled);
    }
    double *hfp = as_malloc((size_t)res->n_healthy * sizeof *hfp + 1);
    int nhfp = 0;
    for (int i = 0; i < res->n_healthy; i++) {
        score_table_free(&H[i].table);  // the thresholds are set: only the counts are kept
        if (H[i].pred_voxels >= 0) hfp[nhfp++] = eval_fp_ml(&H[i], &H[i].paper);
    }
    fp_volume_of(&res->healthy_fp, hfp, nhfp);
    free(hfp);
    // 2. Validation subjects: the best pooled-Dice threshold.
    if (load_role(&val, &res->n_val, inputs, n, EVAL_VAL, opt, NAN, &ss) != 0) goto fail;
    if (res->n_val > 0) {
        score_table pooled;
        pool_tables(&pooled, val, res->n_val);
        float thr;
        score_table_best_dice(&pooled, &thr);
        res->val_threshold = thr;
        score_table_free(&pooled);
    }
    free_subjects(val, res->n_val);
    val = NULL;
    // 3. Test subjects.
    if (load_role(&res->subjects, &res->n_subjects, inputs, n, EVAL_TEST, opt, res->val_threshold, &ss) != 0) goto fail;
    int ns = res->n_subjects;
    eval_subject *S = res->subjects;
    for (int i = 0; i < ns; i++) res->n_lesion_free += eval_lesion_free(&S[i]);
    res->n_lesion = ns - res->n_lesion_free;
    score_table pooled;
    pool_tables(&pooled, S, ns);
    float oracle_thr;
    score_table_best_dice(&pooled, &oracle_thr);
    res->oracle_threshold = oracle_thr;
    double sps = 0;
    int nsps = 0;
    res->calibrated = ns > 0;
    res->cal_fpr = ns > 0 ? S[0].cal_fpr : NAN;
    for (int i = 0; i < ns; i++) {
        res->calibrated &= S[i].calibrated;
        if (!(S[i].cal_fpr == res->cal_fpr)) res->cal_fpr = NAN;
        score_table_confusion(&S[i].at_oracle, &S[i].table, oracle_thr);
        for (int f = 0; f < EVAL_NFPR; f++)
            if (!isnan(res->fpr_threshold[f])) score_table_confusion(&S[i].at_fpr[f], &S[i].table, (float)res->fpr_threshold[f]);
        if (!isnan(S[i].seconds_per_slice)) sps += S[i].seconds_per_slice, nsps++;
        if (S[i].parameters >= 0) res->parameters = S[i].parameters;
        if (S[i].grow > res->grow) res->grow = S[i].grow;
        res->slices += S[i].slice_hi - S[i].slice_lo + 1;
    }
    if (nsps) res->seconds_per_slice = sps / nsps;

    // Threshold-free ranking metrics, shared by all protocols.
    double *ap = as_malloc((size_t)ns * sizeof *ap), *auc = as_malloc((size_t)ns * sizeof *auc);
    for (int i = 0; i < ns; i++) ap[i] = S[i].auprc, auc[i] = S[i].auroc;
    metric_summary vol_rank[2], pool_rank[2];
    lesion_mean(&vol_rank[0], ap, res, opt);
    lesion_mean(&vol_rank[1], auc, res, opt);
    metric_summary_single(&pool_rank[0], score_table_auprc(&pooled));
    metric_summary_single(&pool_rank[1], score_table_auroc(&pooled));
    score_table_free(&pooled);
    free(ap);
    free(auc);

    confusion *c = as_malloc((size_t)ns * sizeof *c + 1);
    lesion_counts *lc = as_malloc((size_t)ns * sizeof *lc + 1);
    // paper
    for (int i = 0; i < ns; i++) c[i] = S[i].paper, lc[i] = S[i].paper_lesions;
    char paper_note[160] = "detect's post-processed mask (appendix A.1); AUPRC/AUROC from the continuous map";
    if (res->grow > 0)
        snprintf(paper_note, sizeof paper_note,
                 "detect's post-processed mask (appendix A.1, then growth %d px: not in the paper); AUPRC/AUROC from "
                 "the continuous map",
                 res->grow);
    // detect's calibrated mask is not the paper's A.1: its rows say so by name
    const char *mask_protocol = res->calibrated ? "calibrated" : "paper";
    if (res->calibrated)
        snprintf(paper_note, sizeof paper_note,
                 "detect's calibrated mask (threshold at %.2g false positives on healthy scans, hysteresis; not the "
                 "paper's A.1); AUPRC/AUROC from the continuous map",
                 res->cal_fpr);
    rows_for_protocol(res, mask_protocol, NAN, c, lc, vol_rank, pool_rank, opt, paper_note);
    eval_row *r = row_add(res, mask_protocol, "per-slice", NAN,
                          "mean over axial slices with ground truth (the reference code's averaging)");
    metric_summary_of(&r->dice, ss.dice, ss.n);
    metric_summary_of(&r->auprc, ss.auprc, ss.n);
    metric_summary_of(&r->auroc, ss.auroc, ss.n);
    r->n_subjects = res->n_lesion;  // only they have slices with ground truth
    r->n_slices = ss.n;
    // val-threshold
    if (!isnan(res->val_threshold)) {
        for (int i = 0; i < ns; i++) c[i] = S[i].at_val, lc[i] = S[i].val_lesions;
        char note[160];
        snprintf(note, sizeof note, "map >= %.6g, chosen by best pooled Dice on %d validation subjects",
                 res->val_threshold, res->n_val);
        rows_for_protocol(res, "val-threshold", res->val_threshold, c, lc, vol_rank, pool_rank, opt, note);
    }
    // oracle
    for (int i = 0; i < ns; i++) c[i] = S[i].at_oracle;
    rows_for_protocol(res, "oracle", res->oracle_threshold, c, NULL, vol_rank, pool_rank, opt,
                      "OPTIMISTIC: threshold chosen on the test labels (best pooled Dice)");
    // healthy-fpr
    for (int f = 0; f < EVAL_NFPR; f++) {
        if (isnan(res->fpr_threshold[f])) continue;
        for (int i = 0; i < ns; i++) c[i] = S[i].at_fpr[f];
        char proto[32], note[160];
        snprintf(proto, sizeof proto, "healthy-fpr-%g%%", 100 * eval_fpr_levels[f]);
        snprintf(note, sizeof note, "map >= %.6g: %.3g%% false positives on %d healthy scans", res->fpr_threshold[f],
                 100 * res->fpr_achieved[f], res->n_healthy);
        rows_for_protocol(res, proto, res->fpr_threshold[f], c, NULL, vol_rank, pool_rank, opt, note);
    }
    free(c);
    free(lc);
    free(ss.dice);
    free(ss.auprc);
    free(ss.auroc);
    return 0;
fail:
    free_subjects(val, res->n_val);
    free(ss.dice);
    free(ss.auprc);
    free(ss.auroc);
    eval_result_free(res);
    return -1;
}

int eval_lesion_free(const eval_subject *s) { return s->gt_voxels == 0; }

double eval_fp_ml(const eval_subject *s, const confusion *c) { return (double)c->fp * s->voxel_ml; }

void eval_result_free(eval_result *res) {
    if (res->subjects) free_subjects(res->subjects, res->n_subjects);
    if (res->healthy) free_subjects(res->healthy, res->n_healthy);
    free(res->rows);
    memset(res, 0, sizeof *res);
}
