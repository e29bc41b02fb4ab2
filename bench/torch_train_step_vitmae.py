#!/usr/bin/env python3
"""The PyTorch side of `anoswin bench train --method vitmae`: times the same step as anoswin's
ViT MAE train_batch + AdamW on random images (tools/vitmae_ref.py's model, models_mae.py's code
path for images that hide the same number of tokens): forward with the masked MSE, backward,
one AdamW step. Masks as anoswin's bench draws them: 16 px units (one-patch units where the
patch is larger), 35% of them hidden.

usage: torch_train_step_vitmae.py --batch B --threads T --steps N [--config C] [--warmup W]
prints one JSON line: {"img_per_s": ..., "step_s": ..., "loss": ..., "torch": "..."}
"""
import json
import os
import re

import torch

from torch_bench_common import options, time_steps
import vitmae_ref as R  # noqa: E402 (tools/, on the path torch_bench_common sets)


def parse_config(text):
    """The config as anoswin takes it: a JSON file or object, or a key=value list in order (the
    `preset` key takes a name, the others integers)."""
    if not text:
        return {}
    if os.path.isfile(text):
        text = open(text).read()
    text = text.strip()
    if text.startswith("{"):
        return json.loads(text)
    out = {}
    for part in filter(None, re.split(r"\s*,\s*", text)):
        k, v = (x.strip() for x in part.split("=", 1))
        out[k] = v if k == "preset" else int(v)
    return out


def unit_mask(B, c, ratio, g):
    """anoswin's mask_generate without a brain mask: units of max(16 px, patch) cut the token
    grid; per image a random permutation keeps int(U * (1 - ratio)) units."""
    p, G = c["patch_size"], c["img_size"] // c["patch_size"]
    u = max(1, 16 // p) if 16 % p == 0 else 1
    ug = (G + u - 1) // u
    U = ug * ug
    keep = int(U * (1 - ratio))
    mask = torch.zeros(B, G, G, dtype=torch.uint8)
    for b in range(B):
        for k in torch.randperm(U, generator=g)[keep:].tolist():
            i, j = divmod(k, ug)
            mask[b, i * u:(i + 1) * u, j * u:(j + 1) * u] = 1
    return mask.view(B, G * G)


def main():
    a = options()
    m = R.MaskedAutoencoderViT(**parse_config(a.config))
    m.train()
    c = m.c
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-4, betas=(0.9, 0.95),
                            weight_decay=0.05)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(a.batch, c["in_chans"], c["img_size"], c["img_size"], generator=g)
    mask = unit_mask(a.batch, c, 0.35, g)

    def step():
        opt.zero_grad(set_to_none=True)
        loss, _ = m(x, mask)
        loss.backward()
        opt.step()
        return float(loss)

    time_steps(step, a)


if __name__ == "__main__":
    main()
