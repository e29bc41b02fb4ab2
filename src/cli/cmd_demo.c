// anoswin demo: options of the demo recipe (recipe/demo.h), which runs every step.
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "data/nyul.h"         // nyul_parse_setting
#include "model/model.h"       // model_method_get
#include "nn/nn.h"             // nn_precision_parse, nn_bf16_supported
#include "recipe/arglist.h"  // arg_interrupted
#include "recipe/demo.h"
#include "util/error.h"

static void usage(FILE *f) {
    fprintf(f,
            "Usage: anoswin demo [options]\n"
            "\n"
            "The whole pipeline on the embedded synthetic data (no download): synthesise healthy and lesion\n"
            "scans (data synth), train a demo-sized Swin MAE (train), calibrate the detection threshold on\n"
            "held-out healthy scans (calibrate), detect lesions with sliding masks over the whole trained slice\n"
            "range (detect), project the encoder latents of healthy and lesion slices (latent: the paper's\n"
            "Figure 3), evaluate (eval), print a Table-1-shaped summary and the path of the HTML report.\n"
            "Each step runs this executable with the command line it prints.\n"
            "\n"
            "With --data DIR the same recipe runs on a data set of your own in the same layout: DIR/healthy/\n"
            "(healthy scans: a quarter of the subjects, at least 4, spread evenly in id order, is kept out of\n"
            "training to calibrate on; needs at least 8) and DIR/test/ (scans with lesion labels), in a layout\n"
            "data list recognises.\n"
            "\n"
            "Options:\n"
            "  -o, --out DIR       output folder (default demo-out)\n"
            "  -m, --minutes M     safety bound on training minutes (default 12): training is stopped after\n"
            "                      the current step at the bound and the demo goes on with that checkpoint\n"
            "  -s, --seed S        seed of data, training and bootstrap (default 1)\n"
            "  -t, --threads T     threads (default: all cores)\n"
            "  -f, --force         redo every step (default: reuse steps finished with the same options)\n"
            "      --small         tiny data, model and step count (seconds; for tests)\n"
            "      --data DIR      your own data set (see above) instead of the synthetic one\n"
            "      --modality M    t1, t2 (default) or flair: the scans of --data to use\n"
            "      --method M      swinmae (default) or another method (e.g. vitmae): its default config at\n"
            "                      the demo's image size, with the same data, epochs, batch, masks and detection\n"
            "      --precision P   fp32 or bf16 (GEMM operands in bfloat16 for train, calibrate and detect);\n"
            "                      default bf16 where the CPU has AVX512-BF16 (the demo's timings), else fp32\n"
            "      --intensity I   nyul (default: each brain's histogram mapped onto a standard measured on\n"
            "                      the training scans) or minmax (the paper's); anoswin train --help\n"
            "  -h, --help\n"
            "\n"
            "Writes OUT/data (training set), OUT/val-data (validation set), OUT/healthy-test (held-out\n"
            "healthy scans), OUT/train (run: log.csv, checkpoints, reconstructions), OUT/calibration.json,\n"
            "OUT/detect, OUT/detect-val and OUT/detect-healthy (maps and masks per subject), OUT/latent\n"
            "(latent.{png,svg,json}, latents, embedding), OUT/report (report.{html,md,csv,json}, panels/,\n"
            "latent/, summary.txt) and OUT/stamps. With --data: OUT/train.csv\n"
            "and OUT/calibration.csv (the split of DIR/healthy) instead of the data folders.\n");
}

int cmd_demo(int argc, char **argv) {
    enum { OPT_SMALL = 1000, OPT_DATA, OPT_MODALITY, OPT_METHOD, OPT_PRECISION, OPT_INTENSITY };
    static const struct option longopts[] = {
        {"out", required_argument, 0, 'o'},     {"minutes", required_argument, 0, 'm'},
        {"seed", required_argument, 0, 's'},    {"threads", required_argument, 0, 't'},
        {"force", no_argument, 0, 'f'},         {"small", no_argument, 0, OPT_SMALL},
        {"data", required_argument, 0, OPT_DATA}, {"modality", required_argument, 0, OPT_MODALITY},
        {"method", required_argument, 0, OPT_METHOD}, {"precision", required_argument, 0, OPT_PRECISION},
        {"intensity", required_argument, 0, OPT_INTENSITY}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *out = "demo-out", *user_data = NULL, *modality = "t2", *method = NULL, *precision = NULL,
               *intensity = NULL;
    double minutes = 12;
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
        case OPT_METHOD:
            if (!model_method_get(optarg, "--method")) return cli_usage_error("demo", "%s", as_error());
            method = optarg;
            break;
        case OPT_PRECISION: {
            int p;
            if (nn_precision_parse(optarg, &p)) return cli_usage_error("demo", "--precision: %s", as_error());
            if (p == NN_BF16 && !nn_bf16_supported())
                return cli_usage_error("demo", "--precision bf16: this CPU has no AVX512-BF16 instructions");
            precision = optarg;
            break;
        }
        case OPT_INTENSITY: {
            int nyul;
            if (nyul_parse_setting(optarg, &nyul)) return cli_usage_error("demo", "--%s", as_error());
            intensity = optarg;
            break;
        }
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
    demo_options o = {.out = out, .minutes = minutes, .seed = seed, .threads = threads, .force = force,
                      .small = small, .data = user_data, .modality = modality, .method = method,
                      .precision = precision, .intensity = intensity};
    if (demo_run(&o))
        return arg_interrupted() ? (fprintf(stderr, "anoswin: %s\n", as_error()), 128 + arg_interrupted())
                                 : cli_report_error();
    return EXIT_OK;
}
