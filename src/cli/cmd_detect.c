// anoswin detect: anomaly maps and lesion masks for new scans (src/detect/detect.h).
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "data/dataset.h"
#include "detect/detect.h"
#include "detect/model_adapter.h"
#include "nn/nn.h"  // nn_set_threads
#include "util/error.h"
#include "util/fs.h"
#include "util/hash.h"  // hash_floats
#include "util/timer.h"

static void usage(FILE *f, int calibrate) {
    if (calibrate) {
        fprintf(f,
                "Usage: anoswin calibrate --checkpoint C --out FILE [map options] HEALTHY...\n"
                "\n"
                "Computes the anomaly maps of healthy scans (files, folders in a known layout or a manifest)\n"
                "with detect's map options (--mask-size, --stride, --residual, --window-norm, --slice-norm,\n"
                "--norm, --z-first/--z-last, --modality, --threads, --batch, --maps-from) and writes FILE\n"
                "(JSON): the map value exceeded by a fraction f of their brain voxels, for f from 1e-5 to 0.5.\n"
                "By default the calibration is normative (--normative SIGMA, default %g px; 0: one global\n"
                "threshold): at each voxel of the model grid the mean and sd of the healthy maps, smoothed with a\n"
                "Gaussian of SIGMA px and written beside FILE as .normative.f32; maps then become z-scores against\n"
                "them and the thresholds are z-scores (each healthy scan scored against the others).\n"
                "--scales LIST (default %s): the map is also scored after smoothing each slice with a Gaussian\n"
                "of each listed px (0: as is), each scale with its own normative model; the score is the\n"
                "maximum over scales of each scale's z-score in units of its healthy 1e-3 quantile, so that a\n"
                "large lesion's weak but coherent residual counts as well as a small lesion's strong one.\n"
                "detect --calibration FILE then sets its thresholds at --fpr / --fpr-low from it, and refuses\n"
                "it if the map settings or the checkpoint's weights differ.\n"
                "Each healthy scan is checked against what the model was trained on, as detect does (see\n"
                "anoswin detect --help, 'Input guard'); --force silences those warnings.\n",
                DETECT_DEFAULT_NORMATIVE_SIGMA, DETECT_DEFAULT_SCALES);
        return;
    }
    fprintf(f,
            "Usage: anoswin detect --checkpoint C --out DIR [options] INPUT...\n"
            "\n"
            "Sliding-mask anomaly detection (paper 2.3, appendix A.1). INPUT: NIfTI scans (the subject is the\n"
            "file name without .nii[.gz]), folders in a known layout (BraTS21, benchmark, WMH, MSLUB, IXI) or a\n"
            "manifest .csv. For each subject DIR/<subject>/ gets, on the input's native grid and header:\n"
            "  anomaly_map.nii.gz      coarse map in [0,1] (float32)\n"
            "  reconstruction.nii.gz   the model's prediction under each scored window, the input elsewhere\n"
            "  mask.nii.gz             final binary lesion mask (uint8)\n"
            "  overlays/z<k>.png       slices with findings: input | reconstruction | map | mask [| truth]\n"
            "  summary.json            lesion volume (ml), components, slice_range, mask size, timings, ...\n"
            "\n"
            "Options:\n"
            "  --checkpoint C      model checkpoint (.safetensors) (required)\n"
            "  --out DIR           output folder (required)\n"
            "  --preset P          post-processing: calibrated (default: every finding decided on a threshold\n"
            "                      calibrated on healthy scans, empty masks allowed; needs --healthy or\n"
            "                      --calibration) or the paper's A.1 with top N objects per slice: brats\n"
            "                      (k=3, N=2), mslub or wmh (k=1, N=7)\n"
            "  --healthy PATH      healthy scans (folder, manifest or file; repeatable) to calibrate on first;\n"
            "                      the calibration is written to DIR/calibration.json\n"
            "  --calibration FILE  a calibration from anoswin calibrate (or an earlier DIR/calibration.json)\n"
            "  --fpr F             voxel false-positive rate on healthy scans for the detection threshold\n"
            "                      (default %g)\n"
            "  --fpr-low F         rate for the hysteresis low threshold (default %g; = --fpr: no hysteresis)\n"
            "  --normative SIGMA   with --healthy: normative calibration smoothed with SIGMA px (default %g;\n"
            "                      0: one global threshold); see anoswin calibrate --help\n"
            "  --scales LIST       with --healthy: smoothing scales (px) of the normative score (default %s)\n"
            "  --set KEY=VALUE     override one post-processing parameter (repeatable): ndim, erode_k,\n"
            "                      threshold, connectivity, keep_top, dilate_k, rank_on, seg_classes, mrf_beta,\n"
            "                      mrf_radius, seg_iterations, match, keep_unmatched, grow (px: add\n"
            "                      tissue components mostly within that distance of the mask; 0 = the paper),\n"
            "                      bound (px a refined object may extend past its detected object, 6; 0 =\n"
            "                      the paper), floor (refined voxels need map >= floor x threshold, 0.5),\n"
            "                      and for calibrated: low, min_voxels, refine (0|1)\n"
            "  --model-set K=V,... settings over the checkpoint's model config, for inference (repeatable;\n"
            "                      e.g. autoDDPM's sampler=ddim,inference_steps=100); give calibrate and\n"
            "                      detect the same; one that changes a weight's shape fails the load\n"
            "  --mask-size N       sliding mask side in px: 64 (default) or 32 (any multiple of the patch)\n"
            "  --origin X,Y        fixed grid origin (column, row on the model grid; snapped down to the patch)\n"
            "                      instead of the brain's bounding box\n"
            "  --residual R        abs (default, the paper's L1 residual) or positive (only input brighter\n"
            "                      than the reconstruction: hyperintense findings, as in T2 and FLAIR)\n"
            "  --brain-only        residual set to 0 outside the brain mask before the per-window scaling\n"
            "  --window-norm N     minmax (the paper: each window's residual scaled to 0..1) or none (the raw\n"
            "                      residual, comparable across windows); default: none for calibrated,\n"
            "                      minmax for the paper's presets\n"
            "  --slice-norm N      max (the paper: each slice map divided by its maximum) or none (residual\n"
            "                      units, comparable across slices and scans); default as --window-norm\n"
            "  --maps-from DIR     reuse DIR/<subject>/model_grid_map.f32 of an earlier run with the same map\n"
            "                      settings instead of running the model (to try post-processing settings)\n"
            "  --stride N          grid step in px (default: the mask size, the paper's non-overlapping grid);\n"
            "                      smaller steps overlap the windows, whose scores are averaged\n"
            "  --z-first K         first RAS axial slice (default 75)\n"
            "  --z-last K          last RAS axial slice, inclusive (default 94)\n"
            "  --all-slices        every axial slice\n"
            "  --norm N            intensity scaling: minmax (default, as in training) or percentile\n"
            "  --modality M        t1, t2 (default) or flair, for folders\n"
            "  --threads T         threads (default: all)\n"
            "  --precision P       fp32 (default) or bf16 (GEMM operands in bfloat16, needs AVX512-BF16)\n"
            "  --batch B           masked variants per forward (default 8); a whole-image method\n"
            "                      (vae, fanogan, autoddpm): slices per forward\n"
            "  --attention-maps    also write attention/z<k>_stage<s>.png (channel mean of each encoder stage)\n"
            "  --no-overlays       skip the overlay PNGs\n"
            "  --quiet             no progress on stderr\n"
            "  --save-model-grid   also write model_grid_map.f32 (the maps on the model grid, raw float32\n"
            "                      (slices, S, S); for --maps-from and tests)\n"
            "  --force             no input guard warnings (summary.json still records the differences)\n"
            "\n"
            "Input guard: train records in the checkpoint what it trained on (modality, grid, voxel size,\n"
            "foreground volume, brain intensity distribution). Each scan unlike that gets one line per\n"
            "difference on stderr, 'anoswin: warning: <scan>: <difference>': another modality (when the\n"
            "data set or the file name says), another grid or voxel size, a foreground that is a head rather\n"
            "than a brain (skull not stripped), brain intensities far from training's. The model's\n"
            "findings on such a scan may mean nothing. summary.json's input_guard lists them and says\n"
            "whether --force was given. Checkpoints without a fingerprint (older, converted) are not\n"
            "checked, and detect says so once.\n"
            "\n"
            "A subject that cannot be processed is reported on stderr ('anoswin: <file>: <problem>') and\n"
            "skipped; the others are still written, and the exit status is then 1. A checkpoint that does not\n"
            "fit grey slices (input channels other than 1 or 3, a mask larger than its images) is refused\n"
            "before any subject is read. With --residual positive only findings brighter than their\n"
            "reconstruction are scored (hyperintense lesions on T2/FLAIR); hypointense ones are not seen.\n",
            DETECT_DEFAULT_FPR, DETECT_DEFAULT_FPR_LOW, DETECT_DEFAULT_NORMATIVE_SIGMA, DETECT_DEFAULT_SCALES);
}

