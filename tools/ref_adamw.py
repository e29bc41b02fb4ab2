#!/usr/bin/env python3
"""Reference for anoswin's optimizer (src/train/adamw.c): torch.optim.AdamW and MAE's
lr_sched.adjust_learning_rate.

usage: ref_adamw.py DIR N STEPS LR0,LR1,... BETA1 BETA2 EPS WD
reads DIR/p0.f32 (N), DIR/g.f32 (STEPS, N); writes DIR/p_ref.f32 (STEPS, N) (parameters after
each step), DIR/m_ref.f32, DIR/v_ref.f32 (N) (moments after the last step).
Also reads DIR/sched_in.f32 (K, 5: epoch, lr, min_lr, warmup, epochs) and writes
DIR/sched_ref.f32 (K) when present.
"""
import math
import os
import sys

import numpy as np
import torch


def adjust_learning_rate(epoch, lr, min_lr, warmup_epochs, epochs):
    """MAE util/lr_sched.py: half-cycle cosine after warm-up."""
    if epoch < warmup_epochs:
        return lr * epoch / warmup_epochs
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * (epoch - warmup_epochs) / (epochs - warmup_epochs)))


def main():
    d, n, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    lrs = [float(v) for v in sys.argv[4].split(",")]
    b1, b2, eps, wd = (float(v) for v in sys.argv[5:9])
    p0 = np.fromfile(f"{d}/p0.f32", dtype="<f4")
    g = np.fromfile(f"{d}/g.f32", dtype="<f4").reshape(steps, n)
    p = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    opt = torch.optim.AdamW([p], lr=lrs[0], betas=(b1, b2), eps=eps, weight_decay=wd)
    out = np.zeros((steps, n), dtype=np.float32)
    for t in range(steps):
        for group in opt.param_groups:
            group["lr"] = lrs[t]
        p.grad = torch.from_numpy(g[t].copy())
        opt.step()
        out[t] = p.detach().numpy()
    out.astype("<f4").tofile(f"{d}/p_ref.f32")
    st = opt.state[p]
    st["exp_avg"].numpy().astype("<f4").tofile(f"{d}/m_ref.f32")
    st["exp_avg_sq"].numpy().astype("<f4").tofile(f"{d}/v_ref.f32")
    if os.path.exists(f"{d}/sched_in.f32"):
        s = np.fromfile(f"{d}/sched_in.f32", dtype="<f4").reshape(-1, 5).astype(np.float64)
        ref = np.array([adjust_learning_rate(*row) for row in s], dtype=np.float32)
        ref.astype("<f4").tofile(f"{d}/sched_ref.f32")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
