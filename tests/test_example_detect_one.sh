#!/bin/bash
# examples/detect_one (built against include/anoswin.h alone) on a tiny trained checkpoint: it
# writes the same anomaly map and mask as `anoswin detect --preset brats` for that scan, and a
# missing checkpoint is an error naming the file.
set -u
bin=${ANOSWIN_BIN:?}
ex=$(dirname "$bin")/detect_one
out=scratch_example_detect_one
rm -rf "$out"
tmp=$out
. "$(dirname "$0")/helpers/cli.sh"
mkdir -p "$out"
"$bin" data synth --out "$out/data" --healthy 2 --test 1 --modality t2 --threads 2 >/dev/null 2>&1 || bad "data synth"
"$bin" train --data "$out/data" --out "$out/run" --max-steps 3 --batch 2 --quiet --threads 2 \
  --config img_size=64,patch_size=4,in_chans=1,embed_dim=8,num_heads=1/1/2/2,window=2 >/dev/null 2>&1 || bad "train"
scan=$out/data/test/test_000/test_000_t2.nii.gz
"$ex" "$out/run/last.safetensors" "$scan" "$out/ex" >"$out/ex.stdout" 2>"$out/ex.stderr" && ok || bad "detect_one failed: $(cat "$out/ex.stderr")"
grep -q "lesion component" "$out/ex.stdout" && ok || bad "detect_one printed no result"
"$bin" detect --checkpoint "$out/run/last.safetensors" --out "$out/cli" --preset brats --threads 2 "$scan" \
  >/dev/null 2>&1 || bad "anoswin detect"
for f in anomaly_map.nii.gz mask.nii.gz; do
  cmp -s "$out/ex/$f" "$out/cli/test_000_t2/$f" && ok || bad "$f differs from anoswin detect's"
done
"$ex" "$out/nope.safetensors" "$scan" "$out/ex2" >/dev/null 2>"$out/ex2.stderr"
[ $? = 1 ] && grep -q "nope.safetensors" "$out/ex2.stderr" && ok || bad "a missing checkpoint is not an error naming it"
finish
