#!/usr/bin/env bash
# anoswin experiment: usage and input errors, all caught before any step runs (no training).
set -u
BIN=${ANOSWIN_BIN:?}
W=$(pwd)/scratch_experiment_cli
rm -rf "$W" && mkdir -p "$W/empty"
tmp=$W
. "$(dirname "$0")/helpers/cli.sh"
"$BIN" data synth --out "$W/syn" --healthy 1 --test 1 --modality t1,t2 --threads 2 2>/dev/null || bad "synth"
mkdir -p "$W/ixi" && ln -s "$W/syn/healthy/healthy_000/healthy_000_t2.nii.gz" "$W/ixi/IXI100-Guys-1000-T2.nii.gz"

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
finish
