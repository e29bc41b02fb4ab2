#!/bin/bash
# The input guard (src/data/fingerprint.h): a tiny model trained on synthetic T2 scans records
# what it trained on (checked against NumPy over the training volumes); detect then warns, one
# line per scan per difference naming the scan, for another modality, another grid, another voxel
# size, a head rather than a brain, and brain intensities unlike training's, and for nothing on
# scans like the training data (with lesions); the scan's measurements in summary.json match
# NumPy; --force silences the warnings and the summary records them as forced; a checkpoint
# without a fingerprint says so once and checks nothing; calibrate checks its healthy scans too.
# The issue's case: the Colin27 head with skull (ch2.nii.gz), T1, on a 1.1 x 1.1 x 1.3 mm grid.
set -u
bin=${ANOSWIN_BIN:?}
src=${ANOSWIN_SOURCE_DIR:?}
py=${ANOSWIN_PYTHON:-/usr/bin/python3}
tmp=scratch_input_guard
rm -rf "$tmp" && mkdir -p "$tmp"
. "$(dirname "$0")/helpers/cli.sh"
fx=("$py" "$src/tools/guard_fixtures.py")
ch2=/usr/share/mricron/templates/ch2.nii.gz  # beside data synth's ch2bet.nii.gz (src/data/synth.h)
[ -f "$ch2" ] || { echo "skipped: $ch2 missing (Debian's mricron-data)"; exit 77; }

succeeds "synth data" "$bin" data synth --out "$tmp/syn" --healthy 2 --test 1 --modality t1,t2 --seed 3 --threads 2
CFG='img_size=64,patch_size=4,window=2,embed_dim=16,depths=[1,1,1,1],num_heads=[1,2,2,4],in_chans=1'
succeeds "train on the healthy T2 scans" "$bin" train --data "$tmp/syn" --modality t2 --config "$CFG" --batch 4 \
  --z-first 70 --z-last 79 --epochs 1 --max-steps 2 --seed 1 --threads 1 --recon 0 --save-every 0 --quiet --out "$tmp/run"
