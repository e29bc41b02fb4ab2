"""What the PyTorch references of the engine's convolutional models share (tools/vae_ref.py,
tools/fanogan_ref.py) and their benchmarks (bench/torch_train_step_*.py) use: the config text as
anoswin takes it, float32-exact parity cases, the raw .f32 files the C tests read, the state_dict
written as a tagged anoswin checkpoint and strictly loaded back, and the tensor table that
`anoswin info --model --method M` prints."""
import json
import os
import re
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import load_file, save_file  # noqa: E402


def parse_config(text):
    """The config as anoswin takes it: a JSON file or object, or a key=value list (numbers only)."""
    if not text:
        return {}
    if os.path.isfile(text):
        text = open(text).read()
    text = text.strip()
    if text.startswith("{"):
        return json.loads(text)
    out = {}
    for part in filter(None, re.split(r"\s*,\s*", text)):
        k, v = part.split("=", 1)
        out[k.strip()] = float(v) if re.search(r"[.eE]", v) else int(v)
    return out


def f32(t):
    """t rounded to float32 (kept in t's dtype): values both sides hold exactly."""
    return t.detach().float().double()


def saver(out):
    """save(name, tensor) -> OUT/name.f32, raw little-endian float32 (tests/helpers tu_read_f32)."""
    os.makedirs(out, exist_ok=True)

    def save(name, t):
        t.detach().cpu().numpy().astype("<f4").tofile(os.path.join(out, name + ".f32"))

    return save


def perturb(m, is_norm, batches_tracked):
    """Moves the normalisation layers' scales and offsets (parameters whose name satisfies is_norm)
    away from 1 and 0 and the BatchNorm running statistics away from 0 and 1, so that a parity
    check can see them, and rounds every parameter to float32. Draws from torch's global RNG."""
    with torch.no_grad():
        for name, p in m.named_parameters():
            if is_norm(name) and name.endswith("weight"):
                p.copy_(1 + 0.3 * torch.randn_like(p))
            elif is_norm(name) and name.endswith("bias"):
                p.copy_(0.2 * torch.randn_like(p))
            p.copy_(f32(p))
        for name, b in m.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(f32(0.1 * torch.randn_like(b)))
            elif name.endswith("running_var"):
                b.copy_(f32(0.5 + torch.rand_like(b)))
            elif name.endswith("num_batches_tracked"):
                b.fill_(batches_tracked)  # any count loads (the C models keep none)


def save_checkpoint(m, path, method, cfg):
    """m's state_dict as an anoswin checkpoint of `method` with config cfg (float tensors in float32)."""
    sd = {k: (v.float() if v.dtype == torch.float64 else v) for k, v in m.state_dict().items()}
    meta = {"format": "pt", "anoswin.method": method, "anoswin.config": json.dumps(cfg, separators=(",", ":"))}
    save_file(sd, path, metadata=meta)


def load_checkpoint(ckpt, method, build):
    """An anoswin checkpoint of `method` loaded with strict=True into build(**config) (float64,
    evaluation mode). Returns (model, config, number of tensors)."""
    tensors, meta = load_file(ckpt)
    assert meta.get("anoswin.method") == method, "not a %s checkpoint: %r" % (method, meta.get("anoswin.method"))
    cfg = json.loads(meta["anoswin.config"])
    m = build(**cfg).double()
    m.load_state_dict({k: (v.double() if v.is_floating_point() else v) for k, v in tensors.items()}, strict=True)
    m.eval()
    return m, cfg, len(tensors)


def read_images(path, B, cfg):
    """B images (B, in_chans, img_size, img_size) from a raw float32 file, as float64."""
    shape = (B, cfg["in_chans"], cfg["img_size"], cfg["img_size"])
    return torch.from_numpy(np.fromfile(path, dtype="<f4").astype(np.float64).reshape(shape))


def print_names(m):
    """The state_dict as `anoswin info --model` lists it: "name dtype shape" per tensor (shape
    "scalar" for 0-d), then "all N" (every float tensor) and "trainable N" (the parameters)."""
    sd = m.state_dict()
    for k, v in sd.items():
        dtype = "F32" if v.is_floating_point() else "I64"
        print(k, dtype, "x".join(str(d) for d in v.shape) if v.dim() else "scalar")
    print("all", sum(v.numel() for v in sd.values() if v.is_floating_point()))
    print("trainable", sum(p.numel() for p in m.parameters()))
