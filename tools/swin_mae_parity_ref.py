#!/usr/bin/env python3
"""Whole-model reference for tests/test_model_parity.c, built on tools/swin_mae_ref.py.

Usage: swin_mae_parity_ref.py OUTDIR CONFIG B SEED

Builds the reference model for CONFIG (the C-compatible "k=v,..." string; "" = paper config),
perturbs every LayerNorm and bias so that none is the trivial 1/0, turns DropPath off, and runs
one forward/backward in float64 on uniform images and the reference's window mask (ratio 0.35).
Writes (float32 little-endian unless noted):
  names.txt   one "name numel" line per F32 state_dict entry, in state_dict order
  params.f32  all F32 state_dict tensors concatenated in that order
  images.f32  (B, in_chans, H, W);  mask.u8 (B, L) uint8
  loss.f32    (1,);  pred.f32 (B, L, p*p*in_chans)
  grads.f32   gradients in the params.f32 layout (zeros for the frozen pos_embed)
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import swin_mae_ref as R  # noqa: E402

out, cfg_text, B, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
os.makedirs(out, exist_ok=True)
torch.manual_seed(seed)
cfg = R.parse_config(cfg_text or None)
model = R.SwinMAE(cfg)
R.set_drop_path(model, False)
with torch.no_grad():
    for name, p in model.named_parameters():
        if name.endswith('bias') or 'norm' in name:
            p.add_(0.05 * torch.randn_like(p))
model = model.double()

g = torch.Generator().manual_seed(seed + 1)
imgs = torch.rand(B, cfg['in_chans'], cfg['img_size'], cfg['img_size'], generator=g).float()
mask = R.window_mask(B, cfg, ratio=0.35, unit=4, generator=g)
loss, pred = model(imgs.double(), mask.double())
loss.backward()

sd = model.state_dict()
params = dict(model.named_parameters())
flat_p, flat_g, lines = [], [], []
for name, t in sd.items():
    if t.dtype == torch.int64:
        continue
    flat_p.append(t.detach().float().reshape(-1).numpy())
    p = params.get(name)
    grad = p.grad if p is not None and p.grad is not None else torch.zeros_like(t)
    flat_g.append(grad.detach().float().reshape(-1).numpy())
    lines.append('%s %d' % (name, t.numel()))
with open(os.path.join(out, 'names.txt'), 'w') as f:
    f.write('\n'.join(lines) + '\n')
np.concatenate(flat_p).astype('<f4').tofile(os.path.join(out, 'params.f32'))
np.concatenate(flat_g).astype('<f4').tofile(os.path.join(out, 'grads.f32'))
imgs.numpy().astype('<f4').tofile(os.path.join(out, 'images.f32'))
mask.numpy().astype(np.uint8).tofile(os.path.join(out, 'mask.u8'))
np.array([loss.item()], dtype='<f4').tofile(os.path.join(out, 'loss.f32'))
pred.detach().float().numpy().astype('<f4').tofile(os.path.join(out, 'pred.f32'))
