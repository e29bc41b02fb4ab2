#!/usr/bin/env python3
"""Independent check of an `anoswin eval` report on the fixture of tests/test_eval_report.c.

Usage: eval_report_check.py FIXTURE_ROOT RUN_DIR
FIXTURE_ROOT/subjects.csv lists id,role,image,label,mask (label/mask relative to the image's
folder, empty = none); predictions are in FIXTURE_ROOT/pred/<id>/. Every number is recomputed
with nibabel (reoriented to the closest canonical RAS orientation), numpy and scikit-learn and
compared with RUN_DIR/report.json; report.csv is parsed with the csv module and must agree;
report.html may reference only files that exist under RUN_DIR and nothing on the network.
Exits non-zero with a message on the first disagreement.
"""
import csv
import json
import math
import os
import re
import sys

import nibabel as nib
import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def close(a, b, tol=1e-6):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= tol * (1 + abs(b))


def load(path):
    return np.asanyarray(nib.as_closest_canonical(nib.load(path)).dataobj).astype(np.float64)


def dice(p, g):
    den = p.sum() + g.sum()
    return 1.0 if den == 0 else 2.0 * (p & g).sum() / den


def best_dice(s, g):
    """Brute force over every distinct value and 'predict nothing'; highest threshold wins ties."""
    best, thr = (1.0 if g.sum() == 0 else 0.0), None
    for t in sorted(np.unique(s), reverse=True):
        d = dice(s >= t, g)
        if d > best:
            best, thr = d, t
    return best, thr


