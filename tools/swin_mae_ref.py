"""Independent PyTorch reference of the Ano-swinMAE model (Swin MAE), written from
shared/reference/ano-swinmae-reference.md section 1. It reproduces the authors' module tree, so
its state_dict keys, order and shapes equal theirs (224 entries at the paper config) and their
checkpoints load with strict=True. Quirks kept on purpose: the shifted window is also used at
the 7x7 stage, masking happens after the patch-embedding norm (mask token substitution, every
token goes through the encoder), no skip connections in the decoder, (p,q,c) output layout,
loss averaged over the 48 values of a token and then over masked tokens only.

Usage as a module (run with /usr/bin/python3, torch 1.13):
    import swin_mae_ref as R
    cfg = R.parse_config("img_size=224,embed_dim=96")     # C-compatible config string
    model = R.SwinMAE(cfg)                                 # paper config when cfg is None
    R.set_drop_path(model, False)                          # DropPath off (deterministic)
    mask = R.window_mask(B, cfg, ratio=0.35, generator=g)  # (B, L) float, 1 = masked
    loss, pred = model(imgs, mask)                         # imgs (B, in_chans, H, W)

Config keys (same as the C side, src/model/config.h): img_size patch_size in_chans embed_dim
depths num_heads window mlp_ratio drop_path_rate.

Run as a script: `swin_mae_ref.py names [--config S]` prints "name dtype shape" per state_dict
entry; `swin_mae_ref.py count` prints parameter counts.
"""
import math
import re
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_CONFIG = dict(img_size=224, patch_size=4, in_chans=3, embed_dim=96, depths=[2, 2, 2, 2],
                      num_heads=[3, 6, 12, 24], window=7, mlp_ratio=4, drop_path_rate=0.1)
LN_EPS = 1e-6


def parse_config(text=None, base=None):
    """Parses the same formats as swinmae_config_parse: JSON or "k=v,k=[a,b,c,d],k=a/b/c/d"."""
    cfg = dict(DEFAULT_CONFIG if base is None else base)
    cfg['depths'] = list(cfg['depths'])
    cfg['num_heads'] = list(cfg['num_heads'])
    if not text:
        return cfg
    body = text.strip()
    if body.startswith('{'):
        body = body[1:body.rindex('}')]
    for m in re.finditer(r'"?(\w+)"?\s*[=:]\s*(\[[^\]]*\]|[^,]+)', body):
        key, val = m.group(1), m.group(2).strip()
        if key == 'heads':
            key = 'num_heads'
        if key == 'window_size':
            key = 'window'
        if key in ('depths', 'num_heads'):
            parts = re.split(r'[,/x]', val.strip('[]'))
            cfg[key] = [int(p) for p in parts]
            assert len(cfg[key]) == 4, key
        elif key == 'drop_path_rate':
            cfg[key] = float(val)
        elif key in cfg:
            cfg[key] = int(val)
        else:
            raise ValueError('unknown config key %r' % key)
    return cfg


def config_json(cfg):
    return ('{"img_size":%d,"patch_size":%d,"in_chans":%d,"embed_dim":%d,"depths":[%s],'
            '"num_heads":[%s],"window":%d,"mlp_ratio":%d,"drop_path_rate":%.9g}' % (
                cfg['img_size'], cfg['patch_size'], cfg['in_chans'], cfg['embed_dim'],
                ','.join(str(d) for d in cfg['depths']), ','.join(str(h) for h in cfg['num_heads']),
                cfg['window'], cfg['mlp_ratio'], cfg['drop_path_rate']))


# ---- building blocks ----------------------------------------------------------------------------

