// Metrics against scikit-learn / SciPy (tools/eval_metrics_ref.py): AUPRC, AUROC, Dice (F1),
// precision, recall on random maps, ties, masks and the degenerate cases (where our documented
// value is asserted); best-Dice and FPR threshold search against brute force; pooling equals
// building from the concatenation; lesion counts against scipy.ndimage.label (26-connectivity).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/metrics.h"
#include "helpers/testutil.h"
#include "util/fs.h"
#include "util/rng.h"

static double *read_f64(const char *path, size_t n) {
    unsigned char *buf;
    size_t len;
    if (fs_read_all(path, &buf, &len) != 0 || len != n * 8) {
        fprintf(stderr, "FAIL: cannot read %s\n", path);
        exit(1);
    }
    double *x = malloc(n * sizeof *x);
    memcpy(x, buf, n * 8);
    free(buf);
    return x;
}

static int close_to(double a, double b, double tol) { return fabs(a - b) <= tol * (1 + fabs(b)); }

enum { NCASES = 10, NLESION = 3 };

typedef struct tcase {
    const char *name;
    size_t n;
    float *score, *gt, *mask;
} tcase;

static void to_u8(uint8_t *out, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = x[i] != 0;
}

// Builds case c: kinds of score distribution and ground truth that cover the degenerate cases.
static void make_case(tcase *t, int c, rng *r) {
    static const char *names[NCASES] = {"random",        "random-masked",   "ties-10-levels", "ties-binary-map",
                                        "empty-gt",      "empty-pred",      "all-positive",   "constant-map",
                                        "single-voxel",  "large-random"};
    t->name = names[c];
    t->n = c == 8 ? 1 : c == 9 ? 200000 : 3000 + 17 * c;
    t->score = malloc(t->n * sizeof(float));
    t->gt = malloc(t->n * sizeof(float));
    t->mask = malloc(t->n * sizeof(float));
    for (size_t i = 0; i < t->n; i++) {
        double u = rng_uniform(r);
        int g = rng_uniform(r) < 0.15;
        // Positives score higher on average, so the metrics are far from trivial.
        float s = (float)(0.7 * u + (g ? 0.3 * rng_uniform(r) + 0.1 : 0.0));
        if (c == 2) s = floorf(s * 10) / 10;              // ten tied levels
        if (c == 3) s = s > 0.55f ? 1.0f : 0.0f;          // a binary "map"
        if (c == 4) g = 0;                                 // no positives
        if (c == 5) s = 0.25f * s;                         // nothing >= 0.5: empty prediction
        if (c == 6) g = 1;                                 // all positive
        if (c == 7) s = 0.5f;                              // constant map
        t->score[i] = s;
        t->gt[i] = (float)g;
        t->mask[i] = (c == 1) ? (float)(rng_uniform(r) < 0.6) : 1.0f;
    }
}

