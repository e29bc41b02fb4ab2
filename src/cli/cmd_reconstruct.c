// anoswin reconstruct: what the model puts under a user-given mask, for one slice (PNG) or a
// volume (NIfTI). Also the way to compare anoswin with other implementations of the model.
#include <getopt.h>
#include <nifti1.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "data/slices.h"
#include "data/volume.h"
#include "detect/model_adapter.h"  // amap_check_model
#include "model/model.h"
#include "io/png.h"
#include "nn/nn.h"                 // nn_set_threads
#include "util/error.h"

static void usage(FILE *f) {
    fprintf(f,
            "Usage: anoswin reconstruct --checkpoint C --mask MASK --out OUT [options] INPUT\n"
            "\n"
            "Runs the model (eval mode) on INPUT with the tokens under MASK replaced by the mask token and\n"
            "writes its reconstruction.\n"
            "  INPUT .png     one grey slice on the model grid (img_size x img_size of the checkpoint, values\n"
            "                 0..1 = black..white); OUT is a grey PNG of the same size.\n"
            "  INPUT .nii[.gz] a volume: its axial RAS slices go through the slice pipeline (reorient, resize,\n"
            "                 min-max scaling, as in training); OUT is a NIfTI on the input's native grid and\n"
            "                 header, in the input's intensities (slices outside the range are 0).\n"
            "  MASK           a PNG on the model grid (pixels > 0.5 are masked; a volume uses it on every\n"
            "                 slice), or for a volume a NIfTI either on the input's grid (label > 0, taken to\n"
            "                 the model grid like the labels) or on the model grid (img_size x img_size x the\n"
            "                 number of slices, voxel (i, j, k) = model pixel row i, column j of slice k).\n"
            "                 A token is masked when its whole p x p patch is covered (p = patch size, 4):\n"
            "                 partly covered patches stay visible.\n"
            "\n"
            "Options:\n"
            "  --paste          keep the input outside the masked tokens (default: the model's output everywhere)\n"
            "  --z-first K      first RAS axial slice of a volume (default: all slices)\n"
            "  --z-last K       last RAS axial slice (inclusive)\n"
            "  --threads T      threads (default: all)\n"
            "  --precision P    fp32 (default) or bf16 (GEMM operands in bfloat16, needs AVX512-BF16)\n"
            "  --batch B        slices per forward (default 4)\n"
            "\n"
            "Prints the masked-token MSE (the training loss) on stdout. A checkpoint whose input channels are\n"
            "not 1 or 3, or a PNG whose size differs from the model's, is refused (exit 1).\n");
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcasecmp(s + a - b, suffix);
}

// Reconstructs n slices (n, S, S) into rec; pix (n, S, S) pixel masks. Returns the masked MSE
// over all masked tokens (-1 if none).
static double reconstruct_slices(float *rec, const float *img, const uint8_t *pix, int n, model *m, int paste) {
    int S = m->img_size, P = m->patch_size, G = S / P, L = G * G, C = m->in_chans, B = m->max_batch;
    size_t hw = (size_t)S * S;
    float *in = as_malloc(sizeof(float) * B * C * hw), *out = as_malloc(sizeof(float) * B * C * hw);
    uint8_t *tm = as_malloc((size_t)B * L);
    double loss_sum = 0;
    long loss_n = 0;
    for (int first = 0; first < n; first += B) {
        int nb = n - first < B ? n - first : B;
        long masked = 0;
        for (int b = 0; b < nb; b++) {
            const float *x = img + (size_t)(first + b) * hw;
            const uint8_t *pm = pix + (size_t)(first + b) * hw;
            for (int ch = 0; ch < C; ch++) memcpy(in + ((size_t)b * C + ch) * hw, x, sizeof(float) * hw);
            for (int t = 0; t < L; t++) {
                int y0 = (t / G) * P, x0 = (t % G) * P, full = 1;
                for (int y = y0; y < y0 + P && full; y++)
                    for (int xx = x0; xx < x0 + P; xx++)
                        if (!pm[(size_t)y * S + xx]) {
                            full = 0;
                            break;
                        }
                tm[(size_t)b * L + t] = (uint8_t)full;
                masked += full;
            }
        }
        float loss = m->method->predict(m, out, in, tm, nb);
        loss_sum += (double)loss * masked, loss_n += masked;  // the loss averages over the batch's masked tokens
        for (int b = 0; b < nb; b++) {
            float *r = rec + (size_t)(first + b) * hw;
            const float *x = img + (size_t)(first + b) * hw;
            for (size_t i = 0; i < hw; i++) {
                float v = 0;
                for (int ch = 0; ch < C; ch++) v += out[((size_t)b * C + ch) * hw + i];
                int y = (int)(i / S), xx = (int)(i % S);
                int masked = tm[(size_t)b * L + (y / P) * G + xx / P];
                r[i] = paste && !masked ? x[i] : v / C;
            }
        }
    }
    free(in), free(out), free(tm);
    return loss_n ? loss_sum / loss_n : -1;
}

