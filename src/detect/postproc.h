// Post-processing of a coarse anomaly map into a lesion mask (paper appendix A.1):
//   1. grey erosion of the continuous map with a k x k square (local minimum, see util/morph.h);
//   2. threshold: keep eroded > threshold (0.5);
//   3. connected components (8-connectivity in 2-D; 26 in 3-D);
//   4. rank components by their mean coarse-map value (the map before thresholding; by default
//      the un-eroded map, optionally the eroded one), keep the top N (ties: earlier in scan order);
//   5. binary dilation with a 3x3 square  -> the "filtered combined map";
//   6. Atropos-like 5-class segmentation of the image inside the brain (segment.h);
//   7. refinement: for each connected object F of the filtered map, the segmentation component
//      S (a connected component of one class, any class) with the largest overlap |F ∩ S| is
//      kept; ties go to the smaller S (the tighter boundary), then to the earlier S in scan order.
//      The final mask is the union of the chosen S, so it has at most as many objects as the
//      filtered map ("maintaining the same number of objects ... while refining the
//      boundaries"). An object that overlaps no segmentation component (entirely outside the
//      brain mask) is kept as it is when keep_unmatched is set (default), dropped otherwise.
//      match = POSTPROC_MATCH_IOU picks the S with the largest |F∩S|/|F∪S| instead (ties: larger
//      overlap, then earlier S), which avoids choosing a large tissue class that merely contains F.
//   8. growth (grow = r > 0; not in the paper, which is grow = 0): every segmentation component
//      with at least half of its voxels within r px (a (2r+1) square, or cube in 3-D) of the
//      refined mask joins it, in one pass, if it is connected to the refined mask (directly or
//      through other joining components). A lesion with several compartments (core, body,
//      oedema) falls into several tissue classes, and step 7 keeps only one of them per object;
//      a healthy structure that merely touches the lesion (cortex, white matter) is mostly farther
//      away and stays out, and so do specks of tissue that do not touch the lesion.
//   9. bounds (not in the paper; on by default in every preset, bound = 0 and floor = 0 give the
//      paper's unbounded refinement): a voxel of the refined or grown mask is kept only if it lies
//      within `bound` px (a (2b+1) square, or cube in 3-D) of the filtered object it came from and
//      its map value is at least floor x threshold. A tissue component far larger than the
//      detected object (a whole-slice class) thus yields the detected object, not the slice.
//  10. the final mask lies inside the brain (the brain mask, else image > 0).
//
// mode = POSTPROC_CALIBRATED (preset "calibrated", the detect default) decides every candidate on
// evidence instead of keeping the top N of every slice, so that a lesion-free scan gives an empty
// or near-empty mask: the map is in residual units (no per-slice scaling) and `threshold` comes
// from healthy scans (calibrate.h: the map value exceeded by a chosen fraction of healthy brain
// voxels). Steps:
//   C1. hysteresis in 3-D (26-connectivity over the slice stack): components of the brain voxels
//       with map > low that contain at least one voxel with map > threshold (low = threshold
//       when 0);
//   C2. components smaller than min_voxels (model-grid voxels) are dropped;
//   C3. refine = 1: steps 6-9 on the kept components (one segmentation of the stack); refine = 0:
//       the components are the mask;
//   then step 10.
// ndim = 2 runs everything per axial slice (the paper: a 2-D pipeline, top N per slice, one
// segmentation per slice); ndim = 3 runs it on the whole volume (k^3 erosion, 3-D components,
// top N per volume, 3x3x3 MRF).
#ifndef ANOSWIN_DETECT_POSTPROC_H
#define ANOSWIN_DETECT_POSTPROC_H

#include <stdint.h>

enum { POSTPROC_RANK_MAP = 0, POSTPROC_RANK_ERODED = 1 };
enum { POSTPROC_MATCH_AREA = 0, POSTPROC_MATCH_IOU = 1 };
enum { POSTPROC_A1 = 0, POSTPROC_CALIBRATED = 1 };

