// Segmentation and ranking metrics for anomaly maps against a ground truth, on flat arrays of any
// length (a volume, a slice, or all voxels of a dataset), restricted to an optional evaluation
// mask (the brain; NULL = every element counts).
//
// Conventions (also in docs/evaluation.md): a voxel is predicted anomalous at threshold t when
// score >= t (as scikit-learn's curves do). A metric that is mathematically undefined is returned
// as NAN, which reports print as "n/a" (JSON null) and which means and bootstrap intervals skip,
// counting only the defined values:
//   Dice        2TP / (2TP + FP + FN); 1 when the prediction and the ground truth are both empty
//               (nothing to find, nothing claimed); 0 when exactly one of them is empty. eval
//               keeps subjects without ground truth out of its means (eval.h), so that 1 is never
//               averaged.
//   precision   TP / (TP + FP); undefined when nothing is predicted.
//   recall      TP / (TP + FN); undefined when the ground truth is empty.
//   AUPRC       average precision exactly as sklearn.metrics.average_precision_score: steps at
//               every distinct score value (tied scores form one threshold); undefined when the
//               ground truth is empty (sklearn warns and returns 0 there; a 0 would drag means).
//               A constant map with positives gives the positive fraction, as in sklearn.
//   AUROC       as sklearn.metrics.roc_auc_score (trapezoid over distinct thresholds, ties give
//               diagonal steps); undefined when either class is absent (sklearn raises).
#ifndef ANOSWIN_EVAL_METRICS_H
#define ANOSWIN_EVAL_METRICS_H

#include <stddef.h>
#include <stdint.h>

// ---- binary predictions ------------------------------------------------------------------------
typedef struct confusion {
    int64_t tp, fp, fn, tn;
} confusion;

// Counts pred != 0 against gt != 0 where mask != 0 (mask may be NULL).
void confusion_count(confusion *c, const uint8_t *pred, const uint8_t *gt, const uint8_t *mask, size_t n);
// The same for the prediction score >= thr.
void confusion_count_threshold(confusion *c, const float *score, float thr, const uint8_t *gt, const uint8_t *mask,
                               size_t n);
void confusion_add(confusion *sum, const confusion *c);
double confusion_dice(const confusion *c);       // 1 when TP+FP+FN == 0
double confusion_precision(const confusion *c);  // NAN when TP+FP == 0
double confusion_recall(const confusion *c);     // NAN when TP+FN == 0
double confusion_fpr(const confusion *c);        // FP/(FP+TN); NAN when no negatives

// ---- continuous scores: the ranked score table ---------------------------------------------------
// Distinct score values in decreasing order with the number of positive (gt != 0) and negative
// voxels that carry each. Every threshold metric is one pass over it (AUPRC, AUROC, best Dice,
// threshold at a false-positive rate, counts at any threshold), and pooling subjects is a merge,
// so a dataset's voxels never need to be held in memory at once.
typedef struct score_table {
    size_t n;               // number of distinct values
    float *value;           // (n) strictly decreasing
    uint32_t *pos, *neg;    // (n) counts per value
    int64_t total_pos, total_neg;
} score_table;

// Builds the table from score where mask != 0 (mask may be NULL); gt may be NULL (all negative,
// e.g. healthy scans). -0.0 and 0.0 are one value. Error (-1) on a NaN score.
int score_table_build(score_table *t, const float *score, const uint8_t *gt, const uint8_t *mask, size_t n);
// Pools k tables into one (as if built from all their voxels together).
void score_table_pool(score_table *out, const score_table *const *tables, int k);
void score_table_free(score_table *t);

double score_table_auprc(const score_table *t);  // NAN when no positives
double score_table_auroc(const score_table *t);  // NAN when no positives or no negatives
// Confusion counts for the prediction score >= thr.
void score_table_confusion(confusion *c, const score_table *t, float thr);
// A threshold above every score: predicting nothing (the largest value's float successor).
float score_table_threshold_none(const score_table *t);

// Best Dice over all thresholds (every distinct value, plus "predict nothing"); exact, O(n).
// The highest threshold wins ties. Returns the Dice; *thr gets the threshold.
double score_table_best_dice(const score_table *t, float *thr);
// The lowest threshold whose false-positive rate (share of negatives with score >= thr) is at
// most `fpr`; with no negatives, or when even the top value exceeds it, predicting nothing.
// *achieved gets the rate at that threshold (may be NULL).
float score_table_threshold_at_fpr(const score_table *t, double fpr, double *achieved);

// ---- lesion-wise detection ------------------------------------------------------------------------
// Connected components (3-D, 26-connectivity) of the ground truth and of the prediction, both
// restricted to the mask. A ground-truth lesion is detected when any predicted voxel touches it;
// a predicted component that touches no ground-truth voxel is a false positive.
typedef struct lesion_counts {
    int64_t gt_lesions, gt_detected;
    int64_t pred_components, pred_false;
} lesion_counts;

// vol layout (nz, ny, nx), x fastest.
void lesion_counts_compute(lesion_counts *lc, const uint8_t *pred, const uint8_t *gt, const uint8_t *mask, int nx,
                           int ny, int nz);
void lesion_counts_add(lesion_counts *sum, const lesion_counts *lc);

#endif
