#include "eval/report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"  // as_fail, as_malloc
#include "util/fs.h"     // fs_file_*, fs_mkdirs, fs_join, fs_exists, fs_read_all
#include "util/csv.h"    // csv_write_*
#include "util/json.h"   // json_write_*
#include "eval/viewer.h"  // report_viewer_*
#include "io/png.h"       // colormap_rgb, COLORMAP_*: the colour bars use the panels' colour maps

const char *const report_panel_kind[REPORT_NPANELS] = {"input", "reconstruction", "residual", "map", "mask", "gt"};
// detect's reconstruction is the model's prediction under each scored window composed over the
// slice (docs/detection.md), not a seamless image: the caption says so.
const char *const report_panel_caption[REPORT_NPANELS] = {
    "input",      "pseudo-healthy: the model's prediction under the sliding windows", "residual |input - pseudo-healthy|",
    "coarse map", "final mask",                                                        "ground truth"};

void report_safe_id(char *out, size_t n, const char *id) {
    size_t i = 0;
    for (; id[i] && i + 1 < n; i++) {
        char ch = id[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                 ch == '_' || ch == '-';
        out[i] = ok ? ch : '_';
    }
    out[i] = '\0';
}

void report_panel_path(char *out, size_t n, const char *run_dir, const char *id, const char *kind) {
    char safe[256];
    report_safe_id(safe, sizeof safe, id);
    if (run_dir && *run_dir) snprintf(out, n, "%s/panels/%s_%s.png", run_dir, safe, kind);
    else snprintf(out, n, "panels/%s_%s.png", safe, kind);
}

// ---- number formatting ----------------------------------------------------------------------------

static const char *fmt_num(char *buf, size_t n, double v, const char *undef) {
    if (isnan(v) || isinf(v)) snprintf(buf, n, "%s", undef);
    else snprintf(buf, n, "%.4f", v);
    return buf;
}

// Millilitres to the voxel (1 mm^3 = 0.001 ml).
static const char *fmt_ml(char *buf, size_t n, double v, const char *undef) {
    if (isnan(v) || isinf(v)) snprintf(buf, n, "%s", undef);
    else snprintf(buf, n, "%.3f", v);
    return buf;
}

// "0.4123 ± 0.2100 [0.3800, 0.4400]" / "0.4123 [0.38, 0.44]" / "n/a"
static const char *fmt_summary(char *buf, size_t n, const metric_summary *s) {
    if (s->n == 0 || isnan(s->value)) {
        snprintf(buf, n, "n/a");
        return buf;
    }
    int len = snprintf(buf, n, "%.4f", s->value);
    if (!isnan(s->std)) len += snprintf(buf + len, n - (size_t)len, " ± %.4f", s->std);
    if (!isnan(s->ci_lo)) snprintf(buf + len, n - (size_t)len, " [%.4f, %.4f]", s->ci_lo, s->ci_hi);
    return buf;
}

static void json_summary(FILE *f, const char *name, const metric_summary *s) {
    fprintf(f, "\"%s\": {\"value\": ", name);
    json_write_number(f, s->n ? s->value : NAN);
    fputs(", \"std\": ", f);
    json_write_number(f, s->std);
    fputs(", \"ci95\": ", f);
    if (isnan(s->ci_lo)) fputs("null", f);
    else {
        fputc('[', f);
        json_write_number(f, s->ci_lo);
        fputs(", ", f);
        json_write_number(f, s->ci_hi);
        fputc(']', f);
    }
    fprintf(f, ", \"n\": %d, \"n_undefined\": %d}", s->n, s->n_undefined);
}

static void html_str(FILE *f, const char *s) {
    for (; s && *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else if (*s == '"') fputs("&quot;", f);
        else fputc(*s, f);
    }
}

void report_html_str(FILE *f, const char *s) { html_str(f, s); }

static const char *meta_or(const char *s, const char *dflt) { return s && *s ? s : dflt; }

// ---- text table -----------------------------------------------------------------------------------

static void fmt_params(char *buf, size_t n, int64_t p) {
    if (p < 0) snprintf(buf, n, "n/a");
    else if (p >= 1000000) snprintf(buf, n, "%.2fM", (double)p / 1e6);
    else snprintf(buf, n, "%lld", (long long)p);
}

// What a row's numbers cover: "4" subjects, or "4 (37 slices)" for per-slice.
static const char *fmt_n(char *buf, size_t n, const eval_row *w) {
    if (w->n_slices >= 0) snprintf(buf, n, "%d (%d slices)", w->n_subjects, w->n_slices);
    else snprintf(buf, n, "%d", w->n_subjects);
    return buf;
}

// Mean false-positive ml over the lesion-free subjects; "-" when there are none or the row has none.
static const char *fmt_fp_mean(char *buf, size_t n, const fp_volume *fp) {
    return fmt_ml(buf, n, fp->n > 0 ? fp->mean_ml : NAN, "-");
}

// False-positive ml of detect's mask in a scan without lesion voxels; NAN when it has no mask.
static double subject_fp_ml(const eval_subject *s) { return s->pred_voxels < 0 ? NAN : eval_fp_ml(s, &s->paper); }

// Dice of a test subject's paper mask; n/a (NAN) on a lesion-free one, where it means nothing.
static double subject_dice(const eval_subject *s) { return eval_lesion_free(s) ? NAN : confusion_dice(&s->paper); }

// "id 0.123 ml, id 0.000 ml" over the lesion-free test subjects (healthy: every scan with a mask),
// at most `max` of them (0 = all), then how many more.
static void fp_list(FILE *f, const eval_subject *s, int n, int test, int max) {
    int shown = 0, more = 0;
    for (int i = 0; i < n; i++) {
        if ((test && !eval_lesion_free(&s[i])) || s[i].pred_voxels < 0) continue;
        if (max && shown == max) {
            more++;
            continue;
        }
        fprintf(f, "%s%s %.3f ml", shown ? ", " : "", s[i].id, subject_fp_ml(&s[i]));
        shown++;
    }
    if (more) fprintf(f, ", ... %d more in report.json", more);
}

static void fp_summary_text(FILE *f, const fp_volume *fp) {
    fprintf(f, "mean %.3f ml, max %.3f ml, total %.3f ml", fp->mean_ml, fp->max_ml, fp->total_ml);
}

// The lesion-free test subjects and the healthy scans: counts and false-positive volumes.
static void fp_notes(FILE *f, const eval_result *res, int max) {
    const fp_volume *paper = &res->rows[0].lesion_free;  // rows[0] is paper per-volume
    fprintf(f, "Lesion-free test subjects (no lesion voxel in the evaluated slices; outside every per-volume mean): "
               "%d",
            res->n_lesion_free);
    if (res->n_lesion_free > 0) {
        fputs("; false-positive volume of detect's mask: ", f);
        fp_summary_text(f, paper);
        fputs(" (", f);
        fp_list(f, res->subjects, res->n_subjects, 1, max);
        fputs("); per protocol: column \"lesion-free FP ml\"", f);
    }
    fputs(".\n", f);
    if (res->n_healthy > 0) {
        fprintf(f, "Healthy scans: %d", res->n_healthy);
        if (res->healthy_fp.n > 0) {
            fputs("; false-positive volume of detect's mask: ", f);
            fp_summary_text(f, &res->healthy_fp);
            fputs(" (", f);
            fp_list(f, res->healthy, res->n_healthy, 0, max);
            fputc(')', f);
        }
        if (res->healthy_fp.n < res->n_healthy)
            fprintf(f, "; %d without mask.nii.gz (false-positive volume not measured)", res->n_healthy - res->healthy_fp.n);
        fputs(".\n", f);
    }
}

static void table_markdown(FILE *f, const eval_result *res, const report_meta *meta) {
    char params[32], sps[32], d[96], a[96], r[96], thr[32], nn[48], fp[32];
    fmt_params(params, sizeof params, res->parameters);
    fmt_num(sps, sizeof sps, res->seconds_per_slice, "n/a");
    fprintf(f, "| method | dataset | protocol | aggregation | n | threshold | Dice | AUPRC | AUROC | lesion-free FP ml "
               "| parameters | s/slice |\n");
    fprintf(f, "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < res->n_rows; i++) {
        const eval_row *w = &res->rows[i];
        fprintf(f, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", meta_or(meta->method, "anoswin"),
                meta_or(meta->dataset, "?"), w->protocol, w->aggregation, fmt_n(nn, sizeof nn, w),
                fmt_num(thr, sizeof thr, w->threshold, "-"), fmt_summary(d, sizeof d, &w->dice),
                fmt_summary(a, sizeof a, &w->auprc), fmt_summary(r, sizeof r, &w->auroc),
                fmt_fp_mean(fp, sizeof fp, &w->lesion_free), params, sps);
    }
}

static void notes_markdown(FILE *f, const eval_result *res) {
    fprintf(f, "\nTest subjects: %d (%d with lesion voxels, %d lesion-free); validation subjects: %d; healthy scans: %d; "
               "evaluated axial slices: %lld.\n",
            res->n_subjects, res->n_lesion, res->n_lesion_free, res->n_val, res->n_healthy, (long long)res->slices);
    fprintf(f, "n = subjects each line covers: per-volume, mean ± std (population) [95%% bootstrap CI over subjects] "
               "over the test subjects with lesion voxels; pooled, all evaluated voxels of all test subjects as one set "
               "[bootstrap CI of Dice over subjects]; per-slice, the slices with ground truth. n/a = undefined (e.g. "
               "AUPRC without lesion voxels), excluded from means. Lesion-free FP ml = mean false-positive volume per "
               "lesion-free test subject under the line's mask or threshold.\n");
    fp_notes(f, res, 10);
    fputc('\n', f);
    for (int i = 0; i < res->n_rows; i++) {
        const eval_row *w = &res->rows[i];
        if (i > 0 && !strcmp(w->protocol, res->rows[i - 1].protocol)) continue;
        fprintf(f, "- **%s**: %s\n", w->protocol, w->note);
    }
}

void report_print_table(FILE *f, const eval_result *res, const report_meta *meta) {
    table_markdown(f, res, meta);
    notes_markdown(f, res);
}

// ---- JSON -----------------------------------------------------------------------------------------

static void json_fp(FILE *f, const fp_volume *fp) {
    if (fp->n < 0) {
        fputs("null", f);
        return;
    }
    fprintf(f, "{\"n\": %d, \"fp_ml_mean\": ", fp->n);
    json_write_number(f, fp->mean_ml);
    fputs(", \"fp_ml_max\": ", f);
    json_write_number(f, fp->max_ml);
    fputs(", \"fp_ml_total\": ", f);
    json_write_number(f, fp->total_ml);
    fputc('}', f);
}

// The summary plus per scan: id, evaluated voxels, false-positive voxels and ml of detect's mask
// (null when the scan has no mask). test = only the lesion-free test subjects.
static void json_fp_scans(FILE *f, const fp_volume *fp, const eval_subject *s, int n, int test) {
    int listed = 0;
    for (int i = 0; i < n; i++) listed += !test || eval_lesion_free(&s[i]);
    fprintf(f, "{\"n\": %d, \"n_measured\": %d, \"fp_ml_mean\": ", listed, fp->n);
    json_write_number(f, fp->mean_ml);
    fputs(", \"fp_ml_max\": ", f);
    json_write_number(f, fp->max_ml);
    fputs(", \"fp_ml_total\": ", f);
    json_write_number(f, fp->total_ml);
    fputs(", \"scans\": [", f);
    int first = 1;
    for (int i = 0; i < n; i++) {
        if (test && !eval_lesion_free(&s[i])) continue;
        fputs(first ? "\n    {\"id\": " : ",\n    {\"id\": ", f);
        first = 0;
        json_write_string(f, s[i].id);
        fprintf(f, ", \"voxels\": %lld, \"voxel_ml\": ", (long long)s[i].voxels);
        json_write_number(f, s[i].voxel_ml);
        fputs(", \"fp_voxels\": ", f);
        if (s[i].pred_voxels < 0) fputs("null", f);
        else fprintf(f, "%lld", (long long)s[i].paper.fp);
        fputs(", \"fp_ml\": ", f);
        json_write_number(f, subject_fp_ml(&s[i]));
        fputc('}', f);
    }
    fputs("]}", f);
}

void report_print_json(FILE *f, const eval_result *res, const report_meta *meta) {
    fputs("{\n  \"method\": ", f);
    json_write_string(f, meta_or(meta->method, "anoswin"));
    fputs(",\n  \"dataset\": ", f);
    json_write_string(f, meta_or(meta->dataset, ""));
    fputs(",\n  \"predictions\": ", f);
    json_write_string(f, meta_or(meta->pred_dir, ""));
    fprintf(f, ",\n  \"n_test\": %d, \"n_test_lesion\": %d, \"n_val\": %d, \"n_healthy\": %d, \"slices\": %lld,",
            res->n_subjects, res->n_lesion, res->n_val, res->n_healthy, (long long)res->slices);
    fputs("\n  \"lesion_free\": ", f);
    json_fp_scans(f, &res->rows[0].lesion_free, res->subjects, res->n_subjects, 1);
    fputs(",\n  \"healthy_fp\": ", f);
    json_fp_scans(f, &res->healthy_fp, res->healthy, res->n_healthy, 0);
    fputs(",\n  \"parameters\": ", f);
    if (res->parameters < 0) fputs("null", f);
    else fprintf(f, "%lld", (long long)res->parameters);
    fputs(", \"seconds_per_slice\": ", f);
    json_write_number(f, res->seconds_per_slice);
    fputs(",\n  \"thresholds\": {\"val\": ", f);
    json_write_number(f, res->val_threshold);
    fputs(", \"oracle\": ", f);
    json_write_number(f, res->oracle_threshold);
    for (int k = 0; k < EVAL_NFPR; k++) {
        fprintf(f, ", \"healthy_fpr_%g\": {\"threshold\": ", 100 * eval_fpr_levels[k]);
        json_write_number(f, res->fpr_threshold[k]);
        fputs(", \"achieved_fpr\": ", f);
        json_write_number(f, res->fpr_achieved[k]);
        fputc('}', f);
    }
    fputs("},\n  \"rows\": [\n", f);
    for (int i = 0; i < res->n_rows; i++) {
        const eval_row *w = &res->rows[i];
        fputs("    {\"protocol\": ", f);
        json_write_string(f, w->protocol);
        fputs(", \"aggregation\": ", f);
        json_write_string(f, w->aggregation);
        fputs(", \"threshold\": ", f);
        json_write_number(f, w->threshold);
        fputs(",\n     ", f);
        json_summary(f, "dice", &w->dice);
        fputs(",\n     ", f);
        json_summary(f, "auprc", &w->auprc);
        fputs(",\n     ", f);
        json_summary(f, "auroc", &w->auroc);
        fputs(",\n     ", f);
        json_summary(f, "precision", &w->precision);
        fputs(",\n     ", f);
        json_summary(f, "recall", &w->recall);
        fputs(",\n     \"lesions\": ", f);
        if (w->gt_lesions < 0) fputs("null", f);
        else
            fprintf(f, "{\"gt\": %lld, \"detected\": %lld, \"predicted_components\": %lld, \"false_components\": %lld}",
                    (long long)w->gt_lesions, (long long)w->gt_detected, (long long)w->pred_components,
                    (long long)w->pred_false);
        fprintf(f, ",\n     \"n_subjects\": %d, \"n_slices\": ", w->n_subjects);
        if (w->n_slices < 0) fputs("null", f);
        else fprintf(f, "%d", w->n_slices);
        fputs(", \"lesion_free\": ", f);
        json_fp(f, &w->lesion_free);
        fputs(", \"note\": ", f);
        json_write_string(f, w->note);
        fprintf(f, "}%s\n", i + 1 < res->n_rows ? "," : "");
    }
    fputs("  ],\n  \"subjects\": [\n", f);
    for (int i = 0; i < res->n_subjects; i++) {
        const eval_subject *s = &res->subjects[i];
        fputs("    {\"id\": ", f);
        json_write_string(f, s->id);
        fprintf(f, ", \"slice_range\": [%d, %d], \"voxels\": %lld, \"gt_voxels\": %lld, \"lesion_free\": %s, \"dice\": ",
                s->slice_lo, s->slice_hi, (long long)s->voxels, (long long)s->gt_voxels,
                eval_lesion_free(s) ? "true" : "false");
        json_write_number(f, subject_dice(s));
        fputs(", \"fp_ml\": ", f);
        json_write_number(f, eval_fp_ml(s, &s->paper));
        fputs(", \"precision\": ", f);
        json_write_number(f, confusion_precision(&s->paper));
        fputs(", \"recall\": ", f);
        json_write_number(f, confusion_recall(&s->paper));
        fputs(", \"auprc\": ", f);
        json_write_number(f, s->auprc);
        fputs(", \"auroc\": ", f);
        json_write_number(f, s->auroc);
        fputs(", \"dice_oracle_threshold\": ", f);
        json_write_number(f, eval_lesion_free(s) ? NAN : confusion_dice(&s->at_oracle));
        fputs(", \"dice_val_threshold\": ", f);
        json_write_number(f, isnan(res->val_threshold) || eval_lesion_free(s) ? NAN : confusion_dice(&s->at_val));
        fprintf(f, ", \"lesions\": {\"gt\": %lld, \"detected\": %lld, \"predicted_components\": %lld, "
                   "\"false_components\": %lld}}%s\n",
                (long long)s->paper_lesions.gt_lesions, (long long)s->paper_lesions.gt_detected,
                (long long)s->paper_lesions.pred_components, (long long)s->paper_lesions.pred_false,
                i + 1 < res->n_subjects ? "," : "");
    }
    fputs("  ]\n}\n", f);
}

// ---- CSV ------------------------------------------------------------------------------------------

static void csv_num(FILE *f, double v) {
    fputc(',', f);
    csv_write_number(f, v);
}

static void csv_summary(FILE *f, const metric_summary *s) {
    csv_num(f, s->n ? s->value : NAN);
    csv_num(f, s->std);
    csv_num(f, s->ci_lo);
    csv_num(f, s->ci_hi);
}

static void report_print_csv(FILE *f, const eval_result *res, const report_meta *meta) {
    static const char *m[5] = {"dice", "auprc", "auroc", "precision", "recall"};
    fputs("method,dataset,protocol,aggregation,threshold", f);
    for (int k = 0; k < 5; k++) fprintf(f, ",%s,%s_std,%s_ci_lo,%s_ci_hi", m[k], m[k], m[k], m[k]);
    fputs(",gt_lesions,gt_detected,pred_components,pred_false,parameters,s_per_slice,n_subjects,n,n_slices,"
          "n_lesion_free,lesion_free_fp_ml_mean,lesion_free_fp_ml_max,lesion_free_fp_ml_total,n_healthy_fp,"
          "healthy_fp_ml_mean,healthy_fp_ml_max,note\n",
          f);
    for (int i = 0; i < res->n_rows; i++) {
        const eval_row *w = &res->rows[i];
        csv_write_field(f, meta_or(meta->method, "anoswin"));
        fputc(',', f);
        csv_write_field(f, meta_or(meta->dataset, ""));
        fputc(',', f);
        csv_write_field(f, w->protocol);
        fputc(',', f);
        csv_write_field(f, w->aggregation);
        csv_num(f, w->threshold);
        csv_summary(f, &w->dice);
        csv_summary(f, &w->auprc);
        csv_summary(f, &w->auroc);
        csv_summary(f, &w->precision);
        csv_summary(f, &w->recall);
        csv_num(f, w->gt_lesions < 0 ? NAN : (double)w->gt_lesions);
        csv_num(f, w->gt_detected < 0 ? NAN : (double)w->gt_detected);
        csv_num(f, w->pred_components < 0 ? NAN : (double)w->pred_components);
        csv_num(f, w->pred_false < 0 ? NAN : (double)w->pred_false);
        csv_num(f, res->parameters < 0 ? NAN : (double)res->parameters);
        csv_num(f, res->seconds_per_slice);
        // n_subjects stays the number of test subjects (what it always was); n is what this line covers.
        fprintf(f, ",%d,%d", res->n_subjects, w->n_subjects);
        csv_num(f, w->n_slices < 0 ? NAN : w->n_slices);
        csv_num(f, w->lesion_free.n < 0 ? NAN : w->lesion_free.n);
        csv_num(f, w->lesion_free.mean_ml);
        csv_num(f, w->lesion_free.max_ml);
        csv_num(f, w->lesion_free.total_ml);
        fprintf(f, ",%d", res->healthy_fp.n);
        csv_num(f, res->healthy_fp.mean_ml);
        csv_num(f, res->healthy_fp.max_ml);
        fputc(',', f);
        csv_write_field(f, w->note);
        fputc('\n', f);
    }
}

static double cell_num(const char *s) { return *s ? strtod(s, NULL) : NAN; }

int report_read_line(const char *path, const char *protocol, const char *aggregation, report_line *out) {
    unsigned char *buf;
    size_t len;
    if (fs_read_all(path, &buf, &len) != 0) return -1;
    char *text = as_malloc(len + 1);
    memcpy(text, buf, len);
    text[len] = 0;
    free(buf);
    enum { C_PROT, C_AGG, C_DICE, C_DSTD, C_AUPRC, C_AUROC, C_PARAMS, C_SPS, C_NSUB, C_N, C_NFREE, C_FREEFP, C_NOTE, NC };
    static const char *names[NC] = {"protocol",   "aggregation", "dice", "dice_std",      "auprc",
                                    "auroc",      "parameters",  "s_per_slice", "n_subjects", "n",
                                    "n_lesion_free", "lesion_free_fp_ml_mean", "note"};
    int col[NC], found = 0, header = 1;
    for (int k = 0; k < NC; k++) col[k] = -1;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line && !found; line = strtok_r(NULL, "\n", &save)) {
        char *f[64];
        int nf = csv_split(line, f, 64);
        if (header) {
            for (int k = 0; k < NC; k++)
                for (int j = 0; j < nf; j++)
                    if (!strcmp(f[j], names[k])) col[k] = j;
            header = 0;
            for (int k = 0; k < NC; k++)
                if (col[k] < 0) {
                    free(text);
                    return as_fail("%s: no column '%s'", path, names[k]);
                }
            continue;
        }
        if (nf <= col[C_NOTE] && nf <= col[C_N]) continue;
        if (strcmp(f[col[C_PROT]], protocol) || strcmp(f[col[C_AGG]], aggregation)) continue;
        snprintf(out->protocol, sizeof out->protocol, "%s", protocol);
        snprintf(out->aggregation, sizeof out->aggregation, "%s", aggregation);
        out->dice = cell_num(f[col[C_DICE]]);
        out->dice_std = cell_num(f[col[C_DSTD]]);
        out->auprc = cell_num(f[col[C_AUPRC]]);
        out->auroc = cell_num(f[col[C_AUROC]]);
        out->params = cell_num(f[col[C_PARAMS]]);
        out->s_per_slice = cell_num(f[col[C_SPS]]);
        out->n_subjects = atoi(f[col[C_NSUB]]);
        out->n = atoi(f[col[C_N]]);
        const double nfree = cell_num(f[col[C_NFREE]]);
        out->n_lesion_free = isfinite(nfree) ? (int)nfree : 0;
        out->lesion_free_fp_ml = cell_num(f[col[C_FREEFP]]);
        snprintf(out->note, sizeof out->note, "%s", col[C_NOTE] < nf ? f[col[C_NOTE]] : "");
        found = 1;
    }
    free(text);
    return found;
}

