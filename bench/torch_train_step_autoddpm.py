#!/usr/bin/env python3
"""The PyTorch side of `anoswin bench train --method autoddpm`: times the same step as anoswin's
autoDDPM train_batch + AdamW on random images (tools/autoddpm_ref.py's model, float32): t drawn
uniformly from the schedule's steps, Gaussian noise, x_t = sqrt(acp) x + sqrt(1 - acp) noise, the
U-Net's epsilon prediction, MSE against the noise, backward, one AdamW step.

usage: torch_train_step_autoddpm.py --batch B --threads T --steps N [--config C] [--warmup W]
prints one JSON line: {"img_per_s": ..., "step_s": ..., "loss": ..., "torch": "..."}
"""
import argparse
import json
import os
import re
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import autoddpm_ref as R  # noqa: E402


def parse_config(text):
    """The config as anoswin takes it: a JSON file or object, or a key=value list."""
    if not text:
        return {}
    if os.path.isfile(text):
        text = open(text).read()
    text = text.strip()
    if text.startswith("{"):
        return json.loads(text)
    out = {}
    for part in filter(None, re.split(r"\s*,\s*", text)):
        k, v = part.split("=", 1)
        k = k.strip()
        out[k] = type(R.DEFAULTS[k])(v) if not isinstance(R.DEFAULTS[k], str) else v
    return out


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
    cfg = dict(R.DEFAULTS, **parse_config(a.config))
    m = R.DDPM(cfg).float()
    acp = m.acp.float()
    m.train()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(a.batch, cfg["in_chans"], cfg["img_size"], cfg["img_size"], generator=g)

    def step():
        opt.zero_grad(set_to_none=True)
        t = torch.randint(0, cfg["timesteps"], (a.batch,), generator=g)
        noise = torch.randn(x.shape, generator=g)
        a_t = acp[t].view(-1, 1, 1, 1)
        xt = a_t.sqrt() * x + (1 - a_t).sqrt() * noise
        loss = F.mse_loss(m.unet(xt, t.float()), noise)
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
