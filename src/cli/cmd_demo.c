// anoswin demo: the whole mission on the embedded synthetic data, in minutes on 2 cores:
// data synth -> train a demo-sized Swin MAE -> detect (sliding masks + A.1 post-processing + growth) ->
// eval (Table-1-shaped summary, HTML report).
//
// Every step runs THIS executable (/proc/self/exe) with the same command line a user would type,
// so the demo exercises exactly the code paths of `anoswin data synth|train|detect|eval`; the
// command lines are printed before each step. A step that finished writes OUT/stamps/<step>.txt
// holding its command line; a rerun with the same options reuses it (the stamp is written last,
// so an interrupted step is redone from scratch), --force redoes everything. Once a step is
// redone, every later step is redone too.
//
// Time bound: training runs a fixed number of epochs chosen to fit the budget on a 2-core
// machine (so that the result is reproducible for a seed and thread count); --minutes is a
// safety net: when training is still running at the bound, it gets SIGTERM, finishes the current
// step, saves its checkpoints and the demo goes on with them (noted in the summary; such a run is
// not bit-reproducible across machines).
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/arglist.h"
#include "cli/cli.h"
#include "data/dataset.h"  // dataset_open, dataset_write_manifest
#include "util/error.h"
#include "util/fs.h"
#include "util/timer.h"

// ---- the demo configuration (README "The demo": what and why) -------------------------------
// The residual of the demo's map (README "The demo": chosen on tuning sets).
#define DEMO_RESIDUAL "positive"

typedef struct demo_config {
    const char *name;
    int healthy, test;            // synthetic training set (healthy) and lesion test set
    int val_test, val_healthy;    // separate validation set: lesion subjects (val-threshold) and
                                  // healthy subjects (the detection threshold is calibrated on them)
    const char *model;            // --config of anoswin train
    int epochs, batch, warmup_epochs;
    double lr;
    int mask_size;                // training mask unit (px at the model grid)
    long max_steps;               // 0: none
    int window;                   // detection mask window (px at the model grid)
    int stride;                   // step of the window grid (px; = window: the paper's grid)
    const char *residual;         // "abs" (the paper) or "positive"
    int healthy_test;             // held-out healthy scans, detected for their false-positive volume
    const char *train_slices[2];  // RAS axial range for training (z-first, z-last)
    const char *test_slices[2];   // RAS axial range scored by detect (z-first, z-last)
    int bootstrap;
} demo_config;

// Full demo: 128 px (the 240 mm field at 1.9 mm), patch 4 -> a 32x32 token grid, window 4 so
// the four stages run at 32/16/8/4 tokens (img = patch * window * 8), C = 32, heads 1/2/4/8
// (head dim 32 like the paper's), one grey channel. Mask unit 8 px keeps the paper's proportion
// at 224 px (16 px units: 1/14 of the image). Detection: 48 px windows at an 8 px stride, without
// the per-window or per-slice scaling, over the whole trained slice range, and detect's default
// calibrated post-processing, its threshold calibrated on the validation set's healthy scans
// (README "The demo": chosen by leave-one-profile-out on tuning sets).
static const demo_config demo_full = {
    .name = "demo",
    .healthy = 20, .test = 10, .val_test = 3, .val_healthy = 4, .healthy_test = 3,
    .model = "img_size=128,patch_size=4,in_chans=1,embed_dim=32,num_heads=1/2/4/8,window=4",
    .epochs = 44, .batch = 8, .warmup_epochs = 1, .lr = 1e-3, .mask_size = 8, .max_steps = 0,
    .window = 48, .stride = 8, .residual = DEMO_RESIDUAL,
    .train_slices = {"60", "109"}, .test_slices = {"60", "109"},
    .bootstrap = 1000,
};

// --small (CI): two subjects per set, a 64 px model with C = 8 and window 2, a few steps, a
// short slice range. Checks that every output is produced, not the numbers.
static const demo_config demo_small = {
    .name = "small",
    .healthy = 2, .test = 2, .val_test = 1, .val_healthy = 1, .healthy_test = 1,
    .model = "img_size=64,patch_size=4,in_chans=1,embed_dim=8,num_heads=1/1/2/2,window=2",
    .epochs = 2, .batch = 8, .warmup_epochs = 1, .lr = 1e-3, .mask_size = 8, .max_steps = 6,
    .window = 16, .stride = 8, .residual = DEMO_RESIDUAL,
    .train_slices = {"80", "89"}, .test_slices = {"80", "89"},
    .bootstrap = 50,
};

