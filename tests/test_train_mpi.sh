#!/usr/bin/env bash
# `mpirun -np 2 anoswin train` (data-parallel training, src/train/dist.h) on loopback:
#  - np=2 x batch 2 ends with the same parameters after 3 steps as one process x batch 4 on the
#    same slices (relative L2 over all parameters <= 1e-5; DropPath off), ranks bit-identical
#    after every step (ANOSWIN_MPI_CHECK_EVERY_STEP);
#  - SIGUSR1 to mpirun stops every rank after the same step (status 138); mpirun --resume then
#    ends byte-identical to an uninterrupted np=2 run; resuming with another rank count is refused;
#  - SIGKILL of one rank mid-run ends the job with a non-zero status within seconds (no hang)
#    and leaves a checkpoint that loads strictly in PyTorch and resumes under mpirun;
#  - a stopped (hung) rank: the watchdog (ANOSWIN_MPI_TIMEOUT) ends the job.
# Without MPI in the binary: mpirun -np 2 is refused with a message naming the build option.
set -u
BIN=${ANOSWIN_BIN:?}
PY=${ANOSWIN_PYTHON:-/usr/bin/python3}
SRC=${ANOSWIN_SOURCE_DIR:?}
W=$(pwd)/scratch_train_mpi
rm -rf "$W" && mkdir -p "$W"
tmp=$W
. "$(dirname "$0")/helpers/cli.sh"

if ! command -v mpirun >/dev/null; then
    echo "mpirun not installed (openmpi-bin): nothing to test"
    echo "0 passed, 0 failed"
    exit 0
fi
# Loopback only, as root in CI, more ranks than cores allowed; no ssh lookup; no single-copy
# (CMA needs ptrace rights that containers often lack).
export OMPI_MCA_btl=self,vader OMPI_MCA_plm_rsh_agent= OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# In the sanitizer build, LeakSanitizer would report Open MPI's own allocations at exit.
MPI=(env "ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0" timeout 60 mpirun --oversubscribe --allow-run-as-root -np 2)

CFG='img_size=64,patch_size=4,window=2,embed_dim=16,depths=[1,1,1,1],num_heads=[1,2,2,4],in_chans=1'
COMMON=(--data "$W/data" --config "$CFG" --z-first 70 --z-last 79 --val-fraction 0.34 --seed 5 --threads 1
        --warmup-epochs 1 --quiet)

"$BIN" data synth --out "$W/data" --healthy 3 --test 0 --modality t2 --threads 2 2>"$W/synth.err" ||
    { cat "$W/synth.err"; bad "data synth"; echo "$pass passed, $fail failed"; exit 1; }

if ! ldd "$BIN" | grep -q libmpi; then
    "${MPI[@]}" "$BIN" train "${COMMON[@]}" --batch 2 --epochs 1 --out "$W/nompi" >"$W/nompi.err" 2>&1
    rc=$?
    check "built without MPI: mpirun -np 2 is refused naming the option" \
        '[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "built without MPI" "$W/nompi.err"'
    echo "$pass passed, $fail failed"
    [ $fail -eq 0 ]
    exit
fi

# ---- np=2 x b == np=1 x 2b -------------------------------------------------------------------
# 3 steps, no DropPath. Slices from a wide z range and 8 px mask units, so that the number of
# masked (brain) tokens differs between the ranks' halves of a batch: an unweighted mean of the
# ranks' gradients then fails the AdamW-moment check below (measured: 3e-2 vs 9e-7).
EQ=(--z-first 40 --z-last 129 --mask-size 8 --epochs 3 --max-steps 3 --no-drop-path --save-every 0 --recon 0
    --lr 1e-3)
"$BIN" train "${COMMON[@]}" "${EQ[@]}" --batch 4 --out "$W/one" 2>"$W/one.err"
check "np=1 batch 4: exit 0" '[ $? -eq 0 ]' || cat "$W/one.err"
ANOSWIN_MPI_CHECK_EVERY_STEP=1 "${MPI[@]}" "$BIN" train "${COMMON[@]}" "${EQ[@]}" --batch 2 --out "$W/two" \
    >"$W/two.err" 2>&1
