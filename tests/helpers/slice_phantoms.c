#include "helpers/slice_phantoms.h"

#include <stdio.h>
#include <stdlib.h>

#include "util/rng.h"

// Brain-like phantom slices: an elliptic "brain" (grey), a darker rim (cortex), two bright
// "ventricles", random placement and size, smooth intensity gradient and a little noise.
void make_slice_phantoms(slice_set *s, int n, int S, uint64_t seed) {
    float *img = malloc(sizeof(float) * n * S * S);
    uint8_t *brain = malloc((size_t)n * S * S);
    rng r;
    rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        double cy = S * rng_uniform_range(&r, 0.45, 0.55), cx = S * rng_uniform_range(&r, 0.45, 0.55);
        double ry = S * rng_uniform_range(&r, 0.3, 0.42), rx = S * rng_uniform_range(&r, 0.25, 0.38);
        double vy = rng_uniform_range(&r, 0.15, 0.35), vx = rng_uniform_range(&r, 0.12, 0.25);
        double gy = rng_uniform_range(&r, -0.1, 0.1), gx = rng_uniform_range(&r, -0.1, 0.1);
        double base = rng_uniform_range(&r, 0.45, 0.6);
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                double dy = (y - cy) / ry, dx = (x - cx) / rx, q = dy * dy + dx * dx;
                float v = 0.0f;
                int in = q < 1.0;
                if (in) {
                    v = (float)(base + gy * dy + gx * dx);
                    if (q > 0.7) v *= 0.6f;  // cortex rim
                    for (int side = -1; side <= 1; side += 2) {
                        double ey = dy / vy, ex = (dx - side * 0.25) / vx;
                        if (ey * ey + ex * ex < 1.0) v = 0.95f;  // ventricles
                    }
                    v += (float)(0.02 * rng_normal(&r));
                }
                img[((size_t)i * S + y) * S + x] = v < 0 ? 0 : v > 1 ? 1 : v;
                brain[((size_t)i * S + y) * S + x] = (uint8_t)in;
            }
    }
    slice_set_append(s, img, brain, n, S);
    free(img);
    free(brain);
}

void small_train_options(train_options *o, const char *out, int epochs) {
    train_options_default(o);
    train_options_set_config(o, SMALL_SWINMAE, "test");
    o->epochs = epochs;
    o->batch = 8;
    o->warmup_epochs = 1;
    o->seed = 7;
    o->threads = 1;  // tiny matrices: a second thread only adds barrier waits
    o->save_every = 2;
    o->recon_count = 3;
    o->quiet = 1;
    o->out_dir = out;
    snprintf(o->data, sizeof o->data, "phantom");
}
