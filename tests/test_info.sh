#!/bin/bash
# `anoswin info` on good files (dimensions, orientation code and intensity range against
# nibabel) and on hostile ones (exit 1, one line "anoswin: FILE: problem", nothing written).
set -u
bin=${ANOSWIN_BIN:?} py=${ANOSWIN_PYTHON:-/usr/bin/python3} src=${ANOSWIN_SOURCE_DIR:?}
d=scratch_info
rm -rf "$d" && mkdir -p "$d"
tmp=$d
. "$(dirname "$0")/helpers/cli.sh"
"$py" "$src/tools/nifti_fixtures.py" "$d/fx" || { echo "FAIL: fixture script"; exit 1; }
"$py" "$src/tools/nifti_hostile.py" "$d/hx" || { echo "FAIL: hostile script"; exit 1; }

# Expected facts from nibabel: name, dims, axcodes, min, max (formatted like C's %g).
"$py" - "$d/fx" > "$d/expected.txt" <<'PY' || { echo "FAIL: nibabel expectations"; exit 1; }
import sys, os, numpy as np, nibabel as nib
fx = sys.argv[1]
for line in open(os.path.join(fx, 'manifest.txt')):
    name = line.split()[0]
    img = nib.load(os.path.join(fx, name))
    a = np.asarray(img.get_fdata()).astype(np.float32)
    dims = ' x '.join(str(s) for s in a.shape[:3])
    print('\t'.join([name, dims, ''.join(nib.aff2axcodes(img.affine)),
                     'min %g, max %g' % (float(a.min()), float(a.max()))]))
PY
while IFS=$'\t' read -r name dims code range; do
  out=$("$bin" info "$d/fx/$name" 2>"$d/err"); rc=$?
  [ $rc = 0 ] && ok || bad "$name: exit $rc: $(cat "$d/err")"
  grep -q "dimensions:  $dims " <<<"$out" && ok || bad "$name: dimensions, want $dims: $out"
  grep -q "orientation: $code " <<<"$out" && ok || bad "$name: orientation, want $code: $out"
  grep -q "intensity:   $range," <<<"$out" && ok || bad "$name: intensity, want '$range': $out"
done < "$d/expected.txt"

# Several files at once; one bad file makes the status 1 but the others are still described.
"$bin" info "$d/fx/orient_LPS.nii.gz" "$d/hx/voxel_nan.nii.gz" "$d/fx/n2_LPI.nii" >"$d/out" 2>"$d/err"; rc=$?
[ $rc = 1 ] && [ "$(grep -c 'orientation:' "$d/out")" = 2 ] && [ "$(wc -l < "$d/err")" = 1 ] && ok \
  || bad "mixed good/bad files: exit $rc"

# Hostile files.
before=$(ls -a "$d/hx" | sort | md5sum)
while IFS=$'\t' read -r name expect; do
  f="$d/hx/$name"
  "$bin" info "$f" >"$d/out" 2>"$d/err"; rc=$?
  [ $rc = 1 ] && ok || bad "$name: exit $rc, want 1"
  [ "$(wc -l < "$d/err")" = 1 ] && ok || bad "$name: stderr is not one line: $(cat "$d/err")"
  grep -qF "anoswin: $f: " "$d/err" && ok || bad "$name: message does not name the file: $(cat "$d/err")"
  grep -qF "$expect" "$d/err" && ok || bad "$name: message lacks '$expect': $(cat "$d/err")"
  [ ! -s "$d/out" ] && ok || bad "$name: partial output on stdout"
done < "$d/hx/hostile.txt"
after=$(ls -a "$d/hx" | sort | md5sum)
[ "$before" = "$after" ] && ok || bad "info wrote files next to its inputs"

# Usage errors.
"$bin" info >/dev/null 2>&1; [ $? = 2 ] && ok || bad "no file: want exit 2"
"$bin" info --frob x >/dev/null 2>&1; [ $? = 2 ] && ok || bad "unknown option: want exit 2"
finish
