// Tissue segmentation in the spirit of ANTs Atropos (paper A.1: "Atropos-based multi-class
// segmentation, 5 classes"): 1-D Gaussian mixture on the intensities inside a mask, k-means
// initialisation, EM, and a Potts MRF prior (Atropos' -m [smoothingFactor, radius]).
//
// What is implemented (and how it relates to Atropos' defaults, -i KMeans[K] -c [5,0] -m [0.2,1x1]):
//  * k-means init: centres evenly spaced inside the masked intensity range,
//    min + (max-min)(c+1)/(K+1), Lloyd iterations until no assignment changes, centres sorted
//    ascending so that class 1 is the darkest (Atropos orders classes by intensity too).
//    Deterministic: no random restarts.
//  * Gaussian parameters and mixing proportions start from the hard k-means clusters.
//  * Each iteration: (1) labelling: for every masked voxel i and class k,
//        post_k(i) ∝ pi_k · N(x_i | mu_k, var_k) · exp(beta · sum_{j in N(i)} [l_j == k] / |i-j|)
//    where N(i) is the (2r+1)^d neighbourhood (3x3 or 3x3x3 for r = 1) restricted to the mask,
//    |i-j| the Euclidean voxel distance: this is exactly Atropos' MRF prior
//    (EvaluateMRFNeighborhoodWeights: delta = -1 for a same-label neighbour, divided by the
//    distance, prior = softmax(-beta · weights)). Labels l_i = argmax_k post_k(i) are updated
//    ICM-style and asynchronously: voxels are visited in 2^d (for r = 1) interleaved colour
//    groups so that no two voxels updated together are neighbours, each group seeing the labels
//    the previous groups just chose (Atropos' default asynchronous updating with an ICM code
//    image). ICM on hard labels rather than a mean-field update because that is what Atropos
//    does, and it is deterministic and converges (each update cannot increase the energy for
//    fixed parameters). (2) M-step: pi, mu, var re-estimated from the soft posteriors.
//    Stops after `iterations` or when the mean maximum posterior changes by less than `tol`.
//  * Deliberate difference: Atropos' default "Socrates" posterior drops the mixing proportions
//    pi_k; we keep them, so that with beta = 0 the E-step is exactly a Gaussian mixture's
//    (testable against scikit-learn) and small classes are not over-assigned.
//  * Likelihoods are evaluated in log space (no 1e-10 floor as in Atropos).
#ifndef ANOSWIN_DETECT_SEGMENT_H
#define ANOSWIN_DETECT_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#define GMM_MAX_CLASSES 16

// A 1-D Gaussian mixture.
typedef struct gmm1d {
    int k;
    double weight[GMM_MAX_CLASSES], mean[GMM_MAX_CLASSES], var[GMM_MAX_CLASSES];
} gmm1d;

// Lloyd's k-means on x (n) from the given centres (k, updated in place); stops when no
// assignment changes (sklearn KMeans(init=centres, n_init=1, tol=0, algorithm='lloyd')) or
// after max_iter. Ties go to the lower centre; an empty cluster keeps its centre.
// labels (n, optional) gets the final nearest-centre assignment. Returns the iterations run.
int kmeans1d(double *centres, int *labels, const float *x, size_t n, int k, int max_iter);

// One E-step: resp (n, k) posteriors; returns the mean log-likelihood (sklearn's log_prob_norm).
double gmm1d_estep(double *resp, const gmm1d *g, const float *x, size_t n);
// M-step from responsibilities, exactly as sklearn's _estimate_gaussian_parameters:
// nk = sum resp + 10*DBL_EPSILON, mean = sum resp*x / nk, var = sum resp*(x-mean)^2 / nk + reg_covar,
// weight = nk / sum nk.
void gmm1d_mstep(gmm1d *g, const double *resp, const float *x, size_t n, double reg_covar);
// EM from the parameters in g, with sklearn GaussianMixture's loop: E-step (lower bound =
// mean log-likelihood under the current parameters), M-step, stop when the lower bound changed
// by less than tol, at most max_iter. *lower_bound gets the last E-step's value (sklearn's
// lower_bound_). Returns the number of iterations (n_iter_). resp may be NULL (allocated inside).
int gmm1d_em(gmm1d *g, double *lower_bound, double *resp, const float *x, size_t n, int max_iter, double tol,
             double reg_covar);
// Mean log-likelihood of x under g (sklearn's score).
double gmm1d_score(const gmm1d *g, const float *x, size_t n);

typedef struct atropos_params {
    int classes;       // number of tissue classes (paper: 5), 1..GMM_MAX_CLASSES
    int ndim;          // 2: in-plane MRF neighbourhood (each z-slice's neighbours in-plane), 3: 3-D
    float mrf_beta;    // Atropos smoothing factor (0.2); 0 disables the MRF
    int mrf_radius;    // neighbourhood radius (1: 3x3 / 3x3x3)
    int iterations;    // outer EM/ICM iterations (Atropos default 5)
    double tol;        // convergence on the mean maximum posterior (0: run all iterations)
    int kmeans_iters;  // Lloyd iterations cap (100)
    double reg_covar;  // added to every variance (1e-6)
} atropos_params;

void atropos_defaults(atropos_params *p);

// Segments image (nz, ny, nx) inside mask (non-zero = in; NULL = everywhere) into labels
// (nz, ny, nx): 0 outside the mask, 1..classes inside, ordered by class mean (1 = darkest).
// One model is fitted to all masked voxels of the array. g (optional) gets the final mixture.
// Returns 0, or -1 (as_fail) on invalid parameters. An empty mask gives all zeros; fewer distinct
// intensities than classes leave some classes empty.
int atropos_segment(uint8_t *labels, gmm1d *g, const float *image, const uint8_t *mask, int nx, int ny, int nz,
                    const atropos_params *p);

#endif