// ---- HTML -----------------------------------------------------------------------------------------

// Reads a CSV training log; returns the number of rows, with x (step/epoch/row) and up to 3
// loss columns. Missing or unreadable file: 0.
typedef struct loss_log {
    int n, ncols;
    char names[3][64], xname[64];
    double *x, *y[3];
} loss_log;

static void loss_log_free(loss_log *l) {
    free(l->x);
    for (int c = 0; c < 3; c++) free(l->y[c]);
}

static int loss_log_read(loss_log *l, const char *path) {
    memset(l, 0, sizeof *l);
    if (!path || !fs_exists(path)) return 0;
    unsigned char *buf;
    size_t len;
    if (fs_read_all(path, &buf, &len) != 0) return 0;
    char *text = as_malloc(len + 1);
    memcpy(text, buf, len);
    text[len] = '\0';
    free(buf);
    char *save = NULL, *line = strtok_r(text, "\n", &save);
    if (!line) {
        free(text);
        return 0;
    }
    // Header: pick the x column and the loss columns.
    int xcol = -1, xrank = 0, ycol[3], ncol = 0, col = 0;
    char *hs = NULL;
    for (char *tok = strtok_r(line, ",\r", &hs); tok; tok = strtok_r(NULL, ",\r", &hs), col++) {
        // x axis: step, else epoch, else iter (the train command writes epoch,step,...,train_loss,val_loss)
        int rank = !strcmp(tok, "step") ? 3 : !strcmp(tok, "epoch") ? 2 : !strcmp(tok, "iter") ? 1 : 0;
        if (rank > xrank) {
            xcol = col, xrank = rank;
            snprintf(l->xname, sizeof l->xname, "%s", tok);
        }
        else if (strstr(tok, "loss") && ncol < 3) {
            ycol[ncol] = col;
            snprintf(l->names[ncol], sizeof l->names[ncol], "%s", tok);
            ncol++;
        }
    }
    l->ncols = ncol;
    if (xcol < 0) snprintf(l->xname, sizeof l->xname, "row");
    int cap = 0;
    for (line = strtok_r(NULL, "\n", &save); line && ncol; line = strtok_r(NULL, "\n", &save)) {
        if (l->n == cap) {
            cap = cap ? 2 * cap : 256;
            l->x = as_realloc(l->x, (size_t)cap * sizeof *l->x);
            for (int c = 0; c < ncol; c++) l->y[c] = as_realloc(l->y[c], (size_t)cap * sizeof *l->y[c]);
        }
        double vals[64];
        int nv = 0;
        char *p = line;
        while (nv < 64) {
            char *end;
            vals[nv++] = strtod(p, &end);
            if (end == p) vals[nv - 1] = NAN;
            p = strchr(p, ',');
            if (!p) break;
            p++;
        }
        l->x[l->n] = xcol >= 0 && xcol < nv ? vals[xcol] : l->n;
        for (int c = 0; c < ncol; c++) l->y[c][l->n] = ycol[c] < nv ? vals[ycol[c]] : NAN;
        l->n++;
    }
    free(text);
    return l->n;
}

