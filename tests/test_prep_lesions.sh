#!/bin/bash
# The plumbing of prep -> detect on raw-looking test subjects (not the Dice: docs/prep.md,
# "Detection on prepared raw scans", measures that): `data synth --raw --test 1` writes
# data synth's test_000 (the same seed, profile and modality) inside a raw-looking head with its
# label on the raw grid; `prep --modality t2` carries scan and label back onto the grid in the
# layout detect and eval read; the label comes back where `data synth` puts it on the grid
# (Dice >= 0.9 after two nearest-neighbour resamplings) and the scan matches the on-grid one
# inside the brain (correlation >= 0.9).
set -u
bin=${ANOSWIN_BIN:?}
py=${ANOSWIN_PYTHON:-/usr/bin/python3}
tmp=scratch_prep_lesions
rm -rf "$tmp" && mkdir -p "$tmp"
. "$(dirname "$0")/helpers/cli.sh"

succeeds "data synth --raw --test 1" "$bin" data synth --raw --healthy 0 --test 1 --modality t2 --seed 5 --out "$tmp/raw" --threads 2
succeeds "data synth --test 1 (the same subject on the grid)" "$bin" data synth --healthy 0 --test 1 --modality t2 --seed 5 --out "$tmp/grid" --threads 2
for f in test_000_t2.nii.gz test_000_seg.nii.gz bias.nii.gz truth.json; do
  check "raw test subject has $f" "[ -s $tmp/raw/test/test_000/$f ]"
done
check "no t1 when t2 was asked for" "[ ! -e $tmp/raw/test/test_000/test_000_t1.nii.gz ]"
succeeds "prep --modality t2 on the raw test folder" "$bin" prep --modality t2 --out "$tmp/prep" --threads 2 "$tmp/raw"
expect 0 "" "data list reads the prepared test subject with its label" "$bin" data list --modality t2 "$tmp/prep"
check "data list: test split, scan, label, mask" "grep -q '^test_000,.*test_000_t2.nii.gz,.*test_000_seg.nii.gz,.*test_000_mask.nii.gz,test' $tmp/out"
"$py" - "$tmp" <<'PY' && ok "label on the raw grid, carried back onto the grid; scan matches the on-grid one" || bad "raw test subject vs on-grid"
import sys, numpy as np, nibabel as nib
t = sys.argv[1]
raw = nib.load(t + "/raw/test/test_000/test_000_t2.nii.gz"); rseg = nib.load(t + "/raw/test/test_000/test_000_seg.nii.gz")
assert rseg.shape == raw.shape and np.allclose(rseg.affine, raw.affine), "label not on the scan's grid"
assert raw.shape != (240, 240, 155)
grid = nib.load(t + "/grid/test/test_000/test_000_t2.nii.gz"); gseg = np.asarray(nib.load(t + "/grid/test/test_000/test_000_seg.nii.gz").dataobj)
p = nib.load(t + "/prep/test/test_000/test_000_t2.nii.gz"); pseg = np.asarray(nib.load(t + "/prep/test/test_000/test_000_seg.nii.gz").dataobj)
mask = np.asarray(nib.load(t + "/prep/test/test_000/test_000_mask.nii.gz").dataobj) > 0
assert p.shape == grid.shape and np.allclose(p.affine, grid.affine), "prepared scan not on the synth grid"
assert set(np.unique(pseg)) <= set(np.unique(gseg)), (np.unique(pseg), np.unique(gseg))
a, b = pseg > 0, gseg > 0
dice = 2 * (a & b).sum() / (a.sum() + b.sum())
x, y = np.asarray(p.dataobj)[mask & (np.asarray(grid.dataobj) > 0)], np.asarray(grid.dataobj, np.float64)[mask & (np.asarray(grid.dataobj) > 0)]
r = np.corrcoef(x, y)[0, 1]
print(f"lesion {b.sum()} voxels on the grid; carried raw -> prep: Dice {dice:.4f}; scan correlation in the brain {r:.3f}")
sys.exit(0 if b.sum() > 0 and dice >= 0.9 and r >= 0.9 else 1)
PY
finish