static void test_against_sklearn(const char *dir) {
    rng r;
    rng_seed(&r, 1234);
    tcase cases[NCASES];
    char path[4200];
    for (int c = 0; c < NCASES; c++) {
        make_case(&cases[c], c, &r);
        snprintf(path, sizeof path, "%s/score_%d.f32", dir, c);
        tu_write_f32(path, cases[c].score, cases[c].n);
        snprintf(path, sizeof path, "%s/gt_%d.f32", dir, c);
        tu_write_f32(path, cases[c].gt, cases[c].n);
        snprintf(path, sizeof path, "%s/mask_%d.f32", dir, c);
        tu_write_f32(path, cases[c].mask, cases[c].n);
    }
    // Lesion cases: random blobs in small odd-shaped volumes.
    int shapes[NLESION][3] = {{7, 9, 11}, {5, 13, 6}, {12, 10, 9}};  // nz, ny, nx
    float *lp[NLESION], *lg[NLESION], *lm[NLESION];
    for (int c = 0; c < NLESION; c++) {
        size_t n = (size_t)shapes[c][0] * shapes[c][1] * shapes[c][2];
        lp[c] = malloc(n * sizeof(float));
        lg[c] = malloc(n * sizeof(float));
        lm[c] = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) {
            lp[c][i] = (float)(rng_uniform(&r) < 0.12 + 0.05 * c);
            lg[c][i] = (float)(rng_uniform(&r) < 0.10);
            lm[c][i] = (float)(c == 2 ? rng_uniform(&r) < 0.8 : 1);
        }
        float shp[3] = {(float)shapes[c][0], (float)shapes[c][1], (float)shapes[c][2]};
        snprintf(path, sizeof path, "%s/lshape_%d.f32", dir, c);
        tu_write_f32(path, shp, 3);
        snprintf(path, sizeof path, "%s/lpred_%d.f32", dir, c);
        tu_write_f32(path, lp[c], n);
        snprintf(path, sizeof path, "%s/lgt_%d.f32", dir, c);
        tu_write_f32(path, lg[c], n);
        snprintf(path, sizeof path, "%s/lmask_%d.f32", dir, c);
        tu_write_f32(path, lm[c], n);
    }
    char args[4400];
    snprintf(args, sizeof args, "%s %d %d", dir, NCASES, NLESION);
    tu_run_python("tools/eval_metrics_ref.py", args);

    for (int c = 0; c < NCASES; c++) {
        tcase *t = &cases[c];
        snprintf(path, sizeof path, "%s/ref_%d.f64", dir, c);
        double *ref = read_f64(path, 5);
        uint8_t *gt = malloc(t->n), *mask = malloc(t->n), *pred = malloc(t->n);
        to_u8(gt, t->gt, t->n);
        to_u8(mask, t->mask, t->n);
        for (size_t i = 0; i < t->n; i++) pred[i] = t->score[i] >= 0.5f;
        score_table tab;
        CHECK(score_table_build(&tab, t->score, gt, mask, t->n) == 0, "%s: build", t->name);
        double ap = score_table_auprc(&tab), auc = score_table_auroc(&tab);
        confusion cf;
        confusion_count(&cf, pred, gt, mask, t->n);
        double dice = confusion_dice(&cf), prec = confusion_precision(&cf), rec = confusion_recall(&cf);
        printf("%-15s AP %.6f (sk %.6f)  AUROC %.6f (sk %.6f)  Dice %.6f (sk %.6f)  P %.4f R %.4f\n", t->name,
               ap, ref[0], auc, ref[1], dice, ref[2], prec, rec);
        // The same metric computed from the table at the threshold equals the direct count.
        confusion cf2;
        score_table_confusion(&cf2, &tab, 0.5f);
        CHECK(cf.tp == cf2.tp && cf.fp == cf2.fp && cf.fn == cf2.fn && cf.tn == cf2.tn, "%s: table counts", t->name);
        int has_pos = cf.tp + cf.fn > 0, has_neg = cf.fp + cf.tn > 0;
        // AUPRC: sklearn where positives exist; our documented n/a otherwise.
        if (has_pos) CHECK(close_to(ap, ref[0], 1e-12), "%s: AUPRC %.15g vs sklearn %.15g", t->name, ap, ref[0]);
        else CHECK(isnan(ap) && isnan(ref[0]), "%s: AUPRC undefined without positives", t->name);
        if (has_pos && has_neg) CHECK(close_to(auc, ref[1], 1e-12), "%s: AUROC %.15g vs %.15g", t->name, auc, ref[1]);
        else CHECK(isnan(auc) && isnan(ref[1]), "%s: AUROC undefined with one class", t->name);
        if (!isnan(ref[2])) CHECK(close_to(dice, ref[2], 1e-12), "%s: Dice %.15g vs F1 %.15g", t->name, dice, ref[2]);
        else CHECK(cf.tp + cf.fp + cf.fn == 0 && dice == 1.0, "%s: Dice of empty vs empty is 1", t->name);
        if (!isnan(ref[3])) CHECK(close_to(prec, ref[3], 1e-12), "%s: precision", t->name);
        else CHECK(isnan(prec) && cf.tp + cf.fp == 0, "%s: precision n/a without predictions", t->name);
        if (!isnan(ref[4])) CHECK(close_to(rec, ref[4], 1e-12), "%s: recall", t->name);
        else CHECK(isnan(rec) && cf.tp + cf.fn == 0, "%s: recall n/a without ground truth", t->name);
        // Specific documented values.
        if (c == 5) CHECK(dice == 0.0 && isnan(prec), "empty prediction: Dice 0, precision n/a");
        if (c == 6) CHECK(ap == 1.0 && isnan(auc), "all positive: AUPRC 1, AUROC n/a");
        if (c == 7) CHECK(close_to(auc, 0.5, 1e-15) && close_to(ap, (double)tab.total_pos / (tab.total_pos + tab.total_neg), 1e-12),
                          "constant map: AUROC 0.5, AUPRC = positive fraction");
        score_table_free(&tab);
        free(ref);
        free(gt);
        free(mask);
        free(pred);
    }
    for (int c = 0; c < NLESION; c++) {
        int nz = shapes[c][0], ny = shapes[c][1], nx = shapes[c][2];
        size_t n = (size_t)nx * ny * nz;
        uint8_t *p = malloc(n), *g = malloc(n), *m = malloc(n);
        to_u8(p, lp[c], n);
        to_u8(g, lg[c], n);
        to_u8(m, lm[c], n);
        lesion_counts lc;
        lesion_counts_compute(&lc, p, g, m, nx, ny, nz);
        snprintf(path, sizeof path, "%s/lref_%d.f64", dir, c);
        double *ref = read_f64(path, 4);
        printf("lesions %d: gt %ld det %ld pred %ld fp %ld (scipy %g %g %g %g)\n", c, (long)lc.gt_lesions,
               (long)lc.gt_detected, (long)lc.pred_components, (long)lc.pred_false, ref[0], ref[1], ref[2], ref[3]);
        CHECK(lc.gt_lesions == (int64_t)ref[0] && lc.gt_detected == (int64_t)ref[1] &&
                  lc.pred_components == (int64_t)ref[2] && lc.pred_false == (int64_t)ref[3],
              "lesion case %d equals scipy.ndimage.label", c);
        free(ref);
        free(p);
        free(g);
        free(m);
        free(lp[c]);
        free(lg[c]);
        free(lm[c]);
    }
    for (int c = 0; c < NCASES; c++) {
        free(cases[c].score);
        free(cases[c].gt);
        free(cases[c].mask);
    }
}