typedef struct postproc_params {
    int ndim;            // 2 (per slice, default) or 3
    int erode_k;         // erosion size k (brats 3, mslub/wmh 1; 1 = no erosion)
    float threshold;     // keep eroded map > threshold (0.5)
    int connectivity;    // 0 = 8 in 2-D / 26 in 3-D; else 4|8 (2-D), 6|18|26 (3-D)
    int keep_top;        // N objects kept (brats 2, mslub/wmh 7); <= 0 keeps all
    int dilate_k;        // dilation size (3)
    int rank_on;         // POSTPROC_RANK_MAP (default) or POSTPROC_RANK_ERODED
    int seg_classes;     // segmentation classes (5); 0 skips steps 6-7 (mask = filtered map)
    float mrf_beta;      // MRF smoothing factor (0.2)
    int mrf_radius;      // MRF neighbourhood radius (1: 3x3 / 3x3x3)
    int seg_iterations;  // EM/ICM iterations (5)
    int match;           // POSTPROC_MATCH_AREA (default, the paper) or POSTPROC_MATCH_IOU
    int keep_unmatched;  // 1: keep filtered objects that no segment overlaps
    int grow;            // step 8 radius r in px (0 = off, the paper)
    int bound;           // step 9: px from the detected object (6; 0 = unbounded, the paper)
    float floor;         // step 9: kept voxels need map >= floor x threshold (0.5; 0 = the paper)
    int mode;            // POSTPROC_A1 (the paper) or POSTPROC_CALIBRATED
    float low;           // calibrated: hysteresis low threshold (0 = threshold)
    int min_voxels;      // calibrated: smallest component kept (model-grid voxels)
    int refine;          // calibrated: 1 = tissue refinement (steps 6-9), 0 = components as found
} postproc_params;

// The paper's BraTS settings (k=3, N=2) with every other default above.
void postproc_defaults(postproc_params *p);
// "brats" (k=3, N=2), "mslub" or "wmh" (k=1, N=7): sets k and N on top of the defaults;
// "calibrated": mode POSTPROC_CALIBRATED, ndim 3, threshold NAN (to be set from a calibration).
// Returns -1 (as_fail) for an unknown name.
int postproc_preset(postproc_params *p, const char *name);
// Overrides one parameter by name, for CLI options like --set erode_k=1. Keys: ndim, erode_k,
// threshold, connectivity, keep_top, dilate_k, rank_on (map|eroded), seg_classes, mrf_beta,
// mrf_radius, seg_iterations, match (area|iou), keep_unmatched, grow, bound, floor, low,
// min_voxels, refine. Returns -1 (as_fail) for an
// unknown key or a bad value.
int postproc_set(postproc_params *p, const char *key, const char *value);
// Checks ranges and the ndim/connectivity combination, and that the calibrated mode has a
// threshold. Returns 0 or -1 (as_fail).
int postproc_validate(const postproc_params *p);

// Optional intermediate outputs (each may be NULL), (nz, ny, nx) like the inputs.
typedef struct postproc_extra {
    uint8_t *filtered;      // filtered combined map (after step 5), 0/1
    uint8_t *segmentation;  // class labels 0..classes (0 outside the brain; all 0 where skipped)
    int n_objects;          // objects in the filtered map (summed over slices for ndim = 2)
} postproc_extra;

// map: coarse anomaly map in [0,1]; image: the intensity image; brain: non-zero inside the brain
// (NULL: image > 0). mask (0/1) gets the final lesion mask. The segmentation is only computed for
// slices (volumes) whose filtered map is not empty. Returns 0 or -1 (as_fail, bad parameters).
int postprocess(uint8_t *mask, postproc_extra *extra, const float *map, const float *image, const uint8_t *brain,
                int nx, int ny, int nz, const postproc_params *p);

// Steps 7 and 8: filtered (0/1) and seg (class labels, 0 = none) -> out (0/1). n_objects (may be
// NULL) gets the number of filtered objects. connectivity as in morph_label (not 0); grow as in
// postproc_params (the growth is 3-D when nz > 1).
void postproc_refine(uint8_t *out, int *n_objects, const uint8_t *filtered, const uint8_t *seg, int nx, int ny,
                     int nz, int connectivity, int match, int keep_unmatched, int grow);

// Step 9: mask &= (within bound px of filtered) && map >= floor_value. bound <= 0: no distance
// bound. ndim as in util/morph.h.
void postproc_bound(uint8_t *mask, const uint8_t *filtered, const float *map, float floor_value, int bound, int nx,
                    int ny, int nz, int ndim);

#endif
