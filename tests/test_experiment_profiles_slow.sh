#!/usr/bin/env bash
# anoswin experiment profiles --small on a tiny trained Swin MAE: every profile gets a row, each
# row holds what the profile's own eval wrote (read back here with Python's csv module, not the
# recipe's reader), the lesion-free profile counts false positives instead of a Dice, a rerun with
# --reuse reuses every step and writes the same table, and a missing checkpoint is one line. A tiny
# VAE (a whole-image method) runs through too, into the same folder with --reuse (only the data
# steps are reused), its calibrate and detect steps without a window or stride (its 16 px patch
# does not divide --small's 8 px stride), where the Swin MAE's get them. A tiny autoDDPM runs with
# inference settings (--model-set, twice): calibrate and every detect get them, each detection's
# summary records the DDIM sampler, and the table names them.
set -u
BIN=${ANOSWIN_BIN:?}
PY=${ANOSWIN_PYTHON:-/usr/bin/python3}
W=$(pwd)/scratch_experiment_profiles
rm -rf "$W" && mkdir -p "$W"
tmp=$W
. "$(dirname "$0")/helpers/cli.sh"

"$BIN" data synth --out "$W/data" --healthy 2 --test 0 --modality t2 --threads 2 2>"$W/synth.err" ||
    { cat "$W/synth.err"; bad "data synth"; finish; exit 1; }
succeeds "a tiny model trains" "$BIN" train --data "$W/data" --modality t2 --out "$W/run" \
    --config img_size=64,patch_size=4,in_chans=1,embed_dim=8,num_heads=1/1/2/2,window=2 \
    --z-first 80 --z-last 89 --epochs 1 --batch 8 --max-steps 3 --save-every 0 --seed 3 --threads 2

expect 1 "no-such.safetensors" "a missing checkpoint is refused" \
    "$BIN" experiment profiles --checkpoint "$W/no-such.safetensors" --out "$W/bad" --small
check "the refusal is one line" '[ $(wc -l < "$W/err") -eq 1 ]'
expect 2 "--checkpoint" "profiles without --checkpoint is a usage error" \
    "$BIN" experiment profiles --out "$W/bad" --small

expect 2 "--subjects" "--subjects 0 is a usage error" \
    "$BIN" experiment profiles --checkpoint "$W/run/last.safetensors" --out "$W/bad" --small --subjects 0
# --subjects N extends the default sets only if data synth seeds each subject by its index: the
# first subject of a 2-subject profile set is the 1-subject set's, file for file.
"$BIN" data synth --out "$W/s1" --healthy 0 --test 1 --profile boundary --modality t2 --seed 6003 \
    --threads 2 2>/dev/null && "$BIN" data synth --out "$W/s2" --healthy 0 --test 2 --profile boundary \
    --modality t2 --seed 6003 --threads 2 2>/dev/null
check "a larger profile set starts with the smaller one's subjects" \
    'ls "$W/s2/test" | grep -qx test_001 && [ -n "$(ls "$W/s1/test/test_000")" ] &&
     (for f in "$W"/s1/test/test_000/*; do cmp -s "$f" "$W/s2/test/test_000/${f##*/}" || exit 1; done)'
succeeds "experiment profiles --small runs" \
    "$BIN" experiment profiles --checkpoint "$W/run/last.safetensors" --out "$W/p" --small --threads 2 --seed 4
cp "$W/p/profiles.csv" "$W/first.csv"
check "the table is on stdout too" 'grep -q "| mean over the" "$W/ok"'

check "each profile's row is its eval's calibrated per-volume line" "$PY - '$W/p' <<'EOF'
import csv, math, sys
run = sys.argv[1]
rows = list(csv.DictReader(open(run + '/profiles.csv')))
names = ['glioma', 'metastasis', 'ms', 'boundary', 'hypo', 'sparse', 'none']
assert [r['profile'] for r in rows] == names, [r['profile'] for r in rows]
def num(s):
    return float(s) if s else math.nan
