#!/usr/bin/env python3
"""Per-layer PyTorch references for tests/test_nn_conv.c (the convolutional baselines' layers).

Usage: nn_conv_ref.py OUTDIR

Writes raw little-endian float32 (.f32) files: random inputs, parameters and upstream gradients,
and torch autograd's outputs and gradients, computed in float64 from float32-rounded inputs. The
shapes below must match the C test; odd sizes, stride 2, padding and batches > 1 are deliberate
(a transposed index or a dropped border shows up there, not on square powers of two).
"""
import os
import sys

import torch
import torch.nn.functional as F

torch.manual_seed(4321)
torch.set_default_dtype(torch.float64)
OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)


def save(name, t):
    t.detach().cpu().numpy().astype("<f4").tofile(os.path.join(OUT, name + ".f32"))


def rnd(*shape, scale=1.0):
    # Rounded to float32 so that the C side sees exactly the same values.
    return (torch.randn(*shape) * scale).float().double().requires_grad_(True)


def case_conv(tag, B, IC, H, W, OC, k, s, p, bias=True):
    x, w = rnd(B, IC, H, W), rnd(OC, IC, k, k, scale=0.3)
    b = rnd(OC) if bias else None
    y = F.conv2d(x, w, b, stride=s, padding=p)
    g = rnd(*y.shape)
    y.backward(g)
    d = dict(x=x, w=w, g=g, y=y, dx=x.grad, dw=w.grad)
    if bias:
        d.update(b=b, db=b.grad)
    for n, t in d.items():
        save(tag + "_" + n, t)


def case_convt(tag, B, IC, H, W, OC, k, s, p, op, bias=True):
    x, w = rnd(B, IC, H, W), rnd(IC, OC, k, k, scale=0.3)
    b = rnd(OC) if bias else None
    y = F.conv_transpose2d(x, w, b, stride=s, padding=p, output_padding=op)
    g = rnd(*y.shape)
    y.backward(g)
    d = dict(x=x, w=w, g=g, y=y, dx=x.grad, dw=w.grad)
    if bias:
        d.update(b=b, db=b.grad)
    for n, t in d.items():
        save(tag + "_" + n, t)


def case_bn(tag, B, C, H, W, training):
    bn = torch.nn.BatchNorm2d(C)  # eps 1e-5, momentum 0.1
    with torch.no_grad():
        bn.weight.copy_(rnd(C))
        bn.bias.copy_(rnd(C))
        bn.running_mean.copy_(rnd(C))
        bn.running_var.copy_(rnd(C).abs() + 0.5)
    save(tag + "_rm0", bn.running_mean)
    save(tag + "_rv0", bn.running_var)
    bn.train(training)
    x = (torch.randn(B, C, H, W) * 2.5 + 0.7).float().double().requires_grad_(True)
    y = bn(x)
    g = rnd(*y.shape)
    y.backward(g)
    for n, t in dict(x=x, w=bn.weight, b=bn.bias, g=g, y=y, dx=x.grad, dw=bn.weight.grad, db=bn.bias.grad,
                     rm=bn.running_mean, rv=bn.running_var).items():
        save(tag + "_" + n, t)


def case_pointwise():
    x = (torch.linspace(-6, 6, 1001) + 0.003).float().double()
    x[500] = 0.0  # the kink of the ReLUs: PyTorch's gradient there is the negative side's
    g = rnd(1001)
    save("pw_x", x)
    save("pw_g", g)
    for tag, fn in (("leaky03", lambda t: F.leaky_relu(t, 0.3)), ("leaky001", lambda t: F.leaky_relu(t, 0.01)),
                    ("relu", F.relu), ("sigmoid", torch.sigmoid), ("tanh", torch.tanh)):
        xi = x.clone().requires_grad_(True)
        y = fn(xi)
        y.backward(g)
        save(tag + "_y", y)
        save(tag + "_dx", xi.grad)


def case_losses():
    n = 3 * 2 * 7 * 5
    pred, target = rnd(n), rnd(n)
    with torch.no_grad():
        pred[::7] = target[::7]  # ties: torch.sign(0) = 0 in the L1 gradient
    save("loss_pred", pred)
    save("loss_target", target)
    l1 = F.l1_loss(pred, target)  # mean
    l1.backward()
    save("l1_loss", l1.view(1))
    save("l1_dpred", pred.grad)
    pred.grad = None
    mse = F.mse_loss(pred, target, reduction="sum") / 3.0  # per-sample sum, batch mean
    mse.backward()
    save("mse_loss", mse.view(1))
    save("mse_dpred", pred.grad)


def case_kl():
    B, Z, beta = 3, 7, 0.7
    mu, ls, eps, gz = rnd(B, Z), rnd(B, Z, scale=0.5), rnd(B, Z), rnd(B, Z)
    z = mu + eps * torch.exp(ls)
    kl = 0.5 * torch.sum(mu ** 2 + torch.exp(ls) ** 2 - torch.log(torch.exp(ls) ** 2) - 1) / B
    (torch.sum(z * gz) + beta * kl).backward()
    for n, t in dict(mu=mu, ls=ls, eps=eps, gz=gz, z=z, kl=kl.view(1), dmu=mu.grad, dls=ls.grad).items():
        save("kl_" + n, t)


case_conv("conv_odd", 3, 3, 11, 9, 5, 3, 2, 1)        # odd sizes, stride 2, padding 1
case_conv("conv_baur", 2, 4, 16, 16, 6, 5, 2, 2)      # the VAE's 5x5 / 2 encoder convolution
case_conv("conv_dcgan", 2, 3, 10, 12, 4, 4, 2, 1)     # even kernel, rectangular
case_conv("conv_1x1", 1, 2, 7, 7, 3, 1, 1, 0, bias=False)
case_convt("convt_baur", 3, 4, 5, 7, 3, 5, 2, 2, 1)   # the VAE's decoder: doubles the size
case_convt("convt_dcgan", 2, 3, 6, 4, 5, 4, 2, 1, 0)
case_convt("convt_start", 2, 6, 1, 1, 4, 4, 1, 0, 0, bias=False)  # 1x1 latent to 4x4
case_convt("convt_odd", 1, 2, 5, 3, 3, 3, 2, 1, 0)    # odd output 9x5
case_bn("bn_train", 3, 5, 7, 5, True)
case_bn("bn_eval", 2, 4, 3, 5, False)
case_pointwise()
case_losses()
case_kl()
# 3x3, stride 1, padding 1: im2col below 16 channels, Winograd F(4x4, 3x3) from 16 (src/nn/conv.c).
# Odd sides leave half-empty tiles on the last row and column; a side of 1 leaves tiles with one row.
# Rows of 12 and 13 have tiles that the transforms read in place between the padded first and last.
case_conv("conv_3x3", 2, 3, 9, 7, 5, 3, 1, 1)
case_conv("wino_odd", 3, 16, 9, 7, 17, 3, 1, 1)
case_conv("wino_even", 2, 20, 8, 6, 16, 3, 1, 1, bias=False)
case_conv("wino_thin", 2, 16, 1, 2, 16, 3, 1, 1)
case_conv("wino_wide", 1, 32, 5, 5, 64, 3, 1, 1)
case_conv("wino_rows", 2, 16, 10, 13, 16, 3, 1, 1)
case_conv("wino_rows12", 1, 16, 6, 12, 16, 3, 1, 1, bias=False)
