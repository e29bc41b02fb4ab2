#!/usr/bin/env python3
"""PyTorch reference of anoswin's autoDDPM baseline (src/model/autoddpm/, docs/baselines.md).

The U-Net is the authors' copy of MONAI generative's DiffusionModelUNet (ci-ber/autoDDPM,
net_utils/diffusion_unet.py) without conditioning, rebuilt here with its module names, so the
state_dict of the authors' DDPM module ("unet." + the U-Net's names) is the checkpoint's: an
authors' checkpoint loads here and in anoswin, and ours loads in their class, with strict=True.
As in their copy, AttentionBlock.proj_attn exists but the forward does not apply it.
The schedulers (linear betas, DDPM step with clip_sample, DDIM step at eta 0, add_noise, the
timestep lists) and autoDDPM's inference
(model_zoo/ddpm.py get_autoDDPM_anomaly) follow their code; every random draw is read from a file
that anoswin wrote, so that both sides use the same noise. LPIPS is left out (its SqueezeNet
weights are not available here), as in anoswin: the mask is the scaled residual alone.

Usage:
  autoddpm_ref.py dump OUTDIR     tiny-config training-loss case for tests/test_model_autoddpm.c
  autoddpm_ref.py infer CKPT X.f32 NOISE.f32 B OUTDIR [key=value,...]
                                  strict load of an anoswin checkpoint, one denoising step
                                  (x_t = X at t_recon, the first noise) into step.f32, and the
                                  full autoDDPM inference of X with the noise after it (x_rec,
                                  mask, final, amap .f32); key=value overrides the checkpoint's
                                  inference settings (sampler=ddim,inference_steps=500)
  autoddpm_ref.py load CKPT        strict load of an anoswin checkpoint (config from its metadata)
  autoddpm_ref.py count [key=value,...]
                                  parameter count of a config (the default: the paper's)
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import load_file, save_file  # noqa: E402

DEFAULTS = dict(img_size=128, in_chans=1, patch_size=16, channels="128-256-256", attention="0-1-1", res_blocks=1,
                head_ch=256, groups=32, timesteps=1000, beta_start=1e-4, beta_end=2e-2, t_recon=200, t_inpaint=50,
                resample=5, threshold=0.13, seed=0, sampler="ddpm", inference_steps=1000)
EPS = 1e-6


def ints(s):
    return [int(v) for v in str(s).split("-")]


class Conv(nn.Module):
    """MONAI's Convolution(conv_only=True): the nn.Conv2d is its child 'conv'."""

    def __init__(self, cin, cout, k, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)

    def forward(self, x):
        return self.conv(x)


