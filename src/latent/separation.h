// How well two groups (healthy vs lesion slices) separate in a point cloud, as numbers, so that
// the paper's Figure 3 claim ("two clusters without masking, one with") becomes a measurement:
// silhouette of the group labels, leave-one-out (or -subject-out) k-NN accuracy, and 2-means clustering with each
// cluster's covariance ellipse (the paper's k-means + eigen-decomposition) and its agreement with
// the groups (adjusted Rand index, best-matching accuracy).
#ifndef ANOSWIN_LATENT_SEPARATION_H
#define ANOSWIN_LATENT_SEPARATION_H

#include <stdint.h>

// scikit-learn's silhouette_score (euclidean) of labels (0 .. nl-1) on X (n, d): the mean over
// points of (b - a) / max(a, b), 0 for a point alone in its label. NAN when fewer than 2 labels
// are present.
double sep_silhouette(const float *X, int n, int d, const int *label);
// Leave-one-out k-NN accuracy: each point's label predicted by the majority of its k nearest
// other points (ties: the smallest label), compared with its label. With `subject` (NULL: none)
// the points of the same subject are left out too: neighbouring slices of one scan are near each
// other and share its label, which would credit the scan, not the group; points with no other
// subject's point are not counted (NAN when none counts).
double sep_knn_accuracy(const float *X, int n, int d, const int *label, const int *subject, int k);
// k-means (Lloyd) with k-means++ starts, n_init restarts from the seed, the lowest inertia kept:
// assign (n) in 0..k-1, centres (k, d). Returns the inertia (sum of squared distances).
double sep_kmeans(const float *X, int n, int d, int k, int n_init, uint64_t seed, int *assign, float *centres);
// scikit-learn's adjusted_rand_score of two labelings (labels 0..63).
double sep_adjusted_rand(const int *a, const int *b, int n);
// The 2-D covariance ellipse of the points with assign == c: centre, semi-axes (sd along the
// principal axes) and the angle of the first axis (radians). Returns the point count.
typedef struct sep_ellipse {
    double cx, cy, sd1, sd2, angle;
    int n;
} sep_ellipse;
int sep_ellipse_of(const float *Y, int n, const int *assign, int c, sep_ellipse *e);

#endif
