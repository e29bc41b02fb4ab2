// UMAP (McInnes, Healy & Melville 2018) in C, following umap-learn's code path for a small
// euclidean data set step by step, so that each step can be checked against it:
//   1. exact k nearest neighbours (each point first, at distance 0), brute force with a GEMM;
//   2. smooth_knn_dist: per point rho (distance to the nearest non-identical neighbour) and sigma
//      (binary search so that sum_j exp(-(d_j - rho) / sigma) = log2 k);
//   3. membership strengths exp(-(d - rho) / sigma) and their fuzzy union A + A' - A o A';
//   4. the layout: spectral initialisation (normalised-Laplacian eigenvectors; disconnected
//      graphs laid out per component around axis points, as umap's multi_component_layout) or
//      uniform random, then umap's SGD: every edge sampled in proportion to its weight, attraction
//      along it, negative_sample_rate repulsions from random points, learning rate decaying
//      linearly, the low-dimensional similarity 1 / (1 + a d^2b) with (a, b) fitted to min_dist
//      and spread like umap's find_ab_params.
// A run is a pure function of the data, the parameters and the seed: the SGD is sequential, the
// k-NN search parallel over rows only, so the thread count does not change the result.
// Departures from umap-learn: the SGD draws negative samples from one xoshiro stream (umap: one
// tau-rand state per vertex), the spectral eigenvectors come from subspace iteration (umap:
// ARPACK), more than 2*dim components are placed by the PCA of their centroids (umap: a spectral
// embedding of the centroids).
#ifndef ANOSWIN_LATENT_UMAP_H
#define ANOSWIN_LATENT_UMAP_H

#include <stdint.h>

enum { UMAP_INIT_SPECTRAL = 0, UMAP_INIT_RANDOM = 1 };

typedef struct umap_params {
    int n_neighbors;             // k, counting the point itself (umap-learn's convention); 15
    int dim;                     // embedding dimension; 2
    int n_epochs;                // 0: 500 up to 10,000 points, else 200 (umap-learn's defaults)
    float min_dist, spread;      // 0.1, 1.0
    float negative_sample_rate;  // 5
    float repulsion;             // gamma, 1
    float learning_rate;         // 1
    int init;                    // UMAP_INIT_SPECTRAL
    uint64_t seed;               // 0
    int verbose;                 // progress on stderr
} umap_params;

void umap_params_default(umap_params *p);

// Symmetric sparse graph, rows sorted by column.
typedef struct umap_graph {
    int n, nnz;
    int *row_ptr;  // n + 1
    int *col;      // nnz
    float *val;    // nnz
} umap_graph;
void umap_graph_free(umap_graph *g);

// Exact k-NN of the rows of X (n, d): idx/dist (n, k), row i starts with i itself at distance 0,
// then the others by increasing euclidean distance (ties by index). Distances are exact (double
// arithmetic on the candidates a float GEMM preselects). k <= n.
void umap_knn(const float *X, int n, int d, int k, int *idx, float *dist);
// umap-learn's smooth_knn_dist (local_connectivity 1, bandwidth 1, 64 bisection steps).
void umap_smooth_knn_dist(const float *dist, int n, int k, float *sigma, float *rho);
// umap-learn's fuzzy_simplicial_set from a k-NN graph (set_op_mix_ratio 1: the fuzzy union).
// sigma/rho may be NULL.
void umap_fuzzy_simplicial_set(const int *idx, const float *dist, int n, int k, umap_graph *g, float *sigma,
                               float *rho);
// umap-learn's find_ab_params: least-squares fit of 1 / (1 + a x^2b) to 1 below min_dist and
// exp(-(x - min_dist) / spread) above, on 300 points of [0, 3 spread] (Levenberg-Marquardt from
// a = b = 1, like scipy's curve_fit).
void umap_find_ab(float spread, float min_dist, float *a, float *b);
// The initial layout of a graph (before the SGD): spectral or random per p->init, in [0, 10]
// per coordinate. X (n, d) places disconnected components. Y (n, p->dim).
void umap_init_layout(const umap_graph *g, const float *X, int d, const umap_params *p, float *Y);
// umap-learn's optimize_layout_euclidean on the graph (edges below max/n_epochs dropped first),
// from Y as given.
void umap_optimize(const umap_graph *g, const umap_params *p, float *Y);

// The whole embedding: X (n, d) -> Y (n, p->dim). Returns 0, or -1 with an error (n < 2,
// n_neighbors outside 2..n, dim < 1, non-finite input).
int umap_embed(const float *X, int n, int d, const umap_params *p, float *Y);

#endif
