#!/bin/bash
# anoswin latent on synthetic scans and a tiny random checkpoint: the outputs agree with each other
# and with scikit-learn (silhouettes, k-NN accuracies, k-means agreement recomputed from the
# written latents and embedding: tools/latent_ref.py check), for UMAP and PCA; a run is
# reproducible (same seed: the same bytes, with 1 or 2 threads); --healthy/--lesion give the
# same analysis as one data set's healthy split; bad input is refused naming the file, with
# nothing written; usage errors exit 2.
set -u
bin=${ANOSWIN_BIN:?}
src=${ANOSWIN_SOURCE_DIR:?}
py=${ANOSWIN_PYTHON:-/usr/bin/python3}
tmp=scratch_latent_cli
rm -rf "$tmp" && mkdir -p "$tmp"
. "$(dirname "$0")/helpers/cli.sh"
ref="$src/tools/latent_ref.py"
TINY="img_size=64,patch_size=4,in_chans=1,embed_dim=16,depths=1/1/1/1,num_heads=1/1/2/2,window=2,mlp_ratio=2"
succeeds "checkpoint" "$py" "$src/tools/detect_check.py" ckpt "$tmp/tiny.safetensors" --config "$TINY" --seed 3
succeeds "synth" "$bin" data synth --out "$tmp/syn" --healthy 2 --test 2 --modality t2 --threads 2
l=("$bin" latent --checkpoint "$tmp/tiny.safetensors" --z-first 70 --z-last 89 --epochs 100)

expect 0 "" "latent, one data set" "${l[@]}" --data "$tmp/syn" --out "$tmp/a" --threads 1
check "table printed" "grep -q '^unmasked ' '$tmp/out' && grep -q '^masked ' '$tmp/out' && grep -q '40 healthy slices (2 scans)' '$tmp/out'"
check "progress on stderr" "grep -q 'latent' '$tmp/err'"
for f in latent.png latent.svg latent.json latents.npy latents.csv embedding.npy embedding.csv; do
  check "wrote $f" "[ -s '$tmp/a/$f' ]"
