#!/usr/bin/env python3
"""Independent check of an `anoswin eval` report on the fixture of tests/test_eval_report.c.

Usage: eval_report_check.py FIXTURE_ROOT RUN_DIR
FIXTURE_ROOT/subjects.csv lists id,role,image,label,mask (label/mask relative to the image's
folder, empty = none); predictions are in FIXTURE_ROOT/pred/<id>/. Every number is recomputed
with nibabel (reoriented to the closest canonical RAS orientation), numpy and scikit-learn and
compared with RUN_DIR/report.json; report.csv is parsed with the csv module and must agree;
report.html may reference only files that exist under RUN_DIR and nothing on the network; its only
scripts are inline ones and the 3-D viewer's RUN_DIR/viewer/*.js, whose data files
tools/viewer_data_check.py recomputes.
Per-volume means cover only the test subjects with lesion voxels in the evaluated slices (a
lesion-free subject with an empty mask would otherwise add a Dice of 1); the lesion-free ones and
the healthy scans are checked by their false-positive volume in ml (voxels * voxel volume).
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import png_decode  # noqa: E402
import viewer_data_check  # noqa: E402


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def close(a, b, tol=1e-6):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= tol * (1 + abs(b))


def load(path):
    return np.asanyarray(nib.as_closest_canonical(nib.load(path)).dataobj).astype(np.float64)


def voxel_ml(path):
    return float(np.prod(nib.load(path).header.get_zooms()[:3])) / 1000.0


def check_fp(what, js, ml):
    """js: a {"n", "fp_ml_mean", "fp_ml_max", "fp_ml_total"} object; ml: the volumes it summarises."""
    if js["n"] != len(ml):
        fail(f"{what}: n {js['n']} vs {len(ml)}")
    want = (np.mean(ml), np.max(ml), np.sum(ml)) if ml else (None, None, 0.0)
    got = (js["fp_ml_mean"], js["fp_ml_max"], js["fp_ml_total"])
    if not all(close(g, w) for g, w in zip(got, want)):
        fail(f"{what}: false-positive ml mean/max/total {got} vs {want}")


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


def check_loss_axis(html, log_csv):
    """The loss curve's y axis is logarithmic: ticks at powers of ten (1-2-5 steps when the losses
    span less than a decade) covering the positive losses, every tick and every curve point at
    y = a + b * log10(value) on one line; NaN and values <= 0 are not drawn."""
    m = re.search(r'<svg class="loss".*?</svg>', html, re.S)
    if not m:
        fail("html has no loss curve svg")
    svg = m.group(0)
    if "loss (log scale)" not in svg:
        fail("loss curve: the y axis is not titled")
    ticks = [(float(y), float(v)) for y, v in
             re.findall(r'<line class="ytick"[^>]*\by1="([-\d.]+)"[^>]*/><text[^>]*>([^<]+)</text>', svg)]
    if len(ticks) < 2:
        fail(f"loss curve: {len(ticks)} y-axis ticks, need at least 2")
    rows = list(csv.DictReader(open(log_csv)))
    cols = [c for c in rows[0].keys() if "loss" in c][:3]

    def num(x):
        try:
            v = float(x)
        except (TypeError, ValueError):
            return None
        return v if math.isfinite(v) and v > 0 else None
    vals = [[num(r[c]) for r in rows if num(r[c]) is not None] for c in cols]
    allv = [v for vs in vals for v in vs]
    lo, hi = min(allv), max(allv)
    tv = [v for _, v in ticks]
    fine = hi / lo < 10
    for v in tv:
        e = math.floor(math.log10(v) + 1e-9)
        mant = round(v / 10 ** e, 6)
        if mant not in ((1, 2, 5) if fine else (1,)):
            fail(f"loss curve: tick {v} is not a {'1-2-5 step' if fine else 'power of ten'} (losses {lo}..{hi})")
    if sorted(tv) != tv[::-1] and sorted(tv) != tv:
        fail(f"loss curve: ticks not in order {tv}")
    tv_sorted = sorted(tv)
    if not (tv_sorted[0] <= lo and tv_sorted[-1] >= hi and tv_sorted[1] > lo and tv_sorted[-2] < hi):
        fail(f"loss curve: ticks {tv_sorted} do not tightly cover the losses {lo}..{hi}")
    ratios = [round(b / a, 6) for a, b in zip(tv_sorted, tv_sorted[1:])]
    if fine and not all(r in (2, 2.5) for r in ratios):
        fail(f"loss curve: losses {lo}..{hi} span under a decade but ticks {tv_sorted} are not every 1-2-5 step")
    if not fine and len(set(ratios)) != 1:
        fail(f"loss curve: ticks {tv_sorted} are not evenly spaced powers of ten")
    (y0, v0), (y1, v1) = ticks[0], ticks[-1]
    b = (y1 - y0) / (math.log10(v1) - math.log10(v0))
    a = y0 - b * math.log10(v0)
    if not b < 0:
        fail("loss curve: larger losses are not higher up")
    for y, v in ticks:
        if abs(y - (a + b * math.log10(v))) > 0.02:
            fail(f"loss curve: tick {v} at y={y}, log position {a + b * math.log10(v):.2f}")
    lines = re.findall(r'<polyline[^>]*points="([^"]*)"', svg)
    if len(lines) != len(cols):
        fail(f"loss curve: {len(lines)} curves for {len(cols)} loss columns")
    for c, pts, vs in zip(cols, lines, vals):
        ys = [float(p.split(",")[1]) for p in pts.split()]
        if len(ys) != len(vs):
            fail(f"loss curve {c}: {len(ys)} points for {len(vs)} finite positive values")
        for y, v in zip(ys, vs):
            if abs(y - (a + b * math.log10(v))) > 0.02:
                fail(f"loss curve {c}: {v} drawn at y={y}, log position {a + b * math.log10(v):.2f}")


def map_units(pdir):
    """The anomaly map's units as detect recorded them (summary.json "map": {"units"}), as
    docs/evaluation.md states it; test_detect_cli checks what detect records."""
    sj = os.path.join(pdir, "summary.json")
    s = json.load(open(sj)) if os.path.exists(sj) else {}
    return s.get("map", {}).get("units", "map units")


def check_panels(html, run, root, test, data):
    """The reconstruction panel is labelled as the pseudo-healthy window prediction; the residual
    and map panels carry a colour bar with 0, their maximum and units, whose end colours are
    the PNG's colours for 0 and for its maximum."""
    panels = re.findall(r'<div class="panel"><img src="panels/([^"]*)_([a-z]+)\.png" alt="([^"]*)">(.*?)</div>', html)
    nbar, by_safe = 0, {re.sub(r"[^A-Za-z0-9._-]", "_", k): k for k in test}
    for safe, kind, alt, body in panels:
        sid = by_safe[safe]
        if kind == "reconstruction":
            want = "pseudo-healthy: the model's prediction under the sliding windows"
            if want not in alt or want not in body:
                fail(f"{sid}: the reconstruction panel is not labelled '{want}' (alt and caption)")
        if kind not in ("residual", "map"):
            continue
        m = re.search(r'<svg class="colourbar" data-min="([^"]*)" data-max="([^"]*)" data-unit="([^"]*)"(.*?)</svg>',
                      body, re.S)
        if not m:
            fail(f"{sid}: the {kind} panel has no colour bar")
        lo, hi, unit, bar = float(m.group(1)), float(m.group(2)), m.group(3), m.group(4)
        texts = re.findall(r"<text[^>]*>([^<]*)</text>", bar)
        if lo != 0 or not hi > 0 or "0" not in texts or f"{hi:.3g}" not in texts or unit not in texts or not unit:
            fail(f"{sid}: {kind} colour bar lacks its min/max/unit labels ({texts}, max {hi}, unit {unit!r})")
        if kind == "map":
            want = map_units(os.path.join(root, "pred", sid))
            if unit != want:
                fail(f"{sid}: map colour bar in {unit!r}, detect's settings say {want!r}")
            mx = float(data[sid]["map"].max())
            if hi > mx * (1 + 1e-5):
                fail(f"{sid}: map colour bar max {hi} above the map's maximum {mx}")
        fills = re.findall(r'<rect[^>]*fill="#([0-9a-f]{6})"', bar)
        if len(fills) < 16:
            fail(f"{sid}: {kind} colour bar has {len(fills)} colours")
        px, _ = png_decode.decode(os.path.join(run, "panels", f"{safe}_{kind}.png"))
        colours = {tuple(int(c) for c in p[:3]) for p in px.reshape(-1, px.shape[2])}
        for end in (fills[0], fills[-1]):
            rgb = tuple(int(end[i:i + 2], 16) for i in (0, 2, 4))
            if rgb not in colours:
                fail(f"{sid}: {kind} colour bar end colour {rgb} is not in the panel's PNG")
        nbar += 1
    if nbar != 2 * len(test):
        fail(f"{nbar} colour bars for {len(test)} test subjects' residual and map panels")


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
        data[s["id"]] = dict(role=s["role"], em=em, gt=gt, map=amap, mask=mask, lo=lo, hi=hi, ml=voxel_ml(s["image"]))

    rep = json.load(open(os.path.join(run, "report.json")))
    rows = {(r["protocol"], r["aggregation"]): r for r in rep["rows"]}
    test = [k for k in data if data[k]["role"] == "test"]
    val = [k for k in data if data[k]["role"] == "val"]
    healthy = [k for k in data if data[k]["role"] == "healthy"]
    if rep["n_test"] != len(test) or rep["n_val"] != len(val) or rep["n_healthy"] != len(healthy):
        fail("subject counts")
    # Lesion subjects: lesion voxels inside the evaluated voxels. The rest only count false positives.
    lesion = [k for k in test if data[k]["gt"][data[k]["em"]].any()]
    free = [k for k in test if k not in lesion]
    if not lesion or not free:
        fail(f"the fixture needs test subjects with and without lesions ({len(lesion)} / {len(free)})")

    def fp_ml(k, pred):  # predicted voxels outside the ground truth, in ml
        d = data[k]
        return float((pred[d["em"]] & ~d["gt"][d["em"]]).sum()) * d["ml"]

    # Per subject, paper mask and continuous map.
    dices, precs, recs, aps, aucs, want = [], [], [], [], [], {}
    for k in test:
        d = data[k]
        em = d["em"]
        g, p, s = d["gt"][em], d["mask"][em], d["map"][em]
        dc = dice(p, g) if k in lesion else None  # a lesion-free subject's Dice is n/a
        ap = average_precision_score(g, s) if g.any() else None
        auc = roc_auc_score(g, s) if g.any() and not g.all() else None
        want[k] = (dc, ap, auc)
        if k in free:
            continue
        dices.append(dc)
        if p.any():
            precs.append((p & g).sum() / p.sum())
        recs.append((p & g).sum() / g.sum())
        if ap is not None:
            aps.append(ap)
        if auc is not None:
            aucs.append(auc)
    pv = rows[("paper", "per-volume")]
    if not close(pv["dice"]["value"], np.mean(dices)) or not close(pv["dice"]["std"], np.std(dices)):
        fail(f"paper per-volume Dice mean/std {pv['dice']['value']}/{pv['dice']['std']} vs lesion subjects only "
             f"{np.mean(dices)}/{np.std(dices)}")
    if pv["n_subjects"] != len(lesion) or pv["dice"]["n"] != len(lesion):
        fail(f"paper per-volume n {pv['n_subjects']} (Dice n {pv['dice']['n']}) vs {len(lesion)} lesion subjects")
    if not close(pv["precision"]["value"], np.mean(precs)) or not close(pv["recall"]["value"], np.mean(recs)):
        fail("paper per-volume precision/recall over the lesion subjects")
    if not close(pv["auprc"]["value"], np.mean(aps)) or pv["auprc"]["n"] != len(aps):
        fail("paper per-volume AUPRC (n/a excluded)")
    if not close(pv["auroc"]["value"], np.mean(aucs)):
        fail("paper per-volume AUROC")
    if rep["n_test_lesion"] != len(lesion):
        fail(f"n_test_lesion {rep['n_test_lesion']} vs {len(lesion)}")
    by_id = {s["id"]: s for s in rep["subjects"]}
    for k in test:
        d, js, (dc, ap, auc) = data[k], by_id[k], want[k]
        if not close(js["dice"], dc) or not close(js["auprc"], ap) or not close(js["auroc"], auc):
            fail(f"{k}: dice/auprc/auroc {js['dice']}/{js['auprc']}/{js['auroc']} vs {dc}/{ap}/{auc}")
        if js["lesion_free"] != (k in free) or not close(js["fp_ml"], fp_ml(k, d["mask"])):
            fail(f"{k}: lesion_free/fp_ml {js['lesion_free']}/{js['fp_ml']} vs {k in free}/{fp_ml(k, d['mask'])}")
        if js["slice_range"] != [d["lo"], d["hi"]]:
            fail(f"{k}: slice range {js['slice_range']} vs {[d['lo'], d['hi']]}")

    # Lesion-free test subjects: false-positive volume of detect's mask, per subject and summarised.
    lf = rep["lesion_free"]
    if [x["id"] for x in lf["scans"]] != free:
        fail(f"lesion-free subjects {[x['id'] for x in lf['scans']]} vs {free}")
    for x in lf["scans"]:
        if not close(x["fp_ml"], fp_ml(x["id"], data[x["id"]]["mask"])):
            fail(f"{x['id']}: false-positive ml {x['fp_ml']} vs {fp_ml(x['id'], data[x['id']]['mask'])}")
    paper_fp = [fp_ml(k, data[k]["mask"]) for k in free]
    if not any(paper_fp) or all(paper_fp):
        fail("the fixture needs lesion-free subjects with and without false positives")
    check_fp("lesion-free", lf, paper_fp)
    check_fp("paper per-volume lesion-free", pv["lesion_free"], paper_fp)
    check_fp("paper pooled lesion-free", rows[("paper", "pooled")]["lesion_free"], paper_fp)

    # Healthy scans: every voxel of detect's mask is a false positive.
    hf = rep["healthy_fp"]
    hml = [float(data[k]["mask"][data[k]["em"]].sum()) * data[k]["ml"] for k in healthy]
    if [x["id"] for x in hf["scans"]] != healthy or not all(close(x["fp_ml"], m) for x, m in zip(hf["scans"], hml)):
        fail(f"healthy false-positive ml {[x['fp_ml'] for x in hf['scans']]} vs {hml}")
    check_fp("healthy", hf, hml)
    lo_ci, hi_ci = pv["dice"]["ci95"]
    if not (lo_ci <= pv["dice"]["value"] <= hi_ci):
        fail("paper Dice CI does not contain the mean")

    G = np.concatenate([data[k]["gt"][data[k]["em"]] for k in test])
    S = np.concatenate([data[k]["map"][data[k]["em"]] for k in test])
    P = np.concatenate([data[k]["mask"][data[k]["em"]] for k in test])
    po = rows[("paper", "pooled")]
    if not close(po["dice"]["value"], dice(P, G)) or po["n_subjects"] != len(test):
        fail("paper pooled Dice (over every test subject)")
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
    if ps["n_slices"] != len(sd) or ps["n_subjects"] != len(lesion):
        fail(f"per-slice n {ps['n_subjects']} subjects / {ps['n_slices']} slices vs {len(lesion)} / {len(sd)}")
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
    pvd = [dice(data[k]["map"][data[k]["em"]] >= tv, data[k]["gt"][data[k]["em"]]) for k in lesion]
    if not close(vv["dice"]["value"], np.mean(pvd)) or vv["n_subjects"] != len(lesion):
        fail(f"val-threshold per-volume Dice {vv['dice']['value']} vs {np.mean(pvd)} over the lesion subjects")
    check_fp("val-threshold lesion-free", vv["lesion_free"], [fp_ml(k, data[k]["map"] >= tv) for k in free])

    # oracle
    bo, to = best_dice(S, G)
    if not close(rows[("oracle", "pooled")]["dice"]["value"], bo) or not close(rep["thresholds"]["oracle"], to):
        fail("oracle Dice/threshold")
    ov = rows[("oracle", "per-volume")]
    od = [dice(data[k]["map"][data[k]["em"]] >= to, data[k]["gt"][data[k]["em"]]) for k in lesion]
    if not close(ov["dice"]["value"], np.mean(od)):
        fail(f"oracle per-volume Dice {ov['dice']['value']} vs {np.mean(od)} over the lesion subjects")
    check_fp("oracle lesion-free", ov["lesion_free"], [fp_ml(k, data[k]["map"] >= to) for k in free])
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
        r = rows[(f"healthy-fpr-{alpha}%", "per-volume")]
        fd = [dice(data[k]["map"][data[k]["em"]] >= got, data[k]["gt"][data[k]["em"]]) for k in lesion]
        if not close(r["dice"]["value"], np.mean(fd)):
            fail(f"fpr {alpha}% per-volume Dice over the lesion subjects")
        check_fp(f"fpr {alpha}% lesion-free", r["lesion_free"], [fp_ml(k, data[k]["map"] >= got) for k in free])

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
        if int(c["n"]) != j["n_subjects"] or int(c["n_subjects"]) != len(test):
            fail(f"csv n / n_subjects {c['n']} / {c['n_subjects']}")
        lfj = j["lesion_free"]
        if lfj is not None and not close(float(c["lesion_free_fp_ml_mean"]), lfj["fp_ml_mean"]):
            fail("csv lesion-free false-positive ml")
        if not close(float(c["healthy_fp_ml_mean"]), hf["fp_ml_mean"]):
            fail("csv healthy false-positive ml")

    # Markdown: no NaN anywhere.
    for name in ("report.md", "report.csv", "report.json"):
        if re.search(r"\bnan\b", open(os.path.join(run, name)).read(), re.I):
            fail(f"{name} contains NaN")

    # Markdown and HTML say what each mean covers and report the false positives.
    md = open(os.path.join(run, "report.md")).read()
    html = open(os.path.join(run, "report.html")).read()
    for name, text in (("report.md", md), ("report.html", html)):
        if not re.search(rf"Lesion-free test subjects \([^)]*\): {len(free)}; false-positive volume of detect's mask: "
                         rf"mean {np.mean(paper_fp):.3f} ml", text):
            fail(f"{name} does not report the {len(free)} lesion-free subjects and their false-positive volume")
        if not re.search(rf"Healthy scans: {len(healthy)}; false-positive volume of detect's mask: mean "
                         rf"{np.mean(hml):.3f} ml, max {np.max(hml):.3f} ml", text):
            fail(f"{name} does not report the healthy scans' false-positive volume")
    if not re.search(rf"\| paper \| per-volume \| {len(lesion)} \|", md):
        fail("report.md: the paper per-volume line does not give n")

    # HTML: offline, references only existing files; scripts only inline or the viewer's own.
    if re.search(r"<link|@import|url\(", html, re.I):
        fail("html loads external resources")
    for ref in re.findall(r"<script[^>]*\bsrc=\"([^\"]*)\"", html):
        if not ref.startswith("viewer/"):
            fail(f"html loads a script other than the viewer's: {ref}")
    refs = [r for r in re.findall(r'(?:src|href)="([^"]*)"', html) if not r.startswith("#")]
    viewer = re.search(r'<script type="application/json" id="nv-config">(.*?)</script>', html, re.S)
    if viewer:
        refs += list(json.loads(viewer.group(1))["files"].values())
    nviewer = 0
    for s in subs:
        js = os.path.join(run, "viewer", re.sub(r"[^A-Za-z0-9._-]", "_", s["id"]) + ".js")
        if s["role"] != "test" or not os.path.isdir(os.path.join(run, "viewer")):
            continue
        if not os.path.exists(js):
            fail(f"no viewer data for {s['id']}")
        ddir = os.path.dirname(s["image"])
        pdir = os.path.join(root, "pred", s["id"])
        errs = viewer_data_check.check(js, s["image"], os.path.join(pdir, "anomaly_map.nii.gz"),
                                       os.path.join(pdir, "mask.nii.gz"),
                                       os.path.join(ddir, s["label"]) if s["label"] else None,
                                       os.path.join(ddir, s["mask"]) if s["mask"] else None)
        if errs:
            fail(f"viewer data of {s['id']}: " + "; ".join(errs))
        nviewer += 1
    for ref in refs:
        if "://" in ref or ref.startswith("//"):
            fail(f"html references the network: {ref}")
        if not os.path.exists(os.path.join(run, ref)):
            fail(f"html references a missing file: {ref}")
    imgs = [r for r in refs if r.startswith("panels/")]
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
        check_loss_axis(html, os.path.join(run, "log.csv"))
    check_panels(html, run, root, test, data)
    print(f"report check: {len(test)} test subjects, {len(rep['rows'])} rows, {len(refs)} files referenced, "
          f"{nviewer} viewer data files: OK")


if __name__ == "__main__":
    main()
