// anoswin bench detect: seconds per slice of the sliding-mask anomaly map (64 and 32 px masks)
// for anoswin and for the PyTorch reference (bench/torch_detect.py: same weights, same slices,
// same masked-variant batches, torch.set_num_threads), run one after the other in this process
// tree, plus the A.1 post-processing in ms/slice. The PyTorch side also recomputes the maps
// independently and reports the largest difference to anoswin's (a correctness check at the
// benchmarked config). Weights are random (speed does not depend on them). The slices are real
// anatomy by default: one healthy subject synthesised from the embedded Colin27 brain (data
// synth, on the SRI24-like grid of BraTS), axial slices spread over the paper's test range
// 75..94, because the number of window positions -- the cost -- follows the brain's bounding
// box. --image times a scan of your own; --phantom (or a missing template) uses the procedural
// phantom, whose middle slices are larger than a brain (11 rather than 8 windows at 64 px).
#include <getopt.h>
#include <libgen.h>
#include <sys/resource.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "data/phantom.h"
#include "data/slices.h"
#include "data/synth.h"
#include "detect/anomaly_map.h"
#include "detect/model_adapter.h"
#include "detect/postproc.h"
#include "model/model.h"
#include "nn/nn.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/json.h"  // json_top_*: the PyTorch side's JSON line
#include "util/timer.h"

static void usage(FILE *f) {
    fprintf(f,
            "Usage: anoswin bench detect [options]\n"
            "\n"
            "Times the coarse anomaly map (one forward per mask position, the positions of a slice as\n"
            "batches) of anoswin and of the PyTorch reference (bench/torch_detect.py) on the same slices,\n"
            "weights and batches, one after the other, and the A.1 post-processing (brats preset).\n"
            "\n"
            "  --mask-size N     64 or 32 (default: both)\n"
            "  --threads N       threads for both (default 2)\n"
            "  --config C        model config: 'paper' (default) or a key=value list / JSON\n"
            "  --slices N        slices timed per mask size (default 2, spread over axial 75..94), after one\n"
            "                    untimed warm-up forward\n"
            "  --image FILE      time slices of this NIfTI scan (default: a brain synthesised from the\n"
            "                    embedded Colin27 template, as in the demo)\n"
            "  --phantom         time slices of the procedural phantom instead\n"
            "  --batch B         masked variants per forward (default 8)\n"
            "  --precision P     fp32 (default) or bf16: bf16 also times anoswin with bf16 GEMM operands after\n"
            "                    the fp32 run, and prints the speed ratio and the largest map difference\n"
            "  --no-torch        skip the PyTorch reference\n"
            "  --python PATH     Python with torch (default $ANOSWIN_PYTHON or /usr/bin/python3)\n"
            "  --torch-script P  bench/torch_detect.py (default: found next to the source tree)\n"
            "  --keep DIR        keep the exchanged files in DIR (default: a temporary folder, removed)\n");
}

