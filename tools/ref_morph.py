"""Reference morphology / labelling for tests/test_util_morph.c (scipy.ndimage).

Usage: ref_morph.py DIR. Reads DIR/cases.txt ("id nx ny nz ndim shape k", shape 0 = square,
1 = cross) and per case DIR/map_<id>.f32 and DIR/mask_<id>.f32 (float32, (nz, ny, nx) C order),
and writes DIR/<op>_<id>.f32 for
  gerode, gdilate             grey_erosion / grey_dilation, mode='nearest'
  gerode_reflect, gdilate_reflect   same with the default mode='reflect' (odd k only)
  berode0, berode1            binary_erosion with border_value 0 / 1
  bdilate                     binary_dilation
  label4, label8, label6, label18, label26   ndimage.label with the matching structure
"""
import sys
import os
import numpy as np
from scipy import ndimage as ndi


def footprint(ndim, shape, k):
    if ndim == 2:
        fp = np.ones((1, k, k), bool)
    else:
        fp = np.ones((k, k, k), bool)
    if shape == 1:
        c = k // 2
        idx = np.indices(fp.shape)
        centre = [0, c, c] if ndim == 2 else [c, c, c]
        nonzero = sum((idx[a] != centre[a]).astype(int) for a in range(3))
        fp = nonzero <= 1
    return fp


def label_structure(conn):
    s = np.zeros((3, 3, 3), bool)
    if conn in (4, 8):
        s[1] = ndi.generate_binary_structure(2, 1 if conn == 4 else 2)
        return s
    return ndi.generate_binary_structure(3, {6: 1, 18: 2, 26: 3}[conn])


def main():
    d = sys.argv[1]
    for line in open(os.path.join(d, "cases.txt")):
        if not line.strip():
            continue
        cid, nx, ny, nz, ndim, shape, k = map(int, line.split())
        m = np.fromfile(os.path.join(d, f"map_{cid}.f32"), "<f4").reshape(nz, ny, nx)
        b = np.fromfile(os.path.join(d, f"mask_{cid}.f32"), "<f4").reshape(nz, ny, nx) != 0
        fp = footprint(ndim, shape, k)
        out = {
            "gerode": ndi.grey_erosion(m, footprint=fp, mode="nearest"),
            "gdilate": ndi.grey_dilation(m, footprint=fp, mode="nearest"),
            "berode0": ndi.binary_erosion(b, structure=fp, border_value=0),
            "berode1": ndi.binary_erosion(b, structure=fp, border_value=1),
            "bdilate": ndi.binary_dilation(b, structure=fp),
        }
        if k % 2 == 1:
            out["gerode_reflect"] = ndi.grey_erosion(m, footprint=fp)
            out["gdilate_reflect"] = ndi.grey_dilation(m, footprint=fp)
        for conn in (4, 8, 6, 18, 26):
            out[f"label{conn}"] = ndi.label(b, structure=label_structure(conn))[0]
        for name, a in out.items():
            np.asarray(a).astype("<f4").tofile(os.path.join(d, f"{name}_{cid}.f32"))


if __name__ == "__main__":
    main()