check "np=2 batch 2: exit 0 (ranks identical after every step)" '[ $? -eq 0 ]' || cat "$W/two.err"
check "np=2: one summary line (rank 0 alone reports)" '[ $(grep -c "^train: done" "$W/two.err") -eq 1 ]'
"$PY" "$SRC/tools/compare_safetensors.py" --rtol 1e-5 "$W/one/last.safetensors" "$W/two/last.safetensors" \
    >"$W/cmp.out" 2>&1
rc=$?
check "np=2 x 2 == np=1 x 4 after 3 steps: parameters rel L2 <= 1e-5 ($(cat "$W/cmp.out"))" '[ $rc -eq 0 ]'
"$PY" "$SRC/tools/compare_safetensors.py" --per-tensor --rtol 1e-5 "$W/one/resume.safetensors" \
    "$W/two/resume.safetensors" >"$W/cmp2.out" 2>&1
rc=$?
check "np=2 x 2 == np=1 x 4: parameters, AdamW m and v each rel L2 <= 1e-5 ($(cat "$W/cmp2.out"))" '[ $rc -eq 0 ]'
# A training-state field of a resume file (metadata "anoswin.state").
state() {
    "$PY" - "$1" "$2" <<'EOF'
import json, re, struct, sys
d = open(sys.argv[1], "rb").read(1 << 20)
n = struct.unpack("<Q", d[:8])[0]
st = json.loads(d[8:8 + n])["__metadata__"]["anoswin.state"]  # not strict JSON (inf)
print(re.search('"%s":"?([-+0-9.eE]+)' % sys.argv[2], st).group(1))
EOF
}
l1=$(state "$W/one/resume.safetensors" loss_sum)
l2=$(state "$W/two/resume.safetensors" loss_sum)
check "same summed step losses ($l1 vs $l2)" \
    '"$PY" -c "import sys; a, b = map(float, sys.argv[1:]); sys.exit(abs(a - b) > 1e-5 * abs(a))" "$l1" "$l2"'

# ---- SIGUSR1 (graceful stop on every rank), then mpirun --resume -----------------------------
RUN=(--epochs 4 --batch 2 --save-every 1 --recon 1)
"${MPI[@]}" "$BIN" train "${COMMON[@]}" "${RUN[@]}" --out "$W/straight" >"$W/straight.err" 2>&1
check "np=2 straight run: exit 0" '[ $? -eq 0 ]' || cat "$W/straight.err"
check "np=2 straight run: log rows, checkpoints, PNG by rank 0" \
    '[ $(wc -l < "$W/straight/log.csv") -eq 5 ] && [ -s "$W/straight/epoch_0004.safetensors" ] && [ -s "$W/straight/recon/epoch_0004.png" ]'

rows() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
"${MPI[@]}" "$BIN" train "${COMMON[@]}" "${RUN[@]}" --out "$W/usr1" >"$W/usr1.err" 2>&1 &
mp=$!
for _ in $(seq 1 600); do
    [ "$(rows "$W/usr1/log.csv")" -ge 2 ] && break
    sleep 0.05
done
kill -USR1 "$(pgrep -P $mp)"  # $mp is timeout; its child is mpirun
wait $mp
rc=$?
if [ $rc -eq 138 ]; then
    ok "SIGUSR1 to mpirun: every rank stops, status 138"
    check "SIGUSR1: resume hint names mpirun" 'grep -q "mpirun -np 2 anoswin train --resume" "$W/usr1.err"'
else
    echo "note: the run ended (status $rc) before SIGUSR1 arrived"
    check "run ended normally" '[ $rc -eq 0 ]'
fi
"$BIN" train --resume --out "$W/usr1" --threads 1 2>"$W/wrong.err"
check "resume in one process of a 2-rank run: refused (exit 1) naming mpirun -np 2" \
    '[ $? -eq 1 ] && grep -q "mpirun -np 2" "$W/wrong.err"'