// CPU seconds (user + system) of this process, all threads (on a busy machine CPU time / threads
// estimates what the wall time would be on an idle one).
static double cpu_seconds(int who) {
    struct rusage u;
    getrusage(who, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// Runs the PyTorch side; parses its JSON line. Returns 0 or -1.
static int run_torch(const char *python, const char *script, const char *dir, int ms, int batch, int threads,
                     double *sec, double *cpu, double *diff) {
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "'%s' '%s' --dir '%s' --mask-size %d --batch %d --threads %d", python, script, dir, ms,
             batch, threads);
    FILE *p = popen(cmd, "r");
    if (!p) return as_fail("%s: cannot run", script);
    char line[4096] = "", buf[4096];
    while (fgets(buf, sizeof buf, p))
        if (strstr(buf, "sec_per_slice")) snprintf(line, sizeof line, "%s", buf);
    int st = pclose(p);
    const char *js = strchr(line, '{');
    if (st != 0 || json_top_number(js, "sec_per_slice", sec) || json_top_number(js, "max_map_diff", diff) ||
        json_top_number(js, "cpu_per_slice", cpu))
        return as_fail("%s: failed (exit status %d)", script, st);
    return 0;
}

// The timed slices: n of them spread evenly over axial 75..94 of `image`, or of a healthy brain
// synthesised into dir/synth (no image given, template installed), or the phantom's middle n.
// source: what they are, for the printout.
static int bench_slices(slice_stack *s, char *source, size_t nsource, const char *image, int phantom, const char *dir,
                        int size, int n) {
    slice_options so;
    slice_options_default(&so, 0);
    so.size = size;
    char path[4400];
    if (!image && !phantom && access(SYNTH_DEFAULT_TEMPLATE, R_OK) == 0) {
        synth_options o;
        synth_options_default(&o);
        fs_join(path, sizeof path, dir, "synth");
        o.out = path, o.healthy = 1, o.test = 0, o.write_t1 = 0;
        if (synth_run(&o)) return -1;
        fs_join(path, sizeof path, dir, "synth/healthy/healthy_000/healthy_000_t2.nii.gz");
        image = path;
        snprintf(source, nsource, "a Colin27-based synthetic T2 brain (axial 75..94)");
    } else if (image) {
        snprintf(source, nsource, "%s (axial 75..94)", image);
    }
    if (image) {
        if (slices_load(s, image, NULL, &so)) return -1;
        if (n > s->n) n = s->n;
        // Keep n slices spread over the range, moved down in place (destination <= source).
        size_t hw = (size_t)s->size * s->size;
        for (int i = 0; i < n; i++) {
            int k = n > 1 ? (int)((long)i * (s->n - 1) / (n - 1)) : s->n / 2;
            memmove(s->img + i * hw, s->img + k * hw, hw * sizeof(float));
            memmove(s->brain + i * hw, s->brain + k * hw, hw);
            s->z[i] = s->z[k];
        }
        s->n = n;
        return 0;
    }
    phantom_options po = {.nx = 240, .ny = 240, .nz = 40, .lesions = 2, .noise = 0.02, .seed = 1};
    volume img;
    phantom_make(&img, NULL, NULL, &po);
    so.z_first = 20 - n / 2, so.z_last = so.z_first + n - 1;
    int rc = slices_from_volume(s, &img, NULL, &so);
    volume_free(&img);
    snprintf(source, nsource, "the procedural phantom");
    return rc;
}

int bench_detect(int argc, char **argv) {
    static const struct option opts[] = {
        {"mask-size", required_argument, 0, 'm'}, {"threads", required_argument, 0, 't'},
        {"config", required_argument, 0, 'c'},    {"slices", required_argument, 0, 'n'},
        {"batch", required_argument, 0, 'b'},     {"no-torch", no_argument, 0, 'N'},
        {"python", required_argument, 0, 'P'},    {"torch-script", required_argument, 0, 'S'},
        {"keep", required_argument, 0, 'k'},      {"image", required_argument, 0, 'i'},
        {"phantom", no_argument, 0, 'F'},         {"precision", required_argument, 0, 'p'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int sizes[2] = {64, 32}, nsizes = 2, threads = 2, nslices = 2, batch = 8, torch = 1, c;
    const char *config = "paper", *python = getenv("ANOSWIN_PYTHON"), *script_opt = NULL, *keep = NULL,
               *image = NULL;
    int phantom = 0, precision = NN_FP32;
    long v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
            case 'm':
                if (cli_parse_int("bench", "mask-size", optarg, 4, 1024, &v)) return EXIT_USAGE;
                sizes[0] = (int)v, nsizes = 1;
                break;
            case 't':
                if (cli_parse_int("bench", "threads", optarg, 1, 1024, &v)) return EXIT_USAGE;
                threads = (int)v;
                break;
            case 'c': config = optarg; break;
            case 'n':
                if (cli_parse_int("bench", "slices", optarg, 1, 1000, &v)) return EXIT_USAGE;
                nslices = (int)v;
                break;
            case 'b':
                if (cli_parse_int("bench", "batch", optarg, 1, 256, &v)) return EXIT_USAGE;
                batch = (int)v;
                break;
            case 'N': torch = 0; break;
            case 'P': python = optarg; break;
            case 'S': script_opt = optarg; break;
            case 'k': keep = optarg; break;
            case 'i': image = optarg; break;
            case 'F': phantom = 1; break;
            case 'p':
                if (nn_precision_parse(optarg, &precision)) return cli_usage_error("bench", "%s", as_error());
                break;
            case 'h': usage(stdout); return EXIT_OK;
            default: return cli_usage_error("bench", "unknown option");
        }
    }
    if (optind != argc) return cli_usage_error("bench", "unexpected argument '%s'", argv[optind]);
    if (!python || !python[0]) python = "/usr/bin/python3";
    char script[4200] = "";
    if (torch) {
        if (script_opt) snprintf(script, sizeof script, "%s", script_opt);
        else if (cli_find_source_file("bench/torch_detect.py", script, sizeof script))
            return cli_usage_error("bench", "cannot find bench/torch_detect.py (set ANOSWIN_SOURCE_DIR, give "
                                            "--torch-script, or --no-torch)");
    }
    const model_method *mm = model_method_default();
    char cfg[2048];
    if (mm->config_parse(NULL, strcmp(config, "paper") ? config : NULL, cfg, sizeof cfg, NULL, "--config"))
        return cli_report_error();
    nn_set_threads(threads);
    if (precision == NN_BF16 && nn_set_precision(NN_BF16)) return cli_report_error();
    nn_set_precision(NN_FP32);  // fp32 first, always: the reference of the speed-up and of the maps

    char dir[4200];
    if (keep) snprintf(dir, sizeof dir, "%s", keep);
    else snprintf(dir, sizeof dir, "/tmp/anoswin-bench-detect-%d", (int)getpid());
    if (fs_mkdirs(dir)) return cli_report_error();
    model m;
    if (model_create(&m, mm->name, cfg, batch, 0, "--config")) return cli_report_error();
    m.method->init_params(&m, 1);
    char path[4400];
    fs_join(path, sizeof path, dir, "ckpt.safetensors");
    if (torch && model_save(&m, path, NULL, 0)) return cli_report_error();

    slice_stack s;
    char source[4400];
    if (bench_slices(&s, source, sizeof source, image, phantom, dir, m.img_size, nslices)) return cli_report_error();
    int S = s.size, C = m.in_chans;
    size_t hw = (size_t)S * S;
    fs_join(path, sizeof path, dir, "slices.f32");
    if (fs_write_all(path, s.img, sizeof(float) * s.n * hw)) return cli_report_error();
    char desc[256];
    mm->describe(&m, desc, sizeof desc);
    printf("bench detect: %s, %d threads, batch %d, %d slices of %dx%d from %s\n", desc, threads, batch, s.n, S, S,
           source);

    float *maps = as_malloc(sizeof(float) * s.n * hw), *maps16 = as_malloc(sizeof(float) * s.n * hw);
    {  // warm-up forward (allocation, thread pools), untimed
        float *in = as_calloc((size_t)C * hw, sizeof(float));
        uint8_t *tm = as_calloc((size_t)model_tokens(&m), 1);
        mm->predict(&m, NULL, in, tm, 1);
        free(in), free(tm);
    }
    for (int z = 0; z < nsizes; z++) {
        int ms = sizes[z];
        amap_params ap;
        amap_defaults(&ap);
        ap.window = ms;
        amap_params_for_model(&ap, &m);
        if (amap_check_model(&m, S, ms, "--config")) return cli_report_error();
        // the windows, for the PyTorch side
        int nw_total = 0;
        int32_t *rows = NULL;
        for (int k = 0; k < s.n; k++) {
            int nw = amap_windows(NULL, 0, s.brain + k * hw, S, S, &ap);
            amap_window *w = as_malloc(sizeof(amap_window) * (nw > 0 ? nw : 1));
            amap_windows(w, nw, s.brain + k * hw, S, S, &ap);
            rows = as_realloc(rows, sizeof(int32_t) * 5 * (nw_total + nw));
            for (int i = 0; i < nw; i++) {
                int32_t *r = rows + 5 * (nw_total + i);
                r[0] = k, r[1] = w[i].x0, r[2] = w[i].y0, r[3] = w[i].w, r[4] = w[i].h;
            }
            nw_total += nw;
            free(w);
        }
        double t0 = now_seconds(), c0 = cpu_seconds(RUSAGE_SELF);
        for (int k = 0; k < s.n; k++) {
            amap_model_ctx ctx = {.model = &m};
            if (amap_slice(maps + k * hw, s.img + k * hw, s.brain + k * hw, S, S, C, &ap, amap_model_run, &ctx) < 0)
                return cli_report_error();
        }
        double ours = (now_seconds() - t0) / s.n, ours_cpu = (cpu_seconds(RUSAGE_SELF) - c0) / s.n;
        double ours16 = 0, ours16_cpu = 0, maxdiff = 0;
        if (precision == NN_BF16) {  // the same slices again, GEMM operands in bf16
            nn_set_precision(NN_BF16);
            t0 = now_seconds(), c0 = cpu_seconds(RUSAGE_SELF);
            for (int k = 0; k < s.n; k++) {
                amap_model_ctx ctx = {.model = &m};
                if (amap_slice(maps16 + k * hw, s.img + k * hw, s.brain + k * hw, S, S, C, &ap, amap_model_run,
                               &ctx) < 0)
                    return cli_report_error();
            }
            ours16 = (now_seconds() - t0) / s.n, ours16_cpu = (cpu_seconds(RUSAGE_SELF) - c0) / s.n;
            nn_set_precision(NN_FP32);
            for (size_t i = 0; i < (size_t)s.n * hw; i++) {
                double d = fabs((double)maps16[i] - maps[i]);
                maxdiff = d > maxdiff ? d : maxdiff;
            }
        }
        char name[64];
        snprintf(name, sizeof name, "windows_%d.i32", ms);
        fs_join(path, sizeof path, dir, name);
        if (fs_write_all(path, rows, sizeof(int32_t) * 5 * nw_total)) return cli_report_error();
        snprintf(name, sizeof name, "map_%d.f32", ms);
        fs_join(path, sizeof path, dir, name);
        if (fs_write_all(path, maps, sizeof(float) * s.n * hw)) return cli_report_error();
        free(rows);
        printf("  %2d px mask: %.1f windows/slice\n", ms, (double)nw_total / s.n);
        printf("    anoswin   %8.3f s/slice  (%.3f CPU s/slice, %.1f GFLOP/s of full forwards)\n", ours, ours_cpu,
               mm->flops_per_image(&m, 0) * nw_total / s.n / ours * 1e-9);
        if (precision == NN_BF16)
            printf("    anoswin bf16 %5.3f s/slice  (%.3f CPU s/slice; %.2fx fp32's speed, %.2fx in CPU time; max |map "
                   "difference| to fp32 %.2g; %s)\n",
                   ours16, ours16_cpu, ours / ours16, ours_cpu / ours16_cpu, maxdiff, nn_bf16_kernel());
        fflush(stdout);
        if (torch) {
            double theirs = 0, theirs_cpu = 0, diff = 0;
            if (run_torch(python, script, dir, ms, batch, threads, &theirs, &theirs_cpu, &diff)) {
                cli_report_error();
                printf("    pytorch   (failed)\n");
            } else {
                printf("    pytorch   %8.3f s/slice  (%.3f CPU s/slice; anoswin %.2fx faster, %.2fx in CPU time; max "
                       "|map difference| %.2g)\n",
                       theirs, theirs_cpu, theirs / ours, theirs_cpu / ours_cpu, diff);
            }
        }
        // post-processing of these maps, brats preset (k=3, N=2), per slice
        postproc_params pp;
        postproc_defaults(&pp);
        // Random weights rarely leave a finding, and a slice without one skips the segmentation, so
        // the maps are also timed with a finding: a bright disc (radius S/10) added in the brain.
        uint8_t *mask = as_malloc((size_t)s.n * hw);
        float *found = as_malloc(sizeof(float) * s.n * hw);
        for (int k = 0; k < s.n; k++)
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++) {
                    size_t i = k * hw + (size_t)y * S + x;
                    float dx = x - 0.55f * S, dy = y - 0.45f * S, r = 0.1f * S;
                    found[i] = dx * dx + dy * dy < r * r ? 1.0f : 0.4f * maps[i];
                }
        for (int f = 0; f < 2; f++) {
            int reps = 5;
            double tp0 = now_seconds(), tc0 = cpu_seconds(RUSAGE_SELF);
            for (int r = 0; r < reps; r++) postprocess(mask, NULL, f ? found : maps, s.img, s.brain, S, S, s.n, &pp);
            printf("    postproc  %8.2f ms/slice (%.2f CPU ms/slice; brats preset, %s)\n",
                   1e3 * (now_seconds() - tp0) / (reps * s.n), 1e3 * (cpu_seconds(RUSAGE_SELF) - tc0) / (reps * s.n),
                   f ? "with a finding" : "these maps");
        }
        free(mask), free(found);
        fflush(stdout);
    }
    free(maps), free(maps16);
    slices_free(&s);
    model_free(&m);
    if (!keep && fs_remove_tree(dir)) return cli_report_error();  // our own /tmp/anoswin-bench-detect-<pid>
    return EXIT_OK;
}