class ResnetBlock(nn.Module):
    def __init__(self, cin, cout, temb, groups):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=EPS)
        self.conv1 = Conv(cin, cout, 3)
        self.time_emb_proj = nn.Linear(temb, cout)
        self.norm2 = nn.GroupNorm(groups, cout, eps=EPS)
        self.conv2 = Conv(cout, cout, 3)
        self.skip_connection = Conv(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_emb_proj(F.silu(emb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip_connection(x) + h


class AttentionBlock(nn.Module):
    def __init__(self, C, head_ch, groups):
        super().__init__()
        self.heads = max(C // head_ch, 1)
        self.norm = nn.GroupNorm(groups, C, eps=EPS)
        self.to_q, self.to_k, self.to_v = nn.Linear(C, C), nn.Linear(C, C), nn.Linear(C, C)
        self.proj_attn = nn.Linear(C, C)  # registered, never applied (the authors' copy)

    def forward(self, x):
        B, C, H, W = x.shape
        t = self.norm(x).view(B, C, H * W).transpose(1, 2)
        hd = C // self.heads

        def split(y):
            return y.reshape(B, H * W, self.heads, hd).permute(0, 2, 1, 3)

        q, k, v = split(self.to_q(t)), split(self.to_k(t)), split(self.to_v(t))
        p = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), dim=-1)
        o = (p @ v).permute(0, 2, 1, 3).reshape(B, H * W, C)
        return o.transpose(1, 2).reshape(B, C, H, W) + x


class Down(nn.Module):
    def __init__(self, C):
        super().__init__()
        self.op = Conv(C, C, 3, stride=2)

    def forward(self, x):
        return self.op(x)


class Up(nn.Module):
    def __init__(self, C):
        super().__init__()
        self.conv = Conv(C, C, 3)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Block(nn.Module):
    pass


def timestep_embedding(t, dim):
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / half)
    a = t.double()[:, None] * freqs[None, :]
    e = torch.cat([torch.cos(a), torch.sin(a)], dim=-1)
    return F.pad(e, (0, 1, 0, 0)) if dim % 2 else e


class UNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        ch, at, R, g, hc = ints(cfg["channels"]), ints(cfg["attention"]), cfg["res_blocks"], cfg["groups"], cfg["head_ch"]
        L, E = len(ch), 4 * ch[0]
        self.conv_in = Conv(cfg["in_chans"], ch[0], 3)
        self.time_embed = nn.Sequential(nn.Linear(ch[0], E), nn.SiLU(), nn.Linear(E, E))
        self.down_blocks = nn.ModuleList()
        for i in range(L):
            b = Block()
            if at[i]:  # AttnDownBlock registers attentions first
                b.attentions = nn.ModuleList([AttentionBlock(ch[i], hc, g) for _ in range(R)])
            b.resnets = nn.ModuleList([ResnetBlock(ch[i - 1] if (i and j == 0) else ch[i], ch[i], E, g)
                                       for j in range(R)])
            if not at[i]:
                b.attentions = None
            b.downsampler = Down(ch[i]) if i < L - 1 else None
            self.down_blocks.append(b)
        self.middle_block = Block()
        self.middle_block.resnet_1 = ResnetBlock(ch[-1], ch[-1], E, g)
        self.middle_block.attention = AttentionBlock(ch[-1], hc, g)
        self.middle_block.resnet_2 = ResnetBlock(ch[-1], ch[-1], E, g)
        self.up_blocks = nn.ModuleList()
        prev = ch[-1]
        for i in range(L):
            r = L - 1 - i
            out, low = ch[r], ch[max(r - 1, 0)]
            b = Block()
            b.resnets = nn.ModuleList([ResnetBlock((out if j else prev) + (low if j == R else out), out, E, g)
                                       for j in range(R + 1)])
            b.attentions = nn.ModuleList([AttentionBlock(out, hc, g) for _ in range(R + 1)]) if at[r] else None
            b.upsampler = Up(out) if i < L - 1 else None
            self.up_blocks.append(b)
            prev = out
        self.out = nn.Sequential(nn.GroupNorm(g, ch[0], eps=EPS), nn.SiLU(), Conv(ch[0], cfg["in_chans"], 3))
        self.ch0 = ch[0]

    def forward(self, x, t):
        emb = self.time_embed(timestep_embedding(t, self.ch0).to(x.dtype))
        h = self.conv_in(x)
        skips = [h]
        for b in self.down_blocks:
            for j, res in enumerate(b.resnets):
                h = res(h, emb)
                if b.attentions is not None:
                    h = b.attentions[j](h)
                skips.append(h)
            if b.downsampler is not None:
                h = b.downsampler(h)
                skips.append(h)
        m = self.middle_block
        h = m.resnet_2(m.attention(m.resnet_1(h, emb)), emb)
        for b in self.up_blocks:
            for j, res in enumerate(b.resnets):
                h = res(torch.cat([h, skips.pop()], dim=1), emb)
                if b.attentions is not None:
                    h = b.attentions[j](h)
            if b.upsampler is not None:
                h = b.upsampler(h)
        return self.out(h)


class DDPM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.unet = UNet(cfg)
        T = cfg["timesteps"]
        # In float64 (the authors': torch.linspace / cumprod in float32; anoswin computes them in
        # double too).
        i = torch.arange(T, dtype=torch.float64)
        self.betas = cfg["beta_start"] + (cfg["beta_end"] - cfg["beta_start"]) * i / (T - 1)
        self.acp = torch.cumprod(1.0 - self.betas, 0)

    def add_noise(self, x, noise, t):
        a = self.acp[t]
        return a.sqrt() * x + (1 - a).sqrt() * noise

    def step(self, eps, t, x, next_noise):
        acp, acp_prev = self.acp[t], (self.acp[t - 1] if t > 0 else torch.tensor(1.0, dtype=torch.float64))
        x0 = ((x - (1 - acp).sqrt() * eps) / acp.sqrt()).clamp(-1, 1)
        c0 = acp_prev.sqrt() * self.betas[t] / (1 - acp)
        ct = (1 - self.betas[t]).sqrt() * (1 - acp_prev) / (1 - acp)
        prev = c0 * x0 + ct * x
        if t > 0:
            var = ((1 - acp_prev) / (1 - acp) * self.betas[t]).clamp(min=1e-20)
            prev = prev + var.sqrt() * next_noise()
        return prev

    def ddim_step(self, eps, t, x):
        # The authors' DDIMScheduler.step at eta 0 (set_alpha_to_one: 1 below step 0).
        r = self.cfg["timesteps"] // self.cfg["inference_steps"]
        acp = self.acp[t]
        prev = self.acp[t - r] if t - r >= 0 else torch.tensor(1.0, dtype=torch.float64)
        x0 = ((x - (1 - acp).sqrt() * eps) / acp.sqrt()).clamp(-1, 1)
        return prev.sqrt() * x0 + (1 - prev).sqrt() * eps

    def timesteps(self, level):
        # The authors' get_timesteps: DDPM every step; DDIM np.append(arange(1, level+1)[::-r], 0).
        if self.cfg["sampler"] != "ddim":
            return list(range(level, -1, -1))
        r = self.cfg["timesteps"] // self.cfg["inference_steps"]
        return [int(t) for t in np.append(np.arange(1, level + 1)[::-r], 0)]

    def denoise(self, x, t, next_noise):
        eps = self.eps(x, t)
        return self.ddim_step(eps, t, x) if self.cfg["sampler"] == "ddim" else self.step(eps, t, x, next_noise)

    def eps(self, x, t):
        return self.unet(x, torch.full((x.shape[0],), float(t), dtype=torch.float64))

    def autoddpm(self, x, next_noise):
        c = self.cfg
        B = x.shape[0]
        img = self.add_noise(x, next_noise(), c["t_recon"])
        for t in self.timesteps(c["t_recon"]):
            img = self.denoise(img, t, next_noise)
        x_rec = img.clamp(0, 1)
        res = (x - x_rec).abs().numpy()
        comb = np.stack([np.clip(res[b] / np.percentile(res[b], 95), 0, 1) for b in range(B)])
        if c["threshold"] >= 0:
            thr = [c["threshold"]] * B
        else:
            thr = [float(np.clip(np.percentile(comb[b], 95), 0, 1)) for b in range(B)]
        binm = np.stack([(comb[b] > thr[b]).astype(np.float64) for b in range(B)])
        # cv2.dilate with a 3x3 ones kernel: the max over the in-image part of the window.
        pad = np.pad(binm, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=0)
        H, W = binm.shape[2:]
        dil = np.max([pad[:, :, dy:dy + H, dx:dx + W] for dy in range(3) for dx in range(3)], axis=0)
        mask = torch.from_numpy(np.where(binm.reshape(B, -1).sum(1)[:, None, None, None] < 1, binm, dil))
        x_masked = (1 - mask) * x
        img = self.add_noise(x_rec, next_noise(), c["t_inpaint"])
        inp = None
        for t in self.timesteps(c["t_inpaint"]):
            for u in range(c["resample"]):
                known = self.add_noise(x_masked, next_noise(), t - 1) if t > 0 else x_masked
                if t > 0:
                    inp = self.denoise(img, t, next_noise)
                img = torch.where(mask == 1, inp, known)
                if t > 0 and u < c["resample"] - 1:
                    b = self.betas[t - 1]
                    img = (1 - b).sqrt() * img + b.sqrt() * next_noise()
        amap = (x - img.clamp(0, 1)).abs() * torch.from_numpy(comb)
        return x_rec, mask, img, amap


def f32(t):
    return t.detach().float().double()


def save(out, name, t):
    t.detach().cpu().numpy().astype("<f4").tofile(os.path.join(out, name + ".f32"))


TINY = dict(DEFAULTS, img_size=16, channels="8-16-16", attention="0-1-1", res_blocks=1, head_ch=8, groups=4,
            t_recon=3, t_inpaint=2, resample=2, threshold=-1)


def dump(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(2023)
    torch.set_default_dtype(torch.float64)
    cfg, B = dict(TINY), 3
    m = DDPM(cfg)
    with torch.no_grad():
        for name, p in m.named_parameters():
            # Random everywhere (the zero-initialised convs too, or their inputs' gradients vanish);
            # GroupNorm affines near (1, 0).
            if ".norm" in name or name.startswith("unet.out.0"):
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.2 * torch.randn_like(p))
            else:
                p.copy_(0.5 * torch.randn_like(p) / math.sqrt(max(p[0].numel(), 1)))
            p.copy_(f32(p))
    sd = {k: v.float() for k, v in m.state_dict().items()}
    meta = {"format": "pt", "anoswin.method": "autoddpm", "anoswin.config": json.dumps(cfg, separators=(",", ":"))}
    save_file(sd, os.path.join(out, "ref.safetensors"), metadata=meta)
    S, C = cfg["img_size"], cfg["in_chans"]
    x0 = f32(torch.rand(B, C, S, S))
    noise = f32(torch.randn(B, C, S, S))
    t = torch.tensor([0.0, 517.0, 999.0])
    xt = m.add_noise(x0, noise, t.long().view(B, 1, 1, 1))
    pred = m.unet(xt, t)
    loss = F.mse_loss(pred, noise)
    loss.backward()
    for k, v in dict(x0=x0, noise=noise, t=t, xt=xt, pred=pred, loss=loss.view(1)).items():
        save(out, k, v)
    for name, p in m.named_parameters():
        save(out, "grad__" + name, p.grad if p.grad is not None else torch.zeros_like(p))  # proj_attn: unused
    print("tiny autoDDPM: %d parameters, loss %.6f" % (sum(p.numel() for p in m.parameters()), loss.item()))


def infer(ckpt, xpath, npath, B, out, overrides=""):
    torch.set_default_dtype(torch.float64)
    tensors, meta = load_file(ckpt)
    assert meta.get("anoswin.method") == "autoddpm", "not an autoDDPM checkpoint: %r" % meta.get("anoswin.method")
    cfg = dict(DEFAULTS, **json.loads(meta["anoswin.config"]))
    for kv in filter(None, overrides.split(",")):  # inference settings, e.g. sampler=ddim
        k, v = kv.split("=")
        cfg[k] = v if isinstance(DEFAULTS[k], str) else type(DEFAULTS[k])(v)
    m = DDPM(cfg)
    m.load_state_dict({k: v.double() for k, v in tensors.items()}, strict=True)
    S, C = cfg["img_size"], cfg["in_chans"]
    shape = (B, C, S, S)
    x = torch.from_numpy(np.fromfile(xpath, dtype="<f4").astype(np.float64).reshape(shape))
    pool = np.fromfile(npath, dtype="<f4").astype(np.float64).reshape(-1, *shape)
    pos = [0]

    def next_noise():
        assert pos[0] < len(pool), "anoswin drew fewer noise tensors (%d) than the reference needs" % len(pool)
        pos[0] += 1
        return torch.from_numpy(pool[pos[0] - 1])

    with torch.no_grad():
        t = cfg["t_recon"]
        save(out, "step", m.denoise(x, t, next_noise))
        x_rec, mask, final, amap = m.autoddpm(x, next_noise)
    assert pos[0] == len(pool), "anoswin drew %d noise tensors, the reference used %d" % (len(pool), pos[0])
    for k, v in dict(x_rec=x_rec, mask=mask, final=final, amap=amap).items():
        save(out, k, v)
    print("strict load OK (%d tensors); %d noise tensors used" % (len(tensors), pos[0]))


def count(text):
    cfg = dict(DEFAULTS)
    for kv in filter(None, text.split(",")):
        k, v = kv.split("=")
        cfg[k] = type(DEFAULTS[k])(v) if not isinstance(DEFAULTS[k], str) else v
    m = DDPM(cfg)
    print(sum(p.numel() for p in m.parameters()))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "dump":
        dump(sys.argv[2])
    elif len(sys.argv) in (7, 8) and sys.argv[1] == "infer":
        infer(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6], *sys.argv[7:])
    elif len(sys.argv) == 3 and sys.argv[1] == "load":
        tensors, meta = load_file(sys.argv[2])
        m = DDPM(dict(DEFAULTS, **json.loads(meta["anoswin.config"])))
        m.load_state_dict({k: v.double() for k, v in tensors.items()}, strict=True)
        print("strict load OK (%d tensors, %d parameters)" % (len(tensors), sum(p.numel() for p in m.parameters())))
    elif len(sys.argv) in (2, 3) and sys.argv[1] == "count":
        count(sys.argv[2] if len(sys.argv) == 3 else "")
    else:
        sys.exit(__doc__)
