#!/usr/bin/env python3
"""Screening of the calibrated post-processing's settings by leave-one-profile-out, on the model grid.

This is the proxy used to CHOOSE detect's defaults (docs/detection.md, "Choosing the defaults");
the numbers docs/detection.md reports come from `anoswin detect` + `anoswin eval` themselves. It reads
what `anoswin detect --save-model-grid` wrote per subject (model_grid_map.f32, model_grid_brain.u8,
model_grid_label.u8) for each residual and profile:

    ROOT/<residual>/<profile>/<subject>/model_grid_*      lesion profiles (tuning sets)
    ROOT/<residual>/cal/<subject>/model_grid_*             healthy calibration scans

and re-implements steps C1-C2 of src/detect/postproc.h (hysteresis between the thresholds at two
healthy false-positive rates, 26-connectivity, smallest component) with NumPy/SciPy, the
threshold at rate f being numpy.quantile(healthy brain values, 1 - f) as src/detect/calibrate.c.
For every held-out profile it picks the setting with the best mean per-profile Dice on the
other profiles and prints that setting's Dice on the held-out one; the same for the plain
calibrated threshold (one rate, no hysteresis, no size filter). Profile "none" (no lesions) is
never chosen on; its false-positive volume is printed.

With --normative SIGMA the map is first turned into a voxel-wise z-score against the calibration
scans (src/detect/calibrate.h, normative calibration): mean and variance of the healthy maps at
each model-grid voxel, each smoothed with a Gaussian of SIGMA px (the variance: that of a new map, ddof 1 x (1 + 1/k)),
sd = sqrt(var) + SD_FLOOR; the
thresholds come from the calibration scans' own z-maps computed leave-one-out.

usage: tune_detect.py ROOT SIZE [--residuals positive,abs] [--profiles a,b,...] [--normative SIGMA]
                      [--scales "0;0,3;..."]  (sets of smoothing scales to screen, with --normative)
"""
import itertools, json, os, sys

import numpy as np
from scipy import ndimage

VOXEL_ML = 240.0 / 128 * 240.0 / 128 * 1.0 / 1000  # model grid of the demo: 1.875 x 1.875 x 1 mm
SD_FLOOR = 0.02
UNIT_FPR = 1e-3  # each scale's z-map is divided by its healthy quantile at 1 - UNIT_FPR


def normative(maps, sigma):
    """(mu, sd) from a stack of healthy maps."""
    k = maps.shape[0]  # the predictive variance of a new map (src/detect/normative.c)
    mu = ndimage.gaussian_filter(maps.mean(0), sigma)
    var = ndimage.gaussian_filter(maps.var(0, ddof=1) * (1 + 1 / k) if k > 1 else 0 * maps[0], sigma)
    return mu, np.sqrt(np.maximum(var, 0)) + SD_FLOOR


def smooth(m, s):
    return ndimage.gaussian_filter(m, (0, s, s)) if s > 0 else m  # in-plane: slice by slice


def multiscale(cal, data, sigma, scales):
    """Normative z-maps at each smoothing scale (Gaussian of s px on each raw slice), each divided
    by its own healthy leave-one-out quantile at 1 - UNIT_FPR when there is more than one scale,
    and the voxel-wise maximum over scales (src/detect/normative.h, multi-scale)."""
    z_cal = [None] * len(cal)
    z_data = {p: [None] * len(v) for p, v in data.items()}
    for s in scales:
        stack = np.stack([smooth(m, s) for m, _, _ in cal])
        loo = []
        for i, (_, b, _) in enumerate(cal):
            mu_i, sd_i = normative(np.delete(stack, i, 0), sigma)
            loo.append((stack[i] - mu_i) / sd_i)
        unit = float(np.quantile(np.concatenate([z[b] for z, (_, b, _) in zip(loo, cal)]), 1 - UNIT_FPR)) \
            if len(scales) > 1 else 1.0
        mu, sd = normative(stack, sigma)
        for i, z in enumerate(loo):
            z_cal[i] = z / unit if z_cal[i] is None else np.maximum(z_cal[i], z / unit)
        for p, subs in data.items():
            for j, (m, _, _) in enumerate(subs):
                z = (smooth(m, s) - mu) / sd / unit
                z_data[p][j] = z if z_data[p][j] is None else np.maximum(z_data[p][j], z)
    return z_cal, z_data


def load(d, size):
    m = np.fromfile(os.path.join(d, "model_grid_map.f32"), dtype="<f4").reshape(-1, size, size)
    b = np.fromfile(os.path.join(d, "model_grid_brain.u8"), dtype=np.uint8).reshape(m.shape) > 0
    lp = os.path.join(d, "model_grid_label.u8")
    l = np.fromfile(lp, dtype=np.uint8).reshape(m.shape) > 0 if os.path.exists(lp) else np.zeros(m.shape, bool)
    return m, b, l


def subjects(d, size):
    return [load(os.path.join(d, s), size) for s in sorted(os.listdir(d)) if os.path.isdir(os.path.join(d, s))]