enum { OPT_CKPT = 256, OPT_OUT, OPT_PRESET, OPT_SET, OPT_MASK, OPT_ORIGIN, OPT_ZF, OPT_ZL, OPT_ALL, OPT_NORM,
       OPT_MOD, OPT_THREADS, OPT_BATCH, OPT_ATT, OPT_NOOV, OPT_QUIET, OPT_SAVE_GRID,
       OPT_RESIDUAL, OPT_BRAIN_ONLY, OPT_STRIDE, OPT_WINDOW_NORM, OPT_SLICE_NORM, OPT_HEALTHY, OPT_CALIB,
       OPT_FPR, OPT_FPR_LOW, OPT_MAPS_FROM, OPT_NORMATIVE, OPT_SCALES, OPT_PRECISION, OPT_FORCE, OPT_MODEL_SET };

// The file name without folders and .nii[.gz].
static void file_subject_id(char *out, size_t n, const char *path) {
    const char *b = strrchr(path, '/');
    snprintf(out, n, "%s", b ? b + 1 : path);
    size_t l = strlen(out);
    if (l > 7 && !strcmp(out + l - 7, ".nii.gz")) out[l - 7] = 0;
    else if (l > 4 && !strcmp(out + l - 4, ".nii")) out[l - 4] = 0;
}

