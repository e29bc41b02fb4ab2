#!/usr/bin/python3
"""indep_check.py DEMO_OUT DATA_DIR: facts of `anoswin demo --data DATA_DIR --out DEMO_OUT` masks against
the labels (written for tools/indep_sets.py sets; any BraTS21-layout set whose ids are folder names):
per subject the scored lesion voxels, mask voxels, Dice, the Dice of the plain threshold at the
calibration's 5e-3 rate (the same map), mask voxels outside the brain (image == 0), on lesion-free
slices and beside the lesion on lesion slices, lesions hit; then the per-volume means with their subject
counts and the healthy calibration scans' mask volume.

    indep_check.py DEMO_OUT DATA_DIR [DETECT_SUBDIR PLAIN_THRESHOLD]

DETECT_SUBDIR (default detect) reads another detect run of the same model (e.g. one with the paper's A.1
preset), and PLAIN_THRESHOLD replaces the calibration's 5e-3 value (e.g. 0.5 on A.1's per-slice scaled
map, the steering's "plain threshold" of issue 13)."""
import glob, json, os, sys
import numpy as np, nibabel as nib
from scipy import ndimage as ndi
out, data = sys.argv[1], sys.argv[2]
det = sys.argv[3] if len(sys.argv) > 3 else "detect"
if len(sys.argv) > 4:
    plain_thr = float(sys.argv[4])
    print("plain threshold (given): %.4f" % plain_thr)
else:
    cal = json.load(open(os.path.join(out, "calibration.json")))
    plain_thr = cal["threshold"][cal["fpr"].index(min(cal["fpr"], key=lambda f: abs(f - 5e-3)))]
    print("plain threshold: calibration's value at fpr 5e-3 (the tuning tables' 'normative plain threshold'): %.4f" % plain_thr)
def dice(a, b):
    s = a.sum() + b.sum()
    return 2 * (a & b).sum() / s if s else float("nan")
rows = []
tot_out = 0
for d in sorted(glob.glob(os.path.join(out, det, "*", "summary.json"))):
    sid = os.path.basename(os.path.dirname(d))
    sm = json.load(open(d))
    z0, z1 = sm["slice_range"]
    img = nib.load(os.path.join(data, "test", sid, sid + "_t2.nii.gz")).get_fdata()
    seg = nib.load(os.path.join(data, "test", sid, sid + "_seg.nii.gz")).get_fdata() > 0
    m = nib.load(os.path.join(os.path.dirname(d), "mask.nii.gz")).get_fdata() > 0
    amap = nib.load(os.path.join(os.path.dirname(d), "anomaly_map.nii.gz")).get_fdata()
    brain = img > 0
    outside = int((m & ~brain).sum()); tot_out += outside
    sl = np.zeros(seg.shape, bool); sl[:, :, z0:z1 + 1] = True
    L, M = seg & sl, m & sl
    plain = (amap >= plain_thr) & brain & sl
    les_slices = L.any((0, 1))
    free = sl & ~les_slices[None, None, :]
    comps, n = ndi.label(L)
    hit = sum(1 for c in range(1, n + 1) if (M & (comps == c)).any())
    sizes = ndi.sum(L, comps, range(1, n + 1)) if n else []
    rows.append((sid, int(L.sum()), int(M.sum()), dice(L, M), dice(L, plain), outside, int((M & free).sum()),
                 int((M & les_slices[None, None, :] & ~L).sum()), n, hit, [int(s) for s in sizes]))
print("subject lesion_vox(scored) mask_vox dice plain_thr_dice outside_brain mask_on_lesion_free_slices "
      "FP_on_lesion_slices lesions hit sizes")
for r in rows:
    print(r[0], r[1], r[2], "%.3f" % r[3], "%.3f" % r[4], *r[5:])
with_l = [r for r in rows if r[1] > 0]
print("per-volume Dice over %d/%d subjects with lesion voxels in the scored slices: %.3f (plain calibrated threshold: %.3f)"
      % (len(with_l), len(rows), np.mean([r[3] for r in with_l]), np.mean([np.nan_to_num(r[4]) for r in with_l])))
print("mask voxels outside the brain (image == 0), all test subjects: %d" % tot_out)
h_out = 0; fp = []
for f in sorted(glob.glob(os.path.join(out, "detect-healthy", "*", "mask.nii.gz"))):
    sid = os.path.basename(os.path.dirname(f))
    im = glob.glob(os.path.join(data, "healthy", sid, sid + "_t2.nii.gz"))[0]
    b = nib.load(im).get_fdata() > 0
    m = nib.load(f).get_fdata() > 0
    h_out += int((m & ~b).sum()); fp.append(m.sum() / 1000.0)
print("healthy calibration scans: mask ml per scan %s; outside brain %d" % (["%.2f" % v for v in fp], h_out))
