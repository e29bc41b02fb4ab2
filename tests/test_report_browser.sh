#!/bin/bash
# The HTML report in a real browser: `anoswin eval` on the synthetic fixture (tools/eval_fixture.py),
# then report.html opened from file:// in headless Chromium (Debian's `chromium`, software WebGL2)
# with no network; tools/report_browser_check.py fails on any page error or console exception and
# checks that the 3-D viewer drew the scan, the map and both outlines and that the panels are drawn.
# Then the same report without its NiiVue bundle must fail that check. Skipped (77) without Chromium.
set -u
bin=${ANOSWIN_BIN:?}
py=${ANOSWIN_PYTHON:-/usr/bin/python3}
src=${ANOSWIN_SOURCE_DIR:?}
root=scratch_report_browser
rm -rf "$root" && mkdir -p "$root"
tmp=$root
. "$(dirname "$0")/helpers/cli.sh"
chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium" ]; then
  echo "SKIP: chromium not installed (scripts/install-deps.sh --test installs it)"
  exit 77
fi
"$py" "$src/tools/eval_fixture.py" "$root" || { echo "FAIL: fixture"; exit 1; }
expect 0 "" "eval writes the report" "$bin" eval --pred "$root/pred" --data "$root/test.csv" --split test \
  --val-split val --out "$root/run" --bootstrap 0 --dataset synthetic -q
[ -f "$root/run/viewer/niivue.umd.js" ] && ok "the NiiVue bundle is in the report folder" || bad "no viewer/niivue.umd.js"

# render <run dir> <name>: DOM, screenshot and log of report.html under $root/<name>.*
# Software WebGL2 (SwiftShader through ANGLE) is what a machine without a GPU has; --no-sandbox
# because the tests may run as root; every host name unresolvable (no network); its own profile so
# that parallel runs do not share one.
render() {
  rm -rf "$root/profile-$2"
  timeout 180 "$chromium" --headless --no-sandbox --use-angle=swiftshader --enable-unsafe-swiftshader \
    --disable-dev-shm-usage --no-first-run --host-resolver-rules="MAP * ~NOTFOUND" --user-data-dir="$PWD/$root/profile-$2" \
    --enable-logging=stderr --v=0 --virtual-time-budget=10000 --window-size=1280,2600 \
    --screenshot="$PWD/$root/$2.png" --dump-dom "file://$PWD/$1/report.html" >"$root/$2.html" 2>"$root/$2.log"
}
render "$root/run" ok
"$py" "$src/tools/report_browser_check.py" "$root/run" "$root/ok.html" "$root/ok.png" "$root/ok.log" \
  >"$root/ok.txt" 2>&1 && ok "$(tail -1 "$root/ok.txt")" || bad "$(cat "$root/ok.txt")"
grep -Eq '(src|href)="[a-z]+:|url\(' "$root/run/report.html" && bad "report.html references the network" \
  || ok "report.html references no network address"

# Without the bundle the same check must fail, and the page must say why.
cp -r "$root/run" "$root/nobundle" && rm "$root/nobundle/viewer/niivue.umd.js"
render "$root/nobundle" nobundle
if "$py" "$src/tools/report_browser_check.py" "$root/nobundle" "$root/nobundle.html" "$root/nobundle.png" \
  "$root/nobundle.log" >"$root/nobundle.txt" 2>&1; then bad "the check passes without the NiiVue bundle"
else ok "the check fails without the NiiVue bundle"; fi
grep -q 'niivue.umd.js did not load' "$root/nobundle.html" && ok "the page says the bundle did not load" \
  || bad "the page does not say the bundle is missing"
finish
