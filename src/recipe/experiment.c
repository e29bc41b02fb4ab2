// The experiment recipe (experiment.h), `anoswin experiment table1|table2`: the paper's Table 1 (IXI T2 -> BraTS21 T2 and MSLUB T2 at
// sliding masks of 64 and 32 px) and Table 2 (IXI T1 -> BraTS21 T2, IXI T2 -> BraTS21 T1,
// IXI T1 -> WMH FLAIR at 64 px) on the user's data: train (or reuse) the models, detect with the
// matching post-processing preset, evaluate, and write one combined report with the paper's
// numbers beside ours.
//
// Every method goes through the same steps; what differs comes from the method itself (model.h:
// its training recipe, its presets, whole_image) and the paper's numbers from recipe/paper.h, so
// a newly registered method needs nothing here. A method that masks gets a row per mask size;
// a whole-image method one row per data set. The default method keeps the unprefixed names
// (models/ixi-t2, rows ixi-t2_brats21-t2_m64) of runs made before there were several.
//
// Every step runs THIS executable (/proc/self/exe) with the argv a user would type; each command
// line is logged to RUN/commands.txt so any step can be rerun by hand. A finished step writes
// RUN/stamps/<step>.txt holding its command line (written last, so an interrupted step is redone);
// with --reuse a step whose stamp matches is skipped, and a step after a redone one is redone.
// Trained models are never deleted: without --reuse an existing RUN/models/<name> is an error,
// and with --reuse a model recorded with other options is an error too.
//
// Test sets: the labelled subjects of each data set are split once (seeded) into "val" (a share,
// for the val-threshold protocol) and "test"; the split is written as a manifest
// RUN/data/<set>-<modality>.csv that detect and eval read, so every number names its subjects.
#include "recipe/experiment.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "data/dataset.h"  // dataset_open, dataset_write_manifest
#include "model/model.h"   // model_method_*, model_preset_find
#include "eval/report.h"  // report_read_line
#include "recipe/paper.h"  // paper_lookup, paper_method_name, paper_protocol
#include "recipe/arglist.h"
#include "recipe/step.h"
#include "util/csv.h"    // csv_write_*
#include "util/error.h"
#include "util/json.h"   // json_write_*
#include "util/fs.h"
#include "util/rng.h"
#include "util/timer.h"

// ---- what the tables hold ---------------------------------------------------------------------
static const char *const set_name[NSETS] = {"BraTS21", "MSLUB", "WMH"};
static const char *const set_key[NSETS] = {"brats21", "mslub", "wmh"};
static const char *const set_opt[NSETS] = {"--brats", "--mslub", "--wmh"};
static const char *const set_preset[NSETS] = {"brats", "mslub", "wmh"};  // A.1: k=3,N=2 / k=1,N=7

// One table row: a model trained on IXI <train_mod>, tested on <set> <test_mod>.
typedef struct row_def {
    const char *train_mod;  // "t1", "t2"
    int set;
    const char *test_mod;   // "t1", "t2", "flair"
} row_def;

static const row_def table1_rows[] = {{"t2", SET_BRATS, "t2"}, {"t2", SET_MSLUB, "t2"}};
static const row_def table2_rows[] = {{"t1", SET_BRATS, "t2"}, {"t2", SET_BRATS, "t1"}, {"t1", SET_WMH, "flair"}};

// Our rows taken from each evaluation, in this order.
static const char *const pick[][2] = {{"paper", "per-slice"},       {"paper", "per-volume"}, {"paper", "pooled"},
                                      {"val-threshold", "per-volume"}, {"oracle", "per-volume"}};
enum { NPICK = sizeof pick / sizeof pick[0] };

static void modality_label(char *out, size_t n, const char *m) {
    snprintf(out, n, "%s", !strcmp(m, "flair") ? "FLAIR" : !strcmp(m, "t1") ? "T1" : "T2");
}

// One step of the experiment; `outdir` (may be NULL) is removed before a run.
static int exp_step(step_runner *r, const char *name, const arglist *a, const char *outdir, int force,
                    int *exit_code) {
    const char *outs[] = {outdir, NULL};
    step_spec s = {.name = name, .args = a, .outputs = outs, .force = force};
    return step_run(r, &s, exit_code, NULL);
}

// ---- reading an evaluation's report.csv ------------------------------------------------------
// The lines of `pick` from report.csv (eval/report.h); returns how many were found, -1 on a read error.
static int read_eval_csv(const char *path, report_line *rows) {
    int found = 0;
    for (int i = 0; i < NPICK; i++) {
        int k = report_read_line(path, pick[i][0], pick[i][1], &rows[i]);
        if (k < 0) return -1;
        if (!k) rows[i].protocol[0] = 0;
        found += k;
    }
    return found;
}

// ---- the experiment's rows ------------------------------------------------------------------
typedef struct exp_row {
    row_def def;
    const model_method *mm;
    int mask;             // sliding mask px; 0 for a whole-image method
    int model_index;      // into the experiment's models: method index * 2 + (train_mod == t2)
    char id[96];          // e.g. "ixi-t2_brats21-t2_m64", "vae_ixi-t2_brats21-t2"
    char model[48];       // "ixi-t2", "vae-ixi-t2"
    const char *name;     // the paper's name of the method, else its title
    char method[96];      // for people: "Ano-swinMAE (64x64)", "VAE (Baur et al. 2021b)"
    char train_data[32];  // "IXI T2"
    char test_data[48];   // "BraTS21 T2"
    paper_numbers paper;
    const char *paper_protocol;
    char paper_note[160];
    int status;           // 0 planned/ok, 1 skipped (no data), 2 failed
    char note[600];
    report_line ours[NPICK];
    int n_ours;
} exp_row;

