#!/usr/bin/python3
"""indep_sets.py: a second, independent generator of T2 lesion test sets (a PROXY, written in this
repository, of the steering's external sets of issue 13; not those sets).

    indep_sets.py OUT --healthy H --test T --seed S [--contrast faint|t2] [--template ch2bet.nii.gz]

Writes OUT/healthy/<id>/<id>_t2.nii.gz and OUT/test/<id>/<id>_{t2,seg}.nii.gz (id = BraTS2021_NNNNN,
the BraTS21 layout `anoswin data list` recognises) on the 240x240x155 1 mm grid. Everything is
deliberately unlike `anoswin data synth` (src/data/synth.c), so that a detector tuned on synth's
sets meets a generator it was not shaped by:
- anatomy: Colin27 (ch2bet) split into soft CSF/GM/WM posteriors by a 3-class Gaussian mixture
  (EM on the T1 intensities), not a hard k-means map; warped by a random affine (rotation, scale,
  shear) plus a dense displacement field made of Gaussian-smoothed noise (not a control grid);
- contrast: per-subject class T2 values mixed by the posteriors, a multiplicative tissue texture,
  a Gaussian PSF of random width, a bias field made of smoothed noise (not cosines), additive
  spatially correlated Gaussian noise (not Rician), a random int16 scale;
- lesions: 1-2 per test subject, equivalent radius 6-18 mm, centre anywhere in the brain between
  axial slices 40 and 120 (so many scored slices have none, some subjects none in 60..109), about
  a third placed against a lateral ventricle; each an irregular blob (a level set of radius plus
  smoothed noise, anisotropic), a heterogeneous hyperintense core (label 1, with bright necrotic
  spots) inside a rim of milder edema (label 2), never inside the ventricles.
Lesion contrast (--contrast): `faint` (session 8's sets; the default, so they stay reproducible)
puts the edema at max(tissue, 0.62..0.78) and the core at 0.78..0.95 (CSF = 1, GM 0.55..0.70):
the edema, two thirds of the lesion, then lies inside grey matter's range (median at the brain's
75th percentile) and even an oracle threshold finds little. `t2` (session 12) follows published
T2 relaxation times instead: vasogenic edema (T2 ~150-250 ms against grey matter's ~100 ms and
CSF's ~2000 ms) is 1.3-1.8x as bright as grey matter on a T2-weighted scan, between grey matter
and CSF, so the edema is 0.80..0.95 and the core 0.75..1.05 with brighter cystic spots.
Deterministic: subject i of a set depends only on (seed, healthy|test, i).
"""
import argparse
import os
import sys

import nibabel as nib
import numpy as np
from scipy import ndimage as ndi

GRID = (240, 240, 155)
TEMPLATE = "/usr/share/mricron/templates/ch2bet.nii.gz"


def load_template(path):
    """Colin27 on the grid (bounding box centred), its soft tissue posteriors and ventricles."""
    im = nib.load(path)
    t1 = np.asarray(im.get_fdata(), np.float32)
    nzv = np.argwhere(t1 > 0)
    lo, hi = nzv.min(0), nzv.max(0)
    out = np.zeros(GRID, np.float32)
    src, dst = [], []
    for d in range(3):
        size = hi[d] - lo[d] + 1
        off = (GRID[d] - size) // 2  # may be negative: crop symmetrically
        s0, d0 = lo[d] + max(0, -off), max(0, off)
        n = min(size - max(0, -off), GRID[d] - d0)
        src.append(slice(s0, s0 + n))
        dst.append(slice(d0, d0 + n))
    out[tuple(dst)] = t1[tuple(src)]
    brain = out > 0
    x = out[brain].astype(np.float64)
    # 3-class 1-D Gaussian mixture by EM, started at quantiles: posteriors of CSF < GM < WM.
    mu = np.quantile(x, [0.1, 0.45, 0.85])
    sd = np.full(3, x.std() / 4)
    w = np.full(3, 1 / 3)
    for _ in range(40):
        lik = w * np.exp(-0.5 * ((x[:, None] - mu) / sd) ** 2) / sd
        post = lik / np.maximum(lik.sum(1, keepdims=True), 1e-300)
        nk = post.sum(0)
        w = nk / len(x)
        mu = (post * x[:, None]).sum(0) / nk
        sd = np.sqrt((post * (x[:, None] - mu) ** 2).sum(0) / nk) + 1e-3
    order = np.argsort(mu)
    post = post[:, order]
    chans = np.zeros((7,) + GRID, np.float32)  # p_csf, p_gm, p_wm, brain, ventricle, depth, ventricle distance
    for c in range(3):
        chans[c][brain] = post[:, c]
    chans[3] = brain
    # Lateral ventricles: CSF deep inside the brain, the big connected pieces.
    depth = ndi.distance_transform_edt(brain)
    deep_csf = (chans[0] > 0.6) & (depth > 14)
    lab, n = ndi.label(deep_csf)
    sizes = ndi.sum(deep_csf, lab, range(1, n + 1))
    chans[4] = np.isin(lab, 1 + np.flatnonzero(sizes > 400))
    # Distances are warped with the anatomy (the warp is mild) instead of recomputed per subject.
    chans[5] = depth
    chans[6] = ndi.distance_transform_edt(chans[4] == 0)
    # Every subject lives in the brain's bounding box plus a margin: work there only.
    nzg = np.argwhere(brain)
    crop = tuple(slice(max(0, l - 12), min(g, h + 13)) for l, h, g in zip(nzg.min(0), nzg.max(0), GRID))
    return chans, (out / mu[order][2]).astype(np.float32), crop, im.affine


