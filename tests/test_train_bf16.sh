#!/usr/bin/env bash
# --precision bf16 end to end on a tiny model (skipped, 77, on a CPU without AVX512-BF16):
#  - usage: an unknown precision is a usage error for train, detect, reconstruct and bench;
#  - train: two bf16 runs with the same seed and threads write byte-identical models and logs;
#    --resume of a bf16 run stopped early takes the precision from the run and ends byte-identical
#    to the uninterrupted one; the fp32 run of the same seed differs (the precision is in effect)
#    while its validation losses stay within 2% of the bf16 run's; the precision is recorded in
#    the checkpoints' metadata, the run's options and the summary line;
#  - detect: one checkpoint's maps in bf16 differ from fp32's by <= 1e-2, and summary.json
#    records the precision.
set -u
BIN=${ANOSWIN_BIN:?}
PY=${ANOSWIN_PYTHON:-/usr/bin/python3}
W=$(pwd)/scratch_train_bf16
rm -rf "$W" && mkdir -p "$W"
tmp=$W
. "$(dirname "$0")/helpers/cli.sh"

expect 2 "fp16" "train --precision fp16: usage error" "$BIN" train --data "$W/none" --out "$W/x" --precision fp16
expect 2 "fp16" "detect --precision fp16: usage error" "$BIN" detect --checkpoint x --out "$W/x" --precision fp16 y
expect 2 "fp16" "reconstruct --precision fp16: usage error" "$BIN" reconstruct --checkpoint x --out "$W/x" \
    --precision fp16 y
expect 2 "fp16" "bench train --precision fp16: usage error" "$BIN" bench train --precision fp16 --no-torch

grep -q avx512_bf16 /proc/cpuinfo || { echo "no AVX512-BF16 on this CPU: skipped"; exit 77; }

CFG='img_size=64,patch_size=4,window=2,embed_dim=32,depths=[1,1,1,1],num_heads=[1,2,2,4],in_chans=1'
COMMON=(--data "$W/data" --config "$CFG" --batch 4 --z-first 70 --z-last 79 --val-fraction 0.34
        --seed 3 --threads 2 --warmup-epochs 1 --save-every 0 --recon 0 --epochs 2 --quiet)
succeeds "synth data" "$BIN" data synth --out "$W/data" --healthy 3 --test 1 --modality t2 --threads 2

succeeds "bf16 run a" "$BIN" train "${COMMON[@]}" --precision bf16 --out "$W/a"
grep -q "precision bf16" "$tmp/ok"
check "summary line names the precision" '[ $? -eq 0 ]'
succeeds "bf16 run b" "$BIN" train "${COMMON[@]}" --precision bf16 --out "$W/b"
succeeds "fp32 run" "$BIN" train "${COMMON[@]}" --out "$W/f"
strip() { cut -d, -f1-5 "$1"; }  # the log without img/s and elapsed
check "bf16: same seed and threads, same model bytes" 'cmp -s "$W/a/last.safetensors" "$W/b/last.safetensors"'
check "bf16: same seed and threads, same log" '[ "$(strip "$W/a/log.csv")" = "$(strip "$W/b/log.csv")" ]'
check "fp32 and bf16 runs differ" '! cmp -s "$W/a/last.safetensors" "$W/f/last.safetensors"'

# Stopped after 3 of 10 steps, resumed without --precision: the run's own precision continues.
succeeds "bf16 run stopped early" "$BIN" train "${COMMON[@]}" --precision bf16 --max-steps 3 --out "$W/r"
succeeds "resume" "$BIN" train --resume --out "$W/r" --threads 2 --quiet
check "resumed bf16 run = uninterrupted (model bytes)" 'cmp -s "$W/a/last.safetensors" "$W/r/last.safetensors"'
check "resumed bf16 run = uninterrupted (log)" '[ "$(strip "$W/a/log.csv")" = "$(strip "$W/r/log.csv")" ]'

succeeds "metadata and losses" "$PY" - "$W" <<'EOF'
import csv, json, struct, sys
w = sys.argv[1]
def meta(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)).get("__metadata__", {})
assert meta(f"{w}/a/last.safetensors")["anoswin.precision"] == "bf16", meta(f"{w}/a/last.safetensors")
assert meta(f"{w}/f/last.safetensors")["anoswin.precision"] == "fp32"
opts = json.loads(meta(f"{w}/a/resume.safetensors")["anoswin.options"])
assert opts["precision"] == "bf16", opts
def val(path):
    return [float(r["val_loss"]) for r in csv.DictReader(open(path))]
a, f = val(f"{w}/a/log.csv"), val(f"{w}/f/log.csv")
assert len(a) == len(f) == 2, (a, f)
rel = [abs(x - y) / y for x, y in zip(a, f)]
print("validation loss bf16", a, "fp32", f, "relative difference", rel)
assert max(rel) <= 0.02, rel
EOF
cat "$tmp/ok"

# ---- detect: one checkpoint, both precisions ---------------------------------------------------
scan=$(ls "$W"/data/test/*/*_t2.nii.gz | head -1)
det=("$BIN" detect --checkpoint "$W/a/last.safetensors" --preset brats --threads 2 --mask-size 32 --z-first 80
     --z-last 81 --save-model-grid --no-overlays --quiet)
succeeds "detect fp32" "${det[@]}" --out "$W/d32" "$scan"
succeeds "detect bf16" "${det[@]}" --precision bf16 --out "$W/d16" "$scan"
succeeds "maps within 1e-2, precision in summary.json" "$PY" - "$W" <<'EOF'
import glob, json, sys
import numpy as np
w = sys.argv[1]
a = np.fromfile(glob.glob(f"{w}/d32/**/model_grid_map.f32", recursive=True)[0], "<f4")
b = np.fromfile(glob.glob(f"{w}/d16/**/model_grid_map.f32", recursive=True)[0], "<f4")
d = float(np.abs(a - b).max())
print("max |map difference| bf16 - fp32:", d, "map range", float(a.min()), float(a.max()))
# The issue's 1e-2, in the release and the sanitizer build alike: with the decoder's tail in fp32
# at inference (swin_mae.c) this tiny model's maps differ by 0.0066 (release) and 0.0070 (the
# sanitizer build, whose instrumented float code trains another model); all bf16 they differed by
# 0.0083 and 1.01-1.04e-2, which needed a looser bound there.
bound = 1e-2
assert a.shape == b.shape and d <= bound and d > 0, d
s16 = json.load(open(glob.glob(f"{w}/d16/**/summary.json", recursive=True)[0]))
s32 = json.load(open(glob.glob(f"{w}/d32/**/summary.json", recursive=True)[0]))
assert s16["precision"] == "bf16" and s32["precision"] == "fp32"
EOF
cat "$tmp/ok"
finish
