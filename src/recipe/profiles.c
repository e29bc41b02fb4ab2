// The profiles recipe (profiles.h): data synth -> calibrate -> detect -> eval per lesion profile,
// every step a command line of this executable run by the recipes' step runner (step.h), then one
// table. The seeds and counts are those the detection defaults were chosen on
// (docs/detection.md, "Choosing the defaults"), so a new method's numbers sit beside the Swin
// MAE's there.
#include "recipe/profiles.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "data/synth.h"    // synth_profile_name
#include "eval/report.h"   // report_read_line
#include "model/model.h"   // model_method_of_file: whole-image methods get no window
#include "nn/nn.h"         // nn_bf16_supported
#include "recipe/arglist.h"
#include "recipe/demo.h"   // demo_full, demo_small, demo_map_options: the map settings
#include "recipe/step.h"
#include "util/csv.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/timer.h"

enum { CAL_SEED = 5001, PROFILE_SEED = 6001 };

typedef struct profile_row {
    const char *name;
    int failed;
    report_line r;  // eval's calibrated / per-volume line
} profile_row;

// force: an input of the step was just redone (--reuse must not trust its stamp: a detect redone
// for another checkpoint leaves its eval's command line unchanged). *ran: the step ran.
static int run_step(step_runner *d, const char *name, const arglist *a, const char *out, int force, int *failed,
                    int *ran) {
    const char *outs[] = {out, NULL};
    step_spec s = {.name = name, .args = a, .outputs = outs, .force = force};
    int code = 0, st = step_run(d, &s, &code, NULL);
    if (st == STEP_FAILED) *failed = 1;
    if (ran) *ran = st != STEP_REUSED;
    return st < 0 ? -1 : 0;
}

static void num(FILE *f, double v, int decimals) {
    if (isfinite(v)) fprintf(f, "%.*f", decimals, v);
    else fputs("n/a", f);
}

static void write_md(FILE *f, const profiles_options *o, const model_method *mm, const profile_row *rows, int n) {
    fprintf(f, "# anoswin experiment profiles\n\nCheckpoint `%s` (%s)", o->checkpoint, mm->title);
    if (o->model_set) fprintf(f, ", inference settings `%s`", o->model_set);
    fprintf(f, "; tuning sets (not test sets): calibration on `data synth` seed %d, profile p on seed %d + its "
               "index. Per volume over the subjects with lesion voxels (n); lesion-free scans: false-positive ml "
               "per scan.\n\n",
            CAL_SEED, PROFILE_SEED);
    fputs("| profile | n | Dice | AUPRC | AUROC | lesion-free scans | FP ml per lesion-free scan |\n", f);
    fputs("|---|---|---|---|---|---|---|\n", f);
    double sum = 0;
    int k = 0;
    for (int i = 0; i < n; i++) {
        const report_line *r = &rows[i].r;
        fprintf(f, "| %s | ", rows[i].name);
        if (rows[i].failed) {
            fputs("FAILED (see logs/) | | | | | |\n", f);
            continue;
        }
        fprintf(f, "%d | ", r->n);
        num(f, r->dice, 3);
        if (isfinite(r->dice_std)) fputs(" ± ", f), num(f, r->dice_std, 3);
        fputs(" | ", f);
        num(f, r->auprc, 3), fputs(" | ", f), num(f, r->auroc, 3);
        fprintf(f, " | %d | ", r->n_lesion_free);
        num(f, r->lesion_free_fp_ml, 2);
        fputs(" |\n", f);
        if (r->n > 0 && isfinite(r->dice)) sum += r->dice, k++;
    }
    fprintf(f, "| mean over the %d profiles with lesions | | ", k);
    num(f, k ? sum / k : NAN, 3);
    fputs(" | | | | |\n", f);
}

static void write_csv(FILE *f, const profiles_options *o, const model_method *mm, const profile_row *rows, int n) {
    fputs("checkpoint,method,profile,status,n,dice,dice_std,auprc,auroc,n_lesion_free,lesion_free_fp_ml_mean\n", f);
    for (int i = 0; i < n; i++) {
        const report_line *r = &rows[i].r;
        csv_write_field(f, o->checkpoint);
        fprintf(f, ",%s,%s,%s,", mm->name, rows[i].name, rows[i].failed ? "failed" : "ok");
        if (!rows[i].failed) fprintf(f, "%d", r->n);
        const double v[] = {r->dice, r->dice_std, r->auprc, r->auroc};
        for (int k = 0; k < 4; k++) fputc(',', f), csv_write_number(f, rows[i].failed ? NAN : v[k]);
        fputc(',', f);
        if (!rows[i].failed) fprintf(f, "%d", r->n_lesion_free);
        fputc(',', f), csv_write_number(f, rows[i].failed ? NAN : r->lesion_free_fp_ml);
        fputc('\n', f);
    }
}