// Ticks of a log axis covering [lo, hi] (0 < lo <= hi): powers of ten, or 1-2-5 steps when the
// data span less than a decade (a decade would leave one tick or none). The axis runs from the
// first tick to the last. Returns the tick count (>= 2).
static int log_ticks(double lo, double hi, double *t, int max) {
    static const double m125[3] = {1, 2, 5};
    int e0 = (int)floor(log10(lo)) - 1, e1 = (int)ceil(log10(hi)) + 1, fine = hi / lo < 10, n = 0;
    int step = 1 + (e1 - e0) / (max - 1);  // decades per tick, so that at most max ticks remain
    double c[256];
    int nc = 0;
    for (int e = e0; e <= e1 && nc < 253; e += fine ? 1 : step)
        for (int k = 0; k < (fine ? 3 : 1); k++) c[nc++] = m125[k] * pow(10, e);
    // The last candidate at or below lo, the first at or above hi (a relative tolerance: pow rounds).
    int a = 0, b = nc - 1;
    for (int i = 0; i < nc; i++)
        if (c[i] <= lo * (1 + 1e-9)) a = i;
    for (int i = nc - 1; i >= 0; i--)
        if (c[i] >= hi * (1 - 1e-9)) b = i;
    if (b <= a) b = a + 1;
    for (int i = a; i <= b && n < max; i++) t[n++] = c[i];
    return n;
}