def sincos_pos_embed_2d(dim, grid):
    """MAE's 2-D sin-cos embedding (no cls token): (grid*grid, dim) float64. The first half of
    the channels encodes the column index, the second half the row index; each half is
    [sin(pos*w_k), cos(pos*w_k)] with w_k = 1/10000^(k/(dim/4))."""
    q = dim // 4
    omega = 1.0 / 10000 ** (np.arange(q, dtype=np.float64) / q)
    rows, cols = np.meshgrid(np.arange(grid, dtype=np.float64), np.arange(grid, dtype=np.float64), indexing='ij')

    def enc(pos):
        out = np.outer(pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)
    return np.concatenate([enc(cols), enc(rows)], axis=1)


def relative_position_index(window):
    w = window
    pos = torch.arange(w * w)
    hi, wi = pos // w, pos % w
    dh = hi[:, None] - hi[None, :] + w - 1
    dw = wi[:, None] - wi[None, :] + w - 1
    return (dh * (2 * w - 1) + dw).to(torch.int64)


class DropPath(nn.Module):
    """Stochastic depth per sample; `enabled` is the switch (the reference never turns it off)."""

    def __init__(self, p):
        super().__init__()
        self.p = p
        self.enabled = True

    def forward(self, x):
        if self.p == 0.0 or not self.enabled or not self.training:
            return x
        keep = 1.0 - self.p
        r = (keep + torch.rand((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype, device=x.device)).floor_()
        return x.div(keep) * r


class PatchEmbed(nn.Module):
    def __init__(self, patch, in_chans, dim):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)

    def forward(self, x):                        # (B, c, H, W) -> (B, G, G, C)
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


class Merge(nn.Module):
    """Patch merging: concat x[0::2,0::2], x[1::2,0::2], x[0::2,1::2], x[1::2,1::2], LN(4d), Linear(4d->2d)."""

    def __init__(self, dim):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim, eps=LN_EPS)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x):
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x))


class Expand(nn.Module):
    """Patch expanding: Linear(d->2d, no bias), B H W (2 2 c) -> B 2H 2W c with c = d/2, LN(d/2)."""

    def __init__(self, dim):
        super().__init__()
        self.expand = nn.Linear(dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(dim // 2, eps=LN_EPS)

    def forward(self, x):
        B, H, W, _ = x.shape
        x = self.expand(x)
        c = x.shape[-1] // 4
        x = x.view(B, H, W, 2, 2, c).permute(0, 1, 3, 2, 4, 5).reshape(B, 2 * H, 2 * W, c)
        return self.norm(x)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))      # exact (erf) GELU


