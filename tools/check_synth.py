#!/usr/bin/env python3
"""Independent checks (nibabel + numpy) of a folder written by `anoswin data synth`.

usage: check_synth.py DIR N_HEALTHY N_TEST
Exits non-zero with a message on the first failed check; prints one line per check.
"""
import glob
import os
import sys

import nibabel as nib
import numpy as np

root, n_healthy, n_test = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
failed = 0


def check(cond, what):
    global failed
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failed += 1


def load(path):
    img = nib.load(path)
    return img, np.asanyarray(img.dataobj)


healthy = sorted(glob.glob(os.path.join(root, "healthy", "*")))
test = sorted(glob.glob(os.path.join(root, "test", "*")))
check(len(healthy) == n_healthy and len(test) == n_test, f"{len(healthy)} healthy, {len(test)} test folders")
check(os.path.exists(os.path.join(root, "synth.txt")), "synth.txt written")

brains = []
for d in healthy + test:
    sid = os.path.basename(d)
    imgs = {}
    for m in ("t1", "t2"):
        img, a = load(os.path.join(d, f"{sid}_{m}.nii.gz"))
        check(a.shape == (240, 240, 155), f"{sid} {m} shape {a.shape}")
        check(np.allclose(img.header.get_zooms(), (1, 1, 1)), f"{sid} {m} 1 mm voxels")
        check(nib.aff2axcodes(img.affine) == ("R", "A", "S"), f"{sid} {m} RAS orientation")
        check(a.dtype == np.int16, f"{sid} {m} int16")
        imgs[m] = a.astype(np.float32)
    brain = imgs["t2"] > 0
    check(np.array_equal(brain, imgs["t1"] > 0), f"{sid} t1 and t2 share the brain mask")
    frac = brain.mean()
    check(0.08 < frac < 0.25, f"{sid} brain fraction {frac:.3f}")
    zs = np.where(brain.any(axis=(0, 1)))[0]
    check(zs.min() <= 60 and zs.max() >= 110, f"{sid} brain spans the slice ranges 60..109 ({zs.min()}..{zs.max()})")
    brains.append(imgs["t2"])
    if d in test:
        img, seg = load(os.path.join(d, f"{sid}_seg.nii.gz"))
        check(seg.dtype == np.uint8 and seg.shape == (240, 240, 155), f"{sid} seg uint8 240x240x155")
        les = seg > 0
        check(les.sum() > 100, f"{sid} lesion mask non-empty ({les.sum()} voxels)")
        check(not (les & ~brain).any(), f"{sid} lesions inside the brain")
        check(set(np.unique(seg)) <= {0, 1, 2, 4}, f"{sid} labels in {{0,1,2,4}}")
        check(les[:, :, 75:95].any(), f"{sid} lesion visible in test slices 75..94")
        # lesions change intensities: the lesion body differs from the same subject's healthy
        # tissue statistics (median |z| well above noise)
        t2 = imgs["t2"]
        mu, sd = np.median(t2[brain & ~les]), t2[brain & ~les].std()
        check(abs(np.median(t2[seg == 4]) - mu) > 0.3 * sd if (seg == 4).any() else True,
              f"{sid} lesion body contrast")

# Healthy subjects differ from each other (deformation, bias, noise), but not wildly.
for a, b in zip(brains[:-1], brains[1:]):
    diff = np.abs(a - b)[(a > 0) | (b > 0)].mean() / np.mean(a[a > 0])
    check(0.05 < diff < 1.0, f"subjects differ (relative mean |diff| {diff:.3f})")

print(f"{failed} failed")
sys.exit(1 if failed else 0)