// Subjects from files, folders and manifests, appended to a growing list. The datasets opened stay
// open (their strings are referenced) until inputs_free.
typedef struct inputs {
    detect_input *subs;
    int n, cap;
    dataset *sets;
    int nsets, capsets;
    char (*ids)[256];
    int nids, capids;
} inputs;

static int inputs_add(inputs *in, const char *path, const char *modality) {
    size_t l = strlen(path);
    int is_csv = l > 4 && !strcasecmp(path + l - 4, ".csv");
    if (fs_is_dir(path) || is_csv) {
        if (in->nsets == in->capsets) in->sets = as_realloc(in->sets, sizeof *in->sets * (in->capsets = 2 * in->capsets + 4));
        dataset *d = &in->sets[in->nsets];
        if (dataset_open(d, path, modality)) return -1;
        in->nsets++;
        for (int i = 0; i < d->n; i++) {
            if (in->n == in->cap) in->subs = as_realloc(in->subs, sizeof *in->subs * (in->cap = 2 * in->cap + 16));
            in->subs[in->n] = (detect_input){d->subjects[i].id, d->subjects[i].image, d->subjects[i].mask,
                                             d->subjects[i].label, ""};
            // A manifest's modality is whatever --modality said, not what its files are.
            if (strcmp(d->layout, "manifest"))
                snprintf(in->subs[in->n].modality, sizeof in->subs[0].modality, "%s", d->modality);
            in->n++;
        }
        return 0;
    }
    if (in->nids == in->capids) in->ids = as_realloc(in->ids, sizeof *in->ids * (in->capids = 2 * in->capids + 16));
    file_subject_id(in->ids[in->nids], sizeof in->ids[0], path);
    if (in->n == in->cap) in->subs = as_realloc(in->subs, sizeof *in->subs * (in->cap = 2 * in->cap + 16));
    in->subs[in->n] = (detect_input){NULL, path, NULL, NULL, ""};
    fingerprint_modality_of_name(path, in->subs[in->n++].modality);
    in->nids++;
    return 0;
}