// The loss curve on a log axis: the first steps' loss is often 10-100x the rest and would
// flatten everything else on a linear one. NaN and values <= 0 are left out.
static void html_loss_svg(FILE *f, const loss_log *l) {
    const int W = 640, H = 280, L = 70, R = 20, T = 20, B = 40;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int i = 0; i < l->n; i++) {
        if (!isfinite(l->x[i])) continue;
        for (int c = 0; c < l->ncols; c++) {
            double y = l->y[c][i];
            if (!isfinite(y) || y <= 0) continue;
            y0 = fmin(y0, y), y1 = fmax(y1, y);
            x0 = fmin(x0, l->x[i]), x1 = fmax(x1, l->x[i]);
        }
    }
    if (!(x1 >= x0) || !(y1 >= y0)) {
        fputs("<p>The training log has no positive loss values.</p>\n", f);
        return;
    }
    if (x1 == x0) x1 = x0 + 1;
    double tick[32];
    int nt = log_ticks(y0, y1, tick, 32);
    double ly0 = log10(tick[0]), ly1 = log10(tick[nt - 1]);
#define LOSS_PY(v) (T + (1 - (log10(v) - ly0) / (ly1 - ly0)) * (H - T - B))
    static const char *colour[3] = {"#1f77b4", "#d62728", "#2ca02c"};
    fprintf(f, "<svg class=\"loss\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n",
            W, H, W, H);
    for (int k = 0; k < nt; k++) {
        double py = LOSS_PY(tick[k]);
        fprintf(f, "<line class=\"ytick\" x1=\"%d\" x2=\"%d\" y1=\"%.2f\" y2=\"%.2f\" stroke=\"#ddd\"/>", L - 4, W - R, py,
                py);
        fprintf(f, "<text x=\"%d\" y=\"%.2f\" font-size=\"11\" text-anchor=\"end\">%g</text>\n", L - 6, py + 4, tick[k]);
    }
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#888\"/>\n", L, T, W - L - R,
            H - T - B);
    for (int c = 0; c < l->ncols; c++) {
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", colour[c]);
        for (int i = 0; i < l->n; i++) {
            if (!isfinite(l->x[i]) || !isfinite(l->y[c][i]) || l->y[c][i] <= 0) continue;
            double px = L + (l->x[i] - x0) / (x1 - x0) * (W - L - R);
            fprintf(f, "%.2f,%.2f ", px, LOSS_PY(l->y[c][i]));
        }
        fputs("\"/>\n", f);
        fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\" fill=\"%s\">", L + 10 + 150 * c, T + 15, colour[c]);
        html_str(f, l->names[c]);
        fputs("</text>\n", f);
    }
