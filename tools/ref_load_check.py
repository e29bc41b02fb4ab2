#!/usr/bin/env python3
"""Loads an anoswin model checkpoint into the PyTorch reference with strict=True, using the
config stored in its metadata, and runs one forward pass (finite loss).

usage: ref_load_check.py CHECKPOINT.safetensors
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
import swin_mae_ref as R  # noqa: E402


def main():
    torch.set_num_threads(1)
    tensors, meta = safetensors_io.load_file(sys.argv[1])
    cfg = R.parse_config(meta["anoswin.config"])
    model = R.SwinMAE(cfg)
    model.load_state_dict(tensors, strict=True)
    R.set_drop_path(model, False)
    model.eval()
    x = torch.rand(2, cfg["in_chans"], cfg["img_size"], cfg["img_size"], generator=torch.Generator().manual_seed(0))
    mask = R.window_mask(2, cfg, ratio=0.35, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        loss, _ = model(x, mask)
    if not math.isfinite(float(loss)):
        sys.exit("%s: non-finite loss in PyTorch" % sys.argv[1])
    print("%s: loads strictly into the PyTorch reference (%d tensors, loss %.5f)" % (sys.argv[1], len(tensors),
                                                                                     float(loss)))


if __name__ == "__main__":
    main()
