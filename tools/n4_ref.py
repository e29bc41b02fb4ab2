"""Reference B-spline evaluation/fit, histogram sharpening and Otsu threshold for
tests/test_prep_n4.c (src/prep/bspline.c, src/prep/n4.c).

Usage: n4_ref.py DIR. Arrays are raw float32, C order (z, y, x) as the C side writes them.
  DIR/bspline.txt   lines "id order c0 c1 c2 n0 n1 n2 e0 e1 e2" (control points, samples and
                    full-grid extent per axis x, y, z); per id bs_<id>_pos{0,1,2}.f32 (sample
                    positions), bs_<id>_lat.f32 (c2, c1, c0), bs_<id>_val.f32 and bs_<id>_mask.f32
                    (n2, n1, n0). Writes bs_<id>_eval.f32 (the spline at the samples) and
                    bs_<id>_fit.f32 (the Lee-Wolberg-Shin single-level fit of val where mask).
  DIR/sharpen.txt   lines "id n bins fwhm noise"; per id sh_<id>_v.f32, sh_<id>_mask.f32. Writes
                    sh_<id>_out.f32 (ITK's SharpenImage mapping) and sh_<id>_otsu.f32 (Otsu's
                    threshold of v, all values).

The B-spline is scipy.interpolate.BSpline on the integer knots -order .. ncp (ITK's lattice
convention, docs in src/prep/bspline.h); the fit is formed with the dense (points x control
points) weight matrix, not separably as the C code does it.
"""
import os
import sys

import numpy as np
from scipy.interpolate import BSpline


def design(pos, ncp, order, extent):
    spans = ncp - order
    u = pos.astype(np.float64) * spans / extent if extent > 0 else np.zeros(len(pos))
    t = np.arange(-order, ncp + 1, dtype=np.float64)
    return BSpline.design_matrix(np.clip(u, 0, spans), t, order).toarray()  # (n, ncp)


def bspline_case(d, f):
    i, order, c0, c1, c2, n0, n1, n2, e0, e1, e2 = f
    p = lambda name: os.path.join(d, f"bs_{i}_{name}")
    B = [design(np.fromfile(p(f"pos{a}.f32"), "<f4").astype(np.float64), c, order, e)
         for a, (c, e) in enumerate(((c0, e0), (c1, e1), (c2, e2)))]
    lat = np.fromfile(p("lat.f32"), "<f4").astype(np.float64).reshape(c2, c1, c0)
    ev = np.einsum("za,yb,xc,abc->zyx", B[2], B[1], B[0], lat)
    ev.astype("<f4").tofile(p("eval.f32"))
    val = np.fromfile(p("val.f32"), "<f4").astype(np.float64).reshape(-1)
    mask = np.fromfile(p("mask.f32"), "<f4").reshape(-1) != 0
    # W[p, c]: weight of control point c (z, y, x order) at sample p (z, y, x order).
    W = np.einsum("za,yb,xc->zyxabc", B[2], B[1], B[0]).reshape(n2 * n1 * n0, c2 * c1 * c0)
    W = W[mask]
    w2 = (W ** 2).sum(1)
    delta = (val[mask][:, None] * W ** 3 / w2[:, None]).sum(0)
    omega = (W ** 2).sum(0)
    phi = np.where(omega > 0, delta / np.where(omega > 0, omega, 1), 0)
    phi.astype("<f4").tofile(p("fit.f32"))


def sharpen(v, bins, fwhm, noise):
    lo, hi = v.min(), v.max()
    if not hi > lo:
        return v.copy()
    slope = (hi - lo) / (bins - 1)
    c = (v - lo) / slope
    b = np.floor(c).astype(int)
    H = np.zeros(bins)
    top = b >= bins - 1
    np.add.at(H, np.full(top.sum(), bins - 1), 1.0)
    bb, ff = b[~top], c[~top] - b[~top]
    np.add.at(H, bb, 1 - ff)
    np.add.at(H, bb + 1, ff)
    P = 2 * (1 << int(np.ceil(np.log2(bins))))
    off = (P - bins) // 2
    V = np.zeros(P)
    V[off:off + bins] = H
    sf = fwhm / slope
    n = np.arange(P)
    dist = np.minimum(n, P - n).astype(np.float64)
    F = 2 * np.sqrt(np.log(2) / np.pi) / sf * np.exp(-dist ** 2 * 4 * np.log(2) / sf ** 2)
    Ff = np.fft.fft(F)
    G = np.conj(Ff) / (np.conj(Ff) * Ff + noise)
    U = np.maximum(np.fft.ifft(np.fft.fft(V) * G.real).real, 0)
    centres = lo + (n - off) * slope
    num = np.fft.ifft(np.fft.fft(centres * U) * Ff).real
    den = np.fft.ifft(np.fft.fft(U) * Ff).real
    E = np.where(den != 0, num / np.where(den != 0, den, 1), 0)[off:off + bins]
    out = np.where(b < bins - 1, E[np.minimum(b, bins - 2)] + (E[np.minimum(b + 1, bins - 1)] - E[np.minimum(b, bins - 2)]) * (c - b), E[-1])
    return out


def otsu(v, nb=256):
    lo, hi = float(v.min()), float(v.max())
    if not hi > lo:
        return np.nextafter(np.float32(lo), np.float32(-np.inf))
    b = ((v.astype(np.float64) - lo) / (hi - lo) * nb).astype(int)
    hist = np.bincount(np.minimum(b, nb - 1), minlength=nb).astype(np.float64)
    x = np.arange(nb) + 0.5
    w0 = np.cumsum(hist)[:-1]
    s0 = np.cumsum(hist * x)[:-1]
    w1 = hist.sum() - w0
    ok = (w0 > 0) & (w1 > 0)
    between = np.full(nb - 1, -1.0)
    d = s0[ok] / w0[ok] - ((hist * x).sum() - s0[ok]) / w1[ok]
    between[ok] = w0[ok] * w1[ok] * d * d
    t = int(np.argmax(between))
    return lo + (t + 1) * (hi - lo) / nb


def main():
    d = sys.argv[1]
    with open(os.path.join(d, "bspline.txt")) as fh:
        for line in fh:
            if line.strip():
                bspline_case(d, [int(x) if k < 8 else float(x) for k, x in enumerate(line.split())])
    with open(os.path.join(d, "sharpen.txt")) as fh:
        for line in fh:
            if not line.strip():
                continue
            i, n, bins, fwhm, noise = line.split()
            p = lambda name: os.path.join(d, f"sh_{i}_{name}")
            v = np.fromfile(p("v.f32"), "<f4").astype(np.float64)
            mask = np.fromfile(p("mask.f32"), "<f4") != 0
            out = np.zeros(len(v))
            out[mask] = sharpen(v[mask], int(bins), float(fwhm), float(noise))
            out.astype("<f4").tofile(p("out.f32"))
            np.array([otsu(v.astype(np.float32))], "<f4").tofile(p("otsu.f32"))


if __name__ == "__main__":
    main()
