"""Independent checks of `anoswin detect` / `reconstruct` outputs (nibabel + torch), for tests.

    detect_check.py ckpt OUT.safetensors --config S [--seed N]
        a random Swin MAE (tools/swin_mae_ref.py) saved as an anoswin checkpoint
    detect_check.py native IMAGE SUBJECT_DIR SIZE
        the outputs have IMAGE's shape and affine; map finite in [0,1], zero outside the evaluated
        slices; mask uint8 0/1; summary.json consistent (slice_range, lesion volume = mask voxels *
        voxel volume). Then the round trip against model_grid_map.f32 (the maps detect computed,
        SIZE x SIZE): (a) anomaly_map.nii.gz equals that map taken to the native grid here
        (torch bilinear align_corners=True per RAS slice, then RAS -> native axes with nibabel);
        (b) anomaly_map.nii.gz taken to the model grid again like the slice pipeline
        (as_closest_canonical, trilinear align_corners=True) matches it up to interpolation
        smoothing (linear up then down is not the identity at the knots).
    detect_check.py recon_inputs DIR SIZE
        writes DIR/slice.png (16-bit grey pattern) and DIR/mask.png (a rectangle whose edges cut
        through patches) for `anoswin reconstruct`
    detect_check.py recon CKPT DIR OUT.png [--paste]
        OUT.png (what anoswin reconstruct wrote for DIR/slice.png under DIR/mask.png) equals the
        PyTorch reference model's reconstruction (eval mode; a token is masked when its whole
        patch is covered) within the 8-bit quantisation
    detect_check.py inside IMAGE SUBJECT_DIR [--whole]
        mask.nii.gz has no voxel where IMAGE is 0 (the native brain when no brain mask is given);
        prints the count. --whole: the mask must also cover >= 90% of the brain voxels of the
        evaluated slices (the premise of a run that marks whole model-grid slices)
    detect_check.py same DIR_A DIR_B
        mask.nii.gz (and anomaly_map.nii.gz) hold the same voxels in both subject folders
    detect_check.py calib CALIBRATION [--scans N] [--stride S] [--summary SUBJECT_DIR FPR FPR_LOW]
        the calibration file: format, 15 rates 1, 2, 5 x 10^k (1e-5 .. 0.5), thresholds finite and
        non-increasing, scans/stride as given; with --summary: SUBJECT_DIR/summary.json has "mode":
        "calibrated" and records the file and the thresholds at FPR and FPR_LOW, interpolated
        here linearly in log(rate) from the file's table
    detect_check.py normative CALIBRATION SIGMA FLOOR SCALES SUBJECT_DIR...
        the calibration's thresholds recomputed from the raw model-grid maps of its healthy scans
        (each SUBJECT_DIR holds model_grid_map.f32 and model_grid_brain.u8, written by detect
        --save-model-grid with the calibration's map settings): SIGMA > 0, normative: each scan's
        map scored as z-scores against the other scans (tools/calibrate_ref.py: mean and numpy.var
        over them, scipy's gaussian_filter with SIGMA, sqrt + FLOOR), the file records SIGMA and
        FLOOR and its .normative.f32 holds the model of all scans (mean then sd, float32); with
        SCALES (comma-separated px, e.g. 0,2; src/detect/normative.h) each scale's maps are first
        smoothed slice by slice (scipy gaussian_filter, sigma (0, s, s)), its model and leave-one-out
        z-scores computed as above, its unit = numpy.quantile of its brain z-scores at 1 - 1e-3 (1
        with one scale), the score = the maximum over scales of z / unit, and the .normative.f32
        holds each scale's mean then sd; SIGMA 0 (SCALES ignored):
        the raw map values, no normative keys and no .normative.f32. Either way the thresholds
        equal numpy.quantile(brain values, 1 - fpr) (relative 1e-4, of at least 1e-2) and
        "voxels" is the number of brain voxels
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def fail(msg):
    print('FAIL: ' + msg)
    sys.exit(1)


def cmd_ckpt(out, config, seed):
    import torch
    import safetensors_io
    import swin_mae_ref as R
    torch.manual_seed(seed)
    cfg = R.parse_config(config)
    model = R.SwinMAE(cfg)
    safetensors_io.save_file(model.state_dict(), out, metadata={'format': 'pt', 'anoswin.config': R.config_json(cfg)})
    print('wrote', out)


def cmd_native(image, d, size):
    import nibabel as nib
    img = nib.load(image)
    summ = json.load(open(os.path.join(d, 'summary.json')))
    for name in ('anomaly_map', 'reconstruction', 'mask'):
        v = nib.load(os.path.join(d, name + '.nii.gz'))
        if v.shape != img.shape:
            fail('%s shape %s != input %s' % (name, v.shape, img.shape))
        if not np.allclose(v.affine, img.affine, atol=1e-4):
            fail('%s affine differs:\n%s\n%s' % (name, v.affine, img.affine))
        a = np.asanyarray(v.dataobj)
        if not np.all(np.isfinite(a)):
            fail('%s has non-finite voxels' % name)
        if name == 'anomaly_map' and (a.min() < 0 or a.max() > 1 + 1e-6):
            fail('map outside [0,1]: %g..%g' % (a.min(), a.max()))
        if name == 'mask':
            if a.dtype != np.uint8 or not set(np.unique(a)) <= {0, 1}:
                fail('mask is %s with values %s' % (a.dtype, np.unique(a)[:5]))
            ml = a.sum() * np.prod(img.header.get_zooms()[:3]) / 1000.0
            if abs(ml - summ['lesion_volume_ml']) > 1e-4 * max(1, ml):
                fail('lesion volume %g ml, summary says %g' % (ml, summ['lesion_volume_ml']))
            if int(a.sum()) != summ['lesion_voxels']:
                fail('lesion voxels %d, summary says %d' % (a.sum(), summ['lesion_voxels']))
        if name == 'anomaly_map':
            # zero outside the evaluated RAS slices
            can = nib.as_closest_canonical(nib.Nifti1Image(a.astype(np.float32), v.affine))
            c = np.asarray(can.dataobj)
            lo, hi = summ['slice_range']
            outside = np.concatenate([c[:, :, :lo].ravel(), c[:, :, hi + 1:].ravel()])
            if outside.size and np.abs(outside).max() > 0:
                fail('map non-zero outside RAS slices %d..%d' % (lo, hi))
            if c[:, :, lo:hi + 1].max() <= 0:
                fail('map empty inside the evaluated slices')
    for k in ('slice_range', 'seconds_per_slice', 'parameters', 'mask_size', 'components', 'checkpoint'):
        if k not in summ:
            fail('summary.json lacks %s' % k)
    print('native outputs OK:', d)
    roundtrip(image, d, size)


def roundtrip(image, d, size):
    import nibabel as nib
    import torch
    summ = json.load(open(os.path.join(d, 'summary.json')))
    lo, hi = summ['slice_range']
    v = nib.load(os.path.join(d, 'anomaly_map.nii.gz'))
    native = np.asarray(v.dataobj, dtype=np.float32)
    can = nib.as_closest_canonical(v)
    n = hi - lo + 1
    ref = np.fromfile(os.path.join(d, 'model_grid_map.f32'), dtype='<f4').reshape(n, size, size)
    # (a) model grid -> native, independently
    rs = can.shape
    up = torch.nn.functional.interpolate(torch.from_numpy(ref)[None], size=(rs[0], rs[1]), mode='bilinear',
                                         align_corners=True)[0].numpy()          # (n, rx, ry)
    exp_can = np.zeros(rs, np.float32)
    for z in range(n):
        exp_can[:, :, lo + z] = up[z]
    ornt = nib.orientations.ornt_transform(nib.orientations.axcodes2ornt('RAS'), nib.orientations.io_orientation(v.affine))
    exp = nib.orientations.apply_orientation(exp_can, ornt)
    diff = np.abs(exp - native).max()
    print('model grid -> native: max |diff| %.3g' % diff)
    if diff > 1e-4:
        fail('anomaly_map.nii.gz differs from the model-grid map taken to the native grid (max %g)' % diff)
    a = torch.from_numpy(np.asarray(can.dataobj, dtype=np.float32))
    r = torch.nn.functional.interpolate(a[None, None], size=(size, size, a.shape[2]), mode='trilinear',
                                        align_corners=True)[0, 0].numpy()
    got = np.stack([r[:, :, k] for k in range(lo, hi + 1)])   # [h][w] = RAS (i, j)
    err = np.abs(got - ref)
    # linear up then down again is exact on linear pieces; the coarse map jumps at window borders
    frac = float((err > 0.05).mean())
    print('roundtrip: mean |diff| %.4g, max %.4g, %.3f%% of pixels off by > 0.05' % (err.mean(), err.max(), 100 * frac))
    corr = np.corrcoef(got.ravel(), ref.ravel())[0, 1]
    if err.mean() > 0.03 or corr < 0.95:
        fail('correlation %g' % corr)
    print('roundtrip OK (corr %.5f)' % corr)


def cmd_recon_inputs(d, S):
    import png_decode
    y, x = np.mgrid[0:S, 0:S].astype(np.float64)
    img = 0.5 + 0.3 * np.sin(x / 5.0) * np.cos(y / 7.0) + 0.15 * ((x + y) / (2 * S))
    img[(x - S / 2) ** 2 + (y - S / 2) ** 2 > (0.45 * S) ** 2] = 0
    (np.clip(img, 0, 1) * 65535).astype('<f4').tofile(os.path.join(d, 'slice.f32'))
    png_decode.encode(os.path.join(d, 'slice.f32'), S, S, 1, 16, os.path.join(d, 'slice.png'))
    m = np.zeros((S, S), np.float32)
    m[7:31, 10:38] = 255          # rows 7..30, cols 10..37: partly covered patches at every edge
    m.tofile(os.path.join(d, 'mask.f32'))
    png_decode.encode(os.path.join(d, 'mask.f32'), S, S, 1, 8, os.path.join(d, 'mask.png'))


def cmd_recon(ckpt, d, out, paste):
    import torch
    import png_decode
    import safetensors_io
    import swin_mae_ref as R
    sd, meta = safetensors_io.load_file(ckpt)
    cfg = R.parse_config(meta['anoswin.config'])
    model = R.SwinMAE(cfg)
    model.load_state_dict(sd, strict=True)
    model.eval()
    R.set_drop_path(model, False)
    img = png_decode.decode(os.path.join(d, 'slice.png'))[0][..., 0] / 65535.0
    pix = png_decode.decode(os.path.join(d, 'mask.png'))[0][..., 0] / 255.0 > 0.5
    S, P, C = cfg['img_size'], cfg['patch_size'], cfg['in_chans']
    G = S // P
    tok = pix.reshape(G, P, G, P).all(axis=(1, 3)).reshape(1, -1)
    x = torch.from_numpy(np.repeat(img[None, None], C, axis=1).astype(np.float32))
    with torch.no_grad():
        _, pred = model(x, torch.from_numpy(tok.astype(np.float32)))
        rec = model.unpatchify(pred)[0].mean(0).numpy()
    if paste:
        full = np.repeat(np.repeat(tok.reshape(G, G), P, 0), P, 1)
        rec = np.where(full, rec, img)
    got = png_decode.decode(out)[0][..., 0] / 255.0
    ref = np.clip(rec, 0, 1)
    err = np.abs(got - ref).max()
    print('reconstruct vs PyTorch: max |diff| %.4g (8-bit output), %d tokens masked' % (err, tok.sum()))
    if err > 1.0 / 255 + 1e-6:
        fail('reconstruction differs from the PyTorch reference')
    # rows 7..30 fully cover token rows 2..6 (pixels 8..27), cols 10..37 token cols 3..8 (12..35)
    if P == 4 and tok.sum() != 5 * 6:
        fail('unexpected masked token count %d' % tok.sum())


def cmd_inside(image, d, whole):
    import nibabel as nib
    img = np.asanyarray(nib.load(image).dataobj)
    mask = np.asanyarray(nib.load(os.path.join(d, 'mask.nii.gz')).dataobj)
    if mask.shape != img.shape:
        fail('mask shape %s != image %s' % (mask.shape, img.shape))
    outside = int(((mask != 0) & (img == 0)).sum())
    print('mask %d voxels, %d where the image is 0' % (int((mask != 0).sum()), outside))
    if whole:
        summ = json.load(open(os.path.join(d, 'summary.json')))
        lo, hi = summ['slice_range']
        v = nib.load(image)
        can = np.asarray(nib.as_closest_canonical(nib.Nifti1Image((img > 0).astype(np.uint8), v.affine)).dataobj)
        cm = np.asarray(nib.as_closest_canonical(nib.Nifti1Image((mask != 0).astype(np.uint8), v.affine)).dataobj)
        brain = int(can[:, :, lo:hi + 1].sum())
        covered = int((can[:, :, lo:hi + 1] & cm[:, :, lo:hi + 1]).sum())
        print('brain voxels in slices %d..%d: %d, %d of them in the mask' % (lo, hi, brain, covered))
        if covered < 0.9 * brain:
            fail('the mask covers %d of %d brain voxels: not a whole-slice run' % (covered, brain))
    if outside:
        fail('%d mask voxels where the image is 0 (outside the native brain)' % outside)


def cmd_same(a, b):
    import nibabel as nib
    for name in ('mask', 'anomaly_map'):
        x = np.asanyarray(nib.load(os.path.join(a, name + '.nii.gz')).dataobj)
        y = np.asanyarray(nib.load(os.path.join(b, name + '.nii.gz')).dataobj)
        if x.shape != y.shape or x.dtype != y.dtype or not np.array_equal(x, y):
            fail('%s differs: %d voxels' % (name, int((x != y).sum()) if x.shape == y.shape else -1))
        print('%s identical (%d non-zero voxels)' % (name, int((x != 0).sum())))


def interp(fpr, table, f):
    lf = np.log(fpr)
    return float(np.interp(np.log(f), lf, table))


def cmd_calib(path, d, f, flow, scans, stride):
    c = json.load(open(path))
    if c.get('format') != 'anoswin-calibration-1':
        fail('%s: format %r' % (path, c.get('format')))
    want = [m * 10.0 ** k for k in range(-5, 0) for m in (1, 2, 5)]
    fpr, thr = np.array(c['fpr'], float), np.array(c['threshold'], float)
    if fpr.shape != (15,) or not np.allclose(fpr, want, rtol=1e-12):
        fail('%s: rates %s' % (path, c['fpr']))
    if thr.shape != (15,) or not np.all(np.isfinite(thr)) or np.any(np.diff(thr) > 0):
        fail('%s: thresholds not finite and non-increasing: %s' % (path, c['threshold']))
    if scans is not None and c['scans'] != scans:
        fail('%s: scans %s, want %d' % (path, c['scans'], scans))
    if stride is not None and c['stride'] != stride:
        fail('%s: stride %s, want %d' % (path, c['stride'], stride))
    if not c['voxels'] > 0:
        fail('%s: no voxels' % path)
    print('calibration OK: %d scans, %d voxels, threshold %.4g at 1e-3' % (c['scans'], c['voxels'],
                                                                        interp(fpr, thr, 1e-3)))
    if d is None:
        return
    summ = json.load(open(os.path.join(d, 'summary.json')))
    post = summ['postproc']
    if post['mode'] != 'calibrated':
        fail('summary mode %r, want calibrated' % post['mode'])
    cal = summ.get('calibration')
    if not isinstance(cal, dict):
        fail('summary has no calibration object')
    t, lo = interp(fpr, thr, f), interp(fpr, thr, flow)
    for k, v in (('threshold', t), ('low', lo), ('fpr', f), ('fpr_low', flow)):
        if abs(cal[k] - v) > 1e-6 * max(1e-6, abs(v)):
            fail('summary calibration %s %r, want %r' % (k, cal[k], v))
    # "postproc" is written with %g (6 digits)
    if abs(post['threshold'] - t) > 1e-5 * abs(t) or abs(post['low'] - lo) > 1e-5 * abs(lo):
        fail('summary postproc threshold/low %r/%r, want %r/%r' % (post['threshold'], post['low'], t, lo))
    if os.path.basename(cal['file']) != os.path.basename(path):
        fail('summary calibration file %r, want %s' % (cal['file'], path))
    if cal['scans'] != c['scans'] or cal['voxels'] != c['voxels']:
        fail('summary calibration scans/voxels differ from the file')
    print('summary OK: mode calibrated, threshold %.6g (fpr %g), low %.6g (fpr %g)' % (t, f, lo, flow))


def cmd_normative(path, sigma, floor, scales, dirs):
    import calibrate_ref
    c = json.load(open(path))
    lo, hi = c['slice_range']
    nz = hi - lo + 1
    if c['scans'] != len(dirs):
        fail('%s: %d scans, %d folders given' % (path, c['scans'], len(dirs)))
    side = os.path.splitext(path)[0] + '.normative.f32'
    maps, brains = [], []
    for d in dirs:
        m = np.fromfile(os.path.join(d, 'model_grid_map.f32'), dtype='<f4')
        b = np.fromfile(os.path.join(d, 'model_grid_brain.u8'), dtype=np.uint8)
        S = int(round((m.size / nz) ** 0.5))
        if m.size != nz * S * S or b.size != m.size:
            fail('%s: %d map values, %d brain voxels: not %d slices of S x S' % (d, m.size, b.size, nz))
        maps.append(m.reshape(nz, S, S))
        brains.append(b.reshape(nz, S, S) != 0)
    maps = np.stack(maps).astype(np.float64)
    if sigma > 0:
        if c.get('normative_file') != os.path.basename(side) or c.get('normative_size') != S or \
                abs(c.get('normative_sigma', -1) - sigma) > 1e-6 * sigma or \
                abs(c.get('normative_sd_floor', -1) - floor) > 1e-6 * floor:
            fail('%s: normative keys %s, want file %s, size %d, sigma %g, floor %g' % (
                path, {k: c.get(k) for k in c if k.startswith('normative')}, os.path.basename(side), S, sigma, floor))
        from scipy.ndimage import gaussian_filter
        if c.get('normative_scales') != scales:
            fail('%s: normative_scales %r, want %r' % (path, c.get('normative_scales'), scales))
        got = np.fromfile(side, dtype='<f4').astype(np.float64)
        nv = nz * S * S
        if got.size != 2 * nv * len(scales):
            fail('%s: %d floats, want %d (mean and sd of %d x %d x %d at %d scales)' % (
                side, got.size, 2 * nv * len(scales), nz, S, S, len(scales)))
        score = None
        for k, sc in enumerate(scales):
            sm = np.stack([gaussian_filter(m, (0, sc, sc), mode='reflect', truncate=4.0) if sc > 0 else m
                           for m in maps])
            loo = []
            for i in range(len(dirs)):   # leave-one-out: scan i against the others
                mean, sd = calibrate_ref.normative(sm, i, sigma, floor)
                loo.append((sm[i] - mean) / sd)
            unit = np.quantile(np.concatenate([z[b] for z, b in zip(loo, brains)]), 1 - 1e-3) \
                if len(scales) > 1 else 1.0
            if abs(c['normative_units'][k] - unit) > 1e-4 * abs(unit):
                fail('%s: unit of scale %g is %r, numpy %r' % (path, sc, c['normative_units'][k], unit))
            print('scale %g: unit %.6g OK' % (sc, unit))
            loo = np.stack(loo) / unit
            score = loo if score is None else np.maximum(score, loo)
            mean, sd = calibrate_ref.normative(sm, -1, sigma, floor)
            for name, g, want in (('mean', got[2 * nv * k:2 * nv * k + nv], mean.ravel()),
                                  ('sd', got[2 * nv * k + nv:2 * nv * (k + 1)], sd.ravel())):
                err = np.abs(g - want).max()
                if not np.allclose(g, want, rtol=1e-4, atol=1e-6):
                    fail('%s: normative %s of scale %g differs from the reference by up to %g' % (side, name, sc, err))
                print('normative %s (scale %g) OK: max |diff| %.3g' % (name, sc, err))
        vals = np.concatenate([score[i][brains[i]] for i in range(len(dirs))])
    else:
        if any(k.startswith('normative') for k in c) or os.path.exists(side):
            fail('%s: a plain calibration with normative keys or a %s' % (path, side))
        vals = np.concatenate([maps[i][brains[i]] for i in range(len(dirs))])
    if c['voxels'] != vals.size:
        fail('%s: %d voxels, the brains hold %d' % (path, c['voxels'], vals.size))
    want = np.array([np.quantile(vals, 1.0 - f) for f in c['fpr']])
    thr = np.array(c['threshold'], float)
    rel = np.abs(thr - want) / np.maximum(np.abs(want), 1e-2)
    print('thresholds (%s): file %s' % ('z-scores' if sigma > 0 else 'raw', np.array2string(thr, precision=5)))
    print('               numpy %s; worst relative difference %.3g' % (np.array2string(want, precision=5), rel.max()))
    if rel.max() > 1e-4:
        fail('%s: thresholds differ from numpy.quantile of the %s brain values (worst at fpr %g: %r vs %r)' % (
            path, 'leave-one-out z-score' if sigma > 0 else 'raw', c['fpr'][rel.argmax()], thr[rel.argmax()],
            want[rel.argmax()]))


def main():
    a = sys.argv[1:]
    if a[0] == 'ckpt':
        config = a[a.index('--config') + 1]
        seed = int(a[a.index('--seed') + 1]) if '--seed' in a else 0
        cmd_ckpt(a[1], config, seed)
    elif a[0] == 'native':
        cmd_native(a[1], a[2], int(a[3]))
    elif a[0] == 'recon_inputs':
        cmd_recon_inputs(a[1], int(a[2]))
    elif a[0] == 'inside':
        cmd_inside(a[1], a[2], '--whole' in a)
    elif a[0] == 'same':
        cmd_same(a[1], a[2])
    elif a[0] == 'calib':
        opt = lambda k: int(a[a.index(k) + 1]) if k in a else None
        sm = a[a.index('--summary') + 1:a.index('--summary') + 4] if '--summary' in a else [None, None, None]
        cmd_calib(a[1], sm[0], float(sm[1]) if sm[0] else None, float(sm[2]) if sm[0] else None, opt('--scans'),
                  opt('--stride'))
    elif a[0] == 'normative':
        cmd_normative(a[1], float(a[2]), float(a[3]), [float(v) for v in a[4].split(',')] if a[4] != '-' else [],
                      a[5:])
    elif a[0] == 'recon':
        cmd_recon(a[1], a[2], a[3], '--paste' in a)
    else:
        fail('unknown command ' + a[0])


if __name__ == '__main__':
    main()
