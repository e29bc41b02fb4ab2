#!/bin/bash
# The README stays short (at most 150 lines) and no relative link or image in README.md and
# docs/*.md is broken: tools/check_doc_links.py on the repository, then on fixtures where it
# must fail with the offending file:line (and must not flag links in code or good anchors).
set -u
py=${ANOSWIN_PYTHON:-/usr/bin/python3} src=${ANOSWIN_SOURCE_DIR:?}
d=scratch_docs_links
rm -rf "$d" && mkdir -p "$d"
tmp=$d
. "$(dirname "$0")/helpers/cli.sh"
chk="$src/tools/check_doc_links.py"

# The repository itself.
if "$py" "$chk" --root "$src" >"$d/repo.txt" 2>&1; then ok "README.md and docs/: $(tail -n 1 "$d/repo.txt")"
else bad "README.md and docs/:"; cat "$d/repo.txt"; fi

# A fixture repository that is correct: anchors slugged as GitHub does (punctuation dropped,
# duplicates numbered), links inside code are not links, link text over two lines.
good=$d/good
mkdir -p "$good/docs/img"
: >"$good/docs/img/a.png"
cat >"$good/README.md" <<'EOF'
# Fixture

## Speed and memory (`anoswin bench train`)

See [the guide](docs/guide.md#model-parameters-and-checkpoints-srcmodel-srciosafetensors), the
[second heading](docs/guide.md#notes-1), [here](#speed-and-memory-anoswin-bench-train), a
[link over two
lines](docs/guide.md), ![a picture](docs/img/a.png "title") and <https://example.org>.
`[not a link](nowhere.md)`

    [indented code](nowhere.md)

```
[fenced code](nowhere.md)
```
EOF
cat >"$good/docs/guide.md" <<'EOF'
# Guide

## Model parameters and checkpoints (src/model/, src/io/safetensors.*)
## Notes
## Notes
Back to the [README](../README.md#fixture).
EOF
expect 0 "" "a correct fixture passes" "$py" "$chk" --root "$good"

# The same fixture broken one way at a time: exit 1 and the offending file:line.
broken() {  # broken <description> <expected output line> <file> <sed expression>
    local what=$1 want=$2 file=$3 expr=$4
    rm -rf "$d/bad" && cp -r "$good" "$d/bad"
    sed -i "$expr" "$d/bad/$file"
    "$py" "$chk" --root "$d/bad" >"$d/out" 2>&1
    local rc=$?
    if [ $rc != 1 ]; then bad "$what: exit $rc, want 1: $(cat "$d/out")"
    elif ! grep -qF -- "$want" "$d/out"; then bad "$what: output lacks '$want': $(cat "$d/out")"
    else ok "$what"; fi
}
broken "a link to a missing file" "README.md:5: link 'docs/gide.md#model" README.md 's|docs/guide.md#model|docs/gide.md#model|'
broken "a missing image" "README.md:8: link 'docs/img/b.png'" README.md 's|img/a.png|img/b.png|'
broken "a link over two lines to a missing file" "README.md:8: link 'docs/guid.md'" README.md '8s|docs/guide.md|docs/guid.md|'
broken "an anchor with no heading" "README.md:6: link 'docs/guide.md#notes-2': no heading" README.md 's|#notes-1|#notes-2|'
broken "an anchor in the same file" "README.md:6: link '#speed-and-memory'" README.md 's|#speed-and-memory-anoswin-bench-train|#speed-and-memory|'
broken "a broken link in docs/" "docs/guide.md:6: link '../README.md#fixtur'" docs/guide.md 's|#fixture|#fixtur|'
broken "a link out of the repository" "docs/guide.md:6: link '../../README.md' leaves" docs/guide.md 's|\.\./README.md#fixture|../../README.md|'
broken "a docs page nothing links to" "docs/guide.md:1: not reachable" README.md 's|docs/guide.md|docs/img/a.png|g'
broken "a link once its code span is gone" "README.md:9: link 'nowhere.md'" README.md 's|^`\(.*\)`$|\1|'
broken "a link once its indentation is gone" "README.md:11: link 'nowhere.md'" README.md 's|^    \[indented|[indented|'
seq 150 >"$d/filler.txt"
n=$(( $(wc -l <"$good/README.md") + 150 ))
broken "a README over 150 lines" "README.md:$n: README has $n lines, more than 150" README.md '$r '"$d/filler.txt"

finish
