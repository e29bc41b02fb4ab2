#!/usr/bin/env python3
"""Fixtures and the independent reference (NumPy/SciPy/nibabel) for detect's input guard
(src/data/fingerprint.h, tests/test_input_guard.sh).

Usage:
  guard_fixtures.py make T2 T1 CH2 CKPT OUTDIR
      writes into OUTDIR, each unlike the training data (T2 scans) in one way, the last in several:
        voxel.nii       T2 resampled (linear) onto the same dimensions with 1.1 x 1.1 x 1.3 mm
                        voxels, centred on the same point: only the voxel size differs
        crop.nii        T2 cropped to 200 x 216 x 155 voxels (1 mm, world positions kept): only
                        the grid differs
        shell.nii       T2 with a scalp-like shell 3..16 voxels outside its foreground
        shell_mask.nii  (chessboard distance; intensity: the brain's median), and T2 > 0 as the
                        brain mask: a head around the same brain
        scan_b.nii      T1 under a name that says nothing: only the intensities differ
        colin_t1.nii    the Colin27 head with skull (mricron's ch2.nii.gz), T1, on a
                        1.1 x 1.1 x 1.3 mm grid covering its field of view (issue 18's case)
        old.safetensors CKPT without its anoswin.fingerprint metadata (an older checkpoint)
  guard_fixtures.py scan SUMMARY IMAGE [MASK]
      detect's summary.json "input_guard.scan" against NumPy
  guard_fixtures.py print CKPT IMAGE...
      the checkpoint's anoswin.fingerprint against NumPy over the training volumes
"""
import json
import struct
import sys

import nibabel as nib
import numpy as np
from scipy import ndimage

LEVELS = [5.0 * (i + 1) for i in range(19)]


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def load(path):
    img = nib.load(path)
    return img, np.asarray(img.dataobj, dtype=np.float32)


