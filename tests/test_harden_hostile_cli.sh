#!/usr/bin/env bash
# Hostile inputs through the CLI that the readers' own tests do not cover (issue 8): each gives
# exit 1, exactly one line "anoswin: FILE: problem" naming the bad file, and nothing partial
# (no stdout table, no report files).
#  - safetensors headers claiming huge sizes, overlapping offsets, a size past 2^64 that used to
#    wrap around (`anoswin info FILE` and `anoswin info --checkpoint FILE`);
#  - a label whose grid differs from its image (one slice fewer; same size but shifted 3 mm)
#    through `anoswin eval` with dataset discovery (fixture: tools/eval_fixture.py, nibabel).
# (Hostile NIfTI headers through `anoswin info`: tests/test_info.sh.)
set -u
BIN=${ANOSWIN_BIN:?}
PY=${ANOSWIN_PYTHON:-/usr/bin/python3}
SRC=${ANOSWIN_SOURCE_DIR:?}
W=scratch_harden_hostile_cli
rm -rf "$W" && mkdir -p "$W"
tmp=$W
. "$(dirname "$0")/helpers/cli.sh"

# expect_bad FILE_NAMED DESCRIPTION CMD...: exit 1, one stderr line naming FILE_NAMED, no stdout.
expect_bad() {
    local file=$1 what=$2
    shift 2
    "$@" >"$W/out" 2>"$W/err"
    local rc=$?
    [ $rc -eq 1 ] && ok || bad "$what: exit $rc, want 1 ($(head -c 300 "$W/err"))"
    [ "$(wc -l <"$W/err")" -eq 1 ] && ok || bad "$what: stderr is not one line: $(head -c 500 "$W/err")"
    grep -qF "anoswin: $file: " "$W/err" && ok || bad "$what: message does not name $file: $(cat "$W/err")"
    [ ! -s "$W/out" ] && ok || bad "$what: partial output on stdout: $(head -c 200 "$W/out")"
}

# ---- safetensors ---------------------------------------------------------------------------------
# raw_st FILE JSON DATA_BYTES: u64 header length + JSON + zero bytes, as a hostile writer would.
raw_st() {
    "$PY" - "$1" "$2" "$3" <<'PY'
import struct, sys
path, header, n = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
with open(path, 'wb') as f:
    f.write(struct.pack('<Q', len(header)) + header + b'\0' * n)
PY
}
T='"dtype":"F32","shape"'
raw_st "$W/huge_tensor.safetensors" "{\"w\":{$T:[1099511627776],\"data_offsets\":[0,4398046511104]}}" 16
raw_st "$W/huge_header.safetensors" "{}" 0
"$PY" -c "import struct,sys; open(sys.argv[1],'r+b').write(struct.pack('<Q', 1 << 40))" "$W/huge_header.safetensors"
raw_st "$W/overlap.safetensors" "{\"a\":{$T:[4],\"data_offsets\":[0,16]},\"b\":{$T:[4],\"data_offsets\":[8,24]}}" 24
raw_st "$W/wrap.safetensors" "{\"a\":{\"dtype\":\"U8\",\"shape\":[18446744073709551620],\"data_offsets\":[0,4]}}" 4
raw_st "$W/same_span.safetensors" "{\"a\":{$T:[2],\"data_offsets\":[0,8]},\"b\":{$T:[2],\"data_offsets\":[0,8]}}" 8
for name in huge_tensor huge_header overlap wrap same_span; do
    f=$W/$name.safetensors
    expect_bad "$f" "info $name" "$BIN" info "$f"
    expect_bad "$f" "info --checkpoint $name" "$BIN" info --checkpoint "$f"
done

# ---- a label on another grid, through eval ---------------------------------------------------------
E=$W/eval
"$PY" "$SRC/tools/eval_fixture.py" "$E" >/dev/null || { echo "FAIL: eval fixture"; exit 1; }
"$BIN" eval --pred "$E/pred" --data "$E/test.csv" --split test --bootstrap 0 -q >/dev/null 2>"$W/err" &&
    ok || bad "the untouched fixture evaluates: $(cat "$W/err")"
label=$(awk -F, '$1 == "t1" { print $3 }' "$E/test.csv")
case $label in /*) ;; *) label=$E/$label ;; esac
[ -f "$label" ] && ok || bad "fixture label of t1 at $label"
cp "$label" "$W/label_orig.nii.gz"
for how in fewer_slices shifted; do
    "$PY" - "$W/label_orig.nii.gz" "$label" "$how" <<'PY'
import sys, numpy as np, nibabel as nib
src, dst, how = sys.argv[1:]
img = nib.load(src)
data, aff = np.asarray(img.dataobj), img.affine.copy()
if how == 'fewer_slices':
    data = data[:, :, :-1]
else:
    aff[:3, 3] += [3.0, 0, 0]
nib.Nifti1Image(data, aff, img.header).to_filename(dst)
PY
    rm -rf "$W/run_$how"
    expect_bad "$label" "eval with a label on another grid ($how)" \
        "$BIN" eval --pred "$E/pred" --data "$E/test.csv" --split test --bootstrap 0 -q --out "$W/run_$how"
    [ -z "$(find "$W/run_$how" -type f 2>/dev/null)" ] && ok || bad "$how: partial report written: $(find "$W/run_$how" -type f)"
done
cp "$W/label_orig.nii.gz" "$label"

finish
