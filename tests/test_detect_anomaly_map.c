// Sliding-window anomaly map (src/detect/anomaly_map.c): window geometry (the masked tokens are
// exactly the scored window, 64/32 px, odd origins, brain grid) and the map for a fake model
// whose behaviour is known.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/anomaly_map.h"
#include "helpers/testutil.h"
#include "util/error.h"
#include "util/rng.h"

// Pixels covered by masked tokens == the window rectangle; returns 1 if so.
static int tokens_equal_window(const amap_window *w, int H, int W, int P) {
    int tw = W / P;
    uint8_t *tm = malloc((size_t)(H / P) * tw);
    amap_token_mask(tm, w, H, W, P);
    int ok = 1;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int masked = tm[x / P + tw * (y / P)];
            int inside = x >= w->x0 && x < w->x0 + w->w && y >= w->y0 && y < w->y0 + w->h;
            ok &= masked == inside;
        }
    free(tm);
    return ok;
}

static void test_geometry(void) {
    enum { H = 224, W = 224, P = 4 };
    static const int sizes[] = {64, 32};
    static const int origins[][2] = {{0, 0}, {25, 48}, {3, 7}, {221, 130}};
    static uint8_t cover[H * W];
    amap_window win[512];
    for (int s = 0; s < 2; s++)
        for (int o = 0; o < 4; o++) {
            amap_params p;
            amap_defaults(&p);
            p.window = sizes[s], p.auto_grid = 0, p.origin_x = origins[o][0], p.origin_y = origins[o][1];
            int n = amap_windows(win, 512, NULL, H, W, &p);
            int ox = origins[o][0] / P * P, oy = origins[o][1] / P * P;
            int ex = (W - ox + sizes[s] - 1) / sizes[s], ey = (H - oy + sizes[s] - 1) / sizes[s];
            CHECK(n == ex * ey, "%d px, origin (%d,%d): %d windows, expected %d", sizes[s], origins[o][0],
                  origins[o][1], n, ex * ey);
            memset(cover, 0, sizeof cover);
            int ok = 1, full = 1;
            for (int i = 0; i < n && i < 512; i++) {
                ok &= tokens_equal_window(&win[i], H, W, P);
                full &= (win[i].w == sizes[s] || win[i].x0 + win[i].w == W) &&
                        (win[i].h == sizes[s] || win[i].y0 + win[i].h == H);
                for (int y = win[i].y0; y < win[i].y0 + win[i].h; y++)
                    for (int x = win[i].x0; x < win[i].x0 + win[i].w; x++) cover[x + W * y]++;
            }
            CHECK(ok, "%d px, origin (%d,%d): masked tokens == scored window for every position", sizes[s],
                  origins[o][0], origins[o][1]);
            CHECK(full, "%d px, origin (%d,%d): windows are full size unless clipped by the image edge", sizes[s],
                  origins[o][0], origins[o][1]);
            int once = 1;
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) once &= cover[x + W * y] == (x >= ox && y >= oy);
            CHECK(once, "%d px, origin (%d,%d): windows do not overlap and tile the grid from the snapped origin",
                  sizes[s], origins[o][0], origins[o][1]);
        }
    // The reference's 64 px grid: x=25 (snapped to 24), y=48.
    amap_params p;
    amap_defaults(&p);
    p.auto_grid = 0, p.origin_x = 25, p.origin_y = 48;
    int n = amap_windows(win, 512, NULL, H, W, &p);
    CHECK(n == 12 && win[0].x0 == 24 && win[0].y0 == 48 && win[0].w == 64, "reference grid: first window at (24,48)");

    // Auto grid over a brain disc: every window holds brain, every brain pixel is scored once.
    static uint8_t brain[H * W];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) brain[x + W * y] = hypot((x - 117) / 0.8, y - 105) < 90;
    for (int s = 0; s < 2; s++) {
        amap_defaults(&p);
        p.window = sizes[s];
        n = amap_windows(win, 512, brain, H, W, &p);
        memset(cover, 0, sizeof cover);
        int ok = n > 0 && n <= 512, has_brain = 1;
        for (int i = 0; i < n && i < 512; i++) {
            int any = 0;
            ok &= tokens_equal_window(&win[i], H, W, P);
            for (int y = win[i].y0; y < win[i].y0 + win[i].h; y++)
                for (int x = win[i].x0; x < win[i].x0 + win[i].w; x++) cover[x + W * y]++, any |= brain[x + W * y];
            has_brain &= any;
        }
        int once = 1;
        for (int i = 0; i < H * W; i++) once &= !brain[i] || cover[i] == 1;
        for (int i = 0; i < H * W; i++) once &= cover[i] <= 1;
        printf("brain disc, %d px windows: %d positions\n", sizes[s], n);
        CHECK(ok && has_brain && once, "%d px auto grid: %d windows, all with brain, brain covered exactly once",
              sizes[s], n);
    }
    amap_defaults(&p);
    p.window = 30;
    CHECK(amap_windows(win, 512, NULL, H, W, &p) == -1 && strstr(as_error(), "multiple"), "30 px refused: %s",
          as_error());
}

