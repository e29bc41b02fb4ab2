#!/usr/bin/env python3
"""Independent checks (nibabel + scipy.ndimage) of the lesions of `anoswin data synth --profile`.

usage: check_synth_profiles.py DIR [--as PROFILE]
DIR is a folder written by `anoswin data synth`; its synth.txt names the profile, whose promises
(docs/data.md, the profile table) are checked on every test subject. --as checks against another
profile's promises instead (the test uses it to see that the checks can fail).
Exits non-zero when a check fails; prints one line per check.

Nothing here comes from the generator's code: lesions are the 3-D connected components of
seg > 0 (26-neighbours), sizes are diameters of the ball of equal volume, the ventricles are
recomputed from the final t2 (k-means classes, deep CSF, largest component from slice 75 up).
"""
import glob
import os
import sys

import nibabel as nib
import numpy as np
from scipy import ndimage as ndi

FULL = np.ones((3, 3, 3), bool)  # 26-neighbours: a lesion split by a voxel corner stays one
failed = 0


def check(cond, what):
    global failed
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failed += 1


def load(path):
    return np.asanyarray(nib.load(path).dataobj)


def components(mask, min_voxels=1):
    lab, n = ndi.label(mask, FULL)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    keep = [i for i in range(1, n + 1) if sizes[i] >= min_voxels]
    return lab, keep, sizes


def local(lab, comps, pad=6):
    """{component: (box around it grown by pad, its mask in the box)}: keeps per-lesion work small."""
    boxes = ndi.find_objects(lab)
    out = {}
    for c in comps:
        box = tuple(slice(max(s.start - pad, 0), s.stop + pad) for s in boxes[c - 1])
        out[c] = (box, lab[box] == c)
    return out


def eq_diameter(voxels):
    return (6.0 * voxels / np.pi) ** (1.0 / 3.0)  # mm: 1 mm voxels


def class_means(t2, brain, les):
    """CSF > GM > WM means of the t2 brain voxels outside lesions (1-D k-means, 3 classes)."""
    v = t2[brain & ~les][::13].astype(np.float64)
    mu = np.percentile(v, [15, 50, 85])
    for _ in range(30):
        cls = np.argmin(np.abs(v[:, None] - mu[None, :]), axis=1)
        mu = np.array([v[cls == c].mean() for c in range(3)])
    return np.sort(mu)  # WM, GM, CSF (t2: CSF bright)


def anatomy(t2, brain, les, z0):
    """Distance to the brain's edge, and to the ventricles recomputed from the final t2 (arrays
    cropped around the brain, starting at axial slice z0)."""
    wm, gm, csf_mu = class_means(t2, brain, les)
    depth = ndi.distance_transform_edt(np.pad(brain, 1))[1:-1, 1:-1, 1:-1]
    smooth = ndi.uniform_filter(t2, 3)  # the noise would pepper the CSF class
    csf = brain & ~les & (smooth > 0.5 * (gm + csf_mu))
    deep = csf & (depth > 18)
    deep[:, :, : max(75 - z0, 0)] = False
    lab, keep, sizes = components(deep)
    vent = lab == (int(np.argmax(sizes[1:])) + 1 if keep else -1)
    # distances up to 10 mm are all that the checks need: a box around the ventricles is enough
    to_vent = np.full(t2.shape, np.inf, np.float32)
    if vent.any():
        vbox = tuple(slice(max(s.start - 10, 0), s.stop + 10) for s in ndi.find_objects(vent.astype(np.uint8))[0])
        to_vent[vbox] = ndi.distance_transform_edt(~vent[vbox])
    return depth, vent, to_vent, (wm, gm, csf_mu)


def elongation(coords):
    """Ratio of the longest to the shortest principal axis of a voxel set."""
    if len(coords) < 4:
        return 1.0
    ev = np.linalg.eigvalsh(np.cov(coords.T.astype(np.float64)) + 1e-3)
    return float(np.sqrt(ev[-1] / ev[0]))


