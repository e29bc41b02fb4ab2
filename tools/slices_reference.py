#!/usr/bin/env python3
"""Independent reference for anoswin's slice pipeline (nibabel + PyTorch, as the authors' code).

Usage: slices_reference.py IMAGE SIZE Z0 Z1 NORM PLO PHI PREFIX [MASK]
       slices_reference.py --batch FILE   (one argument list per line, one process for all)
  NORM: minmax | pct.  Z0 = -1: every slice.

Writes (all '<f4'):
  PREFIX.img.f4    (n,S,S) model images: as_closest_canonical -> F.interpolate(trilinear,
                   align_corners=True, size (S,S,D)) -> min-max over the volume (or brain
                   percentiles PLO..PHI clipped to [0,1], 0 outside the brain) -> slices Z0..Z1;
                   pixel [h][w] = canonical[h, w, k]
  PREFIX.brain.f4  (n,S,S) 1 inside the brain: resized image > 0, or the resized binary MASK >= 0.5
  PREFIX.maps.f4   (n,S,S) a test map on the model grid (the image times a ramp)
  PREFIX.native.f4 the map taken back: bilinear align_corners to the canonical in-plane grid,
                   zeros outside Z0..Z1, then undo the reorientation (x fastest, native grid)
  PREFIX.nearest.f4 the same with nearest neighbour (source index floor(dst*(in-1)/(out-1)+0.5))
  PREFIX.labels.f4 (n,S,S) only with MASK: canonical MASK > 0 taken to the model grid by nearest
                   neighbour (same rounding), slices Z0..Z1
"""
import shlex
import sys

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F
from nibabel.orientations import apply_orientation, axcodes2ornt, io_orientation, ornt_transform


def canonical(path):
    img = nib.load(path)
    can = nib.as_closest_canonical(img)
    return img, np.asarray(can.get_fdata(), dtype=np.float32)


def resize(vol, S):
    t = torch.from_numpy(np.ascontiguousarray(vol))[None, None]
    return F.interpolate(t, size=(S, S, vol.shape[2]), mode='trilinear', align_corners=True)[0, 0].numpy()


def run(argv):
    path, S, z0, z1, norm, plo, phi, prefix = argv[:8]
    mask_path = argv[8] if len(argv) > 8 else None
    S, z0, z1, plo, phi = int(S), int(z0), int(z1), float(plo), float(phi)
    img, can = canonical(path)
    rv = resize(can, S)
    if mask_path:
        _, m = canonical(mask_path)
        brain = resize((m > 0).astype(np.float32), S) >= 0.5
    else:
        brain = rv > 0
    if norm == 'minmax':
        t = torch.from_numpy(rv)
        out = ((t - t.min()) / (t.max() - t.min())).numpy()
    else:
        lo, hi = np.percentile(rv[brain], [plo, phi])
        out = np.where(brain, np.clip((rv - np.float32(lo)) / np.float32(hi - lo), 0, 1), 0).astype(np.float32)
    if z0 < 0:
        z0, z1 = 0, can.shape[2] - 1
    ks = list(range(z0, z1 + 1))
    imgs = np.stack([out[:, :, k] for k in ks])
    np.ascontiguousarray(imgs, dtype='<f4').tofile(prefix + '.img.f4')
    np.ascontiguousarray(np.stack([brain[:, :, k] for k in ks]), dtype='<f4').tofile(prefix + '.brain.f4')
    ramp = (1 + np.arange(S, dtype=np.float32)[:, None] / S + 0.5 * np.arange(S, dtype=np.float32)[None, :] / S)
    maps = (imgs * ramp).astype(np.float32)
    maps.tofile(prefix + '.maps.f4')
    rx, ry, rz = can.shape
    if mask_path:
        ja = np.minimum(np.floor(np.arange(S) * (rx - 1) / (S - 1) + 0.5).astype(int), rx - 1)
        jb = np.minimum(np.floor(np.arange(S) * (ry - 1) / (S - 1) + 0.5).astype(int), ry - 1)
        lab = np.stack([(m[:, :, k] > 0)[ja][:, jb] for k in ks])
        np.ascontiguousarray(lab, dtype='<f4').tofile(prefix + '.labels.f4')
    # Back to the canonical grid: bilinear (torch) and nearest (explicit rounding).
    lin = np.zeros(can.shape, np.float32)
    near = np.zeros(can.shape, np.float32)
    ia = np.minimum(np.floor(np.arange(rx) * (S - 1) / max(rx - 1, 1) + 0.5).astype(int), S - 1)
    ib = np.minimum(np.floor(np.arange(ry) * (S - 1) / max(ry - 1, 1) + 0.5).astype(int), S - 1)
    for n, k in enumerate(ks):
        t = torch.from_numpy(maps[n])[None, None]
        lin[:, :, k] = F.interpolate(t, size=(rx, ry), mode='bilinear', align_corners=True)[0, 0].numpy()
        near[:, :, k] = maps[n][ia][:, ib]
    # Canonical (RAS) -> the file's own orientation.
    back = ornt_transform(axcodes2ornt('RAS'), io_orientation(img.affine))
    for arr, suffix in ((lin, '.native.f4'), (near, '.nearest.f4')):
        nat = apply_orientation(arr, back)
        assert nat.shape == img.shape[:3], (nat.shape, img.shape)
        assert np.array_equal(apply_orientation(nat, io_orientation(img.affine)), arr)
        nat.astype('<f4').ravel(order='F').tofile(prefix + suffix)


def main():
    if sys.argv[1] == '--batch':
        for line in open(sys.argv[2]):
            if line.strip():
                run(shlex.split(line))
    else:
        run(sys.argv[1:])


if __name__ == '__main__':
    main()
