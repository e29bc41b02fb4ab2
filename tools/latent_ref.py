#!/usr/bin/env python3
"""References for the latent analysis (src/latent/latent.c, separation.c), what tests compare with.

  encode CKPT IMG.f32 MASK.u8 B OUT.f32
        the PyTorch reference Swin MAE's (tools/swin_mae_ref.py) forward_encoder of B images
        (B, in_chans, S, S) under token masks (B, L) uint8, averaged over the bottleneck tokens:
        OUT (B, 8C).
  encode-vae CKPT IMG.f32 MASK.u8 B OUT.f32
        the PyTorch VAE's (tools/vae_ref.py, float64, evaluation) mu of B images whose hidden
        tokens' pixels are set to 0: OUT (B, z_dim).
  separation X.f32 N D LABELS.i32 K ASSIGN.i32 KM_ASSIGN.i32 SUBJECTS.i32
        scikit-learn on X (N, D) with labels: prints silhouette_score, the leave-one-out K-NN
        accuracy (ties by index, majority vote, ties to the smaller label), adjusted_rand_score of
        ASSIGN vs labels, the inertia of KM_ASSIGN (our 2-means) and of KMeans(2, n_init=10), the
        leave-one-subject-out K-NN accuracy, and the covariance ellipse (centre, sds, angle) of
        cluster 0 of KM_ASSIGN when D = 2.
  pca X.f32 N D K OUT.f32
        the scores (N, K) on the first K principal axes of the centred X by numpy.linalg.svd, each
        axis signed so that its largest loading is positive.
  check OUTDIR
        anoswin latent's outputs agree with each other and with scikit-learn: latents.npy =
        latents.csv, embedding.npy = embedding.csv, the JSON's silhouettes, k-NN accuracies and
        k-means numbers recomputed from the written latents and embedding.
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def fail(msg):
    print("latent_ref.py: FAIL: " + msg)
    sys.exit(1)


def encode(ckpt, img_path, mask_path, B, out):
    import torch
    import safetensors_io
    import swin_mae_ref as R

    sd, meta = safetensors_io.load_file(ckpt)
    cfg = R.parse_config(meta["anoswin.config"])
    model = R.SwinMAE(cfg)
    model.load_state_dict(sd, strict=True)
    model.eval()
    R.set_drop_path(model, False)
    S, C, P = cfg["img_size"], cfg["in_chans"], cfg["patch_size"]
    L = (S // P) ** 2
    x = torch.from_numpy(np.fromfile(img_path, dtype="<f4").reshape(B, C, S, S))
    m = torch.from_numpy(np.fromfile(mask_path, dtype=np.uint8).reshape(B, L).astype(np.float32))
    with torch.no_grad():
        z = model.forward_encoder(x, m)  # (B, R, R, 8C)
    z.mean(dim=(1, 2)).numpy().astype("<f4").tofile(out)


def encode_vae(ckpt, img_path, mask_path, B, out):
    import torch
    from safetensors_io import load_file
    import vae_ref

    tensors, meta = load_file(ckpt)
    cfg = json.loads(meta["anoswin.config"])
    m = vae_ref.VAE(**cfg).double()
    m.load_state_dict({k: (v.double() if v.is_floating_point() else v) for k, v in tensors.items()}, strict=True)
    m.eval()
    S, C, P = cfg["img_size"], cfg["in_chans"], cfg["patch_size"]
    G = S // P
    x = np.fromfile(img_path, dtype="<f4").astype(np.float64).reshape(B, C, S, S)
    tok = np.fromfile(mask_path, dtype=np.uint8).reshape(B, G, G).astype(bool)
    pix = np.repeat(np.repeat(tok, P, axis=1), P, axis=2)
    x = np.where(pix[:, None], 0.0, x)
    with torch.no_grad():
        _, mu, _ = m(torch.from_numpy(x))
    mu.numpy().astype("<f4").tofile(out)


def knn_accuracy(X, lab, k, subj=None):
    """Leave-one-out (with subj: leave-one-subject-out) k-NN accuracy; ties to the smaller label."""
    X = X.astype(np.float64)
    n = X.shape[0]
    d2 = np.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=2)
    np.fill_diagonal(d2, np.inf)
    if subj is not None:
        d2[subj[:, None] == subj[None, :]] = np.inf
    k = min(k, n - 1)
    order = np.argsort(d2, axis=1, kind="stable")[:, :k]
    ok = np.take_along_axis(d2, order, axis=1) < np.inf
    votes = np.stack([np.sum((lab[order] == c) & ok, axis=1) for c in range(lab.max() + 1)], axis=1)
    counted = ok.any(axis=1)
    return float(np.mean((np.argmax(votes, axis=1) == lab)[counted]))


def ellipse(Y, sel):
    P = Y[sel].astype(np.float64)
    c = P.mean(axis=0)
    w, v = np.linalg.eigh(np.cov(P.T))
    a = np.arctan2(v[1, 1], v[0, 1])  # the larger eigenvalue's axis
    a = (a + np.pi / 2) % np.pi - np.pi / 2
    return c, np.sqrt(np.maximum(w[::-1], 0)), a


def inertia(X, a):
    X = X.astype(np.float64)
    return float(sum(np.sum((X[a == c] - X[a == c].mean(axis=0)) ** 2) for c in np.unique(a)))


def separation(xp, n, d, lp, k, ap, kp, sp):
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, silhouette_score

    X = np.fromfile(xp, dtype="<f4").reshape(n, d)
    lab = np.fromfile(lp, dtype="<i4")
    asg = np.fromfile(ap, dtype="<i4")
    km = np.fromfile(kp, dtype="<i4")
    sk = KMeans(n_clusters=2, n_init=10, random_state=0).fit(X.astype(np.float64))
    subj = np.fromfile(sp, dtype="<i4")
    vals = [silhouette_score(X.astype(np.float64), lab), knn_accuracy(X, lab, k), adjusted_rand_score(lab, asg),
            inertia(X, km), sk.inertia_, knn_accuracy(X, lab, k, subj)]
    if d == 2:
        c, sd, a = ellipse(X, km == 0)
        vals += [c[0], c[1], sd[0], sd[1], a]
    print(" ".join("%.9g" % v for v in vals))


def pca(xp, n, d, k, out):
    X = np.fromfile(xp, dtype="<f4").reshape(n, d).astype(np.float64)
    Xc = X - X.mean(axis=0)
    _, _, vt = np.linalg.svd(Xc, full_matrices=False)
    V = vt[:k].T
    for t in range(k):
        if V[np.argmax(np.abs(V[:, t])), t] < 0:
            V[:, t] = -V[:, t]
    (Xc @ V).astype("<f4").tofile(out)


def check(out):
    from sklearn.metrics import adjusted_rand_score, silhouette_score
    import csv

    js = json.load(open(os.path.join(out, "latent.json")))
    nh, nl, D = js["healthy_slices"], js["lesion_slices"], js["latent_dim"]
    n = nh + nl
    lat = np.load(os.path.join(out, "latents.npy"))
    emb = np.load(os.path.join(out, "embedding.npy"))
    if lat.shape != (n + nl, D) or emb.shape != (2, n, 2):
        fail("shapes %s %s for %d healthy + %d lesion slices, %d-D" % (lat.shape, emb.shape, nh, nl, D))
    rows = list(csv.DictReader(open(os.path.join(out, "latents.csv"))))
    if len(rows) != n + nl:
        fail("latents.csv has %d rows, want %d" % (len(rows), n + nl))
    lc = np.array([[float(r["l%d" % j]) for j in range(D)] for r in rows])
    if not np.allclose(lc, lat, rtol=1e-6, atol=1e-7):
        fail("latents.csv differs from latents.npy")
    lab = np.array([r["group"] == "lesion" for r in rows[:n]], dtype=int)
    if lab.sum() != nl or any(r["masked"] != "1" or r["group"] != "lesion" for r in rows[n:]):
        fail("latents.csv groups/masked columns")
    erows = list(csv.DictReader(open(os.path.join(out, "embedding.csv"))))
    ec = np.array([[float(r["x"]), float(r["y"])] for r in erows]).reshape(2, n, 2)
    if not np.allclose(ec, emb, rtol=1e-6, atol=1e-6):
        fail("embedding.csv differs from embedding.npy")
    k = js["knn_k"]
    keys = [(r["group"], r["subject"]) for r in rows[:n]]
    scan = np.array([sorted(set(keys)).index(key) for key in keys])
    for p, name in enumerate(["unmasked", "masked"]):
        X = lat[:n].copy()
        if p == 1:
            X[lab == 1] = lat[n:]
        Y = emb[p]
        km = np.array([int(r["cluster"]) for r in erows[p * n:(p + 1) * n]])
        ref = {
            "silhouette_latent": silhouette_score(X.astype(np.float64), lab),
            "silhouette_2d": silhouette_score(Y.astype(np.float64), lab),
            "knn_accuracy_latent": knn_accuracy(X, lab, k, scan),
            "knn_accuracy_2d": knn_accuracy(Y, lab, k, scan),
            "kmeans_ari": adjusted_rand_score(lab, km),
            "kmeans_accuracy": max(np.mean(km == lab), np.mean(km != lab)),
        }
        got = js["panels"][name]
        for key, v in ref.items():
            if abs(got[key] - v) > 1e-4:
                fail("%s %s: %.6f, scikit-learn/NumPy %.6f" % (name, key, got[key], v))
        print("%s: %s" % (name, " ".join("%s %.4f" % (k2, v) for k2, v in ref.items())))
    print("outputs consistent with scikit-learn")


def main():
    a = sys.argv[1:]
    if not a:
        sys.exit(__doc__)
    if a[0] == "encode":
        encode(a[1], a[2], a[3], int(a[4]), a[5])
    elif a[0] == "encode-vae":
        encode_vae(a[1], a[2], a[3], int(a[4]), a[5])
    elif a[0] == "separation":
        separation(a[1], int(a[2]), int(a[3]), a[4], int(a[5]), a[6], a[7], a[8])
    elif a[0] == "pca":
        pca(a[1], int(a[2]), int(a[3]), int(a[4]), a[5])
    elif a[0] == "check":
        check(a[1])
    else:
        sys.exit("latent_ref.py: unknown command " + a[0])


if __name__ == "__main__":
    main()
