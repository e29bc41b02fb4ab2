#!/bin/bash
# N4 inside `anoswin prep` against the truth of `data synth --raw`: on 4 raw-looking heads
# (seed 7; bias fields of 0.05-0.18 log units SD over the brain), the field prep recovers
# (--write-bias: <id>_bias.nii.gz on the scan's grid, after N4's second pass inside the
# registered brain) correlates >= 0.9 with the scan's true field over the subject's brain.
# What is correlated with what (docs/prep.md, "Bias field"): log of prep's field against the
# log of the applied field (bias.nii.gz) plus Colin27's own field, both on the scan's grid
# (reoriented to RAS), Pearson (a field is known up to a factor), over the voxels whose true
# template position (truth.json) is in Colin27's brain (ch2bet > 0). Colin27's own field is
# what prep finds on ch2.nii.gz itself (carried through the true transform): the source of the
# raw scans is not flat (its white matter, fitted by a quadratic here, trends by ~0.03 log
# units SD the same way, printed as a check), so on a weak applied field the applied field
# alone is not the scan's bias. The correlation with the applied field alone is printed too.
set -u
bin=${ANOSWIN_BIN:?}
py=${ANOSWIN_PYTHON:-/usr/bin/python3}
tmp=scratch_prep_bias
rm -rf "$tmp" && mkdir -p "$tmp"
. "$(dirname "$0")/helpers/cli.sh"

expect 2 "no-n4" "--write-bias refuses --no-n4" "$bin" prep --out "$tmp/o" --write-bias --no-n4 x.nii.gz
succeeds "data synth --raw (4 scans)" "$bin" data synth --raw --healthy 4 --seed 7 --out "$tmp/raw" --threads 2
succeeds "prep --write-bias on the raw scans" "$bin" prep --write-bias --out "$tmp/prep" --threads 2 "$tmp/raw"
succeeds "prep --write-bias on Colin27 itself" "$bin" prep --write-bias --out "$tmp/colin" --threads 2 \
  /usr/share/mricron/templates/ch2.nii.gz
check "bias written on the scan's grid, not without --write-bias elsewhere" \
  "[ -s $tmp/prep/healthy/raw_000/raw_000_bias.nii.gz ] && [ -s $tmp/colin/ch2/ch2_bias.nii.gz ]"
"$py" - "$tmp" <<'PY' && ok "recovered bias field correlates >= 0.9 with the true one on 4 raw heads" || bad "bias field correlation"
import json, sys, numpy as np, nibabel as nib
from scipy import ndimage
from scipy.ndimage import map_coordinates
tmp = sys.argv[1]
bet = nib.load("/usr/share/mricron/templates/ch2bet.nii.gz"); Bt = np.asarray(bet.dataobj) > 0
ch2 = nib.load("/usr/share/mricron/templates/ch2.nii.gz"); H = np.asarray(ch2.dataobj, np.float64)
own_img = nib.load(tmp + "/colin/ch2/ch2_bias.nii.gz")
assert own_img.shape == H.shape
O = np.log(np.asarray(own_img.dataobj, np.float64))
def world(aff, p): return (aff @ np.c_[p, np.ones(len(p))].T)[:3].T
# an N4-free look at Colin27's own trend: a quadratic (world mm) fitted to log T1 in its white
# matter (3-class k-means of the brain, eroded once)
x = H[Bt]
mu = np.percentile(x, [15, 50, 85])
for _ in range(50):
    c = np.argmin(np.abs(x[:, None] - mu[None]), 1)
    mu = np.array([x[c == k].mean() for k in range(3)])
wm = ndimage.binary_erosion(Bt & (np.abs(H - mu[2]) < np.abs(H - mu[1])))
wc = world(ch2.affine, np.argwhere(wm)); ctr = wc.mean(0)
def quad(w):
    u = (w - ctr) / 60.0
    return np.stack([u[:, 0] ** a * u[:, 1] ** b * u[:, 2] ** c for a in range(3) for b in range(3 - a) for c in range(3 - a - b)], 1)
coef = np.linalg.lstsq(quad(wc), np.log(H[wm]), rcond=None)[0]
ok = True
for s in range(4):
    sid = f"raw_{s:03d}"
    d = f"{tmp}/raw/healthy/{sid}"
    tru = np.array(json.load(open(d + "/truth.json"))["template_to_subject"]).reshape(4, 4)
    tb = nib.as_closest_canonical(nib.load(d + "/bias.nii.gz"))
    eb = nib.load(f"{tmp}/prep/healthy/{sid}/{sid}_bias.nii.gz")
    assert eb.shape == tb.shape and np.allclose(eb.affine, tb.affine, atol=1e-3), "bias not on the scan's RAS grid"
    ijk = np.indices(tb.shape).reshape(3, -1).T
    tw = world(np.linalg.inv(tru), world(tb.affine, ijk))  # each scan voxel's true template position
    g = np.rint(world(np.linalg.inv(bet.affine), tw)).astype(int)
    inside = ((g >= 0) & (g < np.array(Bt.shape))).all(1)
    brain = np.zeros(len(ijk), bool)
    brain[inside] = Bt[tuple(g[inside].T)]
    applied = np.log(np.asarray(tb.dataobj, np.float64).ravel()[brain])
    est = np.log(np.asarray(eb.dataobj, np.float64).ravel()[brain])
    own = map_coordinates(O, world(np.linalg.inv(own_img.affine), tw[brain]).T, order=1, mode="nearest")
    trend = quad(tw[brain]) @ coef
    c_true = np.corrcoef(est, applied + own)[0, 1]
    c_app = np.corrcoef(est, applied)[0, 1]
    c_wm = np.corrcoef(est, applied + trend)[0, 1]
    print(f"{sid}: {brain.sum()} brain voxels, SD applied {applied.std():.3f}, Colin27's own {own.std():.3f} "
          f"(its WM trend {trend.std():.3f}, corr {np.corrcoef(own, trend)[0, 1]:.2f}); corr(prep's log field, "
          f"applied + own) {c_true:.4f}; with the applied alone {c_app:.4f}, applied + WM trend {c_wm:.4f}")
    ok &= c_true >= 0.9
sys.exit(0 if ok else 1)
PY
finish
