// The report's 3-D viewer: NiiVue (third_party/niivue/niivue.umd.js, copied to RUN/viewer/) in a
// section of report.html, fed per test subject by RUN/viewer/<safe id>.js. That file is a classic
// script (a page opened from file:// may load scripts but may not fetch files) calling
// anoswinViewerData({...}) with the scan, the anomaly map and the outlines of detect's mask and
// of the ground truth, each a base64 string of a gzipped uint8 NIfTI-1 file, all on one grid.
#ifndef ANOSWIN_EVAL_VIEWER_H
#define ANOSWIN_EVAL_VIEWER_H

#include <stddef.h>
#include <stdio.h>

#include "data/volume.h"
#include "eval/eval.h"

// The viewer's grid: the native grid cropped to the brain's bounding box plus a 2-voxel margin,
// then every f-th voxel along each axis with the smallest f that leaves at most max_voxels voxels;
// the report uses VIEWER_MAX_VOXELS, 6.3 M: a 1 mm adult brain with its margin (some 4-5 M voxels)
// stays at f = 1, about 2-3 MB of data.
enum { VIEWER_MAX_VOXELS = 6 << 20 };

// Writes RUN/viewer/<safe id>.js (atomically) on a grid of at most max_voxels voxels. img is
// required; map, pred, lab and brain may have data == NULL (then that layer is absent; brain
// absent = img > 0). All on img's grid.
// Layers: scan as uint8 over its 0.1st..99.9th percentile in the brain (scl_slope/scl_inter give
// the scan's units back); map as uint8 over 0..its maximum on the viewer grid (scl_slope gives map
// units); mask and ground truth as their outlines: the voxels of the region with a 6-neighbour
// outside it or on the grid's edge. Also "p99" (the map's 99th percentile in the brain, the
// slider's default when eval has no validation threshold) and "focus" (world mm of the ground
// truth's centroid, else the mask's, else the map's maximum: where the crosshair starts).
int eval_viewer_write(const volume *img, const volume *map, const volume *pred, const volume *lab,
                      const volume *brain, const char *id, const char *run_dir, size_t max_voxels);

// RUN/viewer/<safe id>.js (run_dir NULL or "": the path relative to RUN).
void report_viewer_path(char *out, size_t n, const char *run_dir, const char *id);
// Copies the NiiVue bundle to RUN/viewer/niivue.umd.js. Error names the file.
int report_viewer_install(const char *bundle, const char *run_dir);
// 1 when report.html gets the viewer: the bundle is in RUN/viewer/ and at least one test subject
// has its data file.
int report_viewer_present(const eval_result *res, const char *run_dir);
// <head> part: the style and a script that lists every page error (a script or picture that did
// not load, an exception, console.error) in <pre id="page-errors">, so that a broken report says so.
void report_viewer_head(FILE *f);
// The section (id="viewer"): controls, canvas, status line (<p id="nv-status">; the page's
// <html data-viewer="loading|ready|failed">), the bundle and the viewer script. threshold = the
// slider's start for every subject (NAN: each subject's own p99).
void report_viewer_section(FILE *f, const eval_result *res, const char *run_dir, double threshold);

#endif
