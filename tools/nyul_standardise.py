#!/usr/bin/python3
"""nyul_standardise.py: Nyúl & Udupa histogram standardisation of a BraTS21-layout T2 set (the
experiment of issue 13, session 12, now `anoswin train --intensity nyul`, src/data/nyul.c; these
functions are its NumPy reference, tools/nyul_reference.py).

    nyul_standardise.py SRC DST TRAIN_CSV

Landmarks: the brain's (image > 0) percentiles 1, 10, 20, ..., 90, 99. The standard scale is the
mean over the training scans (TRAIN_CSV, e.g. the train.csv `anoswin demo --data` writes) of
their landmarks after the linear map p1 -> 50, p99 -> 1000. Every scan of SRC (healthy/ and
test/) is mapped piecewise linearly from its own landmarks onto the standard ones, the first and
last segments extended beyond p1 and p99 (scipy's interp1d(..., fill_value="extrapolate"), as in
Nyúl's method and the intensity-normalization package), at least FLOOR inside the brain (so that
it stays > 0), and written to DST in the same layout as int16. Labels are copied. anoswin then
divides by HI (one fixed scale, src/data/slices.c); session 12's experiment ran on files of the
earlier version, which clamped below p1 to 50 and above p99 to 1000. Nyúl, Udupa, Zhang, "New
variants of a method of MRI scale standardization", IEEE TMI 19(2), 2000; Shah et al., MedIA
15(2), 2011 (deciles)."""
import csv, glob, os, shutil, sys

import nibabel as nib
import numpy as np
from scipy.interpolate import interp1d

PCTS = [1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 99]
LO, HI = 50.0, 1000.0
FLOOR = 1.0


def landmarks(img, brain=None):
    return np.percentile(img[img > 0 if brain is None else brain], PCTS)


def standard(train_landmarks):
    """The mean of the training scans' landmarks after the linear map p1 -> LO, p99 -> HI."""
    return np.mean([LO + (lm - lm[0]) / (lm[-1] - lm[0]) * (HI - LO) for lm in train_landmarks], axis=0)


def standardise(x, std, brain=None, tails="extend"):
    """x mapped onto the standard (float; 0 outside the brain). tails="clamp": session 13's map
    (below p1 -> LO, above p99 -> HI), which anoswin keeps for checkpoints of that session."""
    b = x > 0 if brain is None else brain
    y = np.zeros_like(x)
    lm = landmarks(x, b)
    if lm[-1] > lm[0] and tails == "clamp":
        y[b] = np.interp(x[b], lm, std)
    elif lm[-1] > lm[0]:
        y[b] = np.maximum(interp1d(lm, std, fill_value="extrapolate")(x[b]), FLOOR)
    else:  # a flat brain: no scale to map
        y[b] = LO
    return y


def main():
    src, dst, train_csv = sys.argv[1:4]
    std = standard([landmarks(np.asarray(nib.load(row["image"]).dataobj, np.float32))
                    for row in csv.DictReader(open(train_csv))])
    print("standard landmarks", np.round(std, 1))
    for f in sorted(glob.glob(os.path.join(src, "*", "*", "*.nii.gz"))):
        out = os.path.join(dst, os.path.relpath(f, src))
        os.makedirs(os.path.dirname(out), exist_ok=True)
        if "_seg" in os.path.basename(f):
            shutil.copy(f, out)
            continue
        im = nib.load(f)
        y = standardise(np.asarray(im.dataobj, np.float32), std)
        nib.save(nib.Nifti1Image(np.rint(y).astype(np.int16), im.affine), out)


if __name__ == "__main__":
    main()
