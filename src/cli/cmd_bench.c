// anoswin bench train: speed and memory of anoswin's training step against the PyTorch
// reference, on this machine, in one process tree. Each measurement runs in its own child
// process so that its peak RSS (wait4's ru_maxrss) is its own: the sgemm peak, anoswin's step,
// then the PyTorch script (bench/torch_train_step.py) — sequentially, never concurrently.
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "model/model.h"   // model_*: the config, its description and FLOPs
#include "nn/nn.h"         // nn_set_threads
#include "train/bench.h"   // bench_sgemm_gflops, bench_train_step
#include "util/error.h"
#include "util/fs.h"
#include "util/json.h"  // json_top_*: the PyTorch side's JSON line

static void usage(FILE *f) {
    fprintf(f,
            "Usage: anoswin bench train [options]\n"
            "       anoswin bench detect [options]   (see anoswin bench detect --help)\n"
            "\n"
            "Times full training steps (forward, backward, AdamW) of anoswin and of the PyTorch reference\n"
            "(bench/torch_train_step.py) one after the other on this machine, and prints images/s, GFLOP/s\n"
            "(exact matmul/conv count of the model), the share of the machine's sgemm rate measured in the\n"
            "same run, and the peak RSS of each (separate child processes).\n"
            "\n"
            "  --batch N         images per step (default 10)\n"
            "  --threads N       threads for both (default 2)\n"
            "  --steps N         timed steps (default 3), after --warmup N untimed ones (default 1)\n"
            "  --method M        swinmae (default), vae, fanogan or vitmae; the PyTorch side of a method other than\n"
            "                    swinmae is bench/torch_train_step_M.py (f-AnoGAN's step: docs/baselines.md)\n"
            "  --config C        model config (key=value list or JSON; default: the paper's)\n"
            "  --sgemm-size N    matrix side of the sgemm peak measurement (default 2048)\n"
            "  --precision P     fp32 (default) or bf16: bf16 also times anoswin's step with bf16 GEMM operands\n"
            "                    (after the fp32 one, same process tree) and the bf16 GEMM rate, and prints the ratio\n"
            "  --no-torch        skip the PyTorch reference\n"
            "  --python PATH     Python with torch (default $ANOSWIN_PYTHON or /usr/bin/python3)\n"
            "  --torch-script P  the PyTorch bench script (default: found next to the source tree)\n");
}

// A child's result travels back through a pipe as this struct.
typedef struct child_result {
    int ok;
    double value;  // sgemm GFLOP/s, or img/s
    double step_s, loss;
    char error[512];
} child_result;

typedef struct measured {
    child_result r;
    double rss_mib;
    int status;
} measured;

enum { JOB_SGEMM, JOB_STEP };

