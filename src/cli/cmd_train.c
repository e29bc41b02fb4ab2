// anoswin train: trains the Swin MAE on the healthy slices of a data set (src/train/trainer.h).
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "data/nyul.h"         // nyul_parse_setting
#include "nn/nn.h"             // nn_precision_*
#include "train/dist.h"        // dist_init, dist_rank: mpirun ranks
#include "train/train_data.h"  // train_data_load
#include "train/trainer.h"     // train_run
#include "util/error.h"
#include "util/fs.h"

static void usage(FILE *f) {
    fprintf(f,
            "Usage: anoswin train --data DIR|CSV --out RUN [options]\n"
            "       anoswin train --resume --out RUN [--threads N] [--max-steps N]\n"
            "\n"
            "Trains the Swin masked autoencoder on the healthy subjects of a data set (split 'healthy' or\n"
            "'train', else the unlabelled scans), holding out whole subjects for a validation loss.\n"
            "\n"
            "Data:\n"
            "  --data DIR|CSV        data set folder (any supported layout) or manifest CSV\n"
            "  --modality M          t1, t2 or flair (default t2)\n"
            "  --z-first K, --z-last K  axial slice range, inclusive (default 60..109)\n"
            "  --val-fraction F      share of subjects held out for validation (default 0.1)\n"
            "  --intensity I         minmax (default: each volume to [0,1], the paper) or nyul: first map\n"
            "                        each brain's histogram onto a standard measured on the training\n"
            "                        scans (Nyul & Udupa 2000, deciles); the standard goes into every\n"
            "                        checkpoint and detect, calibrate and latent apply it to each scan\n"
            "Model and optimisation:\n"
            "  --method M            swinmae (default), vae (Baur et al. 2021's dense VAE), fanogan\n"
            "                        (Schlegl et al. 2019; its WGAN-GP + izi_f recipe is in its --config)\n"
            "                        or vitmae (He et al. 2022's ViT masked autoencoder)\n"
            "  --config C            model config: JSON file or key=value list (default: the paper's)\n"
            "  --epochs N            (default 400)      --batch N (default 10)\n"
            "  --lr X                peak learning rate (default 1e-3); --min-lr X (default 0)\n"
            "  --warmup-epochs X     linear warm-up, then half-cosine to min-lr (default 10)\n"
            "  --no-drop-path        train without DropPath\n"
            "Masking:\n"
            "  --mask-ratio R        share of (brain) mask units masked (default 0.35)\n"
            "  --mask-size PX        mask unit side in pixels, a multiple of the patch (default 16)\n"
            "  --mask-anywhere       mask units anywhere, as the reference code (default: brain units only)\n"
            "  --brain-cover F       a unit is brain when more than F of it is brain (default 0.5)\n"
            "Run:\n"
            "  --out RUN             output folder (created; must not hold a run unless --resume)\n"
            "  --resume              continue the run in RUN exactly where it stopped\n"
            "  --seed N              (default 0)        --threads N (default: all cores)\n"
            "  --precision P         fp32 (default) or bf16: linear layers' GEMM operands in bfloat16 with\n"
            "                        fp32 accumulation, weights/optimizer/norms/losses in fp32 (needs AVX512-BF16)\n"
            "  --save-every N        numbered checkpoint every N epochs (default 10; 0 = none)\n"
            "  --recon N             slices in each reconstruction PNG (default 4; 0 = none)\n"
            "  --max-steps N         stop (and save) after N optimizer steps in all\n"
            "  --quiet               no progress lines\n"
            "\n"
            "Writes RUN/log.csv, RUN/{last,best,epoch_NNNN}.safetensors (load strictly in PyTorch),\n"
            "RUN/resume.safetensors and RUN/recon/*.png. Every checkpoint records what the model was trained\n"
            "on (modality, grid, voxel size, brain intensity statistics: metadata anoswin.fingerprint), which\n"
            "detect checks each scan against. Ctrl-C (SIGINT) or SIGTERM finishes the\n"
            "current step, saves, and exits with status 130 / 143; --resume then continues with the\n"
            "same losses as an uninterrupted run (same thread count).\n");
}