static int write_file(const char *dir, const char *name, const profiles_options *o, const model_method *mm,
                      const profile_row *rows, int n,
                      void (*fn)(FILE *, const profiles_options *, const model_method *, const profile_row *, int)) {
    char path[4300];
    fs_join(path, sizeof path, dir, name);
    fs_file af;
    if (fs_file_open(&af, path)) return -1;
    fn(af.f, o, mm, rows, n);
    if (ferror(af.f)) {
        fs_file_abort(&af);
        return as_fail("%s: write error", path);
    }
    return fs_file_commit(&af);
}

int profiles_run(const profiles_options *o) {
    const demo_config *cfg = o->small ? &demo_small : &demo_full;
    const char *precision = o->precision ? o->precision : nn_bf16_supported() ? "bf16" : "fp32";
    const int per_profile = o->subjects > 0 ? o->subjects : o->small ? 1 : 4;
    const int n_cal = o->small ? 2 : 4, n_none = o->small ? 1 : 3;
    if (!fs_exists(o->checkpoint)) return as_fail("%s: no such checkpoint", o->checkpoint);
    const model_method *mm = model_method_of_file(o->checkpoint);
    if (!mm) return -1;
    if (fs_mkdirs(o->out)) return -1;
    char data[4200], cal[4300], calib[4200], dir[4300], in[4400], name[64];
    fs_join(data, sizeof data, o->out, "data");
    fs_join(calib, sizeof calib, o->out, "calibration.json");
    arg_catch_signals(1);
    step_runner d = {.dir = o->out, .who = "experiment profiles", .reuse = o->reuse, .chain = 0, .numbered = 1, .keep_output = 1,
                     .nsteps = 2 + 3 * SYNTH_NPROFILES, .t_start = now_seconds()};
    fprintf(stderr, "anoswin experiment profiles: %s (%s) on %d profiles (%d subjects each), %s map settings, %s, %s/\n",
            o->checkpoint, mm->title, SYNTH_NPROFILES, per_profile, cfg->name, precision, o->out);
    arglist a = {0};
    int rc = -1, failed_cal = 0, ran_cal_data = 0, ran_cal = 0, ran_data[SYNTH_NPROFILES] = {0};
    profile_row rows[SYNTH_NPROFILES] = {{0}};

    fs_join(cal, sizeof cal, data, "calibration");
    arg_add(&a, "data"), arg_add(&a, "synth"), arg_add(&a, "--out"), arg_add(&a, "%s", cal);
    arg_add(&a, "--healthy"), arg_add(&a, "%d", n_cal), arg_add(&a, "--test"), arg_add(&a, "0");
    arg_add(&a, "--modality"), arg_add(&a, "t2"), arg_add(&a, "--seed"), arg_add(&a, "%d", CAL_SEED);
    arg_add(&a, "--threads"), arg_add(&a, "%ld", o->threads);
    if (run_step(&d, "data-calibration", &a, cal, 0, &failed_cal, &ran_cal_data)) goto done;
    arg_free(&a);
    for (int p = 0; p < SYNTH_NPROFILES; p++) {
        rows[p].name = synth_profile_name((synth_profile)p);
        fs_join(dir, sizeof dir, data, rows[p].name);
        snprintf(name, sizeof name, "data-%s", rows[p].name);
        arg_add(&a, "data"), arg_add(&a, "synth"), arg_add(&a, "--out"), arg_add(&a, "%s", dir);
        arg_add(&a, "--healthy"), arg_add(&a, "0");
        arg_add(&a, "--test"), arg_add(&a, "%d", p == SYNTH_NONE ? n_none : per_profile);
        arg_add(&a, "--profile"), arg_add(&a, "%s", rows[p].name), arg_add(&a, "--modality"), arg_add(&a, "t2");
        arg_add(&a, "--seed"), arg_add(&a, "%d", PROFILE_SEED + p), arg_add(&a, "--threads"), arg_add(&a, "%ld", o->threads);
        if (run_step(&d, name, &a, dir, 0, &rows[p].failed, &ran_data[p])) goto done;
        arg_free(&a);
    }
    if (failed_cal) goto table;

    fs_join(in, sizeof in, cal, "healthy");
    arg_add(&a, "calibrate"), arg_add(&a, "--checkpoint"), arg_add(&a, "%s", o->checkpoint);
    arg_add(&a, "--out"), arg_add(&a, "%s", calib);
    demo_map_options(&a, cfg, mm->whole_image, "t2", precision, o->threads);
    if (o->model_set) arg_add(&a, "--model-set"), arg_add(&a, "%s", o->model_set);
    arg_add(&a, "%s", in);
    if (run_step(&d, "calibrate", &a, calib, ran_cal_data, &failed_cal, &ran_cal)) goto done;
    arg_free(&a);
    if (failed_cal) goto table;

    for (int p = 0; p < SYNTH_NPROFILES; p++) {
        if (rows[p].failed) continue;
        char det[4300], ev[4300], test[4400], csv[4400];
        fs_join(dir, sizeof dir, data, rows[p].name);
        fs_join(test, sizeof test, dir, "test");
        snprintf(name, sizeof name, "detect/%s", rows[p].name);
        fs_join(det, sizeof det, o->out, name);
        arg_add(&a, "detect"), arg_add(&a, "--checkpoint"), arg_add(&a, "%s", o->checkpoint);
        arg_add(&a, "--out"), arg_add(&a, "%s", det), arg_add(&a, "--calibration"), arg_add(&a, "%s", calib);
        demo_map_options(&a, cfg, mm->whole_image, "t2", precision, o->threads);
        if (o->model_set) arg_add(&a, "--model-set"), arg_add(&a, "%s", o->model_set);
        arg_add(&a, "--no-overlays"), arg_add(&a, "--quiet"), arg_add(&a, "%s", test);
        snprintf(name, sizeof name, "detect-%s", rows[p].name);
        int ran_det = 0;
        if (run_step(&d, name, &a, det, ran_cal || ran_data[p], &rows[p].failed, &ran_det)) goto done;
        arg_free(&a);
        if (rows[p].failed) continue;
        snprintf(name, sizeof name, "eval/%s", rows[p].name);
        fs_join(ev, sizeof ev, o->out, name);
        arg_add(&a, "eval"), arg_add(&a, "--pred"), arg_add(&a, "%s", det), arg_add(&a, "--data"), arg_add(&a, "%s", test);
        // the reports name the method (eval's default label is the Swin MAE's), as the demo's do
        if (mm != model_method_default()) arg_add(&a, "--method"), arg_add(&a, "%s", mm->title);
        arg_add(&a, "--modality"), arg_add(&a, "t2"), arg_add(&a, "--out"), arg_add(&a, "%s", ev);
        arg_add(&a, "--dataset"), arg_add(&a, "anoswin synth T2, profile %s (tuning)", rows[p].name);
        arg_add(&a, "--bootstrap"), arg_add(&a, "%d", cfg->bootstrap), arg_add(&a, "--seed"), arg_add(&a, "%ld", o->seed);
        snprintf(name, sizeof name, "eval-%s", rows[p].name);
        if (run_step(&d, name, &a, ev, ran_det, &rows[p].failed, NULL)) goto done;  // (new data forced the detect)
        arg_free(&a);
        if (rows[p].failed) continue;
        fs_join(csv, sizeof csv, ev, "report.csv");
        int k = report_read_line(csv, "calibrated", "per-volume", &rows[p].r);
        if (k <= 0) {
            if (k == 0) as_fail("%s: no calibrated per-volume line", csv);
            fprintf(stderr, "anoswin: %s\n", as_error());
            rows[p].failed = 1;
        }
    }

table:
    for (int p = 0; p < SYNTH_NPROFILES; p++) rows[p].failed |= failed_cal;
    if (write_file(o->out, "profiles.md", o, mm, rows, SYNTH_NPROFILES, write_md) ||
        write_file(o->out, "profiles.csv", o, mm, rows, SYNTH_NPROFILES, write_csv))
        goto done;
    write_md(stdout, o, mm, rows, SYNTH_NPROFILES);
    rc = 0;
    for (int p = 0; p < SYNTH_NPROFILES; p++) rc |= rows[p].failed;
done:
    arg_free(&a);
    arg_catch_signals(0);
    return rc;
}
