// End-to-end evaluation on synthetic NIfTI fixtures (written by our writer): eval_run under all
// protocols, panels and report files; tools/eval_report_check.py recomputes every number with
// nibabel (reorientation to RAS) + scikit-learn/numpy, parses report.json (json) and report.csv
// (csv), and checks that report.html references only files that exist and nothing online.
// Also: bootstrap determinism and coverage, and the aggregation of undefined values.
#include <math.h>
#include <nifti2_io.h>  // NIFTI_TYPE_*
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/volume.h"
#include "eval/aggregate.h"
#include "eval/eval.h"
#include "eval/report.h"
#include "eval/viewer.h"  // eval_viewer_write, report_viewer_path
#include "helpers/testutil.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/rng.h"
#include "util/stats.h"  // quantile_sorted_f64

enum { NX = 20, NY = 24, NZ = 12 };

static void write_vol(const volume *v, const char *dir, const char *name, int dtype) {
    char path[4096];
    fs_join(path, sizeof path, dir, name);
    if (volume_write(v, v, path, dtype) != 0) {
        fprintf(stderr, "FAIL: %s\n", as_error());
        exit(1);
    }
}

// One synthetic subject: ellipsoid brain, an optional spherical lesion, a noisy quantised map
// (ties), the paper mask (map >= 0.6), a reconstruction (the image without the lesion).
// lesion: 1 labelled lesion, 0 none (empty label), -1 no label file (healthy scan). The map shows
// the sphere also where there is no labelled lesion when `blob` (a false positive) or lesion < 0.
static void make_subject(const char *root, const char *id, int lesion, int blob, int flipped, int brain_file,
                         int summary, rng *r, FILE *list, const char *role) {
    char ddir[4096], pdir[4096];
    snprintf(ddir, sizeof ddir, "%s/data/%s", root, id);
    snprintf(pdir, sizeof pdir, "%s/pred/%s", root, id);
    fs_mkdirs(ddir);
    fs_mkdirs(pdir);
    float pix[3] = {1, 1, 1};
    volume img, lab, brain, map, mask, rec;
    volume_alloc(&img, NX, NY, NZ, pix);
    if (flipped) {  // LAI-like: x and z run the negative way
        img.affine[0][0] = -1, img.affine[0][3] = NX - 1;
        img.affine[2][2] = -1, img.affine[2][3] = NZ - 1;
    }
    volume_alloc_like(&lab, &img);
    volume_alloc_like(&brain, &img);
    volume_alloc_like(&map, &img);
    volume_alloc_like(&mask, &img);
    volume_alloc_like(&rec, &img);
    double cx = 6 + rng_uniform(r) * 8, cy = 8 + rng_uniform(r) * 8, cz = 3 + rng_uniform(r) * 6;
    for (int k = 0; k < NZ; k++)
        for (int j = 0; j < NY; j++)
            for (int i = 0; i < NX; i++) {
                size_t v = (size_t)i + NX * ((size_t)j + NY * k);
                double e = pow((i - 9.5) / 9, 2) + pow((j - 11.5) / 11, 2) + pow((k - 5.5) / 6, 2);
                int in = e < 1;
                int sphere = in && pow(i - cx, 2) + pow(j - cy, 2) + pow(k - cz, 2) < 9;
                int les = sphere && lesion > 0, shown = sphere && (lesion != 0 || blob);
                brain.data[v] = in;
                img.data[v] = in ? (float)(100 + 10 * rng_normal(r) + 80 * shown) : 0;
                rec.data[v] = in ? (float)(0.5 + 0.05 * rng_normal(r)) : 0;  // "model units"
                lab.data[v] = les ? 2 : 0;                                 // label > 0 counts
                double s = 0.55 * rng_uniform(r) + (shown ? 0.25 + 0.3 * rng_uniform(r) : 0);
                map.data[v] = in ? (float)(round(s * 20) / 20) : 0;
                mask.data[v] = map.data[v] >= 0.6f;
            }
    write_vol(&img, ddir, "image.nii.gz", NIFTI_TYPE_FLOAT32);
    if (lesion >= 0) write_vol(&lab, ddir, "label.nii.gz", NIFTI_TYPE_UINT8);
    if (brain_file) write_vol(&brain, ddir, "brain.nii.gz", NIFTI_TYPE_UINT8);
    write_vol(&map, pdir, "anomaly_map.nii.gz", NIFTI_TYPE_FLOAT32);
    write_vol(&mask, pdir, "mask.nii.gz", NIFTI_TYPE_UINT8);
    write_vol(&rec, pdir, "reconstruction.nii.gz", NIFTI_TYPE_FLOAT32);
    if (summary) {
        char path[4096], text[512];
        fs_join(path, sizeof path, pdir, "summary.json");
        int n = snprintf(text, sizeof text,
                         "{\n  \"lesion_volume_ml\": 1.5,\n  \"slice_range\": [2, 9],\n  \"seconds_per_slice\": 0.25,"
                         "\n  \"parameters\": 1234567,\n  \"postproc\": {\"keep_top\": 2, \"grow\": 3},"
                         "\n  \"map\": {\"units\": \"residual units\", \"residual\": \"|input - reconstruction|\"}\n}\n");
        fs_write_all(path, text, (size_t)n);
    }
    fprintf(list, "%s,%s,%s/image.nii.gz,%s,%s\n", id, role, ddir, lesion >= 0 ? "label.nii.gz" : "",
            brain_file ? "brain.nii.gz" : "");
    volume_free(&img);
    volume_free(&lab);
    volume_free(&brain);
    volume_free(&map);
    volume_free(&mask);
    volume_free(&rec);
}

