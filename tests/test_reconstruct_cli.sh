#!/bin/bash
# anoswin reconstruct on a tiny random checkpoint: a PNG slice under a PNG mask equals the PyTorch
# reference model's reconstruction (tokens masked only when their whole patch is covered), with
# and without --paste; a volume under a native-grid NIfTI mask comes back on the input's grid;
# wrong sizes and channels are refused naming the file; usage errors exit 2.
set -u
bin=${ANOSWIN_BIN:?}
src=${ANOSWIN_SOURCE_DIR:?}
py=${ANOSWIN_PYTHON:-/usr/bin/python3}
tmp=scratch_reconstruct_cli
rm -rf "$tmp" && mkdir -p "$tmp"
. "$(dirname "$0")/helpers/cli.sh"
chk="$src/tools/detect_check.py"
TINY="img_size=64,patch_size=4,in_chans=3,embed_dim=16,depths=1/1/1/1,num_heads=1/1/2/2,window=2,mlp_ratio=2"
succeeds "checkpoint" "$py" "$chk" ckpt "$tmp/tiny.safetensors" --config "$TINY" --seed 3
succeeds "1-channel checkpoint" "$py" "$chk" ckpt "$tmp/one.safetensors" --config "$TINY,in_chans=1" --seed 4
succeeds "5-channel checkpoint" "$py" "$chk" ckpt "$tmp/five.safetensors" --config "$TINY,in_chans=5"
succeeds "inputs" "$py" "$chk" recon_inputs "$tmp" 64
r=("$bin" reconstruct --threads 2)
expect 0 "" "png" "${r[@]}" --checkpoint "$tmp/tiny.safetensors" --mask "$tmp/mask.png" --out "$tmp/rec.png" "$tmp/slice.png"
grep -q "masked-token MSE" "$tmp/out" && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL: no loss printed"; }
succeeds "png equals PyTorch" "$py" "$chk" recon "$tmp/tiny.safetensors" "$tmp" "$tmp/rec.png"
expect 0 "" "png --paste" "${r[@]}" --checkpoint "$tmp/tiny.safetensors" --mask "$tmp/mask.png" --out "$tmp/recp.png" \
  --paste "$tmp/slice.png"
succeeds "png --paste equals PyTorch" "$py" "$chk" recon "$tmp/tiny.safetensors" "$tmp" "$tmp/recp.png" --paste
expect 0 "" "png, 1-channel model" "${r[@]}" --checkpoint "$tmp/one.safetensors" --mask "$tmp/mask.png" --out "$tmp/rec1.png" "$tmp/slice.png"
succeeds "1-channel equals PyTorch" "$py" "$chk" recon "$tmp/one.safetensors" "$tmp" "$tmp/rec1.png"

# a volume under its lesion label (native grid)
succeeds "synth" "$bin" data synth --out "$tmp/syn" --healthy 0 --test 1 --modality t2 --threads 2
img="$tmp/syn/test/test_000/test_000_t2.nii.gz" seg="$tmp/syn/test/test_000/test_000_seg.nii.gz"
expect 0 "" "volume" "${r[@]}" --checkpoint "$tmp/tiny.safetensors" --mask "$seg" --out "$tmp/rec.nii.gz" \
  --z-first 70 --z-last 75 "$img"
succeeds "volume on the input's grid" "$py" -c "
import nibabel as nib, numpy as np, sys
a, b = nib.load('$img'), nib.load('$tmp/rec.nii.gz')
assert a.shape == b.shape, (a.shape, b.shape)
assert np.allclose(a.affine, b.affine, atol=1e-4)
d = np.asarray(b.dataobj)
assert np.isfinite(d).all() and d.dtype == np.float32
c = np.asarray(nib.as_closest_canonical(b).dataobj)
assert np.abs(c[:, :, :70]).max() == 0 and np.abs(c[:, :, 76:]).max() == 0 and np.abs(c[:, :, 70:76]).max() > 0
"
expect 0 "" "volume, PNG mask on every slice" "${r[@]}" --checkpoint "$tmp/tiny.safetensors" --mask "$tmp/mask.png" \
  --out "$tmp/rec2.nii.gz" --z-first 70 --z-last 71 "$img"

# refusals
mkdir -p "$tmp/big" && "$py" "$chk" recon_inputs "$tmp/big" 128
expect 1 "slice.png.*128x128" "png of the wrong size" "${r[@]}" --checkpoint "$tmp/tiny.safetensors" --mask "$tmp/mask.png" \
  --out "$tmp/x.png" "$tmp/big/slice.png"
expect 1 "mask.png.*128x128" "mask of the wrong size" "${r[@]}" --checkpoint "$tmp/tiny.safetensors" \
  --mask "$tmp/big/mask.png" --out "$tmp/x.png" "$tmp/slice.png"
expect 1 "five.safetensors.*channels" "5 channels refused" "${r[@]}" --checkpoint "$tmp/five.safetensors" \
  --mask "$tmp/mask.png" --out "$tmp/x.png" "$tmp/slice.png"
expect 1 "nothing.png" "missing input named" "${r[@]}" --checkpoint "$tmp/tiny.safetensors" --mask "$tmp/mask.png" \
  --out "$tmp/x.png" "$tmp/nothing.png"
[ ! -e "$tmp/x.png" ] && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL: refused run wrote output"; }
expect 2 "required" "no mask" "${r[@]}" --checkpoint "$tmp/tiny.safetensors" --out "$tmp/x.png" "$tmp/slice.png"
expect 2 "PNG" "png in, nifti out" "${r[@]}" --checkpoint "$tmp/tiny.safetensors" --mask "$tmp/mask.png" \
  --out "$tmp/x.nii.gz" "$tmp/slice.png"
expect 0 "" "help" "$bin" reconstruct --help

finish
