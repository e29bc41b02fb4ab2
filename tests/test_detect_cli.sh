#!/bin/bash
# anoswin detect end to end on a tiny random checkpoint and two synthetic subjects: outputs on the
# input's grid (shape, affine, dtype, summary; checked with nibabel), the map taken back to the
# model grid matches, a bad subject is reported and skipped (others written, exit 1), a checkpoint
# that does not fit is refused naming the file, usage errors exit 2. The calibrated detection:
# anoswin calibrate writes a calibration that detect --calibration uses and records; the default
# preset without one is a usage error; a calibration of other map settings is refused naming the
# file; detect --healthy calibrates first; --maps-from reproduces a run's mask; and the native
# mask never marks a voxel where the scan is 0, even when every model-grid pixel is marked. The
# normative calibration (the default): its mean and sd maps written beside the JSON, thresholds
# equal to the quantiles of the leave-one-out z-scores recomputed from the raw maps of the
# healthy scans (tools/detect_check.py normative), --normative 0 the plain quantiles, one healthy
# scan refused, and detect refusing slices outside the calibrated range naming the file.
set -u
bin=${ANOSWIN_BIN:?}
src=${ANOSWIN_SOURCE_DIR:?}
py=${ANOSWIN_PYTHON:-/usr/bin/python3}
tmp=scratch_detect_cli
rm -rf "$tmp" && mkdir -p "$tmp"
. "$(dirname "$0")/helpers/cli.sh"

TINY="img_size=64,patch_size=4,in_chans=3,embed_dim=16,depths=1/1/1/1,num_heads=1/1/2/2,window=2,mlp_ratio=2"
succeeds "random checkpoint" "$py" "$src/tools/detect_check.py" ckpt "$tmp/tiny.safetensors" --config "$TINY" --seed 1
succeeds "another random checkpoint" "$py" "$src/tools/detect_check.py" ckpt "$tmp/tiny2.safetensors" --config "$TINY" --seed 2
succeeds "2-channel checkpoint" "$py" "$src/tools/detect_check.py" ckpt "$tmp/two.safetensors" --config "$TINY,in_chans=2"
succeeds "synth data" "$bin" data synth --out "$tmp/syn" --healthy 0 --test 2 --modality t2 --threads 1
# a third subject whose scan is not NIfTI
mkdir -p "$tmp/syn/test/test_009"
echo "not a nifti" | gzip >"$tmp/syn/test/test_009/test_009_t2.nii.gz"
cp "$tmp/syn/test/test_000/test_000_seg.nii.gz" "$tmp/syn/test/test_009/test_009_seg.nii.gz"

run=("$bin" detect --checkpoint "$tmp/tiny.safetensors" --preset brats --threads 1 --mask-size 32 --z-first 80 --z-last 82)
expect 1 "test_009_t2.nii.gz" "bad subject reported by file, exit 1" "${run[@]}" --out "$tmp/det" --save-model-grid \
  --attention-maps "$tmp/syn"
grep -q "subject test_009 skipped" "$tmp/err" && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL: skip line"; }
for s in test_000 test_001; do
  for f in anomaly_map.nii.gz reconstruction.nii.gz mask.nii.gz summary.json attention/z080_stage0.png \
           attention/z082_stage3.png; do
    [ -f "$tmp/det/$s/$f" ] && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL: $s/$f missing"; }
  done
  succeeds "$s native grid, back to the model grid" "$py" "$src/tools/detect_check.py" native \
    "$tmp/syn/test/$s/${s}_t2.nii.gz" "$tmp/det/$s" 64