static void test_aggregate(void) {
    double x[6] = {1, 2, NAN, 3, 4, NAN};
    metric_summary s;
    metric_summary_of(&s, x, 6);
    CHECK(s.n == 4 && s.n_undefined == 2 && fabs(s.value - 2.5) < 1e-15 && fabs(s.std - sqrt(1.25)) < 1e-15,
          "mean ± std skip n/a: %g ± %g (n %d)", s.value, s.std, s.n);
    double lo1, hi1, lo2, hi2;
    bootstrap_ci(&lo1, &hi1, bootstrap_stat_mean, x, 6, 500, 7, 0.95);
    bootstrap_ci(&lo2, &hi2, bootstrap_stat_mean, x, 6, 500, 7, 0.95);
    CHECK(lo1 == lo2 && hi1 == hi2, "bootstrap is deterministic for a seed");
    CHECK(lo1 <= 2.5 && 2.5 <= hi1 && lo1 >= 1 && hi1 <= 4, "CI [%g, %g] contains the mean, within the data", lo1, hi1);
    // Coverage on random data: the CI of a larger sample contains its mean.
    rng r;
    rng_seed(&r, 3);
    double y[200];
    for (int i = 0; i < 200; i++) y[i] = rng_normal(&r);
    metric_summary t;
    metric_summary_of(&t, y, 200);
    metric_summary_bootstrap(&t, y, 200, 1000, 11);
    double se = t.std / sqrt(200);
    CHECK(t.ci_lo < t.value && t.value < t.ci_hi && fabs((t.ci_hi - t.ci_lo) / (2 * 1.96 * se) - 1) < 0.2,
          "CI [%g, %g] around %g has the normal-theory width (se %g)", t.ci_lo, t.ci_hi, t.value, se);
    double none[2] = {NAN, NAN};
    metric_summary_of(&t, none, 2);
    CHECK(t.n == 0 && isnan(t.value) && bootstrap_ci(&lo1, &hi1, bootstrap_stat_mean, none, 2, 10, 1, 0.95) == -1,
          "all n/a: no mean, no CI");
    double q[5] = {0, 1, 2, 3, 10};
    CHECK(fabs(quantile_sorted_f64(q, 5, 0.9) - 7.2) < 1e-12, "quantile interpolates linearly (numpy 'linear')");
}

