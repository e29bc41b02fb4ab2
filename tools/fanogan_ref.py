#!/usr/bin/env python3
"""PyTorch reference of anoswin's f-AnoGAN baseline (src/model/fanogan/, docs/baselines.md):
Schlegl et al. 2019 as their code builds it (tSchlegl/f-AnoGAN wgangp_64x64.py and
z_encoding_izif.py, on Gulrajani et al.'s ResNet WGAN-GP), in PyTorch with PyTorch's conventions.
Its state_dict names are the checkpoint's tensor names.

Usage:
  fanogan_ref.py dump OUTDIR        small-config parity case for tests/test_model_fanogan.c
  fanogan_ref.py load CKPT          loads an anoswin checkpoint with strict=True and prints its
                                    parameter counts
  fanogan_ref.py check CKPT X.f32 Y.f32 B
                                    loads an anoswin checkpoint with strict=True (config from its
                                    metadata), reconstructs X (B images in [0, 1]) as the method
                                    does, (G(E(2x - 1)) + 1) / 2 in evaluation mode, and compares
                                    with Y within 1e-4
  fanogan_ref.py names [CONFIG]     the state_dict table and counts (ref_model_common.print_names)
"""
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_model_common import f32, load_checkpoint, parse_config, perturb, print_names, read_images, saver, save_checkpoint  # noqa: E402,E501

DEFAULTS = dict(img_size=64, in_chans=1, patch_size=8, dim=64, z_dim=128, n_critic=5, gp_lambda=10.0, kappa=1.0,
                lr=1e-4, beta1=0.0, beta2=0.9, enc_lr=5e-5, gan_frac=0.5)


class LayerNorm2d(nn.Module):
    """tflib's Layernorm(name, [1, 2, 3], x): statistics over (C, H, W) per sample, affine per channel."""

    def __init__(self, C):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(C))
        self.bias = nn.Parameter(torch.zeros(C))

    def forward(self, x):
        mu = x.mean(dim=(1, 2, 3), keepdim=True)
        var = ((x - mu) ** 2).mean(dim=(1, 2, 3), keepdim=True)
        return (x - mu) / torch.sqrt(var + 1e-5) * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class DownBlock(nn.Module):
    """ResidualBlock(resample='down'): MeanPoolConv shortcut, norm-ReLU-conv-norm-ReLU-ConvMeanPool."""

    def __init__(self, cin, cout, bn):
        super().__init__()
        norm = nn.BatchNorm2d if bn else LayerNorm2d
        self.shortcut = nn.Conv2d(cin, cout, 1)
        self.norm1 = norm(cin)
        self.conv1 = nn.Conv2d(cin, cin, 3, padding=1, bias=False)
        self.norm2 = norm(cin)
        self.conv2 = nn.Conv2d(cin, cout, 3, padding=1)

    def forward(self, x):
        sc = self.shortcut(F.avg_pool2d(x, 2))
        h = self.conv1(F.relu(self.norm1(x)))
        h = self.conv2(F.relu(self.norm2(h)))
        return F.avg_pool2d(h, 2) + sc


class UpBlock(nn.Module):
    """ResidualBlock(resample='up'): UpsampleConv shortcut, BN-ReLU-UpsampleConv-BN-ReLU-conv."""

    def __init__(self, cin, cout):
        super().__init__()
        self.shortcut = nn.Conv2d(cin, cout, 1)
        self.norm1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)

    def forward(self, x):
        up = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")  # noqa: E731
        sc = self.shortcut(up(x))
        h = self.conv1(up(F.relu(self.norm1(x))))
        h = self.conv2(F.relu(self.norm2(h)))
        return h + sc


