#!/bin/bash
# The CLI's contract: --help/--version exit 0, unknown commands and options exit 2.
set -u
bin=${ANOSWIN_BIN:?}
pass=0 fail=0
check() {  # check <expected exit> <description> <command...>
  local want=$1 what=$2; shift 2
  "$@" >/dev/null 2>&1; local got=$?
  if [ "$got" = "$want" ]; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $what: exit $got, want $want"; fi
}
check 0 "--help" "$bin" --help
check 0 "--version" "$bin" --version
check 2 "no command" "$bin"
check 2 "unknown command" "$bin" frobnicate
"$bin" --version | grep -qE '^anoswin [0-9]+\.[0-9]+' && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL: version format"; }
for c in info data train reconstruct detect eval bench demo experiment; do
  check 0 "$c --help" "$bin" "$c" --help
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