def main():
    root, run = sys.argv[1], sys.argv[2]
    subs = list(csv.DictReader(open(os.path.join(root, "subjects.csv"))))
    data = {}
    for s in subs:
        ddir = os.path.dirname(s["image"])
        img = load(s["image"])
        brain = load(os.path.join(ddir, s["mask"])) > 0 if s["mask"] else img > 0
        pdir = os.path.join(root, "pred", s["id"])
        lo, hi = 0, img.shape[2] - 1
        sj = os.path.join(pdir, "summary.json")
        if os.path.exists(sj):
            lo, hi = json.load(open(sj))["slice_range"]
        em = brain.copy()
        em[:, :, :lo] = False
        em[:, :, hi + 1:] = False
        gt = load(os.path.join(ddir, s["label"])) > 0 if s["label"] else np.zeros(img.shape, bool)
        amap = load(os.path.join(pdir, "anomaly_map.nii.gz"))
        mask = load(os.path.join(pdir, "mask.nii.gz")) > 0
        data[s["id"]] = dict(role=s["role"], em=em, gt=gt, map=amap, mask=mask, lo=lo, hi=hi)

    rep = json.load(open(os.path.join(run, "report.json")))
    rows = {(r["protocol"], r["aggregation"]): r for r in rep["rows"]}
    test = [k for k in data if data[k]["role"] == "test"]
    val = [k for k in data if data[k]["role"] == "val"]
    healthy = [k for k in data if data[k]["role"] == "healthy"]
    if rep["n_test"] != len(test) or rep["n_val"] != len(val) or rep["n_healthy"] != len(healthy):
        fail("subject counts")

    # Per subject, paper mask and continuous map.
    dices, aps, aucs = [], [], []
    by_id = {s["id"]: s for s in rep["subjects"]}
    for k in test:
        d = data[k]
        em = d["em"]
        g, p, s = d["gt"][em], d["mask"][em], d["map"][em]
        dc = dice(p, g)
        ap = average_precision_score(g, s) if g.any() else None
        auc = roc_auc_score(g, s) if g.any() and not g.all() else None
        js = by_id[k]
        if not close(js["dice"], dc) or not close(js["auprc"], ap) or not close(js["auroc"], auc):
            fail(f"{k}: dice/auprc/auroc {js['dice']}/{js['auprc']}/{js['auroc']} vs {dc}/{ap}/{auc}")
        if js["slice_range"] != [d["lo"], d["hi"]]:
            fail(f"{k}: slice range {js['slice_range']} vs {[d['lo'], d['hi']]}")
        dices.append(dc)
        if ap is not None:
            aps.append(ap)
        if auc is not None:
            aucs.append(auc)
    pv = rows[("paper", "per-volume")]
    if not close(pv["dice"]["value"], np.mean(dices)) or not close(pv["dice"]["std"], np.std(dices)):
        fail("paper per-volume Dice mean/std")
    if not close(pv["auprc"]["value"], np.mean(aps)) or pv["auprc"]["n"] != len(aps):
        fail("paper per-volume AUPRC (n/a excluded)")
    if not close(pv["auroc"]["value"], np.mean(aucs)):
        fail("paper per-volume AUROC")
    lo_ci, hi_ci = pv["dice"]["ci95"]
    if not (lo_ci <= pv["dice"]["value"] <= hi_ci):
        fail("paper Dice CI does not contain the mean")

    G = np.concatenate([data[k]["gt"][data[k]["em"]] for k in test])
    S = np.concatenate([data[k]["map"][data[k]["em"]] for k in test])
    P = np.concatenate([data[k]["mask"][data[k]["em"]] for k in test])
    po = rows[("paper", "pooled")]
    if not close(po["dice"]["value"], dice(P, G)):
        fail("paper pooled Dice")
    if not close(po["auprc"]["value"], average_precision_score(G, S)) or not close(po["auroc"]["value"], roc_auc_score(G, S)):
        fail("pooled AUPRC/AUROC")

    # Per slice: slices (RAS axis 2) with ground truth.
    sd, sa, su = [], [], []
    for k in test:
        d = data[k]
        for z in range(d["lo"], d["hi"] + 1):
            em = d["em"][:, :, z]
            g = d["gt"][:, :, z][em]
            if not g.any():
                continue
            sd.append(dice(d["mask"][:, :, z][em], g))
            sa.append(average_precision_score(g, d["map"][:, :, z][em]))
            if not g.all():
                su.append(roc_auc_score(g, d["map"][:, :, z][em]))
    ps = rows[("paper", "per-slice")]
    if not close(ps["dice"]["value"], np.mean(sd)) or not close(ps["auprc"]["value"], np.mean(sa)) \
            or not close(ps["auroc"]["value"], np.mean(su)):
        fail(f"per-slice Dice/AUPRC {ps['dice']['value']}/{ps['auprc']['value']} vs {np.mean(sd)}/{np.mean(sa)}")

    # val-threshold: best pooled Dice on val, applied to test.
    Gv = np.concatenate([data[k]["gt"][data[k]["em"]] for k in val])
    Sv = np.concatenate([data[k]["map"][data[k]["em"]] for k in val])
    _, tv = best_dice(Sv, Gv)
    if not close(rep["thresholds"]["val"], tv):
        fail(f"val threshold {rep['thresholds']['val']} vs {tv}")
    vr = rows[("val-threshold", "pooled")]
    if not close(vr["dice"]["value"], dice(S >= tv, G)):
        fail("val-threshold pooled Dice")
    vv = rows[("val-threshold", "per-volume")]
    pvd = [dice(data[k]["map"][data[k]["em"]] >= tv, data[k]["gt"][data[k]["em"]]) for k in test]
    if not close(vv["dice"]["value"], np.mean(pvd)):
        fail("val-threshold per-volume Dice")

    # oracle
    bo, to = best_dice(S, G)
    if not close(rows[("oracle", "pooled")]["dice"]["value"], bo) or not close(rep["thresholds"]["oracle"], to):
        fail("oracle Dice/threshold")
    if "OPTIMISTIC" not in rows[("oracle", "pooled")]["note"]:
        fail("oracle not marked optimistic")

    # healthy FPR thresholds
    H = np.concatenate([data[k]["map"][data[k]["em"]] for k in healthy])
    for alpha in (1, 5, 10):
        cands = [t for t in np.unique(H) if np.mean(H >= t) <= alpha / 100]
        want = min(cands) if cands else None
        got = rep["thresholds"][f"healthy_fpr_{alpha}"]["threshold"]
        if want is None:
            if got <= H.max():
                fail(f"fpr {alpha}%: expected 'predict nothing'")
        elif not close(got, want):
            fail(f"fpr {alpha}%: threshold {got} vs {want}")
        r = rows[(f"healthy-fpr-{alpha}%", "pooled")]
        if not close(r["dice"]["value"], dice(S >= got, G)):
            fail(f"fpr {alpha}% pooled Dice")

    # CSV parses and agrees.
    crow = list(csv.DictReader(open(os.path.join(run, "report.csv"), newline="")))
    if len(crow) != len(rep["rows"]):
        fail("csv row count")
    for c, j in zip(crow, rep["rows"]):
        if c["protocol"] != j["protocol"] or c["aggregation"] != j["aggregation"]:
            fail("csv row order")
        v = j["dice"]["value"]
        if (c["dice"] == "") != (v is None) or (v is not None and not close(float(c["dice"]), v)):
            fail("csv dice value")
        if c["dataset"] != rep["dataset"]:
            fail("csv quoting of the dataset name")

    # Markdown: no NaN anywhere.
    for name in ("report.md", "report.csv", "report.json"):
        if re.search(r"\bnan\b", open(os.path.join(run, name)).read(), re.I):
            fail(f"{name} contains NaN")

    # HTML: offline, references only existing files.
    html = open(os.path.join(run, "report.html")).read()
    if re.search(r"<script|<link|@import|url\(", html, re.I):
        fail("html loads external resources")
    refs = re.findall(r'(?:src|href)="([^"]*)"', html)
    for ref in refs:
        if "://" in ref or ref.startswith("//"):
            fail(f"html references the network: {ref}")
        if not os.path.exists(os.path.join(run, ref)):
            fail(f"html references a missing file: {ref}")
    imgs = [r for r in refs if r.endswith(".png")]
    if len(imgs) != 6 * len(test):
        fail(f"expected 6 panels per test subject, found {len(imgs)}")
    if "<svg" not in html or "polyline" not in html:
        fail("html has no loss curve")
    if os.path.exists(os.path.join(run, "log.csv")):
        head = open(os.path.join(run, "log.csv")).readline().strip().split(",")
        for col in [h for h in head if "loss" in h]:
            if col not in html:
                fail(f"loss curve lacks {col}")
        if "step" in head and ">step</text>" not in html:
            fail("loss curve x axis is not the step")
    print(f"report check: {len(test)} test subjects, {len(rep['rows'])} rows, {len(refs)} files referenced: OK")


if __name__ == "__main__":
    main()
