// anoswin data synth|list: build the embedded synthetic data set, or show what discovery finds.
#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "data/dataset.h"  // dataset_open, dataset_write_manifest
#include "data/synth.h"    // synth_run
#include "util/error.h"
#include "util/timer.h"

static void usage(FILE *f) {
    fprintf(f,
            "Usage: anoswin data synth --out DIR [options]\n"
            "       anoswin data list PATH [--modality M] [--split S]\n"
            "\n"
            "synth: build a healthy training set and a lesion test set from the Colin27 brain\n"
            "(Debian's mricron-data, no download) on a 240x240x155 1 mm grid like SRI24, in the\n"
            "BraTS21 layout: DIR/healthy/<id>/<id>_{t1,t2}.nii.gz and\n"
            "DIR/test/<id>/<id>_{t1,t2,seg}.nii.gz (seg: 1 core, 2 oedema, 4 lesion body).\n"
            "  -o, --out DIR        output folder (created)\n"
            "  -n, --healthy N      healthy subjects (default 20)\n"
            "  -m, --test M         test subjects with lesions (default 10)\n"
            "      --profile NAME   lesions of the test subjects (default glioma):\n"
            "                       glioma      1-3 tumour-like, radius 2.5-26 mm, the first in slices 76..93\n"
            "                       metastasis  2-8 round, diameter 3-15 mm, anywhere, T2-bright\n"
            "                       ms          6-20 ovoid, diameter 2-8 mm, periventricular or juxtacortical\n"
            "                       boundary    1-2, radius 6-18 mm, touching the ventricles or the brain's edge\n"
            "                       hypo        1-2, radius 6-18 mm, all T2-dark\n"
            "                       sparse      1-2, radius 6-18 mm, centred anywhere in slices 40..120\n"
            "                       none        no lesion: healthy subjects in the test layout (seg all 0)\n"
            "  -s, --seed S         random seed (default 1); same seed -> identical files\n"
            "      --modality LIST  t1, t2 or t1,t2 (default t1,t2)\n"
            "  -t, --threads T      OpenMP threads (default: all cores); output does not depend on it\n"
            "      --template FILE  source brain (default %s; with --raw %s)\n"
            "      --raw            raw-looking T1 head scans for `anoswin prep` instead: Colin27 with\n"
            "                       skull (ch2.nii.gz) under a random affine, field of view, voxel size and\n"
            "                       storage orientation, a bias field and noise; --healthy N of them in\n"
            "                       DIR/healthy/raw_NNN/ with truth.json (the true transform) and bias.nii.gz;\n"
            "                       with --test N also the test subjects test_NNN of `data synth` (same seed,\n"
            "                       profile, modalities) in that head, raw-ized, their label carried along\n"
            "\n"
            "list: print the subjects found in PATH (a folder in a known layout, or a manifest\n"
            "CSV) as a manifest CSV subject,image,label,mask,split on stdout.\n"
            "      --modality M     t1, t2 or flair (default t2)\n"
            "      --split S        only subjects of this split (e.g. healthy, test)\n"
            "  -h, --help           show this help\n",
            SYNTH_DEFAULT_TEMPLATE, SYNTH_HEAD_TEMPLATE);
}

static int data_list(int argc, char **argv) {
    const char *modality = "t2", *split = NULL;
    static const struct option opts[] = {
        {"modality", required_argument, 0, 'M'}, {"split", required_argument, 0, 'S'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'M': modality = optarg; break;
        case 'S': split = optarg; break;
        case 'h': usage(stdout); return EXIT_OK;
        default: return cli_usage_error("data list", "unknown option");
        }
    }
    if (optind != argc - 1) return cli_usage_error("data list", "expected one PATH (a folder or a manifest CSV)");
    dataset d;
    if (dataset_open(&d, argv[optind], modality) != 0) return cli_report_error();
    if (split) dataset_keep_split(&d, split);
    int rc = dataset_write_manifest(&d, "-");
    fprintf(stderr, "data list: %d subjects (%s layout, %s)\n", d.n, d.layout, d.modality);
    dataset_free(&d);
    return rc == 0 ? EXIT_OK : cli_report_error();
}

