// Coarse anomaly map of one slice by sliding a non-overlapping square mask (paper 2.3, A.1):
// every window position is masked in its own copy of the slice, the copies go through the model
// as batches, and the L1 residual inside each masked window, normalised to 0..1 per window, is
// placed into the map; the slice map is then divided by its maximum.
//
// Geometry. Windows are `window` px squares on a grid with step `window` (or `stride`) whose origin is snapped
// down to a multiple of the patch size p, so that a window is exactly (window/p)^2 tokens: a
// token is masked when its p x p patch is covered, and the masked pixels ARE the scored window
// (the reference's 64 px grid at x=25 becomes x=24; the reference also masks the transpose of the
// scored window, a bug we do not copy). Windows are clipped to the image (still token-aligned
// since H and W are multiples of p). Default grid (auto_grid = 1): the origin is the brain's
// bounding-box corner (snapped), the grid covers the bounding box, and positions with no brain
// pixel are skipped. auto_grid = 0: the grid starts at (origin_x, origin_y) (snapped) and covers
// the rest of the image, again skipping positions with no brain (when a brain mask is given).
// Residual: mean over channels of |input - reconstruction| per pixel (positive_residual: of
// max(input - reconstruction, 0), for findings known to be hyperintense, as in T2 and FLAIR); per window
// (r - min) / (max - min) over the window's pixels (all 0 when max == min; window_norm = 0 keeps
// the raw residual instead, so that windows are comparable with each other: a window without a
// finding does not get a full-scale peak of its own). On the paper's grid windows do not overlap,
// so "summing" places them; with a smaller stride each pixel gets the mean of the windows covering
// it. slice_norm = 0 skips the final division by the slice maximum. A slice with no brain, or whose map is all 0, gives an all-0 map (never NaN).
#ifndef ANOSWIN_DETECT_ANOMALY_MAP_H
#define ANOSWIN_DETECT_ANOMALY_MAP_H

#include <stdint.h>

typedef struct amap_params {
    int window;             // mask side in px (64 or 32), a multiple of patch
    int patch;              // model patch size p (4)
    int auto_grid;          // 1 (default): grid over the brain's bounding box
    int origin_x, origin_y; // grid origin for auto_grid = 0 (x = column, y = row)
    int max_batch;          // model batch size cap
    int restrict_to_brain;  // 1: residual set to 0 outside the brain before normalising (default 0)
    int positive_residual;  // 1: only input brighter than the reconstruction counts (default 0)
    int stride;             // grid step in px, a multiple of patch up to window (0 = window: the
                            // paper's non-overlapping grid); overlapping windows are averaged
    int window_norm;        // 1 (default, the paper): per-window min-max scaling; 0: raw residual
    int whole_image;        // 1: the model ignores masks (model.h whole_image): one forward of the
                            // unmasked slice, scored as one window covering the image
    int slice_norm;         // 1 (default, the paper): slice map divided by its maximum; 0: kept in
                            // residual units, so that a threshold calibrated on healthy scans means
                            // the same in every slice and subject (a lesion-free slice keeps a low map)
} amap_params;

void amap_defaults(amap_params *p);  // window 64, patch 4, auto grid, batch 8

typedef struct amap_window { int x0, y0, w, h; } amap_window;  // pixel rectangle [x0,x0+w) x [y0,y0+h)

// 0 when the grid step `stride` (0 = window) is a multiple of the patch and at most the window;
// else -1 (as_fail).
int amap_check_stride(int stride, int window, int patch);

// Window positions for an H x W slice (brain may be NULL = everywhere), row-major order.
// Writes up to max entries; returns the total count (call with max = 0 to size), or -1 (as_fail)
// for invalid parameters.
int amap_windows(amap_window *out, int max, const uint8_t *brain, int H, int W, const amap_params *p);
// Token mask (L = (H/p)*(W/p), row-major tokens) that covers exactly the window.
void amap_token_mask(uint8_t *token_mask, const amap_window *win, int H, int W, int patch);

// The model as a callback: recon (B, C, H, W) from images (B, C, H, W) with token_mask (B, L),
// 1 = masked; eval mode. Returns 0 or -1 (as_fail).
typedef int (*amap_model_fn)(void *ctx, float *recon, const float *images, const uint8_t *token_mask, int B);

// map (H, W) of slice img (H, W) in [0,1]; with whole_image one window, the whole slice, unmasked (repeated to C channels for the model); brain (H, W)
// or NULL. Returns the number of windows scored, or -1 on error.
int amap_slice(float *map, const float *img, const uint8_t *brain, int H, int W, int C, const amap_params *p,
               amap_model_fn model, void *ctx);

// Maps (n, H, W) of n slices imgs (n, H, W) for a whole-image method (p->whole_image): the slices
// with brain (brains (n, H, W) or NULL) go through the model p->max_batch at a time, so that a
// method that costs many forwards per slice (autoDDPM) runs each of them once for the batch. Each
// map is what amap_slice gives for its slice alone (when the model's output for an image does not
// depend on its batch). windows (n) or NULL: 1 for a scored slice, 0 for one without brain.
// recons (n, H, W) or NULL: a scored slice's reconstruction (mean over channels); the others are
// left as they are. Returns 0 or -1 (as_fail; maps then all 0).
int amap_slices_whole(float *maps, float *recons, int *windows, const float *imgs, const uint8_t *brains, int n,
                      int H, int W, int C, const amap_params *p, amap_model_fn model, void *ctx);

#endif