def smooth_noise(rng, shape, sigma):
    f = ndi.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma)
    return f / max(float(f.std()), 1e-6)


def random_warp(rng, crop):
    """Pull-back coordinates of the crop's voxels: random affine about the grid centre plus a
    smooth dense field."""
    a = np.deg2rad(rng.uniform(-5, 5, 3))
    rx = np.array([[1, 0, 0], [0, np.cos(a[0]), -np.sin(a[0])], [0, np.sin(a[0]), np.cos(a[0])]])
    ry = np.array([[np.cos(a[1]), 0, np.sin(a[1])], [0, 1, 0], [-np.sin(a[1]), 0, np.cos(a[1])]])
    rz = np.array([[np.cos(a[2]), -np.sin(a[2]), 0], [np.sin(a[2]), np.cos(a[2]), 0], [0, 0, 1]])
    shear = np.eye(3) + np.triu(rng.uniform(-0.03, 0.03, (3, 3)), 1)
    m = rz @ ry @ rx @ shear @ np.diag(rng.uniform(0.93, 1.07, 3))
    t = rng.uniform(-3, 3, 3) * np.array([1, 1, 0.6])
    # Dense field: noise on a 4 mm grid, smoothed (~24 mm), about 2.5 mm rms, upsampled.
    shape = tuple(c.stop - c.start for c in crop)
    coarse = tuple(g // 4 + 1 for g in shape)
    amp = rng.uniform(1.5, 3.5)
    field = [ndi.zoom(smooth_noise(rng, coarse, 6) * amp, 4, order=1)[: shape[0], : shape[1], : shape[2]] for _ in range(3)]
    c = (np.array(GRID) - 1) / 2
    idx = np.indices(shape, np.float32) + np.array([c.start for c in crop], np.float32)[:, None, None, None]
    coords = [c[r] + t[r] + field[r] + sum(m[r, k] * (idx[k] - c[k]) for k in range(3)) for r in range(3)]
    return np.array(coords, np.float32)


def place_centre(rng, brain, vent, depth, dvent, z0, radius, near_ventricle):
    """A lesion centre between axial 40 and 120, inside the brain at depth >= radius/2; when
    near_ventricle, against a ventricle wall so that the blob touches it."""
    zs = z0 + np.arange(brain.shape[2])[None, None, :]
    ok = (depth >= radius / 2) & (zs >= 40) & (zs <= 120) & ~vent & brain
    if near_ventricle and vent.any():
        ring = ok & (np.abs(dvent - 0.6 * radius) < 1.0)
        if ring.any():
            ok = ring
    cand = np.argwhere(ok)
    return cand[rng.integers(len(cand))]


CONTRAST = {  # (core lo, hi), (edema lo, hi), cystic spots (lo, hi); CSF = 1
    "faint": ((0.78, 0.95), (0.62, 0.78), (0.95, 1.1)),
    "t2": ((0.75, 1.05), (0.80, 0.95), (1.0, 1.15)),
}


def add_lesion(rng, t2, seg, brain, vent, depth, dvent, z0, tissue_t2, contrast):
    r = rng.uniform(6, 18)
    c = place_centre(rng, brain, vent, depth, dvent, z0, r, rng.random() < 0.35)
    h = int(np.ceil(1.8 * r)) + 2
    box = tuple(slice(max(0, c[d] - h), min(brain.shape[d], c[d] + h + 1)) for d in range(3))
    p = np.array(np.meshgrid(*[np.arange(b.start, b.stop) for b in box], indexing="ij"), np.float32)
    axes = rng.uniform(0.75, 1.3, 3)
    axes /= np.cbrt(axes.prod())  # anisotropic, same volume as the sphere of radius r
    q = np.array([(p[d] - c[d]) / axes[d] for d in range(3)])
    shape = p.shape[1:]
    # Irregular blob: normalised distance plus smooth noise of a few lobes.
    level = np.sqrt((q ** 2).sum(0)) / r + rng.uniform(0.15, 0.35) * smooth_noise(rng, shape, max(1.5, r / 3))
    inside = (level < 1) & brain[box] & ~vent[box]
    lab, n = ndi.label(inside)
    cl = lab[tuple(np.array(c) - [b.start for b in box])]
    if cl == 0:
        return 0
    les = lab == cl
    core = les & (level < rng.uniform(0.5, 0.8))
    rim = les & ~core
    # Core: heterogeneous, hyperintense to GM; bright necrotic/cystic spots; edema: milder.
    tex = smooth_noise(rng, shape, 1.2)
    (c_lo, c_hi), (e_lo, e_hi), (s_lo, s_hi) = CONTRAST[contrast]
    core_v = rng.uniform(c_lo, c_hi) * (1 + 0.08 * tex)
    core_v = np.where(smooth_noise(rng, shape, 2.0) > 1.2, rng.uniform(s_lo, s_hi), core_v)
    edema_v = np.maximum(tissue_t2[box], rng.uniform(e_lo, e_hi) * (1 + 0.05 * tex))
    sub = t2[box]
    sub[rim] = edema_v[rim]
    sub[core] = core_v[core]
    s = seg[box]
    s[rim] = 2
    s[core] = 1
    return int(les.sum())


def make_subject(chans, t1n, crop, seed, is_test, index, contrast="faint"):
    rng = np.random.default_rng([seed, int(is_test), index])
    coords = random_warp(rng, crop)
    p = [ndi.map_coordinates(chans[k], coords, order=1, cval=0) for k in range(len(chans))]
    brain = p[3] > 0.5
    vent = (p[4] > 0.5) & brain
    shape = brain.shape
    psum = np.maximum(p[0] + p[1] + p[2], 1e-6)
    # Per-subject class T2 values (CSF = 1) and a texture from the template T1's own detail.
    csf, gm, wm = 1.0, rng.uniform(0.55, 0.70), rng.uniform(0.34, 0.46)
    t2 = (p[0] * csf + p[1] * gm + p[2] * wm) / psum
    detail = ndi.map_coordinates(t1n - ndi.gaussian_filter(t1n, 2), coords, order=1)
    t2 *= 1 - rng.uniform(0.2, 0.5) * detail
    t2[~brain] = 0
    seg = np.zeros(shape, np.uint8)
    if is_test:
        tissue = t2.copy()
        for _ in range(rng.integers(1, 3)):
            add_lesion(rng, t2, seg, brain, vent, p[5], p[6], crop[2].start, tissue, contrast)
    t2 = ndi.gaussian_filter(t2, rng.uniform(0.4, 0.9))  # PSF
    coarse = tuple(g // 8 + 1 for g in shape)
    bias = ndi.zoom(smooth_noise(rng, coarse, 4), 8, order=1)[: shape[0], : shape[1], : shape[2]]
    t2 *= np.exp(rng.uniform(0.05, 0.2) * bias)
    t2 += rng.uniform(0.01, 0.035) * smooth_noise(rng, shape, 0.6)
    scale = rng.uniform(700, 2600)
    img, lab = np.zeros(GRID, np.int16), np.zeros(GRID, np.uint8)
    img[crop] = np.where(brain, np.clip(np.rint(t2 * scale), 1, 32767), 0)
    lab[crop] = np.where(brain, seg, 0)
    return img, lab


def write(path, data, affine):
    tmp = path + ".tmp.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), tmp)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--healthy", type=int, default=12)
    ap.add_argument("--test", type=int, default=6)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--contrast", choices=sorted(CONTRAST), default="faint")
    ap.add_argument("--template", default=TEMPLATE)
    a = ap.parse_args()
    chans, t1n, crop, taff = load_template(a.template)
    affine = np.eye(4)
    affine[:3, 3] = taff[:3, 3] - (np.array(GRID) - 1) / 2 + 90  # 1 mm RAS, roughly MNI-centred
    for is_test, count in ((0, a.healthy), (1, a.test)):
        for i in range(count):
            sid = "BraTS2021_%05d" % ((50000 if is_test else 10000) + i)
            d = os.path.join(a.out, "test" if is_test else "healthy", sid)
            os.makedirs(d, exist_ok=True)
            img, seg = make_subject(chans, t1n, crop, a.seed, is_test, i, a.contrast)
            write(os.path.join(d, sid + "_t2.nii.gz"), img, affine)
            if is_test:
                write(os.path.join(d, sid + "_seg.nii.gz"), seg, affine)
            print("%s %s lesion voxels %d (in 60..109: %d)" % ("test" if is_test else "healthy", sid,
                  int((seg > 0).sum()), int((seg[:, :, 60:110] > 0).sum())), file=sys.stderr)


if __name__ == "__main__":
    main()
