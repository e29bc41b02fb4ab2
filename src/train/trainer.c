#include "train/trainer.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/png.h"            // rgb_image_*, pngfile_write_rgb
#include "model/model.h"       // model_*: the method behind the model interface
#include "model/params.h"      // param_entry
#include "nn/nn.h"             // nn_set_threads
#include "train/adamw.h"       // adamw_*, lr_schedule
#include "train/checkpoint_io.h"  // run_save_model, run_save_resume, run_load_resume
#include "train/masking.h"        // mask_spec, mask_generate
#include "train/dist.h"           // dist_*: data-parallel ranks (no-ops in one process)
#include "util/error.h"        // as_fail, as_malloc
#include "util/fs.h"           // fs_join, fs_mkdirs, fs_write_all
#include "util/rng.h"          // rng_seed_stream, rng_permutation
#include "util/timer.h"        // progress_*, now_seconds

// Salts that separate the random streams derived from the one run seed.
#define SALT_SHUFFLE 0x5348554646ULL  // "SHUFF"
#define SALT_MASK 0x4d41534bULL       // "MASK"
#define SALT_DROP 0x44524f50ULL       // "DROP"
#define SALT_VAL 0x56414cULL          // "VAL"

// ---- slices ----------------------------------------------------------------------------------

void slice_set_append(slice_set *s, const float *img, const uint8_t *brain, int n, int size) {
    if (s->n == 0) s->size = size;
    size_t hw = (size_t)size * size, old = (size_t)s->n * hw;
    s->img = as_realloc(s->img, sizeof(float) * (old + (size_t)n * hw));
    s->brain = as_realloc(s->brain, old + (size_t)n * hw);
    memcpy(s->img + old, img, sizeof(float) * (size_t)n * hw);
    memcpy(s->brain + old, brain, (size_t)n * hw);
    s->n += n;
}

void slice_set_free(slice_set *s) {
    free(s->img);
    free(s->brain);
    memset(s, 0, sizeof *s);
}

// FNV-1a over the slice bytes: resume checks that it sees the same data.
static uint64_t slice_set_hash(const slice_set *s, uint64_t h) {
    if (!s) return h;
    size_t hw = (size_t)s->n * s->size * s->size;
    const uint32_t *w = (const uint32_t *)s->img;
    for (size_t i = 0; i < hw; i++) h = (h ^ w[i]) * 0x100000001b3ULL;
    for (size_t i = 0; i < hw; i++) h = (h ^ s->brain[i]) * 0x100000001b3ULL;
    return h ^ (uint64_t)s->n;
}

static mask_spec options_mask_spec(const train_options *o) {
    mask_spec s = mask_spec_default(o->shape.img_size, o->shape.img_size, o->shape.patch_size);
    if (o->mask_unit > 0) s.unit = o->mask_unit;
    s.ratio = o->mask_ratio;
    s.brain_cover = o->brain_cover;
    return s;
}

int train_load_options(train_options *o, const char *out_dir) {
    char path[4096], opts[16384], state[4096];
    fs_join(path, sizeof path, out_dir, "resume.safetensors");
    if (run_read_metadata(path, opts, sizeof opts, state, sizeof state)) return -1;
    return train_options_from_json(o, opts, path);
}

// ---- signals ---------------------------------------------------------------------------------

static volatile sig_atomic_t g_stop_signal = 0;

static void on_stop_signal(int sig) { g_stop_signal = sig; }

void train_install_signal_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESETHAND;  // a second Ctrl-C kills at once (checkpoints are atomic anyway)
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    if (dist_size() > 1) {
        // Under mpirun, SIGTERM is how mpirun tears the job down when a rank died: it must kill
        // at once (a rank waiting for a dead peer would never reach the end of its step). A
        // graceful stop is SIGUSR1, which mpirun forwards to every rank (or SIGINT to the ranks).
        sigaction(SIGUSR1, &sa, NULL);
    } else {
        sigaction(SIGTERM, &sa, NULL);
    }
}

int train_stop_signal(void) { return (int)g_stop_signal; }

// ---- batches ---------------------------------------------------------------------------------

// images (B, C, S, S): slice idx[b] repeated over the C channels; brain (B, S, S).
static void fill_batch(float *images, uint8_t *brain, const slice_set *s, const int *idx, int B, int C) {
    size_t hw = (size_t)s->size * s->size;
    for (int b = 0; b < B; b++) {
        const float *src = s->img + (size_t)idx[b] * hw;
        for (int c = 0; c < C; c++) memcpy(images + ((size_t)b * C + c) * hw, src, sizeof(float) * hw);
        if (brain) memcpy(brain + (size_t)b * hw, s->brain + (size_t)idx[b] * hw, hw);
    }
}

