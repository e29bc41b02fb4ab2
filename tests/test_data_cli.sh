#!/bin/bash
# anoswin data list / data synth: exit codes and messages (0 ok, 1 bad input naming the file or
# subject, 2 usage), on small fixture trees made here.
set -u
bin=${ANOSWIN_BIN:?}
tmp=scratch_data_cli
rm -rf "$tmp" && mkdir -p "$tmp"
. "$(dirname "$0")/helpers/cli.sh"
mk() { mkdir -p "$(dirname "$tmp/$1")" && : >"$tmp/$1"; }

# BraTS tree, one subject without its seg.
for s in B_001 B_002; do mk "brats/$s/${s}_t2.nii.gz"; mk "brats/$s/${s}_t1.nii.gz"; done
mk brats/B_002/B_002_seg.nii.gz
expect 1 "B_001" "missing label names the subject" "$bin" data list "$tmp/brats"
mk brats/B_001/B_001_seg.nii.gz
expect 0 "" "list brats" "$bin" data list "$tmp/brats" --modality t1
head -1 "$tmp/out" | grep -qx "subject,image,label,mask,split" && [ "$(wc -l <"$tmp/out")" = 3 ] \
  && grep -q "^B_002,.*B_002_t1.nii.gz,.*B_002_seg.nii.gz" "$tmp/out" && pass=$((pass+1)) \
  || { fail=$((fail+1)); echo "FAIL: list output: $(cat "$tmp/out")"; }
expect 1 "unknown modality 'dwi'" "unknown modality" "$bin" data list "$tmp/brats" --modality dwi
expect 1 "nowhere" "missing folder named" "$bin" data list "$tmp/nowhere"
printf 'subject,image\nx,"unterminated\n' >"$tmp/bad.csv"
expect 1 "bad.csv:2" "bad CSV names file and line" "$bin" data list "$tmp/bad.csv"
expect 2 "" "list without a path" "$bin" data list
expect 2 "" "data without subcommand" "$bin" data
expect 2 "" "unknown subcommand" "$bin" data frobnicate
expect 0 "" "data --help" "$bin" data --help
expect 0 "" "data synth --help" "$bin" data synth --help
expect 2 "--out" "synth needs --out" "$bin" data synth
expect 2 "healthy" "synth bad count" "$bin" data synth --out "$tmp/s" --healthy lots
expect 2 "modality" "synth bad modality" "$bin" data synth --out "$tmp/s" --modality pd
expect 1 "/nonexistent/brain.nii.gz" "synth missing template named" \
  "$bin" data synth --out "$tmp/s" --template /nonexistent/brain.nii.gz
[ ! -e "$tmp/s/synth.txt" ] && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL: failed synth wrote synth.txt"; }
finish
