"""Reference for the healthy-scan calibration (src/detect/calibrate.c), for tests.

    calibrate_ref.py quantiles VALUES.f32 OUT.txt
        VALUES.f32: raw little-endian float32 map values. OUT.txt: one line per rate f of the
        calibration table (1, 2, 5 x 10^k from 1e-5 to 0.5): "f threshold", threshold being
        numpy.quantile(values, 1 - f) with numpy's default (linear) interpolation, in float64.
"""
import sys

import numpy as np

LEVELS = [m * 10.0 ** k for k in range(-5, 0) for m in (1, 2, 5)]


def main():
    if len(sys.argv) != 4 or sys.argv[1] != 'quantiles':
        sys.exit(__doc__)
    v = np.fromfile(sys.argv[2], dtype='<f4').astype(np.float64)
    if v.size == 0:
        sys.exit('no values in ' + sys.argv[2])
    with open(sys.argv[3], 'w') as f:
        for lv in LEVELS:
            f.write('%.17g %.17g\n' % (lv, np.quantile(v, 1.0 - lv)))


if __name__ == '__main__':
    main()