static uint64_t drop_seed_for_step(uint64_t seed, long step) {
    rng r;
    rng_seed_stream(&r, seed ^ SALT_DROP, (uint64_t)step);
    return rng_u64(&r);
}

typedef struct trainer {
    train_options o;
    mask_spec ms;
    model m;
    adamw opt;
    train_state st;
    int C, L, S;
    float *images;
    uint8_t *brain, *tmask;
    int *idx;
} trainer;

// Masked loss over the whole validation set with its fixed masks, DropPath off. Pooled over
// all masked tokens, so the value does not depend on how the set is cut into batches. With
// several ranks, rank r takes batches r, r+N, ... and the sums are added across ranks.
static double validation_loss(trainer *t, const slice_set *val) {
    double sum = 0.0;
    long count = 0;
    for (int i0 = t->o.batch * dist_rank(); i0 < val->n; i0 += t->o.batch * dist_size()) {
        int B = val->n - i0 < t->o.batch ? val->n - i0 : t->o.batch;
        for (int b = 0; b < B; b++) t->idx[b] = i0 + b;
        fill_batch(t->images, t->brain, val, t->idx, B, t->C);
        long masked = mask_generate(t->tmask, &t->ms, t->o.mask_brain ? t->brain : NULL, B, t->o.seed ^ SALT_VAL,
                                    (uint64_t)i0);
        float loss = t->m.method->predict(&t->m, NULL, t->images, t->tmask, B);
        sum += (double)loss * (double)masked;
        count += masked;
    }
    double agg[2] = {sum, (double)count};
    dist_allreduce_sum_f64(agg, 2, "the validation loss");
    sum = agg[0];
    count = (long)agg[1];
    return count ? sum / (double)count : NAN;
}

// Stacks rows of [input | masked input | reconstruction | raw prediction] for the first slices
// of s, with the validation masks, into RUN/recon/<name>.png. "reconstruction" is the input with
// the masked units replaced by the prediction (what detection uses); the raw prediction also
// shows the visible tokens, which the loss never sees.
static int write_reconstructions(trainer *t, const slice_set *s, const char *name) {
    int n = t->o.recon_count < s->n ? t->o.recon_count : s->n;
    if (n > t->o.batch) n = t->o.batch;
    if (n <= 0) return 0;
    for (int b = 0; b < n; b++) t->idx[b] = b;
    fill_batch(t->images, t->brain, s, t->idx, n, t->C);
    mask_generate(t->tmask, &t->ms, t->o.mask_brain ? t->brain : NULL, n, t->o.seed ^ SALT_VAL, 0);
    enum { COLS = 4 };
    int S = t->S, p = t->m.patch_size, G = S / p, gap = 2;
    size_t hw = (size_t)S * S;
    float *pred = as_malloc(sizeof(float) * n * t->C * hw);  // (n, C, S, S)
    t->m.method->predict(&t->m, pred, t->images, t->tmask, n);
    float *tile = as_malloc(sizeof(float) * hw);
    rgb_image sheet;
    rgb_image_alloc(&sheet, COLS * S + (COLS - 1) * gap, n * S + (n - 1) * gap);
    for (int b = 0; b < n; b++) {
        const float *img = s->img + (size_t)b * hw;
        for (int col = 0; col < COLS; col++) {
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++) {
                    int tok = (y / p) * G + x / p, masked = t->tmask[(size_t)b * t->L + tok];
                    float v = img[(size_t)y * S + x];
                    float pr = pred[(size_t)b * t->C * hw + (size_t)y * S + x];  // channel 0
                    if (col == 1 && masked) v = 0.0f;
                    if ((col == 2 && masked) || col == 3) v = pr;
                    tile[(size_t)y * S + x] = v;
                }
            rgb_image im;
            rgb_image_from_grey(&im, tile, S, S, 0.0f, 1.0f);
            for (int y = 0; y < S; y++)
                memcpy(sheet.px + ((size_t)(b * (S + gap) + y) * sheet.w + col * (S + gap)) * 3,
                       im.px + (size_t)y * S * 3, (size_t)S * 3);
            rgb_image_free(&im);
        }
    }
    char dir[4096], file[256], path[4200];
    fs_join(dir, sizeof dir, t->o.out_dir, "recon");
    snprintf(file, sizeof file, "%s.png", name);
    fs_join(path, sizeof path, dir, file);
    int rc = fs_mkdirs(dir) || pngfile_write_rgb(path, &sheet);
    rgb_image_free(&sheet);
    free(tile), free(pred);
    return rc ? -1 : 0;
}

