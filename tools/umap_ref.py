#!/usr/bin/env python3
"""References for the latent analysis (src/latent/): what tests/test_latent_*.c compares with.

  graph X.f32 N D K OUTDIR   exact k-NN by NumPy (float64, stable argsort: ties by index),
                             umap-learn's smooth_knn_dist and compute_membership_strengths
                             transcribed in NumPy, the fuzzy union A + A' - A o A' with
                             scipy.sparse exactly as umap-learn's fuzzy_simplicial_set builds it;
                             and pynndescent's NNDescent graph (umap-learn's own k-NN search).
                             Writes knn_idx.i64, knn_dist.f32, sigma.f32, rho.f32,
                             union.f32 (dense N x N), pynn_idx.i64, pynn_dist.f32.
  ab SPREAD MIN_DIST         umap-learn's find_ab_params (scipy curve_fit): prints "a b".
  data NAME OUTDIR           a data set with known clusters: X.f32, labels.i64, shape.txt
                             ("digits": scikit-learn's 8x8 digits, 1797 x 64, 10 classes;
                             "blobs": 3 far-apart Gaussian blobs, 300 x 20: a disconnected graph).
  trust X.f32 N D DIM Y.f32...
                             trustworthiness (scikit-learn, 5 neighbours) of each Y, then of
                             scikit-learn's t-SNE of X (seed 0, PCA start), one per line.
"""
import os
import sys

import numpy as np

SMOOTH_K_TOLERANCE = 1e-5
MIN_K_DIST_SCALE = 1e-3


def read_f32(path, shape):
    return np.fromfile(path, dtype="<f4").reshape(shape)


def smooth_knn_dist(distances, k, n_iter=64):
    # umap-learn 0.5 umap_.py smooth_knn_dist with local_connectivity=1, bandwidth=1.
    target = np.log2(k)
    rho = np.zeros(distances.shape[0], dtype=np.float32)
    result = np.zeros(distances.shape[0], dtype=np.float32)
    mean_distances = np.mean(distances)
    for i in range(distances.shape[0]):
        lo, hi, mid = 0.0, np.inf, 1.0
        ith = distances[i]
        nz = ith[ith > 0.0]
        if nz.shape[0] >= 1:
            rho[i] = nz[0]
        for _ in range(n_iter):
            d = distances[i, 1:].astype(np.float64) - rho[i]
            psum = np.sum(np.where(d > 0, np.exp(-(np.maximum(d, 0) / mid)), 1.0))
            if abs(psum - target) < SMOOTH_K_TOLERANCE:
                break
            if psum > target:
                hi = mid
                mid = (lo + hi) / 2.0
            else:
                lo = mid
                mid = mid * 2 if hi == np.inf else (lo + hi) / 2.0
        result[i] = mid
        if rho[i] > 0.0:
            result[i] = max(result[i], MIN_K_DIST_SCALE * np.mean(ith))
        else:
            result[i] = max(result[i], MIN_K_DIST_SCALE * mean_distances)
    return result, rho


def graph(xpath, n, d, k, out):
    import scipy.sparse
    from pynndescent import NNDescent

    X = read_f32(xpath, (n, d))
    X64 = X.astype(np.float64)
    nrm = np.sum(X64 * X64, axis=1)
    sq = np.maximum(nrm[:, None] + nrm[None, :] - 2.0 * (X64 @ X64.T), 0.0)
    np.fill_diagonal(sq, -1.0)  # the point itself first
    idx = np.argsort(sq, axis=1, kind="stable")[:, :k]
    dist = np.sqrt(np.maximum(np.take_along_axis(sq, idx, axis=1), 0.0)).astype(np.float32)
    sigma, rho = smooth_knn_dist(dist, float(k))
    rows = np.repeat(np.arange(n), k)
    cols = idx.ravel()
    dd = dist.astype(np.float64) - rho[:, None]
    vals = np.where((dd <= 0) | (sigma[:, None] == 0), 1.0, np.exp(-np.maximum(dd, 0) / sigma[:, None]))
    vals[idx == np.arange(n)[:, None]] = 0.0
    A = scipy.sparse.coo_matrix((vals.ravel(), (rows, cols)), shape=(n, n)).tocsr()
    A.eliminate_zeros()
    At = A.transpose()
    U = A + At - A.multiply(At)
    os.makedirs(out, exist_ok=True)
    idx.astype("<i8").tofile(os.path.join(out, "knn_idx.i64"))
    dist.astype("<f4").tofile(os.path.join(out, "knn_dist.f32"))
    sigma.astype("<f4").tofile(os.path.join(out, "sigma.f32"))
    rho.astype("<f4").tofile(os.path.join(out, "rho.f32"))
    U.toarray().astype("<f4").tofile(os.path.join(out, "union.f32"))
    nnd = NNDescent(X, n_neighbors=k, random_state=0, n_jobs=1)
    pidx, pdist = nnd.neighbor_graph
    pidx.astype("<i8").tofile(os.path.join(out, "pynn_idx.i64"))
    pdist.astype("<f4").tofile(os.path.join(out, "pynn_dist.f32"))


def ab(spread, min_dist):
    from scipy.optimize import curve_fit

    def curve(x, a, b):
        return 1.0 / (1.0 + a * x ** (2 * b))

    xv = np.linspace(0, spread * 3, 300)
    yv = np.zeros(xv.shape)
    yv[xv < min_dist] = 1.0
    yv[xv >= min_dist] = np.exp(-(xv[xv >= min_dist] - min_dist) / spread)
    params, _ = curve_fit(curve, xv, yv)
    print("%.9g %.9g" % (params[0], params[1]))


def data(name, out):
    os.makedirs(out, exist_ok=True)
    if name == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
    elif name == "blobs":
        rng = np.random.default_rng(7)
        centres = rng.normal(size=(3, 20)) * 100.0
        y = np.repeat(np.arange(3), 100)
        X = centres[y] + rng.normal(size=(300, 20))
    else:
        sys.exit("umap_ref.py: unknown data set " + name)
    X.astype("<f4").tofile(os.path.join(out, "X.f32"))
    y.astype("<i8").tofile(os.path.join(out, "labels.i64"))
    with open(os.path.join(out, "shape.txt"), "w") as f:
        f.write("%d %d\n" % X.shape)


def trust(xpath, n, d, dim, ypaths):
    from sklearn.manifold import TSNE, trustworthiness

    X = read_f32(xpath, (n, d)).astype(np.float64)
    for yp in ypaths:
        Y = read_f32(yp, (n, dim)).astype(np.float64)
        print("%.6f" % trustworthiness(X, Y, n_neighbors=5))
    T = TSNE(n_components=dim, random_state=0, init="pca", learning_rate="auto").fit_transform(X)
    print("%.6f" % trustworthiness(X, T, n_neighbors=5))


def main():
    a = sys.argv[1:]
    if not a:
        sys.exit(__doc__)
    if a[0] == "graph":
        graph(a[1], int(a[2]), int(a[3]), int(a[4]), a[5])
    elif a[0] == "ab":
        ab(float(a[1]), float(a[2]))
    elif a[0] == "data":
        data(a[1], a[2])
    elif a[0] == "trust":
        trust(a[1], int(a[2]), int(a[3]), int(a[4]), a[5:])
    else:
        sys.exit("umap_ref.py: unknown command " + a[0])


if __name__ == "__main__":
    main()
