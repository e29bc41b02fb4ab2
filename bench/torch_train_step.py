#!/usr/bin/env python3
"""The PyTorch side of `anoswin bench train`: times full training steps (forward, backward,
AdamW) of the reference model (tools/swin_mae_ref.py) on random images and reference window
masks, DropPath on, as in training.

usage: torch_train_step.py --batch B --threads T --steps N [--config C] [--warmup W]
prints one JSON line: {"img_per_s": ..., "step_s": ..., "loss": ..., "torch": "..."}
"""
import torch

from torch_bench_common import options, time_steps
import swin_mae_ref as R  # noqa: E402 (tools/, on the path torch_bench_common sets)


def main():
    a = options()
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

    time_steps(step, a)


if __name__ == "__main__":
    main()
