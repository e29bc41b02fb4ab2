#!/usr/bin/env python3
"""Independent check (nibabel) of NIfTI files written by anoswin.

Usage: nifti_check_written.py FIXTURE_DIR OUT_DIR

For every fixture NAME in FIXTURE_DIR/manifest.txt, anoswin has written OUT_DIR/NAME.f32.nii.gz
(float32 copy of the data) and OUT_DIR/NAME.u8.nii (uint8: clip(round(data), 0, 255)) keeping the
source geometry. Checks shape, affine, sform/qform codes, datatype and voxel values; exits 1 and
prints each mismatch otherwise.
"""
import os
import sys

import nibabel as nib
import numpy as np


def main():
    fx, out = sys.argv[1], sys.argv[2]
    bad = 0
    n = 0
    for line in open(os.path.join(fx, 'manifest.txt')):
        name = line.split()[0]
        src = nib.load(os.path.join(fx, name))
        sdata = np.asarray(src.get_fdata(), dtype=np.float64)
        if sdata.ndim == 4:
            sdata = sdata[..., 0]
        for suffix, dt in (('.f32.nii.gz', np.float32), ('.u8.nii', np.uint8)):
            path = os.path.join(out, name + suffix)
            img = nib.load(path)
            n += 1
            problems = []
            if img.shape != sdata.shape:
                problems.append(f'shape {img.shape} != {sdata.shape}')
            if not np.allclose(img.affine, src.affine, atol=1e-4, rtol=1e-6):
                problems.append(f'affine\n{img.affine}\n!= source\n{src.affine}')
            for kind in ('sform', 'qform'):
                got = int(img.header[kind + '_code'])
                want = int(src.header[kind + '_code'])
                if got != want:
                    problems.append(f'{kind}_code {got} != {want}')
            if img.get_data_dtype() != np.dtype(dt):
                problems.append(f'datatype {img.get_data_dtype()} != {np.dtype(dt)}')
            if not np.allclose(img.header.get_zooms()[:3], src.header.get_zooms()[:3]):
                problems.append(f'zooms {img.header.get_zooms()} != {src.header.get_zooms()}')
            if not problems:
                got = np.asarray(img.get_fdata())
                if dt == np.float32:
                    want = sdata.astype(np.float32).astype(np.float64)
                else:
                    want = np.clip(np.round(sdata.astype(np.float32)), 0, 255)
                if not np.array_equal(got, want):
                    problems.append(f'data differs: max |diff| {np.abs(got - want).max()}')
            if problems:
                bad += 1
                print(f'FAIL {path}: ' + '; '.join(problems))
    print(f'checked {n} written files, {bad} bad')
    sys.exit(1 if bad or n == 0 else 0)


if __name__ == '__main__':
    main()