#undef LOSS_PY
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"11\">%.6g</text>\n", L, H - B + 15, x0);
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">%.6g</text>\n", W - R, H - B + 15, x1);
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">", (L + W - R) / 2, H - 8);
    html_str(f, l->xname);
    fputs("</text>\n", f);
    fprintf(f, "<text class=\"ytitle\" font-size=\"12\" text-anchor=\"middle\" transform=\"translate(14,%d) rotate(-90)\">"
               "loss (log scale)</text>\n",
            (T + H - B) / 2);
    fputs("</svg>\n", f);
}

// A colour bar under a map panel: the panel's colour map from 0 (left) to hi (right), drawn with
// the same colormap_rgb the PNG was, with its end values and units.
static void html_colour_bar(FILE *f, colormap cm, double hi, const char *units) {
    // Strips rather than a gradient: a gradient needs url(#id), and every colour is then exactly
    // one the PNG can hold (strip k at t = k / (n - 1): the first is 0, the last hi).
    enum { W = 200, NSTRIP = 100 };
    fprintf(f, "<svg class=\"colourbar\" data-min=\"0\" data-max=\"%.6g\" data-unit=\"", hi);
    html_str(f, units);
    fprintf(f, "\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"36\" viewBox=\"0 0 %d 36\">", W, W);
    for (int k = 0; k < NSTRIP; k++) {
        unsigned char rgb[3];
        colormap_rgb(cm, (float)k / (NSTRIP - 1), rgb);
        fprintf(f, "<rect x=\"%d\" y=\"0\" width=\"%d\" height=\"10\" fill=\"#%02x%02x%02x\"/>", k * W / NSTRIP,
                W / NSTRIP, rgb[0], rgb[1], rgb[2]);
    }
    fprintf(f, "<text x=\"0\" y=\"22\" font-size=\"10\">0</text><text x=\"%d\" y=\"22\" font-size=\"10\" "
               "text-anchor=\"end\">%.3g</text><text x=\"%d\" y=\"33\" font-size=\"10\" text-anchor=\"middle\">",
            W, hi, W / 2);
    html_str(f, units);
    fputs("</text></svg>", f);
}

