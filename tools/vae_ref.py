#!/usr/bin/env python3
"""PyTorch reference of anoswin's VAE baseline (src/model/vae/, docs/baselines.md): Baur et al.
2021's dense VAE as its authors' code builds it (models/variational_autoencoder.py and
customlayers.py of StefanDenn3r/Unsupervised_Anomaly_Detection_Brain_MRI), in PyTorch with
PyTorch's conventions ('same' padding k//2 on both sides, BatchNorm eps 1e-5 / momentum 0.1).
Its state_dict names are the checkpoint's tensor names.

Usage:
  vae_ref.py dump OUTDIR            small-config parity case for tests/test_model_vae.c
  vae_ref.py check CKPT X.f32 Y.f32 B
                                    loads an anoswin checkpoint with strict=True (config from its
                                    metadata), runs the evaluation forward on X (B images) and
                                    compares with Y (anoswin's reconstruction) within 1e-4
  vae_ref.py names [CONFIG]         the state_dict table and counts (ref_model_common.print_names)
"""
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_model_common import f32, load_checkpoint, parse_config, perturb, print_names, read_images, saver, save_checkpoint  # noqa: E402,E501

DEFAULTS = dict(img_size=128, in_chans=1, patch_size=16, res=8, z_dim=128, base_ch=32, max_ch=128, kernel=5,
                slope=0.3, dropout=0.1, beta=1.0, rec_loss="l1")


class Block(nn.Module):
    def __init__(self, cin, cout, k, transposed):
        super().__init__()
        if transposed:
            self.conv = nn.ConvTranspose2d(cin, cout, k, stride=2, padding=k // 2, output_padding=1)
        else:
            self.conv = nn.Conv2d(cin, cout, k, stride=2, padding=k // 2)
        self.bn = nn.BatchNorm2d(cout)


class VAE(nn.Module):
    def __init__(self, **kw):
        super().__init__()
        c = dict(DEFAULTS, **kw)
        self.c = c
        n = int(round(math.log2(c["img_size"] // c["res"])))
        enc = [min(c["max_ch"], c["base_ch"] * 2 ** i) for i in range(n)]
        dec = [max(c["base_ch"], c["max_ch"] // 2 ** i) for i in range(n)]
        C = enc[-1]
        self.c8, self.res = C // 8, c["res"]
        flat = self.c8 * c["res"] ** 2
        self.encoder = nn.ModuleList(Block(enc[i - 1] if i else c["in_chans"], enc[i], c["kernel"], False)
                                     for i in range(n))
        self.enc_conv = nn.Conv2d(C, self.c8, 1)
        self.mu = nn.Linear(flat, c["z_dim"])
        self.log_sigma = nn.Linear(flat, c["z_dim"])
        self.dec_dense = nn.Linear(c["z_dim"], flat)
        self.dec_conv = nn.Conv2d(self.c8, C, 1)
        self.dec_bn = nn.BatchNorm2d(C)
        self.decoder = nn.ModuleList(Block(dec[j - 1] if j else C, dec[j], c["kernel"], True) for j in range(n))
        self.final = nn.Conv2d(dec[-1], c["in_chans"], 1)

    def forward(self, x, eps=None, drop=None):
        """Training: eps (B, z_dim) noise and drop = 3 dropout scale tensors (or None). Evaluation
        (eps None): z = mu."""
        s = self.c["slope"]
        h = x
        for b in self.encoder:
            h = F.leaky_relu(b.bn(b.conv(h)), s)
        h = self.enc_conv(h).flatten(1)
        mu, ls = self.mu(h), self.log_sigma(h)
        if drop is not None:
            mu, ls = mu * drop[0], ls * drop[1]
        z = mu + eps * torch.exp(ls) if eps is not None else mu
        d = self.dec_dense(z)
        if drop is not None:
            d = d * drop[2]
        y = F.relu(self.dec_bn(self.dec_conv(d.view(-1, self.c8, self.res, self.res))))
        for b in self.decoder:
            y = F.leaky_relu(b.bn(b.conv(y)), s)
        return self.final(y), mu, ls

    def loss(self, x, out, mu, ls):
        r = (out - x).abs() if self.c["rec_loss"] == "l1" else (out - x) ** 2
        rec = r.sum(dim=(1, 2, 3)).mean()
        kl = (0.5 * (mu ** 2 + torch.exp(ls) ** 2 - 2 * ls - 1)).sum(1).mean()
        return rec + self.c["beta"] * kl, rec, kl


def dump(out):
    save = saver(out)
    torch.manual_seed(77)
    torch.set_default_dtype(torch.float64)
    cfg = dict(img_size=32, in_chans=2, patch_size=8, res=4, z_dim=6, base_ch=8, max_ch=16, kernel=5, slope=0.3,
               dropout=0.25, beta=0.5, rec_loss="l1")
    B = 3
    m = VAE(**cfg)
    perturb(m, lambda name: name.endswith(("bn.weight", "bn.bias")), 5)
    save_checkpoint(m, os.path.join(out, "ref.safetensors"), "vae", dict(cfg))
    x = f32(torch.rand(B, cfg["in_chans"], cfg["img_size"], cfg["img_size"]))
    eps = f32(torch.randn(B, cfg["z_dim"]))
    keep = 1.0 / (1.0 - cfg["dropout"])
    flat = m.c8 * cfg["res"] ** 2
    drop = [(torch.rand(B, n) >= cfg["dropout"]).double() * keep for n in (cfg["z_dim"], cfg["z_dim"], flat)]
    m.train()
    y, mu, ls = m(x, eps, drop)
    loss, rec, kl = m.loss(x, y, mu, ls)
    loss.backward()
    for k, t in dict(x=x, eps=eps, drop0=drop[0], drop1=drop[1], drop2=drop[2], y=y, mu=mu, ls=ls,
                     loss=loss.view(1), rec=rec.view(1), kl=kl.view(1)).items():
        save(k, t)
    for name, p in m.named_parameters():
        save("grad__" + name, p.grad)
    for name, b in m.named_buffers():
        if b.dtype == torch.float64:
            save("post__" + name, b)
    m.eval()
    with torch.no_grad():
        ye, _, _ = m(x)
    save("y_eval", ye)


def check(ckpt, xpath, ypath, B):
    m, cfg, n_tensors = load_checkpoint(ckpt, "vae", VAE)
    x, want = read_images(xpath, B, cfg), read_images(ypath, B, cfg)
    with torch.no_grad():
        y, _, _ = m(x)
    diff = (y - want).abs().max().item()
    n_params = sum(p.numel() for p in m.parameters())
    print("strict load OK (%d tensors, %d parameters); eval forward max |diff| %.3g" % (n_tensors, n_params, diff))
    sys.exit(0 if diff <= 1e-4 else 1)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "dump":
        dump(sys.argv[2])
    elif len(sys.argv) == 6 and sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif len(sys.argv) in (2, 3) and sys.argv[1] == "names":
        print_names(VAE(**parse_config(sys.argv[2] if len(sys.argv) == 3 else None)))
    else:
        sys.exit(__doc__)