def channels(c):
    n = int(round(math.log2(c["img_size"] // 4)))
    return n, [c["dim"] * min(8, 2 ** i) for i in range(n + 1)]


class Generator(nn.Module):
    def __init__(self, c):
        super().__init__()
        n, ch = channels(c)
        self.top = ch[n]
        self.input = nn.Linear(c["z_dim"], 16 * ch[n])
        self.blocks = nn.ModuleList(UpBlock(ch[n - j], ch[n - j - 1]) for j in range(n))
        self.out_norm = nn.BatchNorm2d(ch[0])
        self.output = nn.Conv2d(ch[0], c["in_chans"], 3, padding=1)

    def forward(self, z):
        h = self.input(z).view(-1, self.top, 4, 4)
        for b in self.blocks:
            h = b(h)
        return torch.tanh(self.output(F.relu(self.out_norm(h))))


class Down(nn.Module):
    """The critic (LayerNorm, one output) or the encoder (BatchNorm, z_dim outputs)."""

    def __init__(self, c, bn, out_dim):
        super().__init__()
        n, ch = channels(c)
        self.input = nn.Conv2d(c["in_chans"], ch[0], 3, padding=1)
        self.blocks = nn.ModuleList(DownBlock(ch[i], ch[i + 1], bn) for i in range(n))
        self.output = nn.Linear(16 * ch[n], out_dim)

    def forward(self, x):
        h = self.input(x)
        for b in self.blocks:
            h = b(h)
        f = h.flatten(1)
        return self.output(f), f


class FAnoGAN(nn.Module):
    def __init__(self, **kw):
        super().__init__()
        c = dict(DEFAULTS, **kw)
        self.c = c
        self.generator = Generator(c)
        self.critic = Down(c, False, 1)
        self.encoder = Down(c, True, c["z_dim"])

    def critic_loss(self, real, z, alpha):
        """Stage 1, the critic's loss: WGAN + gradient penalty (create_graph double backprop)."""
        fake = self.generator(z).detach()
        d_real, d_fake = self.critic(real)[0].mean(), self.critic(fake)[0].mean()
        x_hat = (real + alpha.view(-1, 1, 1, 1) * (fake - real)).requires_grad_(True)
        (g,) = torch.autograd.grad(self.critic(x_hat)[0].sum(), x_hat, create_graph=True)
        gp = self.c["gp_lambda"] * ((g.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
        return d_fake - d_real, gp, d_real, d_fake

    def generator_loss(self, z):
        return -self.critic(self.generator(z))[0].mean()

    def izi_f(self, x):
        """Stage 2: MSE(x, G(E(x))) + kappa * MSE(f(x), f(G(E(x)))), f = the critic's features."""
        xr = self.generator(self.encoder(x)[0])
        fr, fx = self.critic(xr)[1], self.critic(x)[1]
        rec, feat = F.mse_loss(xr, x), F.mse_loss(fr, fx)
        return rec + self.c["kappa"] * feat, rec, feat, xr


def dump(out):
    save = saver(out)
    torch.manual_seed(1234)
    torch.set_default_dtype(torch.float64)
    cfg = dict(img_size=16, in_chans=2, patch_size=4, dim=3, z_dim=5, kappa=0.7, gp_lambda=10.0)
    B = 3
    m = FAnoGAN(**cfg)
    perturb(m, lambda name: ".norm" in name, 3)
    save_checkpoint(m, os.path.join(out, "ref.safetensors"), "fanogan", dict(DEFAULTS, **cfg))
    shape = (B, cfg["in_chans"], cfg["img_size"], cfg["img_size"])
    real = f32(torch.rand(*shape) * 2 - 1)
    x = f32(torch.rand(*shape) * 2 - 1)
    z, z2 = f32(torch.randn(B, cfg["z_dim"])), f32(torch.randn(B, cfg["z_dim"]))
    alpha = f32(torch.rand(B))
    for k, t in dict(real=real, x=x, z=z, z2=z2, alpha=alpha).items():
        save(k, t)
    m.train()
    cp = list(m.critic.named_parameters())
    gp_ = list(m.generator.named_parameters())
    ep = list(m.encoder.named_parameters())

    # Stage 1, critic step (G in training mode: its running statistics move).
    w, gp, d_real, d_fake = m.critic_loss(real, z, alpha)
    grads = torch.autograd.grad(w + gp, [p for _, p in cp], retain_graph=True)
    # The output bias does not enter the input gradient: its penalty gradient is 0 (None here).
    gp_grads = torch.autograd.grad(gp, [p for _, p in cp], allow_unused=True)
    for (name, p), g, h in zip(cp, grads, gp_grads):
        save("critic_grad__critic." + name, g)
        save("gp_grad__critic." + name, h if h is not None else torch.zeros_like(p))
    for k, t in dict(critic_loss=w + gp, gp=gp, d_real=d_real, d_fake=d_fake).items():
        save(k, t.view(1))

    # Stage 1, generator step.
    lg = m.generator_loss(z2)
    grads = torch.autograd.grad(lg, [p for _, p in gp_])
    for (name, _), g in zip(gp_, grads):
        save("gen_grad__generator." + name, g)
    save("gen_loss", lg.view(1))
    for name, b in m.generator.named_buffers():
        if b.dtype == torch.float64:
            save("post__generator." + name, b)

    # Stage 2, encoder step: E in training mode, G in evaluation mode.
    m.generator.eval()
    loss, rec, feat, _ = m.izi_f(x)
    grads = torch.autograd.grad(loss, [p for _, p in ep])
    for (name, _), g in zip(ep, grads):
        save("enc_grad__encoder." + name, g)
    for k, t in dict(enc_loss=loss, enc_rec=rec, enc_feat=feat).items():
        save(k, t.view(1))
    for name, b in m.encoder.named_buffers():
        if b.dtype == torch.float64:
            save("post__encoder." + name, b)
    m.eval()
    with torch.no_grad():
        _, _, _, xr = m.izi_f(x)
        # The anomaly score A(x) per image: izi_f's two terms over one image at a time.
        score = torch.stack([m.izi_f(x[b:b + 1])[0] for b in range(B)])
    save("y_eval", xr)
    save("score_eval", score)


def load(ckpt):
    m, cfg, n_tensors = load_checkpoint(ckpt, "fanogan", FAnoGAN)
    count = {k: sum(p.numel() for p in getattr(m, k).parameters()) for k in ("generator", "critic", "encoder")}
    return m, cfg, n_tensors, count


def check(ckpt, xpath, ypath, B):
    m, cfg, n_tensors, count = load(ckpt)
    x, want = read_images(xpath, B, cfg), read_images(ypath, B, cfg)
    with torch.no_grad():
        y = (m.generator(m.encoder(2 * x - 1)[0]) + 1) / 2
    diff = (y - want).abs().max().item()
    print("strict load OK (%d tensors, parameters %s, total %d); reconstruction max |diff| %.3g"
          % (n_tensors, count, sum(count.values()), diff))
    sys.exit(0 if diff <= 1e-4 else 1)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "dump":
        dump(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "load":
        _, _, n_tensors, count = load(sys.argv[2])
        print("strict load OK (%d tensors, parameters %s, total %d)" % (n_tensors, count, sum(count.values())))
    elif len(sys.argv) == 6 and sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif len(sys.argv) in (2, 3) and sys.argv[1] == "names":
        print_names(FAnoGAN(**parse_config(sys.argv[2] if len(sys.argv) == 3 else None)))
    else:
        sys.exit(__doc__)
