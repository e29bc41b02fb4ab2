// Evaluation of `detect` outputs against ground truth under several protocols, each labelled:
//
//   paper          the post-processed binary mask detect wrote (mask.nii.gz; appendix A.1).
//   val-threshold  one threshold on the continuous anomaly map, chosen by the best pooled Dice on
//                  the validation subjects, then applied unchanged to the test subjects.
//   oracle         the threshold with the best pooled Dice on the test subjects themselves
//                  (optimistic: the test labels choose it; the field's "best possible Dice").
//   healthy-fpr-N% thresholds giving N = 1/5/10% false-positive rate on held-out healthy scans.
//
// and aggregations, each labelled: per-volume (mean ± std over the test subjects that have lesion
// voxels, 95% bootstrap CI), pooled (all evaluated voxels of all test subjects as one set),
// per-slice (mean over axial slices that contain ground truth: what the reference code averaged).
// A test subject without lesion voxels in the evaluated slices has no Dice worth averaging (an
// empty mask would score a perfect 1 for finding nothing), so it stays out of every per-volume
// mean and is reported on its own: how many there are and the false-positive volume (ml) each
// protocol predicts in them. Healthy scans (--healthy) report the false-positive volume of
// detect's mask the same way.
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
    int calibrated;                      // detect's mask came from the calibrated post-processing
    double cal_fpr;                      // its healthy-scan false-positive rate (NAN when absent)
    double voxel_ml;                     // volume of one voxel (pixdim product / 1000)
    int64_t pred_voxels;                 // evaluated voxels in detect's mask; -1 when there is no mask
    score_table table;                   // continuous map over the evaluated voxels
    confusion paper;                     // detect's mask (test subjects; healthy scans with a mask)
    lesion_counts paper_lesions;
    double auprc, auroc;                 // NAN when undefined
    confusion at_val;                    // at the val threshold (when there is one)
    lesion_counts val_lesions;
    confusion at_oracle;
    confusion at_fpr[3];
    // Set by eval_panels_write for the report's colour bars: the value shown at the top of the
    // residual and map panels' colour maps (0 at the bottom; 0 = panel not drawn), and the map's units.
    float panel_hi[2];
    char map_units[64];
} eval_subject;

enum { EVAL_NFPR = 3 };
extern const double eval_fpr_levels[EVAL_NFPR];  // 0.01, 0.05, 0.10

// False-positive volume over scans without lesion voxels (every predicted voxel is false): ml =
// predicted evaluated voxels * voxel volume / 1000, summed and averaged over the n scans.
typedef struct fp_volume {
    int n;                         // scans; 0 when none (mean/max NAN)
    double mean_ml, max_ml, total_ml;
} fp_volume;

// One line of the results table: a protocol under an aggregation.
typedef struct eval_row {
    char protocol[32];     // "paper", "val-threshold", "oracle", "healthy-fpr-5%"
    char aggregation[16];  // "per-volume", "pooled", "per-slice"
    double threshold;      // NAN for the paper's mask
    metric_summary dice, auprc, auroc, precision, recall;
    int64_t gt_lesions, gt_detected, pred_components, pred_false;  // -1 when not computed
    int n_subjects;        // subjects the metrics cover: per-volume and per-slice, those with lesion
                           // voxels; pooled, every test subject
    int n_slices;          // per-slice: slices averaged; -1 otherwise
    fp_volume lesion_free; // per-volume and pooled: false positives in the lesion-free test subjects
                           // under this row's mask or threshold; n = -1 for per-slice
    char note[160];
} eval_row;

typedef struct eval_result {
    eval_subject *subjects;  // test subjects, input order
    int n_subjects, n_val, n_healthy;
    int n_lesion, n_lesion_free;  // test subjects with / without lesion voxels in the evaluated slices
    eval_subject *healthy;        // healthy scans, input order (no score table kept)
    fp_volume healthy_fp;         // of detect's mask over the healthy scans that have one
    eval_row *rows;
    int n_rows;
    double val_threshold, oracle_threshold;  // NAN when not available
    double fpr_threshold[EVAL_NFPR], fpr_achieved[EVAL_NFPR];  // NAN when no healthy scans
    double seconds_per_slice;                // mean over subjects that report it; NAN otherwise
    int64_t parameters;                      // -1 when unknown
    int grow;                                // largest growth (px) in the test subjects' masks
    int calibrated;                          // every test subject's mask is detect's calibrated one
    double cal_fpr;                          // their calibration rate (NAN when absent or mixed)
    int64_t slices;                          // evaluated axial slices over all test subjects
} eval_result;

// Runs the evaluation. At least one EVAL_TEST input is required. Errors (-1, as_error()): a
// missing prediction or ground-truth file, grids that do not match, a NaN map.
int eval_run(eval_result *res, const eval_input *inputs, int n, const eval_options *opt);
void eval_result_free(eval_result *res);

// 1 when a test subject has no lesion voxel in its evaluated slices: such subjects never enter a
// per-volume mean (an empty prediction there would count as a perfect Dice of 1).
int eval_lesion_free(const eval_subject *s);
// False-positive volume (ml) of the prediction counted in c (FP voxels * voxel volume).
double eval_fp_ml(const eval_subject *s, const confusion *c);

// Reads the RAS axial range, seconds per slice, parameter count, post-processing growth and mode
// from a detect summary.json (keys "slice_range": [lo, hi], "seconds_per_slice", "parameters",
// "grow", "mode" ("calibrated" sets *calibrated = 1) and the calibration's "fpr"); absent keys
// leave the outputs unchanged. Missing file: returns 0 and changes nothing.
int eval_read_summary(const char *path, int *slice_lo, int *slice_hi, double *sec_per_slice, int64_t *params,
                      int *grow, int *calibrated, double *cal_fpr);

// Orientation of a native grid relative to RAS, from its affine: for voxel axis a, the world axis
// world_of_axis[a] (0 = R, 1 = A, 2 = S) it runs along and whether it runs the negative way
// (flip[a]); what reorientation to the closest canonical (RAS) orientation uses (data/reorient.h,
// nibabel's io_orientation), so slice indices agree with detect's slice pipeline.
void eval_ras_axes(const double affine[4][4], int world_of_axis[3], int flip[3]);
// The voxel axis running inferior -> superior (or reversed when *flip): RAS axial index of a
// voxel = flip ? n[axis]-1-idx[axis] : idx[axis].
int eval_axial_axis(const double affine[4][4], int *flip);

#endif