def same(a, b):
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-9 * max(1.0, abs(b))
for r in rows:
    assert r['status'] == 'ok', r
    ev = [e for e in csv.DictReader(open('%s/eval/%s/report.csv' % (run, r['profile'])))
          if e['protocol'] == 'calibrated' and e['aggregation'] == 'per-volume']
    assert len(ev) == 1, r['profile']
    e = ev[0]
    assert int(r['n']) == int(e['n']), (r, e['n'])
    for ours, theirs in [('dice', 'dice'), ('dice_std', 'dice_std'), ('auprc', 'auprc'), ('auroc', 'auroc'),
                         ('lesion_free_fp_ml_mean', 'lesion_free_fp_ml_mean')]:
        assert same(num(r[ours]), num(e[theirs])), (r['profile'], ours, r[ours], e[theirs])
none = rows[-1]
assert none['n'] == '0' and none['n_lesion_free'] == '1' and none['dice'] == '', none
assert int(rows[0]['n']) == 1, rows[0]
EOF"

succeeds "a rerun with --reuse" \
    "$BIN" experiment profiles --checkpoint "$W/run/last.safetensors" --out "$W/p" --small --threads 2 --seed 4 --reuse
check "reuses every step" '[ "$(grep -c "reusing the finished step" "$W/ok")" -ge 23 ]'
check "and writes the same table" 'cmp -s "$W/first.csv" "$W/p/profiles.csv"'

check "the Swin MAE's steps get the demo's window and stride" \
    'grep -q -- "--mask-size 16 --stride 8" "$W/p/stamps/calibrate.txt" "$W/p/stamps/detect-glioma.txt"'

# Other checkpoints into the same folder with --reuse: only the data steps are reused; calibrate,
# every detect and every eval run again (an eval's command line does not name the checkpoint, so
# its stamp alone would keep the Swin MAE's numbers).
succeeds "a tiny VAE trains" "$BIN" train --data "$W/data" --modality t2 --out "$W/vae" --method vae \
    --config img_size=64,res=8,base_ch=4,max_ch=8,z_dim=16 --z-first 80 --z-last 89 --epochs 1 --batch 8 --max-steps 3 --save-every 0 --seed 3 --threads 2
succeeds "experiment profiles --small --reuse runs a whole-image method" \
    "$BIN" experiment profiles --checkpoint "$W/vae/last.safetensors" --out "$W/p" --small --threads 2 --seed 4 --reuse
check "only the 8 data steps are reused" '[ "$(grep -c "reusing the finished step" "$W/ok")" -eq 8 ]'
check "the VAE's table names its method and has every profile" "$PY - '$W/p/profiles.csv' <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 7 and all(r['status'] == 'ok' and r['method'] == 'vae' for r in rows), rows
assert rows[0]['dice'] != '' and rows[-1]['n_lesion_free'] == '1', rows
EOF"
check "the VAE's steps get no window or stride" \
    '[ -s "$W/p/stamps/detect-glioma.txt" ] && ! grep -q -- "--mask-size\|--stride" "$W"/p/stamps/calibrate.txt "$W"/p/stamps/detect-*.txt'
check "the method's title heads the table and its reports" \
    'grep -qF "(VAE (" "$W/p/profiles.md" && grep -q "^VAE (Baur" "$W/p/eval/glioma/report.csv"'

succeeds "a tiny autoDDPM trains" "$BIN" train --data "$W/data" --modality t2 --out "$W/ddpm" --method autoddpm \
    --config img_size=32,channels=8-16-16,attention=0-1-1,head_ch=8,groups=4,patch_size=8,t_recon=2,t_inpaint=1,resample=2 \
    --z-first 80 --z-last 89 --epochs 1 --batch 4 --max-steps 2 --save-every 0 --seed 3 --threads 2
succeeds "experiment profiles --model-set" "$BIN" experiment profiles --checkpoint "$W/ddpm/last.safetensors" \
    --out "$W/p" --small --threads 2 --seed 4 --reuse --model-set sampler=ddim --model-set inference_steps=500
check "calibrate and each detect get the settings" \
    '[ $(grep -l -- "--model-set sampler=ddim,inference_steps=500" "$W"/p/stamps/calibrate.txt "$W"/p/stamps/detect-*.txt | wc -l) -eq 8 ]'
check "each detection used the DDIM sampler" \
    '[ $(grep -l "\"sampler\":\"ddim\",\"inference_steps\":500" "$W"/p/detect/*/*/summary.json | wc -l) -eq 7 ]'
check "the table names the settings" 'grep -qF "inference settings \`sampler=ddim,inference_steps=500\`" "$W/p/profiles.md"'
finish
