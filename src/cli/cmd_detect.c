// anoswin detect: anomaly maps and lesion masks for new scans (src/detect/detect.h).
#include <getopt.h>
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
#include "util/timer.h"

static void usage(FILE *f) {
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
            "  --preset P          post-processing preset: brats (k=3, N=2, default), mslub or wmh (k=1, N=7)\n"
            "  --set KEY=VALUE     override one post-processing parameter (repeatable): ndim, erode_k,\n"
            "                      threshold, connectivity, keep_top, dilate_k, rank_on, seg_classes, mrf_beta,\n"
            "                      mrf_radius, seg_iterations, match, keep_unmatched, grow (px: add\n"
            "                      tissue components mostly within that distance of the mask; 0 = the paper)\n"
            "  --mask-size N       sliding mask side in px: 64 (default) or 32 (any multiple of the patch)\n"
            "  --origin X,Y        fixed grid origin (column, row on the model grid; snapped down to the patch)\n"
            "                      instead of the brain's bounding box\n"
            "  --residual R        abs (default, the paper's L1 residual) or positive (only input brighter\n"
            "                      than the reconstruction: hyperintense findings, as in T2 and FLAIR)\n"
            "  --brain-only        residual set to 0 outside the brain mask before the per-window scaling\n"
            "  --window-norm N     minmax (default, the paper: each window's residual scaled to 0..1) or none\n"
            "                      (the raw residual, comparable across windows; the slice map is still\n"
            "                      divided by its maximum)\n"
            "  --stride N          grid step in px (default: the mask size, the paper's non-overlapping grid);\n"
            "                      smaller steps overlap the windows, whose scores are averaged\n"
            "  --z-first K         first RAS axial slice (default 75)\n"
            "  --z-last K          last RAS axial slice, inclusive (default 94)\n"
            "  --all-slices        every axial slice\n"
            "  --norm N            intensity scaling: minmax (default, as in training) or percentile\n"
            "  --modality M        t1, t2 (default) or flair, for folders\n"
            "  --threads T         threads (default: all)\n"
            "  --batch B           masked variants per forward (default 8)\n"
            "  --attention-maps    also write attention/z<k>_stage<s>.png (channel mean of each encoder stage)\n"
            "  --no-overlays       skip the overlay PNGs\n"
            "  --quiet             no progress on stderr\n"
            "  --save-model-grid   also write model_grid_map.f32 (the maps on the model grid, raw float32\n"
            "                      (slices, S, S); for tests)\n"
            "\n"
            "A subject that cannot be processed is reported on stderr ('anoswin: <file>: <problem>') and\n"
            "skipped; the others are still written, and the exit status is then 1. A checkpoint that does not\n"
            "fit grey slices (input channels other than 1 or 3, a mask larger than its images) is refused\n"
            "before any subject is read.\n");
}

enum { OPT_CKPT = 256, OPT_OUT, OPT_PRESET, OPT_SET, OPT_MASK, OPT_ORIGIN, OPT_ZF, OPT_ZL, OPT_ALL, OPT_NORM,
       OPT_MOD, OPT_THREADS, OPT_BATCH, OPT_ATT, OPT_NOOV, OPT_QUIET, OPT_SAVE_GRID,
       OPT_RESIDUAL, OPT_BRAIN_ONLY, OPT_STRIDE, OPT_WINDOW_NORM };

// The file name without folders and .nii[.gz].
static void file_subject_id(char *out, size_t n, const char *path) {
    const char *b = strrchr(path, '/');
    snprintf(out, n, "%s", b ? b + 1 : path);
    size_t l = strlen(out);
    if (l > 7 && !strcmp(out + l - 7, ".nii.gz")) out[l - 7] = 0;
    else if (l > 4 && !strcmp(out + l - 4, ".nii")) out[l - 4] = 0;
}

