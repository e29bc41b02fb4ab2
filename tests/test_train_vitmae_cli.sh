#!/usr/bin/env bash
# anoswin train --method vitmae end to end on a small synthetic data set and a tiny model (32 px,
# patch 4, dim 16): bad configs fail with one line naming the problem, a run trains and its
# checkpoint is tagged vitmae and loads strictly into tools/vitmae_ref.py, a resumed run ends
# byte-identical to a straight one, info --model --method vitmae lists its tensors, detect scores
# it with the same sliding windows as a Swin MAE of the same geometry (not once per slice), and
# eval reads detect's output.
set -u
BIN=${ANOSWIN_BIN:?}
PY=${ANOSWIN_PYTHON:-/usr/bin/python3}
SRC=${ANOSWIN_SOURCE_DIR:?}
W=$(pwd)/scratch_train_vitmae_cli
rm -rf "$W" && mkdir -p "$W"
tmp=$W
. "$(dirname "$0")/helpers/cli.sh"

CFG='img_size=32,patch_size=4,embed_dim=16,depth=2,num_heads=2,decoder_embed_dim=8,decoder_depth=1,decoder_num_heads=1'
COMMON=(--method vitmae --data "$W/data" --batch 4 --z-first 70 --z-last 79 --val-fraction 0.34 --seed 5
        --threads 1 --mask-size 8)

"$BIN" data synth --out "$W/data" --healthy 3 --test 1 --modality t2 --threads 1 2>"$W/synth.err" ||
    { cat "$W/synth.err"; bad "data synth"; finish; exit 1; }

# ---- bad configs: one line naming the problem, non-zero exit, nothing trained --------------------
expect 1 "embed_dim 30 must be a multiple of 4" "embed_dim=30 is refused" "$BIN" train "${COMMON[@]}" \
    --config "$CFG,embed_dim=30" --epochs 1 --out "$W/bad1"
check "the refusal is one line" '[ $(wc -l < "$W/err") -eq 1 ]'
expect 1 "unknown config key 'window'" "an unknown key is named" "$BIN" train "${COMMON[@]}" --config "window=3" \
    --epochs 1 --out "$W/bad2"
expect 1 "unknown preset 'vit-h14'" "an unknown preset is named" "$BIN" train "${COMMON[@]}" \
    --config "preset=vit-h14" --epochs 1 --out "$W/bad3"
check "no run folder for a refused config" '[ ! -e "$W/bad1/resume.safetensors" ]'

# ---- a run: 20 training slices, batch 4, 5 steps per epoch, 3 epochs -----------------------------
succeeds "train --method vitmae" "$BIN" train "${COMMON[@]}" --config "$CFG" --epochs 3 --out "$W/run"
check "log: header + 3 epoch rows" '[ $(wc -l < "$W/run/log.csv") -eq 4 ]'
check "a validation loss every epoch" '! sed -n 2,4p "$W/run/log.csv" | cut -d, -f5 | grep -q nan'
succeeds "last.safetensors loads strictly in PyTorch" "$PY" "$SRC/tools/vitmae_ref.py" load "$W/run/last.safetensors"
check "the checkpoint is tagged vitmae" 'grep -aq "\"anoswin.method\":\"vitmae\"" "$W/run/last.safetensors"'

# ---- an interrupted run resumed ends exactly like the straight one ---------------------------------
succeeds "train --max-steps 7" "$BIN" train "${COMMON[@]}" --config "$CFG" --epochs 3 --max-steps 7 --out "$W/part"
succeeds "train --resume" "$BIN" train --resume --out "$W/part" --threads 1
check "the resumed run's model is byte-identical" 'cmp -s "$W/run/last.safetensors" "$W/part/last.safetensors"'

# ---- info --model --method vitmae -----------------------------------------------------------------
succeeds "info --model --method vitmae" "$BIN" info --model --method vitmae --config "$CFG"
cp "$W/ok" "$W/info.txt"
check "info names the ViT MAE and its tensors" \
    'grep -q "^model: ViT MAE" "$W/info.txt" && grep -q "decoder_blocks.0.attn.qkv.weight" "$W/info.txt" &&
     grep -q "frozen" "$W/info.txt"'
succeeds "info --model --method vitmae --config vit-l16 (a preset by name)" "$BIN" info --model --method vitmae \
    --config vit-l16
check "vit-l16 is Table 1's 329M" 'grep -q "^parameters: 328,754,944 in all" "$W/ok"'

# ---- detection: the Swin MAE's sliding windows, then eval ------------------------------------------
succeeds "a Swin MAE of the same geometry (one step)" "$BIN" train --data "$W/data" --batch 4 --z-first 70 \
    --z-last 79 --val-fraction 0.34 --seed 5 --threads 1 --mask-size 8 --epochs 1 --max-steps 1 \
    --config "img_size=32,patch_size=4,embed_dim=8,num_heads=1/1/1/1,window=1" --out "$W/swin"
expect 1 "not vitmae" "info --method vitmae refuses a Swin MAE checkpoint" "$BIN" info --model --method vitmae \
    --checkpoint "$W/swin/last.safetensors"
for m in run swin; do
    succeeds "detect takes the $m checkpoint" "$BIN" detect --checkpoint "$W/$m/last.safetensors" \
        --out "$W/det_$m" --threads 1 --quiet --no-overlays --set threshold=0.2 --mask-size 16 "$W/data/test"
done
for f in anomaly_map.nii.gz reconstruction.nii.gz mask.nii.gz summary.json; do
    check "detect wrote $f" '[ -s "$W/det_run/test_000/$f" ]'
done
windows() { grep -o "\"windows\": [0-9]*" "$1" | grep -o "[0-9]*$"; }
slices() { grep -o "\"slices\": [0-9]*" "$1" | grep -o "[0-9]*$"; }
check "sliding windows: more windows than slices" \
    '[ "$(windows "$W/det_run/test_000/summary.json")" -gt "$(slices "$W/det_run/test_000/summary.json")" ]'
check "the same windows as the Swin MAE" \
    '[ "$(windows "$W/det_run/test_000/summary.json")" = "$(windows "$W/det_swin/test_000/summary.json")" ]'
succeeds "eval reads the ViT MAE's detections" "$BIN" eval --pred "$W/det_run" --data "$W/data/test" \
    --method "ViT MAE"
check "eval's table has the ViT MAE row" 'grep -q "| ViT MAE |" "$W/ok"'
finish