// ---- the log ---------------------------------------------------------------------------------

static const char *LOG_HEADER = "epoch,step,lr,train_loss,val_loss,img_per_s,elapsed_s\n";

// Keeps the header and the rows whose step is <= global_step (rows written after the state
// being resumed are dropped, so the log matches the run), rewritten atomically.
static int log_truncate(const char *path, long global_step) {
    unsigned char *data = NULL;
    size_t n = 0;
    if (!fs_exists(path)) return fs_write_all(path, LOG_HEADER, strlen(LOG_HEADER));
    if (fs_read_all(path, &data, &n)) return -1;
    char *text = as_malloc(n + 1), *out = as_malloc(n + strlen(LOG_HEADER) + 1);
    memcpy(text, data, n);
    text[n] = 0;
    free(data);
    size_t len = 0;
    int line_no = 0;
    for (char *line = text, *next; line && *line; line = next, line_no++) {
        next = strchr(line, '\n');
        int complete = next != NULL;  // a row cut short (full disk, power loss) has no newline
        if (next) *next++ = 0;
        long epoch, step;
        if (line_no == 0 || (complete && sscanf(line, "%ld,%ld,", &epoch, &step) == 2 && step <= global_step)) {
            size_t l = strlen(line);
            memcpy(out + len, line, l);
            len += l;
            out[len++] = '\n';
        }
    }
    int rc = fs_write_all(path, out, len);
    free(text);
    free(out);
    return rc;
}

static int log_append(const char *path, const char *row) {
    FILE *f = fopen(path, "a");
    if (!f) return as_fail("%s: cannot append: %s", path, strerror(errno));
    int bad = fputs(row, f) < 0;
    bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    return bad ? as_fail("%s: write failed: %s", path, strerror(errno)) : 0;
}

// ---- checkpoints -----------------------------------------------------------------------------

static int save_named_model(trainer *t, const char *name) {
    char file[256], path[4200];
    snprintf(file, sizeof file, "%s.safetensors", name);
    fs_join(path, sizeof path, t->o.out_dir, file);
    return run_save_model(path, &t->m, &t->st, t->o.fingerprint);
}

static int save_resume_point(trainer *t) {
    char opts[16384], path[4200];
    if (train_options_to_json(&t->o, opts, sizeof opts)) return as_fail("%s: options too long", t->o.out_dir);
    fs_join(path, sizeof path, t->o.out_dir, "resume.safetensors");
    // The model first: if a kill lands between the two, last.safetensors is ahead of the resume
    // point, which --resume rewrites anyway.
    if (save_named_model(t, "last")) return -1;
    return run_save_resume(path, &t->m, &t->opt, opts, &t->st);
}

// ---- the loop --------------------------------------------------------------------------------

static int check_writable(const char *dir) {
    if (fs_mkdirs(dir)) return -1;
    char probe[4200];
    fs_join(probe, sizeof probe, dir, ".anoswin-write-test");
    if (fs_write_all(probe, "ok\n", 3)) return as_fail("%s: output folder is not writable (%s)", dir, as_error());
    unlink(probe);
    return 0;
}