done
succeeds "outputs vs scikit-learn" "$py" "$ref" check "$tmp/a"
succeeds "png decodes, two panels" "$py" -c "
import sys; sys.path.insert(0, '$src/tools')
import png_decode
px, info = png_decode.decode('$tmp/a/latent.png')[:2]
assert px.shape[0] == 480 and px.shape[1] == 968, px.shape
"
succeeds "svg: one circle per slice and panel, titles" "$py" -c "
import json, xml.etree.ElementTree as E
js = json.load(open('$tmp/a/latent.json')); n = js['healthy_slices'] + js['lesion_slices']
t = E.parse('$tmp/a/latent.svg'); ns = '{http://www.w3.org/2000/svg}'
c = [e for e in t.iter(ns + 'circle') if e.get('r') == '2.2']
assert len(c) == 2 * n, (len(c), n)
txt = ' '.join(e.text or '' for e in t.iter(ns + 'text'))
assert '(a) unmasked' in txt and '(b) lesions masked' in txt and 'healthy slices (%d)' % js['healthy_slices'] in txt
"
expect 0 "" "same seed again" "${l[@]}" --data "$tmp/syn" --out "$tmp/b" --threads 1 --quiet
check "the same bytes" "cmp -s '$tmp/a/embedding.npy' '$tmp/b/embedding.npy' && cmp -s '$tmp/a/latents.npy' '$tmp/b/latents.npy'"
check "--quiet: no progress" "[ ! -s '$tmp/err' ]"
# The model's forward rounds differently with 2 threads (its GEMMs split the sums), so the latents
# agree to float precision only; UMAP on equal latents is thread-independent (test_latent_umap).
expect 0 "" "2 threads" "${l[@]}" --data "$tmp/syn" --out "$tmp/t2" --threads 2 --quiet
succeeds "2 threads: the same latents to float precision" "$py" -c "
import numpy as np
a, b = np.load('$tmp/a/latents.npy'), np.load('$tmp/t2/latents.npy')
assert np.allclose(a, b, rtol=1e-5, atol=1e-5), np.abs(a - b).max()
"
expect 0 "" "--healthy and --lesion" "${l[@]}" --healthy "$tmp/syn/healthy" --lesion "$tmp/syn/test" --out "$tmp/c" --threads 1 --quiet
check "the same analysis as the healthy split" "cmp -s '$tmp/a/embedding.npy' '$tmp/c/embedding.npy'"
# detect's masks locate the lesions of unlabelled scans: the labels as masks give the same analysis
mkdir -p "$tmp/pred"
{ echo "subject,image,split"
  for d in "$tmp"/syn/healthy/* "$tmp"/syn/test/*; do
    id=$(basename "$d") split=$(basename "$(dirname "$d")")
    echo "$id,$(realpath "$d/${id}_t2.nii.gz"),$split"
    [ "$split" = test ] && mkdir -p "$tmp/pred/$id" && cp "$d/${id}_seg.nii.gz" "$tmp/pred/$id/mask.nii.gz"
  done; } > "$tmp/unlabelled.csv"
expect 0 "" "--pred" "${l[@]}" --data "$tmp/unlabelled.csv" --pred "$tmp/pred" --out "$tmp/e" --threads 1 --quiet
check "detect's masks as labels: the same analysis" "cmp -s '$tmp/a/embedding.npy' '$tmp/e/embedding.npy'"
expect 1 "lesion slices" "unlabelled without --pred" "${l[@]}" --data "$tmp/unlabelled.csv" --out "$tmp/x"
expect 0 "" "another seed" "${l[@]}" --data "$tmp/syn" --out "$tmp/d" --threads 1 --quiet --seed 4
check "another seed: another embedding" "! cmp -s '$tmp/a/embedding.npy' '$tmp/d/embedding.npy'"
expect 0 "" "pca, 16 px lesion cells" "${l[@]}" --data "$tmp/syn" --out "$tmp/p" --projection pca --mask-size 16 --quiet
succeeds "pca outputs vs scikit-learn" "$py" "$ref" check "$tmp/p"
succeeds "pca = numpy's principal axes" "$py" -c "
import numpy as np, json
js = json.load(open('$tmp/p/latent.json')); n = js['healthy_slices'] + js['lesion_slices']
lat = np.load('$tmp/p/latents.npy').astype(np.float64); emb = np.load('$tmp/p/embedding.npy')
X = lat[:n]; Xc = X - X.mean(0); V = np.linalg.svd(Xc, full_matrices=False)[2][:2].T
V *= np.sign(V[np.argmax(np.abs(V), axis=0), [0, 1]])
assert np.allclose(Xc @ V, emb[0], atol=1e-3 * np.abs(emb[0]).max()), np.abs(Xc @ V - emb[0]).max()
assert js['projection'] == 'pca' and js['mask_size'] == 16
"
check "masked latents differ from unmasked" "$py -c \"
import numpy as np, json
js = json.load(open('$tmp/a/latent.json')); n = js['healthy_slices'] + js['lesion_slices']
lat = np.load('$tmp/a/latents.npy'); assert not np.allclose(lat[js['healthy_slices']:n], lat[n:])\""

# refusals: one line naming the file, nothing written
expect 1 "nothing.safetensors" "missing checkpoint" "$bin" latent --checkpoint "$tmp/nothing.safetensors" --data "$tmp/syn" --out "$tmp/x"
check "nothing written" "[ ! -e '$tmp/x' ]"
expect 1 "lesion slices" "no labelled scans" "${l[@]}" --data "$tmp/syn/healthy" --healthy "$tmp/syn/healthy" --out "$tmp/x"
check "nothing written" "[ ! -e '$tmp/x' ]"
expect 1 "mask-size 6" "mask size off the token grid" "${l[@]}" --data "$tmp/syn" --out "$tmp/x" --mask-size 6
expect 1 "nowhere" "missing data" "${l[@]}" --data "$tmp/nowhere" --out "$tmp/x"
check "nothing written" "[ ! -e '$tmp/x' ]"
expect 2 "checkpoint" "no checkpoint" "$bin" latent --data "$tmp/syn" --out "$tmp/x"
expect 2 "projection" "bad projection" "${l[@]}" --data "$tmp/syn" --out "$tmp/x" --projection tsne
expect 2 "z-last" "range backwards" "${l[@]}" --data "$tmp/syn" --out "$tmp/x" --z-first 80 --z-last 79
expect 0 "" "help" "$bin" latent --help
check "help on stdout" "grep -q 'Usage: anoswin latent' '$tmp/out'"
finish
