#!/usr/bin/env python3
"""Checks an `anoswin experiment` run folder: report.json and report.csv parse and agree, every
row has a status, skipped rows say why, ok rows carry our numbers (finite, in range) and the
paper's numbers where the paper has them, and every file the reports and HTML pages reference
exists. With METHODS (comma-separated tags, default swinmae): the report holds exactly those
methods; a masking method has a row per mask size, a whole-image one (mask_size null) one per data
set; rows and models of the default method (swinmae) are unprefixed, the others' carry the tag;
every trained model's checkpoint is tagged with its method; the baselines' paper numbers are the
paper's Table 1 (transcribed here independently of src/recipe/paper.c).
Usage: experiment_report_check.py RUN TABLE EXPECTED_OK EXPECTED_SKIPPED SKIP_WORD [METHODS]"""
import csv
import json
import math
import os
import re
import struct
import sys

run, table, want_ok, want_skip, skip_word = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
methods = sys.argv[6].split(",") if len(sys.argv) > 6 else ["swinmae"]
fails = []

# The paper's Table 1 for the baselines: (Dice %, AUPRC %) on BraTS21 T2 and MSLUB T2, parameters (M).
PAPER_T1 = {"vae": ((31.11, 28.80), (6.89, 5.00), 4.96), "fanogan": ((24.16, 22.05), (4.18, 4.01), 5.56),
            "vitmae": ((31.97, 25.44), (15.46, 10.56), 329), "autoddpm": ((35.80, 29.07), (19.35, 11.79), 18.50)}


def check(cond, what):
    if not cond:
        fails.append(what)


j = json.load(open(os.path.join(run, "report.json")))
check(j["table"] == table, "table number")
rows = j["rows"]
ok = [r for r in rows if r["status"] == "ok"]
skipped = [r for r in rows if r["status"] == "skipped"]
check(len(ok) == want_ok, f"{len(ok)} ok rows, want {want_ok}")
check(len(skipped) == want_skip, f"{len(skipped)} skipped rows, want {want_skip}")
for r in skipped:
    check(skip_word in r["note"], f"skipped row {r['id']} note names {skip_word}: {r['note']!r}")
for r in ok:
    check(os.path.isfile(os.path.join(run, r["report"])), f"{r['report']} exists")
    check(os.path.isfile(os.path.join(run, r["report_json"])), f"{r['report_json']} exists")
    protos = {(o["protocol"], o["aggregation"]) for o in r["ours"]}
    check(("paper", "per-slice") in protos and ("paper", "per-volume") in protos, f"{r['id']}: paper lines")
    for o in r["ours"]:
        for k in ("dice_pct", "auprc_pct", "auroc_pct"):
            v = o[k]
            check(v is None or (math.isfinite(v) and 0 <= v <= 100), f"{r['id']} {k}={v}")
        check(o["parameters_m"] is not None and o["parameters_m"] > 0, f"{r['id']} parameters")
        check(o["n_subjects"] >= 1, f"{r['id']} subjects")
    # our numbers equal the per-row eval report's
    sub = json.load(open(os.path.join(run, r["report_json"])))
    check(isinstance(sub, dict), "per-row report.json is an object")
for r in rows:
    tag = r.get("method_tag", "swinmae")
    if tag == "swinmae" and r["mask_size"] in (64, 32) and (table == 1 or r["mask_size"] == 64):
        check(r["paper"] is not None and "reference code" in r["paper"]["protocol"], f"{r['id']}: paper numbers")
    if table == 1 and tag in PAPER_T1:
        want = PAPER_T1[tag]
        p = r["paper"]
        k = 0 if r["test_data"].startswith("BraTS21") else 1
        check(p is not None and p["protocol"].startswith("paper") and (p["dice_pct"], p["auprc_pct"]) == want[k]
              and p["parameters_m"] == want[2], f"{r['id']}: the paper's {tag} numbers {want[k]}, got {p}")

