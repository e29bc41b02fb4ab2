#!/usr/bin/env bash
# anoswin experiment: usage and input errors, all caught before any step runs (no training);
# then several methods in one run: each trained with its own recipe (commands.txt), a tiny two-method
# table (Swin MAE with two mask sizes + the whole-image VAE, 2 training steps each) whose report
# tools/experiment_report_check.py checks, and --reuse of it.
set -u
BIN=${ANOSWIN_BIN:?}
PY=${ANOSWIN_PYTHON:-/usr/bin/python3}
SRC=${ANOSWIN_SOURCE_DIR:?}
W=$(pwd)/scratch_experiment_cli
rm -rf "$W" && mkdir -p "$W/empty"
tmp=$W
. "$(dirname "$0")/helpers/cli.sh"
"$BIN" data synth --out "$W/syn" --healthy 1 --test 1 --modality t1,t2 --threads 2 2>/dev/null || bad "synth"
mkdir -p "$W/ixi" && ln -s "$W/syn/healthy/healthy_000/healthy_000_t2.nii.gz" "$W/ixi/IXI100-Guys-1000-T2.nii.gz"
# a second IXI subject (the same scan), so that training can hold one out
ln -s "$W/syn/healthy/healthy_000/healthy_000_t2.nii.gz" "$W/ixi/IXI101-Guys-1001-T2.nii.gz"

expect 0 "" "help" "$BIN" experiment --help
grep -q "table1" "$W/out" && grep -q -- "--reuse" "$W/out" && ok "help names tables and --reuse" || bad "help text"
expect 2 "table1 or table2" "no table" "$BIN" experiment --ixi "$W/ixi" --out "$W/r"
expect 2 "table3" "unknown table" "$BIN" experiment table3 --ixi "$W/ixi" --out "$W/r"
expect 2 "--ixi" "missing --ixi is a usage error" "$BIN" experiment table1 --brats "$W/syn" --out "$W/r"
expect 2 "--out" "missing --out" "$BIN" experiment table1 --ixi "$W/ixi" --brats "$W/syn"
expect 2 "mask-sizes" "bad --mask-sizes" "$BIN" experiment table1 --ixi "$W/ixi" --out "$W/r" --mask-sizes 64,x
expect 2 "test-slices" "bad --test-slices" "$BIN" experiment table1 --ixi "$W/ixi" --out "$W/r" --test-slices 9:3
expect 2 "epochs" "bad --epochs" "$BIN" experiment table1 --ixi "$W/ixi" --out "$W/r" --epochs 0
expect 2 "frob" "unknown option" "$BIN" experiment table1 --ixi "$W/ixi" --out "$W/r" --frob
expect 1 "nowhere" "missing --ixi folder" "$BIN" experiment table1 --ixi "$W/nowhere" --brats "$W/syn" --out "$W/r"
expect 1 "no row" "no test data set: nothing to run" "$BIN" experiment table1 --ixi "$W/ixi" --out "$W/r"
# A given test set without labelled scans stops everything before training.
expect 1 "lesion label" "test set without labels" "$BIN" experiment table1 --ixi "$W/ixi" --brats "$W/syn/healthy" --out "$W/r2"
[ ! -e "$W/r2/models" ] && ok "nothing trained after a data error" || bad "a model folder was made"
expect 1 "empty" "unreadable test set" "$BIN" experiment table1 --ixi "$W/ixi" --mslub "$W/empty" --out "$W/r3"
# Table 2 needs IXI T1 too: the fixture has none.
expect 1 "$W/ixi" "table2 without IXI T1 scans" "$BIN" experiment table2 --ixi "$W/ixi" --brats "$W/syn" --out "$W/r4"
[ ! -e "$W/r4/models" ] && ok "nothing trained without IXI T1" || bad "a model folder was made"

# ---- several methods --------------------------------------------------------------------------
"$BIN" experiment --help >"$W/out"
check "help lists this build's methods" 'grep -q "this build: swinmae, vae, fanogan" "$W/out"'
expect 2 "unknown method 'nope'" "unknown method" "$BIN" experiment table1 --ixi "$W/ixi" --brats "$W/syn" --out "$W/r5" \
    --methods swinmae,nope
expect 2 "twice" "a method listed twice" "$BIN" experiment table1 --ixi "$W/ixi" --brats "$W/syn" --out "$W/r5" \
    --methods vae,vae