done
[ ! -e "$tmp/det/test_009/summary.json" ] && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL: bad subject wrote a summary"; }
ls "$tmp"/det/*/.*tmp* >/dev/null 2>&1 && { fail=$((fail+1)); echo "FAIL: temp files left"; } || pass=$((pass+1))
grep -q '"slice_range": \[80, 82\]' "$tmp/det/test_000/summary.json" && pass=$((pass+1)) \
  || { fail=$((fail+1)); echo "FAIL: slice_range"; }

# single file input, fixed origin, wmh preset, one override; deterministic maps
expect 0 "" "single file" "${run[@]}" --out "$tmp/one" --preset wmh --set keep_top=3 --set grow=2 --origin 5,9 --save-model-grid \
  --no-overlays --quiet "$tmp/syn/test/test_001/test_001_t2.nii.gz"
cmp -s "$tmp/one/test_001_t2/model_grid_map.f32" "$tmp/det/test_001/model_grid_map.f32" \
  && { fail=$((fail+1)); echo "FAIL: origin 5,9 gave the same map as the brain grid"; } || pass=$((pass+1))
grep -q '"grid": \[5, 9\]' "$tmp/one/test_001_t2/summary.json" && grep -q '"keep_top": 3' "$tmp/one/test_001_t2/summary.json" \
  && grep -q '"grow": 2' "$tmp/one/test_001_t2/summary.json" \
  && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL: summary lacks the grid/preset overrides"; }
expect 0 "" "again" "${run[@]}" --out "$tmp/again" --save-model-grid --quiet --no-overlays "$tmp/syn/test/test_001/test_001_t2.nii.gz"
cmp -s "$tmp/again/test_001_t2/model_grid_map.f32" "$tmp/det/test_001/model_grid_map.f32" && pass=$((pass+1)) \
  || { fail=$((fail+1)); echo "FAIL: maps differ between runs"; }
# positive residual and brain-only scoring: recorded in the summary, and a different map
expect 0 "" "positive residual" "${run[@]}" --out "$tmp/pos" --residual positive --brain-only --stride 16 --window-norm none --save-model-grid \
  --quiet --no-overlays "$tmp/syn/test/test_001/test_001_t2.nii.gz"
grep -q '"residual": "positive"' "$tmp/pos/test_001_t2/summary.json" && grep -q '"brain_only": true' \
  "$tmp/pos/test_001_t2/summary.json" && grep -q '"stride": 16' \
  "$tmp/pos/test_001_t2/summary.json" && grep -q '"residual": "abs"' "$tmp/det/test_001/summary.json" \
  && grep -q '"window_norm": "none"' "$tmp/pos/test_001_t2/summary.json" \
  && grep -q '"window_norm": "minmax"' "$tmp/det/test_001/summary.json" \
  && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL: summary lacks residual/brain_only/window_norm"; }
cmp -s "$tmp/pos/test_001_t2/model_grid_map.f32" "$tmp/det/test_001/model_grid_map.f32" \
  && { fail=$((fail+1)); echo "FAIL: positive residual gave the same map"; } || pass=$((pass+1))

# 3-D post-processing (ndim=3: k^3 erosion, 26-connected objects, top N per volume) end to end
expect 0 "" "ndim=3" "${run[@]}" --out "$tmp/nd3" --set ndim=3 --set threshold=0.2 --quiet --no-overlays \
  "$tmp/syn/test/test_001/test_001_t2.nii.gz"
grep -q '"ndim": 3' "$tmp/nd3/test_001_t2/summary.json" && [ -f "$tmp/nd3/test_001_t2/mask.nii.gz" ] \
  && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL: ndim=3 run lacks its summary or mask"; }

# ---- calibrated detection ---------------------------------------------------------------------
succeeds "healthy synth data" "$bin" data synth --out "$tmp/hsyn" --healthy 2 --test 0 --modality t2 --seed 5 --threads 1
one="$tmp/syn/test/test_001/test_001_t2.nii.gz"
crun=("$bin" detect --checkpoint "$tmp/tiny.safetensors" --threads 1 --mask-size 32 --z-first 80 --z-last 82 --quiet
      --no-overlays)
cal=("$bin" calibrate --checkpoint "$tmp/tiny.safetensors" --threads 1 --mask-size 32 --z-first 80 --z-last 82)
expect 0 "" "anoswin calibrate" "${cal[@]}" --out "$tmp/cal.json" "$tmp/hsyn/healthy"
succeeds "calibration file" "$py" "$src/tools/detect_check.py" calib "$tmp/cal.json" --scans 2 --stride 32
expect 0 "" "detect --calibration" "${crun[@]}" --calibration "$tmp/cal.json" --fpr 1e-3 --fpr-low 1e-2 --save-model-grid \
  --out "$tmp/cdet" "$one"
succeeds "summary: mode calibrated, the calibration's thresholds at the given rates" "$py" \
  "$src/tools/detect_check.py" calib "$tmp/cal.json" --summary "$tmp/cdet/test_001_t2" 1e-3 1e-2
expect 0 "" "detect --calibration --fpr 0.05 --fpr-low 0.2" "${crun[@]}" --calibration "$tmp/cal.json" --fpr 0.05 \
  --fpr-low 0.2 --out "$tmp/cdet5" "$one"
succeeds "summary: thresholds at --fpr 0.05 / --fpr-low 0.2" "$py" "$src/tools/detect_check.py" calib "$tmp/cal.json" \
  --summary "$tmp/cdet5/test_001_t2" 0.05 0.2
expect 2 "healthy.*calibration" "default preset without a calibration: usage error naming --healthy/--calibration" \
  "${crun[@]}" --out "$tmp/x" "$one"
[ ! -e "$tmp/x" ] && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL: usage error wrote output"; }
expect 1 "cal.json.*stride" "calibration of another stride refused naming the file" "${crun[@]}" --stride 16 \
  --calibration "$tmp/cal.json" --out "$tmp/x" "$one"
expect 1 "cal.json.*weights" "calibration of other weights refused naming the file" "$bin" detect --checkpoint \
  "$tmp/tiny2.safetensors" --threads 1 --mask-size 32 --z-first 80 --z-last 82 --quiet --calibration "$tmp/cal.json" \
  --out "$tmp/x" "$one"
expect 0 "" "detect --healthy" "${crun[@]}" --healthy "$tmp/hsyn/healthy" --fpr 1e-3 --fpr-low 1e-2 --out "$tmp/hdet" "$one"
succeeds "detect --healthy writes DIR/calibration.json, used in the summary" "$py" "$src/tools/detect_check.py" \
  calib "$tmp/hdet/calibration.json" --scans 2 --summary "$tmp/hdet/test_001_t2" 1e-3 1e-2
grep '"threshold"' "$tmp/cal.json" >"$tmp/t1" && grep '"threshold"' "$tmp/hdet/calibration.json" >"$tmp/t2" \
  && cmp -s "$tmp/t1" "$tmp/t2" && pass=$((pass+1)) \
  || { fail=$((fail+1)); echo "FAIL: detect --healthy and anoswin calibrate disagree on the same scans"; }
# --maps-from: the saved model-grid maps give the same masks, for the calibrated and the paper's presets
expect 0 "" "--maps-from (calibrated)" "${crun[@]}" --calibration "$tmp/cal.json" --fpr 1e-3 --fpr-low 1e-2 --maps-from "$tmp/cdet" \
  --out "$tmp/mf" "$one"
succeeds "--maps-from: identical mask (calibrated)" "$py" "$src/tools/detect_check.py" same "$tmp/cdet/test_001_t2" \
  "$tmp/mf/test_001_t2"
expect 0 "" "--maps-from (brats)" "${run[@]}" --maps-from "$tmp/again" --quiet --no-overlays --out "$tmp/mf2" "$one"
succeeds "--maps-from: identical mask (brats)" "$py" "$src/tools/detect_check.py" same "$tmp/again/test_001_t2" \
  "$tmp/mf2/test_001_t2"
# the native-brain guarantee: every model-grid pixel of the evaluated slices marked (threshold -1,
# no segmentation, all objects), yet no native voxel where the scan is 0
expect 0 "" "whole-slice masks" "${run[@]}" --set threshold=-1 --set seg_classes=0 --set keep_top=0 --quiet \
  --no-overlays --out "$tmp/whole" "$one"
succeeds "native mask inside the native brain (image > 0)" "$py" "$src/tools/detect_check.py" inside "$one" \
  "$tmp/whole/test_001_t2" --whole

# ---- normative calibration ---------------------------------------------------------------------
# (cal.json above is normative: the default) its maps beside it, named in it
check "cal.normative.f32 beside cal.json, 2 scales x 2 x 3 slices x 64 x 64 float32" \
  '[ "$(stat -c %s "$tmp/cal.normative.f32" 2>/dev/null)" = $((2 * 2 * 3 * 64 * 64 * 4)) ]'
check "cal.json names cal.normative.f32" "grep -q '\"normative_file\": \"cal.normative.f32\"' '$tmp/cal.json'"
# three healthy scans (leave-one-out keeps two: a variance that is not 0); their raw maps from
# detect with the calibration's map settings (residual units: no window or slice norm)
succeeds "3 healthy synth scans" "$bin" data synth --out "$tmp/hsyn3" --healthy 3 --test 0 --modality t2 --seed 7 --threads 1
expect 0 "" "anoswin calibrate (normative, 3 scans)" "${cal[@]}" --out "$tmp/ncal.json" "$tmp/hsyn3/healthy"
expect 0 "" "raw model-grid maps of the healthy scans" "${run[@]}" --window-norm none --slice-norm none --save-model-grid \
  --quiet --no-overlays --out "$tmp/hraw" "$tmp/hsyn3/healthy"
hdirs=("$tmp"/hraw/*/)
check "3 healthy map folders" '[ ${#hdirs[@]} = 3 ]'
succeeds "normative thresholds = quantiles of the leave-one-out z-scores (scipy), maps = the model of all 3" "$py" \
  "$src/tools/detect_check.py" normative "$tmp/ncal.json" 2 0.02 0,3 "${hdirs[@]}"