def shell_mean(img, box, m, brain, les, width=4):
    """Mean of img over the normal brain within `width` voxels of the lesion m (in box)."""
    ring = ndi.binary_dilation(m, FULL, iterations=width) & brain[box] & ~les[box]
    return float(img[box][ring].mean())


def check_subject(profile, sid, d, summary):
    t2 = load(os.path.join(d, f"{sid}_t2.nii.gz")).astype(np.float32)
    seg = load(os.path.join(d, f"{sid}_seg.nii.gz"))
    t1p = os.path.join(d, f"{sid}_t1.nii.gz")
    t1 = load(t1p).astype(np.float32) if os.path.exists(t1p) else None
    # Crop to the brain (and 3 voxels): a third of the grid, the same answers.
    ax = [np.nonzero((t2 > 0).any(axis=tuple(b for b in range(3) if b != a)))[0] for a in range(3)]
    box = tuple(slice(max(w[0] - 3, 0), w[-1] + 4) for w in ax)
    z0 = box[2].start
    les_all = int((seg > 0).sum())
    t2, seg = t2[box], seg[box]
    t1 = t1[box] if t1 is not None else None
    brain, les = t2 > 0, seg > 0
    check(int(les.sum()) == les_all, f"{sid} no lesion outside the brain's box")
    check(set(np.unique(seg)) <= {0, 1, 2, 4} and not (les & ~brain).any(), f"{sid} labels 0/1/2/4, inside the brain")
    if profile == "none":
        check(not les.any(), f"{sid} no lesion (seg all 0: {int(les.sum())} voxels)")
        return
    big = 30 if profile in ("glioma", "boundary", "hypo", "sparse") else 1  # ignore edge crumbs
    lab, comps, sizes = components(les, big)
    n = len(comps)
    diam = [eq_diameter(sizes[c]) for c in comps]
    centres = ndi.center_of_mass(les, lab, comps) if comps else []
    loc = local(lab, comps)
    print(f"     {sid}: {n} lesions, diameters {', '.join(f'{x:.1f}' for x in diam)} mm")
    lesion_z = np.zeros(155, bool)
    lesion_z[z0 : z0 + les.shape[2]] = les.any(axis=(0, 1))
    summary["free_slices"].append(int((~lesion_z[60:110]).sum()))
    summary["z"] += [c[2] + z0 for c in centres]

    if profile == "glioma":
        check(1 <= n <= 3, f"{sid} 1-3 lesions ({n})")
        check(lesion_z[75:95].any(), f"{sid} a lesion in slices 75..94")
    elif profile == "metastasis":
        # Generated apart and whole: the count is exact; the body (labels 1, 4) is 3-15 mm.
        check(2 <= n <= 8, f"{sid} 2-8 lesions ({n})")
        blab, bcomps, bsizes = components((seg == 1) | (seg == 4))
        bd = [eq_diameter(bsizes[c]) for c in bcomps]
        check(len(bd) == n and all(2.0 <= x <= 17.0 for x in bd),
              f"{sid} body diameters 3-15 mm with voxel slack [2, 17] ({', '.join(f'{x:.1f}' for x in bd)})")
        el = [elongation(np.argwhere(loc[c][1])) for c in comps if sizes[c] >= 30]
        check(all(e < 1.6 for e in el), f"{sid} round (axis ratio < 1.6: {', '.join(f'{e:.2f}' for e in el)})")
        # brighter than white matter by half the WM-GM gap (its neighbours may be bright CSF)
        wm, gm, _ = class_means(t2, brain, les)
        means = [round(float(t2[b][m].mean())) for b, m in loc.values()]
        check(all(x > 0.5 * (wm + gm) for x in means), f"{sid} every lesion T2-bright ({means} > {0.5 * (wm + gm):.0f})")
    elif profile == "ms":
        check(6 <= n <= 20, f"{sid} 6-20 lesions ({n})")
        check(all(1.0 <= x <= 9.0 for x in diam), f"{sid} diameters 2-8 mm with voxel slack [1, 9]")
        depth, vent, to_vent, (wm, gm, _) = anatomy(t2, brain, les, z0)
        near = [float(to_vent[b][m].min()) for b, m in loc.values()]
        peri = sum(x <= 4.0 for x in near)  # 4: the ventricles here are a re-estimate
        summary["peri"] += peri
        summary["n"] += n
        outer = [float(depth[b][m].min()) for b, m in loc.values()]
        check(all(p <= 4.0 or o <= 25.0 for p, o in zip(near, outer)),
              f"{sid} every lesion within 4 mm of the ventricles or within 25 mm of the brain's surface "
              f"({[(round(p, 1), round(o, 1)) for p, o in zip(near, outer) if p > 4.0]})")
        check(peri >= 0.5 * n, f"{sid} mostly periventricular ({peri} of {n} within 4 mm of the ventricles)")
        el = [elongation(np.argwhere(loc[c][1])) for c in comps if sizes[c] >= 20]
        check(not el or np.mean(el) >= 1.3, f"{sid} ovoid (mean axis ratio {np.mean(el) if el else 0:.2f} >= 1.3)")
        check(np.median(t2[les]) > gm, f"{sid} T2-bright (median {np.median(t2[les]):.0f} > GM {gm:.0f})")
        if t1 is not None:
            wm1 = np.median(t1[brain & ~les & (t2 < 0.5 * (wm + gm))])
            check(np.median(t1[les]) < wm1, f"{sid} T1-dark (median {np.median(t1[les]):.0f} < WM {wm1:.0f})")
    elif profile in ("boundary", "hypo", "sparse"):
        check(1 <= n <= 2, f"{sid} 1-2 lesions ({n})")
        check(all(5.0 <= x <= 70.0 for x in diam), f"{sid} radius 6-18 mm (blobby, clipped: diameters in [5, 70])")
        if profile == "boundary":
            depth, vent, to_vent, _ = anatomy(t2, brain, les, z0)
            touch = [round(float(min(to_vent[b][m].min(), depth[b][m].min())), 1) for b, m in loc.values()]
            check(all(x <= 2.0 for x in touch),
                  f"{sid} every lesion touches the ventricles or the brain's edge (gaps {touch} mm)")
        if profile == "hypo":
            dark = [(round(float(t2[b][m].mean())), round(shell_mean(t2, b, m, brain, les))) for b, m in loc.values()]
            check(all(a < b for a, b in dark), f"{sid} every lesion darker than its surroundings in t2 ({dark})")
        if profile == "sparse":
            check(all(30 <= z <= 130 for z in summary["z"][-n:]),
                  f"{sid} centres in slices 40..120 (centroids {[round(c[2]) + z0 for c in centres]}, slack 10)")


