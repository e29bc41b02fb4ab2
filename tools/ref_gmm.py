"""Reference Gaussian mixture / k-means for tests/test_detect_segment.c (scikit-learn).

Usage: ref_gmm.py DIR K MAX_ITER TOL REG_COVAR KMEANS_MAX_ITER
Reads DIR/x.f32 (float32 samples), DIR/init.txt (K weights, K means, K variances, K k-means
centres, one number a line). Writes DIR/ref.txt with lines:
  weights..., means..., variances..., lower_bound, score, n_iter      (GaussianMixture)
  kmeans centres..., kmeans n_iter                                     (KMeans)
and DIR/kmeans_labels.f32.
GaussianMixture: covariance_type='full' (with one feature = 'diag' = 'spherical'), started from
weights_init/means_init/precisions_init = 1/var, so no randomness is involved.
KMeans: init = the given centres, n_init=1, tol=0 (stop when no label changes), algorithm='lloyd'.
Samples are converted to float64 so that sklearn computes in double like the C code.
"""
import sys
import os
import warnings
import numpy as np
from sklearn.mixture import GaussianMixture
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning


def main():
    d = sys.argv[1]
    k, max_iter = int(sys.argv[2]), int(sys.argv[3])
    tol, reg = float(sys.argv[4]), float(sys.argv[5])
    km_iter = int(sys.argv[6])
    x = np.fromfile(os.path.join(d, "x.f32"), "<f4").astype(np.float64).reshape(-1, 1)
    init = np.loadtxt(os.path.join(d, "init.txt"))
    w0, m0, v0, c0 = init[:k], init[k:2 * k], init[2 * k:3 * k], init[3 * k:4 * k]
    warnings.simplefilter("ignore", ConvergenceWarning)
    gm = GaussianMixture(n_components=k, covariance_type="full", tol=tol, reg_covar=reg, max_iter=max_iter,
                         n_init=1, init_params="random", weights_init=w0, means_init=m0.reshape(k, 1),
                         precisions_init=(1.0 / v0).reshape(k, 1, 1), random_state=0)
    gm.fit(x)
    km = KMeans(n_clusters=k, init=c0.reshape(k, 1), n_init=1, tol=0.0, max_iter=km_iter, algorithm="lloyd")
    km.fit(x)
    vals = list(gm.weights_) + list(gm.means_[:, 0]) + list(gm.covariances_[:, 0, 0]) + \
        [gm.lower_bound_, gm.score(x), gm.n_iter_] + list(km.cluster_centers_[:, 0]) + [km.n_iter_]
    with open(os.path.join(d, "ref.txt"), "w") as f:
        for v in vals:
            f.write(repr(float(v)) + "\n")
    km.labels_.astype("<f4").tofile(os.path.join(d, "kmeans_labels.f32"))


if __name__ == "__main__":
    main()
