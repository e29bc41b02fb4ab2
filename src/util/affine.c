#include "util/affine.h"

#include <math.h>
#include <string.h>

void affine_identity(double m[4][4]) {
    memset(m, 0, 16 * sizeof(double));
    for (int i = 0; i < 4; i++) m[i][i] = 1;
}

void affine_mul(double out[4][4], const double a[4][4], const double b[4][4]) {
    double r[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            double s = 0;
            for (int k = 0; k < 4; k++) s += a[i][k] * b[k][j];
            r[i][j] = s;
        }
    memcpy(out, r, sizeof r);
}

double affine_det3(const double m[4][4]) {
    return m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
           m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
}

int affine_invert(double out[4][4], const double m[4][4]) {
    double det = affine_det3(m);
    if (!(fabs(det) >= 1e-12)) return -1;
    double r[4][4] = {{0}};
    // adjugate of the 3x3 part over the determinant
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            int i1 = (j + 1) % 3, i2 = (j + 2) % 3, j1 = (i + 1) % 3, j2 = (i + 2) % 3;
            r[i][j] = (m[i1][j1] * m[i2][j2] - m[i1][j2] * m[i2][j1]) / det;
        }
    for (int i = 0; i < 3; i++) r[i][3] = -(r[i][0] * m[0][3] + r[i][1] * m[1][3] + r[i][2] * m[2][3]);
    r[3][3] = 1;
    memcpy(out, r, sizeof r);
    return 0;
}

void affine_apply(double y[3], const double m[4][4], const double x[3]) {
    double r[3];
    for (int i = 0; i < 3; i++) r[i] = m[i][0] * x[0] + m[i][1] * x[1] + m[i][2] * x[2] + m[i][3];
    y[0] = r[0], y[1] = r[1], y[2] = r[2];
}