def main():
    args = sys.argv[1:]
    if not args or (len(args) not in (1, 3)) or (len(args) == 3 and args[1] != "--as"):
        sys.exit(__doc__)
    root = args[0]
    info = dict(line.split("=", 1) for line in open(os.path.join(root, "synth.txt")).read().split("\n")
                if "=" in line and not line.startswith("#"))
    profile = args[2] if len(args) == 3 else info.get("profile", "glioma")
    print(f"{root}: profile {info.get('profile')}, checked as {profile}")
    summary = {"free_slices": [], "z": [], "peri": 0, "n": 0}
    tests = sorted(glob.glob(os.path.join(root, "test", "*")))
    check(len(tests) >= 1, f"{len(tests)} test subjects")
    for d in tests:
        sid = os.path.basename(d)
        check(os.path.exists(os.path.join(d, f"{sid}_seg.nii.gz")), f"{sid} seg written")
        check_subject(profile, sid, d, summary)
    if profile == "metastasis":
        z = summary["z"]
        check(any(c < 60 or c >= 110 for c in z), "metastases at every level: some outside slices 60..109")
    if profile == "ms":
        check(summary["peri"] >= 0.6 * summary["n"], f"periventricular overall: {summary['peri']} of {summary['n']}")
    if profile == "sparse":
        check(any(f > 0 for f in summary["free_slices"]),
              f"some subjects have lesion-free slices in 60..109 ({summary['free_slices']})")
    print(f"{failed} failed")
    sys.exit(1 if failed else 0)


main()
