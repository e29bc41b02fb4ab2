#!/usr/bin/env python3
"""Compares the F32 tensors of two safetensors files (written by anoswin or anyone) with plain
numpy: prints the relative L2 difference ||a-b|| / ||b|| over all of them together, the worst
tensor and the largest absolute difference; exits 1 when the relative difference (with
--per-tensor: that of any one tensor) exceeds --rtol, or the files hold different tensors.
Used by tests/test_train_mpi.sh (np=2 x b vs np=1 x 2b)."""
import argparse
import json
import struct
import sys

import numpy as np


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, t in header.items():
        if name == "__metadata__" or t["dtype"] != "F32":
            continue
        b, e = t["data_offsets"]
        out[name] = np.frombuffer(data[base + b:base + e], dtype="<f4").reshape(t["shape"]).astype(np.float64)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--rtol", type=float, default=1e-5)
    ap.add_argument("--per-tensor", action="store_true")
    args = ap.parse_args()
    a, b = load(args.a), load(args.b)
    if sorted(a) != sorted(b):
        print("different tensor names")
        return 1
    num = den = 0.0
    worst, worst_rel, max_abs = None, 0.0, 0.0
    for k in a:
        d = a[k] - b[k]
        dn, rn = float(np.sum(d * d)), float(np.sum(b[k] * b[k]))
        num += dn
        den += rn
        rel = (dn / rn) ** 0.5 if rn > 0 else (dn ** 0.5)
        if rel > worst_rel:
            worst, worst_rel = k, rel
        if d.size:
            max_abs = max(max_abs, float(np.max(np.abs(d))))
    rel = (num / den) ** 0.5 if den > 0 else num ** 0.5
    print(f"tensors {len(a)}  rel_l2 {rel:.3e}  worst {worst} {worst_rel:.3e}  max_abs {max_abs:.3e}")
    return 0 if (worst_rel if args.per_tensor else rel) <= args.rtol else 1


if __name__ == "__main__":
    sys.exit(main())