static int run_child_job(int job, const char *method, const char *cfg, int batch, int threads, int steps, int warmup,
                         int sgemm_n, int precision, measured *out) {
    int fd[2];
    if (pipe(fd)) return as_fail("bench: pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return as_fail("bench: fork: %s", strerror(errno));
    if (pid == 0) {
        close(fd[0]);
        child_result r;
        memset(&r, 0, sizeof r);
        nn_set_threads(threads);
        if (nn_set_precision(precision)) {
            snprintf(r.error, sizeof r.error, "%s", as_error());
        } else if (job == JOB_SGEMM) {
            r.value = bench_gemm_gflops(sgemm_n, 3, precision);
            r.ok = 1;
        } else {
            bench_step_result s;
            if (bench_train_step(method, cfg, batch, steps, warmup, &s) == 0) {
                r.ok = 1;
                r.value = s.img_per_s;
                r.step_s = s.step_s;
                r.loss = s.loss;
            } else {
                snprintf(r.error, sizeof r.error, "%s", as_error());
            }
        }
        ssize_t w = write(fd[1], &r, sizeof r);
        _exit(w == (ssize_t)sizeof r ? 0 : 1);
    }
    close(fd[1]);
    memset(out, 0, sizeof *out);
    ssize_t got = read(fd[0], &out->r, sizeof out->r);
    close(fd[0]);
    struct rusage ru;
    if (wait4(pid, &out->status, 0, &ru) < 0) return as_fail("bench: wait: %s", strerror(errno));
    out->rss_mib = ru.ru_maxrss / 1024.0;  // Linux: kilobytes
    if (got != (ssize_t)sizeof out->r || !out->r.ok)
        return as_fail("bench: %s", out->r.error[0] ? out->r.error : "measurement process failed");
    return 0;
}

// Runs the PyTorch script; parses "img_per_s" and "step_s" from its JSON line.
static int run_torch(const char *python, const char *script, const char *config, int batch, int threads, int steps,
                     int warmup, measured *out, char *torch_version, size_t nv) {
    int fd[2];
    if (pipe(fd)) return as_fail("bench: pipe: %s", strerror(errno));
    char b[32], t[32], s[32], w[32];
    snprintf(b, sizeof b, "%d", batch);
    snprintf(t, sizeof t, "%d", threads);
    snprintf(s, sizeof s, "%d", steps);
    snprintf(w, sizeof w, "%d", warmup);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return as_fail("bench: fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        char *argv[16] = {(char *)python, (char *)script, "--batch", b, "--threads", t, "--steps", s, "--warmup", w};
        int k = 10;
        if (config) argv[k++] = "--config", argv[k++] = (char *)config;
        argv[k] = NULL;
        execv(python, argv);
        fprintf(stderr, "anoswin: %s: cannot run: %s\n", python, strerror(errno));
        _exit(127);
    }
    close(fd[1]);
    char buf[4096];
    size_t n = 0;
    ssize_t r;
    while ((r = read(fd[0], buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)r;
    buf[n] = 0;
    close(fd[0]);
    memset(out, 0, sizeof *out);
    struct rusage ru;
    if (wait4(pid, &out->status, 0, &ru) < 0) return as_fail("bench: wait: %s", strerror(errno));
    out->rss_mib = ru.ru_maxrss / 1024.0;
    // The script prints one JSON object, possibly after other lines.
    const char *js = strstr(buf, "\n{");
    js = buf[0] == '{' ? buf : js ? js + 1 : NULL;
    if (!WIFEXITED(out->status) || WEXITSTATUS(out->status) != 0 || json_top_number(js, "img_per_s", &out->r.value) ||
        json_top_number(js, "step_s", &out->r.step_s))
        return as_fail("%s: the PyTorch benchmark failed (exit status %d)", script,
                       WIFEXITED(out->status) ? WEXITSTATUS(out->status) : -1);
    out->r.ok = 1;
    if (json_top_string(js, "torch", torch_version, nv < 41 ? nv : 41)) snprintf(torch_version, nv, "?");
    return 0;
}

static int bench_train(int argc, char **argv) {
    static const struct option longopts[] = {
        {"batch", required_argument, 0, 'b'},      {"threads", required_argument, 0, 't'},
        {"steps", required_argument, 0, 's'},      {"warmup", required_argument, 0, 'w'},
        {"config", required_argument, 0, 'c'},     {"sgemm-size", required_argument, 0, 'g'},
        {"no-torch", no_argument, 0, 'n'},         {"python", required_argument, 0, 'p'},
        {"torch-script", required_argument, 0, 'S'}, {"method", required_argument, 0, 'm'},
        {"precision", required_argument, 0, 'P'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    long batch = 10, threads = 2, steps = 3, warmup = 1, sgemm_n = 2048;
    const char *config = NULL, *python = getenv("ANOSWIN_PYTHON"), *script = NULL, *method = NULL;
    int no_torch = 0, c, precision = NN_FP32;
    if (!python || !*python) python = "/usr/bin/python3";
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return EXIT_OK;
        case 'b':
            if (cli_parse_int("bench", "batch", optarg, 1, 1024, &batch)) return EXIT_USAGE;
            break;
        case 't':
            if (cli_parse_int("bench", "threads", optarg, 1, 1024, &threads)) return EXIT_USAGE;
            break;
        case 's':
            if (cli_parse_int("bench", "steps", optarg, 1, 100000, &steps)) return EXIT_USAGE;
            break;
        case 'w':
            if (cli_parse_int("bench", "warmup", optarg, 0, 100000, &warmup)) return EXIT_USAGE;
            break;
        case 'g':
            if (cli_parse_int("bench", "sgemm-size", optarg, 64, 16384, &sgemm_n)) return EXIT_USAGE;
            break;
        case 'c': config = optarg; break;
        case 'm': method = optarg; break;
        case 'n': no_torch = 1; break;
        case 'P':
            if (nn_precision_parse(optarg, &precision)) return cli_usage_error("bench", "%s", as_error());
            break;
        case 'p': python = optarg; break;
        case 'S': script = optarg; break;
        default: return cli_usage_error("bench", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("bench", "unexpected argument '%s'", argv[optind]);
    const model_method *mm = method ? model_method_get(method, "bench --method") : model_method_default();
    if (!mm) return cli_usage_error("bench", "%s", as_error());
    char cfg[2048];
    if (mm->config_parse(NULL, config, cfg, sizeof cfg, NULL, "--config")) return cli_report_error();
    char script_path[4300];
    if (!no_torch) {
        // The default method's script is torch_train_step.py, another method's torch_train_step_<name>.py.
        char rel[256];
        if (mm == model_method_default())
            snprintf(rel, sizeof rel, "bench/torch_train_step.py");
        else
            snprintf(rel, sizeof rel, "bench/torch_train_step_%s.py", mm->name);
        if (script)
            snprintf(script_path, sizeof script_path, "%s", script);
        else if (cli_find_source_file(rel, script_path, sizeof script_path))
            return cli_usage_error("bench", "cannot find %s (set ANOSWIN_SOURCE_DIR, give --torch-script, or --no-torch)",
                                   rel);
    }
    // A model for its description and FLOPs only, freed before the measurements fork (their
    // peak RSS must not include it).
    model m;
    if (model_create(&m, mm->name, cfg, 1, 0, "--config")) return cli_report_error();
    char desc[256];
    mm->describe(&m, desc, sizeof desc);
    double gflop = mm->flops_per_image(&m, 1) / 1e9, gflop_fwd = mm->flops_per_image(&m, 0) / 1e9;
    model_free(&m);
    printf("anoswin bench train: %s\n", desc);
    printf("batch %ld, %ld threads, %ld timed steps after %ld warm-up\n", batch, threads, steps, warmup);
    printf("model: %.3f GFLOP per image per training step (forward %.3f; matmul/conv only)\n", gflop,
           gflop_fwd);
    fflush(stdout);

    // Said before minutes of measuring (the children would fail one by one).
    if (precision == NN_BF16 && nn_set_precision(NN_BF16)) return cli_report_error();
    measured peak, ours, torch, peak16, ours16;
    if (run_child_job(JOB_SGEMM, mm->name, cfg, 0, (int)threads, 0, 0, (int)sgemm_n, NN_FP32, &peak))
        return cli_report_error();
    printf("sgemm peak: %.1f GFLOP/s (%ldx%ldx%ld, %ld threads, best of 3)\n", peak.r.value, sgemm_n, sgemm_n,
           sgemm_n, threads);
    if (precision == NN_BF16) {
        if (run_child_job(JOB_SGEMM, mm->name, cfg, 0, (int)threads, 0, 0, (int)sgemm_n, NN_BF16, &peak16))
            return cli_report_error();
        printf("bf16 gemm peak: %.1f GFLOP/s (%s kernel, same size and threads)\n", peak16.r.value, nn_bf16_kernel());
    }
    printf("\n");
    printf("%-16s %9s %9s %9s %7s %12s\n", "", "img/s", "s/step", "GFLOP/s", "%peak", "peak RSS");
    fflush(stdout);
    if (run_child_job(JOB_STEP, mm->name, cfg, (int)batch, (int)threads, (int)steps, (int)warmup, 0, NN_FP32, &ours))
        return cli_report_error();
    double g_ours = ours.r.value * gflop;
    printf("%-16s %9.3f %9.3f %9.1f %6.1f%% %8.0f MiB\n", "anoswin", ours.r.value, ours.r.step_s, g_ours,
           100 * g_ours / peak.r.value, ours.rss_mib);
    fflush(stdout);
    if (precision == NN_BF16) {  // %peak against the bf16 GEMM's rate
        if (run_child_job(JOB_STEP, mm->name, cfg, (int)batch, (int)threads, (int)steps, (int)warmup, 0, NN_BF16,
                          &ours16))
            return cli_report_error();
        double g16 = ours16.r.value * gflop;
        printf("%-16s %9.3f %9.3f %9.1f %6.1f%% %8.0f MiB\n", "anoswin bf16", ours16.r.value, ours16.r.step_s, g16,
               100 * g16 / peak16.r.value, ours16.rss_mib);
        printf("anoswin bf16 / fp32: %.2fx images/s (loss after the last step %.5f / %.5f)\n",
               ours16.r.value / ours.r.value, ours16.r.loss, ours.r.loss);
        fflush(stdout);
    }
    if (no_torch) return EXIT_OK;
    char tv[64];
    if (run_torch(python, script_path, config, (int)batch, (int)threads, (int)steps, (int)warmup, &torch, tv,
                  sizeof tv))
        return cli_report_error();
    double g_torch = torch.r.value * gflop;
    char label[96];
    snprintf(label, sizeof label, "pytorch %s", tv);
    printf("%-16s %9.3f %9.3f %9.1f %6.1f%% %8.0f MiB\n", label, torch.r.value, torch.r.step_s, g_torch,
           100 * g_torch / peak.r.value, torch.rss_mib);
    printf("\nanoswin / pytorch: %.2fx images/s, %.2fx peak RSS\n", ours.r.value / torch.r.value,
           ours.rss_mib / torch.rss_mib);
    return EXIT_OK;
}

int cmd_bench(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    if (!strcmp(argv[1], "train")) return bench_train(argc - 1, argv + 1);
    if (!strcmp(argv[1], "detect")) return bench_detect(argc - 1, argv + 1);
    return cli_usage_error("bench", "unknown benchmark '%s' (available: train, detect)", argv[1]);
}
