#!/usr/bin/env python3
"""Independent check of a 3-D viewer data file, RUN/viewer/<id>.js (src/eval/viewer.h).

check(js_path, image, anomaly_map, mask, label, brain) -> list of problems (empty = OK); paths
may be None for absent layers.
Command line: viewer_data_check.py JS IMAGE MAP MASK LABEL BRAIN MAX_VOXELS ("-" = none). Recomputes with nibabel, NumPy and SciPy on the native grid:
the crop (brain bounding box + 2 voxels), the stride (smallest f that keeps the viewer grid at
most max_voxels voxels, the report's 6 << 20 by default), each layer's affine (native affine times the crop/stride), the uint8 scan
(0.1st..99.9th percentile in the brain, scl_slope/scl_inter back to the scan's units) and map
(0..max, scl_slope = max/255), the outlines (region minus its erosion by the 6-connected cross,
the grid's edge counting as outside), the map's 99th percentile in the brain and the focus
(centroid of the ground truth, else of the mask, else the map's first maximum, in world mm).
"""
import base64
import gzip
import json

import nibabel as nib
import numpy as np
from scipy import ndimage

CAP = 6 << 20  # VIEWER_MAX_VOXELS
PREFIX = "anoswinViewerData("


def read(js_path):
    text = open(js_path).read().rstrip()
    if not text.startswith(PREFIX) or not text.endswith(");"):
        raise ValueError(f"{js_path}: not an anoswinViewerData(...) call")
    return json.loads(text[len(PREFIX):-2])


def layer(b64):
    return nib.Nifti1Image.from_bytes(gzip.decompress(base64.b64decode(b64)))


def native(path):
    im = nib.load(path)
    return np.asanyarray(im.dataobj).astype(np.float32), im.affine


def check(js_path, image, anomaly_map, mask, label, brain, max_voxels=CAP):
    errs = []
    d = read(js_path)
    if d["max_voxels"] != max_voxels:
        errs.append(f"max_voxels {d['max_voxels']}, want {max_voxels}")
    img, aff = native(image)
    bm = native(brain)[0] > 0 if brain else img > 0
    n = np.array(img.shape)
    idx = np.argwhere(bm)
    lo, hi = (np.maximum(idx.min(0) - 2, 0), np.minimum(idx.max(0) + 2, n - 1)) if len(idx) else (0 * n, n - 1)
    f = 1
    while np.prod((hi - lo) // f + 1) > max_voxels and np.any((hi - lo) // f > 0):
        f += 1
    sl = tuple(slice(lo[a], hi[a] + 1, f) for a in range(3))
    m = [len(range(lo[a], hi[a] + 1, f)) for a in range(3)]
    if d["shape"] != m or d["step"] != f:
        errs.append(f"grid {d['shape']} step {d['step']}, want {m} step {f}")
        return errs
    sub = np.eye(4)
    sub[:3, :3] *= f
    sub[:3, 3] = lo
    want_aff = aff @ sub
    b = bm[sl]

    def raw(key):
        im = layer(d[key])
        if im.get_data_dtype() != np.uint8 or list(im.shape) != m:
            errs.append(f"{key}: {im.get_data_dtype()} {im.shape}, want uint8 {m}")
        if not np.allclose(im.affine, want_aff, atol=1e-3):
            errs.append(f"{key}: affine\n{im.affine}\nwant\n{want_aff}")
        return im, np.asanyarray(im.dataobj.get_unscaled())

    def near(key, got, want):  # uint8 rounding may differ by 1 on a few exact halves (float32 vs float64)
        diff = np.abs(got.astype(int) - want.astype(int))
        if diff.max() > 1 or (diff > 0).mean() > 1e-3:
            errs.append(f"{key}: {np.count_nonzero(diff)} voxels differ (max {diff.max()})")

    im, q = raw("scan")
    v = img[sl].astype(np.float64)
    plo, phi = np.percentile(v[b], [0.1, 99.9])
    span = phi - plo if phi > plo else 1.0
    near("scan", q, np.clip(np.rint((v - plo) / span * 255), 0, 255))
    slope, inter = im.dataobj.slope, im.dataobj.inter  # nibabel moves scl_slope/inter to the proxy
    if not (abs(slope - span / 255) <= 1e-5 * abs(span) and abs(inter - plo) <= 1e-5 * (1 + abs(plo))):
        errs.append(f"scan: scl_slope/inter {slope}/{inter}, want {span / 255}/{plo}")

    focus = None
    if anomaly_map:
        v = native(anomaly_map)[0][sl].astype(np.float64)
        mx = max(v.max(), 0.0)
        top = mx if mx > 0 else 1.0
        im, q = raw("map")
        near("map", q, np.clip(np.rint(v / top * 255), 0, 255))
        if abs(im.dataobj.slope - top / 255) > 1e-6 * top:
            errs.append(f"map: scl_slope {im.dataobj.slope}, want {top / 255}")
        if abs(d["map_max"] - top) > 1e-6 * top or abs(d["p99"] - np.percentile(v[b], 99)) > 1e-5 * top:
            errs.append(f"map_max {d['map_max']} p99 {d['p99']}, want {top} {np.percentile(v[b], 99)}")
        if mx > 0:
            focus = np.unravel_index(np.argmax(v.ravel(order="F")), v.shape, order="F")
    elif "map" in d:
        errs.append("a map layer without an anomaly map")
    cross = ndimage.generate_binary_structure(3, 1)
    for key, path in (("mask", mask), ("gt", label)):
        if not path:
            if key in d:
                errs.append(f"a {key} layer without its volume")
            continue
        r = native(path)[0][sl] > 0
        _, q = raw(key)
        want = r & ~ndimage.binary_erosion(r, structure=cross, border_value=0)
        if not np.array_equal(q > 0, want) or q.max(initial=0) > 1:
            errs.append(f"{key}: outline differs in {np.count_nonzero((q > 0) != want)} voxels")
        if r.any():
            focus = np.argwhere(r).mean(0)  # gt comes last: it wins over the mask
    if focus is None:
        if d["focus"] is not None:
            errs.append(f"focus {d['focus']}, want none")
    else:
        mm = (want_aff @ np.append(np.asarray(focus, float), 1))[:3]
        if d["focus"] is None or np.abs(np.array(d["focus"]) - mm).max() > 2e-3:
            errs.append(f"focus {d['focus']}, want {mm}")
    return errs


if __name__ == "__main__":
    import sys
    a = [None if x == "-" else x for x in sys.argv[1:7]]
    problems = check(*a, max_voxels=int(sys.argv[7]))
    for p in problems:
        print("FAIL:", p)
    if not problems:
        print(f"viewer data {sys.argv[1]}: OK")
    sys.exit(1 if problems else 0)