"${MPI[@]}" "$BIN" train --resume --out "$W/usr1" --threads 1 --quiet >"$W/usr1b.err" 2>&1
check "mpirun -np 2 --resume: exit 0" '[ $? -eq 0 ]' || cat "$W/usr1b.err"
strip() { cut -d, -f1-5 "$1"; }
check "SIGUSR1+resume: same log rows as straight" 'diff <(strip "$W/straight/log.csv") <(strip "$W/usr1/log.csv") >/dev/null'
check "SIGUSR1+resume: byte-identical last.safetensors" 'cmp -s "$W/straight/last.safetensors" "$W/usr1/last.safetensors"'

# ---- SIGKILL one rank mid-run --------------------------------------------------------------
"${MPI[@]}" "$BIN" train "${COMMON[@]}" --epochs 400 --batch 2 --save-every 1 --recon 1 --out "$W/kill" \
    >"$W/kill.err" 2>&1 &
mp=$!
for _ in $(seq 1 600); do
    [ "$(rows "$W/kill/log.csv")" -ge 3 ] && break
    sleep 0.05
done
sleep 0.$((RANDOM % 10))
mpirun_pid=$(pgrep -P $mp)
ranks=($(pgrep -P "$mpirun_pid"))
victim=${ranks[$((RANDOM % ${#ranks[@]}))]}
t0=$(date +%s)
kill -KILL "$victim"
wait $mp
rc=$?
t1=$(date +%s)
check "SIGKILL of one rank (of ${#ranks[@]}): job exits non-zero, not by the 60 s timeout (status $rc, $((t1 - t0)) s)" \
    '[ ${#ranks[@]} -eq 2 ] && [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $((t1 - t0)) -lt 30 ]'
check "SIGKILL: mpirun names the killed rank" 'grep -q "exited on signal 9" "$W/kill.err"'
alive() { ps -o stat= -p "$1" 2>/dev/null | grep -qv '^Z'; }  # a zombie is dead (PID 1 may not reap)
check "SIGKILL: no rank process left" '! alive "${ranks[0]}" && ! alive "${ranks[1]}"'
check "SIGKILL: a resume point was saved before" '[ -s "$W/kill/resume.safetensors" ]'
"$PY" "$SRC/tools/ref_load_check.py" "$W/kill/last.safetensors" >/dev/null 2>"$W/load.err"
check "SIGKILL: last.safetensors loads strictly in PyTorch" '[ $? -eq 0 ]' || cat "$W/load.err"
step=$(state "$W/kill/resume.safetensors" global_step)
"${MPI[@]}" "$BIN" train --resume --out "$W/kill" --threads 1 --quiet --max-steps $((step + 2)) >"$W/kill2.err" 2>&1
check "SIGKILL: mpirun -np 2 --resume from step $step continues (exit 0)" '[ $? -eq 0 ]' || cat "$W/kill2.err"

# ---- a stuck rank (SIGSTOP): the watchdog ends the job ---------------------------------------
ANOSWIN_MPI_TIMEOUT=2 "${MPI[@]}" "$BIN" train "${COMMON[@]}" --epochs 400 --batch 2 --save-every 0 --recon 0 \
    --out "$W/stuck" >"$W/stuck.err" 2>&1 &
mp=$!
for _ in $(seq 1 600); do
    [ "$(rows "$W/stuck/log.csv")" -ge 2 ] && break
    sleep 0.05
done
mpirun_pid=$(pgrep -P $mp)
ranks=($(pgrep -P "$mpirun_pid"))
t0=$(date +%s)
kill -STOP "${ranks[1]}"
wait $mp
rc=$?
t1=$(date +%s)
kill -CONT "${ranks[1]}" 2>/dev/null
check "a stopped rank: the watchdog ends the job (status $rc, $((t1 - t0)) s)" \
    '[ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $((t1 - t0)) -lt 30 ] && grep -q "no answer from the other ranks" "$W/stuck.err"'

finish
