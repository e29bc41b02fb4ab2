#!/bin/bash
# anoswin prep from the command line: usage errors (exit 2), a raw-looking scan from
# `data synth --raw` with a label alongside prepared on the default template (Colin27 with
# skull, 240x240x155 1 mm) into the BraTS layout that `data list` reads, scored in NumPy against
# the recorded truth (mean registration error over the template brain <= 1 mm, brain-mask Dice
# >= 0.95), its resampling against SciPy's map_coordinates; bad inputs (not a NIfTI, an empty
# image, a slab too thin for the brain, a featureless blob; a template mask that strips to
# nothing) each reported on one line, written nowhere, exit 1 while the good scan is still prepared; prep -> train -> detect runs, and
# detect's input guard is quiet on a prepared scan, not on the raw one.
set -u
bin=${ANOSWIN_BIN:?}
py=${ANOSWIN_PYTHON:-/usr/bin/python3}
tmp=scratch_prep_cli
rm -rf "$tmp" && mkdir -p "$tmp"
. "$(dirname "$0")/helpers/cli.sh"

expect 0 "" "prep --help" "$bin" prep --help
expect 2 "--out" "prep needs --out" "$bin" prep x.nii.gz
expect 2 "INPUT" "prep needs an input" "$bin" prep --out "$tmp/o"
expect 2 "together" "--template needs --template-mask" "$bin" prep --out "$tmp/o" --template t.nii.gz x.nii.gz
expect 2 "modality" "prep bad modality" "$bin" prep --out "$tmp/o" --modality pd x.nii.gz

succeeds "data synth --raw" "$bin" data synth --raw --healthy 1 --seed 3 --out "$tmp/raw" --threads 2
check "raw scan, truth and bias written" "[ -s $tmp/raw/healthy/raw_000/raw_000_t1.nii.gz ] && [ -s $tmp/raw/healthy/raw_000/truth.json ] && [ -s $tmp/raw/healthy/raw_000/bias.nii.gz ]"
check "truth records the transform" "grep -q template_to_subject $tmp/raw/healthy/raw_000/truth.json"

