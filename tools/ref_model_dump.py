"""Dump a whole-model reference case from tools/swin_mae_ref.py for the C parity tests
(forward/backward by "nn", AdamW steps by "train").

    ref_model_dump.py OUTDIR [--config S] [--batch B] [--seed S] [--mask-ratio R] [--float64]
                             [--adamw-steps N] [--lr 1e-3]

The model is built with torch.manual_seed(seed) (the reference initialisation), DropPath OFF,
and run on one batch. Files in OUTDIR (all raw files little-endian, C order, no header):

  meta.json               config (same keys as src/model/config.h), batch, seed, shapes, loss
  weights.safetensors     the model's state_dict (224 tensors at the paper config, names as in
                          PyTorch, metadata "anoswin.config"): load with checkpoint_load()
  input.f32               (B, in_chans, H, W) images, uniform [0,1)
  mask.f32 / mask.u8      (B, L) token mask, 1 = masked (L = (H/patch)^2), window masking with
                          4x4-token units as in the reference (ratio --mask-ratio, default 0.35)
  loss.f32                (1,) masked MSE
  pred.f32                (B, L, patch*patch*in_chans) decoder_pred output, (p,q,c) layout
  grads.safetensors       d loss / d tensor for every float state_dict entry, same names
                          (pos_embed: zeros, it is frozen and unused)
  grads_flat.f32          the same gradients concatenated in table order = the C gradient
                          buffer layout (n_floats = 26,936,916 at the paper config)
  acts.safetensors        intermediate outputs (B, H, W, C layout as in PyTorch):
                          "patch_embed" (after its LayerNorm, before mask-token substitution),
                          "masked_tokens" (after substitution), "layers.{i}" (each encoder
                          stage's output, after downsample), "first_patch_expanding",
                          "layers_up.{u}", "norm_up"
  adamw_losses.f32        (N+1,) losses on the same batch and mask before AdamW step 1..N and
                          after step N; torch.optim.AdamW(lr, betas (0.9, 0.95), eps 1e-8,
                          weight_decay 0.05) on every trainable tensor (pos_embed excluded),
                          constant lr, DropPath off
  weights_after_adamw.safetensors   the state_dict after N steps
  adamw_state.safetensors "exp_avg.<name>", "exp_avg_sq.<name>" after N steps (metadata "step")

With --float64 the model runs in double precision (a tighter reference) and everything is
written as float32.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
import swin_mae_ref as R  # noqa: E402


def f32(t):
    return t.detach().to(torch.float32).contiguous()


def main():
    ap = argparse.ArgumentParser(description='Dump a whole-model Swin MAE reference case')
    ap.add_argument('outdir')
    ap.add_argument('--config', default=None)
    ap.add_argument('--batch', type=int, default=2)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--mask-ratio', type=float, default=0.35)
    ap.add_argument('--float64', action='store_true')
    ap.add_argument('--adamw-steps', type=int, default=3)
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--threads', type=int, default=0, help='torch.set_num_threads (0: leave)')
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    os.makedirs(a.outdir, exist_ok=True)
    cfg = R.parse_config(a.config)
    torch.manual_seed(a.seed)
    model = R.SwinMAE(cfg)
    R.set_drop_path(model, False)
    meta = {'format': 'pt', 'anoswin.config': R.config_json(cfg)}
    safetensors_io.save_file(model.state_dict(), os.path.join(a.outdir, 'weights.safetensors'), metadata=meta)

    g = torch.Generator().manual_seed(a.seed + 1)
    B, c, H = a.batch, cfg['in_chans'], cfg['img_size']
    imgs = torch.rand(B, c, H, H, generator=g)
    mask = R.window_mask(B, cfg, ratio=a.mask_ratio, generator=g)
    imgs.numpy().astype('<f4').tofile(os.path.join(a.outdir, 'input.f32'))
    mask.numpy().astype('<f4').tofile(os.path.join(a.outdir, 'mask.f32'))
    mask.numpy().astype('u1').tofile(os.path.join(a.outdir, 'mask.u8'))

    dtype = torch.float64 if a.float64 else torch.float32
    model = model.to(dtype)
    x = imgs.to(dtype)
    m = mask.to(dtype)

    acts = {}

    def hook(name):
        def fn(_mod, _inp, out):
            acts[name] = f32(out)
        return fn
    hooks = [model.patch_embed.register_forward_hook(hook('patch_embed'))]
    for i, l in enumerate(model.layers):
        hooks.append(l.register_forward_hook(hook('layers.%d' % i)))
    hooks.append(model.first_patch_expanding.register_forward_hook(hook('first_patch_expanding')))
    for u, l in enumerate(model.layers_up):
        hooks.append(l.register_forward_hook(hook('layers_up.%d' % u)))
    hooks.append(model.norm_up.register_forward_hook(hook('norm_up')))
    hooks.append(model.layers[0].register_forward_pre_hook(
        lambda _mod, inp: acts.__setitem__('masked_tokens', f32(inp[0]))))

    model.zero_grad()
    loss, pred = model(x, m)
    loss.backward()
    for h in hooks:
        h.remove()
    np.array([loss.item()], dtype='<f4').tofile(os.path.join(a.outdir, 'loss.f32'))
    pred.detach().numpy().astype('<f4').tofile(os.path.join(a.outdir, 'pred.f32'))
    ordered = ['patch_embed', 'masked_tokens'] + ['layers.%d' % i for i in range(4)] + \
        ['first_patch_expanding'] + ['layers_up.%d' % u for u in range(3)] + ['norm_up']
    safetensors_io.save_file({k: acts[k] for k in ordered}, os.path.join(a.outdir, 'acts.safetensors'))

    params = dict(model.named_parameters())
    grads = {}
    for k, v in model.state_dict().items():
        if not v.is_floating_point():
            continue
        p = params.get(k)
        grads[k] = f32(p.grad) if p is not None and p.grad is not None else torch.zeros(v.shape, dtype=torch.float32)
    safetensors_io.save_file(grads, os.path.join(a.outdir, 'grads.safetensors'))
    np.concatenate([gr.numpy().reshape(-1) for gr in grads.values()]).astype('<f4').tofile(
        os.path.join(a.outdir, 'grads_flat.f32'))

    # AdamW steps on the same batch.
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=a.lr, betas=(0.9, 0.95),
                            eps=1e-8, weight_decay=0.05)
    losses = []
    for step in range(a.adamw_steps):
        opt.zero_grad()
        loss, _ = model(x, m)
        losses.append(loss.item())
        loss.backward()
        opt.step()
    with torch.no_grad():
        losses.append(model(x, m)[0].item())
    np.array(losses, dtype='<f4').tofile(os.path.join(a.outdir, 'adamw_losses.f32'))
    safetensors_io.save_file({k: (f32(v) if v.is_floating_point() else v) for k, v in model.state_dict().items()},
                             os.path.join(a.outdir, 'weights_after_adamw.safetensors'), metadata=meta)
    names = {id(p): k for k, p in model.named_parameters()}
    st = {}
    for p in model.parameters():
        if p in opt.state:
            s = opt.state[p]
            st['exp_avg.' + names[id(p)]] = f32(s['exp_avg'])
            st['exp_avg_sq.' + names[id(p)]] = f32(s['exp_avg_sq'])
    safetensors_io.save_file(st, os.path.join(a.outdir, 'adamw_state.safetensors'),
                             metadata={'step': str(a.adamw_steps)})

    G = cfg['img_size'] // cfg['patch_size']
    info = {
        'config': cfg, 'batch': B, 'seed': a.seed, 'mask_ratio': a.mask_ratio, 'float64': a.float64,
        'loss': losses[0], 'adamw_losses': losses, 'lr': a.lr,
        'shapes': {'input': [B, c, H, H], 'mask': [B, G * G], 'pred': [B, G * G, cfg['patch_size'] ** 2 * c]},
        'n_floats': int(sum(v.numel() for v in grads.values())),
        'masked_tokens': int(mask.sum().item()),
    }
    with open(os.path.join(a.outdir, 'meta.json'), 'w') as f:
        json.dump(info, f, indent=1)
    print('loss %.7g  adamw losses %s  -> %s' % (losses[0], ' '.join('%.7g' % v for v in losses), a.outdir))


if __name__ == '__main__':
    main()
