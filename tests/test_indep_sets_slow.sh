#!/bin/bash
# tools/indep_sets.py (the independent proxy generator of issue 13's external test sets): one
# lesion subject in the BraTS21 layout that `anoswin data list` reads, on the 240x240x155 1 mm
# grid, every label voxel inside the brain (image > 0), 1-2 lesions centred between axial 40 and
# 120, hyperintense on T2; with --contrast t2 the same subject's edema lies above grey matter's
# range (its median above 80 % of the normal brain voxels; 86 % for this subject), with the
# default (faint) contrast inside it (below 75 %; 66 %). Labelled slow (~40 s of CPU: the template's tissue mixture and two subjects).
set -u
bin=${ANOSWIN_BIN:?}
py=${ANOSWIN_PYTHON:-/usr/bin/python3}
gen=${ANOSWIN_SOURCE_DIR:?}/tools/indep_sets.py
tmp=scratch_indep_sets
rm -rf "$tmp" && mkdir -p "$tmp"
. "$(dirname "$0")/helpers/cli.sh"

succeeds "indep_sets.py writes a set" "$py" "$gen" "$tmp/s" --healthy 0 --test 1 --seed 5
succeeds "data list reads it" "$bin" data list "$tmp/s/test"
check "data list: one brats subject with a label" \
  "grep -q 'brats layout, t2' '$tmp/ok' && grep -q 'BraTS2021_50000_seg.nii.gz' '$tmp/ok'"
succeeds "the subject keeps the generator's promises" "$py" - "$tmp/s/test/BraTS2021_50000" <<'PY'
import os, sys
import numpy as np, nibabel as nib
from scipy import ndimage as ndi
d = sys.argv[1]
t2i = nib.load(os.path.join(d, "BraTS2021_50000_t2.nii.gz"))
segi = nib.load(os.path.join(d, "BraTS2021_50000_seg.nii.gz"))
t2, seg = np.asarray(t2i.dataobj), np.asarray(segi.dataobj)
assert t2.shape == seg.shape == (240, 240, 155) and t2.dtype == np.int16 and seg.dtype == np.uint8
assert np.allclose(np.abs(np.diag(t2i.affine)[:3]), 1)
brain = t2 > 0
assert brain.sum() > 1e6, brain.sum()  # an adult brain, > 1 l
assert set(np.unique(seg)) <= {0, 1, 2} and (seg > 0).any()
assert not (seg[~brain] > 0).any(), "label outside the brain"
lab, n = ndi.label(seg > 0)
assert 1 <= n <= 2, n
for c in range(1, n + 1):
    z = np.argwhere(lab == c)[:, 2]
    assert 40 - 20 <= z.mean() <= 120 + 20, z.mean()  # centred in 40..120, blob reach <= ~20 mm
assert t2[seg == 1].mean() > np.median(t2[brain]), "core not hyperintense"
PY
succeeds "indep_sets.py --contrast t2" "$py" "$gen" "$tmp/t2" --healthy 0 --test 1 --seed 5 --contrast t2
succeeds "edema: inside grey matter's range when faint, above it with t2" "$py" - "$tmp/s/test" "$tmp/t2/test" <<'PY'
import sys
import numpy as np, nibabel as nib
rank = []
for d in sys.argv[1:]:
    t2 = np.asarray(nib.load(d + "/BraTS2021_50000/BraTS2021_50000_t2.nii.gz").dataobj).astype(float)
    seg = np.asarray(nib.load(d + "/BraTS2021_50000/BraTS2021_50000_seg.nii.gz").dataobj)
    normal = (t2 > 0) & (seg == 0)
    assert (seg == 2).any()
    rank.append(100 * (t2[normal] < np.median(t2[seg == 2])).mean())
assert rank[0] < 75 and rank[1] > 80, rank
PY
finish
