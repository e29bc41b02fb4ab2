// Reports of an evaluation: RUN/report.md, report.csv, report.json and report.html (offline:
// no network, no external script or style; pictures are relative PNG files under RUN/panels/,
// the training loss curve is inline SVG), plus the Table-1-shaped summary for stdout.
// Undefined values print as "n/a" (markdown, text), null (JSON) and an empty cell (CSV).
// Every file is written atomically.
#ifndef ANOSWIN_EVAL_REPORT_H
#define ANOSWIN_EVAL_REPORT_H

#include <stdio.h>

#include "eval/eval.h"

typedef struct report_meta {
    const char *method;   // e.g. "Ano-swinMAE (anoswin)"
    const char *dataset;  // e.g. "BraTS21 T2"
    const char *pred_dir; // where the detect outputs were read (shown in the report)
    const char *log_csv;  // the training log (columns include step/epoch and *loss*); NULL = none
    const char *viewer_bundle;  // NiiVue's niivue.umd.js: copied to RUN/viewer/, and report.html gets the
                                // 3-D viewer (eval/viewer.h) for the subjects with viewer data; NULL = none
} report_meta;

// The Table-1-shaped text table (method, dataset, protocol, aggregation, Dice, AUPRC, AUROC,
// parameters, s/slice) and the protocol notes.
void report_print_table(FILE *f, const eval_result *res, const report_meta *meta);
// Machine-readable JSON of everything (rows, thresholds, per-subject values).
void report_print_json(FILE *f, const eval_result *res, const report_meta *meta);
// Writes report.md, report.csv, report.json, report.html into run_dir (created if needed).
// When run_dir/latent/latent.json exists (`anoswin latent --out RUN/latent`, or
// report_latent_import), report.md and report.html gain a "Latent space" section.
// The HTML shows RUN/panels/<id>_<kind>.png for the kinds that exist (see eval_panels_write).
int report_write(const eval_result *res, const report_meta *meta, const char *run_dir);

// One line of an evaluation's report.csv, as recipes read it back (experiment, profiles).
typedef struct report_line {
    char protocol[32], aggregation[16], note[200];
    double dice, dice_std, auprc, auroc, params, s_per_slice;
    int n_subjects;           // the evaluation's test subjects
    int n;                    // the subjects this line covers (with lesion voxels, for a mean)
    int n_lesion_free;        // test subjects without lesion voxels, and their false-positive ml
    double lesion_free_fp_ml; // (mean over them; NAN when none)
} report_line;
// The line of (protocol, aggregation) of report.csv at path into *out. Returns 1, 0 when the file
// has no such line, -1 (as_fail) when it cannot be read or lacks a column.
int report_read_line(const char *path, const char *protocol, const char *aggregation, report_line *out);

// Copies an `anoswin latent` output (latent.json, latent.png, latent.svg) from latent_dir to
// run_dir/latent/ for that section. Error naming latent_dir when it has no latent.json.
int report_latent_import(const char *latent_dir, const char *run_dir);
// Per-subject pictures for the HTML report: the axial slice with the most ground truth (the
// middle evaluated slice when there is none), as RUN/panels/<id>_{input,reconstruction,residual,
// map,mask,gt}.png. Missing inputs (e.g. no reconstruction.nii.gz) skip their picture.
// residual = |input - reconstruction| after scaling each to 0..1 by its 1st..99th percentile in
// the brain (the reconstruction may be in the model's normalised units). viewer = also the 3-D
// viewer's data, RUN/viewer/<id>.js (eval_viewer_write). The residual is drawn with COLORMAP_HOT
// over 0..its slice maximum, the map with COLORMAP_INFERNO over 0..its slice maximum in the brain;
// those maxima and the map's units are recorded in es for the report's colour bars.
int eval_panels_write(const eval_input *in, eval_subject *es, const char *run_dir, int viewer);

// Panel kinds in display order and their captions.
enum { REPORT_NPANELS = 6 };
extern const char *const report_panel_kind[REPORT_NPANELS];
extern const char *const report_panel_caption[REPORT_NPANELS];
// RUN/panels/<safe id>_<kind>.png (the id with characters outside [A-Za-z0-9._-] replaced by _).
void report_panel_path(char *out, size_t n, const char *run_dir, const char *id, const char *kind);
// The safe id of those file names.
void report_safe_id(char *out, size_t n, const char *id);
// s with <, >, & and " escaped for HTML text and attribute values.
void report_html_str(FILE *f, const char *s);

#endif