enum {
    OPT_DATA = 1000, OPT_MODALITY, OPT_OUT, OPT_EPOCHS, OPT_BATCH, OPT_LR, OPT_MIN_LR, OPT_WARMUP, OPT_MASK_RATIO,
    OPT_MASK_SIZE, OPT_MASK_ANYWHERE, OPT_BRAIN_COVER, OPT_NO_DROP_PATH, OPT_SEED, OPT_THREADS, OPT_RESUME,
    OPT_CONFIG, OPT_VAL_FRACTION, OPT_SAVE_EVERY, OPT_Z_FIRST, OPT_Z_LAST, OPT_MAX_STEPS, OPT_RECON, OPT_QUIET,
    OPT_METHOD, OPT_PRECISION, OPT_INTENSITY
};

// Prints this rank's error (prefixed "rank R: " when distributed) and returns EXIT_BAD_INPUT.
static int cmd_train_ranked(train_options *op, const char *out, const char *data, const char *config, int resume,
                            int n_training_opts);

static int report_rank_error(void) {
    if (dist_size() > 1) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", as_error());
        as_fail("rank %d of %d: %s", dist_rank(), dist_size(), msg);
    }
    return cli_report_error();
}

// A --config value: a readable file holds JSON or key=value text; anything else is the text.
static int parse_config(train_options *o, const char *arg) {
    if (fs_exists(arg) && !fs_is_dir(arg)) {
        unsigned char *data;
        size_t n;
        if (fs_read_all(arg, &data, &n)) return -1;
        char *text = as_malloc(n + 1);
        memcpy(text, data, n);
        text[n] = 0;
        free(data);
        int rc = train_options_set_config(o, text, arg);
        free(text);
        return rc;
    }
    return train_options_set_config(o, arg, "--config");
}

