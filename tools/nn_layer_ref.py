#!/usr/bin/env python3
"""Per-layer PyTorch references for tests/test_nn_layers.c.

Usage: nn_layer_ref.py OUTDIR

Writes raw little-endian float32 (.f32) / int64 (.i64) files: random inputs, parameters and
upstream gradients, and torch autograd's outputs and gradients. The Swin block, patch merging
and patch expanding follow the official Swin / Swin-MAE code (torch.roll shift, window
partition, -100 shifted-window mask, relative position bias, pre-norm blocks); the shapes
below must match the C test.
"""
import os
import sys

import torch
import torch.nn.functional as F

torch.manual_seed(1234)
torch.set_default_dtype(torch.float64)  # references in double, written as float32
OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)


def save(name, t):
    t = t.detach()
    if t.dtype == torch.int64:
        t.cpu().numpy().astype("<i8").tofile(os.path.join(OUT, name + ".i64"))
    else:
        t.cpu().numpy().astype("<f4").tofile(os.path.join(OUT, name + ".f32"))


def rnd(*shape, scale=1.0):
    # Round inputs to float32 so the C side sees exactly the same values.
    return (torch.randn(*shape) * scale).float().double().requires_grad_(True)


# ---- linear ----------------------------------------------------------------------------------
def case_linear():
    N, IC, OC = 37, 24, 40
    x, w, b, g = rnd(N, IC), rnd(OC, IC, scale=0.2), rnd(OC), rnd(N, OC)
    y = F.linear(x, w, b)
    y.backward(g)
    for n, t in dict(x=x, w=w, b=b, g=g, y=y, dx=x.grad, dw=w.grad, db=b.grad).items():
        save("linear_" + n, t)


def case_layernorm():
    N, C = 37, 20
    x, w, b, g = rnd(N, C, scale=3.0), rnd(C), rnd(C), rnd(N, C)
    x.data += 0.5
    y = F.layer_norm(x, (C,), w, b, eps=1e-6)
    y.backward(g)
    for n, t in dict(x=x, w=w, b=b, g=g, y=y, dx=x.grad, dw=w.grad, db=b.grad).items():
        save("ln_" + n, t)


def case_gelu():
    x = (torch.linspace(-7, 7, 1001) + 0.003).float().double().requires_grad_(True)
    g = rnd(1001)
    y = F.gelu(x)  # exact (erf)
    y.backward(g)
    for n, t in dict(x=x, g=g, y=y, dx=x.grad).items():
        save("gelu_" + n, t)


def case_patch_embed():
    B, IC, H, W, p, OC = 3, 3, 16, 16, 4, 8
    img, w, b = rnd(B, IC, H, W), rnd(OC, IC, p, p, scale=0.3), rnd(OC)
    y = F.conv2d(img, w, b, stride=p).flatten(2).transpose(1, 2)  # (B, L, OC)
    g = rnd(*y.shape)
    y.backward(g)
    for n, t in dict(img=img, w=w, b=b, g=g, y=y, dw=w.grad, db=b.grad).items():
        save("pe_" + n, t)


