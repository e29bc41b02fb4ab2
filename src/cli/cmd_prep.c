// anoswin prep: raw scans to the template's grid (orchestration in src/prep/prep.c).
#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "data/synth.h"  // SYNTH_HEAD_TEMPLATE, SYNTH_DEFAULT_TEMPLATE
#include "prep/prep.h"   // prep_run
#include "util/error.h"
#include "util/timer.h"

static void usage(FILE *f) {
    fprintf(f,
            "Usage: anoswin prep --out DIR [options] INPUT...\n"
            "\n"
            "Raw scans to the template's grid, per scan: reorientation to RAS, N4 bias-field correction,\n"
            "rigid then affine registration to the template by Mattes mutual information (a T2 or\n"
            "FLAIR scan registers to a T1 template), skull stripping (the template's brain mask\n"
            "carried onto the scan and refined on its intensities), resampling onto the template\n"
            "grid (linear; labels nearest).\n"
            "INPUT: NIfTI files (a label <id>_seg.nii.gz next to one goes along) or folders in any\n"
            "layout `anoswin data list` knows. Writes DIR/[<split>/]<id>/<id>_{<mod>,mask,seg}.nii.gz,\n"
            "<id>_qc.png (template brain outline over the registered scan), <id>_prep.json, and\n"
            "DIR/prep.json. A scan that fails is reported (one line) and written nowhere; the exit\n"
            "status is 1 when any failed.\n"
            "  -o, --out DIR             output folder (created)\n"
            "      --template FILE       template T1 head (default: Colin27 %s, with\n"
            "                            its brain %s, on the 240x240x155 1 mm grid of\n"
            "                            `data synth`); e.g. SRI24's T1\n"
            "      --template-mask FILE  the template's brain mask (> 0 = brain; with --template)\n"
            "      --modality M          t1, t2 or flair (default t1): the scans taken from folders\n"
            "                            and the outputs' name\n"
            "      --rigid               rigid registration only (6 dof, as the benchmark line's SRI24\n"
            "                            preprocessing); default rigid then affine (12 dof)\n"
            "      --min-mi X            a registration ending below this Mattes mutual information fails\n"
            "                            (default 0.3; registered heads end at 1.1-1.5, noise at 0.01)\n"
            "      --no-n4               no N4 bias-field correction (the scans keep their bias field)\n"
            "      --write-bias          also write N4's field, <id>_bias.nii.gz, on the scan's own grid\n"
            "                            reoriented to RAS (the scan / it = the corrected scan)\n"
            "  -s, --seed S              seed of the registration's samples (default 1)\n"
            "  -t, --threads T           OpenMP threads (default: all cores); output does not depend on it\n"
            "  -h, --help                show this help\n",
            SYNTH_HEAD_TEMPLATE, SYNTH_DEFAULT_TEMPLATE);
}

int cmd_prep(int argc, char **argv) {
    prep_options o;
    prep_options_default(&o);
    static const struct option opts[] = {
        {"out", required_argument, 0, 'o'},      {"template", required_argument, 0, 'T'},
        {"template-mask", required_argument, 0, 'M'}, {"modality", required_argument, 0, 'm'},
        {"no-n4", no_argument, 0, 'N'},          {"seed", required_argument, 0, 's'},
        {"rigid", no_argument, 0, 'R'},         {"min-mi", required_argument, 0, 'I'},
        {"threads", required_argument, 0, 't'},  {"write-bias", no_argument, 0, 'B'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    optind = 1;
    int c;
    long v;
    while ((c = getopt_long(argc, argv, "o:s:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': o.out = optarg; break;
        case 'B': o.write_bias = 1; break;
        case 'T': o.template_path = optarg; break;
        case 'M': o.template_mask = optarg; break;
        case 'm':
            if (strcmp(optarg, "t1") && strcmp(optarg, "t2") && strcmp(optarg, "flair"))
                return cli_usage_error("prep", "--modality: expected t1, t2 or flair, got '%s'", optarg);
            o.modality = optarg;
            break;
        case 'N': o.n4 = 0; break;
        case 'R': o.reg.affine = 0; break;
        case 'I':
            if (cli_parse_double("prep", "min-mi", optarg, 0, 10, &o.min_mi) != 0) return EXIT_USAGE;
            break;
        case 's':
            if (cli_parse_int("prep", "seed", optarg, 0, 0x7fffffffffffffffL, &v) != 0) return EXIT_USAGE;
            o.reg.seed = (unsigned long)v;
            break;
        case 't':
            if (cli_parse_int("prep", "threads", optarg, 1, 1024, &v) != 0) return EXIT_USAGE;
            omp_set_num_threads((int)v);
            break;
        case 'h': usage(stdout); return EXIT_OK;
        default: return cli_usage_error("prep", "unknown option");
        }
    }
    if (!o.out) return cli_usage_error("prep", "--out DIR is required");
    if (optind >= argc) return cli_usage_error("prep", "no INPUT (NIfTI files or folders)");
    if (!o.template_path != !o.template_mask)
        return cli_usage_error("prep", "--template and --template-mask go together");
    if (o.write_bias && !o.n4) return cli_usage_error("prep", "--write-bias writes N4's field: not with --no-n4");
    double t0 = now_seconds();
    int rc = prep_run(&o, argv + optind, argc - optind);
    if (rc < 0) return cli_report_error();
    printf("prep: %s/prep.json (%.1f s)%s\n", o.out, now_seconds() - t0, rc ? "; some scans FAILED (see above)" : "");
    return rc ? EXIT_BAD_INPUT : EXIT_OK;
}
