// anoswin experiment table1|table2: options of the experiment recipe (recipe/experiment.h),
// which runs every step.
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "model/model.h"  // model_method_*: the methods --methods may name
#include "recipe/arglist.h"  // arg_interrupted
#include "recipe/experiment.h"
#include "recipe/profiles.h"
#include "util/error.h"

static void usage(FILE *f) {
    char all[256] = "";
    for (int i = 0, w = 0; model_method_at(i) && w < (int)sizeof all; i++)
        w += snprintf(all + w, sizeof all - (size_t)w, "%s%s", i ? ", " : "", model_method_at(i)->name);
    fprintf(f,
            "Usage: anoswin experiment table1|table2 --ixi DIR --out RUN [--brats DIR] [--mslub DIR] [--wmh DIR]\n"
            "                          [options]\n"
            "       anoswin experiment profiles --checkpoint CKPT --out RUN [options]   (see profiles --help)\n"
            "\n"
            "Reproduces the paper's tables on your data: trains each method (default: the Swin MAE) on healthy\n"
            "IXI scans (or reuses it), detects with sliding masks (whole-image methods: one pass per slice) and\n"
            "the paper's post-processing, evaluates, and writes one combined report RUN/report.{md,csv,json,html}\n"
            "with the paper's numbers beside ours (labelled with the protocol they come from). Each step runs\n"
            "this executable; RUN/commands.txt lists every command.\n"
            "\n"
            "  table1   IXI T2 -> BraTS21 T2 (preset brats: k=3, N=2) and MSLUB T2 (preset mslub: k=1, N=7),\n"
            "           sliding mask 64 and 32 px: one model (RUN/models/ixi-t2)\n"
            "  table2   IXI T1 -> BraTS21 T2, IXI T2 -> BraTS21 T1, IXI T1 -> WMH FLAIR (preset wmh: k=1, N=7),\n"
            "           mask 64 px: models RUN/models/ixi-t1 and ixi-t2\n"
            "A row whose data set is not given is skipped with a note; a given data set that cannot be read\n"
            "is an error before anything runs. Layouts: see `anoswin data list` and docs/data.md.\n"
            "\n"
            "Options:\n"
            "      --ixi DIR            healthy IXI scans (required): IXI<nnn>-<site>-<nnn>-T1/T2.nii.gz\n"
            "      --brats DIR          BraTS21 (or any labelled layout/manifest with t1/t2 scans)\n"
            "      --mslub DIR          MSLUB (Lesjak et al. 2018)\n"
            "      --wmh DIR            WMH challenge (FLAIR)\n"
            "  -o, --out RUN            output folder\n"
            "      --reuse              reuse finished steps of an earlier run in RUN with the same options\n"
            "                           (without it, a trained model already in RUN is an error)\n"
            "      --methods LIST       methods to train and compare, e.g. swinmae,vae,fanogan (default swinmae;\n"
            "                           this build: %s). Models of other methods than swinmae are\n"
            "                           RUN/models/<method>-ixi-<modality>, their rows <method>_<row>\n"
            "      --epochs N           training epochs of every method (default: each method's recipe; the\n"
            "                           Swin MAE's 400, the paper's)\n"
            "      --batch N            training batch of every method (default: each method's recipe; the\n"
            "                           Swin MAE's 10 for T1, 24 for T2, the paper's)\n"
            "      --config [M:]C       model config for training: a JSON file, key=value list or one of the\n"
            "                           method's presets (e.g. tiny); with M: for method M only, else for every\n"
            "                           method without its own (repeatable; default: each method's)\n"
            "      --max-steps N        stop training after N optimizer steps (smoke runs)\n"
            "      --mask-sizes LIST    sliding mask sizes in px (default table1 64,32; table2 64)\n"
            "      --train-slices LO:HI RAS axial slices for training (default train's 60:109)\n"
            "      --test-slices LO:HI  RAS axial slices detected and scored (default detect's 75:94)\n"
            "      --val-share F        share of each test set's labelled subjects used as validation split for\n"
            "                           the val-threshold protocol (default 0.1; 0 = none)\n"
            "      --bootstrap N        eval's bootstrap resamples (default 1000)\n"
            "      --seed S             seed of training, the val split and bootstrap (default 0)\n"
            "  -t, --threads T          threads for train and detect (default: all cores)\n"
            "  -h, --help\n"
            "\n"
            "Writes RUN/models/<model>/ (train runs), RUN/data/*.csv (test manifests with the val/test split),\n"
            "RUN/detect/<row>/, RUN/eval/<row>/ (full per-row reports), RUN/report.*, RUN/commands.txt,\n"
            "RUN/stamps/ and RUN/logs/. Exit status 1 when a step failed (the other rows are still reported).\n",
            all);
}