// Ids of plain files point into ids[], which may move while the list grows: fixed up at the end.
static void inputs_finish(inputs *in) {
    int k = 0;
    for (int i = 0; i < in->n; i++)
        if (!in->subs[i].id) in->subs[i].id = in->ids[k++];
}

static void inputs_free(inputs *in) {
    for (int i = 0; i < in->nsets; i++) dataset_free(&in->sets[i]);
    free(in->sets), free(in->subs), free(in->ids);
}

static int run(int argc, char **argv, int calibrate) {
    const char *cmd = calibrate ? "calibrate" : "detect";
    static const struct option opts[] = {
        {"checkpoint", required_argument, 0, OPT_CKPT}, {"out", required_argument, 0, OPT_OUT},
        {"preset", required_argument, 0, OPT_PRESET},   {"set", required_argument, 0, OPT_SET},
        {"mask-size", required_argument, 0, OPT_MASK},  {"origin", required_argument, 0, OPT_ORIGIN},
        {"z-first", required_argument, 0, OPT_ZF},      {"z-last", required_argument, 0, OPT_ZL},
        {"all-slices", no_argument, 0, OPT_ALL},        {"norm", required_argument, 0, OPT_NORM},
        {"modality", required_argument, 0, OPT_MOD},    {"threads", required_argument, 0, OPT_THREADS},
        {"batch", required_argument, 0, OPT_BATCH},     {"attention-maps", no_argument, 0, OPT_ATT},
        {"no-overlays", no_argument, 0, OPT_NOOV},      {"quiet", no_argument, 0, OPT_QUIET},
        {"save-model-grid", no_argument, 0, OPT_SAVE_GRID}, {"residual", required_argument, 0, OPT_RESIDUAL},
        {"brain-only", no_argument, 0, OPT_BRAIN_ONLY},  {"stride", required_argument, 0, OPT_STRIDE},
        {"window-norm", required_argument, 0, OPT_WINDOW_NORM}, {"slice-norm", required_argument, 0, OPT_SLICE_NORM},
        {"healthy", required_argument, 0, OPT_HEALTHY}, {"calibration", required_argument, 0, OPT_CALIB},
        {"fpr", required_argument, 0, OPT_FPR},         {"fpr-low", required_argument, 0, OPT_FPR_LOW},
        {"maps-from", required_argument, 0, OPT_MAPS_FROM}, {"normative", required_argument, 0, OPT_NORMATIVE},
        {"scales", required_argument, 0, OPT_SCALES},
        {"precision", required_argument, 0, OPT_PRECISION},
        {"force", no_argument, 0, OPT_FORCE},           {"model-set", required_argument, 0, OPT_MODEL_SET},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    detect_options o;
    detect_options_default(&o);
    o.verbose = 1;
    const char *ckpt = NULL, *out = NULL, *modality = "t2", *calib_file = NULL;
    const char *sets[64], *healthy[64];
    char model_set[1024] = "";
    int nsets = 0, nhealthy = 0, threads = 0, batch = 8, window_norm = -1, slice_norm = -1, precision = NN_FP32;
    long v;
    double dv;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
            case OPT_CKPT: ckpt = optarg; break;
            case OPT_OUT: out = optarg; break;
            case OPT_PRESET:
                o.preset = optarg;
                if (postproc_preset(&o.post, optarg)) return cli_usage_error(cmd, "--preset: %s", as_error());
                break;
            case OPT_SET:
                if (nsets == 64) return cli_usage_error(cmd, "too many --set options");
                sets[nsets++] = optarg;
                break;
            case OPT_HEALTHY:
                if (nhealthy == 64) return cli_usage_error(cmd, "too many --healthy options");
                healthy[nhealthy++] = optarg;
                break;
            case OPT_CALIB: calib_file = optarg; break;
            case OPT_FPR:
                if (cli_parse_double(cmd, "fpr", optarg, calib_fpr_levels[0], calib_fpr_levels[CALIB_LEVELS - 1], &dv))
                    return EXIT_USAGE;
                o.fpr = dv;
                break;
            case OPT_FPR_LOW:
                if (cli_parse_double(cmd, "fpr-low", optarg, calib_fpr_levels[0],
                                     calib_fpr_levels[CALIB_LEVELS - 1], &dv))
                    return EXIT_USAGE;
                o.fpr_low = dv;
                break;
            case OPT_MAPS_FROM: o.maps_from = optarg; break;
            case OPT_NORMATIVE:
                if (cli_parse_double(cmd, "normative", optarg, 0, 64, &dv)) return EXIT_USAGE;
                o.normative_sigma = (float)dv;
                break;
            case OPT_SCALES:
                if (detect_parse_scales(&o, optarg)) return cli_usage_error(cmd, "--%s", as_error());
                break;
            case OPT_MASK:
                if (cli_parse_int(cmd, "mask-size", optarg, 1, 4096, &v)) return EXIT_USAGE;
                o.amap.window = (int)v;
                break;
            case OPT_ORIGIN: {
                int x, y;
                char tail;
                if (sscanf(optarg, "%d,%d%c", &x, &y, &tail) != 2 || x < 0 || y < 0)
                    return cli_usage_error(cmd, "--origin: expected X,Y (non-negative), got '%s'", optarg);
                o.amap.auto_grid = 0, o.amap.origin_x = x, o.amap.origin_y = y;
                break;
            }
            case OPT_ZF:
                if (cli_parse_int(cmd, "z-first", optarg, 0, 100000, &v)) return EXIT_USAGE;
                o.slices.z_first = (int)v;
                break;
            case OPT_ZL:
                if (cli_parse_int(cmd, "z-last", optarg, 0, 100000, &v)) return EXIT_USAGE;
                o.slices.z_last = (int)v;
                break;
            case OPT_ALL: o.slices.z_first = -1; break;
            case OPT_NORM:
                if (!strcmp(optarg, "minmax")) o.slices.norm = SLICE_NORM_MINMAX;
                else if (!strcmp(optarg, "percentile")) o.slices.norm = SLICE_NORM_PERCENTILE;
                else return cli_usage_error(cmd, "--norm: expected minmax or percentile, got '%s'", optarg);
                break;
            case OPT_MOD: modality = optarg; break;
            case OPT_RESIDUAL:
                if (!strcmp(optarg, "abs")) o.amap.positive_residual = 0;
                else if (!strcmp(optarg, "positive")) o.amap.positive_residual = 1;
                else return cli_usage_error(cmd, "--residual: expected abs or positive, got '%s'", optarg);
                break;
            case OPT_BRAIN_ONLY: o.amap.restrict_to_brain = 1; break;
            case OPT_WINDOW_NORM:
                if (!strcmp(optarg, "minmax")) window_norm = 1;
                else if (!strcmp(optarg, "none")) window_norm = 0;
                else return cli_usage_error(cmd, "--window-norm: expected minmax or none, got '%s'", optarg);
                break;
            case OPT_SLICE_NORM:
                if (!strcmp(optarg, "max")) slice_norm = 1;
                else if (!strcmp(optarg, "none")) slice_norm = 0;
                else return cli_usage_error(cmd, "--slice-norm: expected max or none, got '%s'", optarg);
                break;
            case OPT_STRIDE:
                if (cli_parse_int(cmd, "stride", optarg, 1, 4096, &v)) return EXIT_USAGE;
                o.amap.stride = (int)v;
                break;
            case OPT_THREADS:
                if (cli_parse_int(cmd, "threads", optarg, 1, 1024, &v)) return EXIT_USAGE;
                threads = (int)v;
                break;
            case OPT_PRECISION:
                if (nn_precision_parse(optarg, &precision)) return cli_usage_error(cmd, "%s", as_error());
                break;
            case OPT_BATCH:
                if (cli_parse_int(cmd, "batch", optarg, 1, 256, &v)) return EXIT_USAGE;
                batch = (int)v;
                break;
            case OPT_ATT: o.attention_maps = 1; break;
            case OPT_NOOV: o.overlays = 0; break;
            case OPT_QUIET: o.verbose = 0; break;
            case OPT_SAVE_GRID: o.save_model_grid = 1; break;
            case OPT_FORCE: o.force = 1; break;
            case OPT_MODEL_SET:
                if (cli_append_settings(cmd, "model-set", model_set, sizeof model_set, optarg)) return EXIT_USAGE;
                break;
            case 'h': usage(stdout, calibrate); return EXIT_OK;
            default: return cli_usage_error(cmd, "unknown option");
        }
    }
    // The calibrated mode needs maps in residual units; the paper's presets keep the paper's map.
    int calibrated = o.post.mode == POSTPROC_CALIBRATED;
    o.amap.window_norm = window_norm >= 0 ? window_norm : !calibrated;
    o.amap.slice_norm = slice_norm >= 0 ? slice_norm : !calibrated;
    if (!ckpt) return cli_usage_error(cmd, "--checkpoint is required");
    if (!out) return cli_usage_error(cmd, "--out is required");
    if (optind >= argc) return cli_usage_error(cmd, calibrate ? "no HEALTHY scan given" : "no INPUT given");
    if (o.slices.z_first >= 0 && o.slices.z_last < o.slices.z_first)
        return cli_usage_error(cmd, "--z-last %d is before --z-first %d", o.slices.z_last, o.slices.z_first);
    if (calib_file && nhealthy) return cli_usage_error(cmd, "--calibration and --healthy exclude each other");
    if (!calibrated && (calib_file || nhealthy))
        return cli_usage_error(cmd, "--calibration and --healthy serve the calibrated preset, not '%s'", o.preset);
    for (int i = 0; i < nsets; i++) {
        char key[64];
        const char *eq = strchr(sets[i], '=');
        if (!eq || eq == sets[i] || (size_t)(eq - sets[i]) >= sizeof key)
            return cli_usage_error(cmd, "--set: expected KEY=VALUE, got '%s'", sets[i]);
        snprintf(key, sizeof key, "%.*s", (int)(eq - sets[i]), sets[i]);
        if (postproc_set(&o.post, key, eq + 1)) return cli_usage_error(cmd, "--set: %s", as_error());
    }
    int threshold_by_hand = isfinite(o.post.threshold);
    if (threshold_by_hand && (calib_file || nhealthy))
        return cli_usage_error(cmd, "--set threshold and a calibration exclude each other");
    // A placeholder only when a calibration will set the threshold below: without one the
    // validation must refuse the run (cal would be read uninitialised otherwise).
    if (calibrated && !threshold_by_hand && (calib_file || nhealthy || calibrate)) o.post.threshold = 0;
    if (postproc_validate(&o.post)) return cli_usage_error(cmd, "%s", as_error());
    if (calibrated && !threshold_by_hand) o.post.threshold = NAN;
    if (threads > 0) nn_set_threads(threads);
    if (nn_set_precision(precision)) return cli_report_error();

    // the model first: a checkpoint that cannot score grey slices is refused before any subject
    model m;
    if (model_load_with(&m, ckpt, batch, model_set)) return cli_report_error();
    if (amap_check_model(&m, m.img_size, o.amap.window, ckpt)) {
        model_free(&m);
        return cli_report_error();
    }
    if (amap_check_stride(o.amap.stride, o.amap.window, m.patch_size)) {
        model_free(&m);
        return cli_usage_error(cmd, "%s", as_error());
    }
    o.checkpoint = ckpt;
    // The input guard: what the model was trained on, if the checkpoint says.
    fingerprint guard;
    int has_guard = fingerprint_read(&guard, ckpt);
    if (has_guard < 0) {
        model_free(&m);
        return cli_report_error();
    }
    if (has_guard) o.guard = &guard;
    else
        fprintf(stderr, "anoswin %s: %s records no training data fingerprint (an older or converted checkpoint): "
                        "scans are not checked against the training data\n", cmd, ckpt);

    int failed = 0, rc = EXIT_OK;
    inputs subs = {0}, hsubs = {0};
    calibration cal = {0};
    for (int a = optind; a < argc; a++)
        if (inputs_add(&subs, argv[a], modality)) cli_report_error(), failed++;
    inputs_finish(&subs);
    if (calibrate || nhealthy) {  // calibrate on healthy scans (the inputs for `calibrate`)
        inputs *h = calibrate ? &subs : &hsubs;
        for (int i = 0; i < nhealthy; i++)
            if (inputs_add(&hsubs, healthy[i], modality)) {
                rc = cli_report_error();
                goto done;
            }
        inputs_finish(&hsubs);
        if (!h->n || (calibrate && failed)) {
            rc = h->n ? EXIT_BAD_INPUT : cli_usage_error(cmd, "no healthy scan found");
            goto done;
        }
        if (detect_calibrate(&cal, &m, h->subs, h->n, &o)) {
            rc = cli_report_error();
            goto done;
        }
        char cpath[4200];
        if (!calibrate) {
            if (fs_mkdirs(out)) {
                rc = cli_report_error();
                goto done;
            }
            fs_join(cpath, sizeof cpath, out, "calibration.json");
        }
        if (calibration_write(&cal, calibrate ? out : cpath)) {
            rc = cli_report_error();
            goto done;
        }
        fprintf(stderr, "anoswin %s: %d healthy scan%s, %lld brain voxels; threshold %.4g at fpr 1e-3, %.4g at 1e-2\n",
                cmd, cal.scans, cal.scans == 1 ? "" : "s", (long long)cal.voxels, calibration_threshold(&cal, 1e-3),
                calibration_threshold(&cal, 1e-2));
        if (calibrate) goto done;
        calib_file = "calibration.json";
    } else if (calib_file) {
        if (calibration_read(&cal, calib_file) ||
            calibration_check(&cal, calib_file, &o.amap, &o.slices, hash_floats(m.params, m.table->n_floats))) {
            rc = cli_report_error();
            goto done;
        }
    }
    if (calibrated && !threshold_by_hand && detect_apply_calibration(&o, &cal, calib_file)) {
        rc = cli_report_error();
        goto done;
    }
    if (postproc_validate(&o.post)) {
        rc = cli_usage_error(cmd, "%s", as_error());
        goto done;
    }
    if (o.amap.positive_residual && o.verbose)
        fprintf(stderr, "anoswin detect: positive residual: only findings brighter than their reconstruction "
                        "are scored (hypointense lesions are not)\n");
    if (fs_mkdirs(out)) {
        failed++;
        cli_report_error();
        subs.n = 0;
    }
    double t0 = now_seconds();
    int done = 0, unlike = 0;
    for (int i = 0; i < subs.n; i++) {
        char dir[4200];
        fs_join(dir, sizeof dir, out, subs.subs[i].id);
        detect_result r;
        if (detect_subject(&r, &m, &subs.subs[i], dir, &o)) {
            cli_report_error();
            fprintf(stderr, "anoswin detect: subject %s skipped\n", subs.subs[i].id);
            failed++;
            continue;
        }
        done++;
        unlike += r.n_warnings > 0;
        printf("%s: %d slices, %d windows, %.3f s/slice, post %.1f ms/slice, lesion %.3f ml in %d "
               "component%s\n",
               subs.subs[i].id, r.slices, r.windows, r.map_seconds / r.slices, 1e3 * r.post_seconds / r.slices,
               r.lesion_ml, r.components, r.components == 1 ? "" : "s");
        fflush(stdout);
    }
    if (o.verbose)
        fprintf(stderr, "anoswin detect: %d subject%s written to %s in %.1f s\n", done, done == 1 ? "" : "s", out,
                now_seconds() - t0);
    if (unlike && !o.force)
        fprintf(stderr, "anoswin detect: %d scan%s unlike the training data (warnings above): results there may be "
                        "meaningless; --force silences the warnings\n", unlike, unlike == 1 ? " looks" : "s look");
    if (failed) fprintf(stderr, "anoswin detect: %d input%s failed\n", failed, failed == 1 ? "" : "s");
    rc = failed ? EXIT_BAD_INPUT : EXIT_OK;
done:
    calibration_free(&cal);
    inputs_free(&subs);
    inputs_free(&hsubs);
    model_free(&m);
    return rc;
}

int cmd_detect(int argc, char **argv) { return run(argc, argv, 0); }
int cmd_calibrate(int argc, char **argv) { return run(argc, argv, 1); }