// Fake model: reconstructs unmasked pixels perfectly and masked pixels as 0.5 (all channels);
// records the token masks it was given.
typedef struct fake { int calls, total, max_b; int H, W, P; uint8_t masks[64][16]; } fake;

static int fake_model(void *ctx, float *recon, const float *images, const uint8_t *tm, int B) {
    fake *f = ctx;
    int hw = f->H * f->W, tw = f->W / f->P, L = (f->H / f->P) * tw;
    f->calls++;
    f->max_b = B > f->max_b ? B : f->max_b;
    for (int b = 0; b < B; b++) {
        memcpy(f->masks[f->total++], tm + b * L, (size_t)L);
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < hw; i++) {
                int x = i % f->W, y = i / f->W;
                recon[(b * 3 + c) * hw + i] = tm[b * L + x / f->P + tw * (y / f->P)] ? 0.5f : images[(b * 3 + c) * hw + i];
            }
    }
    return 0;
}

// The map the fake model should give on a 16x16 image with 8 px windows: per 8x8 block the
// residual |img - 0.5| (positive: max(img - 0.5, 0)) min-max normalised (unless raw); then /
// global max.
static void expected_map(float *expect, const float *img, int H, int W, int positive, int raw) {
    float mx = 0;
    for (int by = 0; by < H / 8; by++)
        for (int bx = 0; bx < W / 8; bx++) {
            float lo = 1e9f, hi = -1e9f;
            for (int y = 8 * by; y < 8 * by + 8; y++)
                for (int x = 8 * bx; x < 8 * bx + 8; x++) {
                    float d = img[x + W * y] - 0.5f, v = positive ? (d > 0 ? d : 0) : fabsf(d);
                    expect[x + W * y] = v;
                    lo = v < lo ? v : lo, hi = v > hi ? v : hi;
                }
            for (int y = 8 * by; y < 8 * by + 8; y++)
                for (int x = 8 * bx; x < 8 * bx + 8; x++) {
                    float *v = &expect[x + W * y];
                    if (!raw) *v = hi > lo ? (*v - lo) / (hi - lo) : 0;
                    mx = *v > mx ? *v : mx;
                }
        }
    for (int i = 0; i < H * W; i++) expect[i] /= mx;
}