static void usage(FILE *f) {
    fprintf(f,
            "Usage: anoswin demo [options]\n"
            "\n"
            "The whole pipeline on the embedded synthetic data (no download): synthesise healthy and lesion\n"
            "scans (data synth), train a demo-sized Swin MAE (train), calibrate the detection threshold on\n"
            "held-out healthy scans (calibrate), detect lesions with sliding masks over the whole trained slice\n"
            "range (detect), evaluate (eval), print a Table-1-shaped summary and the path of the HTML report.\n"
            "Each step runs this executable with the command line it prints.\n"
            "\n"
            "With --data DIR the same recipe runs on a data set of your own in the same layout: DIR/healthy/\n"
            "(healthy scans: every 4th subject, at least 2, is kept out of training to calibrate on; needs at\n"
            "least 6) and DIR/test/ (scans with lesion labels), in a layout data list recognises.\n"
            "\n"
            "Options:\n"
            "  -o, --out DIR       output folder (default demo-out)\n"
            "  -m, --minutes M     safety bound on training minutes (default 10): training is stopped after\n"
            "                      the current step at the bound and the demo goes on with that checkpoint\n"
            "  -s, --seed S        seed of data, training and bootstrap (default 1)\n"
            "  -t, --threads T     threads (default: all cores)\n"
            "  -f, --force         redo every step (default: reuse steps finished with the same options)\n"
            "      --small         tiny data, model and step count (seconds; for tests)\n"
            "      --data DIR      your own data set (see above) instead of the synthetic one\n"
            "      --modality M    t1, t2 (default) or flair: the scans of --data to use\n"
            "  -h, --help\n"
            "\n"
            "Writes OUT/data (training set), OUT/val-data (validation set), OUT/healthy-test (held-out\n"
            "healthy scans), OUT/train (run: log.csv, checkpoints, reconstructions), OUT/calibration.json,\n"
            "OUT/detect, OUT/detect-val and OUT/detect-healthy (maps and masks per subject), OUT/report\n"
            "(report.{html,md,csv,json}, panels/, summary.txt) and OUT/stamps. With --data: OUT/train.csv\n"
            "and OUT/calibration.csv (the split of DIR/healthy) instead of the data folders.\n");
}

typedef struct demo_run {
    const char *out;
    int force, redo;  // redo: an earlier step ran, so every later one runs too
    int step, nsteps;
    double t_start;
    double step_seconds[12];
    const char *step_name[12];
    int reused[12];
} demo_run;

