#!/bin/bash
# The CLI's contract: --help/--version exit 0, unknown commands and options exit 2.
set -u
bin=${ANOSWIN_BIN:?}
tmp=scratch_cli
rm -rf "$tmp" && mkdir -p "$tmp"
. "$(dirname "$0")/helpers/cli.sh"
expect 0 "" "--help" "$bin" --help
expect 0 "" "--version" "$bin" --version
expect 2 "" "no command" "$bin"
expect 2 "" "unknown command" "$bin" frobnicate
"$bin" --version | grep -qE '^anoswin [0-9]+\.[0-9]+' && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL: version format"; }
for c in info data train reconstruct detect eval bench demo experiment; do
  expect 0 "" "$c --help" "$bin" "$c" --help
done
finish
