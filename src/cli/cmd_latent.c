// anoswin latent: the paper's latent-space analysis (Figure 3) on a model and data; options only,
// the work is src/latent/latent.c.
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "latent/latent.h"
#include "nn/nn.h"  // nn_set_threads
#include "util/error.h"

static void usage(FILE *f) {
    fprintf(f,
            "Usage: anoswin latent --checkpoint CK --data DIR|CSV [--healthy DIR|CSV] --out DIR [options]\n"
            "Encoder latents of healthy and lesion slices, projected to 2-D (UMAP) twice: (a) every slice\n"
            "unmasked, (b) the lesion slices with their lesion tokens hidden (the paper's Figure 3), and\n"
            "how well healthy and lesion separate in each: silhouette, leave-one-scan-out k-NN accuracy and\n"
            "2-means agreement (adjusted Rand index, accuracy), in the latent space and in 2-D.\n"
            "Latent of a slice: the mean of the model's bottleneck tokens (last encoder stage).\n"
            "\n"
            "Slices: healthy = every slice of the range with brain pixels of the healthy scans (--healthy,\n"
            "else the \"healthy\" split of --data); lesion = the slices of --data's labelled scans with at\n"
            "least --min-lesion label pixels on the model grid.\n"
            "\n"
            "Writes DIR/latent.png (healthy blue, lesion red, 2-means 2-sd ellipses black; left unmasked,\n"
            "right masked; latent.svg: the same with titles, legend and numbers), latent.json,\n"
            "latents.{npy,csv}, embedding.{npy,csv}.\n"
            "\n"
            "Options:\n"
            "  -c, --checkpoint CK     a trained model\n"
            "  -d, --data DIR|CSV      the lesion scans with labels (any layout of `anoswin data list`)\n"
            "      --lesion DIR|CSV    the same as --data\n"
            "      --healthy DIR|CSV   healthy scans (default: --data's split \"healthy\")\n"
            "      --pred DIR          `anoswin detect` output: a scan without a label is a lesion scan with\n"
            "                          DIR/<subject>/mask.nii.gz as its lesion (where it is and what to mask)\n"
            "  -o, --out DIR\n"
            "  -m, --modality M        t1, t2 (default) or flair\n"
            "      --z-first K         first RAS axial slice (default 75)\n"
            "      --z-last K          last RAS axial slice, inclusive (default 94)\n"
            "      --mask-size PX      hide the lesion in cells of PX pixels (default: the model's token)\n"
            "      --min-lesion PX     label pixels a lesion slice needs (default 1)\n"
            "      --projection P      umap (default) or pca\n"
            "      --neighbors K       UMAP's n_neighbors (default 15)\n"
            "      --min-dist D        UMAP's min_dist (default 0.1)\n"
            "      --epochs N          UMAP's epochs (default 500, 200 above 10,000 slices)\n"
            "      --init I            UMAP's start: spectral (default) or random\n"
            "      --knn K             neighbours of the k-NN accuracy (default 5)\n"
            "      --seed S            UMAP and k-means seed (default 0)\n"
            "      --batch B           slices per forward (default 8)\n"
            "  -t, --threads T         threads (default: all cores); results do not depend on it\n"
            "  -q, --quiet             no progress on stderr\n"
            "  -h, --help\n");
}

enum {
    OPT_LESION = 256, OPT_HEALTHY, OPT_ZF, OPT_ZL, OPT_MASK, OPT_MINLES, OPT_PROJ, OPT_NEIGH, OPT_MINDIST, OPT_EPOCHS,
    OPT_INIT, OPT_KNN, OPT_SEED, OPT_BATCH, OPT_PRED
};

