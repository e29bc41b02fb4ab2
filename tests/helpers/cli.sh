# Pass/fail bookkeeping shared by the shell tests (tests/*.sh), sourced after the script has set
# $tmp, the scratch folder where expect and succeeds keep a command's output.
pass=0 fail=0

ok() { [ $# -gt 0 ] && echo "ok: $1"; pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

# check <description> <shell expression>: passes when the expression, evaluated here, is true.
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }

# expect <exit status> <stderr pattern or ""> <description> <command...>: stdout goes to
# $tmp/out, stderr to $tmp/err.
expect() {
    local want=$1 pat=$2 what=$3
    shift 3
    "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    if [ "$got" != "$want" ]; then bad "$what: exit $got, want $want: $(tail -c 400 "$tmp/err")"
    elif [ -n "$pat" ] && ! grep -q -- "$pat" "$tmp/err"; then bad "$what: stderr lacks '$pat': $(tail -c 400 "$tmp/err")"
    else ok "$what"; fi
}

# succeeds <description> <command...>: the command must exit 0 (its output is shown otherwise).
succeeds() {
    local what=$1
    shift
    if "$@" >"$tmp/ok" 2>&1; then ok "$what"; else bad "$what: $(tail -c 600 "$tmp/ok")"; fi
}

finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" = 0 ]
}