def detect(m, b, hi, lo, min_vox):
    cand = b & (m > lo)
    lab, n = ndimage.label(cand, np.ones((3, 3, 3), bool))
    if n == 0:
        return cand
    size = np.bincount(lab.ravel(), minlength=n + 1)
    seeded = np.zeros(n + 1, bool)
    seeded[np.unique(lab[b & (m > hi)])] = True
    keep = seeded & (size >= min_vox)
    keep[0] = False
    return keep[lab]


def score(subs, hi, lo, min_vox):
    dice, fp = [], []
    for m, b, l in subs:
        p = detect(m, b, hi, lo, min_vox)
        if l.any():
            dice.append(2 * (p & l).sum() / (p.sum() + l.sum()))
        else:
            fp.append(p.sum() * VOXEL_ML)
    return (float(np.mean(dice)) if dice else float("nan")), (float(np.mean(fp)) if fp else float("nan"))


def main():
    root, size = sys.argv[1], int(sys.argv[2])
    opts = dict(zip(sys.argv[3::2], sys.argv[4::2]))
    residuals = opts.get("--residuals", "positive,abs").split(",")
    fprs = [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2]
    lows = [1, 3, 10, 30]  # fpr_low = fpr x this (1: no hysteresis)
    mins = [0, 10, 30, 100, 300]
    table = {}  # (residual, fpr, low_factor, min) -> {profile: (dice, fp)}
    profiles = None
    scale_sets = [tuple(float(v) for v in g.split(",")) for g in opts.get("--scales", "0").split(";")]
    sigma = float(opts.get("--normative", "0"))
    for r, scales in itertools.product(residuals, scale_sets):
        rdir = os.path.join(root, r)
        cal = subjects(os.path.join(rdir, "cal"), size)
        profs = opts.get("--profiles")
        profs = profs.split(",") if profs else sorted(p for p in os.listdir(rdir) if p != "cal")
        profiles = profs
        data = {p: subjects(os.path.join(rdir, p), size) for p in profs}
        if sigma > 0:
            z_cal, z_data = multiscale(cal, data, sigma, scales)
            vals = np.concatenate([z[b] for z, (_, b, _) in zip(z_cal, cal)])
            data = {p: [(z, b, l) for z, (_, b, l) in zip(z_data[p], data[p])] for p in profs}
        else:
            vals = np.concatenate([m[b] for m, b, _ in cal])
        thr = lambda f: float(np.quantile(vals, 1 - f))
        key = r if len(scale_sets) == 1 else r + " scales " + ",".join(f"{v:g}" for v in scales)
        for f, k, mv in itertools.product(fprs, lows, mins):
            if f * k > 0.5:
                continue
            hi, lo = thr(f), thr(min(f * k, 0.5))
            table[(key, f, k, mv)] = {p: score(data[p], hi, lo, mv) for p in profs}
        print(f"{key}: {len(cal)} calibration scans, threshold at 1e-3 {thr(1e-3):.4g}", file=sys.stderr)
    lesion = [p for p in profiles if p != "none"]
    plain = [c for c in table if c[2] == 1 and c[3] == 0]

    def pick(cands, held, floor_by=None):
        """Best mean Dice on the other profiles; with floor_by (the plain threshold chosen on the same
        profiles), only settings within 0.02 Dice of it on every one of those profiles (the issue's
        acceptance rule, applied to the tuning profiles alone), when any is."""
        others = [p for p in lesion if p != held]
        ok = [c for c in cands
              if floor_by is None or all(table[c][p][0] >= table[floor_by][p][0] - 0.02 for p in others)]
        return max(ok or cands, key=lambda c: (np.mean([table[c][p][0] for p in others]), -c[1]))

    out = {"profiles": {}, "all": {}}
    print("| held-out profile | chosen on the others: residual, fpr, fpr_low, min_voxels | Dice | plain threshold "
          "chosen on the others: residual, fpr | Dice |")
    print("|---|---|---|---|---|")
    for held in profiles:
        q = pick(plain, held)
        c = pick(table, held, q)
        d, fp = table[c][held]
        dq, fq = table[q][held]
        shown = f"FP {fp:.2f} ml" if held == "none" else f"{d:.3f}"
        shownq = f"FP {fq:.2f} ml" if held == "none" else f"{dq:.3f}"
        print(f"| {held} | {c[0]}, {c[1]:g}, {min(c[1] * c[2], 0.5):g}, {c[3]} | {shown} | {q[0]}, {q[1]:g} | {shownq} |")
        out["profiles"][held] = {"chosen": c, "dice": d, "fp_ml": fp, "plain": q, "plain_dice": dq, "plain_fp_ml": fq}
    bestq = pick(plain, None)
    best = pick(table, None, bestq)
    print(f"chosen on all lesion profiles: {best} mean Dice {np.mean([table[best][p][0] for p in lesion]):.3f}; "
          f"plain: {bestq} {np.mean([table[bestq][p][0] for p in lesion]):.3f}")
    for c in (best, bestq):
        print("  " + str(c) + ": " + ", ".join(f"{p} {table[c][p][0]:.3f}/{table[c][p][1]:.2f}ml" for p in profiles))
    out["all"] = {"chosen": best, "plain": bestq}
    json.dump(out, open(os.path.join(root, "tune.json"), "w"), indent=1, default=str)


if __name__ == "__main__":
    main()
