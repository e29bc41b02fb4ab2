// Learning: a small config trained for 240 AdamW steps on simple synthetic brain-like slices
// lowers the masked loss (and the validation loss) by more than 10x from the first epoch's
// (measured ~65x). Labelled slow (a learning run).
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

int main(void) {
    const int S = 32;
    slice_set train = {0}, val = {0};
    make_slice_phantoms(&train, 64, S, 1);
    make_slice_phantoms(&val, 16, S, 2);

    // ---- 1. learning ----------------------------------------------------------------------
    {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/learn", tu_scratch_dir("train_loop"));
        train_options o;
        small_train_options(&o, dir, 30);  // 8 steps per epoch: 240 steps
        o.lr = 2e-3;
        o.save_every = 0;
        float *losses = calloc(400, sizeof(float));
        train_result res;
        int rc = train_run(&o, &train, &val, 0, &res, losses);
        CHECK(rc == 0, "learning run: %s", as_error());
        double first = 0, last = 0;
        for (int i = 0; i < 8; i++) first += losses[i] / 8.0;  // epoch 1 (lr warming up from 0)
        for (int i = 232; i < 240; i++) last += losses[i] / 8.0;
        printf("learning: mean masked loss epoch 1 %.5f -> epoch 30 %.5f (x%.1f), val %.5f\n", first, last,
               first / last, res.last_val_loss);
        CHECK(rc == 0 && last < first / 10.0, "masked loss drops by more than 10x (%.5f -> %.5f)", first, last);
        CHECK(rc == 0 && res.last_val_loss < first / 10.0, "validation loss also low (%.5f)", res.last_val_loss);
        free(losses);
    }

    slice_set_free(&train);
    slice_set_free(&val);
    return tu_finish();
}
