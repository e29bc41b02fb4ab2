#!/usr/bin/env python3
"""The PyTorch side of `anoswin bench train --method fanogan`: times the same step as anoswin's
f-AnoGAN train_batch + AdamW on random images (tools/fanogan_ref.py's model): a WGAN-GP critic
step (gradient penalty by create_graph double backprop), a generator step and an izi_f encoder
step, each network's gradients from its own loss, then one AdamW step over all parameters.

usage: torch_train_step_fanogan.py --batch B --threads T --steps N [--config C] [--warmup W]
prints one JSON line: {"img_per_s": ..., "step_s": ..., "loss": ..., "torch": "..."}
"""
import argparse
import json
import os
import re
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import fanogan_ref as R  # noqa: E402


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
        out[k.strip()] = float(v) if re.search(r"[.eE]", v) else int(v)
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
    m = R.FAnoGAN(**parse_config(a.config))
    m.train()
    c = m.c
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(a.batch, c["in_chans"], c["img_size"], c["img_size"], generator=g) * 2 - 1
    critic, gen, enc = (list(getattr(m, k).parameters()) for k in ("critic", "generator", "encoder"))

    def step():
        opt.zero_grad(set_to_none=True)
        z = torch.randn(a.batch, c["z_dim"], generator=g)
        alpha = torch.rand(a.batch, generator=g)
        w, gp, _, _ = m.critic_loss(x, z, alpha)
        for p, d in zip(critic, torch.autograd.grad(w + gp, critic)):
            p.grad = d
        z = torch.randn(a.batch, c["z_dim"], generator=g)
        for p, d in zip(gen, torch.autograd.grad(m.generator_loss(z), gen)):
            p.grad = d
        m.generator.eval()
        loss, _, _, _ = m.izi_f(x)
        for p, d in zip(enc, torch.autograd.grad(loss, enc)):
            p.grad = d
        m.generator.train()
        opt.step()
        return float(w + gp)

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    dt = (time.perf_counter() - t0) / a.steps
    print(json.dumps({"img_per_s": a.batch / dt, "step_s": dt, "loss": loss, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