int cmd_detect(int argc, char **argv) {
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
        {"window-norm", required_argument, 0, OPT_WINDOW_NORM}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    detect_options o;
    detect_options_default(&o);
    o.verbose = 1;
    const char *ckpt = NULL, *out = NULL, *modality = "t2";
    const char *sets[64];
    int nsets = 0, threads = 0, batch = 8;
    long v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
            case OPT_CKPT: ckpt = optarg; break;
            case OPT_OUT: out = optarg; break;
            case OPT_PRESET:
                o.preset = optarg;
                if (postproc_preset(&o.post, optarg)) return cli_usage_error("detect", "--preset: %s", as_error());
                break;
            case OPT_SET:
                if (nsets == 64) return cli_usage_error("detect", "too many --set options");
                sets[nsets++] = optarg;
                break;
            case OPT_MASK:
                if (cli_parse_int("detect", "mask-size", optarg, 1, 4096, &v)) return EXIT_USAGE;
                o.amap.window = (int)v;
                break;
            case OPT_ORIGIN: {
                int x, y;
                char tail;
                if (sscanf(optarg, "%d,%d%c", &x, &y, &tail) != 2 || x < 0 || y < 0)
                    return cli_usage_error("detect", "--origin: expected X,Y (non-negative), got '%s'", optarg);
                o.amap.auto_grid = 0, o.amap.origin_x = x, o.amap.origin_y = y;
                break;
            }
            case OPT_ZF:
                if (cli_parse_int("detect", "z-first", optarg, 0, 100000, &v)) return EXIT_USAGE;
                o.slices.z_first = (int)v;
                break;
            case OPT_ZL:
                if (cli_parse_int("detect", "z-last", optarg, 0, 100000, &v)) return EXIT_USAGE;
                o.slices.z_last = (int)v;
                break;
            case OPT_ALL: o.slices.z_first = -1; break;
            case OPT_NORM:
                if (!strcmp(optarg, "minmax")) o.slices.norm = SLICE_NORM_MINMAX;
                else if (!strcmp(optarg, "percentile")) o.slices.norm = SLICE_NORM_PERCENTILE;
                else return cli_usage_error("detect", "--norm: expected minmax or percentile, got '%s'", optarg);
                break;
            case OPT_MOD: modality = optarg; break;
            case OPT_RESIDUAL:
                if (!strcmp(optarg, "abs")) o.amap.positive_residual = 0;
                else if (!strcmp(optarg, "positive")) o.amap.positive_residual = 1;
                else return cli_usage_error("detect", "--residual: expected abs or positive, got '%s'", optarg);
                break;
            case OPT_BRAIN_ONLY: o.amap.restrict_to_brain = 1; break;
            case OPT_WINDOW_NORM:
                if (!strcmp(optarg, "minmax")) o.amap.window_norm = 1;
                else if (!strcmp(optarg, "none")) o.amap.window_norm = 0;
                else return cli_usage_error("detect", "--window-norm: expected minmax or none, got '%s'", optarg);
                break;
            case OPT_STRIDE:
                if (cli_parse_int("detect", "stride", optarg, 1, 4096, &v)) return EXIT_USAGE;
                o.amap.stride = (int)v;
                break;
            case OPT_THREADS:
                if (cli_parse_int("detect", "threads", optarg, 1, 1024, &v)) return EXIT_USAGE;
                threads = (int)v;
                break;
            case OPT_BATCH:
                if (cli_parse_int("detect", "batch", optarg, 1, 256, &v)) return EXIT_USAGE;
                batch = (int)v;
                break;
            case OPT_ATT: o.attention_maps = 1; break;
            case OPT_NOOV: o.overlays = 0; break;
            case OPT_QUIET: o.verbose = 0; break;
            case OPT_SAVE_GRID: o.save_model_grid = 1; break;
            case 'h': usage(stdout); return EXIT_OK;
            default: return cli_usage_error("detect", "unknown option");
        }
    }
    if (!ckpt) return cli_usage_error("detect", "--checkpoint is required");
    if (!out) return cli_usage_error("detect", "--out is required");
    if (optind >= argc) return cli_usage_error("detect", "no INPUT given");
    if (o.slices.z_first >= 0 && o.slices.z_last < o.slices.z_first)
        return cli_usage_error("detect", "--z-last %d is before --z-first %d", o.slices.z_last, o.slices.z_first);
    for (int i = 0; i < nsets; i++) {
        char key[64];
        const char *eq = strchr(sets[i], '=');
        if (!eq || eq == sets[i] || (size_t)(eq - sets[i]) >= sizeof key)
            return cli_usage_error("detect", "--set: expected KEY=VALUE, got '%s'", sets[i]);
        snprintf(key, sizeof key, "%.*s", (int)(eq - sets[i]), sets[i]);
        if (postproc_set(&o.post, key, eq + 1)) return cli_usage_error("detect", "--set: %s", as_error());
    }
    if (postproc_validate(&o.post)) return cli_usage_error("detect", "%s", as_error());
    if (threads > 0) nn_set_threads(threads);

    // the model first: a checkpoint that cannot score grey slices is refused before any subject
    swinmae m;
    if (amap_load_model(&m, ckpt, batch)) return cli_report_error();
    if (amap_check_model(&m.cfg, m.cfg.img_size, o.amap.window, ckpt)) {
        swinmae_free(&m);
        return cli_report_error();
    }
    if (amap_check_stride(o.amap.stride, o.amap.window, m.cfg.patch_size)) {
        swinmae_free(&m);
        return cli_usage_error("detect", "%s", as_error());
    }
    o.checkpoint = ckpt;

    // subjects: files, folders, manifests
    int cap = 16, n = 0, failed = 0;
    detect_input *subs = as_malloc(sizeof *subs * cap);
    dataset *sets_open = as_calloc((size_t)(argc - optind), sizeof(dataset));
    int nsets_open = 0;
    char (*ids)[256] = as_malloc(sizeof *ids * (size_t)(argc - optind));
    for (int a = optind; a < argc; a++) {
        const char *in = argv[a];
        size_t l = strlen(in);
        int is_csv = l > 4 && !strcasecmp(in + l - 4, ".csv");
        if (fs_is_dir(in) || is_csv) {
            dataset *d = &sets_open[nsets_open];
            if (dataset_open(d, in, modality)) {
                cli_report_error();
                failed++;
                continue;
            }
            nsets_open++;
            for (int i = 0; i < d->n; i++) {
                if (n == cap) subs = as_realloc(subs, sizeof *subs * (cap *= 2));
                subs[n++] = (detect_input){d->subjects[i].id, d->subjects[i].image, d->subjects[i].mask,
                                           d->subjects[i].label};
            }
        } else {
            file_subject_id(ids[a - optind], sizeof ids[0], in);
            if (n == cap) subs = as_realloc(subs, sizeof *subs * (cap *= 2));
            subs[n++] = (detect_input){ids[a - optind], in, NULL, NULL};
        }
    }
    if (fs_mkdirs(out)) {
        failed++;
        cli_report_error();
        n = 0;
    }
    double t0 = now_seconds();
    int done = 0;
    for (int i = 0; i < n; i++) {
        char dir[4200];
        fs_join(dir, sizeof dir, out, subs[i].id);
        detect_result r;
        if (detect_subject(&r, &m, &subs[i], dir, &o)) {
            cli_report_error();
            fprintf(stderr, "anoswin detect: subject %s skipped\n", subs[i].id);
            failed++;
            continue;
        }
        done++;
        printf("%s: %d slices, %d windows, %.3f s/slice, post %.1f ms/slice, lesion %.3f ml in %d "
               "component%s\n",
               subs[i].id, r.slices, r.windows, r.map_seconds / r.slices,
               1e3 * r.post_seconds / r.slices, r.lesion_ml, r.components, r.components == 1 ? "" : "s");
        fflush(stdout);
    }
    if (o.verbose)
        fprintf(stderr, "anoswin detect: %d subject%s written to %s in %.1f s%s\n", done, done == 1 ? "" : "s", out,
                now_seconds() - t0, "");
    if (failed) fprintf(stderr, "anoswin detect: %d input%s failed\n", failed, failed == 1 ? "" : "s");
    for (int i = 0; i < nsets_open; i++) dataset_free(&sets_open[i]);
    free(sets_open), free(subs), free(ids);
    swinmae_free(&m);
    return failed ? EXIT_BAD_INPUT : EXIT_OK;
}
