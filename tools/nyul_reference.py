#!/usr/bin/python3
"""nyul_reference.py OUT: fixtures and NumPy answers for tests/test_data_nyul.c.

Writes into OUT: train_{0,1,2}.nii.gz (training scans: an ellipsoid "brain" of three tissue
classes whose contrast differs per scan, background 0; float32, LAS/RAS/PIR orientations),
test_{0,1}.nii.gz (scans to standardise; test_1 with mask_1.nii.gz, whose brain is not image > 0),
standard.f4 (the 11 standard landmarks of the training scans), test_{0,1}.std.f4 (each test
scan standardised, native order x fastest), test_{0,1}.clamp.f4 (the same with session 13's
clamped tails) and test_{0,1}.std.nii.gz (the first as NIfTI), all
from tools/nyul_standardise.py's functions."""
import os, sys

import nibabel as nib
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nyul_standardise import landmarks, standard, standardise  # noqa: E402

AFF = {"LAS": np.diag([-1.2, 1.1, 1.5, 1.0]), "RAS": np.diag([1.0, 1.0, 1.3, 1.0]),
       "PIR": np.array([[0, 0, 1.1, 0], [-1.0, 0, 0, 0], [0, -1.2, 0, 0], [0, 0, 0, 1.0]])}


def phantom(rng, shape, gamma, gain):
    g = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    r = np.sqrt((g ** 2).sum(0))
    brain = r < 0.85
    tissue = np.where(r < 0.3, 1.0, np.where(np.abs(g[0]) < 0.2, 0.45, 0.7))  # "CSF", "WM", "GM"
    x = gain * (tissue ** gamma) * (1 + 0.08 * rng.standard_normal(shape))
    return np.where(brain, np.maximum(x, 1e-3), 0).astype(np.float32), brain


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)
    shape = (23, 19, 17)
    lms = []
    for i, (orient, gamma, gain) in enumerate([("LAS", 1.0, 300), ("RAS", 1.6, 80), ("PIR", 0.7, 2000)]):
        x, _ = phantom(rng, shape, gamma, gain)
        nib.save(nib.Nifti1Image(x, AFF[orient]), os.path.join(out, f"train_{i}.nii.gz"))
        lms.append(landmarks(x))
    std = standard(lms)
    std.astype("<f4").tofile(os.path.join(out, "standard.f4"))
    for i, (orient, gamma, gain) in enumerate([("LAS", 2.2, 50), ("PIR", 0.8, 900)]):
        x, brain = phantom(rng, shape, gamma, gain)
        mask = None
        if i == 1:  # a mask smaller than image > 0: the brain is the mask's, the rest goes to 0
            mask = brain & (np.indices(shape)[2] > 3)
            nib.save(nib.Nifti1Image(mask.astype(np.uint8), AFF[orient]), os.path.join(out, f"mask_{i}.nii.gz"))
        nib.save(nib.Nifti1Image(x, AFF[orient]), os.path.join(out, f"test_{i}.nii.gz"))
        y = standardise(x, std, mask)
        y.astype("<f4").ravel(order="F").tofile(os.path.join(out, f"test_{i}.std.f4"))
        standardise(x, std, mask, "clamp").astype("<f4").ravel(order="F").tofile(os.path.join(out, f"test_{i}.clamp.f4"))
        nib.save(nib.Nifti1Image(y.astype(np.float32), AFF[orient]), os.path.join(out, f"test_{i}.std.nii.gz"))


if __name__ == "__main__":
    main()
