#!/bin/bash
# `anoswin info --model`: every tensor (name, dtype, shape, in order) and the totals equal the
# PyTorch reference's state_dict and parameter counts; --checkpoint loads strictly; bad input
# exits 1 with one line, usage errors exit 2.
set -u
bin=${ANOSWIN_BIN:?} py=${ANOSWIN_PYTHON:-/usr/bin/python3} src=${ANOSWIN_SOURCE_DIR:?}
d=scratch_model_info
rm -rf "$d" && mkdir -p "$d"
tmp=$d
. "$(dirname "$0")/helpers/cli.sh"

for cfg in "" "img_size=112,patch_size=2,in_chans=1,embed_dim=24,depths=[1,3,2,1],num_heads=[1,2,3,4],mlp_ratio=2"; do
  args=(); [ -n "$cfg" ] && args=(--config "$cfg")
  "$bin" info --model "${args[@]}" > "$d/out.txt" 2>"$d/err" && ok || bad "info --model ${args[*]}: $(cat "$d/err")"
  # rows: "  #  name dtype shape numel [frozen|buffer]"
  awk '$1 ~ /^[0-9]+$/ && NF >= 5 {print $2, $3, $4}' "$d/out.txt" > "$d/c_names.txt"
  "$py" "$src/tools/swin_mae_ref.py" names "${args[@]}" --out "$d/py_names.txt" || { echo "FAIL: reference"; exit 1; }
  cmp -s "$d/c_names.txt" "$d/py_names.txt" && ok || bad "names/dtypes/shapes differ from torch (${cfg:-paper}): $(diff "$d/c_names.txt" "$d/py_names.txt" | head -5)"
  "$py" "$src/tools/swin_mae_ref.py" count "${args[@]}" > "$d/py_count.txt" || { echo "FAIL: reference"; exit 1; }
  all=$(awk '$1=="all"{print $2}' "$d/py_count.txt") tr=$(awk '$1=="trainable"{print $2}' "$d/py_count.txt")
  got=$(grep '^parameters:' "$d/out.txt" | tr -d ,)
  grep -q "parameters: $all in all $tr trainable" <<<"$got" && ok || bad "totals: want $all/$tr, got: $got"
done
# The other methods (--method, presets by name): the same table and totals as their PyTorch
# references' state_dicts built from the config info prints (tools/<method>_ref.py names).
for case in "vae|" "vae|tiny" "fanogan|" "fanogan|img_size=32,dim=8,z_dim=16"; do
  meth=${case%%|*} cfg=${case#*|}
  args=(--method "$meth"); [ -n "$cfg" ] && args+=(--config "$cfg")
  "$bin" info --model "${args[@]}" > "$d/out.txt" 2>"$d/err" && ok || bad "info --model ${args[*]}: $(cat "$d/err")"
  awk '$1 ~ /^[0-9]+$/ && NF >= 5 {print $2, $3, (NF == 5 && $5 == "buffer") ? "scalar" : $4}' "$d/out.txt" > "$d/c_names.txt"
  "$py" "$src/tools/${meth}_ref.py" names "$(sed -n 's/^config: //p' "$d/out.txt")" > "$d/py.txt" || { echo "FAIL: reference"; exit 1; }
  grep -v "^all \|^trainable " "$d/py.txt" > "$d/py_names.txt"
  [ -s "$d/c_names.txt" ] && cmp -s "$d/c_names.txt" "$d/py_names.txt" && ok || bad "$meth ${cfg:-default}: tensors differ from torch: $(diff "$d/c_names.txt" "$d/py_names.txt" | head -5)"
  all=$(awk '$1=="all"{print $2}' "$d/py.txt") tr=$(awk '$1=="trainable"{print $2}' "$d/py.txt")
  grep '^parameters:' "$d/out.txt" | tr -d , | grep -q "parameters: $all in all $tr trainable" && ok || bad "$meth totals: want $all/$tr"
done
"$bin" info --model --method vae | grep -q "parameters: 1,759,921 in all, 1,758,449 trainable" && ok || bad "VAE totals (docs/baselines.md)"
"$bin" info --model --method nope > /dev/null 2>"$d/err"; rc=$?
[ $rc = 2 ] && grep -q "unknown method 'nope'" "$d/err" && ok || bad "unknown --method: rc $rc"
"$bin" info --model --method vae --config huge > /dev/null 2>"$d/err"; rc=$?
[ $rc = 1 ] && [ "$(wc -l < "$d/err")" = 1 ] && ok || bad "--config neither preset nor key=value: rc $rc $(cat "$d/err")"

# The paper's numbers (reference page), in the printed form.
"$bin" info --model | grep -q "parameters: 26,936,916 in all, 26,635,860 trainable" && ok || bad "paper totals"

# A checkpoint written by PyTorch: config from metadata, strict load; wrong --config -> exit 1.
"$py" "$src/tools/checkpoint_check.py" torch2st "$d/w.safetensors" "$d/w.f32" --config "img_size=112,patch_size=2,embed_dim=24" \
  || { echo "FAIL: reference"; exit 1; }
"$bin" info --checkpoint "$d/w.safetensors" > "$d/out.txt" 2>"$d/err" && ok || bad "checkpoint: $(cat "$d/err")"
grep -q "loads strictly" "$d/out.txt" && grep -q '"img_size":112' "$d/out.txt" && ok || bad "checkpoint config"
"$bin" info "$d/w.safetensors" | grep -q "anoswin.config" && ok || bad "generic safetensors listing"
"$bin" info --checkpoint "$d/w.safetensors" --config embed_dim=48 > /dev/null 2>"$d/err"; rc=$?
[ $rc = 1 ] && [ "$(wc -l < "$d/err")" = 1 ] && grep -q "w.safetensors.*pos_embed" "$d/err" && ok || bad "mismatched config: rc $rc $(cat "$d/err")"
head -c 1000 "$d/w.safetensors" > "$d/trunc.safetensors"
"$bin" info --checkpoint "$d/w.safetensors" --method vae > /dev/null 2>"$d/err"; rc=$?
[ $rc = 1 ] && grep -q "w.safetensors: a checkpoint of method swinmae, not vae" "$d/err" && ok || bad "--method against the checkpoint's: rc $rc"
"$bin" info --checkpoint "$d/trunc.safetensors" > /dev/null 2>"$d/err"; rc=$?
[ $rc = 1 ] && grep -q "trunc.safetensors" "$d/err" && ok || bad "truncated checkpoint: rc $rc $(cat "$d/err")"
"$bin" info --model --config img_size=100 > /dev/null 2>"$d/err"; rc=$?
[ $rc = 1 ] && grep -q "img_size" "$d/err" && ok || bad "bad config: rc $rc"
"$bin" info --model --config > /dev/null 2>&1; rc=$?
[ $rc = 2 ] && ok || bad "--config without value: rc $rc"
"$bin" info --model x.nii > /dev/null 2>&1; rc=$?
[ $rc = 2 ] && ok || bad "--model with a file: rc $rc"

finish && [ "$pass" -gt 0 ]
