// Tensor-product uniform B-splines on a 3-D image grid, and their scattered-data fit (Lee,
// Wolberg and Shin 1997, as ITK's BSplineScatteredDataPointSetToImageFilter does it with one
// level per call): what N4 (prep/n4.c) fits to its residual each iteration.
//
// Parametrisation (ITK's): along an axis with n voxels, a lattice of ncp = spans + order control
// points, voxel coordinate x in [0, n-1] maps to u = x * spans / (n-1) in [0, spans]; control
// point k weighs B(u - k + (order-1)/2), B the centred B-spline of that order, i.e. the
// scipy.interpolate.BSpline of degree `order` on the integer knots -order .. ncp. Samples need
// not be voxel centres of the full grid: N4 fits at the voxels of a shrunk grid, placed at their
// full-resolution coordinates, and evaluates the same lattice at every full-resolution voxel.
//
// Lattices and sampled volumes are x fastest: c[i + ncp[0]*(j + ncp[1]*k)].
#ifndef ANOSWIN_PREP_BSPLINE_H
#define ANOSWIN_PREP_BSPLINE_H

#include <stdint.h>

enum { BSPLINE_MAX_ORDER = 5 };

typedef struct bspline_lattice {
    int order;   // spline degree (1..BSPLINE_MAX_ORDER)
    int ncp[3];  // control points along x, y, z: mesh elements + order
    double *c;   // ncp[0]*ncp[1]*ncp[2] coefficients
} bspline_lattice;

// One axis' samples: which control points each sample sees, with what weights. Built once per
// (sample positions, lattice size) and reused for every evaluation and fit.
typedef struct bspline_axis {
    int n, ncp, order;
    int *first;      // (n) first control point of sample i; it sees first[i] .. first[i]+order
    double *w;       // (n, order+1) basis weights (they sum to 1)
    int *lo, *hi;    // (ncp) samples lo[c] .. hi[c]-1 see control point c (first[] is sorted)
} bspline_axis;

// Zero lattice of (mesh[d] + order) control points per axis.
void bspline_lattice_init(bspline_lattice *L, const int mesh[3], int order);
void bspline_lattice_free(bspline_lattice *L);

// The weights at samples pos[0..n-1] (voxel coordinates, ascending, in [0, extent]) of an axis
// whose full grid has extent+1 voxels (extent 0: a one-voxel axis, every sample at u = 0).
void bspline_axis_init(bspline_axis *a, const double *pos, int n, double extent, int ncp, int order);
void bspline_axis_free(bspline_axis *a);

// out (ax[2].n, ax[1].n, ax[0].n) = the spline at every sample of the grid ax[0] x ax[1] x ax[2].
// OpenMP over output rows; the same result for every thread count.
void bspline_eval(float *out, const bspline_lattice *L, const bspline_axis ax[3]);

// phi = the single-level Lee-Wolberg-Shin approximation of val at the grid's samples where
// mask != 0 (mask NULL: all), unit point weights: for every sample p with weights w_pc,
// delta_c += val_p w_pc^3 / sum_c' w_pc'^2, omega_c += w_pc^2, phi_c = delta_c / omega_c
// (0 where no sample sees c). phi must be initialised (bspline_lattice_init) with the
// axes' lattice size. Computed separably: w_pc and its sum of squares factor over axes.
void bspline_fit(bspline_lattice *phi, const float *val, const uint8_t *mask, const bspline_axis ax[3]);

// out = the same function on a mesh twice as fine along every axis (2*spans + order control
// points): B-spline subdivision. out is allocated here.
void bspline_refine(bspline_lattice *out, const bspline_lattice *in);

#endif
