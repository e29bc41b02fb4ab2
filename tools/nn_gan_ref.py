#!/usr/bin/env python3
"""Per-layer PyTorch references for tests/test_nn_gan.c (the f-AnoGAN baseline's layers).

Usage: nn_gan_ref.py OUTDIR

Writes raw little-endian float32 (.f32) files: random inputs and upstream gradients and torch
autograd's results in float64 from float32-rounded inputs. Shapes must match the C test.
  pool   2x2 mean pooling (F.avg_pool2d(x, 2)): y, dx
  up     nearest 2x upsampling (F.interpolate(..., scale_factor=2, mode="nearest")): y, dx
  ln     per-sample LayerNorm over (C, H, W), per-channel affine, eps 1e-5 (tflib's Layernorm):
         y, dx, dw, db; the tangent yt = J·xt; and the reverse of (y, yt) given adjoints g, h:
         the gradients of sum(g*y) + sum(h*yt) with respect to x, xt, w, b, taken by torch's
         double backward (yt is itself built with autograd.grad(..., create_graph=True))
  gp     lambda * mean_b (||g_b|| - 1)^2 and its gradient
"""
import os
import sys

import torch
import torch.nn.functional as F

torch.manual_seed(2468)
torch.set_default_dtype(torch.float64)
OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)


def save(name, t):
    t.detach().cpu().numpy().astype("<f4").tofile(os.path.join(OUT, name + ".f32"))


def rnd(*shape, scale=1.0, shift=0.0):
    return (torch.randn(*shape) * scale + shift).float().double().requires_grad_(True)


def ln2d(x, w, b, eps=1e-5):
    mu = x.mean(dim=(1, 2, 3), keepdim=True)
    var = ((x - mu) ** 2).mean(dim=(1, 2, 3), keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w.view(1, -1, 1, 1) + b.view(1, -1, 1, 1)


def case_pool():
    x = rnd(2, 3, 6, 10)
    y = F.avg_pool2d(x, 2)
    g = rnd(*y.shape)
    y.backward(g)
    for n, t in dict(x=x, g=g, y=y, dx=x.grad).items():
        save("pool_" + n, t)


def case_up():
    x = rnd(5, 1, 3, 4)
    y = F.interpolate(x, scale_factor=2, mode="nearest")
    g = rnd(*y.shape)
    y.backward(g)
    for n, t in dict(x=x, g=g, y=y, dx=x.grad).items():
        save("up_" + n, t)


def case_ln():
    B, C, H, W = 3, 5, 3, 7
    x = rnd(B, C, H, W, scale=2.0, shift=0.5)
    w, b = rnd(C, scale=0.5, shift=1.0), rnd(C, scale=0.3)
    xt = rnd(B, C, H, W)
    g, h = rnd(B, C, H, W), rnd(B, C, H, W)
    y = ln2d(x, w, b)
    dx, dw, db = torch.autograd.grad(y, [x, w, b], g, retain_graph=True)
    # yt = J xt by the double-vjp trick: s = Jᵀ v is linear in v, so d<s, xt>/dv = J xt.
    v = torch.zeros_like(y, requires_grad=True)
    (s,) = torch.autograd.grad(y, x, v, create_graph=True)
    (yt,) = torch.autograd.grad(s, v, xt, create_graph=True)
    L = (g * y).sum() + (h * yt).sum()
    ddx, ddxt, ddw, ddb = torch.autograd.grad(L, [x, xt, w, b])
    for n, t in dict(x=x, w=w, b=b, xt=xt, g=g, h=h, y=y, dx=dx, dw=dw, db=db, yt=yt, ddx=ddx, ddxt=ddxt,
                     ddw=ddw, ddb=ddb).items():
        save("ln_" + n, t)


def case_gp():
    B, n, lam = 4, 23, 10.0
    g = rnd(B, n, scale=0.3)
    with torch.no_grad():
        g[1] *= 0.05  # one norm below 1, one above: both signs of (||g|| - 1)
        g[2] *= 4.0
    loss = lam * ((g.norm(2, dim=1) - 1) ** 2).mean()
    (dg,) = torch.autograd.grad(loss, g)
    for k, t in dict(g=g, loss=loss.view(1), dg=dg).items():
        save("gp_" + k, t)


case_pool()
case_up()
case_ln()
case_gp()