# inputs: the raw scan with a label next to it (the head, thresholded, on the scan's grid), a
# file that is not NIfTI, an empty image
mkdir -p "$tmp/in"
cp "$tmp/raw/healthy/raw_000/raw_000_t1.nii.gz" "$tmp/in/subj_t1.nii.gz"
echo "not a scan" >"$tmp/in/bad.nii.gz"
"$py" - "$tmp/in" <<'PY' || bad "fixtures (nibabel)"
import sys, numpy as np, nibabel as nib
d = sys.argv[1]
im = nib.load(d + "/subj_t1.nii.gz")
x = np.asarray(im.dataobj)
nib.save(nib.Nifti1Image((x > np.percentile(x, 90)).astype(np.uint8), im.affine), d + "/subj_seg.nii.gz")
nib.save(nib.Nifti1Image(np.zeros((40, 40, 30), np.int16), np.eye(4)), d + "/empty.nii.gz")
# a slab of 24 slices of the head: a field of view that cannot hold the brain
ax = int(np.argmax(np.abs(im.affine[2, :3])))
sl = [slice(None)] * 3
sl[ax] = slice(x.shape[ax] // 2 - 12, x.shape[ax] // 2 + 12)
a = im.affine.copy()
a[:3, 3] = im.affine[:3, :3] @ np.array([s.start or 0 for s in sl]) + im.affine[:3, 3]
nib.save(nib.Nifti1Image(x[tuple(sl)], a), d + "/slab.nii.gz")
# a uniform ellipsoid the size of a head, with noise: nothing of the template to find
g = np.mgrid[:90, :100, :85].astype(np.float32)
e = ((g[0] - 45) / 35) ** 2 + ((g[1] - 50) / 42) ** 2 + ((g[2] - 42) / 32) ** 2 < 1
rng = np.random.default_rng(1)
blob = np.abs(e * 800.0 + rng.normal(0, 20, e.shape)).astype(np.float32)
nib.save(nib.Nifti1Image(blob, np.diag([2.0, 2.0, 2.0, 1.0]) @ np.array([[1, 0, 0, -45], [0, 1, 0, -55], [0, 0, 1, -35], [0, 0, 0, 1.0]])), d + "/blob.nii.gz")
PY
# --no-n4: the resampling is then checked against the input itself (N4 is on in test_prep_register)
expect 1 "" "prep with four bad inputs exits 1" "$bin" prep --out "$tmp/prep" --threads 2 --no-n4 \
  "$tmp/in/subj_t1.nii.gz" "$tmp/in/bad.nii.gz" "$tmp/in/empty.nii.gz" "$tmp/in/slab.nii.gz" "$tmp/in/blob.nii.gz"
check "bad input: one line naming the file" "grep -c 'subject bad failed: .*bad.nii.gz' $tmp/err | grep -qx 1"
check "empty image: one line naming the file and the problem" "grep 'subject empty failed' $tmp/err | grep -q 'empty.nii.gz: empty image'"
check "slab: one line naming the file and the field of view" "grep 'subject slab failed' $tmp/err | grep -q 'slab.nii.gz: .*field of view'"
check "blob: one line, the registration refused" "grep 'subject blob failed' $tmp/err | grep -q 'blob.nii.gz: registration'"
check "each failure on one line" "[ \$(grep -c 'failed:' $tmp/err) = 4 ]"
check "failed subjects written nowhere" "[ ! -e $tmp/prep/bad ] && [ ! -e $tmp/prep/empty ] && [ ! -e $tmp/prep/slab ] && [ ! -e $tmp/prep/blob ]"
for f in subj_t1.nii.gz subj_mask.nii.gz subj_seg.nii.gz subj_qc.png subj_prep.json; do
  check "prepared scan has $f" "[ -s $tmp/prep/subj/$f ]"
done
check "summary lists 1 ok, 4 failed" "grep -q '\"subjects_ok\": 1' $tmp/prep/prep.json && grep -q '\"subjects_failed\": 4' $tmp/prep/prep.json"
check "summary has the error lines" "grep -q 'empty image' $tmp/prep/prep.json"
# an empty mask after stripping: a template brain mask two slices thick (Colin27's own grid) does
# not survive the refinement's one-voxel opening; the registration itself succeeds
"$py" - "$tmp/in" <<'PY' || bad "thin-mask fixture (nibabel)"
import sys, numpy as np, nibabel as nib
b = nib.load("/usr/share/mricron/templates/ch2bet.nii.gz"); x = np.asarray(b.dataobj) > 0
m = np.zeros(x.shape, np.uint8); k = x.shape[2] // 2 + 10
m[:, :, k:k + 2] = x[:, :, k:k + 2]
nib.save(nib.Nifti1Image(m, b.affine), sys.argv[1] + "/thin_mask.nii.gz")
PY
expect 1 "" "prep with a mask that strips to nothing exits 1" "$bin" prep --out "$tmp/prep_thin" --threads 2 --no-n4 \
  --template /usr/share/mricron/templates/ch2.nii.gz --template-mask "$tmp/in/thin_mask.nii.gz" "$tmp/in/subj_t1.nii.gz"
check "empty mask: one line naming the file and the problem" "grep 'subject subj failed' $tmp/err | grep -q 'subj_t1.nii.gz: empty brain mask'"
check "empty mask: written nowhere, reported in prep.json" "[ ! -e $tmp/prep_thin/subj ] && grep -q '\"subjects_failed\": 1' $tmp/prep_thin/prep.json"
expect 0 "" "data list reads prep's output" "$bin" data list "$tmp/prep" --modality t1
check "data list: subject with mask and label" "grep -q '^subj,.*subj_t1.nii.gz,.*subj_seg.nii.gz,.*subj_mask.nii.gz' $tmp/out"
"$py" - "$tmp/prep/subj" <<'PY' && ok "outputs on the 240x240x155 grid, label 0/1, image 0 outside the mask" || bad "output grid/label/mask (nibabel)"
import sys, numpy as np, nibabel as nib
d = sys.argv[1]
img, m, s = (nib.load(d + "/subj_" + k + ".nii.gz") for k in ("t1", "mask", "seg"))
for v in (img, m, s):
    assert v.shape == (240, 240, 155), v.shape
    assert np.allclose(v.affine[:3, :3], np.eye(3)), v.affine
x, mk, sg = (np.asarray(v.dataobj) for v in (img, m, s))
assert set(np.unique(sg)) <= {0, 1} and sg.sum() > 0
assert set(np.unique(mk)) == {0, 1} and (x[mk == 0] == 0).all() and 1.0e6 < mk.sum() < 2.2e6, mk.sum()
PY
"$py" - "$tmp" <<'PY' && ok "registration error <= 1 mm, brain mask Dice >= 0.95 against the truth" || bad "accuracy against the truth"
import json, sys, numpy as np, nibabel as nib
tmp = sys.argv[1]
est = np.array(json.load(open(tmp + "/prep/subj/subj_prep.json"))["template_to_subject"]).reshape(4, 4)
tru = np.array(json.load(open(tmp + "/raw/healthy/raw_000/truth.json"))["template_to_subject"]).reshape(4, 4)
# truth on the template grid: Colin27's brain (ch2bet > 0) where the scan's brain maps, placed
# like the output grid (same world coordinates: compare in world space)
bet = nib.load("/usr/share/mricron/templates/ch2bet.nii.gz")
ijk = np.argwhere(np.asarray(bet.dataobj) > 0)
x = bet.affine @ np.c_[ijk, np.ones(len(ijk))].T
e = np.linalg.norm((est @ x - tru @ x)[:3], axis=0)
m = nib.load(tmp + "/prep/subj/subj_mask.nii.gz")
mk = np.asarray(m.dataobj) > 0
truth = np.zeros(mk.shape, bool)
g = np.rint(np.linalg.inv(m.affine) @ x).astype(int)[:3]
keep = ((g >= 0) & (g < np.array(mk.shape)[:, None])).all(0)
truth[tuple(g[:, keep])] = True
dice = 2 * (mk & truth).sum() / (mk.sum() + truth.sum())
print(f"default template: registration error mean {e.mean():.3f} mm, max {e.max():.3f} mm; brain mask Dice {dice:.4f}")
sys.exit(0 if e.mean() <= 1.0 and dice >= 0.95 else 1)
PY
"$py" - "$tmp" <<'PY' && ok "resampling matches scipy.ndimage.map_coordinates (order 1) inside the brain" || bad "resampling vs SciPy"
import json, sys, numpy as np, nibabel as nib
from scipy.ndimage import map_coordinates
tmp = sys.argv[1]
est = np.array(json.load(open(tmp + "/prep/subj/subj_prep.json"))["template_to_subject"]).reshape(4, 4)
raw = nib.load(tmp + "/in/subj_t1.nii.gz")
out = nib.load(tmp + "/prep/subj/subj_t1.nii.gz")
mk = np.asarray(nib.load(tmp + "/prep/subj/subj_mask.nii.gz").dataobj) > 0
ijk = np.argwhere(mk)[::13]
q = np.linalg.inv(raw.affine) @ est @ out.affine @ np.c_[ijk, np.ones(len(ijk))].T
ref = map_coordinates(np.asarray(raw.dataobj, np.float64), q[:3], order=1, mode="constant", cval=0)
got = np.asarray(out.dataobj)[tuple(ijk.T)]
err = np.abs(got - ref).max() / np.abs(ref).max()
print(f"resampling vs scipy: max relative difference {err:.2e} over {len(ijk)} brain voxels")
sys.exit(0 if err < 1e-4 else 1)
PY

# prep -> train -> detect: a (tiny, one-step) model trained on prepared scans; detect on a
# prepared scan warns about nothing, on the raw scan (its input guard) about the head and grid
succeeds "prep the raw folder (split kept)" "$bin" prep --out "$tmp/prep_raw" --threads 2 "$tmp/raw"
check "split kept" "[ -s $tmp/prep_raw/healthy/raw_000/raw_000_t1.nii.gz ]"
succeeds "train on prepared scans" "$bin" train --data "$tmp/prep_raw" --modality t1 --out "$tmp/run" \
  --config "img_size=112,patch_size=2,embed_dim=24,depths=[1,1,1,1],num_heads=[1,2,4,8]" --epochs 1 --batch 4 \
  --max-steps 1 --val-fraction 0 --threads 2 --recon 0 --quiet
expect 0 "" "detect on a prepared scan" "$bin" detect --checkpoint "$tmp/run/last.safetensors" --out "$tmp/det" \
  --preset brats --modality t1 --z-first 80 --z-last 81 --threads 2 --quiet "$tmp/prep_raw/healthy/raw_000/raw_000_t1.nii.gz"
check "no input-guard warning for a prepared scan" "! grep -q warning $tmp/err"
expect 0 "head rather than a brain" "detect on the raw scan warns" "$bin" detect --checkpoint "$tmp/run/last.safetensors" \
  --out "$tmp/det_raw" --preset brats --modality t1 --z-first 80 --z-last 81 --threads 2 --quiet \
  "$tmp/raw/healthy/raw_000/raw_000_t1.nii.gz"
finish
