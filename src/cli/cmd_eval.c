// anoswin eval: compare detect outputs with ground truth under the paper's and the field's
// protocols, print a Table-1-shaped summary and write the reports (src/eval/).
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "data/dataset.h"  // dataset_open, dataset_keep_split
#include "eval/eval.h"     // eval_run
#include "eval/report.h"   // report_print_*, report_write, eval_panels_write
#include "util/error.h"
#include "util/fs.h"

static void usage(FILE *f) {
    fprintf(f,
            "Usage: anoswin eval --pred DIR --data DIR|CSV [options]\n"
            "Compares `anoswin detect` outputs (DIR/<subject>/{anomaly_map,mask}.nii.gz, summary.json) with the\n"
            "ground truth (label > 0) on the native grid, inside the brain mask (the dataset's mask, else\n"
            "image > 0), over the axial slices detect scored (--slices, else summary.json \"slice_range\",\n"
            "else all slices). Subjects are paired by id.\n"
            "\n"
            "Protocols (each labelled in the output):\n"
            "  paper          detect's post-processed mask (appendix A.1)\n"
            "  val-threshold  threshold on the map with the best pooled Dice on the validation subjects\n"
            "  oracle         best pooled Dice on the test set itself (OPTIMISTIC)\n"
            "  healthy-fpr-N%% thresholds giving 1/5/10%% false positives on held-out healthy scans\n"
            "Aggregations: per-volume mean ± std [95%% bootstrap CI] over the subjects with lesion voxels,\n"
            "pooled voxels of all subjects, per-slice (reference code). Lesion-free test subjects and the\n"
            "--healthy scans are reported by their false-positive volume (ml) instead.\n"
            "AUPRC/AUROC come from the continuous map (sklearn-exact); undefined values print n/a.\n"
            "\n"
            "Options:\n"
            "  -p, --pred DIR           detect output folder (one subfolder per subject)\n"
            "  -d, --data DIR|CSV       the test data set (any layout of `anoswin data list`, or a manifest)\n"
            "  -m, --modality M         t1, t2 (default) or flair\n"
            "      --split S            test subjects = the data set's split S (default: every subject\n"
            "                           with a label and predictions, except the validation split)\n"
            "      --val-split S        validation subjects = split S of --data (predictions in --pred)\n"
            "      --val-data DIR|CSV   validation subjects from another data set...\n"
            "      --val-pred DIR       ...with their detect outputs here (default --pred)\n"
            "      --healthy DIR|CSV    held-out healthy scans for the FPR thresholds...\n"
            "      --healthy-pred DIR   ...with their detect outputs here (default --pred)\n"
            "      --slices LO:HI       RAS axial range to evaluate (overrides summary.json)\n"
            "      --method NAME        method name in the table (default \"Ano-swinMAE (anoswin)\")\n"
            "      --dataset NAME       data set name in the table (default: the --data path)\n"
            "  -o, --out RUNDIR         write report.{md,csv,json,html} and panels/ there\n"
            "      --log CSV            training log for the loss curve (default RUNDIR/log.csv)\n"
            "      --latent DIR         an `anoswin latent` output for the report's latent-space section\n"
            "                           (default RUNDIR/latent when it holds one)\n"
            "      --no-panels          do not draw the per-subject pictures (nor the 3-D viewer)\n"
            "      --no-viewer          leave the 3-D viewer (NiiVue, RUNDIR/viewer/) out of report.html\n"
            "      --bootstrap N        bootstrap resamples (default 1000; 0 = no intervals)\n"
            "      --seed S             bootstrap seed (default 0)\n"
            "      --json               print JSON on stdout instead of the table\n"
            "  -q, --quiet              no progress on stderr\n"
            "  -h, --help\n");
}

