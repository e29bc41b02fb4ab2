#!/usr/bin/env bash
# anoswin train --method fanogan end to end on a small synthetic data set and a tiny model (32 px,
# dim 8): the two stages show in the log (no validation loss while the GAN trains, the izi_f loss
# after), a resumed run ends byte-identical to a straight one, the checkpoint is tagged fanogan and loads strictly into tools/fanogan_ref.py, detect
# takes it through the method interface, and bad configs fail with one line naming the problem.
set -u
BIN=${ANOSWIN_BIN:?}
PY=${ANOSWIN_PYTHON:-/usr/bin/python3}
SRC=${ANOSWIN_SOURCE_DIR:?}
W=$(pwd)/scratch_train_fanogan_cli
rm -rf "$W" && mkdir -p "$W"
tmp=$W
. "$(dirname "$0")/helpers/cli.sh"

CFG='img_size=32,dim=8,z_dim=16,patch_size=8,n_critic=2,gan_frac=0.5'
COMMON=(--method fanogan --data "$W/data" --batch 4 --z-first 70 --z-last 79 --val-fraction 0.34 --seed 5
        --threads 1 --recon 2)

"$BIN" data synth --out "$W/data" --healthy 3 --test 1 --modality t2 --threads 1 2>"$W/synth.err" ||
    { cat "$W/synth.err"; bad "data synth"; finish; exit 1; }

# ---- bad configs: one line naming the problem, non-zero exit, nothing trained --------------------
expect 1 "dim 0 must lie" "dim=0 is refused" "$BIN" train "${COMMON[@]}" --config "img_size=32,dim=0" --epochs 1 \
    --out "$W/bad1"
check "the refusal is one line" '[ $(wc -l < "$W/err") -eq 1 ]'
expect 1 "unknown config key 'depth'" "an unknown key is named" "$BIN" train "${COMMON[@]}" --config "depth=3" \
    --epochs 1 --out "$W/bad2"
expect 1 "img_size 48 must be 4 times a power of two" "an image size off the ResNet's grid" \
    "$BIN" train "${COMMON[@]}" --config "img_size=48" --epochs 1 --out "$W/bad3"
check "no run folder for a refused config" '[ ! -e "$W/bad1/resume.safetensors" ]'
# A whole-image method ignores token masks: the mask unit (4 patches = 64 px at patch 16)
# exceeding a 32 px image must not refuse it (it did before).
succeeds "a 32 px model with 16 px patches trains" "$BIN" train "${COMMON[@]}" \
    --config "img_size=32,dim=8,z_dim=16,patch_size=16,n_critic=2,gan_frac=0.5" --epochs 1 --max-steps 1 --out "$W/unit"
# nor a unit that is not a multiple of the patch (the demo's 8 px units under 16 px patches)
succeeds "a mask unit of half a patch is ignored" "$BIN" train "${COMMON[@]}" \
    --config "img_size=32,dim=8,z_dim=16,patch_size=16,n_critic=2,gan_frac=0.5" --mask-size 8 --epochs 1 --max-steps 1 --out "$W/unit8"

# ---- a run: 20 training slices, batch 4, 5 steps per epoch, 4 epochs: epochs 1-2 GAN, 3-4 izi_f ---
succeeds "train --method fanogan" "$BIN" train "${COMMON[@]}" --config "$CFG" --epochs 4 --out "$W/run"
check "log: header + 4 epoch rows" '[ $(wc -l < "$W/run/log.csv") -eq 5 ]'
check "no validation loss during the GAN stage (epochs 1-2)" \
    '[ "$(sed -n 2,3p "$W/run/log.csv" | cut -d, -f5 | sort -u)" = "nan" ]'
check "an izi_f validation loss after it (epochs 3-4)" \
    'sed -n 4,5p "$W/run/log.csv" | cut -d, -f5 | grep -qv nan'
check "best.safetensors comes from the encoder stage" '[ -s "$W/run/best.safetensors" ]'
succeeds "last.safetensors loads strictly in PyTorch" "$PY" "$SRC/tools/fanogan_ref.py" load "$W/run/last.safetensors"
check "the checkpoint is tagged fanogan" 'grep -aq "\"anoswin.method\":\"fanogan\"" "$W/run/last.safetensors"'

# ---- an interrupted run resumed in the encoder stage ends exactly like the straight one ---------
# (the networks' Adam moments are saved with the run; their step counts follow from the step)
succeeds "train --max-steps 12 (stops in the encoder stage)" "$BIN" train "${COMMON[@]}" --config "$CFG" --epochs 4 \
    --max-steps 12 --out "$W/part"
succeeds "train --resume" "$BIN" train --resume --out "$W/part" --threads 1
check "the resumed run's model is byte-identical" 'cmp -s "$W/run/last.safetensors" "$W/part/last.safetensors"'
check "and its log rows the same" '[ "$(cut -d, -f1-5 "$W/run/log.csv")" = "$(cut -d, -f1-5 "$W/part/log.csv")" ]'

# ---- detection through the method interface -------------------------------------------------------
succeeds "detect takes the f-AnoGAN checkpoint" "$BIN" detect --checkpoint "$W/run/last.safetensors" \
    --out "$W/det" --threads 1 --quiet --no-overlays --set threshold=0.2 --mask-size 32 \
    "$W/data/test/test_000/test_000_t2.nii.gz"
for f in anomaly_map.nii.gz reconstruction.nii.gz mask.nii.gz summary.json; do
    check "detect wrote $f" '[ -s "$W/det/test_000_t2/$f" ]'
done
check "the summary names the f-AnoGAN config" 'grep -q "\"gp_lambda\"" "$W/det/test_000_t2/summary.json"'
check "the summary carries the izi_f anomaly score of every scored slice" \
    '/usr/bin/python3 -c "import json,sys,math; s=json.load(open(sys.argv[1])); a=s[\"image_score\"]; v=[x for x in a[\"score\"] if x is not None]; sys.exit(not (a[\"name\"].startswith(\"izi_f\") and len(a[\"z\"]) == len(a[\"score\"]) == s[\"slices\"] and v and all(math.isfinite(x) and x > 0 for x in v) and a[\"max\"] == max(v)))" "$W/det/test_000_t2/summary.json"'
# a whole-image method (ignores masks): one forward per slice, not one per window
check "one window per slice (whole-image method)" \
    '[ "$(grep -o "\"windows\": [0-9]*" "$W/det/test_000_t2/summary.json" | grep -o "[0-9]*$")" = "$(grep -o "\"slices\": [0-9]*" "$W/det/test_000_t2/summary.json" | grep -o "[0-9]*$")" ]'
finish