static void test_map_fake_model(void) {
    enum { H = 16, W = 16 };
    float img[H * W], map[H * W], expect[H * W];
    rng r;
    rng_seed(&r, 4);
    for (int i = 0; i < H * W; i++) img[i] = (float)rng_uniform(&r);
    amap_params p;
    amap_defaults(&p);
    p.window = 8, p.max_batch = 3;
    fake f = {.H = H, .W = W, .P = 4};
    int n = amap_slice(map, img, NULL, H, W, 3, &p, fake_model, &f);
    CHECK(n == 4 && f.calls == 2 && f.max_b == 3, "4 windows in batches of 3 (%d windows, %d calls)", n, f.calls);
    expected_map(expect, img, H, W, 0, 0);
    tu_allclose("map of the fake model", map, expect, H * W, 1e-6, 1e-5);
    // token masks: window (bx,by) in row-major order -> tokens (2bx..2bx+1, 2by..2by+1)
    int ok = f.total == 4;
    for (int k = 0; k < 4 && k < f.total; k++) {
        int bx = k % 2, by = k / 2;
        for (int t = 0; t < 16; t++) ok &= f.masks[k][t] == ((t % 4) / 2 == bx && (t / 4) / 2 == by);
    }
    CHECK(ok, "each variant masks exactly its window's 2x2 tokens");
    // Positive residual: voxels darker than the reconstruction score 0 before the scaling.
    p.positive_residual = 1;
    amap_slice(map, img, NULL, H, W, 3, &p, fake_model, &f);
    expected_map(expect, img, H, W, 1, 0);
    tu_allclose("map of the fake model, positive residual", map, expect, H * W, 1e-6, 1e-5);
    int dark_zero = 1;
    for (int i = 0; i < H * W; i++) dark_zero &= img[i] >= 0.5f || map[i] == 0;
    CHECK(dark_zero, "positive residual: pixels darker than the reconstruction get 0");
    p.positive_residual = 0;
    // Without the per-window scaling: the raw residual, divided by the slice maximum only.
    p.window_norm = 0;
    amap_slice(map, img, NULL, H, W, 3, &p, fake_model, &f);
    expected_map(expect, img, H, W, 0, 1);
    tu_allclose("map of the fake model, window_norm 0", map, expect, H * W, 1e-6, 1e-5);
    float raw_max = 0;
    for (int i = 0; i < H * W; i++) raw_max = fabsf(img[i] - 0.5f) > raw_max ? fabsf(img[i] - 0.5f) : raw_max;
    int proportional = 1;
    for (int i = 0; i < H * W; i++) proportional &= fabsf(map[i] - fabsf(img[i] - 0.5f) / raw_max) < 1e-6f;
    CHECK(proportional, "window_norm 0: the map is |img - recon| / its maximum over the slice");
    p.window_norm = 1;

    // Overlapping windows (stride 4, window 8): origins 0, 4, 8, 12 per axis (the last ones
    // clipped to 4 px), 16 windows; each pixel gets the mean of the normalised residuals of the
    // windows covering it, then the slice map is divided by its maximum.
    p.stride = 4;
    f.calls = f.total = 0;
    n = amap_slice(map, img, NULL, H, W, 3, &p, fake_model, &f);
    CHECK(n == 16, "stride 4: 16 windows (%d)", n);
    {
        double acc[H * W] = {0}, mx = 0;
        int cnt[H * W] = {0};
        for (int y0 = 0; y0 < H; y0 += 4)
            for (int x0 = 0; x0 < W; x0 += 4) {
                int x1 = x0 + 8 < W ? x0 + 8 : W, y1 = y0 + 8 < H ? y0 + 8 : H;
                double lo = 1e9, hi = -1e9;
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++) {
                        double v = fabs(img[x + W * y] - 0.5);
                        lo = v < lo ? v : lo, hi = v > hi ? v : hi;
                    }
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++) {
                        acc[x + W * y] += (fabs(img[x + W * y] - 0.5) - lo) / (hi - lo);
                        cnt[x + W * y]++;
                    }
            }
        for (int i = 0; i < H * W; i++) acc[i] /= cnt[i], mx = acc[i] > mx ? acc[i] : mx;
        for (int i = 0; i < H * W; i++) expect[i] = (float)(acc[i] / mx);
    }
    tu_allclose("map with overlapping windows (stride 4)", map, expect, H * W, 1e-6, 1e-5);
    p.stride = 6;
    CHECK(amap_slice(map, img, NULL, H, W, 3, &p, fake_model, &f) < 0, "stride 6 (not a multiple of the patch) refused");
    p.stride = 0;

    // No brain: empty map, no model call, no NaN.
    uint8_t brain[H * W] = {0};
    f.calls = f.total = 0;
    n = amap_slice(map, img, brain, H, W, 3, &p, fake_model, &f);
    ok = n == 0 && f.calls == 0;
    for (int i = 0; i < H * W; i++) ok &= map[i] == 0;
    CHECK(ok, "slice with no brain: all-zero map, model not called");
    // Constant image equal to the model's guess: residual 0 everywhere -> all-zero map, not NaN.
    for (int i = 0; i < H * W; i++) img[i] = 0.5f;
    f.calls = f.total = 0;
    n = amap_slice(map, img, NULL, H, W, 3, &p, fake_model, &f);
    ok = n == 4;
    for (int i = 0; i < H * W; i++) ok &= map[i] == 0;
    CHECK(ok, "zero residual: all-zero map, no NaN");
    // A brain in one quadrant only: only that window is scored.
    for (int y = 9; y < 14; y++)
        for (int x = 2; x < 6; x++) brain[x + W * y] = 1;
    f.calls = f.total = 0;
    n = amap_slice(map, img, brain, H, W, 3, &p, fake_model, &f);
    CHECK(n == 1 && f.total == 1 && f.masks[0][0 + 4 * 2] && f.masks[0][1 + 4 * 3] && !f.masks[0][2],
          "brain in the bottom-left quadrant: one window there (%d)", n);
}

// A whole-image method (model.h whole_image): one forward per slice with nothing hidden, and the
// map is its residual at every pixel, scaled as one window.
static int mean_model(void *ctx, float *recon, const float *images, const uint8_t *tm, int B) {
    fake *f = ctx;
    int hw = f->H * f->W, L = (f->H / f->P) * (f->W / f->P);
    f->calls++, f->total += B;
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < L; t++) f->max_b += tm[b * L + t];  // counts hidden tokens: must stay 0
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < hw; i++) recon[(b * 3 + c) * hw + i] = 0.25f + 0.5f * images[(b * 3 + c) * hw + i];
    }
    return 0;
}

