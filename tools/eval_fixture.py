#!/usr/bin/env python3
"""Writes a small synthetic evaluation fixture for tests/test_eval_cli.sh (nibabel).

Usage: eval_fixture.py ROOT
ROOT/data/<id>/{image,label,brain}.nii.gz, ROOT/pred/<id>/{anomaly_map,mask,reconstruction}.nii.gz
+ summary.json; manifests ROOT/test.csv (splits test and val) and ROOT/healthy.csv; and
ROOT/subjects.csv (id,role,image,label,mask) for tools/eval_report_check.py. One subject has an
LPS affine. Three test subjects have no lesion: two with an empty predicted mask (a "perfect"
Dice of 1 that must stay out of the per-volume means), one with a false-positive blob; one
healthy scan has a false-positive blob too. Voxels are 1.2 x 0.9 x 2.0 mm, so false-positive
volumes in ml are not voxel counts.
"""
import json
import os
import sys

import nibabel as nib
import numpy as np


def main():
    root = sys.argv[1]
    rng = np.random.default_rng(7)
    shape = (18, 20, 12)
    ii, jj, kk = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    brain = ((ii - 8.5) / 8.5) ** 2 + ((jj - 9.5) / 9.5) ** 2 + ((kk - 5.5) / 6) ** 2 < 1
    man = ["subject,image,label,mask,split"]
    hman = ["subject,image,label,mask,split"]
    subs = ["id,role,image,label,mask"]
    zoom = np.array([1.2, 0.9, 2.0])
    # id, role, lesion, LPS affine, false-positive blob
    spec = [("t1", "test", 1, 0, 0), ("t2", "test", 1, 1, 0), ("t3", "test", 0, 0, 0), ("t4", "test", 1, 0, 0),
            ("t5", "test", 0, 1, 0), ("t6", "test", 0, 0, 1), ("v1", "val", 1, 0, 0), ("v2", "val", 1, 0, 0),
            ("h1", "healthy", 0, 0, 0), ("h2", "healthy", 0, 1, 1)]
    for sid, role, lesion, lps, blob in spec:
        aff = np.diag([*zoom, 1.0])
        if lps:
            aff[0, 0], aff[1, 1] = -zoom[0], -zoom[1]
            aff[0, 3], aff[1, 3] = zoom[0] * (shape[0] - 1), zoom[1] * (shape[1] - 1)
        c = rng.uniform([5, 6, 3], [12, 13, 8])
        les = lesion * brain * (((ii - c[0]) ** 2 + (jj - c[1]) ** 2 + (kk - c[2]) ** 2) < 7)
        img = brain * (100 + 10 * rng.standard_normal(shape) + 60 * les)
        s = brain * np.round((0.55 * rng.uniform(size=shape) + les * (0.25 + 0.3 * rng.uniform(size=shape))) * 20) / 20
        if blob:  # something bright that is not a lesion: detect flags it
            s[brain & (((ii - c[0]) ** 2 + (jj - c[1]) ** 2 + (kk - c[2]) ** 2) < 5)] = 0.8
        d = os.path.join(root, "data", sid)
        p = os.path.join(root, "pred", sid)
        os.makedirs(d, exist_ok=True)
        os.makedirs(p, exist_ok=True)
        nib.save(nib.Nifti1Image(img.astype(np.float32), aff), f"{d}/image.nii.gz")
        nib.save(nib.Nifti1Image(brain.astype(np.uint8), aff), f"{d}/brain.nii.gz")
        if role != "healthy":
            nib.save(nib.Nifti1Image(les.astype(np.uint8), aff), f"{d}/label.nii.gz")
        nib.save(nib.Nifti1Image(s.astype(np.float32), aff), f"{p}/anomaly_map.nii.gz")
        nib.save(nib.Nifti1Image((s >= 0.6).astype(np.uint8), aff), f"{p}/mask.nii.gz")
        nib.save(nib.Nifti1Image((brain * 0.5).astype(np.float32), aff), f"{p}/reconstruction.nii.gz")
        summary = {"slice_range": [1, 10], "seconds_per_slice": 0.5, "parameters": 4200000}
        # detect's map settings, which give the report's colour bar its units (t4..: none recorded)
        if sid in ("t1", "t2", "t3"):
            summary.update(window_norm="minmax" if sid == "t2" else "none", slice_norm="none")
        if sid == "t3":  # a normative calibration: the map is in z-score units
            json.dump({"normative_units": [1.0]}, open(f"{p}/calibration.json", "w"))
            summary["calibration"] = {"file": f"{p}/calibration.json"}
        json.dump(summary, open(f"{p}/summary.json", "w"))
        lab = f"data/{sid}/label.nii.gz" if role != "healthy" else ""
        row = f"{sid},data/{sid}/image.nii.gz,{lab},data/{sid}/brain.nii.gz,{role}"
        (hman if role == "healthy" else man).append(row)
        subs.append(f"{sid},{role},{d}/image.nii.gz,{'label.nii.gz' if lab else ''},brain.nii.gz")
    open(f"{root}/test.csv", "w").write("\n".join(man) + "\n")
    open(f"{root}/healthy.csv", "w").write("\n".join(hman) + "\n")
    open(f"{root}/subjects.csv", "w").write("\n".join(subs) + "\n")
    os.makedirs(f"{root}/run", exist_ok=True)
    open(f"{root}/run/log.csv", "w").write("step,loss\n0,1.0\n1,0.6\n2,0.4\n")


if __name__ == "__main__":
    main()
