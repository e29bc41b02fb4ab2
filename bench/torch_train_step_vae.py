#!/usr/bin/env python3
"""The PyTorch side of `anoswin bench train --method vae`: times the same step as anoswin's VAE
train_batch + AdamW on random images (tools/vae_ref.py's model, training mode): fresh
reparameterisation noise and dropout scales, the forward, the L1 + beta KL loss, its backward and
one AdamW step.

usage: torch_train_step_vae.py --batch B --threads T --steps N [--config C] [--warmup W]
prints one JSON line: {"img_per_s": ..., "step_s": ..., "loss": ..., "torch": "..."}
"""
import torch

from torch_bench_common import options, time_steps
import vae_ref as R  # noqa: E402 (tools/, on the path torch_bench_common sets)
from ref_model_common import parse_config  # noqa: E402


def main():
    a = options()
    m = R.VAE(**parse_config(a.config))
    m.train()
    c = m.c
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(a.batch, c["in_chans"], c["img_size"], c["img_size"], generator=g)
    flat = m.c8 * c["res"] ** 2
    keep = 1.0 / (1.0 - c["dropout"])

    def step():
        opt.zero_grad(set_to_none=True)
        eps = torch.randn(a.batch, c["z_dim"], generator=g)
        drop = [(torch.rand(a.batch, n, generator=g) >= c["dropout"]).float() * keep
                for n in (c["z_dim"], c["z_dim"], flat)]
        y, mu, ls = m(x, eps, drop)
        loss, _, _ = m.loss(x, y, mu, ls)
        loss.backward()
        opt.step()
        return float(loss)

    time_steps(step, a)


if __name__ == "__main__":
    main()