// A PNG mask of S x S into pm (S*S), pixels > 0.5.
static int read_png_mask(uint8_t *pm, const char *path, int S) {
    float *g;
    int w, h;
    if (pngfile_read_grey(path, &g, &w, &h)) return -1;
    if (w != S || h != S) {
        free(g);
        return as_fail("%s: mask is %dx%d, the model grid is %dx%d", path, w, h, S, S);
    }
    for (int i = 0; i < S * S; i++) pm[i] = g[i] > 0.5f;
    free(g);
    return 0;
}

int cmd_reconstruct(int argc, char **argv) {
    enum { OPT_CKPT = 256, OPT_MASK, OPT_OUT, OPT_PASTE, OPT_ZF, OPT_ZL, OPT_THREADS, OPT_BATCH, OPT_PRECISION };
    static const struct option opts[] = {
        {"checkpoint", required_argument, 0, OPT_CKPT}, {"mask", required_argument, 0, OPT_MASK},
        {"out", required_argument, 0, OPT_OUT},         {"paste", no_argument, 0, OPT_PASTE},
        {"z-first", required_argument, 0, OPT_ZF},      {"z-last", required_argument, 0, OPT_ZL},
        {"threads", required_argument, 0, OPT_THREADS}, {"batch", required_argument, 0, OPT_BATCH},
        {"precision", required_argument, 0, OPT_PRECISION},
        {"help", no_argument, 0, 'h'},                  {0, 0, 0, 0}};
    const char *ckpt = NULL, *maskp = NULL, *out = NULL;
    int paste = 0, threads = 0, batch = 4, zf = -1, zl = -1, c, precision = NN_FP32;
    long v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
            case OPT_CKPT: ckpt = optarg; break;
            case OPT_MASK: maskp = optarg; break;
            case OPT_OUT: out = optarg; break;
            case OPT_PASTE: paste = 1; break;
            case OPT_ZF:
                if (cli_parse_int("reconstruct", "z-first", optarg, 0, 100000, &v)) return EXIT_USAGE;
                zf = (int)v;
                break;
            case OPT_ZL:
                if (cli_parse_int("reconstruct", "z-last", optarg, 0, 100000, &v)) return EXIT_USAGE;
                zl = (int)v;
                break;
            case OPT_THREADS:
                if (cli_parse_int("reconstruct", "threads", optarg, 1, 1024, &v)) return EXIT_USAGE;
                threads = (int)v;
                break;
            case OPT_PRECISION:
                if (nn_precision_parse(optarg, &precision)) return cli_usage_error("reconstruct", "%s", as_error());
                break;
            case OPT_BATCH:
                if (cli_parse_int("reconstruct", "batch", optarg, 1, 256, &v)) return EXIT_USAGE;
                batch = (int)v;
                break;
            case 'h': usage(stdout); return EXIT_OK;
            default: return cli_usage_error("reconstruct", "unknown option");
        }
    }
    if (!ckpt || !maskp || !out)
        return cli_usage_error("reconstruct", "--checkpoint, --mask and --out are required");
    if (optind != argc - 1) return cli_usage_error("reconstruct", "expected one INPUT");
    if ((zf < 0) != (zl < 0) || zl < zf)
        return cli_usage_error("reconstruct", "give both --z-first and --z-last, first <= last");
    const char *input = argv[optind];
    int png_in = ends_with(input, ".png");
    if (png_in != ends_with(out, ".png"))
        return cli_usage_error("reconstruct", "OUT must be a PNG for a PNG input and a NIfTI for a NIfTI input");
    if (threads > 0) nn_set_threads(threads);
    if (nn_set_precision(precision)) return cli_report_error();
    model m;
    if (model_load(&m, ckpt, batch)) return cli_report_error();
    int S = m.img_size, rc = EXIT_OK;
    size_t hw = (size_t)S * S;
    if (amap_check_model(&m, S, m.patch_size, ckpt)) goto fail;
    if (png_in) {
        float *img;
        int w, h;
        if (pngfile_read_grey(input, &img, &w, &h)) goto fail;
        if (w != S || h != S) {
            free(img);
            as_fail("%s: image is %dx%d, the model (%s) takes %dx%d", input, w, h, ckpt, S, S);
            goto fail;
        }
        uint8_t *pm = as_malloc(hw);
        float *rec = as_malloc(sizeof(float) * hw);
        int e = ends_with(maskp, ".png") ? read_png_mask(pm, maskp, S)
                                         : as_fail("%s: the mask of a PNG slice must be a PNG", maskp);
        double loss = e ? 0 : reconstruct_slices(rec, img, pm, 1, &m, paste);
        if (!e) e = pngfile_write_grey(out, rec, S, S, 0, 1);
        if (!e) printf("%s: masked-token MSE %.6g\n", out, loss);
        free(img), free(pm), free(rec);
        if (e) goto fail;
    } else {
        slice_options so;
        slice_options_default(&so, 0);
        model_slice_options(&m, &so);
        so.z_first = zf, so.z_last = zl;
        slice_stack s;
        if (slices_load(&s, input, NULL, &so)) goto fail;
        int n = s.n, e = 0;
        uint8_t *pm = as_calloc((size_t)n * hw, 1);
        if (ends_with(maskp, ".png")) {
            e = read_png_mask(pm, maskp, S);
            for (int k = 1; k < n && !e; k++) memcpy(pm + k * hw, pm, hw);
        } else {
            volume mv;
            e = volume_read(&mv, maskp);
            if (!e) {
                if (volume_same_grid(&mv, &s.native) || (mv.nx == s.native.nx && mv.ny == s.native.ny && mv.nz == s.native.nz))
                    e = slices_labels(pm, &s, &mv);
                else if (mv.nx == S && mv.ny == S && mv.nz == n) {
                    for (int k = 0; k < n; k++)
                        for (int i = 0; i < S; i++)
                            for (int j = 0; j < S; j++)
                                pm[k * hw + (size_t)i * S + j] = mv.data[i + (size_t)S * (j + (size_t)S * k)] > 0;
                } else
                    e = as_fail("%s: mask grid %dx%dx%d is neither the input's (%dx%dx%d) nor the model grid (%dx%dx%d)",
                                maskp, mv.nx, mv.ny, mv.nz, s.native.nx, s.native.ny, s.native.nz, S, S, n);
                volume_free(&mv);
            }
        }
        float *rec = as_malloc(sizeof(float) * n * hw);
        double loss = e ? 0 : reconstruct_slices(rec, s.img, pm, n, &m, paste);
        if (!e) {
            for (size_t i = 0; i < (size_t)n * hw; i++) rec[i] = s.lo + rec[i] * (s.hi - s.lo);
            volume vo;
            e = slices_to_native(&vo, &s, rec, 0);
            if (!e) {
                e = volume_write(&vo, &vo, out, NIFTI_TYPE_FLOAT32);
                volume_free(&vo);
            }
        }
        if (!e) printf("%s: %d slices (RAS z %d..%d), masked-token MSE %.6g\n", out, n, s.z[0], s.z[n - 1], loss);
        free(pm), free(rec);
        slices_free(&s);
        if (e) goto fail;
    }
    model_free(&m);
    return rc;
fail:
    model_free(&m);
    return cli_report_error();
}