int main(void) {
    test_aggregate();

    const char *root = tu_scratch_dir("eval_report");
    char listpath[4096];
    fs_join(listpath, sizeof listpath, root, "subjects.csv");
    FILE *list = fopen(listpath, "w");
    fprintf(list, "id,role,image,label,mask\n");
    rng r;
    rng_seed(&r, 2024);
    // test: 6 (one flipped, one without summary/brain file, two without lesion: sub-04 with an empty
    // mask, sub-06 with a false-positive blob); val: 2; healthy: 2
    enum { NS = 10 };
    const char *ids[NS] = {"sub-01", "sub-02", "sub 03", "sub-04", "sub-05", "sub-06", "val-01", "val-02", "hc-01", "hc-02"};
    int roles[NS] = {EVAL_TEST, EVAL_TEST, EVAL_TEST,    EVAL_TEST,    EVAL_TEST,
                     EVAL_TEST, EVAL_VAL,  EVAL_VAL,     EVAL_HEALTHY, EVAL_HEALTHY};
    const char *role_name[3] = {"test", "val", "healthy"};
    for (int s = 0; s < NS; s++) {
        int lesion = roles[s] == EVAL_HEALTHY ? -1 : (s == 3 || s == 5 ? 0 : 1);
        make_subject(root, ids[s], lesion, s == 5, s == 1 || s == 8, s != 2, s != 2, &r, list, role_name[roles[s]]);
    }
    fclose(list);

    // Inputs as cmd_eval builds them.
    eval_input in[NS];
    char img[NS][4096], lab[NS][4096], brain[NS][4096], pred[NS][4096];
    for (int s = 0; s < NS; s++) {
        snprintf(img[s], sizeof img[s], "%s/data/%s/image.nii.gz", root, ids[s]);
        snprintf(lab[s], sizeof lab[s], "%s/data/%s/label.nii.gz", root, ids[s]);
        snprintf(brain[s], sizeof brain[s], "%s/data/%s/brain.nii.gz", root, ids[s]);
        snprintf(pred[s], sizeof pred[s], "%s/pred/%s", root, ids[s]);
        in[s] = (eval_input){ids[s], pred[s], img[s], roles[s] == EVAL_HEALTHY ? "" : lab[s], s != 2 ? brain[s] : "",
                             roles[s]};
    }
    eval_options opt;
    eval_options_default(&opt);
    opt.bootstrap_reps = 200;
    eval_result res;
    CHECK(eval_run(&res, in, NS, &opt) == 0, "eval_run: %s", as_error());
    CHECK(res.n_subjects == 6 && res.n_val == 2 && res.n_healthy == 2, "roles counted");
    CHECK(res.n_lesion == 4 && res.n_lesion_free == 2, "lesion / lesion-free test subjects: %d / %d", res.n_lesion,
          res.n_lesion_free);
    CHECK(!isnan(res.val_threshold) && !isnan(res.oracle_threshold) && !isnan(res.fpr_threshold[1]), "thresholds set");
    CHECK(res.parameters == 1234567 && fabs(res.seconds_per_slice - 0.25) < 1e-12 && res.grow == 3, "summary.json read");
    CHECK(strstr(res.rows[0].note, "growth 3 px") != NULL, "the paper rows say that the masks were grown: %s",
          res.rows[0].note);
    CHECK(res.subjects[0].slice_lo == 2 && res.subjects[0].slice_hi == 9 && res.subjects[2].slice_lo == 0 &&
              res.subjects[2].slice_hi == NZ - 1,
          "slice range from summary.json, all slices without it");
    CHECK(isnan(res.subjects[3].auprc), "no lesion: AUPRC n/a");
    int protos = 0;
    for (int i = 0; i < res.n_rows; i++) protos += !strcmp(res.rows[i].aggregation, "per-volume");
    CHECK(protos == 6, "per-volume rows for paper, val-threshold, oracle, 3 healthy-fpr levels (%d)", protos);
    // Per-volume means cover the lesion subjects only: the lesion-free ones (AUPRC n/a, Dice 1 by
    // convention for sub-04's empty mask) are not even counted as n/a.
    CHECK(res.rows[0].n_subjects == 4 && res.rows[0].dice.n == 4 && res.rows[0].auprc.n == 4 &&
              res.rows[0].auprc.n_undefined == 0,
          "per-volume means over the 4 lesion subjects (n %d, Dice n %d, AUPRC n %d + %d n/a)", res.rows[0].n_subjects,
          res.rows[0].dice.n, res.rows[0].auprc.n, res.rows[0].auprc.n_undefined);
    CHECK(res.rows[0].lesion_free.n == 2 && res.rows[0].lesion_free.max_ml > 0 && res.healthy_fp.n == 2,
          "false positives of the lesion-free subjects and healthy scans reported");
    report_print_table(stdout, &res, &(report_meta){"Ano-swinMAE (anoswin)", "synthetic", pred[0], NULL, NULL});

    char run[4096], logp[4096];
    fs_join(run, sizeof run, root, "run");
    fs_mkdirs(run);
    fs_join(logp, sizeof logp, run, "log.csv");
    // The train command's log.csv (val_loss may be missing on some rows); a first loss 50x the
    // last spans two decades of the log axis, and a loss of 0 cannot be drawn on it.
    const char *logtext = "epoch,step,lr,train_loss,val_loss,img_per_s,elapsed_s\n1,10,1e-4,12.0,0.95,30,1.0\n"
                          "2,20,1e-4,0.5,nan,30,2.0\n3,30,1e-4,0.3,0.4,30,3.0\n4,40,1e-4,0.25,0.3,30,4.0\n"
                          "5,50,1e-4,0,0.28,30,5.0\n";
    fs_write_all(logp, logtext, strlen(logtext));
    for (int s = 0, t = 0; s < NS; s++) {
        if (roles[s] != EVAL_TEST) continue;
        CHECK(eval_panels_write(&in[s], &res.subjects[t++], run, 1) == 0, "panels for %s: %s", ids[s], as_error());
    }
    report_meta meta = {"Ano-swinMAE (anoswin)", "synthetic, \"quoted\"", root, logp, NULL};
    CHECK(report_write(&res, &meta, run) == 0, "report_write: %s", as_error());
    char args[8400];
    snprintf(args, sizeof args, "%s %s", root, run);
    tu_run_python("tools/eval_report_check.py", args);
    CHECK(1, "reference check of the report passed");
    // The viewer's grid under a small voxel budget: every 2nd or 3rd voxel (sub-02 has an LPS affine).
    {
        volume vi = {0}, vm = {0}, vp = {0}, vl = {0}, vb = {0};
        char vdir[4200], mp[4300], pp[4300], vjs[4400], vargs[32768];
        fs_join(vdir, sizeof vdir, root, "viewer-small");
        fs_join(mp, sizeof mp, pred[1], "anomaly_map.nii.gz");
        fs_join(pp, sizeof pp, pred[1], "mask.nii.gz");
        CHECK(volume_read(&vi, img[1]) == 0 && volume_read(&vm, mp) == 0 && volume_read(&vp, pp) == 0 &&
                  volume_read(&vl, lab[1]) == 0 && volume_read(&vb, brain[1]) == 0,
              "volumes of %s read", ids[1]);
        CHECK(eval_viewer_write(&vi, &vm, &vp, &vl, &vb, ids[1], vdir, 300) == 0, "viewer data under 300 voxels: %s",
              as_error());
        report_viewer_path(vjs, sizeof vjs, vdir, ids[1]);
        snprintf(vargs, sizeof vargs, "%s %s %s %s %s %s 300", vjs, img[1], mp, pp, lab[1], brain[1]);
        tu_run_python("tools/viewer_data_check.py", vargs);
        CHECK(1, "reference check of the strided viewer data passed");
        volume_free(&vi), volume_free(&vm), volume_free(&vp), volume_free(&vl), volume_free(&vb);
    }
    char mdp[4200], htp[4200], latdir[4200], latjson[4300];
    fs_join(mdp, sizeof mdp, run, "report.md");
    fs_join(htp, sizeof htp, run, "report.html");
    unsigned char *md = NULL, *ht = NULL;
    size_t nmd = 0, nht = 0;
    fs_read_all(mdp, &md, &nmd);
    CHECK(md && !strstr((char *)md, "Latent space"), "no latent.json: no latent-space section");
    free(md);
    // anoswin latent --out RUN/latent: the report shows its numbers and picture.
    fs_join(latdir, sizeof latdir, run, "latent");
    fs_mkdirs(latdir);
    fs_join(latjson, sizeof latjson, latdir, "latent.json");
    const char *lj = "{\"healthy_slices\":40,\"lesion_slices\":25,\"projection\":\"umap\",\"panels\":{"
                     "\"unmasked\":{\"silhouette_latent\":0.61,\"silhouette_2d\":0.72,\"knn_accuracy_latent\":0.98,"
                     "\"knn_accuracy_2d\":0.97,\"kmeans_ari\":0.83,\"kmeans_accuracy\":0.95,\"kmeans_ellipses\":[]},"
                     "\"masked\":{\"silhouette_latent\":0.05,\"silhouette_2d\":0.04,\"knn_accuracy_latent\":0.55,"
                     "\"knn_accuracy_2d\":0.52,\"kmeans_ari\":-0.01,\"kmeans_accuracy\":0.51,\"kmeans_ellipses\":[]}}}\n";
    fs_write_all(latjson, lj, strlen(lj));
    CHECK(report_write(&res, &meta, run) == 0, "report_write with a latent analysis: %s", as_error());
    fs_read_all(mdp, &md, &nmd);
    fs_read_all(htp, &ht, &nht);
    CHECK(md && strstr((char *)md, "## Latent space") && strstr((char *)md, "40 healthy and 25 lesion slices, UMAP") &&
              strstr((char *)md, "| unmasked | 0.6100 | 0.7200 | 0.9800 | 0.9700 | 0.8300 | 0.9500 |") &&
              strstr((char *)md, "| lesions masked | 0.0500 | 0.0400 | 0.5500 | 0.5200 | -0.0100 | 0.5100 |") &&
              strstr((char *)md, "latent/latent.png"),
          "report.md: the latent-space table and picture");
    CHECK(ht && strstr((char *)ht, "<h2>Latent space") && strstr((char *)ht, "<td>0.8300</td>") &&
              strstr((char *)ht, "latent/latent.svg"),
          "report.html: the latent-space table and picture");
    free(md);
    free(ht);
    // eval --latent DIR: another folder's analysis copied in (numbers and pictures).
    char other[4200], ojson[4300], opng[4300], copied[4300];
    fs_join(other, sizeof other, root, "latent-elsewhere");
    fs_mkdirs(other);
    fs_join(ojson, sizeof ojson, other, "latent.json");
    fs_join(opng, sizeof opng, other, "latent.png");
    char *lj2 = as_strdup(lj);
    memcpy(strstr(lj2, "0.83"), "0.33", 4);
    fs_write_all(ojson, lj2, strlen(lj2));
    fs_write_all(opng, "png", 3);
    CHECK(report_latent_import(other, run) == 0 && report_write(&res, &meta, run) == 0, "report_latent_import: %s",
          as_error());
    fs_join(copied, sizeof copied, latdir, "latent.png");
    fs_read_all(mdp, &md, &nmd);
    CHECK(md && strstr((char *)md, "| unmasked | 0.6100 | 0.7200 | 0.9800 | 0.9700 | 0.3300 |") && fs_exists(copied),
          "report_latent_import: the other folder's numbers and picture");
    free(md);
    free(lj2);
    CHECK(report_latent_import(root, run) == -1 && strstr(as_error(), root) && strstr(as_error(), "latent.json"),
          "a folder without latent.json refused naming it: %s", as_error());
    eval_result_free(&res);

    // A missing prediction is an error naming the file.
    in[0].pred_dir = "nonexistent";
    CHECK(eval_run(&res, in, NS, &opt) == -1 && strstr(as_error(), "nonexistent"), "missing map: %s", as_error());
    return tu_finish();
}
