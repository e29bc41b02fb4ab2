#!/usr/bin/env bash
# anoswin experiment table1 end to end on a tiny IXI-named + BraTS-layout fixture made from
# `anoswin data synth` (symlinks renamed to IXI naming), a tiny model and one epoch:
#  - MSLUB absent -> its rows are skipped with a note; the combined report (md/csv/json/html)
#    parses, agrees with itself and references only files that exist (tools/experiment_report_check.py);
#  - RUN/commands.txt lists every step, and a listed step reruns by hand;
#  - --reuse skips every finished step (the model is untouched); without --reuse an existing model
#    is refused; other training options with --reuse are refused.
set -u
BIN=${ANOSWIN_BIN:?}
PY=${ANOSWIN_PYTHON:-/usr/bin/python3}
SRC=${ANOSWIN_SOURCE_DIR:?}
W=$(pwd)/scratch_experiment_slow
rm -rf "$W" && mkdir -p "$W"
tmp=$W
. "$(dirname "$0")/helpers/cli.sh"

"$BIN" data synth --out "$W/synth" --healthy 3 --test 2 --modality t1,t2 --threads 2 2>"$W/synth.err" ||
    { cat "$W/synth.err"; bad "data synth"; echo "$pass passed, $fail failed"; exit 1; }
mkdir -p "$W/ixi" "$W/brats"
for i in 0 1 2; do
    for m in t1 t2; do
        M=$(echo $m | tr a-z A-Z)
        ln -s "$W/synth/healthy/healthy_00$i/healthy_00${i}_$m.nii.gz" "$W/ixi/IXI10$i-Guys-100$i-$M.nii.gz"
    done
done
ln -s "$W/synth/test" "$W/brats/test"

CFG='img_size=64,patch_size=4,window=2,embed_dim=8,depths=[1,1,1,1],num_heads=[1,1,2,2],in_chans=1'
ARGS=(--ixi "$W/ixi" --brats "$W/brats" --out "$W/run" --config "$CFG" --epochs 1 --batch 4 --train-slices 80:84
      --test-slices 82:84 --mask-sizes 32,16 --val-share 0.5 --bootstrap 20 --threads 2)
"$BIN" experiment table1 "${ARGS[@]}" >"$W/out1" 2>"$W/err1"
rc=$?
check "experiment table1 runs (exit 0)" '[ $rc -eq 0 ]'
[ $rc -eq 0 ] || tail -30 "$W/err1"
check "stdout has the table with the paper's numbers" 'grep -q "42.55" "$W/out1" && grep -q "reference code" "$W/out1"'
check "MSLUB rows skipped with a note" 'grep -q "MSLUB not given" "$W/run/report.md"'
check "report files" '[ -s "$W/run/report.md" ] && [ -s "$W/run/report.csv" ] && [ -s "$W/run/report.json" ] && [ -s "$W/run/report.html" ]'
"$PY" "$SRC/tools/experiment_report_check.py" "$W/run" 1 2 2 MSLUB >"$W/check1" 2>&1
check "report parses and references existing files" '[ $? -eq 0 ]' || cat "$W/check1"
C="$W/run/commands.txt"
check "commands.txt: one train, two detect, two eval" \
    '[ "$(grep -c "^anoswin train " "$C")" = 1 ] && [ "$(grep -c "^anoswin detect " "$C")" = 2 ] && [ "$(grep -c "^anoswin eval " "$C")" = 2 ]'
check "test manifest with a val/test split" 'grep -q ",val$" "$W/run/data/brats21-t2.csv" && grep -q ",test$" "$W/run/data/brats21-t2.csv"'

# A step from commands.txt reruns by hand (into another folder).
line=$(grep "^anoswin eval " "$C" | head -1 | sed "s#--out [^ ]*#--out $W/byhand#")
(anoswin() { "$BIN" "$@"; }; eval "$line") >/dev/null 2>"$W/err_hand"
check "an eval line of commands.txt reruns by hand" '[ $? -eq 0 ] && [ -s "$W/byhand/report.csv" ]'