# The methods: exactly those asked for, each with its rows, names and models.
check(sorted({r.get("method_tag", "swinmae") for r in rows}) == sorted(methods),
      f"methods in the report {sorted({r.get('method_tag') for r in rows})}, want {sorted(methods)}")
masks = sorted({r["mask_size"] for r in rows if r["mask_size"] is not None})
for tag in methods:
    mine = [r for r in rows if r.get("method_tag", "swinmae") == tag]
    whole = [r for r in mine if r["mask_size"] is None]
    check(not whole or len(whole) == len(mine), f"{tag}: all rows masked or none")
    sets = {(r["train_data"], r["test_data"]) for r in mine}
    check(len(mine) == len(sets) * (1 if whole else len(masks)), f"{tag}: one row per set (and mask size)")
    pre = "" if tag == "swinmae" else tag
    for r in mine:
        check(r["id"].startswith(pre + "_" if pre else "ixi-"), f"{r['id']}: row named after {tag}")
        check(r["model"].startswith(pre + "-" if pre else "ixi-"), f"{r['model']}: model named after {tag}")
        check((r["mask_size"] is None) == (not re.search(r"_m\d+$", r["id"])), f"{r['id']}: mask suffix")
        if r["status"] == "ok":
            ckpt = os.path.join(run, "models", r["model"], "last.safetensors")
            with open(ckpt, "rb") as f:
                n = struct.unpack("<Q", f.read(8))[0]
                meta = json.loads(f.read(n)).get("__metadata__", {})
            check(meta.get("anoswin.method") == tag, f"{ckpt}: tagged {meta.get('anoswin.method')}, want {tag}")
            sub = json.load(open(os.path.join(run, r["report_json"])))
            check(sub["method"].startswith(r["method"].split(" (")[0]), f"{r['id']}: eval method {sub['method']!r}")

with open(os.path.join(run, "report.csv"), newline="") as f:
    c = list(csv.DictReader(f))
ids = {r["id"] for r in rows}
check({x["row"] for x in c} == ids, "csv rows = json rows")
by_id = {r["id"]: r for r in rows}
for x in c:
    check(x["method"] == by_id.get(x["row"], {}).get("method"), f"csv method {x['method']!r} = json's")
    check(x["table"] == str(table), "csv table")
    check(x["source"] in ("anoswin", "paper"), "csv source")
    check(x["status"] in ("ok", "skipped", "failed"), "csv status")
    if x["report"]:
        check(os.path.isfile(os.path.join(run, x["report"])), f"csv report {x['report']} exists")
    if x["source"] == "paper":
        check("reference code" in x["protocol"], "paper protocol labelled")
ours_csv = [x for x in c if x["source"] == "anoswin" and x["status"] == "ok"]
check(len(ours_csv) == sum(len(r["ours"]) for r in ok), "csv has every line of ours")
for x in ours_csv:
    r = next(r for r in ok if r["id"] == x["row"])
    o = next(o for o in r["ours"] if o["protocol"] == x["protocol"] and o["aggregation"] == x["aggregation"])
    check(abs(float(x["dice_pct"]) - o["dice_pct"]) < 1e-3, "csv dice = json dice")

# Every local reference of every HTML page exists.
pages = [os.path.join(run, "report.html")] + [os.path.join(run, r["report"]) for r in ok]
for p in pages:
    html = open(p, encoding="utf-8").read()
    check(html.rstrip().endswith("</html>"), f"{p} complete")
    for ref in re.findall(r'(?:href|src)="([^"]+)"', html):
        if re.match(r"^(https?:|data:|#)", ref):
            check(not ref.startswith("http"), f"{p}: network reference {ref}")
            continue
        check(os.path.exists(os.path.join(os.path.dirname(p), ref)), f"{p}: {ref} exists")

for f_ in fails:
    print("FAIL:", f_)
print(f"experiment_report_check: {len(fails)} problem(s)")
sys.exit(1 if fails else 0)