int cmd_latent(int argc, char **argv) {
    const char *cmd = "latent";
    static const struct option opts[] = {
        {"checkpoint", required_argument, 0, 'c'}, {"data", required_argument, 0, 'd'},
        {"lesion", required_argument, 0, OPT_LESION}, {"healthy", required_argument, 0, OPT_HEALTHY},
        {"pred", required_argument, 0, OPT_PRED},
        {"out", required_argument, 0, 'o'},        {"modality", required_argument, 0, 'm'},
        {"z-first", required_argument, 0, OPT_ZF}, {"z-last", required_argument, 0, OPT_ZL},
        {"mask-size", required_argument, 0, OPT_MASK}, {"min-lesion", required_argument, 0, OPT_MINLES},
        {"projection", required_argument, 0, OPT_PROJ}, {"neighbors", required_argument, 0, OPT_NEIGH},
        {"min-dist", required_argument, 0, OPT_MINDIST}, {"epochs", required_argument, 0, OPT_EPOCHS},
        {"init", required_argument, 0, OPT_INIT},  {"knn", required_argument, 0, OPT_KNN},
        {"seed", required_argument, 0, OPT_SEED},  {"batch", required_argument, 0, OPT_BATCH},
        {"threads", required_argument, 0, 't'},    {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},             {0, 0, 0, 0}};
    latent_options o;
    latent_options_default(&o);
    o.verbose = 1;
    o.modality = "t2";
    long v;
    double dv;
    int c, threads = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:d:o:m:t:qh", opts, NULL)) != -1) {
        switch (c) {
            case 'c': o.checkpoint = optarg; break;
            case 'd':
            case OPT_LESION: o.lesion = optarg; break;
            case OPT_HEALTHY: o.healthy = optarg; break;
            case OPT_PRED: o.pred = optarg; break;
            case 'o': o.out = optarg; break;
            case 'm': o.modality = optarg; break;
            case OPT_ZF:
                if (cli_parse_int(cmd, "z-first", optarg, 0, 100000, &v)) return EXIT_USAGE;
                o.slices.z_first = (int)v;
                break;
            case OPT_ZL:
                if (cli_parse_int(cmd, "z-last", optarg, 0, 100000, &v)) return EXIT_USAGE;
                o.slices.z_last = (int)v;
                break;
            case OPT_MASK:
                if (cli_parse_int(cmd, "mask-size", optarg, 1, 4096, &v)) return EXIT_USAGE;
                o.mask_size = (int)v;
                break;
            case OPT_MINLES:
                if (cli_parse_int(cmd, "min-lesion", optarg, 1, 1 << 24, &v)) return EXIT_USAGE;
                o.min_lesion_px = (int)v;
                break;
            case OPT_PROJ:
                if (!strcmp(optarg, "umap")) o.projection = LATENT_UMAP;
                else if (!strcmp(optarg, "pca")) o.projection = LATENT_PCA;
                else return cli_usage_error(cmd, "--projection must be umap or pca, not '%s'", optarg);
                break;
            case OPT_NEIGH:
                if (cli_parse_int(cmd, "neighbors", optarg, 2, 1000, &v)) return EXIT_USAGE;
                o.umap.n_neighbors = (int)v;
                break;
            case OPT_MINDIST:
                if (cli_parse_double(cmd, "min-dist", optarg, 0, 10, &dv)) return EXIT_USAGE;
                o.umap.min_dist = (float)dv;
                break;
            case OPT_EPOCHS:
                if (cli_parse_int(cmd, "epochs", optarg, 1, 100000, &v)) return EXIT_USAGE;
                o.umap.n_epochs = (int)v;
                break;
            case OPT_INIT:
                if (!strcmp(optarg, "spectral")) o.umap.init = UMAP_INIT_SPECTRAL;
                else if (!strcmp(optarg, "random")) o.umap.init = UMAP_INIT_RANDOM;
                else return cli_usage_error(cmd, "--init must be spectral or random, not '%s'", optarg);
                break;
            case OPT_KNN:
                if (cli_parse_int(cmd, "knn", optarg, 1, 1000, &v)) return EXIT_USAGE;
                o.knn_k = (int)v;
                break;
            case OPT_SEED:
                if (cli_parse_int(cmd, "seed", optarg, 0, 2147483647L, &v)) return EXIT_USAGE;
                o.umap.seed = (uint64_t)v;
                break;
            case OPT_BATCH:
                if (cli_parse_int(cmd, "batch", optarg, 1, 1024, &v)) return EXIT_USAGE;
                o.batch = (int)v;
                break;
            case 't':
                if (cli_parse_int(cmd, "threads", optarg, 1, 1024, &v)) return EXIT_USAGE;
                threads = (int)v;
                break;
            case 'q': o.verbose = 0; break;
            case 'h': usage(stdout); return EXIT_OK;
            default: return cli_usage_error(cmd, "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!o.checkpoint) return cli_usage_error(cmd, "--checkpoint is required");
    if (!o.lesion) return cli_usage_error(cmd, "--data (the lesion scans) is required");
    if (!o.out) return cli_usage_error(cmd, "--out is required");
    if (o.slices.z_last < o.slices.z_first)
        return cli_usage_error(cmd, "--z-last %d is before --z-first %d", o.slices.z_last, o.slices.z_first);
    if (threads > 0) nn_set_threads(threads);

    latent_result r;
    if (latent_run(&o, &r)) return cli_report_error();
    printf("latent: %d healthy slices (%d scans), %d lesion slices (%d scans), %d-D latents (mean of the "
           "bottleneck tokens), %s; %.1f s latents, %.1f s projection\n",
           r.n_healthy, r.healthy_scans, r.n_lesion, r.lesion_scans, r.latent_dim,
           o.projection == LATENT_PCA ? "PCA" : "UMAP", r.seconds_latents, r.seconds_projection);
    printf("%-9s %11s %11s %9s %9s %8s %8s\n", "panel", "silh.latent", "silh.2-D", "knn.lat", "knn.2-D", "km.ARI",
           "km.acc");
    for (int p = 0; p < 2; p++) {
        const latent_panel *lp = &r.panel[p];
        printf("%-9s %11.3f %11.3f %9.3f %9.3f %8.3f %8.3f\n", p ? "masked" : "unmasked", lp->silhouette_latent,
               lp->silhouette_2d, lp->knn_latent, lp->knn_2d, lp->kmeans_ari, lp->kmeans_accuracy);
    }
    printf("wrote %s/latent.png, latent.svg, latent.json, latents.{npy,csv}, embedding.{npy,csv}\n", o.out);
    return EXIT_OK;
}
