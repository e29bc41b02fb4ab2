#!/usr/bin/env python3
"""The PyTorch side of `anoswin bench train`: times full training steps (forward, backward,
AdamW) of the reference model (tools/swin_mae_ref.py) on random images and reference window
masks, DropPath on, as in training.

usage: torch_train_step.py --batch B --threads T --steps N [--config C] [--warmup W]
prints one JSON line: {"img_per_s": ..., "step_s": ..., "loss": ..., "torch": "..."}
"""
import argparse
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import swin_mae_ref as R  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--config", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = R.parse_config(a.config)
    model = R.SwinMAE(cfg)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(a.batch, cfg["in_chans"], cfg["img_size"], cfg["img_size"], generator=g)
    mask = R.window_mask(a.batch, cfg, ratio=0.35, generator=g)

    def step():
        opt.zero_grad(set_to_none=True)
        loss, _ = model(x, mask)
        loss.backward()
        opt.step()
        return float(loss)

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    dt = (time.perf_counter() - t0) / a.steps
    print(json.dumps({"img_per_s": a.batch / dt, "step_s": dt, "loss": loss, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