# ---- Swin block (official code, shapes (B, L, C)) -----------------------------------------------
def window_partition(x, ws):
    B, H, W, C = x.shape
    x = x.view(B, H // ws, ws, W // ws, ws, C)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, ws, ws, C)


def window_reverse(windows, ws, H, W):
    B = int(windows.shape[0] / (H * W / ws / ws))
    x = windows.view(B, H // ws, W // ws, ws, ws, -1)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(B, H, W, -1)


def relative_position_index(ws):
    coords = torch.stack(torch.meshgrid([torch.arange(ws), torch.arange(ws)], indexing="ij"))
    cf = torch.flatten(coords, 1)
    rel = (cf[:, :, None] - cf[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += ws - 1
    rel[:, :, 1] += ws - 1
    rel[:, :, 0] *= 2 * ws - 1
    return rel.sum(-1)


def attn_mask(H, W, ws, shift):
    if shift == 0:
        return None
    img_mask = torch.zeros((1, H, W, 1))
    cnt = 0
    for h in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
        for w in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
            img_mask[:, h, w, :] = cnt
            cnt += 1
    mw = window_partition(img_mask, ws).view(-1, ws * ws)
    m = mw.unsqueeze(1) - mw.unsqueeze(2)
    return m.masked_fill(m != 0, float(-100.0)).masked_fill(m == 0, float(0.0))


def swin_block(x, P, H, W, ws, shift, heads, drop_attn, drop_mlp):
    B, L, C = x.shape
    hd = C // heads
    shortcut = x
    h = F.layer_norm(x, (C,), P["norm1_w"], P["norm1_b"], eps=1e-6).view(B, H, W, C)
    if shift > 0:
        h = torch.roll(h, shifts=(-shift, -shift), dims=(1, 2))
    xw = window_partition(h, ws).view(-1, ws * ws, C)
    B_, N, _ = xw.shape
    qkv = F.linear(xw, P["qkv_w"], P["qkv_b"]).reshape(B_, N, 3, heads, hd).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    q = q * hd ** -0.5
    attn = q @ k.transpose(-2, -1)
    idx = relative_position_index(ws)
    bias = P["rpb"][idx.view(-1)].view(N, N, -1).permute(2, 0, 1)
    attn = attn + bias.unsqueeze(0)
    mask = attn_mask(H, W, ws, shift)
    if mask is not None:
        nW = mask.shape[0]
        attn = attn.view(B_ // nW, nW, heads, N, N) + mask.unsqueeze(1).unsqueeze(0)
        attn = attn.view(-1, heads, N, N)
    attn = attn.softmax(dim=-1)
    o = (attn @ v).transpose(1, 2).reshape(B_, N, C)
    o = F.linear(o, P["proj_w"], P["proj_b"])
    o = window_reverse(o.view(-1, ws, ws, C), ws, H, W)
    if shift > 0:
        o = torch.roll(o, shifts=(shift, shift), dims=(1, 2))
    x = shortcut + drop_attn.view(B, 1, 1) * o.reshape(B, H * W, C)
    m = F.layer_norm(x, (C,), P["norm2_w"], P["norm2_b"], eps=1e-6)
    m = F.linear(F.gelu(F.linear(m, P["fc1_w"], P["fc1_b"])), P["fc2_w"], P["fc2_b"])
    return x + drop_mlp.view(B, 1, 1) * m


BLOCK_PARAMS = ["norm1_w", "norm1_b", "rpb", "qkv_w", "qkv_b", "proj_w", "proj_b",
                "norm2_w", "norm2_b", "fc1_w", "fc1_b", "fc2_w", "fc2_b"]


def case_block(tag, B, H, W, C, heads, ws, shift, drop):
    hid = 4 * C
    shapes = dict(norm1_w=(C,), norm1_b=(C,), rpb=((2 * ws - 1) ** 2, heads), qkv_w=(3 * C, C), qkv_b=(3 * C,),
                  proj_w=(C, C), proj_b=(C,), norm2_w=(C,), norm2_b=(C,), fc1_w=(hid, C), fc1_b=(hid,),
                  fc2_w=(C, hid), fc2_b=(C,))
    P = {}
    for n in BLOCK_PARAMS:
        sc = 1.0 if n.endswith("_b") or n.startswith("norm") else (C ** -0.5 if n != "rpb" else 0.5)
        P[n] = rnd(*shapes[n], scale=sc)
        if n.startswith("norm") and n.endswith("_w"):
            P[n].data += 1.0
    x = rnd(B, H * W, C)
    if drop:
        da = torch.tensor([1 / 0.9, 0.0, 1 / 0.9][:B] + [1.0] * max(0, B - 3))
        dm = torch.tensor([0.0, 1 / 0.9, 1 / 0.9][:B] + [1.0] * max(0, B - 3))
    else:
        da, dm = torch.ones(B), torch.ones(B)
    y = swin_block(x, P, H, W, ws, shift, heads, da.float().double(), dm.float().double())
    g = rnd(*y.shape)
    y.backward(g)
    save(tag + "_x", x)
    save(tag + "_g", g)
    save(tag + "_y", y)
    save(tag + "_dx", x.grad)
    save(tag + "_drop", torch.cat([da, dm]))
    save(tag + "_relpos", relative_position_index(ws))
    for n in BLOCK_PARAMS:
        save(tag + "_" + n, P[n])
        save(tag + "_d" + n, P[n].grad)


def case_merge():
    B, H, W, C = 3, 6, 10, 8
    x = rnd(B, H * W, C)
    nw, nb, rw = rnd(4 * C), rnd(4 * C), rnd(2 * C, 4 * C, scale=0.3)
    nw.data += 1.0
    xx = x.view(B, H, W, C)
    x0, x1, x2, x3 = xx[:, 0::2, 0::2, :], xx[:, 1::2, 0::2, :], xx[:, 0::2, 1::2, :], xx[:, 1::2, 1::2, :]
    m = torch.cat([x0, x1, x2, x3], -1).view(B, -1, 4 * C)
    y = F.linear(F.layer_norm(m, (4 * C,), nw, nb, eps=1e-6), rw)
    g = rnd(*y.shape)
    y.backward(g)
    for n, t in dict(x=x, nw=nw, nb=nb, rw=rw, g=g, y=y, dx=x.grad, dnw=nw.grad, dnb=nb.grad,
                     drw=rw.grad).items():
        save("merge_" + n, t)


def case_expand():
    B, H, W, C = 3, 5, 4, 8
    x = rnd(B, H * W, C)
    ew, nw, nb = rnd(2 * C, C, scale=0.3), rnd(C // 2), rnd(C // 2)
    nw.data += 1.0
    e = F.linear(x, ew).view(B, H, W, 2 * C)
    c = C // 2
    # einops 'b h w (p1 p2 c) -> b (h p1) (w p2) c', p1 = p2 = 2
    e = e.view(B, H, W, 2, 2, c).permute(0, 1, 3, 2, 4, 5).reshape(B, 2 * H * 2 * W, c)
    y = F.layer_norm(e, (c,), nw, nb, eps=1e-6)
    g = rnd(*y.shape)
    y.backward(g)
    for n, t in dict(x=x, ew=ew, nw=nw, nb=nb, g=g, y=y, dx=x.grad, dew=ew.grad, dnw=nw.grad,
                     dnb=nb.grad).items():
        save("expand_" + n, t)


def case_loss():
    B, C, H, W, p = 3, 3, 16, 16, 4
    L, K = (H // p) * (W // p), p * p * C
    img = torch.rand(B, C, H, W).float().double()
    pred = rnd(B, L, K)
    mask = (torch.rand(B, L) < 0.4).double()
    # MAE patchify: 'nchpwq->nhwpqc'
    t = img.reshape(B, C, H // p, p, W // p, p)
    t = torch.einsum("nchpwq->nhwpqc", t).reshape(B, L, K)
    loss = (((pred - t) ** 2).mean(dim=-1) * mask).sum() / mask.sum()
    loss.backward()
    for n, v in dict(img=img, pred=pred, mask=mask, target=t, loss=loss.view(1), dpred=pred.grad).items():
        save("loss_" + n, v)


case_linear()
case_layernorm()
case_gelu()
case_patch_embed()
case_block("blk_s0", 3, 14, 14, 16, 2, 7, 0, False)
case_block("blk_s3", 3, 14, 14, 64, 2, 7, 3, True)   # head_dim 32: fast attention path
case_block("blk_7x7", 3, 7, 7, 64, 2, 7, 3, False)
case_block("blk_rect", 1, 14, 21, 8, 1, 7, 3, False)
case_merge()
case_expand()
case_loss()