// Reads the first line of a stamp (the command line it ran); "" when absent.
static void stamp_read(const char *path, char *line, size_t n) {
    line[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    if (fgets(line, (int)n, f)) line[strcspn(line, "\n")] = 0;
    fclose(f);
}

// One step: reuse if its stamp holds the same command line, else remove `outputs` (a
// NULL-terminated list of folders), run, and stamp. note: extra stamp text (may be NULL).
static int demo_step(demo_run *d, const char *name, const arglist *a, const char *const *outputs,
                     const char *stdout_path, double time_limit, int *timed_out) {
    char line[8192], stamp[4200], dir[4200], old[8192];
    arg_line(a, line, sizeof line);
    fs_join(dir, sizeof dir, d->out, "stamps");
    char fname[128];
    snprintf(fname, sizeof fname, "%s.txt", name);
    fs_join(stamp, sizeof stamp, dir, fname);
    int k = d->step++;
    d->step_name[k] = name;
    stamp_read(stamp, old, sizeof old);
    if (!d->force && !d->redo && !strcmp(old, line)) {
        fprintf(stderr, "\n[%d/%d] %s: reusing the finished step (%s; --force redoes it)\n", k + 1, d->nsteps, name,
                stamp);
        d->reused[k] = 1;
        // Time of the original run, for the summary.
        FILE *f = fopen(stamp, "r");
        if (f) {
            char buf[8192];
            while (fgets(buf, sizeof buf, f))
                if (!strncmp(buf, "seconds ", 8)) d->step_seconds[k] = atof(buf + 8);
            fclose(f);
        }
        if (timed_out) {
            *timed_out = 0;
            f = fopen(stamp, "r");
            if (f) {
                char buf[8192];
                while (fgets(buf, sizeof buf, f))
                    if (!strncmp(buf, "stopped-by-time-bound", 21)) *timed_out = 1;
                fclose(f);
            }
        }
        return 0;
    }
    d->redo = 1;
    if (fs_mkdirs(dir)) return -1;
    remove(stamp);
    for (int i = 0; outputs && outputs[i]; i++)
        if (fs_remove_tree(outputs[i])) return -1;
    if (stdout_path) {  // its folder may just have been removed
        char parent[4200];
        snprintf(parent, sizeof parent, "%s", stdout_path);
        char *slash = strrchr(parent, '/');
        if (slash && slash != parent) {
            *slash = 0;
            if (fs_mkdirs(parent)) return -1;
        }
    }
    fprintf(stderr, "\n[%d/%d] %s (demo elapsed %.0f s)\n  $ %s\n", k + 1, d->nsteps, name,
            now_seconds() - d->t_start, line);
    double t0 = now_seconds();
    int rc = arg_run(a, stdout_path, time_limit, timed_out);
    if (rc < 0) return -1;
    if (arg_interrupted()) return as_fail("demo: interrupted during %s", name);
    if (rc != 0) return as_fail("demo: step '%s' failed (exit %d): %s", name, rc, line);
    d->step_seconds[k] = now_seconds() - t0;
    char text[8400];
    int m = snprintf(text, sizeof text, "%s\nseconds %.1f\n%s", line, d->step_seconds[k],
                     timed_out && *timed_out ? "stopped-by-time-bound\n" : "");
    return fs_write_all(stamp, text, (size_t)m);
}

static int print_file(const char *path, FILE *to) {
    unsigned char *data;
    size_t n;
    if (fs_read_all(path, &data, &n)) return -1;
    fwrite(data, 1, n, to);
    free(data);
    return 0;
}

// --data: DIR/healthy split into a training manifest and a calibration manifest (every 4th
// subject in id order, at least 2), so that the threshold is calibrated on scans the model never saw.
static int split_healthy(const char *dir, const char *modality, const char *train_csv, const char *calib_csv,
                         int *n_train, int *n_calib, char *testdir, size_t ntest) {
    char hdir[4200];
    fs_join(hdir, sizeof hdir, dir, "healthy");
    fs_join(testdir, ntest, dir, "test");
    if (!fs_is_dir(hdir) || !fs_is_dir(testdir))
        return as_fail("%s: --data needs the folders healthy/ (to train and calibrate on) and test/ (with labels)",
                       dir);
    dataset d;
    if (dataset_open(&d, hdir, modality)) return -1;
    if (d.n < 6) {
        as_fail("%s: %d healthy scan%s; the demo needs at least 6 (4 to train on, 2 to calibrate on)", hdir, d.n,
                d.n == 1 ? "" : "s");
        dataset_free(&d);
        return -1;
    }
    subject *all = d.subjects, *tr = as_malloc(sizeof *tr * (size_t)d.n), *ca = as_malloc(sizeof *ca * (size_t)d.n);
    int nt = 0, nc = 0, every = d.n >= 8 ? 4 : d.n / 2;
    for (int i = 0; i < d.n; i++) {
        if (i % every == every - 1) ca[nc++] = all[i];
        else tr[nt++] = all[i];
    }
    dataset part = d;
    part.subjects = tr, part.n = nt;
    int rc = dataset_write_manifest(&part, train_csv);
    part.subjects = ca, part.n = nc;
    if (!rc) rc = dataset_write_manifest(&part, calib_csv);
    free(tr), free(ca);
    dataset_free(&d);
    *n_train = nt, *n_calib = nc;
    return rc;
}

// detect's map options of the demo.
static void add_map_options(arglist *a, const demo_config *cfg, const char *modality, long threads) {
    arg_add(a, "--modality"), arg_add(a, "%s", modality);
    arg_add(a, "--mask-size"), arg_add(a, "%d", cfg->window);
    arg_add(a, "--stride"), arg_add(a, "%d", cfg->stride), arg_add(a, "--residual"), arg_add(a, "%s", cfg->residual);
    arg_add(a, "--z-first"), arg_add(a, "%s", cfg->test_slices[0]);
    arg_add(a, "--z-last"), arg_add(a, "%s", cfg->test_slices[1]);
    arg_add(a, "--threads"), arg_add(a, "%ld", threads);
}

int cmd_demo(int argc, char **argv) {
    enum { OPT_SMALL = 1000, OPT_DATA, OPT_MODALITY };
    static const struct option longopts[] = {
        {"out", required_argument, 0, 'o'},     {"minutes", required_argument, 0, 'm'},
        {"seed", required_argument, 0, 's'},    {"threads", required_argument, 0, 't'},
        {"force", no_argument, 0, 'f'},         {"small", no_argument, 0, OPT_SMALL},
        {"data", required_argument, 0, OPT_DATA}, {"modality", required_argument, 0, OPT_MODALITY},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0},
    };
    const char *out = "demo-out", *user_data = NULL, *modality = "t2";
    double minutes = 10;
    long seed = 1, threads = 0;
    int force = 0, small = 0;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":o:m:s:t:fh", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'm':
            if (cli_parse_double("demo", "minutes", optarg, 0.05, 1e6, &minutes)) return EXIT_USAGE;
            break;
        case 's':
            if (cli_parse_int("demo", "seed", optarg, 0, 1000000000L, &seed)) return EXIT_USAGE;
            break;
        case 't':
            if (cli_parse_int("demo", "threads", optarg, 1, 1024, &threads)) return EXIT_USAGE;
            break;
        case 'f': force = 1; break;
        case OPT_SMALL: small = 1; break;
        case OPT_DATA: user_data = optarg; break;
        case OPT_MODALITY:
            if (strcmp(optarg, "t1") && strcmp(optarg, "t2") && strcmp(optarg, "flair"))
                return cli_usage_error("demo", "--modality: expected t1, t2 or flair, got '%s'", optarg);
            modality = optarg;
            break;
        case 'h': usage(stdout); return EXIT_OK;
        case ':': return cli_usage_error("demo", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("demo", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc) return cli_usage_error("demo", "unexpected argument '%s'", argv[optind]);
    if (!out[0]) return cli_usage_error("demo", "--out: empty folder name");
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? n : 1;
    }
    const demo_config *cfg = small ? &demo_small : &demo_full;

    arg_catch_signals(1);

    if (fs_mkdirs(out)) return cli_report_error();
    char data[4200], val[4200], htest[4200], trainrun[4200], det[4200], detval[4200], dethealthy[4200], rep[4200],
        ckpt[4400], summary[4400], html[4400], logcsv[4400], calhealthy[4400], testdir[4400], valtestdir[4400],
        heldhealthy[4400], calib[4200], train_csv[4200], calib_csv[4200];
    fs_join(data, sizeof data, out, "data");
    fs_join(val, sizeof val, out, "val-data");
    fs_join(htest, sizeof htest, out, "healthy-test");
    fs_join(trainrun, sizeof trainrun, out, "train");
    fs_join(det, sizeof det, out, "detect");
    fs_join(detval, sizeof detval, out, "detect-val");
    fs_join(dethealthy, sizeof dethealthy, out, "detect-healthy");
    fs_join(rep, sizeof rep, out, "report");
    fs_join(calib, sizeof calib, out, "calibration.json");
    fs_join(train_csv, sizeof train_csv, out, "train.csv");
    fs_join(calib_csv, sizeof calib_csv, out, "calibration.csv");
    fs_join(ckpt, sizeof ckpt, trainrun, "last.safetensors");
    fs_join(logcsv, sizeof logcsv, trainrun, "log.csv");
    fs_join(summary, sizeof summary, rep, "summary.txt");
    fs_join(html, sizeof html, rep, "report.html");
    fs_join(calhealthy, sizeof calhealthy, val, "healthy");
    fs_join(heldhealthy, sizeof heldhealthy, htest, "healthy");
    fs_join(testdir, sizeof testdir, data, "test");
    fs_join(valtestdir, sizeof valtestdir, val, "test");
    int n_train = cfg->healthy, n_calib = cfg->val_healthy;
    if (user_data) {  // the user's data: train on part of healthy/, calibrate on the rest, test on test/
        if (split_healthy(user_data, modality, train_csv, calib_csv, &n_train, &n_calib, testdir, sizeof testdir))
            return cli_report_error();
        snprintf(data, sizeof data, "%s", train_csv);
        snprintf(calhealthy, sizeof calhealthy, "%s", calib_csv);
        snprintf(heldhealthy, sizeof heldhealthy, "%s", calib_csv);
    }

    demo_run d = {.out = out, .force = force, .nsteps = user_data ? 5 : 9, .t_start = now_seconds()};
    if (user_data)
        fprintf(stderr,
                "anoswin demo on %s (%s): %d healthy scans to train on, %d to calibrate on, model %s, %d epochs "
                "(bound %.1f min), seed %ld, %ld threads, output in %s/\n",
                user_data, modality, n_train, n_calib, cfg->model, cfg->epochs, minutes, seed, threads, out);
    else
        fprintf(stderr,
                "anoswin demo (%s configuration): %d healthy + %d lesion synthetic subjects, model %s,\n"
                "%d epochs (bound %.1f min), seed %ld, %ld threads, output in %s/\n",
                cfg->name, cfg->healthy, cfg->test, cfg->model, cfg->epochs, minutes, seed, threads, out);

    arglist a = {0};
    int rc = -1, timed_out = 0;
    if (!user_data) {
        // 1. training + test data, 2. a validation set (other seed: other subjects) whose healthy scans
        // calibrate the threshold, 3. held-out healthy scans for the false-positive volume
        const char *names[3] = {"data", "val-data", "healthy-test"}, *dirs[3] = {data, val, htest};
        int nh[3] = {cfg->healthy, cfg->val_healthy, cfg->healthy_test}, nt[3] = {cfg->test, cfg->val_test, 0};
        for (int k = 0; k < 3; k++) {
            const char *outs[] = {dirs[k], NULL};
            arg_add(&a, "data"), arg_add(&a, "synth"), arg_add(&a, "--out"), arg_add(&a, "%s", dirs[k]);
            arg_add(&a, "--healthy"), arg_add(&a, "%d", nh[k]), arg_add(&a, "--test"), arg_add(&a, "%d", nt[k]);
            arg_add(&a, "--modality"), arg_add(&a, "t2");
            arg_add(&a, "--seed"), arg_add(&a, "%ld", seed + 1000003L * k);
            arg_add(&a, "--threads"), arg_add(&a, "%ld", threads);
            if (demo_step(&d, names[k], &a, outs, NULL, 0, NULL)) goto done;
            arg_free(&a);
        }
    }
    {  // training
        const char *outs[] = {trainrun, NULL};
        arg_add(&a, "train"), arg_add(&a, "--data"), arg_add(&a, "%s", data), arg_add(&a, "--modality");
        arg_add(&a, "%s", modality);
        arg_add(&a, "--out"), arg_add(&a, "%s", trainrun), arg_add(&a, "--config"), arg_add(&a, "%s", cfg->model);
        arg_add(&a, "--z-first"), arg_add(&a, "%s", cfg->train_slices[0]);
        arg_add(&a, "--z-last"), arg_add(&a, "%s", cfg->train_slices[1]);
        arg_add(&a, "--epochs"), arg_add(&a, "%d", cfg->epochs), arg_add(&a, "--batch"), arg_add(&a, "%d", cfg->batch);
        arg_add(&a, "--lr"), arg_add(&a, "%g", cfg->lr), arg_add(&a, "--warmup-epochs"), arg_add(&a, "%d", cfg->warmup_epochs);
        arg_add(&a, "--mask-size"), arg_add(&a, "%d", cfg->mask_size);
        if (cfg->max_steps > 0) arg_add(&a, "--max-steps"), arg_add(&a, "%ld", cfg->max_steps);
        arg_add(&a, "--save-every"), arg_add(&a, "0");
        arg_add(&a, "--seed"), arg_add(&a, "%ld", seed), arg_add(&a, "--threads"), arg_add(&a, "%ld", threads);
        if (demo_step(&d, "train", &a, outs, NULL, minutes * 60, &timed_out)) goto done;
        arg_free(&a);
    }
    {  // calibration on healthy scans the model never saw
        const char *outs[] = {calib, NULL};
        arg_add(&a, "calibrate"), arg_add(&a, "--checkpoint"), arg_add(&a, "%s", ckpt);
        arg_add(&a, "--out"), arg_add(&a, "%s", calib);
        add_map_options(&a, cfg, modality, threads);
        arg_add(&a, "%s", calhealthy);
        if (demo_step(&d, "calibrate", &a, outs, NULL, 0, NULL)) goto done;
        arg_free(&a);
    }
    {  // detection: validation lesions, held-out healthy scans, the test set
        const char *names[3] = {"detect-val", "detect-healthy", "detect"}, *dirs[3] = {detval, dethealthy, det};
        const char *inputs[3] = {valtestdir, heldhealthy, testdir};
        for (int k = user_data ? 1 : 0; k < 3; k++) {
            const char *outs[] = {dirs[k], NULL};
            arg_add(&a, "detect"), arg_add(&a, "--checkpoint"), arg_add(&a, "%s", ckpt);
            arg_add(&a, "--out"), arg_add(&a, "%s", dirs[k]), arg_add(&a, "--calibration"), arg_add(&a, "%s", calib);
            add_map_options(&a, cfg, modality, threads);
            arg_add(&a, "%s", inputs[k]);
            if (demo_step(&d, names[k], &a, outs, NULL, 0, NULL)) goto done;
            arg_free(&a);
        }
    }
    {  // evaluation and reports
        const char *outs[] = {rep, NULL};
        arg_add(&a, "eval"), arg_add(&a, "--pred"), arg_add(&a, "%s", det), arg_add(&a, "--data"), arg_add(&a, "%s", testdir);
        arg_add(&a, "--modality"), arg_add(&a, "%s", modality);
        if (!user_data)
            arg_add(&a, "--val-data"), arg_add(&a, "%s", valtestdir), arg_add(&a, "--val-pred"), arg_add(&a, "%s", detval);
        arg_add(&a, "--healthy"), arg_add(&a, "%s", heldhealthy), arg_add(&a, "--healthy-pred"), arg_add(&a, "%s", dethealthy);
        if (user_data) arg_add(&a, "--dataset"), arg_add(&a, "%s (%s)", user_data, modality);
        else arg_add(&a, "--dataset"), arg_add(&a, "anoswin synth T2 (%d test subjects)", cfg->test);
        arg_add(&a, "--out"), arg_add(&a, "%s", rep), arg_add(&a, "--log"), arg_add(&a, "%s", logcsv);
        arg_add(&a, "--bootstrap"), arg_add(&a, "%d", cfg->bootstrap), arg_add(&a, "--seed"), arg_add(&a, "%ld", seed);
        // The table goes to report/summary.txt and is printed below, also when the step is reused.
        if (demo_step(&d, "eval", &a, outs, summary, 0, NULL)) goto done;
        arg_free(&a);
    }
    printf("\n");
    if (print_file(summary, stdout)) goto done;
    printf("\nDemo configuration '%s': model %s; %d epochs of batch %d on %d healthy scans; detection window %d px "
           "at stride %d px, %s residual in residual units, detect's calibrated post-processing (threshold from %d "
           "healthy scans), slices %s..%s.\n",
           cfg->name, cfg->model, cfg->epochs, cfg->batch, n_train, cfg->window, cfg->stride, cfg->residual, n_calib,
           cfg->test_slices[0], cfg->test_slices[1]);
    if (user_data)
        printf("The healthy scans' false-positive volume is measured on the calibration scans themselves (your "
               "data set has no other held-out healthy scans), so it is optimistic.\n");
    if (timed_out)
        printf("NOTE: training was stopped by the %.1f-minute bound before its last epoch (not reproducible "
               "across machines); see %s.\n",
               minutes, logcsv);
    printf("Step times (s):");
    for (int k = 0; k < d.step; k++) printf(" %s %.0f%s", d.step_name[k], d.step_seconds[k], d.reused[k] ? " (reused)" : "");
    printf("; this run %.0f s\n", now_seconds() - d.t_start);
    printf("Report: %s\n", html);
    rc = 0;
done:
    arg_free(&a);
    if (rc) return arg_interrupted() ? (fprintf(stderr, "anoswin: %s\n", as_error()), 128 + arg_interrupted())
                                    : cli_report_error();
    return EXIT_OK;
}
