#!/bin/bash
# anoswin prep from the command line: usage errors (exit 2), a raw-looking scan from
# `data synth --raw` with a label alongside prepared into the BraTS layout that `data list`
# reads, and bad inputs (not a NIfTI, an empty image) each reported on one line, written
# nowhere, exit 1 while the good scan is still prepared.
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
expect 2 "--test" "synth --raw refuses --test" "$bin" data synth --raw --test 2 --out "$tmp/r"

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
PY
expect 1 "" "prep with two bad inputs exits 1" "$bin" prep --out "$tmp/prep" --threads 2 \
  "$tmp/in/subj_t1.nii.gz" "$tmp/in/bad.nii.gz" "$tmp/in/empty.nii.gz"
check "bad input: one line naming the file" "grep -c 'subject bad failed: .*bad.nii.gz' $tmp/err | grep -qx 1"
check "empty image: one line naming the file and the problem" "grep 'subject empty failed' $tmp/err | grep -q 'empty.nii.gz: empty image'"
check "failed subjects written nowhere" "[ ! -e $tmp/prep/bad ] && [ ! -e $tmp/prep/empty ]"
for f in subj_t1.nii.gz subj_mask.nii.gz subj_seg.nii.gz subj_qc.png subj_prep.json; do
  check "prepared scan has $f" "[ -s $tmp/prep/subj/$f ]"
done
check "summary lists 1 ok, 2 failed" "grep -q '\"subjects_ok\": 1' $tmp/prep/prep.json && grep -q '\"subjects_failed\": 2' $tmp/prep/prep.json"
check "summary has the error lines" "grep -q 'empty image' $tmp/prep/prep.json"
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
finish
