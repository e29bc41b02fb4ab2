#!/usr/bin/env python3
"""Independent reference for anoswin's NIfTI reader and RAS reorientation (nibabel).

Usage: nifti_fixtures.py OUTDIR

Writes small NIfTI files (odd shapes, every supported datatype, scl_slope/scl_inter, NIfTI-1
and NIfTI-2, .nii and .nii.gz, big-endian, 4-D with one volume, several orientations incl.
oblique, sform-only / qform-only / no-xform headers) and OUTDIR/manifest.txt, one line per file:

  name nx ny nz a00 .. a33 CODE rx ry rz r00 .. r33

where a = nibabel's img.affine, CODE = ''.join(nib.aff2axcodes(a)), r* the shape/affine of
nib.as_closest_canonical(img). Alongside: NAME.data.f4 (img.get_fdata() as '<f4', x fastest)
and NAME.ras.f4 (the canonical image's data, x fastest). Also large_LAS_mask.nii.gz (a mask on
large_LAS's grid) and wrong_grid_mask.nii.gz (one slice fewer), not in the manifest.
"""
import os
import sys

import nibabel as nib
import numpy as np


def rot(axis, deg):
    t = np.deg2rad(deg)
    c, s = np.cos(t), np.sin(t)
    m = np.eye(3)
    i, j = [(1, 2), (0, 2), (0, 1)][axis]
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


def affine_from(codes, zooms=(1.0, 1.5, 2.0), rotation=None, offset=(-10.0, 20.0, 5.5)):
    """An affine whose voxel axes point along `codes` (e.g. 'PIR'), optionally rotated."""
    axes = {'R': (0, 1), 'L': (0, -1), 'A': (1, 1), 'P': (1, -1), 'S': (2, 1), 'I': (2, -1)}
    m = np.zeros((3, 3))
    for col, c in enumerate(codes):
        row, sign = axes[c]
        m[row, col] = sign * zooms[col]
    if rotation is not None:
        m = rotation @ m
    a = np.eye(4)
    a[:3, :3] = m
    a[:3, 3] = offset
    return a


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(1234)
    shape = (7, 5, 6)
    cases = []  # (name, image)

    # Every datatype, exact values (no scaling), LAS orientation.
    ranges = {np.uint8: (0, 255), np.int8: (-128, 127), np.int16: (-32768, 32767), np.uint16: (0, 65535),
              np.int32: (-2**31, 2**31 - 1), np.float32: None, np.float64: None}
    for dt, r in ranges.items():
        if r is None:
            data = (rng.standard_normal(shape) * 1000).astype(dt)
        else:
            data = rng.integers(r[0], r[1], size=shape, endpoint=True).astype(dt)
        img = nib.Nifti1Image(data, affine_from('LAS'))
        img.set_data_dtype(dt)
        cases.append((f'dt_{np.dtype(dt).name}.nii', img))

    # scl_slope / scl_inter chosen by nibabel when storing float data as int16 / uint8.
    f = rng.uniform(-3.7, 1234.5, size=shape)
    img = nib.Nifti1Image(f, affine_from('RAS'))
    img.set_data_dtype(np.int16)
    cases.append(('scaled_int16.nii.gz', img))
    img = nib.Nifti1Image(rng.uniform(10.0, 20.0, size=shape), affine_from('LPS'))
    img.set_data_dtype(np.uint8)
    cases.append(('scaled_uint8.nii', img))

    # Orientations (float32, gzip and not), NIfTI-1 and NIfTI-2.
    f32 = rng.uniform(0, 100, size=shape).astype(np.float32)
    for codes in ['RAS', 'LAS', 'LPS', 'PIR', 'ASL', 'IPL', 'SRA']:
        cases.append((f'orient_{codes}.nii.gz', nib.Nifti1Image(f32, affine_from(codes))))
    cases.append(('oblique_1.nii.gz', nib.Nifti1Image(f32, affine_from('LAS', rotation=rot(2, 30) @ rot(0, 20)))))
    cases.append(('oblique_2.nii', nib.Nifti1Image(f32, affine_from('PIR', rotation=rot(1, -40)))))
    cases.append(('n2_LPI.nii', nib.Nifti2Image(f32, affine_from('LPI'))))
    cases.append(('n2_int16_PSR.nii.gz', nib.Nifti2Image(rng.integers(-500, 500, size=shape).astype(np.int16),
                                                         affine_from('PSR'))))
    # qform only, and neither (nibabel then uses the centred, x-flipped Analyze affine).
    img = nib.Nifti1Image(f32, affine_from('LPS'))
    img.set_sform(None, code=0)
    img.set_qform(affine_from('LPS'), code=1)
    cases.append(('qform_only.nii', img))
    img = nib.Nifti1Image(f32, None)
    img.header.set_zooms((1.2, 0.9, 2.5))
    img.set_sform(None, code=0)
    img.set_qform(None, code=0)
    cases.append(('no_xform.nii.gz', img))
    # Big-endian int16, 4-D with one volume, a 1-slice volume.
    hdr = nib.Nifti1Header(endianness='>')
    img = nib.Nifti1Image(rng.integers(-900, 900, size=shape).astype('>i2'), affine_from('RPI'), header=hdr)
    img.set_data_dtype('>i2')
    cases.append(('bigendian.nii', img))
    cases.append(('vol4d_1.nii.gz', nib.Nifti1Image(f32[..., None], affine_from('RAS'))))
    cases.append(('oneslice.nii', nib.Nifti1Image(f32[:, :, :1], affine_from('LAS'))))
    # A realistic size (brain-like grid), odd sizes, RAS-ish but flipped x.
    big = rng.uniform(0, 1, size=(61, 73, 41)).astype(np.float32)
    cases.append(('large_LAS.nii.gz', nib.Nifti1Image(big, affine_from('LAS', zooms=(3.0, 3.0, 3.5)))))

    # Brain masks for the slice pipeline: one on large_LAS's grid, one on another grid.
    m = (big > 0.3).astype(np.uint8)
    nib.save(nib.Nifti1Image(m, affine_from('LAS', zooms=(3.0, 3.0, 3.5))), os.path.join(out, 'large_LAS_mask.nii.gz'))
    nib.save(nib.Nifti1Image(m[:, :, :40], affine_from('LAS', zooms=(3.0, 3.0, 3.5))),
             os.path.join(out, 'wrong_grid_mask.nii.gz'))

    with open(os.path.join(out, 'manifest.txt'), 'w') as mf:
        for name, img in cases:
            path = os.path.join(out, name)
            nib.save(img, path)
            img = nib.load(path)  # everything below describes the file as written
            data = np.asarray(img.get_fdata(), dtype=np.float64)
            if data.ndim == 4:
                data = data[..., 0]
                img = nib.Nifti1Image(data, img.affine, img.header)
            assert data.ndim == 3
            can = nib.as_closest_canonical(img)
            cdata = np.asarray(can.get_fdata())
            code = ''.join(nib.aff2axcodes(img.affine))
            base = os.path.join(out, name)
            data.astype('<f4').ravel(order='F').tofile(base + '.data.f4')
            cdata.astype('<f4').ravel(order='F').tofile(base + '.ras.f4')
            fields = [name] + [str(s) for s in data.shape] + ['%.17g' % x for x in img.affine.ravel()]
            fields += [code] + [str(s) for s in cdata.shape] + ['%.17g' % x for x in can.affine.ravel()]
            mf.write(' '.join(fields) + '\n')


if __name__ == '__main__':
    main()
