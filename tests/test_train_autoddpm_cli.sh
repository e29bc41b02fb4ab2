#!/usr/bin/env bash
# anoswin train --method autoddpm end to end on a small synthetic data set and a tiny U-Net (32 px,
# channels 8-16-16, attention at the two lower levels): the run trains through the shared trainer
# and its AdamW, the checkpoint is tagged autoddpm and loads strictly into tools/autoddpm_ref.py,
# detect takes it through the method interface (one autoDDPM inference per slice, short noise
# levels; the same maps whatever the number of slices per forward; DDIM through --model-set), `experiment table1 --methods
# autoddpm` reports an anoswin row, and bad configs fail with one line naming the problem.
set -u
BIN=${ANOSWIN_BIN:?}
PY=${ANOSWIN_PYTHON:-/usr/bin/python3}
SRC=${ANOSWIN_SOURCE_DIR:?}
W=$(pwd)/scratch_train_autoddpm_cli
rm -rf "$W" && mkdir -p "$W"
tmp=$W
. "$(dirname "$0")/helpers/cli.sh"

CFG='img_size=32,channels=8-16-16,attention=0-1-1,head_ch=8,groups=4,patch_size=8,t_recon=2,t_inpaint=1,resample=2'
COMMON=(--method autoddpm --data "$W/data" --batch 4 --z-first 74 --z-last 77 --val-fraction 0.34 --seed 5
        --threads 1 --recon 2)

"$BIN" data synth --out "$W/data" --healthy 3 --test 1 --modality t2 --threads 1 2>"$W/synth.err" ||
    { cat "$W/synth.err"; bad "data synth"; finish; exit 1; }

expect 1 "be a multiple of groups 8" "channels off the groups are refused" "$BIN" train "${COMMON[@]}" \
    --config "img_size=32,channels=8-12-16,groups=8" --epochs 1 --out "$W/bad1"
check "the refusal is one line" '[ $(wc -l < "$W/err") -eq 1 ]'
expect 1 "2 attention flags for 3 levels" "attention flags must match the levels" "$BIN" train "${COMMON[@]}" \
    --config "img_size=32,channels=8-16-16,groups=4,attention=0-1" --epochs 1 --out "$W/bad2"
expect 1 "unknown config key 'depth'" "an unknown key is named" "$BIN" train "${COMMON[@]}" --config "depth=3" \
    --epochs 1 --out "$W/bad3"

succeeds "train --method autoddpm" "$BIN" train "${COMMON[@]}" --config "$CFG" --epochs 2 --out "$W/run"
check "log: header + 2 epoch rows" '[ $(wc -l < "$W/run/log.csv") -eq 3 ]'
check "the checkpoint is tagged autoddpm" 'grep -aq "\"anoswin.method\":\"autoddpm\"" "$W/run/last.safetensors"'
succeeds "last.safetensors loads strictly in PyTorch" "$PY" "$SRC/tools/autoddpm_ref.py" load "$W/run/last.safetensors"
succeeds "train twice with one seed" "$BIN" train "${COMMON[@]}" --config "$CFG" --epochs 2 --out "$W/run2"
check "the same seed gives the same model" 'cmp -s "$W/run/last.safetensors" "$W/run2/last.safetensors"'

succeeds "detect takes the autoDDPM checkpoint" "$BIN" detect --checkpoint "$W/run/last.safetensors" \
    --out "$W/det" --threads 1 --quiet --no-overlays --set threshold=0.2 --mask-size 32 \
    "$W/data/test/test_000/test_000_t2.nii.gz"
for f in anomaly_map.nii.gz mask.nii.gz summary.json; do
    check "detect wrote $f" '[ -s "$W/det/test_000_t2/$f" ]'
done
check "one window per slice (whole-image method)" \
    '[ "$(grep -o "\"windows\": [0-9]*" "$W/det/test_000_t2/summary.json" | grep -o "[0-9]*$")" = "$(grep -o "\"slices\": [0-9]*" "$W/det/test_000_t2/summary.json" | grep -o "[0-9]*$")" ]'