static int data_synth(int argc, char **argv) {
    synth_options o;
    synth_options_default(&o);
    static const struct option opts[] = {{"out", required_argument, 0, 'o'},     {"healthy", required_argument, 0, 'n'},
                                         {"test", required_argument, 0, 'm'},    {"seed", required_argument, 0, 's'},
                                         {"modality", required_argument, 0, 'M'}, {"threads", required_argument, 0, 't'},
                                         {"template", required_argument, 0, 'T'}, {"profile", required_argument, 0, 'P'},
                                         {"raw", no_argument, 0, 'R'},           {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int raw = 0, test_given = 0, template_given = 0;
    optind = 1;
    int c;
    long v;
    while ((c = getopt_long(argc, argv, "o:n:m:s:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': o.out = optarg; break;
        case 'n':
            if (cli_parse_int("data synth", "healthy", optarg, 0, 100000, &v) != 0) return EXIT_USAGE;
            o.healthy = (int)v;
            break;
        case 'm':
            if (cli_parse_int("data synth", "test", optarg, 0, 100000, &v) != 0) return EXIT_USAGE;
            o.test = (int)v;
            test_given = 1;
            break;
        case 's':
            if (cli_parse_int("data synth", "seed", optarg, 0, 0x7fffffffffffffffL, &v) != 0) return EXIT_USAGE;
            o.seed = (unsigned long)v;
            break;
        case 'M':
            if (!strcmp(optarg, "t1")) o.write_t1 = 1, o.write_t2 = 0;
            else if (!strcmp(optarg, "t2")) o.write_t1 = 0, o.write_t2 = 1;
            else if (!strcmp(optarg, "t1,t2") || !strcmp(optarg, "t2,t1") || !strcmp(optarg, "all")) o.write_t1 = o.write_t2 = 1;
            else return cli_usage_error("data synth", "--modality: expected t1, t2 or t1,t2, got '%s'", optarg);
            break;
        case 't':
            if (cli_parse_int("data synth", "threads", optarg, 1, 1024, &v) != 0) return EXIT_USAGE;
            omp_set_num_threads((int)v);
            break;
        case 'T': o.template_path = optarg, template_given = 1; break;
        case 'R': raw = 1; break;
        case 'P':
            if (synth_profile_parse(optarg, &o.profile) != 0)
                return cli_usage_error("data synth",
                                       "--profile: expected glioma, metastasis, ms, boundary, hypo, sparse or none, got '%s'",
                                       optarg);
            break;
        case 'h': usage(stdout); return EXIT_OK;
        default: return cli_usage_error("data synth", "unknown option");
        }
    }
    if (optind != argc) return cli_usage_error("data synth", "unexpected argument '%s'", argv[optind]);
    if (!o.out) return cli_usage_error("data synth", "--out DIR is required");
    double t0 = now_seconds();
    if (raw) {
        if (!test_given) o.test = 0;
        if (!template_given) o.template_path = SYNTH_HEAD_TEMPLATE;
        if (synth_raw_run(&o) != 0) return cli_report_error();
        printf("data synth: %d raw-looking scans in %s/healthy, %d raw-looking test subjects in %s/test (%.1f s)\n",
               o.healthy, o.out, o.test, o.out, now_seconds() - t0);
        return EXIT_OK;
    }
    if (synth_run(&o) != 0) return cli_report_error();
    printf("data synth: %d healthy subjects in %s/healthy, %d test subjects (profile %s) in %s/test (%.1f s)\n",
           o.healthy, o.out, o.test, synth_profile_name(o.profile), o.out, now_seconds() - t0);
    return EXIT_OK;
}

int cmd_data(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        if (argc < 2) {
            usage(stderr);
            return EXIT_USAGE;
        }
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "synth")) return data_synth(argc - 1, argv + 1);
    if (!strcmp(argv[1], "list")) return data_list(argc - 1, argv + 1);
    return cli_usage_error("data", "unknown subcommand '%s' (expected synth or list)", argv[1]);
}
