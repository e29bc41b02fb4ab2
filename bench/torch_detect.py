#!/usr/bin/env python3
"""The PyTorch side of `anoswin bench detect`: the sliding-mask anomaly map of the same slices,
with the same weights and the same masked-variant batches, through the reference model
(tools/swin_mae_ref.py) in eval mode; times it and checks the maps against anoswin's.

usage: torch_detect.py --dir D --mask-size M --batch B --threads T
  D/ckpt.safetensors           the weights (with "anoswin.config")
  D/slices.f32                 (n, S, S) grey slices in [0,1]
  D/windows_M.i32              rows (slice, x0, y0, w, h): the windows anoswin scored, in its order
  D/map_M.f32                  (n, S, S) anoswin's maps
prints one JSON line: {"sec_per_slice": ..., "cpu_per_slice": ..., "max_map_diff": ..., "forwards": ..., "torch": "..."}
The token mask of a window (a token is masked when its patch lies inside the window) and the
map (mean-over-channels L1 residual, per-window min-max, slice max) are computed here independently.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import safetensors_io  # noqa: E402
import swin_mae_ref as R  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--mask-size", type=int, required=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    sd, meta = safetensors_io.load_file(os.path.join(a.dir, "ckpt.safetensors"))
    cfg = R.parse_config(meta["anoswin.config"])
    model = R.SwinMAE(cfg)
    model.load_state_dict(sd, strict=True)
    model.eval()
    R.set_drop_path(model, False)
    S, P, C = cfg["img_size"], cfg["patch_size"], cfg["in_chans"]
    G = S // P
    sl = np.fromfile(os.path.join(a.dir, "slices.f32"), dtype="<f4")
    n = sl.size // (S * S)
    sl = sl.reshape(n, S, S)
    win = np.fromfile(os.path.join(a.dir, "windows_%d.i32" % a.mask_size), dtype="<i4").reshape(-1, 5)
    ref = np.fromfile(os.path.join(a.dir, "map_%d.f32" % a.mask_size), dtype="<f4").reshape(n, S, S)
    ty, tx = np.mgrid[0:G, 0:G] * P
    with torch.no_grad():   # warm-up (allocator, thread pool), untimed
        model(torch.from_numpy(np.repeat(sl[:1, None], C, axis=1)), torch.zeros(1, G * G))
    total, cpu, diff, forwards = 0.0, 0.0, 0.0, 0
    for k in range(n):
        ws = win[win[:, 0] == k]
        t0, c0 = time.perf_counter(), time.process_time()
        img = torch.from_numpy(sl[k])
        m = torch.zeros(S, S)
        for first in range(0, len(ws), a.batch):
            wb = ws[first:first + a.batch]
            B = len(wb)
            masks = np.stack([((tx >= x0) & (tx + P <= x0 + w) & (ty >= y0) & (ty + P <= y0 + h)).reshape(-1)
                              for _, x0, y0, w, h in wb]).astype(np.float32)
            x = img[None, None].expand(B, C, S, S).contiguous()
            with torch.no_grad():
                _, pred = model(x, torch.from_numpy(masks))
                rec = model.unpatchify(pred)
            forwards += B
            r = (img[None, None] - rec).abs().mean(1)   # (B, S, S)
            for b, (_, x0, y0, w, h) in enumerate(wb):
                v = r[b, y0:y0 + h, x0:x0 + w]
                lo, hi = v.min(), v.max()
                m[y0:y0 + h, x0:x0 + w] = (v - lo) / (hi - lo) if hi > lo else torch.zeros_like(v)
        if m.max() > 0:
            m = m / m.max()
        total += time.perf_counter() - t0
        cpu += time.process_time() - c0
        diff = max(diff, float(np.abs(m.numpy() - ref[k]).max()))
    print(json.dumps({"sec_per_slice": total / n, "cpu_per_slice": cpu / n, "max_map_diff": diff, "forwards": forwards,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