ckpt=$tmp/run/last.safetensors
succeeds "checkpoint fingerprint = NumPy over the training volumes" "${fx[@]}" print "$ckpt" "$tmp"/syn/healthy/*/*_t2.nii.gz
grep -q '"modality":"t2"' <("$py" -c "import json,struct,sys; f=open(sys.argv[1],'rb'); n=struct.unpack('<Q',f.read(8))[0]; \
print(json.loads(f.read(n))['__metadata__']['anoswin.fingerprint'].replace(' ',''))" "$ckpt") \
  && ok "fingerprint names the data set's modality" || bad "fingerprint lacks modality t2"

# fixtures, each differing from the training scans in one way (the Colin27 head in several), and
# the checkpoint without its fingerprint
succeeds "fixtures" "${fx[@]}" make "$tmp/syn/test/test_000/test_000_t2.nii.gz" "$tmp/syn/test/test_000/test_000_t1.nii.gz" \
  "$ch2" "$ckpt" "$tmp"
printf 'subject,image,mask\nshell,%s,%s\n' "$PWD/$tmp/shell.nii" "$PWD/$tmp/shell_mask.nii" >"$tmp/shell.csv"

det=("$bin" detect --checkpoint "$ckpt" --preset brats --threads 1 --mask-size 32 --z-first 80 --z-last 82 --quiet
     --no-overlays)
# warnings <scan> <count>: the lines naming the scan in the last stderr, and how many
warnings() { grep -c "^anoswin: warning: .*$1" "$tmp/err"; }
only() {  # only <scan> <pattern> <what>: exactly one warning for the scan, and it matches
    local n
    n=$(warnings "$1")
    if [ "$n" = 1 ] && grep "^anoswin: warning: .*$1" "$tmp/err" | grep -q -- "$2"; then ok "$3"
    else bad "$3: $n warning line(s): $(grep "$1" "$tmp/err")"; fi
}

expect 0 "" "scans like the training data (T2, with lesions)" "${det[@]}" --modality t2 --out "$tmp/like" "$tmp/syn/test"
check "no warning for scans like the training data" '! grep -q "warning" "$tmp/err"'
check "summary: fingerprint checked, no warnings" \
  'grep -q "\"input_guard\": {\"fingerprint\": true, \"forced\": false, \"warnings\": \[\]" "$tmp/like/test_000/summary.json"'

expect 0 "" "detect on the differing scans" "${det[@]}" --out "$tmp/unlike" "$tmp/voxel.nii" "$tmp/crop.nii" \
  "$tmp/shell.csv" "$tmp/scan_b.nii" "$tmp/colin_t1.nii"
cp "$tmp/err" "$tmp/unlike.err"
only voxel.nii "voxel size 1.1x1.1x1.3 mm, trained on 1x1x1 mm" "voxel size"
only crop.nii "grid 200x216x155, trained on 240x240x155" "grid"
only shell.nii "head rather than a brain" "head around the brain (skull), brain mask given"
only scan_b.nii "brain intensities unlike training's" "intensity distribution (a T1 scan)"
check "Colin27 head, T1, 1.1x1.1x1.3 mm: modality, grid, voxel size, head (4 lines)" \
  '[ "$(warnings colin_t1)" = 4 ] && grep colin_t1 "$tmp/err" | grep -q "modality t1, trained on t2" &&
   grep colin_t1 "$tmp/err" | grep -q "grid 164x197x139" && grep colin_t1 "$tmp/err" | grep -q "voxel size 1.1x1.1x1.3 mm" &&
   grep colin_t1 "$tmp/err" | grep -q "head rather than a brain"'
check "closing note names --force" 'grep -q "5 scans look unlike the training data.*--force" "$tmp/err"'
check "summary records the warnings" \
  'grep -q "\"forced\": false, \"warnings\": \[\"voxel size 1.1x1.1x1.3 mm" "$tmp/unlike/voxel/summary.json"'
succeeds "scan measurements = NumPy (Colin27 head)" "${fx[@]}" scan "$tmp/unlike/colin_t1/summary.json" "$tmp/colin_t1.nii"
succeeds "scan measurements = NumPy (with a brain mask)" "${fx[@]}" scan "$tmp/unlike/shell/summary.json" \
  "$tmp/shell.nii" "$tmp/shell_mask.nii"

expect 0 "" "modality from the data set" "${det[@]}" --modality t1 --out "$tmp/t1" "$tmp/syn/test"
check "the T1 scan of the folder: modality t1, trained on t2" \
  '[ "$(grep -c "warning: .*test_000_t1.nii.gz: modality t1, trained on t2" "$tmp/err")" = 1 ]'

expect 0 "" "--force" "${det[@]}" --force --out "$tmp/forced" "$tmp/colin_t1.nii"
check "--force: no warning lines" '! grep -q "warning" "$tmp/err"'
check "--force: summary records the differences as forced" \
  'grep -q "\"forced\": true, \"warnings\": \[\"modality t1, trained on t2\"" "$tmp/forced/colin_t1/summary.json"'

expect 0 "" "old checkpoint" "$bin" detect --checkpoint "$tmp/old.safetensors" --preset brats --threads 1 --mask-size 32 \
  --z-first 80 --z-last 82 --quiet --no-overlays --out "$tmp/old" "$tmp/colin_t1.nii" "$tmp/crop.nii"
check "old checkpoint: says so once, no warnings" \
  '[ "$(grep -c "records no training data fingerprint" "$tmp/err")" = 1 ] && ! grep -q "warning" "$tmp/err"'
check "old checkpoint: summary says unchecked" \
  'grep -q "\"input_guard\": {\"fingerprint\": false, \"forced\": false, \"warnings\": \[\]" "$tmp/old/colin_t1/summary.json"'

cal=("$bin" calibrate --checkpoint "$ckpt" --threads 1 --mask-size 32 --z-first 80 --z-last 82 --normative 0)
expect 0 "" "calibrate on T1 scans" "${cal[@]}" --modality t1 --out "$tmp/cal.json" "$tmp/syn/healthy"
check "calibrate warns per scan" '[ "$(grep -c "warning: .*healthy_00[01]_t1.nii.gz: modality t1" "$tmp/err")" = 2 ]'
expect 0 "" "calibrate --force" "${cal[@]}" --force --modality t1 --out "$tmp/cal2.json" "$tmp/syn/healthy"
check "calibrate --force: no warning lines" '! grep -q "warning" "$tmp/err"'

finish
