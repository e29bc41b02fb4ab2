"""Checkpoint interchange checks between anoswin (C) and the PyTorch reference (used by
tests/test_model_checkpoint.c).

  checkpoint_check.py torch2st OUT.safetensors FLAT.f32 [--config S] [--seed N] [--no-metadata]
      builds tools/swin_mae_ref.SwinMAE (seeded), writes its state_dict as safetensors (with
      "anoswin.config" metadata unless --no-metadata, i.e. like a converted authors' file) and
      every float tensor concatenated in state_dict order as raw <f4 (FLAT).
  checkpoint_check.py st2torch IN.safetensors FLAT.f32 [--config S]
      loads IN into the reference with load_state_dict(strict=True) (fails otherwise), checks
      the int64 index buffers, and writes the loaded float tensors as raw <f4 in state_dict order.
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
import swin_mae_ref as R  # noqa: E402


def flat(sd):
    return np.concatenate([v.detach().numpy().reshape(-1).astype('<f4') for v in sd.values() if v.dtype == torch.float32])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('what', choices=['torch2st', 'st2torch'])
    ap.add_argument('st')
    ap.add_argument('flat')
    ap.add_argument('--config', default=None)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--no-metadata', action='store_true')
    a = ap.parse_args()
    cfg = R.parse_config(a.config)
    torch.manual_seed(a.seed)
    model = R.SwinMAE(cfg)
    if a.what == 'torch2st':
        sd = model.state_dict()
        meta = None if a.no_metadata else {'format': 'pt', 'anoswin.config': R.config_json(cfg)}
        safetensors_io.save_file(sd, a.st, metadata=meta)
        flat(sd).tofile(a.flat)
    else:
        sd, meta = safetensors_io.load_file(a.st)
        if meta.get('anoswin.config') is not None:
            got = R.parse_config(meta['anoswin.config'])
            assert abs(got.pop('drop_path_rate') - cfg['drop_path_rate']) < 1e-7, meta
            assert got == {k: v for k, v in cfg.items() if k != 'drop_path_rate'}, meta
        fresh = model.state_dict()
        for k, v in sd.items():
            if v.dtype == torch.int64:
                assert torch.equal(v, fresh[k]), k
        model.load_state_dict(sd, strict=True)
        flat(model.state_dict()).tofile(a.flat)


if __name__ == '__main__':
    main()