// ---- latent-space section (anoswin latent --out RUN/latent) --------------------------------------
// The numbers of RUN/latent/latent.json (the paper's Figure 3 as a measurement), when that run
// wrote one; nothing otherwise.
typedef struct latent_numbers {
    int healthy, lesion;
    char projection[16];
    double v[2][6];  // panel x (silhouette latent, 2-D, k-NN latent, 2-D, k-means ARI, accuracy)
} latent_numbers;

static int latent_numbers_read(latent_numbers *ln, const char *run_dir) {
    char dir[4096], path[4200];
    fs_join(dir, sizeof dir, run_dir, "latent");
    fs_join(path, sizeof path, dir, "latent.json");
    if (!fs_exists(path)) return -1;
    char *text = json_read_file(path);
    if (!text) return -1;
    static const char *keys[6] = {"silhouette_latent", "silhouette_2d", "knn_accuracy_latent", "knn_accuracy_2d",
                                  "kmeans_ari", "kmeans_accuracy"};
    double h = 0, l = 0;
    int ok = !json_top_number(text, "healthy_slices", &h) && !json_top_number(text, "lesion_slices", &l) &&
             !json_top_string(text, "projection", ln->projection, sizeof ln->projection);
    const char *panels = ok ? json_top_value(text, "panels") : NULL;
    for (int p = 0; p < 2 && panels; p++) {
        const char *pv = json_top_value(panels, p ? "masked" : "unmasked");
        for (int k = 0; k < 6; k++)
            if (!pv || json_top_number(pv, keys[k], &ln->v[p][k])) ln->v[p][k] = NAN;
    }
    free(text);
    if (!panels) return -1;
    for (char *c = ln->projection; *c; c++) *c = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);  // umap -> UMAP
    ln->healthy = (int)h, ln->lesion = (int)l;
    return 0;
}

static const char *const latent_cols[6] = {"silhouette (latent)", "silhouette (2-D)", "k-NN accuracy (latent)",
                                           "k-NN accuracy (2-D)", "2-means ARI", "2-means accuracy"};

static void latent_markdown(FILE *f, const char *run_dir) {
    latent_numbers ln;
    if (latent_numbers_read(&ln, run_dir)) return;
    fprintf(f, "\n## Latent space (the paper's Figure 3)\n\n%d healthy and %d lesion slices, %s of the encoder "
            "latents (`anoswin latent`); healthy vs lesion:\n\n| panel |", ln.healthy, ln.lesion, ln.projection);
    for (int k = 0; k < 6; k++) fprintf(f, " %s |", latent_cols[k]);
    fputs("\n|---|---|---|---|---|---|---|\n", f);
    for (int p = 0; p < 2; p++) {
        char b[32];
        fprintf(f, "| %s |", p ? "lesions masked" : "unmasked");
        for (int k = 0; k < 6; k++) fprintf(f, " %s |", fmt_num(b, sizeof b, ln.v[p][k], "n/a"));
        fputc('\n', f);
    }
    fputs("\n![latent space](latent/latent.png)\n", f);
}

