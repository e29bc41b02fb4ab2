#!/usr/bin/env python3
"""Inputs for tests/test_harden_readers.c, written with nibabel (independent of the C reader).

Usage: harden_fixtures.py OUTDIR

  n2_slice64.nii          NIfTI-2 whose slice_start/slice_end and sform_code do not fit the
                          16-bit NIfTI-1 fields (found by fuzz_nifti: writing a result for it
                          failed); n2_slice64.data.f4 = nibabel's data ('<f4', x fastest) and
                          n2_slice64.affine.f8 = nibabel's affine ('<f8', row-major 4x4).
  n2_offset_in_header.nii NIfTI-2 whose vox_offset (400) points inside its own 540-byte header.
  n2_pixdim_1e300.nii     NIfTI-2 (double fields) with pixdim[3] = 1e300: finite, but inf in the
                          float32 header of any result (found by fuzz_nifti's write-back).
  n2_srow_1e300.nii       the same with the sform translation srow_x[3] = 1e300.
  n2_pixdim_1e-300.nii    pixdim[1] = 1e-300: positive, but 0 in a float32 header.
  n2_quatern_1e135.nii    NIfTI-2, qform only, quatern_c = 1e135 (inf once written as float32).
  n1_1d_qform.nii         NIfTI-1 with dim[0] = 1 (3 voxels) but pixdim[2..3] = 1.5, 2 used by its
                          qform (found by fuzz_nifti: a written result had another affine);
                          n1_1d_qform.affine.f8 = nibabel's qform of the file.
"""
import os
import struct
import sys

import nibabel as nib
import numpy as np


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)
    data = rng.random((5, 4, 3)).astype(np.float32)
    aff = np.array([[0, -1.5, 0, 10], [1.0, 0, 0, -20], [0, 0, 2.0, 5], [0, 0, 0, 1]])
    img = nib.Nifti2Image(data, aff)
    img.header['slice_start'] = 2 ** 40
    img.header['slice_end'] = 2 ** 41
    img.header['sform_code'] = 1
    img.header['qform_code'] = 0
    p = os.path.join(out, 'n2_slice64.nii')
    img.to_filename(p)
    back = nib.load(p)
    np.asarray(back.get_fdata(), dtype='<f4').ravel(order='F').tofile(os.path.join(out, 'n2_slice64.data.f4'))
    np.asarray(back.affine, dtype='<f8').tofile(os.path.join(out, 'n2_slice64.affine.f8'))

    p = os.path.join(out, 'n2_offset_in_header.nii')
    nib.Nifti2Image(data, aff).to_filename(p)
    with open(p, 'r+b') as f:
        f.seek(168)  # vox_offset (int64) in the NIfTI-2 header
        f.write(struct.pack('<q', 400))

    # Byte offsets in the NIfTI-2 header: pixdim[0..7] (float64) at 104, srow_x[0..3] at 400.
    for name, off, val in [('n2_pixdim_1e300.nii', 104 + 3 * 8, 1e300), ('n2_srow_1e300.nii', 400 + 3 * 8, 1e300),
                           ('n2_pixdim_1e-300.nii', 104 + 1 * 8, 1e-300)]:
        p = os.path.join(out, name)
        img = nib.Nifti2Image(data, aff)
        img.header['sform_code'] = 1
        img.to_filename(p)
        with open(p, 'r+b') as f:
            f.seek(off)
            f.write(struct.pack('<d', val))

    p = os.path.join(out, 'n2_quatern_1e135.nii')
    img = nib.Nifti2Image(data, aff)
    img.set_qform(aff, code=1)
    img.set_sform(None, code=0)
    img.to_filename(p)
    with open(p, 'r+b') as f:
        f.seek(360)  # quatern_c (float64) in the NIfTI-2 header
        f.write(struct.pack('<d', 1e135))

    p = os.path.join(out, 'n1_1d_qform.nii')
    img = nib.Nifti1Image(np.arange(3, dtype=np.float32).reshape(3, 1, 1), aff)
    img.set_qform(aff, code=1)
    img.set_sform(None, code=0)
    img.to_filename(p)
    with open(p, 'r+b') as f:
        f.seek(40)  # dim[0] (int16) in the NIfTI-1 header
        f.write(struct.pack('<h', 1))
    q = nib.load(p).header.get_qform()
    np.asarray(q, dtype='<f8').tofile(os.path.join(out, 'n1_1d_qform.affine.f8'))


if __name__ == '__main__':
    main()
