#!/usr/bin/env python3
"""Reference values for tests/test_eval_metrics.c, from scikit-learn and SciPy.

Usage: eval_metrics_ref.py DIR NCASES NLESION
For case c in 0..NCASES-1 reads DIR/score_c.f32, DIR/gt_c.f32, DIR/mask_c.f32 (raw '<f4', 0/1
for gt and mask) and writes DIR/ref_c.f64 = [average_precision, roc_auc, f1(score >= 0.5),
precision, recall] computed on the voxels where mask != 0; NaN where sklearn raises or warns
that the value is undefined (the C side asserts its documented value there).
For lesion case c in 0..NLESION-1 reads DIR/lpred_c.f32, DIR/lgt_c.f32, DIR/lmask_c.f32 and
DIR/lshape_c.f32 (nz, ny, nx) and writes DIR/lref_c.f64 = [gt lesions, detected, predicted
components, false components] with scipy.ndimage.label and a 3x3x3 structure.
"""
import sys
import warnings

import numpy as np
from scipy import ndimage
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score, roc_auc_score


def guarded(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            return float(fn())
        except (ValueError, UndefinedMetricWarning, UserWarning, RuntimeWarning):
            return float("nan")


def main():
    d, ncases, nlesion = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for c in range(ncases):
        s = np.fromfile(f"{d}/score_{c}.f32", dtype="<f4")
        g = np.fromfile(f"{d}/gt_{c}.f32", dtype="<f4") != 0
        m = np.fromfile(f"{d}/mask_{c}.f32", dtype="<f4") != 0
        s, g = s[m], g[m]
        p = s >= 0.5
        ref = [
            guarded(lambda: average_precision_score(g, s)),
            guarded(lambda: roc_auc_score(g, s)),
            guarded(lambda: f1_score(g, p)),
            guarded(lambda: precision_score(g, p)),
            guarded(lambda: recall_score(g, p)),
        ]
        np.array(ref, dtype="<f8").tofile(f"{d}/ref_{c}.f64")
    st = np.ones((3, 3, 3), dtype=bool)
    for c in range(nlesion):
        shape = tuple(int(x) for x in np.fromfile(f"{d}/lshape_{c}.f32", dtype="<f4"))
        m = np.fromfile(f"{d}/lmask_{c}.f32", dtype="<f4").reshape(shape) != 0
        p = (np.fromfile(f"{d}/lpred_{c}.f32", dtype="<f4").reshape(shape) != 0) & m
        g = (np.fromfile(f"{d}/lgt_{c}.f32", dtype="<f4").reshape(shape) != 0) & m
        gl, ng = ndimage.label(g, structure=st)
        pl, npc = ndimage.label(p, structure=st)
        detected = len(np.unique(gl[p & (gl > 0)]))
        true_comp = len(np.unique(pl[g & (pl > 0)]))
        np.array([ng, detected, npc, npc - true_comp], dtype="<f8").tofile(f"{d}/lref_{c}.f64")


if __name__ == "__main__":
    main()
