// Small dense linear algebra for the latent analysis (UMAP's spectral start, PCA): double
// precision, row-major tall blocks Q (m, p) with p small.
#ifndef ANOSWIN_LATENT_LINALG_H
#define ANOSWIN_LATENT_LINALG_H

// Columns of Q (m, p) made orthonormal (modified Gram-Schmidt, twice), and orthogonal to the
// unit vector v0 (m) when it is not NULL. A column that vanishes is replaced by a unit vector
// orthogonal to the others.
void linalg_orthonormalize(double *Q, int m, int p, const double *v0);
// H (p, p) = Q' Z for Q, Z (m, p).
void linalg_gram(double *H, const double *Q, const double *Z, int m, int p);
// Eigen-decomposition of the symmetric A (p, p) (cyclic Jacobi; A is destroyed): eigenvalues
// theta descending, eigenvectors as the columns of V (p, p), each with its largest component
// positive (a fixed sign makes results reproducible across builds).
void linalg_sym_eigen(double *A, int p, double *theta, double *V);
// Q (m, p) = Q V for V (p, p).
void linalg_rotate(double *Q, const double *V, int m, int p);
// PCA of the rows of X (n, d): the scores out (n, k) on the first k principal axes (of the
// centred data, largest variance first, each axis signed so its largest loading is positive);
// var (k) gets the variances along them when not NULL. k <= d.
void linalg_pca(const float *X, int n, int d, int k, float *out, double *var);

#endif