int train_run(const train_options *o_in, const slice_set *train, const slice_set *val, int resume,
              train_result *res, float *step_losses) {
    trainer T;
    memset(&T, 0, sizeof T);
    trainer *t = &T;
    t->o = *o_in;
    if (resume) {
        if (train_load_options(&t->o, o_in->out_dir)) return -1;
        t->o.out_dir = o_in->out_dir;
        t->o.threads = o_in->threads;
        t->o.max_steps = o_in->max_steps;
        t->o.quiet = o_in->quiet;
        t->o.fingerprint = o_in->fingerprint;
        t->o.nyul_std = o_in->nyul_std;
    }
    train_options *o = &t->o;
    // Data parallelism (train/dist.h): rank r of N computes samples [r*batch, (r+1)*batch) of
    // each global batch of N*batch; see the step below for why N x b equals 1 x N*b.
    const int rank = dist_rank(), nranks = dist_size(), root = dist_is_root();
    if (resume && o->ranks != nranks)
        return as_fail("%s: the run trains on %d rank(s) x batch %d, not %d; resume it %s%d", o_in->out_dir, o->ranks,
                       o->batch, nranks, o->ranks > 1 ? "with mpirun -np " : "in one process, not under mpirun -np ",
                       o->ranks > 1 ? o->ranks : nranks);
    o->ranks = nranks;
    const int gb = o->batch * nranks;  // the global batch
    char cfg[sizeof o->config];  // validates the config and refreshes its shape
    const model_method *mm = model_method_get(o->method, "train");
    if (!mm || mm->config_parse(o->config, NULL, cfg, sizeof cfg, &o->shape, "train")) return -1;
    if (o->epochs < 1 || o->batch < 1) return as_fail("train: epochs and batch must be >= 1");
    if (!train || train->n < gb)
        return as_fail("train: %d training slices, fewer than one batch of %d", train ? train->n : 0, gb);
    if (train->size != o->shape.img_size || (val && val->n > 0 && val->size != o->shape.img_size))
        return as_fail("train: slices are %dx%d but the model takes %dx%d", train->size, train->size,
                       o->shape.img_size, o->shape.img_size);
    t->ms = options_mask_spec(o);
    // A whole-image method ignores the token masks: a unit that does not fit its patch grid (larger
    // than a small image, or the demo's 8 px under 16 px patches) must not refuse it (runs that
    // trained before are unchanged: they had a unit that fits).
    if (mm->whole_image && (t->ms.unit > t->ms.img_h || t->ms.unit % t->ms.patch)) t->ms.unit = t->ms.patch;
    if (mask_spec_check(&t->ms)) return -1;
    if (root && check_writable(o->out_dir)) return -1;  // only rank 0 writes files
    char resume_path[4200], log_path[4200];
    fs_join(resume_path, sizeof resume_path, o->out_dir, "resume.safetensors");
    fs_join(log_path, sizeof log_path, o->out_dir, "log.csv");
    if (!resume && fs_exists(resume_path))
        return as_fail("%s: the folder already holds a run (use --resume, or another --out)", o->out_dir);
    if (o->threads > 0) nn_set_threads(o->threads);
    if (nn_set_precision(o->precision)) return -1;

    if (mm->train_step && nranks > 1)
        return as_fail("train: method %s trains in one process only (not under mpirun -np %d)", mm->name, nranks);
    if (model_create(&t->m, o->method, o->config, o->batch, 1, "train")) return -1;
    t->m.intensity = o->nyul_std;
    t->S = t->m.img_size;
    t->C = t->m.in_chans;
    t->L = model_tokens(&t->m);
    adamw_init(&t->opt, t->m.table->n_floats, adamw_hparams_default());
    for (int e = 0; e < t->m.table->n; e++) {
        const param_entry *pe = &t->m.table->entries[e];
        if (pe->dtype == PARAM_F32 && pe->trainable) adamw_add_span(&t->opt, pe->offset, pe->numel);
    }
    uint64_t data_hash = slice_set_hash(val, slice_set_hash(train, 0xcbf29ce484222325ULL));
    int rc = -1;
    if (resume) {
        if (run_load_resume(resume_path, &t->m, &t->opt, &t->st)) goto done;
        if (t->st.n_train != train->n || t->st.n_val != (val ? val->n : 0) || t->st.data_hash != data_hash) {
            as_fail("%s: the data differ from the run being resumed (%d/%d training/validation slices then, %d/%d now)",
                    resume_path, t->st.n_train, t->st.n_val, train->n, val ? val->n : 0);
            goto done;
        }
        if (root && log_truncate(log_path, t->st.global_step)) goto done;
    } else {
        t->m.method->init_params(&t->m, o->seed);
        t->st.best_val = INFINITY;
        t->st.best_epoch = -1;
        t->st.n_train = train->n;
        t->st.n_val = val ? val->n : 0;
        t->st.data_hash = data_hash;
        if (root && fs_write_all(log_path, LOG_HEADER, strlen(LOG_HEADER))) goto done;
    }
    if (nranks > 1) {
        // Every rank must see the same slices (same --data on every node) and start from rank
        // 0's parameters and moments (bit-identical from then on: same reduced gradient, same
        // AdamW arithmetic; checked at every epoch end).
        if (!dist_all_equal_u64(data_hash, "the data check")) {
            as_fail("train: the ranks loaded different slices (is --data the same data on every node?)");
            goto done;
        }
        dist_bcast(t->m.params, sizeof(float) * t->m.table->n_floats, 0, "the parameter broadcast");
        if (resume) {
            dist_bcast(t->opt.m, sizeof(float) * t->opt.n, 0, "the optimizer broadcast");
            dist_bcast(t->opt.v, sizeof(float) * t->opt.n, 0, "the optimizer broadcast");
        }
        dist_watchdog_arm();
    }
    const char *check_env = getenv("ANOSWIN_MPI_CHECK_EVERY_STEP");
    const int check_every_step = check_env && atoi(check_env) > 0;

    size_t hw = (size_t)t->S * t->S;
    t->images = as_malloc(sizeof(float) * (size_t)o->batch * t->C * hw);
    t->brain = as_malloc((size_t)o->batch * hw);
    t->tmask = as_malloc((size_t)o->batch * t->L);
    t->idx = as_malloc(sizeof(int) * (size_t)o->batch);
    int *perm = as_malloc(sizeof(int) * (size_t)train->n);
    const long spe = train->n / gb, total = (long)o->epochs * spe;
    const long start_step = t->st.global_step;
    long stop_at = o->max_steps > 0 && o->max_steps < total ? o->max_steps : total;
    int perm_epoch = -1;
    const slice_set *show = val && val->n > 0 ? val : train;

    progress prog;
    progress_begin(&prog, "train", stop_at - start_step);
    double t0 = now_seconds(), epoch_t0 = t0;
    long epoch_images = 0;
    int saved = 1;  // the state on disk equals the state in memory
    while (t->st.global_step < stop_at) {
        long step = t->st.global_step;
        int epoch = (int)(step / spe);
        long k = step % spe;
        if (epoch != perm_epoch) {
            rng r;
            rng_seed_stream(&r, o->seed ^ SALT_SHUFFLE, (uint64_t)epoch);
            rng_permutation(&r, perm, train->n);
            perm_epoch = epoch;
        }
        double lr = lr_schedule((double)k / (double)spe + epoch, o->lr, o->min_lr, o->warmup_epochs, o->epochs);
        // This rank's share of the global batch, and its masks (a pure function of the global
        // sample index, so they equal a one-process run's).
        long first = (long)k * gb + (long)rank * o->batch;
        fill_batch(t->images, t->brain, train, perm + first, o->batch, t->C);
        long masked = mask_generate(t->tmask, &t->ms, o->mask_brain ? t->brain : NULL, o->batch,
                                    o->seed ^ SALT_MASK, (uint64_t)step * (uint64_t)gb + (uint64_t)rank * o->batch);
        model_zero_grad(&t->m);
        // DropPath draws per batch, so ranks take distinct streams (a run on N ranks matches a
        // one-process run exactly only without DropPath).
        uint64_t drop_seed = drop_seed_for_step(o->seed, step);
        if (nranks > 1) drop_seed ^= 0x9e3779b97f4a7c15ULL * (uint64_t)(rank + 1);
        // Forward, loss and grads += d loss / d params (or a method's whole step, update included).
        const int own_step = t->m.method->train_step != NULL;
        float loss = own_step ? t->m.method->train_step(&t->m, t->images, o->batch, step, total, drop_seed,
                                                          t->opt.m, t->opt.v)
                              : t->m.method->train_batch(&t->m, t->images, t->tmask, o->batch, o->drop_path, drop_seed);
        int stop = g_stop_signal != 0;
        if (nranks > 1) {
            // The loss is the mean over the masked tokens of the batch. Over the global batch it
            // is sum_r M_r*loss_r / M (M_r = masked tokens of rank r, M = sum M_r), and so is its
            // gradient: each rank scales its gradient by M_r/M and the allreduce sums. The same
            // small allreduce agrees on a stop request, so that every rank leaves the loop after
            // the same step.
            double agg[3] = {(double)loss * (double)masked, (double)masked, stop};
            dist_allreduce_sum_f64(agg, 3, "the loss allreduce");
            loss = agg[1] > 0 ? (float)(agg[0] / agg[1]) : 0.0f;
            stop = agg[2] > 0;
            if (isfinite(loss)) {
                float w = agg[1] > 0 ? (float)((double)masked / agg[1]) : 0.0f;
                float *g = t->m.grads;
                const long n = (long)t->m.table->n_floats;
#pragma omp parallel for schedule(static)
                for (long i = 0; i < n; i++) g[i] *= w;
                dist_allreduce_sum_f32(g, (size_t)n, "the gradient allreduce");
            }
        }
        if (!isfinite(loss)) {  // the same on every rank
            as_fail("train: the loss became %g at step %ld (lower --lr?)", (double)loss, step);
            goto fail_loop;
        }
        if (!own_step) adamw_update(&t->opt, t->m.params, t->m.grads, lr);
        if (nranks > 1 && check_every_step &&
            !dist_all_equal_u64(dist_checksum_f32(t->m.params, t->m.table->n_floats), "the parameter check")) {
            as_fail("train: the ranks' parameters differ after step %ld", step);
            goto fail_loop;
        }
        if (step_losses) step_losses[step] = loss;
        t->st.loss_sum += loss;
        t->st.loss_count++;
        t->st.global_step = step + 1;
        epoch_images += gb;
        saved = 0;

        double now = now_seconds();
        if (!o->quiet) {
            char extra[160];
            snprintf(extra, sizeof extra, "epoch %d/%d  loss %.5f  lr %.3g", epoch + 1, o->epochs,
                     t->st.loss_sum / (double)t->st.loss_count, lr);
            progress_update(&prog, t->st.global_step - start_step, "step", extra);
        }

        if (t->st.global_step % spe == 0) {  // end of an epoch
            if (nranks > 1 &&
                !dist_all_equal_u64(dist_checksum_f32(t->m.params, t->m.table->n_floats), "the parameter check")) {
                as_fail("train: the ranks' parameters differ at the end of epoch %d", epoch + 1);
                goto fail_loop;
            }
            double train_loss = t->st.loss_sum / (double)t->st.loss_count;
            double val_loss = val && val->n > 0 ? validation_loss(t, val) : NAN;
            double ips = epoch_images / (now - epoch_t0 > 0 ? now - epoch_t0 : 1e-9);
            double elapsed = t->st.elapsed + (now_seconds() - t0);
            char row[512];
            snprintf(row, sizeof row, "%d,%ld,%.6g,%.8g,%.8g,%.3f,%.1f\n", epoch + 1, t->st.global_step, lr,
                     train_loss, val_loss, ips, elapsed);
            if (root && log_append(log_path, row)) goto fail_loop;
            if (res) {
                res->last_train_loss = train_loss;
                res->last_val_loss = val_loss;
                res->img_per_s = ips;
            }
            t->st.loss_sum = 0.0;
            t->st.loss_count = 0;
            int is_best = isfinite(val_loss) && val_loss < t->st.best_val;
            if (is_best) t->st.best_val = val_loss, t->st.best_epoch = epoch + 1;
            t->st.elapsed = elapsed;
            t0 = now_seconds();
            // Numbered and best models, reconstructions, then the resume point (last).
            char name[64];
            int numbered = o->save_every > 0 && (epoch + 1) % o->save_every == 0;
            snprintf(name, sizeof name, "epoch_%04d", epoch + 1);
            if (root && numbered && save_named_model(t, name)) goto fail_loop;
            if (root && is_best && save_named_model(t, "best")) goto fail_loop;
            if (root && (numbered || epoch + 1 == o->epochs) && o->recon_count > 0 &&
                write_reconstructions(t, show, name))
                goto fail_loop;
            if (root && save_resume_point(t)) goto fail_loop;
            saved = 1;
            epoch_t0 = now_seconds();
            epoch_images = 0;
        }
        if (nranks > 1 ? stop : g_stop_signal != 0) break;
    }
    if (!saved) {  // stopped mid-epoch (max_steps or a signal): keep the exact state
        t->st.elapsed += now_seconds() - t0;
        if (root && save_resume_point(t)) goto fail_loop;
    }
    if (!o->quiet) progress_end(&prog);
    if (res) {
        res->global_step = t->st.global_step;
        res->epoch = (int)(t->st.global_step / spe);
        res->best_val_loss = t->st.best_val;
        res->interrupted = g_stop_signal != 0 || (nranks > 1 && t->st.global_step < stop_at);
        if (t->st.loss_count) res->last_train_loss = t->st.loss_sum / (double)t->st.loss_count;
    }
    rc = 0;
fail_loop:
    free(perm);
done:
    free(t->images);
    free(t->brain);
    free(t->tmask);
    free(t->idx);
    adamw_free(&t->opt);
    model_free(&t->m);
    return rc;
}