static void latent_html(FILE *f, const char *run_dir) {
    latent_numbers ln;
    if (latent_numbers_read(&ln, run_dir)) return;
    fprintf(f, "<h2>Latent space (the paper's Figure 3)</h2>\n<p>%d healthy and %d lesion slices, %s of the encoder "
            "latents (<code>anoswin latent</code>); healthy vs lesion:</p>\n<table>\n<tr><th>panel</th>",
            ln.healthy, ln.lesion, ln.projection);
    for (int k = 0; k < 6; k++) fprintf(f, "<th>%s</th>", latent_cols[k]);
    fputs("</tr>\n", f);
    for (int p = 0; p < 2; p++) {
        char b[32];
        fprintf(f, "<tr><td>%s</td>", p ? "lesions masked" : "unmasked");
        for (int k = 0; k < 6; k++) fprintf(f, "<td>%s</td>", fmt_num(b, sizeof b, ln.v[p][k], "n/a"));
        fputs("</tr>\n", f);
    }
    fputs("</table>\n<p><img src=\"latent/latent.svg\" alt=\"latent space\"></p>\n", f);
}

static void report_print_html(FILE *f, const eval_result *res, const report_meta *meta, const char *run_dir) {
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>anoswin report</title>\n"
          "<style>body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse}"
          "td,th{border:1px solid #bbb;padding:3px 8px;font-size:13px}th{background:#eee}"
          ".opt{color:#a00}.panel{display:inline-block;vertical-align:top;text-align:center;margin:2px;font-size:12px;"
          "max-width:200px}.panel img{display:block;max-width:200px;image-rendering:pixelated}"
          ".panel svg{display:block}</style>\n",
          f);
    int viewer = meta->viewer_bundle && report_viewer_present(res, run_dir);
    if (viewer) report_viewer_head(f);
    fputs("</head><body>\n", f);
    if (viewer) fputs("<pre id=\"page-errors\" hidden></pre>\n", f);
    fputs("<h1>anoswin evaluation: ", f);
    html_str(f, meta_or(meta->method, "anoswin"));
    fputs(" on ", f);
    html_str(f, meta_or(meta->dataset, "?"));
    fputs("</h1>\n<p>Predictions: <code>", f);
    html_str(f, meta_or(meta->pred_dir, "?"));
    fputs("</code></p>\n<h2>Results</h2>\n<table>\n<tr><th>protocol</th><th>aggregation</th><th>n</th><th>threshold</th>"
          "<th>Dice</th><th>AUPRC</th><th>AUROC</th><th>precision</th><th>recall</th><th>lesions detected</th>"
          "<th>false components</th><th>lesion-free FP ml</th><th>parameters</th><th>s/slice</th></tr>\n",
          f);
    char params[32], sps[32], buf[5][96], thr[32], nn[48], fp[32];
    fmt_params(params, sizeof params, res->parameters);
    fmt_num(sps, sizeof sps, res->seconds_per_slice, "n/a");
    for (int i = 0; i < res->n_rows; i++) {
        const eval_row *w = &res->rows[i];
        fprintf(f, "<tr%s><td>", !strcmp(w->protocol, "oracle") ? " class=\"opt\"" : "");
        html_str(f, w->protocol);
        fprintf(f, "</td><td>%s</td><td>%s</td><td>%s</td>", w->aggregation, fmt_n(nn, sizeof nn, w),
                fmt_num(thr, sizeof thr, w->threshold, "-"));
        const metric_summary *ms[5] = {&w->dice, &w->auprc, &w->auroc, &w->precision, &w->recall};
        for (int k = 0; k < 5; k++) fprintf(f, "<td>%s</td>", fmt_summary(buf[k], sizeof buf[k], ms[k]));
        if (w->gt_lesions >= 0)
            fprintf(f, "<td>%lld / %lld</td><td>%lld / %lld</td>", (long long)w->gt_detected, (long long)w->gt_lesions,
                    (long long)w->pred_false, (long long)w->pred_components);
        else fputs("<td>-</td><td>-</td>", f);
        fprintf(f, "<td>%s</td><td>%s</td><td>%s</td></tr>\n", fmt_fp_mean(fp, sizeof fp, &w->lesion_free), params, sps);
    }
    fputs("</table>\n<ul>\n", f);
    for (int i = 0; i < res->n_rows; i++) {
        const eval_row *w = &res->rows[i];
        if (i > 0 && !strcmp(w->protocol, res->rows[i - 1].protocol)) continue;
        fputs("<li><b>", f);
        html_str(f, w->protocol);
        fputs("</b>: ", f);
        html_str(f, w->note);
        fputs("</li>\n", f);
    }
    fprintf(f, "</ul>\n<p>Test subjects %d (%d with lesion voxels, %d lesion-free), validation subjects %d, healthy "
               "scans %d. n = subjects a line covers: per-volume, mean ± std [95%% bootstrap CI over subjects] over the "
               "test subjects with lesion voxels; pooled, all test subjects; per-slice, the slices with ground truth. "
               "n/a = undefined, excluded from means. Lesion-free FP ml = mean false-positive volume per lesion-free "
               "test subject under the line's mask or threshold.</p>\n<p>",
            res->n_subjects, res->n_lesion, res->n_lesion_free, res->n_val, res->n_healthy);
    char *notes = NULL;
    size_t notes_len = 0;
    FILE *mf = open_memstream(&notes, &notes_len);
    fp_notes(mf, res, 0);
    fclose(mf);
    html_str(f, notes);
    free(notes);
    fputs("</p>\n", f);

    if (viewer) report_viewer_section(f, res, run_dir, res->val_threshold);

    loss_log ll;
    if (loss_log_read(&ll, meta->log_csv) > 0 && ll.ncols > 0) {
        fputs("<h2>Training loss</h2>\n", f);
        html_loss_svg(f, &ll);
    }
    loss_log_free(&ll);

    latent_html(f, run_dir);

    fputs("<h2>Subjects</h2>\n", f);
    for (int i = 0; i < res->n_subjects; i++) {
        const eval_subject *s = &res->subjects[i];
        char d[32], a[32];
        fputs("<h3>", f);
        html_str(f, s->id);
        if (eval_lesion_free(s))
            fprintf(f, "</h3>\n<p>lesion-free (outside the Dice means): false positives %.3f ml</p>\n<div>",
                    subject_fp_ml(s));
        else
            fprintf(f, "</h3>\n<p>Dice %s, AUPRC %s, lesions detected %lld / %lld</p>\n<div>",
                    fmt_num(d, sizeof d, subject_dice(s), "n/a"), fmt_num(a, sizeof a, s->auprc, "n/a"),
                    (long long)s->paper_lesions.gt_detected, (long long)s->paper_lesions.gt_lesions);
        for (int k = 0; k < REPORT_NPANELS; k++) {
            char full[4096], rel[4096];
            report_panel_path(full, sizeof full, run_dir, s->id, report_panel_kind[k]);
            if (!fs_exists(full)) continue;  // reference only pictures that exist
            report_panel_path(rel, sizeof rel, NULL, s->id, report_panel_kind[k]);
            fputs("<div class=\"panel\"><img src=\"", f);
            html_str(f, rel);
            fputs("\" alt=\"", f);
            html_str(f, report_panel_caption[k]);
            fputs("\">", f);
            // The residual (hot, residual of the 0..1-scaled slices) and the map (inferno) get colour bars.
            int m = !strcmp(report_panel_kind[k], "residual") ? 0 : !strcmp(report_panel_kind[k], "map") ? 1 : -1;
            if (m >= 0 && s->panel_hi[m] > 0)
                html_colour_bar(f, m ? COLORMAP_INFERNO : COLORMAP_HOT, s->panel_hi[m],
                                m ? meta_or(s->map_units, "map units") : "|difference|, slices scaled 0..1");
            html_str(f, report_panel_caption[k]);
            fputs("</div>", f);
        }
        fputs("</div>\n", f);
        char vpath[4200];
        report_viewer_path(vpath, sizeof vpath, run_dir, s->id);
        if (viewer && fs_exists(vpath)) {
            fputs("<p><a href=\"#viewer\" data-subject=\"", f);
            html_str(f, s->id);
            fputs("\">view in 3-D</a></p>\n", f);
        }
    }
    fputs("</body></html>\n", f);
}

