// Sliding-window coarse anomaly map (see anomaly_map.h).
#include "detect/anomaly_map.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"  // as_fail, as_malloc

void amap_defaults(amap_params *p) {
    *p = (amap_params){.window = 64, .patch = 4, .auto_grid = 1, .origin_x = 0, .origin_y = 0, .max_batch = 8,
                       .restrict_to_brain = 0, .positive_residual = 0, .stride = 0, .window_norm = 1,
                       .slice_norm = 1};
}

static int floor_to(int v, int m) { return v >= 0 ? v / m * m : -((-v + m - 1) / m) * m; }

int amap_check_stride(int stride, int window, int patch) {
    int step = stride > 0 ? stride : window;
    if (step % patch || step > window)
        return as_fail("stride %d px is not a multiple of the patch (%d px) up to the mask size (%d px)", step, patch,
                       window);
    return 0;
}

int amap_windows(amap_window *out, int max, const uint8_t *brain, int H, int W, const amap_params *p) {
    int P = p->patch, S = p->window, step = p->stride > 0 ? p->stride : S;
    if (P < 1 || S < P || S % P) return as_fail("anomaly map: window %d px is not a multiple of the patch %d", S, P);
    if (amap_check_stride(p->stride, S, P)) return -1;
    if (H % P || W % P) return as_fail("anomaly map: slice %dx%d is not a multiple of the patch %d", H, W, P);
    int bx0 = 0, by0 = 0, bx1 = W - 1, by1 = H - 1;  // inclusive bounds the grid must cover
    if (p->auto_grid) {
        bx0 = W, by0 = H, bx1 = -1, by1 = -1;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                if (!brain || brain[x + W * y]) {
                    bx0 = x < bx0 ? x : bx0, bx1 = x > bx1 ? x : bx1;
                    by0 = y < by0 ? y : by0, by1 = y > by1 ? y : by1;
                }
        if (bx1 < 0) return 0;  // no brain
    } else {
        bx0 = p->origin_x, by0 = p->origin_y;
        if (bx0 < 0 || by0 < 0 || bx0 >= W || by0 >= H)
            return as_fail("anomaly map: grid origin (%d,%d) outside the %dx%d slice", bx0, by0, W, H);
    }
    int ox = floor_to(bx0, P), oy = floor_to(by0, P);
    int n = 0;
    for (int y0 = oy; y0 <= by1; y0 += step)
        for (int x0 = ox; x0 <= bx1; x0 += step) {
            amap_window w = {x0, y0, x0 + S <= W ? S : W - x0, y0 + S <= H ? S : H - y0};
            int any = !brain;
            for (int y = w.y0; y < w.y0 + w.h && !any; y++)
                for (int x = w.x0; x < w.x0 + w.w; x++)
                    if (brain[x + W * y]) {
                        any = 1;
                        break;
                    }
            if (!any) continue;
            if (n < max) out[n] = w;
            n++;
        }
    return n;
}

void amap_token_mask(uint8_t *tm, const amap_window *w, int H, int W, int P) {
    int th = H / P, tw = W / P;
    for (int h = 0; h < th; h++)
        for (int t = 0; t < tw; t++) {
            // masked iff the token's p x p patch lies inside the window
            int px = t * P, py = h * P;
            tm[t + tw * h] = px >= w->x0 && px + P <= w->x0 + w->w && py >= w->y0 && py + P <= w->y0 + w->h;
        }
}

// Adds window w's residual (input img (H, W) against recon (C, H, W)), scaled as p says, into map
// and counts it in covered; resid: w->w * w->h floats of scratch.
static void score_window(float *map, uint16_t *covered, float *resid, const float *img, const float *recon,
                         const uint8_t *brain, const amap_window *w, int H, int W, int C, const amap_params *p) {
    size_t hw = (size_t)H * W;
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int y = w->y0; y < w->y0 + w->h; y++)
        for (int x = w->x0; x < w->x0 + w->w; x++) {
            size_t i = x + (size_t)W * y;
            float r = 0;
            for (int c = 0; c < C; c++) {
                float d = img[i] - recon[(size_t)c * hw + i];
                r += p->positive_residual ? (d > 0 ? d : 0) : fabsf(d);
            }
            r /= C;
            if (p->restrict_to_brain && brain && !brain[i]) r = 0;
            resid[(x - w->x0) + w->w * (y - w->y0)] = r;
            lo = r < lo ? r : lo, hi = r > hi ? r : hi;
        }
    float scale = hi > lo ? 1.0f / (hi - lo) : 0.0f;
    if (!p->window_norm) scale = 1, lo = 0;
    for (int y = w->y0; y < w->y0 + w->h; y++)
        for (int x = w->x0; x < w->x0 + w->w; x++) {
            size_t i = x + (size_t)W * y;
            map[i] += (resid[(x - w->x0) + w->w * (y - w->y0)] - lo) * scale;
            covered[i]++;
        }
}

// The slice's last steps: overlapping windows averaged, then (slice_norm) the division by the
// maximum; a failed slice (ok = 0) is all 0.
static void finish_map(float *map, const uint16_t *covered, size_t hw, int ok, const amap_params *p) {
    // Overlapping windows (stride < window): the mean of the windows covering a pixel, so that the
    // edges of the grid, covered by fewer windows, are not darker. Without overlap this is the
    // paper's sum (one window per pixel).
    for (size_t i = 0; i < hw; i++)
        if (covered[i] > 1) map[i] /= covered[i];
    if (ok && p->slice_norm) {
        float mx = 0;
        for (size_t i = 0; i < hw; i++) mx = map[i] > mx ? map[i] : mx;
        if (mx > 0)
            for (size_t i = 0; i < hw; i++) map[i] /= mx;
    } else if (!ok) {
        memset(map, 0, sizeof(float) * hw);
    }
}

