"""Convert Swin MAE checkpoints between PyTorch .pth and safetensors (tensor names unchanged).

    convert_checkpoint.py IN.pth OUT.safetensors [--config S]   # authors' checkpoint -> anoswin
    convert_checkpoint.py IN.safetensors OUT.pth                 # anoswin -> PyTorch state_dict

A .pth may be a raw state_dict or a dict holding it under 'model' (the authors' training
script saves {'model': ..., 'optimizer': ..., 'epoch': ...}). The state_dict is checked with
load_state_dict(strict=True) against tools/swin_mae_ref.py for the config given by --config,
the file's metadata, or inferred from the tensor shapes. The safetensors metadata gets
"anoswin.config" (the config JSON) so `anoswin` knows the model; the .pth written is a plain
state_dict that the authors' model loads with strict=True.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
import swin_mae_ref as R  # noqa: E402


def infer_config(sd):
    """Config from the state_dict shapes (for files with no metadata)."""
    cfg = R.parse_config(None)
    pw = sd['patch_embed.proj.weight']
    cfg['embed_dim'], cfg['in_chans'], cfg['patch_size'] = pw.shape[0], pw.shape[1], pw.shape[2]
    L = sd['pos_embed'].shape[1]
    g = int(round(L ** 0.5))
    cfg['img_size'] = g * cfg['patch_size']
    for i in range(4):
        j = 0
        while 'layers.%d.blocks.%d.norm1.weight' % (i, j) in sd:
            j += 1
        cfg['depths'][i] = j
        cfg['num_heads'][i] = sd['layers.%d.blocks.0.attn.relative_position_bias_table' % i].shape[1]
    cfg['window'] = (int(round(sd['layers.0.blocks.0.attn.relative_position_bias_table'].shape[0] ** 0.5)) + 1) // 2
    cfg['mlp_ratio'] = sd['layers.0.blocks.0.mlp.fc1.weight'].shape[0] // cfg['embed_dim']
    return cfg


def load_any(path):
    if path.endswith('.safetensors'):
        sd, meta = safetensors_io.load_file(path)
        return sd, meta
    obj = torch.load(path, map_location='cpu')
    if isinstance(obj, dict) and 'model' in obj and isinstance(obj['model'], dict):
        obj = obj['model']
    if not isinstance(obj, dict):
        raise SystemExit('%s: not a state_dict' % path)
    return dict(obj), {}


def main():
    ap = argparse.ArgumentParser(description='Convert Swin MAE checkpoints .pth <-> .safetensors')
    ap.add_argument('src')
    ap.add_argument('dst')
    ap.add_argument('--config', default=None, help='model config ("k=v,..." or JSON); default: metadata or inferred')
    a = ap.parse_args()
    sd, meta = load_any(a.src)
    if a.config:
        cfg = R.parse_config(a.config)
    elif 'anoswin.config' in meta:
        cfg = R.parse_config(meta['anoswin.config'])
    else:
        cfg = infer_config(sd)
    model = R.SwinMAE(cfg)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise SystemExit('%s: does not match the Swin MAE model (%s): %s' % (a.src, R.config_json(cfg), e))
    out = model.state_dict()  # reference order and dtypes
    if a.dst.endswith('.safetensors'):
        meta = dict(meta)
        meta['anoswin.method'] = 'swinmae'  # the type tag; untagged files load as the Swin MAE too
        meta['anoswin.config'] = R.config_json(cfg)
        meta.setdefault('format', 'pt')
        safetensors_io.save_file(out, a.dst, metadata=meta)
    else:
        tmp = a.dst + '.tmp-%d' % os.getpid()
        torch.save(out, tmp)
        os.replace(tmp, a.dst)
    print('%s -> %s: %d tensors, config %s' % (a.src, a.dst, len(out), R.config_json(cfg)))


if __name__ == '__main__':
    main()