static int parse_range(const char *s, int *lo, int *hi) {
    int used = 0;
    return sscanf(s, "%d:%d%n", lo, hi, &used) == 2 && !s[used] && *lo >= 0 && *hi >= *lo ? 0 : -1;
}

// --methods LIST into o->methods (tags checked against the registry), and each --config [M:]C to
// its method: a prefixed one to M alone, the last unprefixed one to every method without its own.
// A usage error is printed here; returns -1.
static int parse_methods(experiment_options *o, const char *list, const char *const *configs, int nconfigs) {
    static char buf[512];
    o->nmethods = 0;
    snprintf(buf, sizeof buf, "%s", list ? list : model_method_default()->name);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!model_method_find(t))
            return cli_usage_error("experiment", "--methods: unknown method '%s'", t);
        for (int i = 0; i < o->nmethods; i++)
            if (!strcmp(o->methods[i], t)) return cli_usage_error("experiment", "--methods: '%s' twice", t);
        if (o->nmethods == EXP_MAX_METHODS)
            return cli_usage_error("experiment", "--methods: more than %d methods", EXP_MAX_METHODS);
        o->methods[o->nmethods++] = t;
    }
    if (!o->nmethods) return cli_usage_error("experiment", "--methods is empty");
    const char *all = NULL;
    for (int c = 0; c < nconfigs; c++) {
        const char *colon = strchr(configs[c], ':');
        int which = -1;
        for (int i = 0; colon && i < o->nmethods; i++)
            if ((size_t)(colon - configs[c]) == strlen(o->methods[i]) &&
                !strncmp(configs[c], o->methods[i], (size_t)(colon - configs[c])))
                which = i;
        if (which >= 0) o->configs[which] = colon + 1;
        else if (colon && colon > configs[c] && strspn(configs[c], "abcdefghijklmnopqrstuvwxyz0123456789_") ==
                                                    (size_t)(colon - configs[c]))
            return cli_usage_error("experiment", "--config %s: '%.*s' is not in --methods", configs[c],
                                   (int)(colon - configs[c]), configs[c]);
        else all = configs[c];
    }
    for (int i = 0; i < o->nmethods; i++)
        if (!o->configs[i]) o->configs[i] = all;
    return 0;
}

static void profiles_usage(FILE *f) {
    fprintf(f,
            "Usage: anoswin experiment profiles --checkpoint CKPT --out RUN [options]\n"
            "\n"
            "One trained model (any method) on the synthetic tuning material the detection defaults were\n"
            "chosen on: 4 healthy calibration scans (data synth seed 5001) and 4 lesion subjects of each\n"
            "lesion profile of `data synth --profile` (seeds 6001.. in profile order; `none`: 3 lesion-free\n"
            "scans), detected with the demo's map settings (a whole-image method: one unmasked pass per\n"
            "slice) and detect's calibrated default, evaluated per volume: one row per profile in\n"
            "RUN/profiles.{md,csv} and on stdout. Train a method on the demo's data and budget with\n"
            "`anoswin demo --method M` and pass OUT/train/last.safetensors, so that its rows compare with\n"
            "the README's per-profile table. These are tuning sets, not test sets.\n"
            "\n"
            "Options:\n"
            "      --checkpoint CKPT    the model (required)\n"
            "  -o, --out RUN            output folder (required): data/, calibration.json, detect/, eval/\n"
            "      --reuse              reuse finished steps of an earlier run in RUN with the same options\n"
            "      --precision P        fp32 or bf16 (default bf16 where the CPU has AVX512-BF16)\n"
            "      --small              the demo's --small map settings, one subject per profile (tests)\n"
            "      --subjects N         lesion subjects per profile (default 4); the first 4 are the default\n"
            "                           sets' subjects, so that a larger N extends them\n"
            "      --model-set K=V,...  inference settings over the checkpoint's config, given to calibrate\n"
            "                           and detect (repeatable; e.g. autoDDPM's sampler=ddim,inference_steps=100)\n"
            "      --seed S             eval's bootstrap seed (default 1)\n"
            "  -t, --threads T          threads (default: all cores)\n"
            "  -h, --help\n"
            "Exit status 1 when a profile's step failed (the other profiles are still reported).\n");
}

