"""Minimal safetensors reader/writer for torch tensors, in pure Python (Debian 12 ships no
python3-safetensors). Format: u64 little-endian header length N, N bytes of JSON
{"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...,
 "__metadata__": {"key": "string value"}}, padded with spaces to a multiple of 8, then the
tensor bytes (offsets relative to the end of the header, contiguous, little-endian, row-major).

    save_file({"w": tensor, ...}, path, metadata={"k": "v"})   # keeps the dict's order
    tensors, metadata = load_file(path)                         # OrderedDict name -> tensor
"""
import collections
import json
import os
import struct

import numpy as np
import torch

_DTYPES = {  # safetensors name -> (torch dtype, numpy dtype or None, bytes)
    'F64': (torch.float64, '<f8', 8), 'F32': (torch.float32, '<f4', 4), 'F16': (torch.float16, '<f2', 2),
    'BF16': (torch.bfloat16, None, 2), 'I64': (torch.int64, '<i8', 8), 'I32': (torch.int32, '<i4', 4),
    'I16': (torch.int16, '<i2', 2), 'I8': (torch.int8, 'i1', 1), 'U8': (torch.uint8, 'u1', 1),
    'BOOL': (torch.bool, '?', 1),
}
_BY_TORCH = {v[0]: k for k, v in _DTYPES.items()}


class SafetensorsError(ValueError):
    pass


def save_file(tensors, path, metadata=None):
    """Writes tensors (name -> torch.Tensor) in the given order; atomic (temp file + rename)."""
    header, blobs, off = {}, [], 0
    if metadata:
        header['__metadata__'] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        if t.dtype not in _BY_TORCH:
            raise SafetensorsError('%s: tensor %s has unsupported dtype %s' % (path, name, t.dtype))
        dt = _BY_TORCH[t.dtype]
        if t.dtype == torch.bfloat16:
            b = t.view(torch.int16).numpy().astype('<i2').tobytes()
        else:
            b = t.numpy().astype(_DTYPES[dt][1], copy=False).tobytes()
        header[name] = {'dtype': dt, 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(',', ':')).encode('utf-8')
    h += b' ' * ((8 - len(h) % 8) % 8)
    tmp = '%s.tmp-%d' % (path, os.getpid())
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_file(path):
    """Returns (OrderedDict name -> tensor in file-header order, metadata dict). Validates the
    header strictly (sizes, contiguous offsets, exact file length)."""
    with open(path, 'rb') as f:
        data = f.read()
    if len(data) < 8:
        raise SafetensorsError('%s: too short for a safetensors file' % path)
    n = struct.unpack('<Q', data[:8])[0]
    if n > len(data) - 8 or n > 100 << 20:
        raise SafetensorsError('%s: header length %d exceeds the file' % (path, n))
    try:
        header = json.loads(data[8:8 + n].decode('utf-8'), object_pairs_hook=collections.OrderedDict)
    except ValueError as e:
        raise SafetensorsError('%s: header is not JSON (%s)' % (path, e))
    meta = header.pop('__metadata__', {}) or {}
    base = 8 + n
    out = collections.OrderedDict()
    spans = []
    for name, info in header.items():
        dt = info.get('dtype')
        if dt not in _DTYPES:
            raise SafetensorsError('%s: tensor %s has unknown dtype %r' % (path, name, dt))
        tdt, ndt, size = _DTYPES[dt]
        shape = [int(s) for s in info['shape']]
        b, e = info['data_offsets']
        if e - b != int(np.prod(shape, dtype=np.int64)) * size:
            raise SafetensorsError('%s: tensor %s: shape %s does not match its %d bytes' % (path, name, shape, e - b))
        spans.append((b, e, name))
        raw = data[base + b:base + e]
        if tdt == torch.bfloat16:
            t = torch.from_numpy(np.frombuffer(raw, dtype='<i2').copy()).view(torch.bfloat16)
        else:
            t = torch.from_numpy(np.frombuffer(raw, dtype=ndt).astype(ndt[-2:] if ndt[0] == '<' else ndt).copy())
        out[name] = t.reshape(shape)
    pos = 0
    for b, e, name in sorted(spans):
        if b != pos:
            raise SafetensorsError('%s: tensor %s: data offsets not contiguous' % (path, name))
        pos = e
    if base + pos != len(data):
        raise SafetensorsError('%s: file length %d, header describes %d' % (path, len(data), base + pos))
    return out, dict(meta)
