#!/bin/bash
# anoswin eval end to end: a synthetic fixture (tools/eval_fixture.py, nibabel) evaluated by the
# CLI under all protocols; tools/eval_report_check.py recomputes the numbers with sklearn and
# checks the report files; plus exit codes for bad input and usage errors.
set -u
bin=${ANOSWIN_BIN:?}
py=${ANOSWIN_PYTHON:-/usr/bin/python3}
src=${ANOSWIN_SOURCE_DIR:?}
root=scratch_eval_cli
rm -rf "$root" && mkdir -p "$root"
tmp=$root
. "$(dirname "$0")/helpers/cli.sh"
"$py" "$src/tools/eval_fixture.py" "$root" || { echo "FAIL: fixture"; exit 1; }

# A training log whose losses span less than a decade: the log axis gets 1-2-5 ticks.
mkdir -p "$root/run" && printf 'epoch,step,train_loss,val_loss\n1,100,0.9,0.95\n2,200,0.5,\n3,300,0.3,0.4\n' > "$root/run/log.csv"
"$bin" eval --pred "$root/pred" --data "$root/test.csv" --split test --val-split val --healthy "$root/healthy.csv" \
  --out "$root/run" --bootstrap 200 --dataset synthetic -q --json > "$root/out.json" 2> "$root/err.txt"
rc=$?
[ $rc = 0 ] && ok || { bad "eval exit $rc: $(cat "$root/err.txt")"; }
"$py" -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['n_test']==6 and d['n_test_lesion']==3 and d['n_val']==2 and d['n_healthy']==2, d" \
  "$root/out.json" && ok || bad "--json output"
"$py" "$src/tools/eval_report_check.py" "$root" "$root/run" && ok || bad "report check"
# The table on stdout names every protocol.
"$bin" eval --pred "$root/pred" --data "$root/test.csv" --split test --val-split val --healthy "$root/healthy.csv" \
  --bootstrap 50 -q > "$root/out.txt" 2>&1
for p in paper val-threshold oracle healthy-fpr-1% healthy-fpr-5% healthy-fpr-10% per-volume pooled per-slice OPTIMISTIC; do
  grep -q -- "$p" "$root/out.txt" && ok || bad "table lacks $p"
done
grep -qi '\bnan\b' "$root/out.txt" && bad "table prints NaN" || ok
# It says what each mean covers and reports the false positives where there is nothing to find
# (the fixture has 3 lesion subjects, 3 lesion-free ones and 2 healthy scans; eval_report_check.py
# checks the numbers).
grep -q -- "| paper | per-volume | 3 |" "$root/out.txt" && ok || bad "table lacks n for the per-volume mean"
grep -q -- "| paper | pooled | 6 |" "$root/out.txt" && ok || bad "table lacks n for the pooled line"
grep -q -- "Lesion-free test subjects (.*): 3; false-positive volume of detect's mask: mean" "$root/out.txt" && ok \
  || bad "table lacks the lesion-free subjects"
grep -q -- "Healthy scans: 2; false-positive volume of detect's mask: mean" "$root/out.txt" && ok \
  || bad "table lacks the healthy scans' false positives"
# Same seed, same output.
"$bin" eval --pred "$root/pred" --data "$root/test.csv" --split test --val-split val --healthy "$root/healthy.csv" \
  --bootstrap 50 -q > "$root/out2.txt" 2>&1
cmp -s "$root/out.txt" "$root/out2.txt" && ok || bad "not deterministic"

eval_exits() {  # eval_exits <expected exit> <description> <args...>
  local want=$1 what=$2; shift 2
  "$bin" eval "$@" >/dev/null 2>"$root/err.txt"; local got=$?
  [ "$got" = "$want" ] && ok || bad "$what: exit $got, want $want ($(cat "$root/err.txt"))"
}
eval_exits 2 "no arguments"
eval_exits 2 "bad --slices" --pred "$root/pred" --data "$root/test.csv" --slices 5:2
eval_exits 2 "bad --bootstrap" --pred "$root/pred" --data "$root/test.csv" --bootstrap -1
eval_exits 1 "missing pred folder" --pred "$root/nope" --data "$root/test.csv"
eval_exits 1 "missing data" --pred "$root/pred" --data "$root/nope.csv"
eval_exits 1 "split without predictions" --pred "$root/pred" --data "$root/test.csv" --split nosuch
eval_exits 0 "--slices override" --pred "$root/pred" --data "$root/test.csv" --split test --slices 0:11 --bootstrap 0 -q
finish