static int experiment_profiles(int argc, char **argv) {
    enum { O_CKPT = 1000, O_REUSE, O_PREC, O_SMALL, O_SEED, O_MODEL_SET, O_SUBJECTS };
    static const struct option opts[] = {
        {"checkpoint", required_argument, 0, O_CKPT}, {"out", required_argument, 0, 'o'},
        {"reuse", no_argument, 0, O_REUSE},           {"precision", required_argument, 0, O_PREC},
        {"small", no_argument, 0, O_SMALL},           {"seed", required_argument, 0, O_SEED},
        {"threads", required_argument, 0, 't'},       {"help", no_argument, 0, 'h'},
        {"model-set", required_argument, 0, O_MODEL_SET}, {"subjects", required_argument, 0, O_SUBJECTS},
        {0, 0, 0, 0}};
    profiles_options o = {.seed = 1};
    char model_set[1024] = "";
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":o:t:h", opts, NULL)) != -1) {
        switch (c) {
        case O_CKPT: o.checkpoint = optarg; break;
        case 'o': o.out = optarg; break;
        case O_REUSE: o.reuse = 1; break;
        case O_SMALL: o.small = 1; break;
        case O_MODEL_SET:
            if (cli_append_settings("experiment", "model-set", model_set, sizeof model_set, optarg)) return EXIT_USAGE;
            o.model_set = model_set;
            break;
        case O_PREC:
            if (strcmp(optarg, "fp32") && strcmp(optarg, "bf16"))
                return cli_usage_error("experiment", "--precision wants fp32 or bf16, not '%s'", optarg);
            o.precision = optarg;
            break;
        case O_SEED:
            if (cli_parse_int("experiment", "seed", optarg, 0, LONG_MAX, &o.seed)) return EXIT_USAGE;
            break;
        case O_SUBJECTS: {
            long v;
            if (cli_parse_int("experiment", "subjects", optarg, 1, 1000, &v)) return EXIT_USAGE;
            o.subjects = (int)v;
            break;
        }
        case 't':
            if (cli_parse_int("experiment", "threads", optarg, 1, 1024, &o.threads)) return EXIT_USAGE;
            break;
        case 'h': profiles_usage(stdout); return EXIT_OK;
        case ':': return cli_usage_error("experiment", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("experiment", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("experiment", "unexpected argument '%s'", argv[optind]);
    if (!o.checkpoint) return cli_usage_error("experiment", "profiles: --checkpoint CKPT is required");
    if (!o.out) return cli_usage_error("experiment", "profiles: --out RUN is required");
    if (o.threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        o.threads = n > 0 ? n : 1;
    }
    int rc = profiles_run(&o);
    if (rc < 0) {
        int code = cli_report_error();
        return arg_interrupted() ? 128 + arg_interrupted() : code;
    }
    return rc ? EXIT_BAD_INPUT : EXIT_OK;
}

int cmd_experiment(int argc, char **argv) {
    enum { O_IXI = 1000, O_BRATS, O_MSLUB, O_WMH, O_REUSE, O_EPOCHS, O_BATCH, O_CONFIG, O_MAXSTEPS, O_MASKS,
           O_TRAINSL, O_TESTSL, O_VALSHARE, O_BOOT, O_SEED, O_METHODS };
    static const struct option opts[] = {
        {"ixi", required_argument, 0, O_IXI},           {"brats", required_argument, 0, O_BRATS},
        {"mslub", required_argument, 0, O_MSLUB},       {"wmh", required_argument, 0, O_WMH},
        {"out", required_argument, 0, 'o'},             {"reuse", no_argument, 0, O_REUSE},
        {"epochs", required_argument, 0, O_EPOCHS},     {"batch", required_argument, 0, O_BATCH},
        {"config", required_argument, 0, O_CONFIG},     {"max-steps", required_argument, 0, O_MAXSTEPS},
        {"mask-sizes", required_argument, 0, O_MASKS},  {"train-slices", required_argument, 0, O_TRAINSL},
        {"test-slices", required_argument, 0, O_TESTSL}, {"val-share", required_argument, 0, O_VALSHARE},
        {"bootstrap", required_argument, 0, O_BOOT},    {"seed", required_argument, 0, O_SEED},
        {"threads", required_argument, 0, 't'},         {"help", no_argument, 0, 'h'},
        {"methods", required_argument, 0, O_METHODS},
        {0, 0, 0, 0}};
    const char *ixi = NULL, *sets[NSETS] = {0}, *out = NULL, *masks_arg = NULL, *methods_arg = NULL;
    const char *configs[16];  // --config values in order
    int nconfigs = 0;
    long epochs = -1, batch = -1, max_steps = -1, boot = -1, seed = 0, threads = -1;
    int reuse = 0, tr_lo = -1, tr_hi = -1, te_lo = -1, te_hi = -1;
    double val_share = 0.1;
    optind = 1;
    int c;
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return EXIT_OK;
    }
    if (argc > 1 && !strcmp(argv[1], "profiles")) return experiment_profiles(argc - 1, argv + 1);
    while ((c = getopt_long(argc, argv, ":o:t:h", opts, NULL)) != -1) {
        switch (c) {
        case O_IXI: ixi = optarg; break;
        case O_BRATS: sets[SET_BRATS] = optarg; break;
        case O_MSLUB: sets[SET_MSLUB] = optarg; break;
        case O_WMH: sets[SET_WMH] = optarg; break;
        case 'o': out = optarg; break;
        case O_REUSE: reuse = 1; break;
        case O_EPOCHS:
            if (cli_parse_int("experiment", "epochs", optarg, 1, 1000000, &epochs)) return EXIT_USAGE;
            break;
        case O_BATCH:
            if (cli_parse_int("experiment", "batch", optarg, 1, 100000, &batch)) return EXIT_USAGE;
            break;
        case O_CONFIG:
            if (nconfigs == 16) return cli_usage_error("experiment", "more than 16 --config options");
            configs[nconfigs++] = optarg;
            break;
        case O_METHODS: methods_arg = optarg; break;
        case O_MAXSTEPS:
            if (cli_parse_int("experiment", "max-steps", optarg, 1, LONG_MAX, &max_steps)) return EXIT_USAGE;
            break;
        case O_MASKS: masks_arg = optarg; break;
        case O_TRAINSL:
            if (parse_range(optarg, &tr_lo, &tr_hi))
                return cli_usage_error("experiment", "--train-slices wants LO:HI with 0 <= LO <= HI, not '%s'", optarg);
            break;
        case O_TESTSL:
            if (parse_range(optarg, &te_lo, &te_hi))
                return cli_usage_error("experiment", "--test-slices wants LO:HI with 0 <= LO <= HI, not '%s'", optarg);
            break;
        case O_VALSHARE:
            if (cli_parse_double("experiment", "val-share", optarg, 0, 0.9, &val_share)) return EXIT_USAGE;
            break;
        case O_BOOT:
            if (cli_parse_int("experiment", "bootstrap", optarg, 0, 1000000, &boot)) return EXIT_USAGE;
            break;
        case O_SEED:
            if (cli_parse_int("experiment", "seed", optarg, 0, LONG_MAX, &seed)) return EXIT_USAGE;
            break;
        case 't':
            if (cli_parse_int("experiment", "threads", optarg, 1, 1024, &threads)) return EXIT_USAGE;
            break;
        case 'h': usage(stdout); return EXIT_OK;
        case ':': return cli_usage_error("experiment", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("experiment", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) return cli_usage_error("experiment", "which table? expected table1 or table2");
    if (optind + 1 < argc) return cli_usage_error("experiment", "unexpected argument '%s'", argv[optind + 1]);
    int table = !strcmp(argv[optind], "table1") ? 1 : !strcmp(argv[optind], "table2") ? 2 : 0;
    if (!table) return cli_usage_error("experiment", "unknown table '%s' (expected table1 or table2)", argv[optind]);
    if (!ixi) return cli_usage_error("experiment", "--ixi DIR is required (the healthy training scans)");
    if (!out) return cli_usage_error("experiment", "--out RUN is required");
    int masks[8] = {0}, nmasks = 0;
    {
        const char *s = masks_arg ? masks_arg : table == 1 ? "64,32" : "64";
        while (*s) {
            char *end;
            long v = strtol(s, &end, 10);
            if (end == s || v < 1 || v > 4096 || (*end && *end != ',') || nmasks == 8)
                return cli_usage_error("experiment", "--mask-sizes wants a list like 64,32, not '%s'", masks_arg);
            masks[nmasks++] = (int)v;
            s = *end ? end + 1 : end;
        }
        if (!nmasks) return cli_usage_error("experiment", "--mask-sizes is empty");
    }

    experiment_options o = {.table = table, .ixi = ixi, .out = out, .reuse = reuse, .epochs = epochs,
                            .batch = batch, .max_steps = max_steps, .nmasks = nmasks,
                            .train_slices = {tr_lo, tr_hi}, .test_slices = {te_lo, te_hi}, .val_share = val_share,
                            .bootstrap = boot, .seed = seed, .threads = threads};
    memcpy(o.sets, sets, sizeof o.sets);
    if (parse_methods(&o, methods_arg, configs, nconfigs)) return EXIT_USAGE;
    memcpy(o.masks, masks, sizeof o.masks);
    int rc = experiment_run(&o);
    if (rc < 0) {
        int code = cli_report_error();
        return arg_interrupted() ? 128 + arg_interrupted() : code;
    }
    return rc ? EXIT_BAD_INPUT : EXIT_OK;
}