# Slices go through the U-Net max_batch (--batch) at a time; each slice's noise stream is its own
# and inference multiplies one image at a time, so the maps and reconstructions do not depend on
# the batch. They may depend on the thread count (sgemm's per-thread tiles), as every result does.
succeeds "detect one slice per forward" "$BIN" detect --checkpoint "$W/run/last.safetensors" \
    --out "$W/det1" --threads 1 --quiet --no-overlays --set threshold=0.2 --mask-size 32 --batch 1 \
    "$W/data/test/test_000/test_000_t2.nii.gz"
succeeds "detect three slices per forward" "$BIN" detect --checkpoint "$W/run/last.safetensors" \
    --out "$W/det3" --threads 1 --quiet --no-overlays --set threshold=0.2 --mask-size 32 --batch 3 \
    "$W/data/test/test_000/test_000_t2.nii.gz"
for f in anomaly_map.nii.gz reconstruction.nii.gz mask.nii.gz; do
    check "$f: batch 8 (default), 1 and 3 give the same file" \
        'cmp -s "$W/det/test_000_t2/$f" "$W/det1/test_000_t2/$f" && cmp -s "$W/det/test_000_t2/$f" "$W/det3/test_000_t2/$f"'
done

# Inference settings over the checkpoint's config: DDIM (two training steps a step) gives another map
# and says so in the summary; a setting that changes a weight's shape, or a bad value, is refused.
succeeds "detect --model-set sampler=ddim" "$BIN" detect --checkpoint "$W/run/last.safetensors" \
    --out "$W/ddim" --threads 1 --quiet --no-overlays --set threshold=0.2 --mask-size 32 \
    --model-set sampler=ddim --model-set inference_steps=500 "$W/data/test/test_000/test_000_t2.nii.gz"
check "the summary records the DDIM sampler" 'grep -q "\"sampler\":\"ddim\",\"inference_steps\":500" "$W/ddim/test_000_t2/summary.json"'
check "and its map differs from DDPM's" '! cmp -s "$W/det/test_000_t2/anomaly_map.nii.gz" "$W/ddim/test_000_t2/anomaly_map.nii.gz"'
expect 1 "the model needs" "a setting that changes a weight's shape is refused" "$BIN" detect \
    --checkpoint "$W/run/last.safetensors" --out "$W/bad4" --quiet --set threshold=0.2 --model-set channels=8-16-32 \
    "$W/data/test/test_000/test_000_t2.nii.gz"
expect 1 "inference_steps 0 must lie in 1..timesteps" "a bad inference setting is named" "$BIN" detect \
    --checkpoint "$W/run/last.safetensors" --out "$W/bad5" --quiet --set threshold=0.2 --model-set inference_steps=0 \
    "$W/data/test/test_000/test_000_t2.nii.gz"
check "the refusal is one line" '[ $(wc -l < "$W/err") -eq 1 ]'

# ---- the experiment's method-agnostic path ----------------------------------------------------------
mkdir -p "$W/ixi"
ln -s "$W/data/healthy/healthy_000/healthy_000_t2.nii.gz" "$W/ixi/IXI100-Guys-1000-T2.nii.gz"
ln -s "$W/data/healthy/healthy_001/healthy_001_t2.nii.gz" "$W/ixi/IXI101-Guys-1001-T2.nii.gz"
succeeds "experiment table1 --methods autoddpm" "$BIN" experiment table1 --ixi "$W/ixi" --brats "$W/data/test" \
    --out "$W/exp" --methods autoddpm --config "autoddpm:$CFG" --epochs 1 --batch 4 --max-steps 2 \
    --train-slices 80:84 --test-slices 82:84 --mask-sizes 32 --val-share 0 --bootstrap 20 --threads 1
check "the authors' recipe in the commands (batch from --batch, constant lr 1e-4)" \
    'grep -q "^anoswin train --method autoddpm .* --lr 0.0001 --warmup-epochs 0 --min-lr 0.0001 " "$W/exp/commands.txt"'
check "the report has an anoswin autoDDPM row" 'grep -q "^| autoDDPM (Bercea et al. 2023) | IXI T2 | BraTS21 T2 | anoswin | paper | per-volume" "$W/exp/report.md"'
finish