static void csv_num(FILE *f, double v, int decimals) {
    fputc(',', f);
    csv_write_fixed(f, v, decimals);
}

static void html_str(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else if (*s == '"') fputs("&quot;", f);
        else fputc(*s, f);
    }
}

static const char *fmt(char *buf, size_t n, double v, int decimals, const char *undef) {
    if (!isfinite(v)) snprintf(buf, n, "%s", undef);
    else snprintf(buf, n, "%.*f", decimals, v);
    return buf;
}

// One display line (ours or the paper's) of the combined table.
typedef struct disp {
    const char *source;  // "anoswin" or "paper"
    const char *protocol, *aggregation;
    double dice_pct, dice_std_pct, auprc_pct, auroc_pct, params_m, s_per_slice;
    int n_subjects;
    const char *note;
} disp;

// The display lines of row `r`: ours (picked rows found) then the paper's. Returns the count.
static int row_lines(const exp_row *r, disp *out) {
    int n = 0;
    for (int i = 0; i < NPICK; i++) {
        const report_line *o = &r->ours[i];
        if (!o->protocol[0]) continue;
        out[n++] = (disp){"anoswin", o->protocol, o->aggregation, 100 * o->dice, 100 * o->dice_std, 100 * o->auprc,
                          100 * o->auroc, o->params / 1e6, o->s_per_slice, o->n_subjects, o->note};
    }
    if (isfinite(r->paper.dice))
        out[n++] = (disp){"paper", r->paper_protocol, "per-slice", r->paper.dice, NAN, r->paper.auprc, NAN,
                          r->paper.params_m, r->paper.s_per_slice, -1, r->paper_note};
    return n;
}

static const char *notes_text =
    "Protocols: `paper` = detect's post-processed mask (appendix A.1) scored correctly; `val-threshold` = "
    "one threshold on the anomaly map chosen on the validation subjects (RUN/data/*.csv, split val), applied "
    "to the test subjects; `oracle` = best Dice threshold chosen on the test set itself (OPTIMISTIC). "
    "Aggregations: per-slice = mean over slices with ground truth (what the reference code averaged), "
    "per-volume = mean over subjects, pooled = all voxels as one set. AUPRC/AUROC come from the continuous "
    "map (sklearn-exact) for every protocol. The paper's numbers come from the reference code's evaluation, "
    "which has known bugs (per-slice Dice over slices 75..94 with > 1024 tumour pixels, AUPRC computed on the "
    "binary mask with swapped arguments, uint8 residual wrap-around, transposed mask window, DropPath active "
    "at test time, image/label pairing by listing order): they are not exactly reproducible and are closest "
    "in spirit to our `paper` / per-slice line. Paper timings are per slice on an A100 GPU; ours on this "
    "machine's CPU threads.";
static const char *notes_baselines =
    " The baselines' paper numbers (VAE, f-AnoGAN, MAE, autoDDPM) come from the paper's authors running the "
    "existing implementations; the paper does not say how they were evaluated. Each method here is trained "
    "with its own recipe (its paper's or code's epochs, batch, learning rate; see each model's "
    "commands.txt line) and detected and evaluated exactly like the others.";

typedef struct exp_ctx {
    int table;
    const char *run;
    exp_row *rows;
    int nrows;
    const char *commands;  // RUN/commands.txt
    char notes[2048];      // notes_text (+ notes_baselines when a baseline is in the table)
} exp_ctx;