def save(data, affine, path, dtype=np.float32):
    img = nib.Nifti1Image(np.asarray(data, dtype=dtype), affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    nib.save(img, path)


def resample(src, src_aff, shape, aff):
    """src (linear) at the world positions of the voxels of (shape, aff), both axis-aligned."""
    m = np.linalg.solve(src_aff, aff)  # output voxel -> source voxel
    if np.abs(m[:3, :3] - np.diag(np.diag(m[:3, :3]))).max() > 1e-9:
        fail("resample: the grids are not axis-aligned with each other")
    return ndimage.affine_transform(src, np.diag(m[:3, :3]), offset=m[:3, 3], output_shape=shape, order=1,
                                    mode="constant", cval=0.0)


def centre_world(shape, aff):
    return aff[:3, :3] @ ((np.array(shape) - 1) / 2.0) + aff[:3, 3]


def grid(shape, zooms, centre):
    aff = np.diag(list(zooms) + [1.0])
    aff[:3, 3] = centre - aff[:3, :3] @ ((np.array(shape) - 1) / 2.0)
    return aff


def strip_fingerprint(ckpt, out):
    with open(ckpt, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    header["__metadata__"].pop("anoswin.fingerprint")
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def cmd_make(t2, t1, ch2, ckpt, d):
    img, a = load(t2)
    aff = grid(a.shape, (1.1, 1.1, 1.3), centre_world(a.shape, img.affine))
    save(np.maximum(resample(a, img.affine, a.shape, aff), 0), aff, f"{d}/voxel.nii")

    shape = (200, 216, 155)
    o = [(a.shape[i] - shape[i]) // 2 for i in range(3)]
    caff = img.affine.copy()
    caff[:3, 3] = img.affine[:3, :3] @ np.array(o, dtype=np.float64) + img.affine[:3, 3]
    save(a[o[0]:o[0] + shape[0], o[1]:o[1] + shape[1], o[2]:o[2] + shape[2]], caff, f"{d}/crop.nii")

    brain = a > 0
    dist = ndimage.distance_transform_cdt(~brain, metric="chessboard")
    b = a.copy()
    b[(dist >= 3) & (dist <= 16)] = np.median(a[brain])
    save(b, img.affine, f"{d}/shell.nii")
    save(brain, img.affine, f"{d}/shell_mask.nii", np.uint8)

    timg, ta = load(t1)
    save(ta, timg.affine, f"{d}/scan_b.nii")

    himg, h = load(ch2)
    zooms = (1.1, 1.1, 1.3)
    ext = np.array(h.shape) * np.array(himg.header.get_zooms()[:3])
    hshape = tuple(int(np.floor(e / z)) for e, z in zip(ext, zooms))
    haff = grid(hshape, zooms, centre_world(h.shape, himg.affine))
    save(np.maximum(resample(h, himg.affine, hshape, haff), 0), haff, f"{d}/colin_t1.nii", np.int16)

    strip_fingerprint(ckpt, f"{d}/old.safetensors")


def measure(image, mask=None):
    img, a = load(image)
    z = [abs(float(v)) for v in img.header.get_zooms()[:3]]
    fg = a > 0
    faces = np.zeros(a.shape, bool)
    faces[[0, -1], :, :] = faces[:, [0, -1], :] = faces[:, :, [0, -1]] = True
    brain = (load(mask)[1] > 0) if mask else fg
    v = a[brain].astype(np.float64)
    raw = np.percentile(v, [1, 50, 99])
    unit = raw[2] if raw[2] != 0 else 1.0
    return {
        "grid": list(a.shape), "voxel_mm": z, "orientation": "".join(nib.aff2axcodes(img.affine)),
        "foreground_ml": fg.sum() * float(np.prod(z)) / 1000.0,
        "border_share": fg[faces].mean(), "brain_voxels": int(brain.sum()),
        "brain_raw_q01_q50_q99": raw, "brain_quantiles": np.percentile(v, LEVELS) / unit,
    }


def close(name, got, want, tol):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    err = np.max(np.abs(got - want) / (np.abs(want) + 1e-3)) if got.size else 0.0
    if got.shape != want.shape or not err <= tol:
        fail(f"{name}: got {got}, NumPy {want} (relative error {err:.3g})")
    print(f"{name}: OK (max relative error {err:.2g})")


def cmd_scan(summary, image, mask=None):
    s = json.load(open(summary))["input_guard"]["scan"]
    m = measure(image, mask)
    for k in ("grid", "orientation", "brain_voxels"):
        if s[k] != m[k]:
            fail(f"{k}: got {s[k]}, nibabel/NumPy {m[k]}")
    for k, tol in (("voxel_mm", 1e-6), ("foreground_ml", 1e-9), ("border_share", 1e-12),
                   ("brain_raw_q01_q50_q99", 1e-6), ("brain_quantiles", 1e-6)):
        close(k, s[k], m[k], tol)


def checkpoint_meta(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)).get("__metadata__", {})


def cmd_print(ckpt, images):
    fp = json.loads(checkpoint_meta(ckpt)["anoswin.fingerprint"])
    ms = [measure(p) for p in images]
    if fp["scans"] != len(ms):
        fail(f"scans: {fp['scans']}, expected {len(ms)}")
    fg = [m["foreground_ml"] for m in ms]
    close("foreground_ml_min_mean_max", fp["foreground_ml_min_mean_max"], [min(fg), np.mean(fg), max(fg)], 1e-9)
    close("border_share_max", fp["border_share_max"], max(m["border_share"] for m in ms), 1e-12)
    close("brain_raw_q01_q50_q99", fp["brain_raw_q01_q50_q99"],
          np.mean([m["brain_raw_q01_q50_q99"] for m in ms], axis=0), 1e-6)
    q = np.array([m["brain_quantiles"] for m in ms])
    mean = q.mean(axis=0)
    close("brain_quantiles", fp["brain_quantiles"], mean, 1e-6)
    close("quantile_spread", fp["quantile_spread"], np.abs(q - mean).mean(axis=1).max(), 1e-5)
    if fp["grid"] != list(ms[0]["grid"]) or fp["orientation"] != ms[0]["orientation"]:
        fail(f"grid/orientation {fp['grid']} {fp['orientation']}")
    print("fingerprint: OK")


def main():
    a = sys.argv[1:]
    if a and a[0] == "make" and len(a) == 6:
        cmd_make(*a[1:])
    elif a and a[0] == "scan" and len(a) in (3, 4):
        cmd_scan(*a[1:])
    elif a and a[0] == "print" and len(a) >= 3:
        cmd_print(a[1], a[2:])
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