// Subjects of `d` (optionally one split) with predictions in pred_dir become inputs of `role`.
// Returns how many were added; *skipped counts subjects without predictions.
static int add_inputs(eval_input **in, int *n, const dataset *d, const char *split, const char *exclude_split,
                      const char *pred_dir, int role, int need_label, int *skipped) {
    int added = 0;
    for (int i = 0; i < d->n; i++) {
        const subject *s = &d->subjects[i];
        if (split && strcmp(s->split, split) != 0) continue;
        if (!split && exclude_split && !strcmp(s->split, exclude_split)) continue;
        if (need_label && !*s->label) continue;
        char dir[4096], map[4200];
        fs_join(dir, sizeof dir, pred_dir, s->id);
        fs_join(map, sizeof map, dir, "anomaly_map.nii.gz");
        if (!fs_exists(map)) {
            (*skipped)++;
            continue;
        }
        *in = as_realloc(*in, (size_t)(*n + 1) * sizeof **in);
        (*in)[*n] = (eval_input){s->id, as_strdup(dir), s->image, s->label, s->mask, role};
        (*n)++;
        added++;
    }
    return added;
}

int cmd_eval(int argc, char **argv) {
    enum { O_SPLIT = 256, O_VSPLIT, O_VDATA, O_VPRED, O_HEALTHY, O_HPRED, O_SLICES, O_METHOD, O_DATASET, O_LOG,
           O_NOPANELS, O_BOOT, O_SEED, O_JSON, O_LATENT, O_NOVIEWER };
    static const struct option opts[] = {
        {"pred", required_argument, 0, 'p'},       {"data", required_argument, 0, 'd'},
        {"modality", required_argument, 0, 'm'},   {"split", required_argument, 0, O_SPLIT},
        {"val-split", required_argument, 0, O_VSPLIT}, {"val-data", required_argument, 0, O_VDATA},
        {"val-pred", required_argument, 0, O_VPRED}, {"healthy", required_argument, 0, O_HEALTHY},
        {"healthy-pred", required_argument, 0, O_HPRED}, {"slices", required_argument, 0, O_SLICES},
        {"method", required_argument, 0, O_METHOD}, {"dataset", required_argument, 0, O_DATASET},
        {"out", required_argument, 0, 'o'},        {"log", required_argument, 0, O_LOG},
        {"no-panels", no_argument, 0, O_NOPANELS}, {"bootstrap", required_argument, 0, O_BOOT},
        {"seed", required_argument, 0, O_SEED},    {"json", no_argument, 0, O_JSON},
        {"latent", required_argument, 0, O_LATENT}, {"no-viewer", no_argument, 0, O_NOVIEWER},
        {"quiet", no_argument, 0, 'q'},            {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *pred = NULL, *data = NULL, *modality = "t2", *split = NULL, *val_split = NULL, *val_data = NULL;
    const char *val_pred = NULL, *healthy = NULL, *healthy_pred = NULL, *method = "Ano-swinMAE (anoswin)";
    const char *dataset_name = NULL, *out = NULL, *log = NULL, *latent = NULL;
    int panels = 1, viewer = 1, json = 0, quiet = 0;
    eval_options opt;
    eval_options_default(&opt);
    optind = 1;
    int c;
    long v;
    while ((c = getopt_long(argc, argv, "p:d:m:o:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'p': pred = optarg; break;
        case 'd': data = optarg; break;
        case 'm': modality = optarg; break;
        case O_SPLIT: split = optarg; break;
        case O_VSPLIT: val_split = optarg; break;
        case O_VDATA: val_data = optarg; break;
        case O_VPRED: val_pred = optarg; break;
        case O_HEALTHY: healthy = optarg; break;
        case O_HPRED: healthy_pred = optarg; break;
        case O_SLICES: {
            int lo, hi, used = 0;
            if (sscanf(optarg, "%d:%d%n", &lo, &hi, &used) != 2 || optarg[used] || lo < 0 || hi < lo)
                return cli_usage_error("eval", "--slices wants LO:HI with 0 <= LO <= HI, not '%s'", optarg);
            opt.slice_lo = lo, opt.slice_hi = hi;
            break;
        }
        case O_METHOD: method = optarg; break;
        case O_DATASET: dataset_name = optarg; break;
        case 'o': out = optarg; break;
        case O_LOG: log = optarg; break;
        case O_NOPANELS: panels = 0; break;
        case O_NOVIEWER: viewer = 0; break;
        case O_BOOT:
            if (cli_parse_int("eval", "bootstrap", optarg, 0, 1000000, &v) != 0) return EXIT_USAGE;
            opt.bootstrap_reps = (int)v;
            break;
        case O_SEED:
            if (cli_parse_int("eval", "seed", optarg, 0, 0x7fffffffffffffffL, &v) != 0) return EXIT_USAGE;
            opt.seed = (uint64_t)v;
            break;
        case O_JSON: json = 1; break;
        case O_LATENT: latent = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return EXIT_OK;
        default: return cli_usage_error("eval", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("eval", "unexpected argument '%s'", argv[optind]);
    if (!pred || !data) return cli_usage_error("eval", "--pred and --data are required");
    if (val_split && val_data) return cli_usage_error("eval", "give --val-split or --val-data, not both");
    if (!fs_is_dir(pred)) {
        as_fail("%s: not a folder of detect outputs", pred);
        return cli_report_error();
    }
    opt.verbose = !quiet;

    dataset dtest = {0}, dval = {0}, dhealthy = {0};
    eval_input *in = NULL;
    int n = 0, skipped = 0, rc = EXIT_BAD_INPUT;
    eval_result res = {0};
    if (dataset_open(&dtest, data, modality) != 0) goto done;
    int ntest = add_inputs(&in, &n, &dtest, split, val_split, pred, EVAL_TEST, 1, &skipped);
    if (ntest == 0) {
        as_fail("%s: no subject with a label%s%s%s has predictions in %s", data, split ? " in split '" : "",
                split ? split : "", split ? "'" : "", pred);
        goto done;
    }
    if (val_split && add_inputs(&in, &n, &dtest, val_split, NULL, pred, EVAL_VAL, 1, &skipped) == 0) {
        as_fail("%s: no subject of split '%s' with a label has predictions in %s", data, val_split, pred);
        goto done;
    }
    if (val_data) {
        if (dataset_open(&dval, val_data, modality) != 0) goto done;
        if (add_inputs(&in, &n, &dval, NULL, NULL, val_pred ? val_pred : pred, EVAL_VAL, 1, &skipped) == 0) {
            as_fail("%s: no validation subject with a label has predictions in %s", val_data, val_pred ? val_pred : pred);
            goto done;
        }
    }
    if (healthy) {
        if (dataset_open(&dhealthy, healthy, modality) != 0) goto done;
        const char *hp = healthy_pred ? healthy_pred : pred;
        if (add_inputs(&in, &n, &dhealthy, NULL, NULL, hp, EVAL_HEALTHY, 0, &skipped) == 0) {
            as_fail("%s: no healthy scan has predictions in %s", healthy, hp);
            goto done;
        }
    }
    if (skipped && !quiet) fprintf(stderr, "eval: %d subject(s) without detect outputs skipped\n", skipped);
    if (eval_run(&res, in, n, &opt) != 0) goto done;

    report_meta meta = {method, dataset_name ? dataset_name : data, pred, NULL, NULL};
    char logpath[4096];
    if (out) {
        if (fs_mkdirs(out) != 0) goto done;
        if (log) meta.log_csv = log;
        else {
            fs_join(logpath, sizeof logpath, out, "log.csv");
            meta.log_csv = logpath;
        }
        char bundle[4096];
        viewer = viewer && panels;
        if (viewer && cli_find_source_file("third_party/niivue/niivue.umd.js", bundle, sizeof bundle) != 0) {
            fprintf(stderr, "eval: warning: 3-D viewer left out of the report: third_party/niivue/niivue.umd.js not "
                            "found (set ANOSWIN_SOURCE_DIR to the source tree)\n");
            viewer = 0;
        }
        if (viewer) meta.viewer_bundle = bundle;
        if (panels)
            for (int i = 0, t = 0; i < n; i++)
                if (in[i].role == EVAL_TEST && eval_panels_write(&in[i], &res.subjects[t++], out, viewer) != 0)
                    goto done;
        if (latent && report_latent_import(latent, out) != 0) goto done;
        if (report_write(&res, &meta, out) != 0) goto done;
    }
    if (json) report_print_json(stdout, &res, &meta);
    else report_print_table(stdout, &res, &meta);
    if (out && !quiet) fprintf(stderr, "eval: reports in %s/report.{md,csv,json,html}\n", out);
    rc = EXIT_OK;
done:
    if (rc != EXIT_OK) cli_report_error();
    eval_result_free(&res);
    for (int i = 0; i < n; i++) free((char *)in[i].pred_dir);
    free(in);
    dataset_free(&dtest);
    dataset_free(&dval);
    dataset_free(&dhealthy);
    return rc;
}