static void test_map_whole_image(void) {
    enum { H = 16, W = 16 };
    float img[H * W], map[H * W], expect[H * W];
    rng r;
    rng_seed(&r, 9);
    for (int i = 0; i < H * W; i++) img[i] = (float)rng_uniform(&r);
    uint8_t brain[H * W] = {0};
    for (int y = 4; y < 12; y++)
        for (int x = 2; x < 14; x++) brain[x + W * y] = 1;
    amap_params p;
    amap_defaults(&p);
    p.window = 8, p.stride = 4, p.whole_image = 1, p.window_norm = 0, p.slice_norm = 0;
    fake f = {.H = H, .W = W, .P = 4};
    int n = amap_slice(map, img, brain, H, W, 3, &p, mean_model, &f);
    for (int i = 0; i < H * W; i++) expect[i] = fabsf(img[i] - (0.25f + 0.5f * img[i]));
    CHECK(n == 1 && f.calls == 1 && f.total == 1, "whole image: 1 window, 1 forward of 1 image (%d, %d, %d)", n,
          f.calls, f.total);
    CHECK(f.max_b == 0, "whole image: no token hidden (%d hidden)", f.max_b);
    tu_allclose("whole image: the raw residual at every pixel, in and outside the brain", map, expect, H * W, 1e-6,
                1e-6);
    p.window_norm = 1, p.slice_norm = 1;
    amap_slice(map, img, brain, H, W, 3, &p, mean_model, &f);
    float lo = 1e9f, hi = -1e9f;
    for (int i = 0; i < H * W; i++) lo = fminf(lo, expect[i]), hi = fmaxf(hi, expect[i]);
    for (int i = 0; i < H * W; i++) expect[i] = (expect[i] - lo) / (hi - lo);
    tu_allclose("whole image, the paper's scaling: one window over the slice, min-max", map, expect, H * W, 1e-6, 1e-5);
    uint8_t none[H * W] = {0};
    f.calls = 0;
    CHECK(amap_slice(map, img, none, H, W, 3, &p, mean_model, &f) == 0 && f.calls == 0,
          "whole image, no brain: no forward, 0 windows");
}

// Several slices of a whole-image method at once: max_batch slices with brain per call, each map
// equal to amap_slice's for that slice alone, slices without brain skipped.
static void test_slices_whole(void) {
    enum { H = 16, W = 16, N = 5, HW = H * W };
    float img[N * HW], maps[N * HW], one[HW], recons[N * HW];
    uint8_t brain[N * HW] = {0};
    rng r;
    rng_seed(&r, 11);
    for (int i = 0; i < N * HW; i++) img[i] = (float)rng_uniform(&r), recons[i] = -1.0f;
    for (int k = 0; k < N; k++)
        for (int y = 2 + k; y < 12; y++)
            for (int x = 1; x < 10 + k; x++) brain[k * HW + x + W * y] = k != 2;  // slice 2: no brain
    amap_params p;
    amap_defaults(&p);
    p.window = 8, p.whole_image = 1, p.max_batch = 3;
    for (int norm = 0; norm < 2; norm++) {
        p.window_norm = p.slice_norm = norm;
        fake f = {.H = H, .W = W, .P = 4};
        int win[N];
        CHECK(amap_slices_whole(maps, recons, win, img, brain, N, H, W, 3, &p, mean_model, &f) == 0,
              "slices_whole runs");
        CHECK(f.calls == 2 && f.total == 4 && f.max_b == 0, "4 slices with brain in batches of 3, no token hidden "
              "(%d calls, %d images)", f.calls, f.total);
        int same = 1, rec_ok = 1;
        for (int k = 0; k < N; k++) {
            fake g = {.H = H, .W = W, .P = 4};
            int n1 = amap_slice(one, img + k * HW, brain + k * HW, H, W, 3, &p, mean_model, &g);
            same &= n1 == win[k] && !memcmp(one, maps + k * HW, sizeof one);
            for (int i = 0; i < HW; i++)
                rec_ok &= fabsf(recons[k * HW + i] - (k == 2 ? -1.0f : 0.25f + 0.5f * img[k * HW + i])) < 1e-6f;
        }
        CHECK(same, "norm %d: every map and window count equals amap_slice's for the slice alone", norm);
        CHECK(rec_ok, "norm %d: reconstructions of the scored slices, the slice without brain untouched", norm);
    }
    p.max_batch = 0;
    CHECK(amap_slices_whole(maps, NULL, NULL, img, brain, N, H, W, 3, &p, mean_model, &(fake){.H = H}) < 0,
          "batch 0 refused");
}

int main(void) {
    test_geometry();
    test_map_fake_model();
    test_map_whole_image();
    test_slices_whole();
    return tu_finish();
}
