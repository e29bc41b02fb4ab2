#!/usr/bin/env python3
"""PyTorch reference of anoswin's ViT masked autoencoder (src/model/vitmae/, docs/baselines.md):
He et al. 2022's MaskedAutoencoderViT as facebookresearch/mae models_mae.py builds it (timm's
PatchEmbed and Block written out here with timm's parameter names, so that no timm is needed),
with one change: the masking is an input. forward(imgs, mask) takes the engine's token mask
(B, L), 1 = hidden, instead of drawing one; the visible tokens keep their grid order (the
original's random order within the kept set does not change the result: attention is
permutation-equivariant once the position embedding is added). Images may hide different numbers
of tokens; those run through the encoder one at a time. Its state_dict names are the checkpoint's
tensor names (cls_token, pos_embed, mask_token, decoder_pos_embed, patch_embed.proj.*, blocks.i.*,
norm.*, decoder_embed.*, decoder_blocks.i.*, decoder_norm.*, decoder_pred.*).

Usage:
  vitmae_ref.py dump OUTDIR         small-config parity cases for tests/test_model_vitmae.c
  vitmae_ref.py load CKPT           loads an anoswin checkpoint with strict=True (config from its metadata)
  vitmae_ref.py check CKPT X.f32 M.u8 Y.f32 B
                                    loads an anoswin checkpoint with strict=True (config from its
                                    metadata), predicts X (B images) under the token mask M and
                                    compares with Y (anoswin's unpatchified prediction) within 1e-4
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import load_file, save_file  # noqa: E402
from swin_mae_ref import ContiguousGrad  # noqa: E402

DEFAULTS = dict(img_size=128, in_chans=1, patch_size=8, embed_dim=128, depth=6, num_heads=4, decoder_embed_dim=64,
                decoder_depth=2, decoder_num_heads=2, mlp_ratio=4, norm_pix_loss=0)
# src/model/vitmae/config.c's named configs (the key `preset`, applied where it appears).
PRESETS = {
    "demo": dict(DEFAULTS),
    "vit-b16": dict(img_size=224, in_chans=1, patch_size=16, embed_dim=768, depth=12, num_heads=12,
                    decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16, mlp_ratio=4, norm_pix_loss=0),
    "vit-l16": dict(img_size=224, in_chans=1, patch_size=16, embed_dim=1024, depth=24, num_heads=16,
                    decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16, mlp_ratio=4, norm_pix_loss=0),
}
LN_EPS = 1e-6  # the named configs' partial(nn.LayerNorm, eps=1e-6)


def get_1d_sincos(dim, pos):
    omega = np.arange(dim // 2, dtype=np.float64) / (dim / 2.0)
    omega = 1.0 / 10000 ** omega
    out = np.einsum("m,d->md", pos.reshape(-1), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def get_2d_sincos_pos_embed(dim, grid_size, cls_token=False):
    """util/pos_embed.py of facebookresearch/mae."""
    gh = np.arange(grid_size, dtype=np.float32)
    gw = np.arange(grid_size, dtype=np.float32)
    grid = np.meshgrid(gw, gh)  # w goes first
    grid = np.stack(grid, axis=0).reshape([2, 1, grid_size, grid_size])
    emb = np.concatenate([get_1d_sincos(dim // 2, grid[0]), get_1d_sincos(dim // 2, grid[1])], axis=1)
    if cls_token:
        emb = np.concatenate([np.zeros([1, dim]), emb], axis=0)
    return emb


class PatchEmbed(nn.Module):
    def __init__(self, p, cin, dim):
        super().__init__()
        self.proj = nn.Conv2d(cin, dim, p, stride=p)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        # Contiguous operands (and output gradient): PyTorch 1.13 (Debian's, generic BLAS)
        # multiplies the strided views timm's code passes ~35x slower than contiguous ones, which
        # made the bench's PyTorch side spend two thirds of its step in bmm. The same products.
        q, k, v = (t.contiguous() for t in qkv.unbind(0))
        a = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj(ContiguousGrad.apply(a @ v).transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class MaskedAutoencoderViT(nn.Module):
    def __init__(self, **kw):
        super().__init__()
        c = dict(DEFAULTS)
        for k, v in kw.items():  # in order, so that keys after a preset override it
            c.update(PRESETS[v] if k == "preset" else {k: v})
        self.c = c
        D, Dd, p = c["embed_dim"], c["decoder_embed_dim"], c["patch_size"]
        self.grid = c["img_size"] // p
        L = self.grid ** 2
        self.patch_embed = PatchEmbed(p, c["in_chans"], D)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(torch.zeros(1, L + 1, D), requires_grad=False)
        self.blocks = nn.ModuleList(Block(D, c["num_heads"], c["mlp_ratio"]) for _ in range(c["depth"]))
        self.norm = nn.LayerNorm(D, eps=LN_EPS)
        self.decoder_embed = nn.Linear(D, Dd, bias=True)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, Dd))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, L + 1, Dd), requires_grad=False)
        self.decoder_blocks = nn.ModuleList(
            Block(Dd, c["decoder_num_heads"], c["mlp_ratio"]) for _ in range(c["decoder_depth"]))
        self.decoder_norm = nn.LayerNorm(Dd, eps=LN_EPS)
        self.decoder_pred = nn.Linear(Dd, p * p * c["in_chans"], bias=True)
        self.initialize_weights()

    def initialize_weights(self):
        self.pos_embed.data.copy_(torch.from_numpy(get_2d_sincos_pos_embed(self.c["embed_dim"], self.grid, True)))
        self.decoder_pos_embed.data.copy_(
            torch.from_numpy(get_2d_sincos_pos_embed(self.c["decoder_embed_dim"], self.grid, True)))
        w = self.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(w.view([w.shape[0], -1]))
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.LayerNorm):
                nn.init.constant_(m.bias, 0)
                nn.init.constant_(m.weight, 1.0)

    def patchify(self, imgs):
        p, C, h = self.c["patch_size"], self.c["in_chans"], self.grid
        x = imgs.reshape(imgs.shape[0], C, h, p, h, p)
        return torch.einsum("nchpwq->nhwpqc", x).reshape(imgs.shape[0], h * h, p * p * C)

    def unpatchify(self, x):
        p, C, h = self.c["patch_size"], self.c["in_chans"], self.grid
        x = torch.einsum("nhwpqc->nchpwq", x.reshape(x.shape[0], h, h, p, p, C))
        return x.reshape(x.shape[0], C, h * p, h * p)

    def encode_one(self, x):
        """x (1, n, D): visible tokens with their position embedding."""
        cls = (self.cls_token + self.pos_embed[:, :1, :]).expand(x.shape[0], -1, -1)
        x = torch.cat((cls, x), dim=1)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def forward_encoder(self, imgs, mask):
        x = self.patch_embed(imgs) + self.pos_embed[:, 1:, :]
        keep = [torch.nonzero(mask[b] == 0).flatten() for b in range(x.shape[0])]
        counts = {len(k) for k in keep}
        if len(counts) == 1:  # the original's batched gather
            ids = torch.stack(keep)
            return [self.encode_one(torch.gather(x, 1, ids.unsqueeze(-1).repeat(1, 1, x.shape[2])))], keep
        return [self.encode_one(x[b:b + 1, keep[b]]) for b in range(x.shape[0])], keep

    def forward_decoder(self, latents, keep, mask):
        B, L = mask.shape
        if len(latents) == 1:  # the original's batched unshuffle
            d = self.decoder_embed(latents[0])
            hide = [torch.nonzero(mask[b] != 0).flatten() for b in range(B)]
            ids_restore = torch.argsort(torch.stack([torch.cat((keep[b], hide[b])) for b in range(B)]), dim=1)
            mask_tokens = self.mask_token.repeat(B, L + 1 - d.shape[1], 1)
            x_ = torch.cat([d[:, 1:, :], mask_tokens], dim=1)
            x_ = torch.gather(x_, dim=1, index=ids_restore.unsqueeze(-1).repeat(1, 1, d.shape[2]))
            x = torch.cat([d[:, :1, :], x_], dim=1) + self.decoder_pos_embed
            for blk in self.decoder_blocks:
                x = blk(x)
            return self.decoder_pred(self.decoder_norm(x))[:, 1:, :]
        rows = []
        for b in range(B):
            lat = latents[0][b:b + 1] if len(latents) == 1 else latents[b]
            d = self.decoder_embed(lat)  # (1, 1 + n, Dd)
            x_ = self.mask_token.expand(1, L, d.shape[2]).clone()
            x_[:, keep[b]] = d[:, 1:]  # visible tokens back to their places, mask tokens elsewhere
            rows.append(torch.cat([d[:, :1], x_], dim=1))
        x = torch.cat(rows, dim=0) + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:, :]

    def target(self, imgs):
        t = self.patchify(imgs)
        if self.c["norm_pix_loss"]:
            mean = t.mean(dim=-1, keepdim=True)
            var = t.var(dim=-1, keepdim=True)
            t = (t - mean) / (var + 1.0e-6) ** 0.5
        return t

    def forward(self, imgs, mask):
        """mask (B, L) uint8, 1 = hidden. Returns loss, pred (B, L, p*p*C)."""
        latents, keep = self.forward_encoder(imgs, mask)
        pred = self.forward_decoder(latents, keep, mask)
        loss = ((pred - self.target(imgs)) ** 2).mean(dim=-1)
        m = mask.to(loss.dtype)
        return (loss * m).sum() / m.sum(), pred

    def pixels(self, imgs, pred):
        """The prediction in pixel space: with norm_pix_loss, undo the per-patch normalisation with
        the input patch's own mean and variance (as the authors' visualisation does)."""
        if self.c["norm_pix_loss"]:
            t = self.patchify(imgs)
            pred = pred * (t.var(dim=-1, keepdim=True) + 1.0e-6) ** 0.5 + t.mean(dim=-1, keepdim=True)
        return self.unpatchify(pred)


def f32(t):
    return t.detach().float().double()


def dump_case(out, cfg, mask_counts, seed):
    os.makedirs(out, exist_ok=True)

    def save(name, t):
        t.detach().cpu().numpy().astype("<f4").tofile(os.path.join(out, name + ".f32"))

    torch.manual_seed(seed)
    B = len(mask_counts)
    m = MaskedAutoencoderViT(**cfg).double()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "norm" in name:  # LayerNorms away from 1 / 0, so that their gradients are tested
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            p.copy_(f32(p))
    sd = {k: v.float() for k, v in m.state_dict().items()}
    meta = {"format": "pt", "anoswin.method": "vitmae", "anoswin.config": json.dumps(cfg, separators=(",", ":"))}
    save_file(sd, os.path.join(out, "ref.safetensors"), metadata=meta)
    L = m.grid ** 2
    mask = torch.zeros(B, L, dtype=torch.uint8)
    for b, n in enumerate(mask_counts):
        mask[b, torch.randperm(L)[:n]] = 1
    mask.numpy().astype(np.uint8).tofile(os.path.join(out, "mask.u8"))
    x = f32(torch.rand(B, cfg["in_chans"], cfg["img_size"], cfg["img_size"]))
    loss, pred = m(x, mask)
    loss.backward()
    save("x", x)
    save("pred", pred)
    save("loss", loss.view(1))
    with torch.no_grad():
        save("recon", m.pixels(x, pred))
    for name, p in m.named_parameters():
        if p.requires_grad:
            save("grad__" + name, p.grad)


def dump(out):
    # The default and the named configs as anoswin's vitmae_config_to_json writes them (its key
    # order), one "name json" line each, so that the C test finds one that drifted from config.c
    # (the bench's PyTorch side builds the default when no --config is given).
    keys = ("img_size", "in_chans", "patch_size", "embed_dim", "depth", "num_heads", "decoder_embed_dim",
            "decoder_depth", "decoder_num_heads", "mlp_ratio", "norm_pix_loss")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "presets.txt"), "w") as f:
        for name, c in [("default", DEFAULTS)] + [(n, dict(DEFAULTS, **PRESETS[n])) for n in sorted(PRESETS)]:
            f.write("%s %s\n" % (name, json.dumps({k: c[k] for k in keys}, separators=(",", ":"))))
    torch.set_default_dtype(torch.float64)
    # Odd sizes find indexing bugs: head dims 5 and 4, MLP ratio 3, two channels. The images of
    # case a hide different numbers of tokens (6, 6, 13 of 16), so the encoder sees two groups.
    cfg = dict(img_size=16, in_chans=2, patch_size=4, embed_dim=20, depth=2, num_heads=4, decoder_embed_dim=12,
               decoder_depth=2, decoder_num_heads=3, mlp_ratio=3, norm_pix_loss=0)
    dump_case(os.path.join(out, "a"), cfg, [6, 6, 13], 5)
    # Case b: 100 tokens, so that attention runs its long-window path (T > 64) in both halves.
    cfg_n = dict(cfg, img_size=40, norm_pix_loss=1, in_chans=1, depth=1)
    dump_case(os.path.join(out, "b"), cfg_n, [30, 30], 9)


def load(ckpt):
    tensors, meta = load_file(ckpt)
    assert meta.get("anoswin.method") == "vitmae", "not a ViT MAE checkpoint: %r" % meta.get("anoswin.method")
    cfg = json.loads(meta["anoswin.config"])
    m = MaskedAutoencoderViT(**cfg).double()
    m.load_state_dict({k: v.double() for k, v in tensors.items()}, strict=True)
    print("strict load OK (%d tensors, %d parameters)" % (len(tensors), sum(p.numel() for p in m.parameters())))
    return m.eval(), cfg, tensors


def check(ckpt, xpath, mpath, ypath, B):
    m, cfg, tensors = load(ckpt)
    shape = (B, cfg["in_chans"], cfg["img_size"], cfg["img_size"])
    x = torch.from_numpy(np.fromfile(xpath, dtype="<f4").astype(np.float64).reshape(shape))
    mask = torch.from_numpy(np.fromfile(mpath, dtype=np.uint8).reshape(B, -1))
    want = torch.from_numpy(np.fromfile(ypath, dtype="<f4").astype(np.float64).reshape(shape))
    with torch.no_grad():
        _, pred = m(x, mask)
        y = m.pixels(x, pred)
    diff = (y - want).abs().max().item()
    print("prediction max |diff| %.3g" % diff)
    sys.exit(0 if diff <= 1e-4 else 1)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "dump":
        dump(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "load":
        load(sys.argv[2])
    elif len(sys.argv) == 7 and sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
    else:
        sys.exit(__doc__)