int amap_slice(float *map, const float *img, const uint8_t *brain, int H, int W, int C, const amap_params *p,
               amap_model_fn model, void *ctx) {
    size_t hw = (size_t)H * W;
    memset(map, 0, sizeof(float) * hw);
    int n = amap_windows(NULL, 0, brain, H, W, p);
    if (n <= 0) return n;
    if (p->max_batch < 1) return as_fail("anomaly map: batch %d < 1", p->max_batch);
    if (p->whole_image) n = 1;
    amap_window *win = as_malloc(sizeof(amap_window) * (size_t)n);
    if (p->whole_image) win[0] = (amap_window){0, 0, W, H};
    else amap_windows(win, n, brain, H, W, p);
    int P = p->patch, L = (H / P) * (W / P), B = p->max_batch < n ? p->max_batch : n;
    float *images = as_malloc(sizeof(float) * (size_t)B * C * hw), *recon = as_malloc(sizeof(float) * (size_t)B * C * hw);
    uint8_t *tm = as_malloc((size_t)B * L);
    float *resid = as_malloc(sizeof(float) * (p->whole_image ? hw : (size_t)p->window * p->window));
    uint16_t *covered = as_calloc(hw, sizeof(uint16_t));
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) memcpy(images + ((size_t)b * C + c) * hw, img, sizeof(float) * hw);
    int rc = n;
    for (int first = 0; first < n; first += B) {
        int nb = n - first < B ? n - first : B;
        for (int b = 0; b < nb; b++) {
            if (p->whole_image) memset(tm + (size_t)b * L, 0, (size_t)L);
            else amap_token_mask(tm + (size_t)b * L, &win[first + b], H, W, P);
        }
        if (model(ctx, recon, images, tm, nb)) {
            rc = -1;
            break;
        }
        for (int b = 0; b < nb; b++)
            score_window(map, covered, resid, img, recon + (size_t)b * C * hw, brain, &win[first + b], H, W, C, p);
    }
    finish_map(map, covered, hw, rc >= 0, p);
    free(covered);
    free(resid);
    free(tm);
    free(recon);
    free(images);
    free(win);
    return rc;
}

int amap_slices_whole(float *maps, float *recons, int *windows, const float *imgs, const uint8_t *brains, int n,
                      int H, int W, int C, const amap_params *p, amap_model_fn model, void *ctx) {
    if (!p->whole_image) return as_fail("anomaly map: batching slices needs a whole-image method");
    if (p->max_batch < 1) return as_fail("anomaly map: batch %d < 1", p->max_batch);
    size_t hw = (size_t)H * W;
    int P = p->patch, L = (H / P) * (W / P), B = p->max_batch < n ? p->max_batch : n;
    if (B < 1) return 0;
    float *images = as_malloc(sizeof(float) * (size_t)B * C * hw), *recon = as_malloc(sizeof(float) * (size_t)B * C * hw);
    uint8_t *tm = as_calloc((size_t)B * L, 1);
    float *resid = as_malloc(sizeof(float) * hw);
    uint16_t *covered = as_malloc(sizeof(uint16_t) * hw);
    int *slot = as_malloc(sizeof(int) * (size_t)B);  // the slice in each batch position
    const amap_window whole = {0, 0, W, H};
    int rc = 0, next = 0;
    while (next < n && rc == 0) {
        // The next batch: up to B slices with brain (amap_slice gives the others an all-0 map and
        // runs no forward).
        int nb = 0;
        for (; next < n && nb < B; next++) {
            const uint8_t *brain = brains ? brains + (size_t)next * hw : NULL;
            memset(maps + (size_t)next * hw, 0, sizeof(float) * hw);
            if (windows) windows[next] = 0;
            int nw = amap_windows(NULL, 0, brain, H, W, p);
            if (nw < 0) {
                rc = -1;
                break;
            }
            if (nw == 0) continue;
            for (int c = 0; c < C; c++)
                memcpy(images + ((size_t)nb * C + c) * hw, imgs + (size_t)next * hw, sizeof(float) * hw);
            slot[nb++] = next;
        }
        if (rc || nb == 0) break;
        if (model(ctx, recon, images, tm, nb)) {
            rc = -1;
            break;
        }
        for (int b = 0; b < nb; b++) {
            const size_t k = (size_t)slot[b];
            const float *rb = recon + (size_t)b * C * hw;
            memset(covered, 0, sizeof(uint16_t) * hw);
            score_window(maps + k * hw, covered, resid, imgs + k * hw, rb, brains ? brains + k * hw : NULL, &whole,
                         H, W, C, p);
            finish_map(maps + k * hw, covered, hw, 1, p);
            if (windows) windows[k] = 1;
            if (recons)
                for (size_t i = 0; i < hw; i++) {
                    float v = 0;
                    for (int c = 0; c < C; c++) v += rb[(size_t)c * hw + i];
                    recons[k * hw + i] = v / C;
                }
        }
    }
    if (rc) memset(maps, 0, sizeof(float) * hw * (size_t)n);
    free(slot);
    free(covered);
    free(resid);
    free(tm);
    free(recon);
    free(images);
    return rc;
}
