// Evaluation of `detect` outputs against ground truth under several protocols, each labelled:
//
//   paper          the post-processed binary mask detect wrote (mask.nii.gz; appendix A.1).
//   val-threshold  one threshold on the continuous anomaly map, chosen by the best pooled Dice on
//                  the validation subjects, then applied unchanged to the test subjects.
//   oracle         the threshold with the best pooled Dice on the test subjects themselves
//                  (optimistic: the test labels choose it; the field's "best possible Dice").
//   healthy-fpr-N% thresholds giving N = 1/5/10% false-positive rate on held-out healthy scans.
//
// and aggregations, each labelled: per-volume (mean ± std over subjects, 95% bootstrap CI),
// pooled (all evaluated voxels of all test subjects as one set), per-slice (mean over axial
// slices that contain ground truth: what the reference code averaged).
// AUPRC and AUROC are always computed from the continuous anomaly map (threshold-free), so they
// are the same for every protocol; the reference code's AUPRC on the binary mask is not copied.
//
// Voxels evaluated: inside the brain mask (the subject's mask file, else image > 0) and inside
// the evaluated axial slices (RAS k range detect scored, from summary.json "slice_range", or
// given), on the input's native grid. Ground truth = label > 0.
#ifndef ANOSWIN_EVAL_EVAL_H
#define ANOSWIN_EVAL_EVAL_H

#include <stdint.h>

#include "eval/aggregate.h"
#include "eval/metrics.h"

enum eval_role { EVAL_TEST = 0, EVAL_VAL = 1, EVAL_HEALTHY = 2 };

typedef struct eval_input {
    const char *id;
    const char *pred_dir;  // holds anomaly_map.nii.gz, mask.nii.gz[, summary.json]
    const char *image;     // the scan (brain mask fallback: image > 0)
    const char *label;     // ground truth (NULL/"" = none: all negative; required for test/val)
    const char *mask;      // brain mask (NULL/"" = image > 0)
    int role;              // enum eval_role
} eval_input;

typedef struct eval_options {
    int slice_lo, slice_hi;  // RAS axial range to evaluate, inclusive; -1 = from summary.json, else all
    int bootstrap_reps;      // default 1000
    uint64_t seed;           // bootstrap seed (default 0)
    int verbose;             // progress on stderr
} eval_options;

void eval_options_default(eval_options *o);

// Per-subject results (test subjects; val/healthy ones only carry their table).
typedef struct eval_subject {
    char id[256];
    int role;
    int nx, ny, nz, slice_lo, slice_hi;  // native grid; evaluated RAS axial range
    int64_t voxels, gt_voxels;           // evaluated voxels, ground-truth voxels among them
    double seconds_per_slice;            // from summary.json, NAN when absent
    int64_t parameters;                  // from summary.json, -1 when absent
    int grow;                            // detect's post-processing growth (px), 0 when absent
    score_table table;                   // continuous map over the evaluated voxels
    confusion paper;                     // detect's mask
    lesion_counts paper_lesions;
    double auprc, auroc;                 // NAN when undefined
    confusion at_val;                    // at the val threshold (when there is one)
    lesion_counts val_lesions;
    confusion at_oracle;
    confusion at_fpr[3];
} eval_subject;

enum { EVAL_NFPR = 3 };
extern const double eval_fpr_levels[EVAL_NFPR];  // 0.01, 0.05, 0.10

// One line of the results table: a protocol under an aggregation.
typedef struct eval_row {
    char protocol[32];     // "paper", "val-threshold", "oracle", "healthy-fpr-5%"
    char aggregation[16];  // "per-volume", "pooled", "per-slice"
    double threshold;      // NAN for the paper's mask
    metric_summary dice, auprc, auroc, precision, recall;
    int64_t gt_lesions, gt_detected, pred_components, pred_false;  // -1 when not computed
    char note[160];
} eval_row;

typedef struct eval_result {
    eval_subject *subjects;  // test subjects, input order
    int n_subjects, n_val, n_healthy;
    eval_row *rows;
    int n_rows;
    double val_threshold, oracle_threshold;  // NAN when not available
    double fpr_threshold[EVAL_NFPR], fpr_achieved[EVAL_NFPR];  // NAN when no healthy scans
    double seconds_per_slice;                // mean over subjects that report it; NAN otherwise
    int64_t parameters;                      // -1 when unknown
    int grow;                                // largest growth (px) in the test subjects' masks
    int64_t slices;                          // evaluated axial slices over all test subjects
} eval_result;

// Runs the evaluation. At least one EVAL_TEST input is required. Errors (-1, as_error()): a
// missing prediction or ground-truth file, grids that do not match, a NaN map.
int eval_run(eval_result *res, const eval_input *inputs, int n, const eval_options *opt);
void eval_result_free(eval_result *res);

// Reads the RAS axial range, seconds per slice, parameter count and post-processing growth from a
// detect summary.json (keys "slice_range": [lo, hi], "seconds_per_slice", "parameters", "grow");
// absent keys leave the outputs unchanged. Missing file: returns 0 and changes nothing.
int eval_read_summary(const char *path, int *slice_lo, int *slice_hi, double *sec_per_slice, int64_t *params,
                      int *grow);

// Orientation of a native grid relative to RAS, from its affine: for voxel axis a, the world axis
// world_of_axis[a] (0 = R, 1 = A, 2 = S) it runs along and whether it runs the negative way
// (flip[a]); what reorientation to the closest canonical (RAS) orientation uses (data/reorient.h,
// nibabel's io_orientation), so slice indices agree with detect's slice pipeline.
void eval_ras_axes(const double affine[4][4], int world_of_axis[3], int flip[3]);
// The voxel axis running inferior -> superior (or reversed when *flip): RAS axial index of a
// voxel = flip ? n[axis]-1-idx[axis] : idx[axis].
int eval_axial_axis(const double affine[4][4], int *flip);

#endif
