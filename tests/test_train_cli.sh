#!/usr/bin/env bash
# anoswin train end to end on a small synthetic data set and a tiny model:
#  - the run's files (log rows, checkpoints, reconstructions) and usage/IO errors;
#  - SIGINT stops after the current step with status 130 and a resumable state, SIGKILL at a
#    random moment leaves a loadable run; in both cases --resume ends with the same log rows and
#    a byte-identical model as an uninterrupted run.
set -u
BIN=${ANOSWIN_BIN:?}
PY=${ANOSWIN_PYTHON:-/usr/bin/python3}
SRC=${ANOSWIN_SOURCE_DIR:?}
W=$(pwd)/scratch_train_cli
rm -rf "$W" && mkdir -p "$W"
tmp=$W
. "$(dirname "$0")/helpers/cli.sh"

CFG='img_size=64,patch_size=4,window=2,embed_dim=16,depths=[1,1,1,1],num_heads=[1,2,2,4],in_chans=1'
COMMON=(--data "$W/data" --config "$CFG" --batch 4 --z-first 70 --z-last 79 --val-fraction 0.34
        --seed 5 --threads 1 --warmup-epochs 1 --save-every 2 --recon 2)

"$BIN" data synth --out "$W/data" --healthy 3 --test 0 --modality t2 --threads 2 2>"$W/synth.err" ||
    { cat "$W/synth.err"; bad "data synth"; echo "$pass passed, $fail failed"; exit 1; }

# ---- usage and output errors ---------------------------------------------------------------
"$BIN" train --out "$W/x" 2>"$W/e1"; check "missing --data is a usage error (2)" '[ $? -eq 2 ]'
"$BIN" train --resume --out "$W/x" --lr 1 2>"$W/e2"; check "--resume with a training option: 2" '[ $? -eq 2 ]'
touch "$W/afile"
"$BIN" train "${COMMON[@]}" --epochs 1 --out "$W/afile/run" 2>"$W/e3"
check "output under a file: exit 1 before loading data" '[ $? -eq 1 ] && grep -q "afile" "$W/e3" && ! grep -q "^data:" "$W/e3"'
"$BIN" train --resume --out "$W/nothing" 2>"$W/e4"
check "--resume without a run: exit 1 naming the file" '[ $? -eq 1 ] && grep -q "resume.safetensors" "$W/e4"'

# ---- a straight run --------------------------------------------------------------------------
# 2 training subjects x 10 slices = 20 slices, batch 4: 5 steps per epoch.
"$BIN" train "${COMMON[@]}" --epochs 12 --max-steps 40 --out "$W/straight" 2>"$W/straight.err"
rc=$?
check "straight run exits 0" '[ $rc -eq 0 ]' || cat "$W/straight.err"
check "data split by subject (20 train, 10 val slices)" 'grep -q "20 training slices, 10 validation slices" "$W/straight.err"'
check "log: header + 8 epoch rows" '[ $(wc -l < "$W/straight/log.csv") -eq 9 ]'
for f in last.safetensors best.safetensors epoch_0002.safetensors epoch_0008.safetensors resume.safetensors \
         recon/epoch_0002.png; do
    check "straight/$f written" '[ -s "$W/straight/$f" ]'
done
check "no temp files left" '[ -z "$(find "$W/straight" -name ".*tmp*")" ]'
"$BIN" train "${COMMON[@]}" --epochs 12 --out "$W/straight" 2>"$W/e5"
check "a second run into the same folder is refused" '[ $? -eq 1 ] && grep -q "already holds a run" "$W/e5"'
"$PY" "$SRC/tools/ref_load_check.py" "$W/straight/last.safetensors" >/dev/null
check "last.safetensors loads strictly in PyTorch" '[ $? -eq 0 ]'

strip() { cut -d, -f1-5 "$1"; }  # the log without img/s and elapsed
rows() { if [ -f "$1" ]; then wc -l < "$1"; else echo 0; fi; }

# ---- SIGINT, then --resume -------------------------------------------------------------------
"$BIN" train "${COMMON[@]}" --epochs 12 --max-steps 40 --out "$W/int" 2>"$W/int.err" &
pid=$!
for _ in $(seq 1 600); do  # wait for the first epoch row, then interrupt
    [ "$(rows "$W/int/log.csv")" -ge 2 ] && break
    sleep 0.05
done
kill -INT $pid
wait $pid
rc=$?
if [ $rc -eq 130 ]; then
    ok "SIGINT: exit 130"
    check "SIGINT: resume hint printed" 'grep -q -- "--resume" "$W/int.err"'
else
    echo "note: the run ended (status $rc) before SIGINT arrived"
    check "run ended normally" '[ $rc -eq 0 ]'
