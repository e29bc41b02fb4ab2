#!/usr/bin/env python3
"""The PyTorch side of `anoswin bench train --method fanogan`: times the same step as anoswin's
f-AnoGAN train_batch + AdamW on random images (tools/fanogan_ref.py's model): a WGAN-GP critic
step (gradient penalty by create_graph double backprop), a generator step and an izi_f encoder
step, each network's gradients from its own loss, then one AdamW step over all parameters.

usage: torch_train_step_fanogan.py --batch B --threads T --steps N [--config C] [--warmup W]
prints one JSON line: {"img_per_s": ..., "step_s": ..., "loss": ..., "torch": "..."}
"""
import torch

from torch_bench_common import options, time_steps
import fanogan_ref as R  # noqa: E402 (tools/, on the path torch_bench_common sets)
from ref_model_common import parse_config  # noqa: E402


def main():
    a = options()
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

    time_steps(step, a)


if __name__ == "__main__":
    main()
