#!/bin/bash
# anoswin data synth --profile: every lesion profile keeps its promises (count, size, place,
# contrast), checked independently by tools/check_synth_profiles.py (nibabel + scipy.ndimage) on
# 2 test subjects each; the checks fail on another profile's data; the new profiles are as
# deterministic as glioma (same seed -> same bytes whatever the thread count).
set -u
bin=${ANOSWIN_BIN:?}
py=${ANOSWIN_PYTHON:-/usr/bin/python3}
checker=${ANOSWIN_SOURCE_DIR:?}/tools/check_synth_profiles.py
tmp=scratch_data_synth_profiles
rm -rf "$tmp" && mkdir -p "$tmp"
. "$(dirname "$0")/helpers/cli.sh"
export OMP_WAIT_POLICY=passive

synth() {  # synth <profile> <dir> <threads> [modality]
    "$bin" data synth --out "$tmp/$2" --healthy 0 --test 2 --seed 3 --threads "$3" --profile "$1" \
        --modality "${4:-t2}" >"$tmp/$2.log" 2>&1
}

start=$SECONDS
for p in glioma metastasis ms boundary hypo sparse none; do
    m=t2
    [ "$p" = ms ] && m=t1,t2  # ms lesions are also T1-dark
    if synth "$p" "$p" 1 "$m"; then ok "synth --profile $p"; else bad "synth --profile $p: $(tail -c 400 "$tmp/$p.log")"; fi
    check "synth.txt records profile=$p" "grep -qx 'profile=$p' '$tmp/$p/synth.txt'"
done
echo "synthesis: $((SECONDS - start)) s"

for p in glioma metastasis ms boundary hypo sparse none; do
    succeeds "profile $p keeps its promises" "$py" "$checker" "$tmp/$p"
    grep -E "^(FAIL|     )" "$tmp/ok"
done

# The checks can fail: other profiles' lesions do not pass for these.
for pair in metastasis:ms ms:metastasis metastasis:boundary glioma:hypo none:sparse hypo:none; do
    data=${pair%%:*} as=${pair##*:}
    if "$py" "$checker" "$tmp/$data" --as "$as" >"$tmp/cross" 2>&1; then
        bad "$data lesions pass the $as checks"
    else ok "$data lesions fail the $as checks ($(grep -c '^FAIL' "$tmp/cross") failed)"; fi
done

# Determinism of a profile that uses the anatomy: 2 threads, same bytes.
synth ms ms2 2 t1,t2 || bad "synth ms, 2 threads"
same=1
for f in $(cd "$tmp/ms" && find . -name '*.nii.gz'); do cmp -s "$tmp/ms/$f" "$tmp/ms2/$f" || same=0; done
check "ms: same seed, 1 vs 2 threads: identical files" "[ $same = 1 ]"

expect 2 "--profile" "unknown profile refused" "$bin" data synth --out "$tmp/bad" --profile tumour
echo "total: $((SECONDS - start)) s"
finish
