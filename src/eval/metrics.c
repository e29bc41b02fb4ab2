#include "eval/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"    // as_fail, as_malloc
#include "util/morph.h"  // morph_label (3-D, 26-connectivity)

// ---- binary predictions ------------------------------------------------------------------------

void confusion_count(confusion *c, const uint8_t *pred, const uint8_t *gt, const uint8_t *mask, size_t n) {
    int64_t tp = 0, fp = 0, fn = 0, tn = 0;
    for (size_t i = 0; i < n; i++) {
        if (mask && !mask[i]) continue;
        int p = pred[i] != 0, g = gt ? gt[i] != 0 : 0;
        tp += p & g;
        fp += p & (!g);
        fn += (!p) & g;
        tn += (!p) & (!g);
    }
    c->tp = tp, c->fp = fp, c->fn = fn, c->tn = tn;
}

void confusion_count_threshold(confusion *c, const float *score, float thr, const uint8_t *gt, const uint8_t *mask,
                               size_t n) {
    int64_t tp = 0, fp = 0, fn = 0, tn = 0;
    for (size_t i = 0; i < n; i++) {
        if (mask && !mask[i]) continue;
        int p = score[i] >= thr, g = gt ? gt[i] != 0 : 0;
        tp += p & g;
        fp += p & (!g);
        fn += (!p) & g;
        tn += (!p) & (!g);
    }
    c->tp = tp, c->fp = fp, c->fn = fn, c->tn = tn;
}

void confusion_add(confusion *sum, const confusion *c) {
    sum->tp += c->tp, sum->fp += c->fp, sum->fn += c->fn, sum->tn += c->tn;
}

double confusion_dice(const confusion *c) {
    int64_t den = 2 * c->tp + c->fp + c->fn;
    return den == 0 ? 1.0 : 2.0 * (double)c->tp / (double)den;
}
double confusion_precision(const confusion *c) {
    return c->tp + c->fp == 0 ? NAN : (double)c->tp / (double)(c->tp + c->fp);
}
double confusion_recall(const confusion *c) {
    return c->tp + c->fn == 0 ? NAN : (double)c->tp / (double)(c->tp + c->fn);
}
double confusion_fpr(const confusion *c) {
    return c->fp + c->tn == 0 ? NAN : (double)c->fp / (double)(c->fp + c->tn);
}

// ---- sorting: LSD radix sort of 32-bit keys carrying a 32-bit payload ------------------------------

