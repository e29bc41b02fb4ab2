#!/usr/bin/env python3
"""Independent FLOP count of the Swin MAE forward pass: torch.profiler's with_flops counts of
the matrix products (conv2d, addmm, mm, bmm) while tools/swin_mae_ref.py runs one image.

usage: ref_flops.py OUT.f32 [CONFIG]   writes one float32: GFLOP per image (forward)
"""
import os
import sys

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import swin_mae_ref as R  # noqa: E402


def main():
    torch.set_num_threads(1)
    cfg = R.parse_config(sys.argv[2] if len(sys.argv) > 2 else None)
    model = R.SwinMAE(cfg)
    R.set_drop_path(model, False)
    x = torch.rand(1, cfg["in_chans"], cfg["img_size"], cfg["img_size"])
    mask = R.window_mask(1, cfg, ratio=0.35, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        model(x, mask)
    products = ("aten::conv2d", "aten::addmm", "aten::mm", "aten::bmm", "aten::matmul")
    total = sum(e.flops for e in prof.key_averages() if e.key in products and e.flops)
    np.array([total / 1e9], dtype="<f4").tofile(sys.argv[1])


if __name__ == "__main__":
    main()
