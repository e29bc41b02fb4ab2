#!/usr/bin/env bash
# Crash safety of `anoswin train` (issue 8):
#  - one run is killed with SIGKILL at 5 random moments, resumed with --resume after each; after
#    every kill each checkpoint in the run folder loads (strictly, as a model where it is one),
#    and the finished run has the same log rows (epoch, step, lr, train loss, val loss) and a
#    byte-identical last.safetensors as an uninterrupted run with the same seed and threads;
#  - a disk that fills up mid-run (simulated with `ulimit -f`, SIGXFSZ ignored so writes fail
#    with EFBIG as on a full disk): exit 1 with one line naming the file, and no half-written
#    checkpoint under a checkpoint's name.
# The kill delays are random (printed, to reproduce a failure: HARDEN_KILL_DELAYS="d1 .. d5").
set -u
BIN=${ANOSWIN_BIN:?}
PY=${ANOSWIN_PYTHON:-/usr/bin/python3}
SRC=${ANOSWIN_SOURCE_DIR:?}
W=$(pwd)/scratch_harden_train_kill
rm -rf "$W" && mkdir -p "$W"
tmp=$W
. "$(dirname "$0")/helpers/cli.sh"

CFG='img_size=64,patch_size=4,window=2,embed_dim=16,depths=[1,1,1,1],num_heads=[1,2,2,4],in_chans=1'
# 2 training subjects x 10 slices, batch 4: 5 steps per epoch; 8 epochs.
COMMON=(--data "$W/data" --config "$CFG" --batch 4 --z-first 70 --z-last 79 --val-fraction 0.34
        --seed 11 --threads 1 --warmup-epochs 1 --save-every 3 --recon 0 --epochs 8 --quiet)
"$BIN" data synth --out "$W/data" --healthy 3 --test 0 --modality t2 --threads 2 2>"$W/synth.err" ||
    { cat "$W/synth.err"; echo "FAIL: data synth"; exit 1; }

strip() { cut -d, -f1-5 "$1"; }  # the log without img/s and elapsed
now() { date +%s.%N; }

# Every .safetensors in a run folder must parse (strict header/size checks of the Python
# reader), and the model files must load strictly into the model with `anoswin info`.
check_loadable() {
    local dir=$1 what=$2 f
    for f in "$dir"/*.safetensors; do
        [ -e "$f" ] || continue
        "$PY" -c "import sys; sys.path.insert(0, sys.argv[1]); import safetensors_io as S; S.load_file(sys.argv[2])" \
            "$SRC/tools" "$f" 2>"$W/load.err" || bad "$what: $(basename "$f") does not parse: $(tail -1 "$W/load.err")"
        case $(basename "$f") in
        resume.safetensors) ;;
        *) "$BIN" info --checkpoint "$f" >/dev/null 2>"$W/load.err" ||
               bad "$what: $(basename "$f") does not load as a model: $(cat "$W/load.err")" ;;
        esac
    done
    ok
}

# ---- the uninterrupted run ---------------------------------------------------------------------
t0=$(now)
"$BIN" train "${COMMON[@]}" --out "$W/straight" 2>"$W/straight.err"
rc=$?
T=$(awk -v a="$(now)" -v b="$t0" 'BEGIN { printf "%.3f", a - b }')
check "straight run exits 0" '[ $rc -eq 0 ]' || { cat "$W/straight.err"; echo "$pass passed, $fail failed"; exit 1; }
check "straight run: 8 epoch rows" '[ $(wc -l < "$W/straight/log.csv") -eq 9 ]'

# ---- 5 kills at random moments, each followed by --resume ---------------------------------------
# Delays spread over the run: uniform in [0.1, 0.6] x T seconds from each (re)start.
if [ -n "${HARDEN_KILL_DELAYS:-}" ]; then
    read -r -a delays <<<"$HARDEN_KILL_DELAYS"
else
    delays=()
    for i in 1 2 3 4 5; do delays+=("$(awk -v t="$T" -v r=$RANDOM 'BEGIN { printf "%.3f", t * (0.1 + 0.5 * r / 32767) }')"); done
fi
echo "run time ${T}s; kill delays: ${delays[*]}"
run=$W/killed
started=0
for i in 0 1 2 3 4; do
    if [ -f "$run/resume.safetensors" ]; then
        "$BIN" train --resume --out "$run" --threads 1 --quiet 2>>"$W/killed.err" &
    else  # killed before the first resume point: nothing to resume, start again
        "$BIN" train "${COMMON[@]}" --out "$run" 2>>"$W/killed.err" &
    fi
    pid=$!
    sleep "${delays[$i]}"
    if kill -KILL $pid 2>/dev/null; then
        wait $pid 2>/dev/null
        started=$((started + 1))
    else
        wait $pid
        echo "note: run $((i + 1)) finished before its kill (${delays[$i]}s)"
    fi
    check_loadable "$run" "after kill $((i + 1)) (${delays[$i]}s)"
done
if [ -f "$run/resume.safetensors" ]; then
    "$BIN" train --resume --out "$run" --threads 1 --quiet 2>>"$W/killed.err"
else
    "$BIN" train "${COMMON[@]}" --out "$run" 2>>"$W/killed.err"
fi
rc=$?
check "final --resume exits 0" '[ $rc -eq 0 ]' || tail -3 "$W/killed.err"
check "$started of 5 kills landed mid-run" '[ $started -ge 3 ]'
check "killed+resumed: same log rows (losses) as the uninterrupted run" \
    'diff <(strip "$W/straight/log.csv") <(strip "$run/log.csv") >"$W/log.diff"' || head "$W/log.diff"
check "killed+resumed: byte-identical last.safetensors" 'cmp -s "$W/straight/last.safetensors" "$run/last.safetensors"'
check "killed+resumed: byte-identical best.safetensors" 'cmp -s "$W/straight/best.safetensors" "$run/best.safetensors"'

# ---- a disk that fills up mid-run ----------------------------------------------------------------
# log.csv and the write probe fit in 16 KiB, a checkpoint of this model does not.
(
    trap '' XFSZ
    ulimit -f 16
    exec "$BIN" train "${COMMON[@]}" --out "$W/full" 2>"$W/full.err"
)
rc=$?
check "full disk: exit 1 (got $rc)" '[ $rc -eq 1 ]'
check "full disk: one line on stderr naming a file in the run: $(head -c 300 "$W/full.err")" \
    '[ "$(grep -c . "$W/full.err")" -eq 1 ] && grep -q "^anoswin: $W/full/" "$W/full.err"'
check "full disk: no half-written checkpoint under a checkpoint name" \
    '[ -z "$(find "$W/full" -name "*.safetensors" ! -name ".*")" ] || check_loadable "$W/full" "full disk"'
check "full disk: no temp files left" '[ -z "$(find "$W/full" -name ".*tmp*")" ]'

finish