fi
printf '9,1' >>"$W/int/log.csv"  # a row torn by a power loss or full disk must not survive --resume
"$BIN" train --resume --out "$W/int" --threads 1 --max-steps 40 2>"$W/int2.err"
check "resume after SIGINT exits 0" '[ $? -eq 0 ]' || cat "$W/int2.err"
check "SIGINT+resume: same log rows as straight" 'diff <(strip "$W/straight/log.csv") <(strip "$W/int/log.csv") >/dev/null'
check "SIGINT+resume: byte-identical last.safetensors" 'cmp -s "$W/straight/last.safetensors" "$W/int/last.safetensors"'

# ---- SIGKILL at a random moment, then --resume -----------------------------------------------
"$BIN" train "${COMMON[@]}" --epochs 12 --max-steps 40 --out "$W/kill" 2>"$W/kill.err" &
pid=$!
for _ in $(seq 1 600); do
    [ "$(rows "$W/kill/log.csv")" -ge 3 ] && break
    sleep 0.05
done
sleep 0.0$((RANDOM % 10))
kill -KILL $pid 2>/dev/null
wait $pid 2>/dev/null
"$BIN" train --resume --out "$W/kill" --threads 1 --max-steps 40 2>"$W/kill2.err"
check "resume after SIGKILL exits 0" '[ $? -eq 0 ]' || cat "$W/kill2.err"
check "SIGKILL+resume: same log rows as straight" 'diff <(strip "$W/straight/log.csv") <(strip "$W/kill/log.csv") >/dev/null'
check "SIGKILL+resume: byte-identical last.safetensors" 'cmp -s "$W/straight/last.safetensors" "$W/kill/last.safetensors"'

# ---- --intensity nyul: the standard measured on the healthy scans, in every checkpoint ---------
"$BIN" train "${COMMON[@]}" --intensity zscore --out "$W/bad" 2>"$W/e6"
check "--intensity zscore is a usage error (2)" '[ $? -eq 2 ] && grep -q "minmax or nyul" "$W/e6"'
"$BIN" train "${COMMON[@]}" --intensity nyul --epochs 12 --max-steps 3 --out "$W/nyul" 2>"$W/nyul.err"
check "nyul run exits 0" '[ $? -eq 0 ]' || cat "$W/nyul.err"
"$BIN" train --resume --out "$W/nyul" --threads 1 --max-steps 6 2>"$W/nyul2.err"
check "nyul run resumes" '[ $? -eq 0 ]' || cat "$W/nyul2.err"
# NumPy's standard over all 3 healthy volumes (validation ones too) = the checkpoint's
"$PY" - "$SRC/tools" "$W/nyul/last.safetensors" "$W"/data/healthy/*/*_t2.nii.gz >"$W/nyul.py.out" 2>&1 <<'PY'
import json, struct, sys
sys.path.insert(0, sys.argv[1])
import nibabel as nib, numpy as np
from nyul_standardise import landmarks, standard
f = open(sys.argv[2], 'rb'); meta = json.loads(f.read(struct.unpack('<Q', f.read(8))[0]))['__metadata__']
got = json.loads(meta['anoswin.intensity'])
want = standard([landmarks(np.asarray(nib.load(p).dataobj, np.float32)) for p in sys.argv[3:]])
assert got['method'] == 'nyul' and got['scans'] == 3, got
assert np.allclose(got['landmarks'], want, rtol=1e-5, atol=1e-3), (got['landmarks'], want)
assert json.loads(meta['anoswin.options'] if 'anoswin.options' in meta else '{}').get('intensity', 'nyul') == 'nyul'
print('ok')
PY
check "checkpoint standard = NumPy's over the healthy volumes (after --resume)" 'grep -q "^ok" "$W/nyul.py.out"' || cat "$W/nyul.py.out"
check "the run's options record intensity nyul" \
    '"$PY" -c "import json,struct,sys; f=open(sys.argv[1],\"rb\"); m=json.loads(f.read(struct.unpack(\"<Q\",f.read(8))[0]))[\"__metadata__\"]; sys.exit(json.loads(m[\"anoswin.options\"])[\"intensity\"]!=\"nyul\")" "$W/nyul/resume.safetensors"'
"$PY" "$SRC/tools/ref_load_check.py" "$W/nyul/last.safetensors" >/dev/null
check "the nyul checkpoint loads strictly in PyTorch" '[ $? -eq 0 ]'
"$BIN" detect --checkpoint "$W/nyul/last.safetensors" --out "$W/nyul_det" --preset brats --z-first 70 --z-last 79 \
    --threads 1 "$W"/data/healthy/healthy_000/healthy_000_t2.nii.gz 2>"$W/nyul_det.err"
check "detect with it states the standard in summary.json" \
    'grep -q "\"intensity_standard\": {\"method\":\"nyul\",\"scans\":3" "$W"/nyul_det/*/summary.json' || cat "$W/nyul_det.err"
check "a min-max checkpoint states none" '! grep -q "anoswin.intensity" "$W/straight/last.safetensors"'

finish
