#!/usr/bin/env python3
"""Hostile NIfTI files for anoswin's reader: every one must be refused with a one-line error
naming the file, without crashing and without allocating what the header claims.

Usage: nifti_hostile.py OUTDIR
Writes the files and OUTDIR/hostile.txt: one line per file, "NAME<TAB>words the error must
contain". Headers are built with nibabel and patched field by field; data is written raw.
"""
import gzip
import os
import sys

import nibabel as nib
import numpy as np


def header(shape=(4, 3, 2), dtype=np.float32, n2=False, affine=None):
    a = np.diag([1.0, 1.0, 1.0, 1.0]) if affine is None else affine
    img = (nib.Nifti2Image if n2 else nib.Nifti1Image)(np.zeros(shape, dtype), a)
    img.set_data_dtype(dtype)
    h = img.header
    h['vox_offset'] = 544 if n2 else 352
    return h


def raw_sform(h, a):
    """Sets the sform rows directly (nibabel refuses to build images on singular affines)."""
    h.set_qform(None, code=0)
    for i, row in enumerate(('srow_x', 'srow_y', 'srow_z')):
        h[row] = np.asarray(a[i], dtype=np.float32)
    h['sform_code'] = 1
    return h


def write(path, hdr, data=b'', gz=False, ext=True):
    blob = hdr.binaryblock + (b'\0' * 4 if ext else b'') + data
    if gz:
        blob = gzip.compress(blob)
    with open(path, 'wb') as f:
        f.write(blob)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    cases = []

    def add(name, expect):
        cases.append((name, expect))
        return os.path.join(out, name)

    good = np.arange(24, dtype=np.float32).tobytes()
    open(add('empty.nii', 'not a NIfTI'), 'wb').close()
    with open(add('text.nii', 'not a NIfTI'), 'w') as f:
        f.write('hello, I am not an image\n' * 20)
    write(os.path.join(out, 'tmp.nii'), header(), good)
    raw = open(os.path.join(out, 'tmp.nii'), 'rb').read()
    os.remove(os.path.join(out, 'tmp.nii'))
    with open(add('truncated_header.nii', 'not a NIfTI'), 'wb') as f:
        f.write(raw[:100])
    with open(add('bad_magic.nii', 'not a NIfTI'), 'wb') as f:
        f.write(raw[:344] + b'xyz\0' + raw[348:])
    big = np.random.default_rng(0).standard_normal(20000).astype(np.float32).tobytes()
    h = header((100, 20, 10))
    with open(add('corrupt.nii.gz', 'shorter'), 'wb') as f:  # gzip stream cut in the middle of the voxels
        f.write(gzip.compress(h.binaryblock + bytes(4) + big)[:30000])
    with open(add('garbage.nii.gz', 'not a NIfTI'), 'wb') as f:
        f.write(gzip.compress(b'\x01\x02' * 400))

    h = header((4, 3, 2, 3))
    write(add('4d_three_volumes.nii', '3 volumes'), h, good * 3)
    h = header((4, 3, 2, 1, 2))
    write(add('5d.nii', '5-D'), h, good * 2)
    h = header()
    h['dim'][1:4] = [2048, 1024, 1024]  # 2^31 voxels claimed, 24 present
    write(add('huge_2e31.nii', 'absurd size'), h, good)
    write(add('huge_2e31.nii.gz', 'absurd size'), h, good, gz=True)
    h = header()
    h['dim'][1:4] = [1024, 1024, 512]  # 2^29 voxels (2 GiB float32) claimed, 24 present
    write(add('short_data.nii', 'shorter'), h, good)
    write(add('short_data.nii.gz', 'shorter'), h, good, gz=True)
    h = header(n2=True)
    h['dim'][1:4] = [2**40, 2**20, 1]
    write(add('n2_huge.nii', 'absurd size'), h, good)
    h = header()
    h['dim'][2] = -3
    write(add('negative_dim.nii', 'invalid size'), h, good)
    h = header()
    h['vox_offset'] = 1e9
    write(add('vox_offset_past_end.nii', 'shorter'), h, good)
    write(add('vox_offset_past_end.nii.gz', 'past the end'), h, good, gz=True)
    for name, v in (('zero', 0.0), ('negative', -1.0), ('nan', np.nan)):
        h = header()
        h['pixdim'][2] = v
        write(add(f'pixdim_{name}.nii', 'voxel size'), h, good)
    for name, v in (('nan', np.nan), ('inf', np.inf)):
        d = np.arange(24, dtype=np.float32)
        d[17] = v
        write(add(f'voxel_{name}.nii.gz', 'non-finite voxel'), header(), d.tobytes(), gz=True)
    d = np.arange(24, dtype=np.float64)
    d[3] = -np.inf
    write(add('voxel_inf_f64.nii', 'non-finite voxel'), header(dtype=np.float64), d.tobytes())
    h = header(dtype=np.int16)
    h['scl_slope'] = 2.0
    h['scl_inter'] = np.inf
    write(add('scl_inter_inf.nii', 'scl_inter'), h, np.arange(24, dtype=np.int16).tobytes())
    shear = np.array([[1, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    write(add('sform_shear.nii', 'not orthogonal'), raw_sform(header(), shear), good)
    zero_col = np.diag([1.0, 0.0, 1.0, 1.0])
    write(add('sform_zero_axis.nii', 'singular'), raw_sform(header(), zero_col), good)
    parallel = np.array([[1, 1, 0, 0], [0, 0, 1, 0], [1, 1, 0, 0], [0, 0, 0, 1.0]])
    write(add('sform_rank2.nii', 'singular'), raw_sform(header(), parallel), good)
    nan = np.eye(4)
    nan[0, 0] = np.nan
    write(add('sform_nan.nii', 'non-finite'), raw_sform(header(), nan), good)
    h = header(dtype=np.complex64)
    write(add('complex64.nii', 'unsupported datatype'), h, bytes(24 * 8))
    h = header()
    h['datatype'] = 128  # RGB24
    h['bitpix'] = 24
    write(add('rgb24.nii', 'unsupported datatype'), h, bytes(24 * 3))
    img = nib.Nifti1Pair(np.zeros((4, 3, 2), np.float32), np.eye(4))
    nib.save(img, add('pair.hdr', 'two-file'))
    os.makedirs(add('a_folder.nii', 'not a regular file'), exist_ok=True)
    cases.append(('does_not_exist.nii.gz', 'No such file'))

    with open(os.path.join(out, 'hostile.txt'), 'w') as f:
        for name, expect in cases:
            f.write(f'{name}\t{expect}\n')


if __name__ == '__main__':
    main()