static void write_md(FILE *f, const exp_ctx *x) {
    fprintf(f, "# anoswin experiment: Table %d\n\n", x->table);
    fprintf(f, "Dice, AUPRC, AUROC in %%. Commands: `commands.txt` (each step can be rerun by hand).\n\n");
    fprintf(f, "| method | train data | test data | source | protocol | aggregation | Dice | AUPRC | AUROC | "
               "parameters (M) | s/slice | subjects | report |\n");
    fprintf(f, "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    char a[32], b[32], c[32], d[32], e[32], g[32];
    for (int i = 0; i < x->nrows; i++) {
        const exp_row *r = &x->rows[i];
        disp L[NPICK + 1];
        int n = row_lines(r, L);
        const char *method = r->method;
        char ours_link[256];
        snprintf(ours_link, sizeof ours_link, "[%s](eval/%s/report.html)", r->id, r->id);
        const char *link[2] = {"", ours_link};
        for (int k = 0; k < n; k++) {
            char dice[80];
            if (isfinite(L[k].dice_std_pct))
                snprintf(dice, sizeof dice, "%s ± %s", fmt(a, sizeof a, L[k].dice_pct, 2, "n/a"),
                         fmt(b, sizeof b, L[k].dice_std_pct, 2, "n/a"));
            else fmt(dice, sizeof dice, L[k].dice_pct, 2, "n/a");
            char subj[16];
            if (L[k].n_subjects >= 0) snprintf(subj, sizeof subj, "%d", L[k].n_subjects);
            else snprintf(subj, sizeof subj, "-");
            fprintf(f, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", method, r->train_data,
                    r->test_data, L[k].source, L[k].protocol, L[k].aggregation, dice,
                    fmt(c, sizeof c, L[k].auprc_pct, 2, "n/a"), fmt(d, sizeof d, L[k].auroc_pct, 2, "n/a"),
                    fmt(e, sizeof e, L[k].params_m, 2, "n/a"), fmt(g, sizeof g, L[k].s_per_slice, 3, "n/a"), subj,
                    link[!strcmp(L[k].source, "anoswin")]);
        }
        if (r->status)
            fprintf(f, "| %s | %s | %s | anoswin | %s (see notes) | | | | | | | | |\n", method, r->train_data,
                    r->test_data, r->status == 1 ? "SKIPPED" : "FAILED");
    }
    fprintf(f, "\n## Notes\n\n");
    for (int i = 0; i < x->nrows; i++)
        if (x->rows[i].note[0]) fprintf(f, "- %s: %s\n", x->rows[i].id, x->rows[i].note);
    fprintf(f, "\n%s\n", x->notes);
}

static void write_csv(FILE *f, const exp_ctx *x) {
    fputs("table,row,method,train_data,test_data,source,protocol,aggregation,dice_pct,dice_std_pct,auprc_pct,"
          "auroc_pct,parameters_m,s_per_slice,n_subjects,status,report,note\n",
          f);
    for (int i = 0; i < x->nrows; i++) {
        const exp_row *r = &x->rows[i];
        disp L[NPICK + 1];
        int n = row_lines(r, L);
        const char *method = r->method;
        char report[256];
        snprintf(report, sizeof report, "eval/%s/report.html", r->id);
        const char *status = r->status == 0 ? "ok" : r->status == 1 ? "skipped" : "failed";
        if (r->status) {  // one line that says why
            fprintf(f, "%d,%s,", x->table, r->id);
            csv_write_field(f, method);
            fprintf(f, ",%s,%s,anoswin,,,,,,,,,,%s,,", r->train_data, r->test_data, status);
            csv_write_field(f, r->note);
            fputc('\n', f);
        }
        for (int k = 0; k < n; k++) {
            if (r->status && !strcmp(L[k].source, "anoswin")) continue;
            fprintf(f, "%d,%s,", x->table, r->id);
            csv_write_field(f, method);
            fprintf(f, ",%s,%s,%s,", r->train_data, r->test_data, L[k].source);
            csv_write_field(f, L[k].protocol);
            fprintf(f, ",%s", L[k].aggregation);
            csv_num(f, L[k].dice_pct, 4);
            csv_num(f, L[k].dice_std_pct, 4);
            csv_num(f, L[k].auprc_pct, 4);
            csv_num(f, L[k].auroc_pct, 4);
            csv_num(f, L[k].params_m, 4);
            csv_num(f, L[k].s_per_slice, 4);
            if (L[k].n_subjects >= 0) fprintf(f, ",%d", L[k].n_subjects);
            else fputc(',', f);
            int ours = !strcmp(L[k].source, "anoswin");
            fprintf(f, ",%s,%s,", r->status == 0 || !ours ? "ok" : status, ours ? report : "");
            csv_write_field(f, L[k].note);
            fputc('\n', f);
        }
    }
}

static void write_json(FILE *f, const exp_ctx *x) {
    fprintf(f, "{\n  \"table\": %d,\n  \"run\": ", x->table);
    json_write_string(f, x->run);
    fputs(",\n  \"commands\": \"commands.txt\",\n  \"notes\": ", f);
    json_write_string(f, x->notes);
    fputs(",\n  \"paper_protocol\": ", f);
    json_write_string(f, paper_protocol("swinmae"));
    fputs(",\n  \"rows\": [\n", f);
    for (int i = 0; i < x->nrows; i++) {
        const exp_row *r = &x->rows[i];
        fputs("    {\"id\": ", f);
        json_write_string(f, r->id);
        fputs(", \"method\": ", f);
        json_write_string(f, r->method);
        fputs(", \"method_tag\": ", f);
        json_write_string(f, r->mm->name);
        if (r->mask) fprintf(f, ", \"mask_size\": %d, \"model\": ", r->mask);
        else fputs(", \"mask_size\": null, \"model\": ", f);
        json_write_string(f, r->model);
        fputs(", \"train_data\": ", f);
        json_write_string(f, r->train_data);
        fputs(", \"test_data\": ", f);
        json_write_string(f, r->test_data);
        fprintf(f, ", \"preset\": \"%s\", \"status\": \"%s\", \"note\": ", set_preset[r->def.set],
                r->status == 0 ? "ok" : r->status == 1 ? "skipped" : "failed");
        json_write_string(f, r->note);
        if (r->status == 0) fprintf(f, ", \"report\": \"eval/%s/report.html\", \"report_json\": \"eval/%s/report.json\"",
                                    r->id, r->id);
        fputs(",\n     \"paper\": ", f);
        if (isfinite(r->paper.dice)) {
            fputs("{\"dice_pct\": ", f);
            json_write_number(f, r->paper.dice);
            fputs(", \"auprc_pct\": ", f);
            json_write_number(f, r->paper.auprc);
            fputs(", \"parameters_m\": ", f);
            json_write_number(f, r->paper.params_m);
            fputs(", \"s_per_slice\": ", f);
            json_write_number(f, r->paper.s_per_slice);
            fputs(", \"protocol\": ", f);
            json_write_string(f, r->paper_protocol);
            fputc('}', f);
        } else fputs("null", f);
        fputs(",\n     \"ours\": [", f);
        int first = 1;
        for (int k = 0; k < NPICK; k++) {
            const report_line *o = &r->ours[k];
            if (!o->protocol[0]) continue;
            fprintf(f, "%s\n       {\"protocol\": \"%s\", \"aggregation\": \"%s\", \"dice_pct\": ", first ? "" : ",",
                    o->protocol, o->aggregation);
            first = 0;
            json_write_number(f, 100 * o->dice);
            fputs(", \"dice_std_pct\": ", f);
            json_write_number(f, 100 * o->dice_std);
            fputs(", \"auprc_pct\": ", f);
            json_write_number(f, 100 * o->auprc);
            fputs(", \"auroc_pct\": ", f);
            json_write_number(f, 100 * o->auroc);
            fputs(", \"parameters_m\": ", f);
            json_write_number(f, o->params / 1e6);
            fputs(", \"s_per_slice\": ", f);
            json_write_number(f, o->s_per_slice);
            fprintf(f, ", \"n_subjects\": %d, \"note\": ", o->n_subjects);
            json_write_string(f, o->note);
            fputc('}', f);
        }
        fprintf(f, "]}%s\n", i + 1 < x->nrows ? "," : "");
    }
    fputs("  ]\n}\n", f);
}

static void write_html(FILE *f, const exp_ctx *x) {
    fprintf(f, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>anoswin experiment: Table %d</title>\n"
               "<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
               "td,th{border:1px solid #999;padding:3px 7px;text-align:right}td.l,th{text-align:left}"
               "tr.paper{background:#f3f3f3;font-style:italic}tr.skip{color:#a00}</style></head><body>\n",
            x->table);
    fprintf(f, "<h1>anoswin experiment: Table %d</h1>\n<p>Dice, AUPRC, AUROC in %%. Every step's command line: "
               "<a href=\"commands.txt\">commands.txt</a>.</p>\n<table>\n<tr><th>method</th><th>train data</th>"
               "<th>test data</th><th>source</th><th>protocol</th><th>aggregation</th><th>Dice</th><th>AUPRC</th>"
               "<th>AUROC</th><th>parameters (M)</th><th>s/slice</th><th>subjects</th><th>report</th></tr>\n",
            x->table);
    char a[32], b[32], c[32], d[32], e[32], g[32];
    for (int i = 0; i < x->nrows; i++) {
        const exp_row *r = &x->rows[i];
        disp L[NPICK + 1];
        int n = row_lines(r, L);
        if (r->status) {
            fputs("<tr class=\"skip\"><td class=\"l\">", f);
            html_str(f, r->method);
            fprintf(f, "</td><td class=\"l\">%s</td><td class=\"l\">%s</td><td class=\"l\">anoswin</td>"
                       "<td class=\"l\" colspan=\"9\">%s: ",
                    r->train_data, r->test_data, r->status == 1 ? "skipped" : "failed");
            html_str(f, r->note);
            fputs("</td></tr>\n", f);
        }
        for (int k = 0; k < n; k++) {
            int ours = !strcmp(L[k].source, "anoswin");
            if (r->status && ours) continue;
            fprintf(f, "<tr%s><td class=\"l\">", ours ? "" : " class=\"paper\"");
            html_str(f, r->method);
            fprintf(f, "</td><td class=\"l\">%s</td><td class=\"l\">%s</td><td class=\"l\">%s</td><td class=\"l\">",
                    r->train_data, r->test_data, L[k].source);
            html_str(f, L[k].protocol);
            fprintf(f, "</td><td class=\"l\">%s</td><td>%s", L[k].aggregation, fmt(a, sizeof a, L[k].dice_pct, 2, "n/a"));
            if (isfinite(L[k].dice_std_pct)) fprintf(f, " ± %s", fmt(b, sizeof b, L[k].dice_std_pct, 2, "n/a"));
            fprintf(f, "</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>", fmt(c, sizeof c, L[k].auprc_pct, 2, "n/a"),
                    fmt(d, sizeof d, L[k].auroc_pct, 2, "n/a"), fmt(e, sizeof e, L[k].params_m, 2, "n/a"),
                    fmt(g, sizeof g, L[k].s_per_slice, 3, "n/a"));
            if (L[k].n_subjects >= 0) fprintf(f, "%d", L[k].n_subjects);
            fputs("</td><td class=\"l\">", f);
            if (ours) fprintf(f, "<a href=\"eval/%s/report.html\">%s</a>", r->id, r->id);
            fputs("</td></tr>\n", f);
        }
    }
    fputs("</table>\n<h2>Notes</h2>\n<ul>\n", f);
    for (int i = 0; i < x->nrows; i++)
        if (x->rows[i].note[0]) {
            fprintf(f, "<li>%s: ", x->rows[i].id);
            html_str(f, x->rows[i].note);
            fputs("</li>\n", f);
        }
    fputs("</ul>\n<p>", f);
    html_str(f, x->notes);
    fputs("</p>\n</body></html>\n", f);
}

typedef void (*exp_writer)(FILE *, const exp_ctx *);

static int write_report(const exp_ctx *x, const char *name, exp_writer w) {
    char path[4096];
    fs_join(path, sizeof path, x->run, name);
    fs_file af;
    if (fs_file_open(&af, path) != 0) return -1;
    w(af.f, x);
    return fs_file_commit(&af);
}

// ---- test-set manifests ------------------------------------------------------------------------
// Writes RUN/data/<key>-<mod>.csv: the labelled subjects of the data set, a seeded share of them
// as split "val", the rest "test". *n_val gets the validation count. Returns 0, or -1 (recorded).
static int write_test_manifest(const char *dir, const char *mod, double val_share, uint64_t seed, const char *path,
                               int *n_val, int *n_total) {
    dataset d = {0};
    if (dataset_open(&d, dir, mod) != 0) return -1;
    int n = 0;
    for (int i = 0; i < d.n; i++)  // keep the labelled subjects (order kept: sorted by id)
        if (*d.subjects[i].label) d.subjects[n++] = d.subjects[i];
        else {
            subject *s = &d.subjects[i];
            free(s->id), free(s->image), free(s->label), free(s->mask), free(s->split);
        }
    d.n = n;
    if (n == 0) {
        dataset_free(&d);
        return as_fail("%s: no %s scan with a lesion label", dir, mod);
    }
    int nv = (int)lround(val_share * n);
    if (val_share > 0 && n >= 2 && nv < 1) nv = 1;
    if (nv >= n) nv = n - 1;
    int *perm = as_malloc((size_t)n * sizeof *perm);
    rng g;
    rng_seed_stream(&g, seed, 0x7e57);
    rng_permutation(&g, perm, n);
    for (int i = 0; i < n; i++) {
        subject *s = &d.subjects[perm[i]];
        free(s->split);
        s->split = as_strdup(i < nv ? "val" : "test");
    }
    free(perm);
    int rc = dataset_write_manifest(&d, path);
    dataset_free(&d);
    *n_val = nv;
    *n_total = n;
    return rc;
}

// The config `text` of method mm as train's --config takes it (*out; NULL: the method's default):
// a preset name becomes the preset's text, so that commands.txt holds what ran. Text (not a file)
// is checked with the method's parser now, so that a typo stops the run before any training.
static int method_config(const model_method *mm, const char *text, const char **out) {
    *out = text;
    if (!text || (fs_exists(text) && !fs_is_dir(text))) return 0;
    const char *preset = model_preset_find(mm, text);
    if (preset) *out = preset;
    else if (!strchr(text, '=') && !strchr(text, '{')) {
        char names[256];
        model_preset_names(mm, names, sizeof names);
        return as_fail("--config %.200s: neither a file, a key=value list nor a preset of %s (presets: %s)", text,
                       mm->name, names[0] ? names : "none");
    }
    char cfg[4096], what[96];
    snprintf(what, sizeof what, "--config of %s", mm->name);
    return mm->config_parse(NULL, *out, cfg, sizeof cfg, NULL, what);
}

// The train command of model `name` (RUN/models/<name>) of method mm on IXI <mod> scans: the
// method's recipe where the user gave no --epochs/--batch.
static void train_args(arglist *a, const experiment_options *o, const model_method *mm, const char *config,
                       const char *ixi, const char *mod, const char *mdir) {
    static const model_recipe none = {0};
    const model_recipe *rc = mm->recipe ? mm->recipe : &none;
    int rbatch = !strcmp(mod, "t1") && rc->batch_t1 > 0 ? rc->batch_t1 : rc->batch;
    arg_add(a, "train");
    if (mm != model_method_default()) {  // the default's lines stay as they were (--reuse of older runs)
        arg_add(a, "--method");
        arg_add(a, "%s", mm->name);
    }
    arg_add(a, "--data");
    arg_add(a, "%s", ixi);
    arg_add(a, "--modality");
    arg_add(a, "%s", mod);
    arg_add(a, "--out");
    arg_add(a, "%s", mdir);
    arg_add(a, "--epochs");
    arg_add(a, "%ld", o->epochs > 0 ? o->epochs : rc->epochs > 0 ? rc->epochs : 400);
    arg_add(a, "--batch");
    arg_add(a, "%ld", o->batch > 0 ? o->batch : rbatch > 0 ? rbatch : 10);
    if (rc->lr > 0) {
        arg_add(a, "--lr");
        arg_add(a, "%g", rc->lr);
    }
    if (rc->constant_lr) {
        arg_add(a, "--warmup-epochs");
        arg_add(a, "0");
        arg_add(a, "--min-lr");
        arg_add(a, "%g", rc->lr > 0 ? rc->lr : 1e-3);
    }
    arg_add(a, "--seed");
    arg_add(a, "%ld", o->seed);
    if (config) {
        arg_add(a, "--config");
        arg_add(a, "%s", config);
    }
    if (o->train_slices[0] >= 0) {
        arg_add(a, "--z-first");
        arg_add(a, "%d", o->train_slices[0]);
        arg_add(a, "--z-last");
        arg_add(a, "%d", o->train_slices[1]);
    }
    if (o->max_steps > 0) {
        arg_add(a, "--max-steps");
        arg_add(a, "%ld", o->max_steps);
    }
    if (o->threads > 0) {  // not part of the model's identity, but train records it for exact resume
        arg_add(a, "--threads");
        arg_add(a, "%ld", o->threads);
    }
}

int experiment_run(const experiment_options *o) {
    const int table = o->table, nmasks = o->nmasks, reuse = o->reuse;
    const int te_lo = o->test_slices[0], te_hi = o->test_slices[1];
    const char *ixi = o->ixi, *const *sets = o->sets, *out = o->out;
    const int *masks = o->masks;
    const long max_steps = o->max_steps, boot = o->bootstrap, seed = o->seed, threads = o->threads;
    const double val_share = o->val_share;

    // The methods and their configs, checked before anything runs.
    const int nmethods = o->nmethods > 0 ? o->nmethods : 1;
    const model_method *mms[EXP_MAX_METHODS];
    const char *cfgs[EXP_MAX_METHODS];
    for (int i = 0; i < nmethods; i++) {
        mms[i] = o->nmethods > 0 ? model_method_get(o->methods[i], "--methods") : model_method_default();
        if (!mms[i] || method_config(mms[i], o->configs[i], &cfgs[i])) return -1;
        for (int j = 0; j < i; j++)
            if (mms[j] == mms[i]) return as_fail("--methods: %s is listed twice", mms[i]->name);
    }

    // Absolute paths, so that commands.txt works from anywhere.
    char ixi_abs[PATH_MAX], set_abs[NSETS][PATH_MAX], run[PATH_MAX];
    if (!realpath(ixi, ixi_abs)) {
        return as_fail("%s: %s", ixi, strerror(errno));
    }
    for (int s = 0; s < NSETS; s++)
        if (sets[s] && !realpath(sets[s], set_abs[s])) {
            return as_fail("%s: %s", sets[s], strerror(errno));
        }
    if (fs_mkdirs(out) != 0 || !realpath(out, run)) {
        if (!as_error()[0]) as_fail("%s: %s", out, strerror(errno));
        return -1;
    }

    // The rows, and which are runnable: per method, per mask size (masking methods), per row of
    // the table.
    const row_def *defs = table == 1 ? table1_rows : table2_rows;
    int ndefs = table == 1 ? 2 : 3;
    exp_row *rows = as_calloc((size_t)(nmethods * ndefs * nmasks), sizeof *rows);
    int nrows = 0, baselines = 0;
    for (int mi = 0; mi < nmethods; mi++) {
        const model_method *mm = mms[mi];
        const char *pre = mm == model_method_default() ? "" : mm->name, *sep = *pre ? "-" : "";
        const char *pname = paper_method_name(mm->name), *name = pname ? pname : mm->title;
        for (int m = 0; m < (mm->whole_image ? 1 : nmasks); m++)
            for (int i = 0; i < ndefs; i++) {
                exp_row *r = &rows[nrows++];
                r->def = defs[i];
                r->mm = mm;
                r->mask = mm->whole_image ? 0 : masks[m];
                r->name = name;
                r->model_index = 2 * mi + !strcmp(defs[i].train_mod, "t2");
                char tm[8], sm[8], mask_id[16] = "";
                modality_label(tm, sizeof tm, defs[i].train_mod);
                modality_label(sm, sizeof sm, defs[i].test_mod);
                if (r->mask) snprintf(mask_id, sizeof mask_id, "_m%d", r->mask);
                snprintf(r->model, sizeof r->model, "%s%sixi-%s", pre, sep, defs[i].train_mod);
                snprintf(r->id, sizeof r->id, "%s%sixi-%s_%s-%s%s", pre, *pre ? "_" : "", defs[i].train_mod,
                         set_key[defs[i].set], defs[i].test_mod, mask_id);
                if (r->mask) snprintf(r->method, sizeof r->method, "%s (%dx%d)", name, r->mask, r->mask);
                else snprintf(r->method, sizeof r->method, "%s", name);
                snprintf(r->train_data, sizeof r->train_data, "IXI %s", tm);
                snprintf(r->test_data, sizeof r->test_data, "%s %s", set_name[defs[i].set], sm);
                r->paper = paper_lookup(mm->name, table, defs[i].train_mod, set_key[defs[i].set], defs[i].test_mod,
                                        r->mask);
                r->paper_protocol = paper_protocol(mm->name);
                snprintf(r->paper_note, sizeof r->paper_note, "%s as published (A100 GPU)", name);
                if (*pre && isfinite(r->paper.dice)) baselines = 1;
                if (!sets[defs[i].set]) {
                    r->status = 1;
                    snprintf(r->note, sizeof r->note, "%s not given (%s DIR): row skipped", set_name[defs[i].set],
                             set_opt[defs[i].set]);
                }
            }
    }

    int rc = -1, failed = 0, handlers = 0;
    // Steps match apart from --threads; a step's stdout is kept in RUN/logs/; no chaining: each
    // step is told whether its inputs were redone.
    step_runner R = {.dir = run, .who = "experiment", .reuse = reuse, .any_threads = 1, .keep_output = 1,
                     .resume_hint = "rerun the same command with --reuse to continue (an interrupted training "
                                    "resumes where it stopped)"};
    char path[4096], dir[4096], cmds[4096];
    fs_join(cmds, sizeof cmds, run, "commands.txt");
    exp_ctx X = {table, run, rows, nrows, cmds, ""};
    snprintf(X.notes, sizeof X.notes, "%s%s", notes_text, baselines ? notes_baselines : "");

    // Test manifests first: a given data set that cannot be read stops us before any training.
    char manifest[NSETS][3][4096];  // [set][modality index]
    static const char *const mods[3] = {"t1", "t2", "flair"};
    int n_val[NSETS][3] = {{0}}, n_tot[NSETS][3] = {{0}}, have[NSETS][3] = {{0}};
    fs_join(dir, sizeof dir, run, "data");
    if (fs_mkdirs(dir) != 0) goto done;
    for (int i = 0; i < nrows; i++) {
        exp_row *r = &rows[i];
        if (r->status) continue;
        int s = r->def.set, mi = !strcmp(r->def.test_mod, "t1") ? 0 : !strcmp(r->def.test_mod, "t2") ? 1 : 2;
        if (!have[s][mi]) {
            char name[64];
            snprintf(name, sizeof name, "%s-%s.csv", set_key[s], mods[mi]);
            fs_join(manifest[s][mi], sizeof manifest[s][mi], dir, name);
            if (write_test_manifest(set_abs[s], mods[mi], val_share, (uint64_t)seed, manifest[s][mi], &n_val[s][mi],
                                    &n_tot[s][mi]) != 0)
                goto done;
            have[s][mi] = 1;
            fprintf(stderr, "experiment: %s %s: %d labelled subjects (%d validation, %d test) -> %s\n", set_name[s],
                    mods[mi], n_tot[s][mi], n_val[s][mi], n_tot[s][mi] - n_val[s][mi], manifest[s][mi]);
        }
    }
    // Check the IXI scans of each needed modality now too (train would fail later otherwise).
    enum { NMODELS = 2 * EXP_MAX_METHODS };  // [method index * 2 + (t2)]
    int need_model[NMODELS] = {0}, need_mod[2] = {0, 0}, any = 0;
    for (int i = 0; i < nrows; i++)
        if (!rows[i].status) need_model[rows[i].model_index] = need_mod[rows[i].model_index % 2] = any = 1;
    for (int k = 0; k < 2; k++)
        if (need_mod[k]) {
            dataset d = {0};
            if (dataset_open(&d, ixi_abs, k ? "t2" : "t1") != 0) goto done;
            dataset_free(&d);
        }
    if (!any) {
        as_fail("%s: no row of table %d can run: give the test data sets (--brats, --mslub, --wmh)", run, table);
        goto done;
    }

    arg_catch_signals(1);
    handlers = 1;
    R.log = fopen(cmds, "w");
    if (!R.log) {
        as_fail("%s: %s", cmds, strerror(errno));
        goto done;
    }
    {
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        exe[n > 0 ? n : 0] = 0;
        fprintf(R.log, "# anoswin experiment table%d: every step, in order (anoswin = %s).\n"
                       "# The test manifests in %s/data/ were written by the experiment itself (val/test split, seed %ld).\n\n",
                table, exe, run, seed);
        fflush(R.log);
    }

    // Train (or reuse) each needed model.
    int model_redone[NMODELS] = {0}, model_ok[NMODELS] = {0};
    char model_err[NMODELS][600];
    for (int k = 0; k < NMODELS; k++) {
        model_err[k][0] = 0;
        if (!need_model[k]) continue;
        const model_method *mm = mms[k / 2];
        const char *mod = k % 2 ? "t2" : "t1", *pre = mm == model_method_default() ? "" : mm->name;
        char mdir[4096], name[48], last[4200], stamp[4200], started[4200];
        snprintf(name, sizeof name, "%s%sixi-%s", pre, *pre ? "-" : "", mod);
        fs_join(dir, sizeof dir, run, "models");
        fs_join(mdir, sizeof mdir, dir, name);
        fs_join(last, sizeof last, mdir, "last.safetensors");
        arglist a = {0};
        train_args(&a, o, mm, cfgs[k / 2], ixi_abs, mod, mdir);
        char line[16384], old[16384], step[64];
        arg_line(&a, line, sizeof line);
        snprintf(step, sizeof step, "train-%s", name);
        step_stamp_path(stamp, sizeof stamp, &R, step, "txt");
        step_stamp_path(started, sizeof started, &R, step, "started");
        step_first_line(stamp, old, sizeof old);
        int st, code = 0;
        if (fs_exists(mdir) && !reuse) {
            arg_free(&a);
            as_fail("%s: holds a model from an earlier run: pass --reuse to use it (same options), or choose "
                    "another --out",
                    mdir);
            goto done;
        }
        if (reuse && fs_exists(stamp) && fs_exists(last)) {
            if (!step_same_command(old, line, 1)) {
                arg_free(&a);
                as_fail("%s: was trained with other options (%s), not (%s): remove it or choose another --out", mdir,
                        old, line);
                goto done;
            }
            st = exp_step(&R, step, &a, NULL, 0, &code);  // matching stamp: reused
        } else if (reuse && fs_exists(mdir)) {
            // An interrupted training of the same options continues where it stopped.
            char begun[16384];
            step_first_line(started, begun, sizeof begun);
            char resume_ckpt[4200];
            fs_join(resume_ckpt, sizeof resume_ckpt, mdir, "resume.safetensors");
            if (!step_same_command(begun, line, 1) || !fs_exists(resume_ckpt)) {
                arg_free(&a);
                as_fail("%s: holds an unfinished training that was not started with these options (or cannot be "
                        "resumed): remove it or choose another --out",
                        mdir);
                goto done;
            }
            arglist ra = {0};
            arg_add(&ra, "train");
            arg_add(&ra, "--resume");
            arg_add(&ra, "--out");
            arg_add(&ra, "%s", mdir);
            if (threads > 0) {
                arg_add(&ra, "--threads");
                arg_add(&ra, "%ld", threads);
            }
            if (max_steps > 0) {
                arg_add(&ra, "--max-steps");
                arg_add(&ra, "%ld", max_steps);
            }
            char step2[80];
            snprintf(step2, sizeof step2, "%s-resume", step);
            fprintf(R.log, "# %s was started earlier with:\n# %s\n", step, line);
            st = exp_step(&R, step2, &ra, NULL, 1, &code);
            arg_free(&ra);
            if (st == STEP_RAN) {  // the model is now the finished training of `line`
                char text[16400];
                int m = snprintf(text, sizeof text, "%s\n", line);
                if (fs_write_all(stamp, text, (size_t)m) != 0) goto done;
                remove(started);
            }
        } else {
            st = exp_step(&R, step, &a, NULL, 1, &code);
        }
        arg_free(&a);
        if (st < 0) goto done;
        if (st == STEP_FAILED) {
            snprintf(model_err[k], sizeof model_err[k], "%s", as_error());
            fprintf(stderr, "anoswin: %s\n", as_error());
            failed = 1;
            continue;
        }
        if (!fs_exists(last)) {
            snprintf(model_err[k], sizeof model_err[k], "%.500s: training finished without a checkpoint", last);
            failed = 1;
            continue;
        }
        model_ok[k] = 1;
        model_redone[k] = st == STEP_RAN;
    }

    // Detect and evaluate each row.
    for (int i = 0; i < nrows; i++) {
        exp_row *r = &rows[i];
        if (r->status) continue;
        int k = r->model_index;
        if (!model_ok[k]) {
            r->status = 2;
            snprintf(r->note, sizeof r->note, "model %s not available: %s", r->model, model_err[k]);
            continue;
        }
        int s = r->def.set, mi = !strcmp(r->def.test_mod, "t1") ? 0 : !strcmp(r->def.test_mod, "t2") ? 1 : 2;
        char ckpt[4200], ddir[4096], edir[4096], logcsv[4200], mdir[4096];
        fs_join(dir, sizeof dir, run, "models");
        fs_join(mdir, sizeof mdir, dir, r->model);
        fs_join(ckpt, sizeof ckpt, mdir, "last.safetensors");
        fs_join(logcsv, sizeof logcsv, mdir, "log.csv");
        fs_join(dir, sizeof dir, run, "detect");
        fs_join(ddir, sizeof ddir, dir, r->id);
        fs_join(dir, sizeof dir, run, "eval");
        fs_join(edir, sizeof edir, dir, r->id);

        arglist a = {0};
        arg_add(&a, "detect");
        arg_add(&a, "--checkpoint");
        arg_add(&a, "%s", ckpt);
        arg_add(&a, "--out");
        arg_add(&a, "%s", ddir);
        arg_add(&a, "--preset");
        arg_add(&a, "%s", set_preset[s]);
        if (r->mask) {  // whole-image methods read no mask
            arg_add(&a, "--mask-size");
            arg_add(&a, "%d", r->mask);
        }
        if (te_lo >= 0) {
            arg_add(&a, "--z-first");
            arg_add(&a, "%d", te_lo);
            arg_add(&a, "--z-last");
            arg_add(&a, "%d", te_hi);
        }
        if (threads > 0) {
            arg_add(&a, "--threads");
            arg_add(&a, "%ld", threads);
        }
        arg_add(&a, "%s", manifest[s][mi]);
        char step[160];
        snprintf(step, sizeof step, "detect-%s", r->id);
        int code, st = exp_step(&R, step, &a, ddir, model_redone[k], &code);
        arg_free(&a);
        if (st < 0) goto done;
        if (st == STEP_FAILED) {  // detect writes the subjects it could do; exit 1 names the others
            r->status = 2;
            snprintf(r->note, sizeof r->note, "%s", as_error());
            fprintf(stderr, "anoswin: %s\n", as_error());
            failed = 1;
            continue;
        }
        int detect_redone = st == STEP_RAN;

        char method[128];
        if (r->mask) snprintf(method, sizeof method, "%s (%dx%d, anoswin)", r->name, r->mask, r->mask);
        else snprintf(method, sizeof method, "%s, anoswin", r->name);
        arg_add(&a, "eval");
        arg_add(&a, "--pred");
        arg_add(&a, "%s", ddir);
        arg_add(&a, "--data");
        arg_add(&a, "%s", manifest[s][mi]);
        if (n_val[s][mi] > 0) {
            arg_add(&a, "--val-split");
            arg_add(&a, "val");
        }
        arg_add(&a, "--method");
        arg_add(&a, "%s", method);
        arg_add(&a, "--dataset");
        arg_add(&a, "%s", r->test_data);
        arg_add(&a, "--out");
        arg_add(&a, "%s", edir);
        arg_add(&a, "--log");
        arg_add(&a, "%s", logcsv);
        arg_add(&a, "--seed");
        arg_add(&a, "%ld", seed);
        if (boot >= 0) {
            arg_add(&a, "--bootstrap");
            arg_add(&a, "%ld", boot);
        }
        snprintf(step, sizeof step, "eval-%s", r->id);
        st = exp_step(&R, step, &a, edir, detect_redone, &code);
        arg_free(&a);
        if (st < 0) goto done;
        if (st == STEP_FAILED) {
            r->status = 2;
            snprintf(r->note, sizeof r->note, "%s", as_error());
            fprintf(stderr, "anoswin: %s\n", as_error());
            failed = 1;
            continue;
        }
        fs_join(path, sizeof path, edir, "report.csv");
        int found = read_eval_csv(path, r->ours);
        if (found < 0) {
            r->status = 2;
            snprintf(r->note, sizeof r->note, "%s", as_error());
            failed = 1;
            continue;
        }
        r->n_ours = found;
        if (n_val[s][mi] == 0)
            snprintf(r->note, sizeof r->note, "no validation subjects (%d labelled): no val-threshold line",
                     n_tot[s][mi]);
    }

    if (write_report(&X, "report.md", write_md) || write_report(&X, "report.csv", write_csv) ||
        write_report(&X, "report.json", write_json) || write_report(&X, "report.html", write_html))
        goto done;
    write_md(stdout, &X);
    fprintf(stderr, "\nexperiment: %d step(s) ran, %d reused; report in %s/report.{md,csv,json,html}; commands in %s\n",
            R.nrun, R.nreused, run, cmds);
    rc = failed ? 1 : 0;
    if (failed) fprintf(stderr, "anoswin experiment: some steps failed (see the report's notes)\n");
    free(rows);
    fclose(R.log);
    arg_catch_signals(0);
    return rc;
done:
    if (R.log) fclose(R.log);
    if (handlers) arg_catch_signals(0);
    free(rows);
    return -1;
}
