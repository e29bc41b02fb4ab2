#!/usr/bin/env python3
"""Checks an `anoswin eval` report as headless Chromium rendered it (tests/test_report_browser.sh).

Usage: report_browser_check.py RUN_DIR DOM.html SHOT.png CHROMIUM_LOG
DOM.html is Chromium's --dump-dom of RUN_DIR/report.html, SHOT.png its --screenshot, CHROMIUM_LOG
its stderr (--enable-logging=stderr). Passes when:
- the page reports no error: <pre id="page-errors"> (the report lists there every script or picture
  that did not load, every exception and console.error) is empty and hidden, and the log has no
  "Uncaught" console message;
- the viewer says it is ready (<html data-viewer="ready">, status "... shown") with every layer;
- the viewer's frame (its 2-px #334 border locates it in the screenshot) holds the scan (grey),
  the anomaly map (warm colours, outside the colour bar's rows), detect's mask outline (blue) and
  the ground-truth outline (green): the canvas is drawn, not blank;
- every panel picture the page shows exists, and the input, map, mask and ground-truth ones are not
  blank (more than one colour; a reconstruction may be uniform, as the fixture's is).
Exits non-zero with one line per failure.
"""
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from png_decode import decode  # noqa: E402

FRAME = (51, 51, 68)  # #334, the border of #nv-frame


def frame_box(img):
    """Inside of the largest rectangle drawn in the frame colour, or None."""
    hit = np.all(img[..., :3] == FRAME, axis=2)
    rows = np.where(hit.sum(axis=1) > 0.5 * img.shape[1])[0]
    cols = np.where(hit.sum(axis=0) > 100)[0]
    if len(rows) < 2 or len(cols) < 2 or rows.max() - rows.min() < 100 or cols.max() - cols.min() < 100:
        return None
    return rows.min() + 2, rows.max() - 1, cols.min() + 2, cols.max() - 1


def main():
    run, dom_path, shot, log = sys.argv[1:5]
    dom = open(dom_path, encoding="utf-8", errors="replace").read()
    errors = []

    m = re.search(r'<pre id="page-errors"([^>]*)>(.*?)</pre>', dom, re.S)
    if not m:
        errors.append("the page has no error list (<pre id=\"page-errors\">): no viewer section?")
    elif "hidden" not in m.group(1) or m.group(2).strip():
        errors.append("the page lists errors: " + re.sub(r"\s+", " ", m.group(2))[:400])
    uncaught = [ln for ln in open(log, errors="replace") if "CONSOLE" in ln and "Uncaught" in ln]
    if uncaught:
        errors.append("console: " + uncaught[0].strip()[:300])

    state = re.search(r'<html[^>]*data-viewer="([a-z]*)"', dom)
    status = re.search(r'<p id="nv-status">([^<]*)', dom)
    info = re.search(r'<p id="nv-info">([^<]*)', dom)
    if not state or state.group(1) != "ready" or not status or " shown" not in status.group(1):
        errors.append(f"viewer not ready: state {state and state.group(1)}, status {status and status.group(1)!r}")
    elif not info or "layers: scan, map, mask, gt" not in info.group(1):
        errors.append(f"viewer lacks a layer: {info and info.group(1)!r}")

    box = None
    if not os.path.exists(shot):
        errors.append(f"no screenshot {shot}: Chromium failed (its log: {log})")
    else:
        img, _ = decode(shot)
        box = frame_box(img)
        if box is None:
            errors.append("no viewer frame in the screenshot")
    if box is not None:
        y0, y1, x0, x1 = box
        c = img[y0:y1, x0:x1, :3].astype(np.int64)
        r, g, b = c[..., 0], c[..., 1], c[..., 2]
        area = c.shape[0] * c.shape[1]
        grey = (r == g) & (g == b) & (r > 20) & (r < 250)
        blue = (abs(r - 60) < 40) & (abs(g - 140) < 40) & (b > 215)
        green = (r < 90) & (g > 215) & (b < 90)
        warm = (r > 180) & (g > 40) & (b < 0.6 * g) & (r - b > 120)
        bar = warm.mean(axis=1) > 0.5  # the colour bar: rows that are mostly warm
        warm[bar] = False
        counts = {"scan (grey)": grey.sum(), "map (warm)": warm.sum(), "mask outline (blue)": blue.sum(),
                  "ground-truth outline (green)": green.sum()}
        print(f"viewer frame {x1 - x0}x{y1 - y0} px: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        need = {"scan (grey)": 0.02 * area, "map (warm)": 20, "mask outline (blue)": 20,
                "ground-truth outline (green)": 20}
        for k, v in counts.items():
            if v < need[k]:
                errors.append(f"viewer canvas: {k} {v} px, want >= {need[k]:.0f}")
        if not bar.any():
            errors.append("viewer canvas: no colour bar")

    pics = re.findall(r'<img src="(panels/[^"]+)"', dom)
    if not pics:
        errors.append("no panel pictures in the page")
    for p in pics:
        path = os.path.join(run, p)
        if not os.path.exists(path):
            errors.append(f"panel {p} missing")
            continue
        a, _ = decode(path)
        kind = p.rsplit("_", 1)[-1][:-4]
        if kind in ("input", "map", "mask", "gt") and len(np.unique(a.reshape(-1, a.shape[-1]), axis=0)) < 2:
            errors.append(f"panel {p} is blank")
    for e in errors:
        print("FAIL:", e)
    if not errors:
        print(f"report in the browser: viewer drawn, {len(pics)} panels drawn, no page error: OK")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