expect 0 "" "anoswin calibrate --normative 1.5" "${cal[@]}" --normative 1.5 --out "$tmp/ncal15.json" "$tmp/hsyn3/healthy"
succeeds "--normative 1.5: thresholds and maps at sigma 1.5" "$py" "$src/tools/detect_check.py" normative \
  "$tmp/ncal15.json" 1.5 0.02 0,3 "${hdirs[@]}"
expect 0 "" "anoswin calibrate --scales 0 (one scale: plain z-scores)" "${cal[@]}" --scales 0 --out "$tmp/ncal0.json" \
  "$tmp/hsyn3/healthy"
succeeds "--scales 0: unit 1, the z-score thresholds (scipy)" "$py" "$src/tools/detect_check.py" normative \
  "$tmp/ncal0.json" 2 0.02 0 "${hdirs[@]}"
expect 0 "" "anoswin calibrate --scales 0,1,3" "${cal[@]}" --scales 0,1,3 --out "$tmp/ncal3.json" "$tmp/hsyn3/healthy"
succeeds "--scales 0,1,3: three models, units and max-score thresholds (scipy)" "$py" "$src/tools/detect_check.py" \
  normative "$tmp/ncal3.json" 2 0.02 0,1,3 "${hdirs[@]}"
for bad in "" "0,2,2" "0,-1" "0,1,2,3,4" "0;2" "x"; do
  expect 2 "scales" "--scales '$bad' refused" "${cal[@]}" --scales "$bad" --out "$tmp/bad.json" "$tmp/hsyn3/healthy"