int cmd_train(int argc, char **argv) {
    static const struct option longopts[] = {
        {"data", required_argument, 0, OPT_DATA},
        {"modality", required_argument, 0, OPT_MODALITY},
        {"out", required_argument, 0, OPT_OUT},
        {"epochs", required_argument, 0, OPT_EPOCHS},
        {"batch", required_argument, 0, OPT_BATCH},
        {"lr", required_argument, 0, OPT_LR},
        {"min-lr", required_argument, 0, OPT_MIN_LR},
        {"warmup-epochs", required_argument, 0, OPT_WARMUP},
        {"mask-ratio", required_argument, 0, OPT_MASK_RATIO},
        {"mask-size", required_argument, 0, OPT_MASK_SIZE},
        {"mask-anywhere", no_argument, 0, OPT_MASK_ANYWHERE},
        {"brain-cover", required_argument, 0, OPT_BRAIN_COVER},
        {"no-drop-path", no_argument, 0, OPT_NO_DROP_PATH},
        {"seed", required_argument, 0, OPT_SEED},
        {"threads", required_argument, 0, OPT_THREADS},
        {"resume", no_argument, 0, OPT_RESUME},
        {"config", required_argument, 0, OPT_CONFIG},
        {"method", required_argument, 0, OPT_METHOD},
        {"precision", required_argument, 0, OPT_PRECISION},
        {"val-fraction", required_argument, 0, OPT_VAL_FRACTION},
        {"save-every", required_argument, 0, OPT_SAVE_EVERY},
        {"z-first", required_argument, 0, OPT_Z_FIRST},
        {"z-last", required_argument, 0, OPT_Z_LAST},
        {"max-steps", required_argument, 0, OPT_MAX_STEPS},
        {"recon", required_argument, 0, OPT_RECON},
        {"quiet", no_argument, 0, OPT_QUIET},
        {"intensity", required_argument, 0, OPT_INTENSITY},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    train_options o;
    train_options_default(&o);
    const char *data = NULL, *out = NULL, *config = NULL;
    int resume = 0, n_training_opts = 0;  // options that --resume takes from the run instead
    long v;
    double d;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        const char *name = NULL;
        for (int i = 0; longopts[i].name; i++)
            if (longopts[i].val == c) name = longopts[i].name;
        switch (c) {
        case 'h': usage(stdout); return EXIT_OK;
        case OPT_OUT: out = optarg; break;
        case OPT_RESUME: resume = 1; break;
        case OPT_QUIET: o.quiet = 1; break;
        case OPT_THREADS:
            if (cli_parse_int("train", name, optarg, 1, 1024, &v)) return EXIT_USAGE;
            o.threads = (int)v;
            break;
        case OPT_MAX_STEPS:
            if (cli_parse_int("train", name, optarg, 1, 1L << 40, &v)) return EXIT_USAGE;
            o.max_steps = v;
            break;
        default:
            n_training_opts++;
            switch (c) {
            case OPT_DATA: data = optarg; break;
            case OPT_MODALITY: snprintf(o.modality, sizeof o.modality, "%s", optarg); break;
            case OPT_CONFIG: config = optarg; break;
            case OPT_METHOD:
                // The method's default config replaces the previous one; --config (applied after
                // the options) goes on top, so the two may come in either order.
                if (!model_method_get(optarg, "--method")) return cli_usage_error("train", "%s", as_error());
                snprintf(o.method, sizeof o.method, "%s", optarg);
                o.config[0] = 0;
                if (train_options_set_config(&o, NULL, "--method")) return cli_report_error();
                break;
            case OPT_EPOCHS:
                if (cli_parse_int("train", name, optarg, 1, 1000000, &v)) return EXIT_USAGE;
                o.epochs = (int)v;
                break;
            case OPT_BATCH:
                if (cli_parse_int("train", name, optarg, 1, 4096, &v)) return EXIT_USAGE;
                o.batch = (int)v;
                break;
            case OPT_LR:
                if (cli_parse_double("train", name, optarg, 0, 10, &o.lr)) return EXIT_USAGE;
                break;
            case OPT_MIN_LR:
                if (cli_parse_double("train", name, optarg, 0, 10, &o.min_lr)) return EXIT_USAGE;
                break;
            case OPT_WARMUP:
                if (cli_parse_double("train", name, optarg, 0, 1e6, &o.warmup_epochs)) return EXIT_USAGE;
                break;
            case OPT_MASK_RATIO:
                if (cli_parse_double("train", name, optarg, 1e-9, 1 - 1e-9, &o.mask_ratio)) return EXIT_USAGE;
                break;
            case OPT_MASK_SIZE:
                if (cli_parse_int("train", name, optarg, 1, 100000, &v)) return EXIT_USAGE;
                o.mask_unit = (int)v;
                break;
            case OPT_MASK_ANYWHERE: o.mask_brain = 0; break;
            case OPT_BRAIN_COVER:
                if (cli_parse_double("train", name, optarg, 0, 0.999999, &o.brain_cover)) return EXIT_USAGE;
                break;
            case OPT_NO_DROP_PATH: o.drop_path = 0; break;
            case OPT_INTENSITY:
                if (nyul_parse_setting(optarg, &o.nyul)) return cli_usage_error("train", "--%s", as_error());
                break;
            case OPT_PRECISION:
                if (nn_precision_parse(optarg, &o.precision)) return cli_usage_error("train", "%s", as_error());
                break;
            case OPT_SEED:
                if (cli_parse_int("train", name, optarg, 0, 1L << 62, &v)) return EXIT_USAGE;
                o.seed = (uint64_t)v;
                break;
            case OPT_VAL_FRACTION:
                if (cli_parse_double("train", name, optarg, 0, 0.9, &d)) return EXIT_USAGE;
                o.val_fraction = d;
                break;
            case OPT_SAVE_EVERY:
                if (cli_parse_int("train", name, optarg, 0, 1000000, &v)) return EXIT_USAGE;
                o.save_every = (int)v;
                break;
            case OPT_Z_FIRST:
                if (cli_parse_int("train", name, optarg, 0, 100000, &v)) return EXIT_USAGE;
                o.z_first = (int)v;
                break;
            case OPT_Z_LAST:
                if (cli_parse_int("train", name, optarg, 0, 100000, &v)) return EXIT_USAGE;
                o.z_last = (int)v;
                break;
            case OPT_RECON:
                if (cli_parse_int("train", name, optarg, 0, 64, &v)) return EXIT_USAGE;
                o.recon_count = (int)v;
                break;
            default: return cli_usage_error("train", "unknown option");
            }
        }
    }
    if (optind < argc) return cli_usage_error("train", "unexpected argument '%s'", argv[optind]);
    if (!out) return cli_usage_error("train", "--out RUN is required");
    o.out_dir = out;
    // Under mpirun: one rank of a data-parallel run (train/dist.h). From here on every way out
    // either finalizes on all ranks together or aborts the whole job, never leaves ranks waiting.
    if (dist_init()) return cli_report_error();
    int rc = cmd_train_ranked(&o, out, data, config, resume, n_training_opts);
    // A failed rank may leave others inside a collective: end the whole job (mpirun prints
    // which rank aborted; the message above says why). Checkpoints are atomic, so the last
    // one stays loadable.
    if (dist_size() > 1 && (rc == EXIT_BAD_INPUT || rc == EXIT_USAGE)) dist_abort(rc);
    dist_finalize();
    return rc;
}