// Brute force: every distinct score (and "nothing") as a threshold, counted voxel by voxel.
static void test_threshold_search(void) {
    rng r;
    rng_seed(&r, 99);
    int ok_dice = 1, ok_fpr = 1, ok_pool = 1;
    for (int trial = 0; trial < 300; trial++) {
        size_t n = 1 + rng_below(&r, 40);
        float s[64];
        uint8_t g[64];
        int levels = 1 + (int)rng_below(&r, 8);
        double pg = rng_uniform(&r);
        for (size_t i = 0; i < n; i++) {
            s[i] = (float)rng_below(&r, (uint32_t)levels) / (float)levels - 0.3f;  // ties, negatives, zero
            g[i] = rng_uniform(&r) < pg;
        }
        score_table t;
        score_table_build(&t, s, g, NULL, n);
        float thr;
        double best = score_table_best_dice(&t, &thr);
        // brute force
        double bf = -1;
        confusion c;
        for (size_t i = 0; i <= n; i++) {
            float th = i < n ? s[i] : score_table_threshold_none(&t);
            confusion_count_threshold(&c, s, th, g, NULL, n);
            double d = confusion_dice(&c);
            if (d > bf) bf = d;
        }
        confusion_count_threshold(&c, s, thr, g, NULL, n);
        ok_dice &= fabs(best - bf) < 1e-15 && fabs(confusion_dice(&c) - best) < 1e-15;
        // FPR threshold: brute force the lowest threshold with rate <= alpha.
        double alpha = rng_uniform(&r) * 0.5;
        double achieved;
        float ft = score_table_threshold_at_fpr(&t, alpha, &achieved);
        confusion_count_threshold(&c, s, ft, g, NULL, n);
        double rate = c.fp + c.tn ? (double)c.fp / (double)(c.fp + c.tn) : 0;
        int lower_ok = 1;
        for (size_t i = 0; i < n; i++)
            if (s[i] < ft) {
                confusion c2;
                confusion_count_threshold(&c2, s, s[i], g, NULL, n);
                if ((double)c2.fp / (double)(c2.fp + c2.tn) <= alpha) lower_ok = 0;
            }
        ok_fpr &= rate <= alpha && fabs(rate - achieved) < 1e-15 && lower_ok;
        // Pooling two halves equals the whole.
        score_table a, b, whole, pooled;
        size_t h = n / 2;
        score_table_build(&a, s, g, NULL, h);
        score_table_build(&b, s + h, g + h, NULL, n - h);
        score_table_build(&whole, s, g, NULL, n);
        const score_table *parts[2] = {&a, &b};
        score_table_pool(&pooled, parts, 2);
        int same = pooled.n == whole.n && pooled.total_pos == whole.total_pos && pooled.total_neg == whole.total_neg;
        for (size_t i = 0; same && i < whole.n; i++)
            same = pooled.value[i] == whole.value[i] && pooled.pos[i] == whole.pos[i] && pooled.neg[i] == whole.neg[i];
        for (size_t i = 1; same && i < whole.n; i++) same = whole.value[i] < whole.value[i - 1];
        ok_pool &= same;
        score_table_free(&a);
        score_table_free(&b);
        score_table_free(&whole);
        score_table_free(&pooled);
        score_table_free(&t);
    }
    CHECK(ok_dice, "best-Dice threshold equals brute force (300 small cases with ties)");
    CHECK(ok_fpr, "threshold at FPR is the lowest with rate <= alpha (brute force)");
    CHECK(ok_pool, "pooled tables equal the table of the concatenation, strictly decreasing");

    // Degenerate: empty input, NaN scores, -0 folded into +0.
    score_table t;
    CHECK(score_table_build(&t, NULL, NULL, NULL, 0) == 0 && t.n == 0, "empty input builds an empty table");
    float thr;
    CHECK(score_table_best_dice(&t, &thr) == 1.0 && isnan(score_table_auprc(&t)) && isnan(score_table_auroc(&t)),
          "empty table: best Dice 1, AUPRC/AUROC n/a");
    score_table_free(&t);
    float nz[2] = {-0.0f, 0.0f};
    uint8_t g2[2] = {1, 0};
    score_table_build(&t, nz, g2, NULL, 2);
    CHECK(t.n == 1 && t.pos[0] == 1 && t.neg[0] == 1, "-0 and +0 are one threshold");
    score_table_free(&t);
    uint8_t zero[3] = {0, 0, 0};
    confusion c0;
    confusion_count(&c0, zero, zero, NULL, 3);
    CHECK(confusion_dice(&c0) == 1.0 && isnan(confusion_precision(&c0)) && isnan(confusion_recall(&c0)),
          "empty prediction vs empty ground truth: Dice 1, precision/recall n/a");
    float bad[2] = {0.1f, NAN};
    CHECK(score_table_build(&t, bad, g2, NULL, 2) == -1, "NaN score is an error");
}

int main(void) {
    const char *dir = tu_scratch_dir("eval_metrics");
    test_against_sklearn(dir);
    test_threshold_search();
    return tu_finish();
}
