#!/bin/bash
# Runs libFuzzer targets one after another for a set time each.
#   fuzz/run.sh BUILD_DIR SECONDS TARGET...
# Each target starts from the committed seeds (fuzz/corpus/<target>) plus what earlier runs
# found (BUILD_DIR/corpus/<target>, kept out of the repo). Crashes are written to
# BUILD_DIR/artifacts/<target>-crash-*; the summary line gives executions per second.
set -u
build=${1:?build dir} secs=${2:?seconds}
shift 2
src=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$build" && pwd)  # absolute: fuzz_options works inside its scratch folder
status=0
for t in "$@"; do
  bin=$build/fuzz/$t
  work=$build/corpus/$t
  mkdir -p "$work" "$build/artifacts"
  log=$build/$t.log
  # Options fuzzing prints usage errors on every run: keep the target's stdout/stderr closed
  # (libFuzzer still prints its own lines and sanitizer reports).
  mask=0
  [ "$t" = fuzz_options ] && mask=3
  # The targets' scratch files go under BUILD_DIR/tmp, removed afterwards.
  mkdir -p "$build/tmp"
  TMPDIR="$build/tmp" "$bin" -max_total_time="$secs" -print_final_stats=1 -close_fd_mask=$mask -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="$build/artifacts/$t-" "$work" "$src/corpus/$t" >"$log" 2>&1
  rc=$?
  rm -rf "$build/tmp"
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  time=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  if [ $rc = 0 ]; then
    echo "$t: ${runs:-?} runs in ${secs} s, ${time:-?} exec/s, $cov, no finding"
  else
    status=1
    echo "$t: FINDING (exit $rc), see $log and $build/artifacts/$t-*"
    grep -m3 -E 'ERROR|runtime error|fuzz:' "$log"
  fi
done
exit $status