def shift_attn_mask(H, W, window, shift):
    """(nW, w*w, w*w) additive mask for the rolled image: 0 within a region, -100 across."""
    img = torch.zeros(H, W)
    cnt = 0
    for hs in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
        for ws in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
            img[hs, ws] = cnt
            cnt += 1
    win = img.view(H // window, window, W // window, window).permute(0, 2, 1, 3).reshape(-1, window * window)
    diff = win[:, None, :] - win[:, :, None]
    return torch.where(diff != 0, torch.tensor(-100.0), torch.tensor(0.0))


class ContiguousGrad(torch.autograd.Function):
    """Identity whose backward makes the incoming gradient contiguous (see WindowAttention)."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return g.contiguous()


class WindowAttention(nn.Module):
    def __init__(self, dim, heads, window, shift):
        super().__init__()
        self.heads, self.window = heads, window
        self.shift = window // 2 if shift else 0
        self.scale = (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        self.register_buffer('relative_position_index', relative_position_index(window))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):                         # (B, H, W, d)
        B, H, W, d = x.shape
        w, nh = self.window, self.heads
        if self.shift > 0:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
        xw = x.view(B, H // w, w, W // w, w, d).permute(0, 1, 3, 2, 4, 5).reshape(-1, w * w, d)
        qkv = self.qkv(xw).view(xw.shape[0], w * w, 3, nh, d // nh).permute(2, 0, 3, 1, 4)
        # Contiguous q, k, v (and output gradient, below): Debian's PyTorch 1.13 (generic BLAS)
        # runs bmm on these strided views far slower than on copies (bench's PyTorch side lost
        # ~2x in attention that way). The same products.
        q, k, v = (t.contiguous() for t in qkv.unbind(0))        # (Bn, nh, L, hd)
        q = q * self.scale
        attn = q @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(w * w, w * w, nh)
        attn = attn + bias.permute(2, 0, 1).unsqueeze(0)
        if self.shift > 0:
            m = shift_attn_mask(H, W, w, self.shift).to(x)
            nw = m.shape[0]
            attn = (attn.view(B, nw, nh, w * w, w * w) + m[None, :, None]).view(-1, nh, w * w, w * w)
        attn = attn.softmax(-1)
        y = ContiguousGrad.apply(attn @ v).transpose(1, 2).reshape(-1, w * w, d)
        y = self.proj(y)
        y = y.view(B, H // w, W // w, w, w, d).permute(0, 1, 3, 2, 4, 5).reshape(B, H, W, d)
        if self.shift > 0:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        return y


class Block(nn.Module):
    def __init__(self, dim, heads, window, shift, mlp_ratio, drop_path):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = WindowAttention(dim, heads, window, shift)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path)

    def forward(self, x):
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class Stage(nn.Module):
    def __init__(self, dim, depth, heads, cfg, rates, downsample=None, upsample=None):
        super().__init__()
        self.blocks = nn.ModuleList([Block(dim, heads, cfg['window'], j % 2 == 1, cfg['mlp_ratio'], rates[j])
                                     for j in range(depth)])
        if downsample is not None:
            self.downsample = downsample
        if upsample is not None:
            self.upsample = upsample

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        if hasattr(self, 'downsample'):
            x = self.downsample(x)
        if hasattr(self, 'upsample'):
            x = self.upsample(x)
        return x


# ---- the model -----------------------------------------------------------------------------------

class SwinMAE(nn.Module):
    def __init__(self, cfg=None):
        super().__init__()
        cfg = parse_config(None, cfg)
        self.cfg = cfg
        C, P, S = cfg['embed_dim'], cfg['patch_size'], 4
        G = cfg['img_size'] // P
        # torch.linspace in float32 then .item(), like the reference.
        dpr = [r.item() for r in torch.linspace(0, cfg['drop_path_rate'], sum(cfg['depths']))]
        starts = [sum(cfg['depths'][:i]) for i in range(S)]

        def rates(k):
            return dpr[starts[k]:starts[k] + cfg['depths'][k]]
        # Own parameters first in the state_dict (pos_embed, mask_token), then children.
        self.pos_embed = nn.Parameter(torch.zeros(1, G * G, C), requires_grad=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, C))
        self.patch_embed = PatchEmbed(P, cfg['in_chans'], C)
        self.layers = nn.ModuleList([
            Stage(C << i, cfg['depths'][i], cfg['num_heads'][i], cfg, rates(i),
                  downsample=Merge(C << i) if i < S - 1 else None) for i in range(S)])
        self.first_patch_expanding = Expand(C << (S - 1))
        self.layers_up = nn.ModuleList([
            Stage(C << k, cfg['depths'][k], cfg['num_heads'][k], cfg, rates(k),
                  upsample=Expand(C << k) if k > 0 else None) for k in range(S - 2, -1, -1)])
        self.norm_up = nn.LayerNorm(C, eps=LN_EPS)
        self.decoder_pred = nn.Linear(C, P * P * cfg['in_chans'])
        self.init_weights()

    def init_weights(self):
        with torch.no_grad():
            self.pos_embed.copy_(torch.from_numpy(sincos_pos_embed_2d(self.cfg['embed_dim'],
                                                                      self.cfg['img_size'] // self.cfg['patch_size'])).float()[None])
            nn.init.normal_(self.mask_token, std=0.02)
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    nn.init.xavier_uniform_(m.weight)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                elif isinstance(m, nn.LayerNorm):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
                elif isinstance(m, WindowAttention):
                    nn.init.trunc_normal_(m.relative_position_bias_table, std=0.02)
            # Conv2d keeps PyTorch's default initialisation.

    def patchify(self, imgs):
        """(B, c, H, W) -> (B, L, p*p*c), token (h,w) value (p*P+q)*c + ch = pixel[ch][P h + p][P w + q]."""
        B, c, H, W = imgs.shape
        P = self.cfg['patch_size']
        x = imgs.reshape(B, c, H // P, P, W // P, P).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(B, (H // P) * (W // P), P * P * c)

    def unpatchify(self, x):
        P, c = self.cfg['patch_size'], self.cfg['in_chans']
        B, L, _ = x.shape
        g = int(round(L ** 0.5))
        return x.reshape(B, g, g, P, P, c).permute(0, 5, 1, 3, 2, 4).reshape(B, c, g * P, g * P)

    def forward_encoder(self, imgs, mask):
        x = self.patch_embed(imgs)                         # (B, G, G, C)
        B, G, _, C = x.shape
        m = mask.view(B, G, G, 1).to(x.dtype)
        x = x * (1 - m) + self.mask_token.view(1, 1, 1, C) * m
        for layer in self.layers:
            x = layer(x)
        return x

    def forward_decoder(self, x):
        x = self.first_patch_expanding(x)
        for layer in self.layers_up:
            x = layer(x)
        x = self.norm_up(x)
        return self.decoder_pred(x.reshape(x.shape[0], -1, x.shape[-1]))

    def forward_loss(self, imgs, pred, mask):
        target = self.patchify(imgs)
        per_token = ((pred - target) ** 2).mean(dim=-1)
        return (per_token * mask).sum() / mask.sum()

    def forward(self, imgs, mask):
        """imgs (B, in_chans, H, W); mask (B, L) with 1 = masked token. Returns (loss, pred (B, L, p*p*c))."""
        pred = self.forward_decoder(self.forward_encoder(imgs, mask))
        return self.forward_loss(imgs, pred, mask), pred


def set_drop_path(model, enabled):
    for m in model.modules():
        if isinstance(m, DropPath):
            m.enabled = enabled


def window_mask(batch, cfg, ratio=0.35, unit=4, generator=None):
    """The reference's training mask: unit x unit tokens per mask unit; per sample a uniform
    permutation of the (G/unit)^2 units keeps the first int(n*(1-ratio)). Returns (B, L) float."""
    G = cfg['img_size'] // cfg['patch_size']
    d = G // unit
    keep = int(d * d * (1 - ratio))
    mask = torch.ones(batch, G, G)
    for b in range(batch):
        perm = torch.randperm(d * d, generator=generator)
        for s in perm[:keep].tolist():
            r, c = (s // d) * unit, (s % d) * unit
            mask[b, r:r + unit, c:c + unit] = 0
    return mask.view(batch, G * G)


def param_counts(model):
    all_ = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return all_, trainable


def _main(argv):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('what', choices=['names', 'count', 'relpos', 'posembed'])
    ap.add_argument('--config', default=None)
    ap.add_argument('--out', default=None, help='output file (names: text; relpos/posembed: raw <i8/<f4)')
    a = ap.parse_args(argv)
    torch.manual_seed(0)
    cfg = parse_config(a.config)
    if a.what == 'relpos':
        relative_position_index(cfg['window']).numpy().astype('<i8').tofile(a.out)
        return
    if a.what == 'posembed':
        sincos_pos_embed_2d(cfg['embed_dim'], cfg['img_size'] // cfg['patch_size']).astype('<f4').tofile(a.out)
        return
    model = SwinMAE(cfg)
    if a.what == 'names':
        out = open(a.out, 'w') if a.out else sys.stdout
        for k, v in model.state_dict().items():
            print(k, 'I64' if v.dtype == torch.int64 else 'F32', 'x'.join(str(s) for s in v.shape), file=out)
        if a.out:
            out.close()
    else:
        all_, tr = param_counts(model)
        print('entries', len(model.state_dict()))
        print('all', all_)
        print('trainable', tr)


if __name__ == '__main__':
    _main(sys.argv[1:])
