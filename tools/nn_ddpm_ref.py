#!/usr/bin/env python3
"""Per-layer PyTorch references for tests/test_nn_ddpm.c (the diffusion U-Net's layers).

Usage: nn_ddpm_ref.py OUTDIR

Writes raw little-endian float32 (.f32) files: random inputs, parameters and upstream gradients,
and torch autograd's outputs and gradients, computed in float64 from float32-rounded inputs:
GroupNorm (torch.nn.functional.group_norm), SiLU, nearest 2x upsampling (F.interpolate), the
sinusoidal timestep embedding (MONAI generative's get_timestep_embedding, in float64) and
multi-head full self-attention over tokens (softmax(q kᵀ / sqrt(hd)) v). Shapes must match the C
test; odd sizes and several groups / heads are deliberate.
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

torch.manual_seed(2023)
torch.set_default_dtype(torch.float64)
OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)


def save(name, t):
    t.detach().cpu().numpy().astype("<f4").tofile(os.path.join(OUT, name + ".f32"))


def rnd(*shape, scale=1.0, shift=0.0):
    return (torch.randn(*shape) * scale + shift).float().double().requires_grad_(True)


def dump(tag, **d):
    for n, t in d.items():
        save(tag + "_" + n, t)


def case_groupnorm(tag, B, C, H, W, G):
    x, w, b = rnd(B, C, H, W, scale=2.0, shift=0.5), rnd(C), rnd(C)
    y = F.group_norm(x, G, w, b, eps=1e-6)
    g = rnd(*y.shape)
    y.backward(g)
    dump(tag, x=x, w=w, b=b, g=g, y=y, dx=x.grad, dw=w.grad, db=b.grad)


def case_silu():
    x = rnd(1003, scale=3.0)
    y = F.silu(x)
    g = rnd(*y.shape)
    y.backward(g)
    dump("silu", x=x, g=g, y=y, dx=x.grad)


def case_upsample(B, C, H, W):
    x = rnd(B, C, H, W)
    y = F.interpolate(x, scale_factor=2.0, mode="nearest")
    g = rnd(*y.shape)
    y.backward(g)
    dump("up", x=x, g=g, y=y, dx=x.grad)


def timestep_embedding(t, dim, max_period=10000):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float64) / half)
    args = t[:, None] * freqs[None, :]
    e = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return F.pad(e, (0, 1, 0, 0)) if dim % 2 else e


def case_temb():
    t = torch.tensor([0.0, 1.0, 17.0, 500.0, 999.0])
    save("temb_t", t)
    save("temb_10", timestep_embedding(t, 10))
    save("temb_7", timestep_embedding(t, 7))


def case_attention(tag, B, T, C, heads):
    qkv = rnd(B * T, 3 * C)
    hd = C // heads
    q, k, v = qkv.view(B, T, 3, heads, hd).permute(2, 0, 3, 1, 4)  # (B, heads, T, hd) each
    p = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), dim=-1)
    y = (p @ v).permute(0, 2, 1, 3).reshape(B * T, C)
    g = rnd(*y.shape)
    y.backward(g)
    dump(tag, qkv=qkv, g=g, y=y, dqkv=qkv.grad)


case_groupnorm("gn3", 2, 12, 5, 7, 3)
case_groupnorm("gn1", 3, 4, 3, 3, 1)
case_groupnorm("gnc", 1, 6, 4, 5, 6)  # one channel per group (InstanceNorm-like)
case_silu()
case_upsample(2, 3, 3, 5)
case_temb()
case_attention("attn2", 2, 13, 12, 3)
case_attention("attn1", 1, 70, 16, 1)  # one head, T past the window path's 64-token tiles
case_attention("attn3", 2, 200, 16, 2)  # four row blocks of the full attention, the last partial
