// anoswin info FILE...: describes NIfTI volumes (dimensions, voxel size, datatype, orientation,
// intensity range). Each kind of file has its own describe function; `info --model` (the
// model's tensors) is meant to slot in beside info_nifti.
#include <ctype.h>
#include <getopt.h>
#include <math.h>
#include <nifti2_io.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "data/reorient.h"
#include "data/volume.h"
#include "model/model.h"  // model_method_find: --method
#include "util/error.h"

static void info_usage(FILE *f) {
    fprintf(f,
            "Usage: anoswin info [options] FILE.nii[.gz]|FILE.safetensors...\n"
            "       anoswin info --model [--method M] [--config S] [--checkpoint FILE.safetensors]\n"
            "Describe NIfTI-1/2 volumes: dimensions, voxel size, datatype, orientation code\n"
            "(nibabel's aff2axcodes, e.g. RAS or LPS) and intensity range (after scl_slope/inter).\n"
            "A file that cannot be used (not NIfTI, not 3-D, bad geometry, NaN voxels, ...) is\n"
            "reported as 'anoswin: FILE: problem' and makes the exit status 1.\n\n"
            "A .safetensors file is listed tensor by tensor (name, dtype, shape) with its metadata.\n"
            "--model prints every tensor of a method's model (state_dict names, dtypes, shapes) and\n"
            "the parameter totals, for the method's default config, --config, or the checkpoint's config\n"
            "(the checkpoint is then also loaded strictly).\n\n"
            "Options:\n"
            "  --model               describe the model\n"
            "  --method M            swinmae (default), vae, fanogan, ... (a checkpoint names its own)\n"
            "  --config S            model config, e.g. \"img_size=112,patch_size=2,embed_dim=48\"\n"
            "                        (keys: img_size patch_size in_chans embed_dim depths=[a,b,c,d]\n"
            "                        num_heads=[a,b,c,d] window mlp_ratio drop_path_rate), or the name of\n"
            "                        one of the method's presets (e.g. tiny); other methods: docs/baselines.md\n"
            "  --checkpoint FILE     a model checkpoint (.safetensors) to check and describe\n"
            "  -h, --help            show this help\n");
}

static const char *xform_name(int code) {
    switch (code) {
        case NIFTI_XFORM_SCANNER_ANAT: return "scanner";
        case NIFTI_XFORM_ALIGNED_ANAT: return "aligned";
        case NIFTI_XFORM_TALAIRACH: return "talairach";
        case NIFTI_XFORM_MNI_152: return "mni152";
        case NIFTI_XFORM_TEMPLATE_OTHER: return "template";
        default: return "unknown";
    }
}

// One NIfTI file: 0 when described, -1 (error recorded) when it cannot be read.
static int info_nifti(const char *path) {
    volume v;
    if (volume_read(&v, path)) return -1;
    const nifti_image *nim = v.header;
    size_t n = volume_voxels(&v);
    double lo = INFINITY, hi = -INFINITY, sum = 0;
    size_t nonzero = 0;
    for (size_t i = 0; i < n; i++) {
        double x = v.data[i];
        lo = x < lo ? x : lo;
        hi = x > hi ? x : hi;
        sum += x;
        nonzero += x != 0;
    }
    char code[4];
    orientation_codes(v.affine, code);
    const char *source = nim->sform_code > 0 ? "sform" : nim->qform_code > 0 ? "qform" : "no xform, pixdim";
    int code_used = nim->sform_code > 0 ? nim->sform_code : nim->qform_code;
    int n2 = nim->nifti_type == NIFTI_FTYPE_NIFTI2_1 || nim->nifti_type == NIFTI_FTYPE_NIFTI2_2;
    size_t len = strlen(path);
    int gz = len > 3 && !strcmp(path + len - 3, ".gz");
    printf("%s\n", path);
    printf("  format:      NIfTI-%d%s\n", n2 ? 2 : 1, gz ? " (gzip)" : "");
    printf("  dimensions:  %d x %d x %d (%zu voxels)\n", v.nx, v.ny, v.nz, n);
    printf("  voxel size:  %g x %g x %g mm\n", v.pixdim[0], v.pixdim[1], v.pixdim[2]);
    char dt[32];
    snprintf(dt, sizeof dt, "%s", nifti_datatype_string(nim->datatype));
    for (char *p = dt; *p; p++) *p = (char)tolower((unsigned char)*p);
    printf("  datatype:    %s", dt);
    if (nim->scl_slope != 0 && isfinite(nim->scl_slope) && (nim->scl_slope != 1 || nim->scl_inter != 0))
        printf(" (scl_slope %g, scl_inter %g)", nim->scl_slope, nim->scl_inter);
    printf("\n");
    if (code_used > 0)
        printf("  orientation: %s (from the %s, %s)\n", code, source, xform_name(code_used));
    else
        printf("  orientation: %s (%s)\n", code, source);
    printf("  affine:      ");
    for (int r = 0; r < 3; r++)
        printf("%s[%9.4g %9.4g %9.4g %9.4g]", r ? "\n               " : "", v.affine[r][0], v.affine[r][1], v.affine[r][2],
               v.affine[r][3]);
    printf("\n");
    printf("  intensity:   min %g, max %g, mean %g\n", lo, hi, n ? sum / (double)n : 0.0);
    printf("  nonzero:     %zu voxels (%.1f%%)\n", nonzero, n ? 100.0 * (double)nonzero / (double)n : 0.0);
    volume_free(&v);
    return 0;
}

int cmd_info(int argc, char **argv) {
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                         {"model", no_argument, NULL, 'M'},
                                         {"config", required_argument, NULL, 'C'},
                                         {"checkpoint", required_argument, NULL, 'K'},
                                         {"method", required_argument, NULL, 'E'},
                                         {NULL, 0, NULL, 0}};
    int model = 0;
    const char *config = NULL, *checkpoint = NULL, *method = NULL;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
            case 'h': info_usage(stdout); return EXIT_OK;
            case 'M': model = 1; break;
            case 'C': config = optarg; break;
            case 'K': checkpoint = optarg; break;
            case 'E':
                if (!model_method_find(optarg)) return cli_usage_error("info", "--method: unknown method '%s'", optarg);
                method = optarg;
                break;
            case ':': return cli_usage_error("info", "option '%s' needs a value", argv[optind - 1]);
            default: return cli_usage_error("info", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if ((config || checkpoint || method) && !model) model = 1;
    if (model) {
        if (optind < argc) return cli_usage_error("info", "--model takes no file arguments (use --checkpoint)");
        return info_model(method, config, checkpoint);
    }
    if (optind >= argc) return cli_usage_error("info", "no input file");
    int status = EXIT_OK;
    for (int i = optind; i < argc; i++) {
        size_t len = strlen(argv[i]);
        int st = len > 12 && !strcmp(argv[i] + len - 12, ".safetensors");
        if (st ? info_safetensors(argv[i]) : info_nifti(argv[i])) status = cli_report_error();
        fflush(stdout);
    }
    return status;
}