expect 2 "not in --methods" "a config for a method not run" "$BIN" experiment table1 --ixi "$W/ixi" --brats "$W/syn" \
    --out "$W/r5" --methods swinmae,vae --config fanogan:tiny
expect 1 "presets: tiny,paper-size" "an unknown preset names the method's presets" "$BIN" experiment table1 \
    --ixi "$W/ixi" --brats "$W/syn" --out "$W/r5" --methods swinmae,vae --config vae:huge
expect 1 "z_dim" "a bad config of one method stops the run" "$BIN" experiment table1 --ixi "$W/ixi" --brats "$W/syn" \
    --out "$W/r5" --methods swinmae,vae --config tiny --config vae:z_dim=0
[ ! -e "$W/r5/models" ] && ok "nothing trained after a config error" || bad "a model folder was made"

# Each method's own recipe (no --epochs/--batch): on 2 slices per scan every training fails at
# once (fewer slices than one batch), which leaves the command lines to read and a report that
# says so per row.
"$BIN" experiment table1 --ixi "$W/ixi" --brats "$W/syn" --out "$W/r6" --methods swinmae,vae,fanogan --config tiny \
    --train-slices 80:81 --test-slices 82:83 --mask-sizes 32 --max-steps 1 --threads 1 >/dev/null 2>"$W/err6"
check "failed trainings: exit 1" '[ $? -eq 1 ]'
C6="$W/r6/commands.txt"
check "Swin MAE: its recipe (400 epochs, batch 24 on T2), no --method (as before)" \
    'grep -q "^anoswin train --data .* --epochs 400 --batch 24 --seed 0 " "$C6"'
check "VAE: the authors' recipe (1000 epochs, batch 8, constant lr 1e-4)" \
    'grep -q "^anoswin train --method vae .* --epochs 1000 --batch 8 --lr 0.0001 --warmup-epochs 0 --min-lr 0.0001 " "$C6"'
check "f-AnoGAN: the authors' recipe (batch 64, 14 epochs)" \
    'grep -q "^anoswin train --method fanogan .* --epochs 14 --batch 64 " "$C6"'
check "presets resolved to each method's config text" \
    'grep -q "embed_dim=8" "$C6" && grep -q "config img_size=64,res=8,base_ch=4" "$C6" && grep -q "config img_size=32,dim=8" "$C6"'
check "every row reported failed" '[ "$(grep -c "not available" "$W/r6/report.md")" = 3 ]'

# A two-method table with tiny models.
ARGS=(--ixi "$W/ixi" --brats "$W/syn" --out "$W/r7" --methods swinmae,vae --config tiny
      --config vae:img_size=32,res=4,base_ch=4,max_ch=8,z_dim=8,patch_size=8 --epochs 1 --batch 4 --max-steps 2
      --train-slices 80:84 --test-slices 82:84 --mask-sizes 32,16 --val-share 0 --bootstrap 20 --threads 1)
"$BIN" experiment table1 "${ARGS[@]}" >"$W/out7" 2>"$W/err7"
rc=$?
check "two methods: exit 0" '[ $rc -eq 0 ]' || tail -20 "$W/err7"
"$PY" "$SRC/tools/experiment_report_check.py" "$W/r7" 1 3 3 MSLUB swinmae,vae >"$W/check7" 2>&1
check "two methods: the report checks out" '[ $? -eq 0 ]' || cat "$W/check7"
C7="$W/r7/commands.txt"
check "two trainings, three detections and evaluations" \
    '[ "$(grep -c "^anoswin train " "$C7")" = 2 ] && [ "$(grep -c "^anoswin detect " "$C7")" = 3 ] && [ "$(grep -c "^anoswin eval " "$C7")" = 3 ]'
check "the VAE gets its own config (--config vae:...) and no mask size" \
    'grep -q "^anoswin train --method vae .*z_dim=8" "$C7" && grep "^anoswin detect .*vae_ixi-t2_brats21-t2" "$C7" | grep -vq -- "--mask-size"'
check "stdout: the paper's VAE row beside ours" 'grep -q "| VAE (Baur et al. 2021b) | IXI T2 | BraTS21 T2 | paper .* | 31.11 | 28.80 |" "$W/out7"'
"$BIN" experiment table1 "${ARGS[@]}" --reuse >/dev/null 2>"$W/err8"
check "--reuse: every step of both methods reused" '[ $? -eq 0 ] && [ "$(grep -c "reusing the finished step" "$W/err8")" = 8 ]'

finish