// ---- files ----------------------------------------------------------------------------------------

typedef void (*report_writer)(FILE *f, const eval_result *res, const report_meta *meta, const char *run_dir);

static void w_md(FILE *f, const eval_result *res, const report_meta *meta, const char *run_dir) {
    fprintf(f, "# anoswin evaluation: %s on %s\n\nPredictions: `%s`\n\n", meta_or(meta->method, "anoswin"),
            meta_or(meta->dataset, "?"), meta_or(meta->pred_dir, "?"));
    report_print_table(f, res, meta);
    latent_markdown(f, run_dir);
    fputs("\n## Subjects\n\n| subject | lesion voxels | Dice (paper mask) | AUPRC | AUROC | lesions detected | false "
          "components | FP ml |\n|---|---|---|---|---|---|---|---|\n",
          f);
    for (int i = 0; i < res->n_subjects; i++) {
        const eval_subject *s = &res->subjects[i];
        char d[32], a[32], r[32];
        fprintf(f, "| %s | %lld | %s | %s | %s | %lld / %lld | %lld / %lld | %.3f |\n", s->id, (long long)s->gt_voxels,
                fmt_num(d, sizeof d, subject_dice(s), "n/a (lesion-free)"), fmt_num(a, sizeof a, s->auprc, "n/a"),
                fmt_num(r, sizeof r, s->auroc, "n/a"), (long long)s->paper_lesions.gt_detected,
                (long long)s->paper_lesions.gt_lesions, (long long)s->paper_lesions.pred_false,
                (long long)s->paper_lesions.pred_components, eval_fp_ml(s, &s->paper));
    }
    if (res->n_healthy == 0) return;
    fputs("\n## Healthy scans\n\n| scan | evaluated voxels | FP ml (detect's mask) |\n|---|---|---|\n", f);
    for (int i = 0; i < res->n_healthy; i++) {
        const eval_subject *s = &res->healthy[i];
        char fp[32];
        fprintf(f, "| %s | %lld | %s |\n", s->id, (long long)s->voxels, fmt_ml(fp, sizeof fp, subject_fp_ml(s), "n/a (no mask)"));
    }
}
static void w_csv(FILE *f, const eval_result *res, const report_meta *meta, const char *run_dir) {
    (void)run_dir;
    report_print_csv(f, res, meta);
}
static void w_json(FILE *f, const eval_result *res, const report_meta *meta, const char *run_dir) {
    (void)run_dir;
    report_print_json(f, res, meta);
}

static int write_one(const char *run_dir, const char *name, report_writer w, const eval_result *res,
                     const report_meta *meta) {
    char path[4096];
    fs_join(path, sizeof path, run_dir, name);
    fs_file af;
    if (fs_file_open(&af, path) != 0) return -1;
    w(af.f, res, meta, run_dir);
    return fs_file_commit(&af);
}

int report_latent_import(const char *latent_dir, const char *run_dir) {
    char src[4200], dst_dir[4096], dst[4200];
    fs_join(src, sizeof src, latent_dir, "latent.json");
    if (!fs_exists(src)) return as_fail("%s: no latent.json (anoswin latent's output)", latent_dir);
    fs_join(dst_dir, sizeof dst_dir, run_dir, "latent");
    if (fs_mkdirs(dst_dir)) return -1;
    static const char *const names[3] = {"latent.json", "latent.png", "latent.svg"};
    for (int k = 0; k < 3; k++) {
        unsigned char *data;
        size_t n;
        fs_join(src, sizeof src, latent_dir, names[k]);
        fs_join(dst, sizeof dst, dst_dir, names[k]);
        if (!fs_exists(src)) continue;
        if (fs_read_all(src, &data, &n)) return -1;
        int rc = fs_write_all(dst, data, n);
        free(data);
        if (rc) return -1;
    }
    return 0;
}

int report_write(const eval_result *res, const report_meta *meta, const char *run_dir) {
    if (fs_mkdirs(run_dir) != 0) return -1;
    if (meta->viewer_bundle && report_viewer_install(meta->viewer_bundle, run_dir) != 0) return -1;
    if (write_one(run_dir, "report.md", w_md, res, meta) != 0) return -1;
    if (write_one(run_dir, "report.csv", w_csv, res, meta) != 0) return -1;
    if (write_one(run_dir, "report.json", w_json, res, meta) != 0) return -1;
    return write_one(run_dir, "report.html", report_print_html, res, meta);
}