sum1=$(md5sum "$W/run/models/ixi-t2/last.safetensors" | cut -d" " -f1)
"$BIN" experiment table1 "${ARGS[@]}" --threads 1 --reuse >"$W/out2" 2>"$W/err2"
rc=$?
check "--reuse (other thread count) runs (exit 0)" '[ $rc -eq 0 ]'
check "--reuse skips training, detect and eval" '[ "$(grep -c "reusing the finished step" "$W/err2")" = 5 ] && ! grep -q "^anoswin train: epoch" "$W/err2"'
sum2=$(md5sum "$W/run/models/ixi-t2/last.safetensors" | cut -d" " -f1)
check "the model is untouched" '[ "$sum1" = "$sum2" ]'
check "commands.txt still lists every step, marked reused" '[ "$(grep -c "(reused" "$C")" = 5 ] && [ "$(grep -c "^anoswin " "$C")" = 5 ]'
"$PY" "$SRC/tools/experiment_report_check.py" "$W/run" 1 2 2 MSLUB >"$W/check2" 2>&1
check "report after --reuse parses" '[ $? -eq 0 ]' || cat "$W/check2"

"$BIN" experiment table1 "${ARGS[@]}" >/dev/null 2>"$W/err3"
check "an existing model without --reuse is refused (exit 1)" '[ $? -eq 1 ] && grep -q -- "--reuse" "$W/err3"'
"$BIN" experiment table1 "${ARGS[@]}" --epochs 2 --reuse >/dev/null 2>"$W/err4"
check "--reuse with other training options is refused (exit 1)" '[ $? -eq 1 ] && grep -q "other options" "$W/err4"'
sum3=$(md5sum "$W/run/models/ixi-t2/last.safetensors" | cut -d" " -f1)
check "refusals leave the model alone" '[ "$sum1" = "$sum3" ]'

# Interrupted training (SIGTERM to the experiment): it stops after the step, exits 143 and names
# --reuse; --reuse then resumes that training (train --resume) and finishes the table.
ARGS2=(--ixi "$W/ixi" --brats "$W/brats" --out "$W/run2" --config "$CFG" --epochs 400 --max-steps 60 --batch 4
       --train-slices 80:84 --test-slices 82:84 --mask-sizes 32 --val-share 0.5 --bootstrap 20 --threads 1)
"$BIN" experiment table1 "${ARGS2[@]}" >/dev/null 2>"$W/err5" &
pid=$!
for _ in $(seq 600); do  # until training has logged a few epochs (or the run ended)
    [ "$(cat "$W/run2/models/ixi-t2/log.csv" 2>/dev/null | wc -l)" -ge 4 ] && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
done
kill -TERM $pid 2>/dev/null
wait $pid
rc=$?
check "SIGTERM during training: exit 143, names --reuse" '[ $rc -eq 143 ] && grep -q -- "--reuse" "$W/err5"'
check "no finished stamp for the interrupted training" '[ ! -e "$W/run2/stamps/train-ixi-t2.txt" ]'
"$BIN" experiment table1 "${ARGS2[@]}" --reuse >/dev/null 2>"$W/err6"
rc=$?
check "--reuse resumes the training and finishes (exit 0)" '[ $rc -eq 0 ] && grep -q "^anoswin train --resume" "$W/run2/commands.txt"'
check "the resumed training reached its step count" '[ "$(tail -1 "$W/run2/models/ixi-t2/log.csv" | cut -d, -f2)" = 60 ]'
"$PY" "$SRC/tools/experiment_report_check.py" "$W/run2" 1 1 1 MSLUB >"$W/check3" 2>&1
check "report after the resumed run parses" '[ $? -eq 0 ]' || cat "$W/check3"

finish