done
expect 0 "" "anoswin calibrate --normative 0" "${cal[@]}" --normative 0 --out "$tmp/pcal.json" "$tmp/hsyn3/healthy"
succeeds "--normative 0: plain quantiles of the raw brain values, no .normative.f32" "$py" \
  "$src/tools/detect_check.py" normative "$tmp/pcal.json" 0 0 - "${hdirs[@]}"
h1=$(ls "$tmp"/hsyn3/healthy/*/*_t2.nii.gz | head -1)
expect 1 "normative 0" "normative calibration on 1 healthy scan refused naming --normative 0" "${cal[@]}" \
  --out "$tmp/one.json" "$h1"
check "the refused calibration wrote nothing" '[ ! -e "$tmp/one.json" ] && [ ! -e "$tmp/one.normative.f32" ]'
expect 0 "" "--normative 0 on 1 healthy scan" "${cal[@]}" --normative 0 --out "$tmp/one0.json" "$h1"
# detect on a normative calibration: slices inside the calibrated 80..82 are fine, others refused
expect 0 "" "detect --calibration (normative) on slices 81..82" "$bin" detect --checkpoint "$tmp/tiny.safetensors" \
  --threads 1 --mask-size 32 --z-first 81 --z-last 82 --quiet --no-overlays --calibration "$tmp/ncal.json" \
  --out "$tmp/nin" "$one"
expect 1 "ncal.json.*80..82" "detect --calibration (normative) on slices 79..82 refused naming the file" \
  "$bin" detect --checkpoint "$tmp/tiny.safetensors" --threads 1 --mask-size 32 --z-first 79 --z-last 82 --quiet \
  --no-overlays --calibration "$tmp/ncal.json" --out "$tmp/nout" "$one"
check "no mask for the refused subject" '[ ! -e "$tmp/nout/test_001_t2/mask.nii.gz" ]'
expect 1 "ncal.json.*80..82" "detect --calibration (normative) on slices 81..83 refused naming the file" \
  "$bin" detect --checkpoint "$tmp/tiny.safetensors" --threads 1 --mask-size 32 --z-first 81 --z-last 83 --quiet \
  --no-overlays --calibration "$tmp/ncal.json" --out "$tmp/nout2" "$one"
expect 0 "" "a plain calibration (--normative 0) on slices 79..83" "$bin" detect --checkpoint "$tmp/tiny.safetensors" \
  --threads 1 --mask-size 32 --z-first 79 --z-last 83 --quiet --no-overlays --calibration "$tmp/pcal.json" \
  --out "$tmp/pout" "$one"
# summary.json's "map": what the anomaly map's values (and the threshold) are in. map_of FILE KEY...
# prints the keys' values joined by " ; " (the residual's text holds "|").
map_of() { "$py" -c 'import json, sys; m = json.load(open(sys.argv[1]))["map"]; print(" ; ".join(m[k] for k in sys.argv[2:]))' "$@"; }
check "map: default detection in normalised residual units, |input - reconstruction|, window minmax + slice max" \
  '[ "$(map_of "$tmp/det/test_001/summary.json" units threshold_units residual normalisation)" = "normalised residual units ; normalised residual units ; '\
'|input - reconstruction| (mean over channels), intensities scaled minmax ; window minmax, slice max" ]'
check "map: positive residual, no window norm" \
  '[ "$(map_of "$tmp/pos/test_001_t2/summary.json" residual normalisation)" = "max(input - reconstruction, 0) (mean over channels), intensities scaled minmax ; slice max" ]'
check "map: a plain calibration leaves residual units, the threshold in them" \
  '[ "$(map_of "$tmp/pout/test_001_t2/summary.json" units threshold_units normalisation)" = "residual units ; residual units ; none" ]'
check "map: a normative calibration gives z-scores (sigma 2, 2 scales), the threshold in them" \
  '[ "$(map_of "$tmp/nin/test_001_t2/summary.json" units threshold_units normalisation)" = "normative z-score units ; normative z-score units ; normative z-score (sigma 2 px, 2 scales, max of z / unit)" ]'
mv "$tmp/ncal.normative.f32" "$tmp/ncal.normative.f32.away"
expect 1 "ncal.normative.f32" "detect --calibration without its .normative.f32 refused naming it" "${crun[@]}" \
  --calibration "$tmp/ncal.json" --out "$tmp/x" "$one"
mv "$tmp/ncal.normative.f32.away" "$tmp/ncal.normative.f32"

# refusals
expect 1 "two.safetensors.*channels" "2-channel checkpoint refused" \
  "$bin" detect --checkpoint "$tmp/two.safetensors" --preset brats --out "$tmp/x" "$tmp/syn"
[ ! -e "$tmp/x" ] && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL: refused run wrote output"; }
expect 1 "tiny.safetensors.*128 px" "mask larger than the model's image" \
  "$bin" detect --checkpoint "$tmp/tiny.safetensors" --preset brats --mask-size 128 --out "$tmp/x" "$tmp/syn"
expect 1 "nothing.safetensors" "missing checkpoint named" "$bin" detect --checkpoint "$tmp/nothing.safetensors" --preset brats --out "$tmp/x" "$tmp/syn"
expect 1 "z" "slice range outside the volume" "${run[@]}" --z-first 150 --z-last 170 --out "$tmp/x2" \
  "$tmp/syn/test/test_001/test_001_t2.nii.gz"
expect 2 "--checkpoint" "no checkpoint" "$bin" detect --out "$tmp/x" "$tmp/syn"
expect 2 "INPUT" "no input" "$bin" detect --checkpoint "$tmp/tiny.safetensors" --out "$tmp/x"
expect 2 "preset" "bad preset" "${run[@]}" --preset foo --out "$tmp/x" "$tmp/syn"
expect 2 "frob" "bad --set key" "${run[@]}" --set frob=1 --out "$tmp/x" "$tmp/syn"
expect 2 "minmax or none" "bad --window-norm" "${run[@]}" --window-norm foo --out "$tmp/x" "$tmp/syn"
expect 2 "stride" "stride not a multiple of the patch" "${run[@]}" --stride 6 --out "$tmp/x" "$tmp/syn"
expect 2 "stride" "stride larger than the mask" "${run[@]}" --stride 36 --out "$tmp/x" "$tmp/syn"
expect 2 "residual" "bad residual" "${run[@]}" --residual signed --out "$tmp/x" "$tmp/syn"
expect 2 "origin" "bad origin" "${run[@]}" --origin 3 --out "$tmp/x" "$tmp/syn"
expect 0 "" "help" "$bin" detect --help

finish
