"""Reference for the healthy-scan calibration (src/detect/calibrate.c) and the normative model
(src/detect/normative.c), for tests.

    calibrate_ref.py quantiles VALUES.f32 OUT.txt
        VALUES.f32: raw little-endian float32 map values. OUT.txt: one line per rate f of the
        calibration table (1, 2, 5 x 10^k from 1e-5 to 0.5): "f threshold", threshold being
        numpy.quantile(values, 1 - f) with numpy's default (linear) interpolation, in float64.
    calibrate_ref.py gauss IN.f32 NZ NY NX SIGMA OUT.f32 [MODE TRUNCATE]
        scipy.ndimage.gaussian_filter(x, SIGMA, mode=MODE, truncate=TRUNCATE) (default 'reflect',
        4.0) of the (NZ, NY, NX) float32 volume IN, computed in float64, written as float32; SIGMA
        is one number or "SZ,SY,SX" (src/util/gaussian.c)
    calibrate_ref.py normative MAPS.f32 N NZ NY NX SKIP SIGMA FLOOR MAP.f32 OUT.f32
        the normative model of the N maps (N, NZ, NY, NX) in MAPS, map SKIP left out (-1: none):
        mean and the predictive variance of a new map, numpy.var(ddof=1) * (1 + 1/k) over the k
        maps used (0 when k = 1), each smoothed with the Gaussian above, sd = sqrt(var) + FLOOR; OUT = mean, sd and the z-score (MAP - mean) / sd
        of the (NZ, NY, NX) map MAP, one after the other, float32
"""
import sys

import numpy as np

LEVELS = [m * 10.0 ** k for k in range(-5, 0) for m in (1, 2, 5)]


def gauss(x, sigma, mode='reflect', truncate=4.0):
    from scipy.ndimage import gaussian_filter
    x = np.asarray(x, np.float64)
    return gaussian_filter(x, sigma, mode=mode, truncate=truncate) if np.any(np.asarray(sigma) > 0) else x


def normative(maps, skip, sigma, floor):
    """mean and sd (float64) of maps (N, ...) without map skip (-1: all)."""
    use = np.asarray(maps, np.float64)
    if skip >= 0:
        use = np.delete(use, skip, axis=0)
    mean = gauss(use.mean(axis=0), sigma)
    k = use.shape[0]
    var = gauss(use.var(axis=0, ddof=1) * (1.0 + 1.0 / k) if k >= 2 else np.zeros(use.shape[1:]), sigma)
    return mean, np.sqrt(np.maximum(var, 0)) + floor


def main():
    a = sys.argv[1:]
    if len(a) == 3 and a[0] == 'quantiles':
        v = np.fromfile(a[1], dtype='<f4').astype(np.float64)
        if v.size == 0:
            sys.exit('no values in ' + a[1])
        with open(a[2], 'w') as f:
            for lv in LEVELS:
                f.write('%.17g %.17g\n' % (lv, np.quantile(v, 1.0 - lv)))
    elif len(a) in (7, 9) and a[0] == 'gauss':
        shape = tuple(int(s) for s in a[2:5])
        x = np.fromfile(a[1], dtype='<f4').reshape(shape)
        sigma = [float(s) for s in a[5].split(',')]
        extra = {'mode': a[7], 'truncate': float(a[8])} if len(a) == 9 else {}
        gauss(x, sigma[0] if len(sigma) == 1 else sigma, **extra).astype('<f4').tofile(a[6])
    elif len(a) == 11 and a[0] == 'normative':
        n, shape = int(a[2]), tuple(int(s) for s in a[3:6])
        maps = np.fromfile(a[1], dtype='<f4').reshape((n,) + shape)
        mean, sd = normative(maps, int(a[6]), float(a[7]), float(a[8]))
        m = np.fromfile(a[9], dtype='<f4').reshape(shape).astype(np.float64)
        np.concatenate([mean.ravel(), sd.ravel(), ((m - mean) / sd).ravel()]).astype('<f4').tofile(a[10])
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    main()