// Maps a float to a uint32 whose unsigned order is the float order (-0 was folded to +0 before).
static inline uint32_t float_key(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
static inline float key_float(uint32_t k) {
    uint32_t u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// Sorts key ascending, permuting payload alongside (stable). O(n) with four 8-bit passes.
static void radix_sort(uint32_t *key, uint32_t *payload, size_t n) {
    if (n == 0) return;
    uint32_t *k2 = as_malloc(n * sizeof *k2 + 1), *p2 = as_malloc(n * sizeof *p2 + 1);
    uint32_t *ks = key, *ps = payload, *kd = k2, *pd = p2;
    for (int shift = 0; shift < 32; shift += 8) {
        size_t count[257] = {0};
        for (size_t i = 0; i < n; i++) count[((ks[i] >> shift) & 255) + 1]++;
        if (count[((ks[0] >> shift) & 255) + 1] == n) continue;  // all equal digits: skip the pass
        for (int b = 0; b < 256; b++) count[b + 1] += count[b];
        for (size_t i = 0; i < n; i++) {
            size_t d = count[(ks[i] >> shift) & 255]++;
            kd[d] = ks[i];
            pd[d] = ps[i];
        }
        uint32_t *t = ks; ks = kd; kd = t;
        t = ps; ps = pd; pd = t;
    }
    if (ks != key) {
        memcpy(key, ks, n * sizeof *key);
        memcpy(payload, ps, n * sizeof *payload);
    }
    free(k2);
    free(p2);
}

// ---- the score table ------------------------------------------------------------------------------

static void table_alloc(score_table *t, size_t n) {
    t->n = 0;
    t->value = as_malloc(n * sizeof *t->value + 1);
    t->pos = as_malloc(n * sizeof *t->pos + 1);
    t->neg = as_malloc(n * sizeof *t->neg + 1);
    t->total_pos = t->total_neg = 0;
}

// Collapses sorted (ascending) keys with per-entry (pos, neg) counts into a decreasing table.
// src_pos/src_neg are indexed by payload.
static void table_from_sorted(score_table *t, const uint32_t *key, const uint32_t *payload, size_t n,
                              const uint32_t *src_pos, const uint32_t *src_neg) {
    table_alloc(t, n);
    for (size_t r = n; r-- > 0;) {
        uint32_t p = src_pos ? src_pos[payload[r]] : payload[r] != 0;
        uint32_t q = src_neg ? src_neg[payload[r]] : payload[r] == 0;
        if (t->n > 0 && float_key(t->value[t->n - 1]) == key[r]) {
            t->pos[t->n - 1] += p;
            t->neg[t->n - 1] += q;
        } else {
            t->value[t->n] = key_float(key[r]);
            t->pos[t->n] = p;
            t->neg[t->n] = q;
            t->n++;
        }
        t->total_pos += p;
        t->total_neg += q;
    }
}

int score_table_build(score_table *t, const float *score, const uint8_t *gt, const uint8_t *mask, size_t n) {
    memset(t, 0, sizeof *t);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (mask && !mask[i]) continue;
        if (isnan(score[i])) return as_fail("score map has a NaN at voxel %zu", i);
        m++;
    }
    uint32_t *key = as_malloc(m * sizeof *key + 1), *lab = as_malloc(m * sizeof *lab + 1);
    m = 0;
    for (size_t i = 0; i < n; i++) {
        if (mask && !mask[i]) continue;
        float s = score[i] == 0.0f ? 0.0f : score[i];  // fold -0 into +0: one threshold, as numpy sees it
        key[m] = float_key(s);
        lab[m] = gt ? gt[i] != 0 : 0;
        m++;
    }
    radix_sort(key, lab, m);
    table_from_sorted(t, key, lab, m, NULL, NULL);
    free(key);
    free(lab);
    return 0;
}

void score_table_pool(score_table *out, const score_table *const *tables, int k) {
    size_t m = 0;
    for (int i = 0; i < k; i++) m += tables[i]->n;
    uint32_t *key = as_malloc(m * sizeof *key + 1), *idx = as_malloc(m * sizeof *idx + 1);
    uint32_t *pos = as_malloc(m * sizeof *pos + 1), *neg = as_malloc(m * sizeof *neg + 1);
    size_t j = 0;
    for (int i = 0; i < k; i++)
        for (size_t r = 0; r < tables[i]->n; r++, j++) {
            key[j] = float_key(tables[i]->value[r]);
            idx[j] = (uint32_t)j;
            pos[j] = tables[i]->pos[r];
            neg[j] = tables[i]->neg[r];
        }
    radix_sort(key, idx, m);
    table_from_sorted(out, key, idx, m, pos, neg);
    free(key);
    free(idx);
    free(pos);
    free(neg);
}

void score_table_free(score_table *t) {
    free(t->value);
    free(t->pos);
    free(t->neg);
    memset(t, 0, sizeof *t);
}

// Average precision = sum_n (R_n - R_{n-1}) P_n over distinct thresholds, high to low, exactly
// as sklearn (recall computed as tp/P at each step, then differenced).
double score_table_auprc(const score_table *t) {
    if (t->total_pos == 0) return NAN;
    double ap = 0, prev_recall = 0, P = (double)t->total_pos;
    int64_t tp = 0, fp = 0;
    for (size_t i = 0; i < t->n; i++) {
        tp += t->pos[i];
        fp += t->neg[i];
        double recall = (double)tp / P;
        ap += (recall - prev_recall) * ((double)tp / (double)(tp + fp));
        prev_recall = recall;
    }
    return ap;
}

// Trapezoid under (FPR, TPR) from (0,0): each group adds neg * (tp_before + tp_after) / 2.
double score_table_auroc(const score_table *t) {
    if (t->total_pos == 0 || t->total_neg == 0) return NAN;
    long double area = 0;
    int64_t tp = 0;
    for (size_t i = 0; i < t->n; i++) {
        area += (long double)t->neg[i] * (long double)(2 * tp + t->pos[i]);
        tp += t->pos[i];
    }
    return (double)(area / (2.0L * (long double)t->total_pos * (long double)t->total_neg));
}

void score_table_confusion(confusion *c, const score_table *t, float thr) {
    int64_t tp = 0, fp = 0;
    for (size_t i = 0; i < t->n && t->value[i] >= thr; i++) {
        tp += t->pos[i];
        fp += t->neg[i];
    }
    c->tp = tp;
    c->fp = fp;
    c->fn = t->total_pos - tp;
    c->tn = t->total_neg - fp;
}

float score_table_threshold_none(const score_table *t) {
    if (t->n == 0) return INFINITY;
    return nextafterf(t->value[0], INFINITY);
}

double score_table_best_dice(const score_table *t, float *thr) {
    double best = t->total_pos == 0 ? 1.0 : 0.0;  // predict nothing
    float best_thr = score_table_threshold_none(t);
    int64_t tp = 0, fp = 0;
    for (size_t i = 0; i < t->n; i++) {
        tp += t->pos[i];
        fp += t->neg[i];
        double d = 2.0 * (double)tp / (double)(tp + fp + t->total_pos);
        if (d > best) best = d, best_thr = t->value[i];
    }
    if (thr) *thr = best_thr;
    return best;
}

float score_table_threshold_at_fpr(const score_table *t, double fpr, double *achieved) {
    float thr = score_table_threshold_none(t);
    double rate = 0;
    if (t->total_neg > 0) {
        int64_t fp = 0;
        for (size_t i = 0; i < t->n; i++) {
            fp += t->neg[i];
            double r = (double)fp / (double)t->total_neg;
            if (r > fpr) break;
            thr = t->value[i];
            rate = r;
        }
    }
    if (achieved) *achieved = rate;
    return thr;
}

// ---- lesion-wise detection ------------------------------------------------------------------------

void lesion_counts_compute(lesion_counts *lc, const uint8_t *pred, const uint8_t *gt, const uint8_t *mask, int nx,
                           int ny, int nz) {
    size_t n = (size_t)nx * ny * nz;
    uint8_t *p = as_malloc(n + 1), *g = as_malloc(n + 1);
    for (size_t v = 0; v < n; v++) {
        int in = !mask || mask[v];
        p[v] = in && pred[v];
        g[v] = in && gt && gt[v];
    }
    int32_t *lab = as_malloc(n * sizeof *lab + 1);
    memset(lc, 0, sizeof *lc);
    // Ground-truth lesions touched by the prediction.
    lc->gt_lesions = morph_label(lab, g, nx, ny, nz, 26);
    uint8_t *hit = as_calloc((size_t)lc->gt_lesions + 1, 1);
    for (size_t v = 0; v < n; v++)
        if (lab[v] && p[v]) hit[lab[v]] = 1;
    for (int64_t l = 1; l <= lc->gt_lesions; l++) lc->gt_detected += hit[l];
    free(hit);
    // Predicted components touching no ground truth.
    lc->pred_components = morph_label(lab, p, nx, ny, nz, 26);
    uint8_t *true_hit = as_calloc((size_t)lc->pred_components + 1, 1);
    for (size_t v = 0; v < n; v++)
        if (lab[v] && g[v]) true_hit[lab[v]] = 1;
    for (int64_t l = 1; l <= lc->pred_components; l++) lc->pred_false += !true_hit[l];
    free(true_hit);
    free(lab);
    free(p);
    free(g);
}

void lesion_counts_add(lesion_counts *sum, const lesion_counts *lc) {
    sum->gt_lesions += lc->gt_lesions;
    sum->gt_detected += lc->gt_detected;
    sum->pred_components += lc->pred_components;
    sum->pred_false += lc->pred_false;
}