static int cmd_train_ranked(train_options *op, const char *out, const char *data, const char *config, int resume,
                            int n_training_opts) {
    train_options o = *op;
    if (resume) {
        if (n_training_opts)
            return cli_usage_error("train", "--resume takes every setting from the run; only --threads, "
                                            "--max-steps and --quiet may be given");
        train_options saved;
        if (train_load_options(&saved, out)) return report_rank_error();
        saved.out_dir = out;
        saved.threads = o.threads;
        saved.max_steps = o.max_steps;
        saved.quiet = o.quiet;
        o = saved;
        if (o.ranks != dist_size()) {  // train_run says so too; say it before loading the data
            as_fail("%s: the run trains on %d rank(s) x batch %d, not %d; resume it %s%d", out, o.ranks, o.batch,
                    dist_size(), o.ranks > 1 ? "with mpirun -np " : "in one process, not under mpirun -np ",
                    o.ranks > 1 ? o.ranks : dist_size());
            return report_rank_error();
        }
    } else {
        if (!data) return cli_usage_error("train", "--data DIR|CSV is required");
        // Stored absolute, so that --resume works from any working directory.
        char *abs = realpath(data, NULL);
        const char *keep = abs ? abs : data;
        if (strlen(keep) >= sizeof o.data) return cli_usage_error("train", "--data: path too long");
        snprintf(o.data, sizeof o.data, "%s", keep);
        free(abs);
        if (config && parse_config(&o, config)) return report_rank_error();
        if (o.z_last < o.z_first) return cli_usage_error("train", "--z-last %d is before --z-first %d", o.z_last, o.z_first);
    }
    // Before minutes of data loading: bf16 on a CPU without it is refused here (train_run sets it).
    if (nn_set_precision(o.precision)) return report_rank_error();
    if (!dist_is_root()) o.quiet = 1;  // one progress display: rank 0's
    // Fail early on an unusable output folder, before minutes of data loading (rank 0 alone
    // writes the run).
    if (dist_is_root()) {
        if (fs_mkdirs(out)) return report_rank_error();
        char probe[4200];
        fs_join(probe, sizeof probe, out, ".anoswin-write-test");
        if (fs_write_all(probe, "ok\n", 3)) {
            fprintf(stderr, "anoswin: %s: output folder is not writable\n", out);
            return EXIT_BAD_INPUT;
        }
        remove(probe);
    }
    if (!resume) {
        char rp[4200];
        fs_join(rp, sizeof rp, out, "resume.safetensors");
        if (fs_exists(rp)) {
            fprintf(stderr, "anoswin: %s: the folder already holds a run (use --resume, or another --out)\n", out);
            return EXIT_BAD_INPUT;
        }
    }

    slice_set train, val;
    memset(&train, 0, sizeof train);
    memset(&val, 0, sizeof val);
    // What the data looks like, recorded in every checkpoint for detect's input guard.
    fingerprint fp;
    char fp_json[4096];
    if (train_data_load(&o, &train, &val, &fp)) return report_rank_error();
    if (!fingerprint_to_json(&fp, fp_json, sizeof fp_json)) o.fingerprint = fp_json;
    train_install_signal_handlers();
    train_result res;
    memset(&res, 0, sizeof res);
    int rc = train_run(&o, &train, &val, resume, &res, NULL);
    slice_set_free(&train);
    slice_set_free(&val);
    if (rc) return report_rank_error();
    int sig = train_stop_signal();
    if (!dist_is_root()) return sig ? 128 + sig : EXIT_OK;
    fprintf(stderr,
            "train: %s at step %ld (epoch %d): train loss %.5f, val loss %.5f, best val %.5f; precision %s; run in %s\n",
            sig ? "stopped by signal" : "done", res.global_step, res.epoch, res.last_train_loss, res.last_val_loss,
            res.best_val_loss, nn_precision_name(nn_precision()), out);
    if (dist_size() > 1)
        fprintf(stderr, "train: %d ranks x batch %d; rank 0 spent %.1f s in MPI collectives (waits for other ranks "
                        "included)\n",
                dist_size(), o.batch, dist_comm_seconds());
    if (sig && dist_size() > 1)
        fprintf(stderr, "train: continue with: mpirun -np %d anoswin train --resume --out %s\n", dist_size(), out);
    else if (sig)
        fprintf(stderr, "train: continue with: anoswin train --resume --out %s\n", out);
    return sig ? 128 + sig : EXIT_OK;
}
