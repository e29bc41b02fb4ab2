#include "data/synth.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data/volume.h"  // volume_read
#include "util/error.h"
#include "util/fs.h"
#include "util/timer.h"

#define NX SYNTH_NX
#define NY SYNTH_NY
#define NZ SYNTH_NZ
#define NVOX ((size_t)NX * NY * NZ)
#define IDX(i, j, k) ((size_t)(i) + (size_t)NX * ((size_t)(j) + (size_t)NY * (size_t)(k)))

void synth_options_default(synth_options *o) {
    memset(o, 0, sizeof *o);
    o->healthy = 20;
    o->test = 10;
    o->seed = 1;
    o->write_t1 = o->write_t2 = 1;
    o->template_path = SYNTH_DEFAULT_TEMPLATE;
    o->gzip_level = 1;
    o->profile = SYNTH_GLIOMA;
}

void lesion_options_default(lesion_options *o) {
    o->min_count = 1;
    o->max_count = 3;
    o->min_radius = 2.5f;
    o->max_radius = 26.0f;
    o->first_min_radius = 15.0f;
    o->kmin = 72;
    o->kmax = 97;
    o->p_in_range = 0.8f;
    o->p_hyper = 0.75;
    o->p_core = 0.35;
    o->p_halo_first = 0.6;
    o->p_halo = 0.3;
}

static float clampf(float x, float lo, float hi) { return x < lo ? lo : x > hi ? hi : x; }

// ---- NIfTI-1 writing (int16 / uint8, gzip level of our choosing) ---------------------------------

static void put_i16(unsigned char *h, int off, int v) {
    int16_t x = (int16_t)v;
    memcpy(h + off, &x, 2);
}
static void put_i32(unsigned char *h, int off, int v) {
    int32_t x = v;
    memcpy(h + off, &x, 4);
}
static void put_f32(unsigned char *h, int off, double v) {
    float x = (float)v;
    memcpy(h + off, &x, 4);
}

int synth_write_nifti(const char *path, const void *data, int datatype, int nx, int ny, int nz, const double origin[3],
                      int level) {
    double a[4][4] = {{1, 0, 0, origin[0]}, {0, 1, 0, origin[1]}, {0, 0, 1, origin[2]}, {0, 0, 0, 1}};
    return synth_write_nifti_affine(path, data, datatype, nx, ny, nz, a, level);
}

int synth_write_nifti_affine(const char *path, const void *data, int datatype, int nx, int ny, int nz,
                             const double affine[4][4], int level) {
    int bytes = datatype == 16 ? 4 : datatype == 4 ? 2 : 1;
    if (datatype != 4 && datatype != 2 && datatype != 16) return as_fail("%s: synth writes int16, uint8 or float32 only", path);
    // The 1 mm axis-aligned grid of the synthetic set keeps its qform (identity rotation); any
    // other affine goes in the sform alone (qform_code 0), which every reader then uses.
    int aligned = 1;
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++) aligned &= affine[r][c] == (r == c ? 1.0 : 0.0);
    double origin[3] = {affine[0][3], affine[1][3], affine[2][3]};
    // NIfTI-1 single file: 348-byte header, 4 extension bytes (none), data at offset 352.
    // Little-endian like every machine anoswin targets; readers detect the order by sizeof_hdr.
    unsigned char h[352];
    memset(h, 0, sizeof h);
    put_i32(h, 0, 348);
    h[38] = 'r';
    int dim[8] = {3, nx, ny, nz, 1, 1, 1, 1};
    for (int d = 0; d < 8; d++) put_i16(h, 40 + 2 * d, dim[d]);
    put_i16(h, 70, datatype);
    put_i16(h, 72, 8 * bytes);
    float pixdim[8] = {1, 1, 1, 1, 1, 1, 1, 1};  // pixdim[0] = qfac = 1
    for (int c = 0; c < 3; c++)
        pixdim[1 + c] = (float)sqrt(affine[0][c] * affine[0][c] + affine[1][c] * affine[1][c] + affine[2][c] * affine[2][c]);
    for (int d = 0; d < 8; d++) put_f32(h, 76 + 4 * d, pixdim[d]);
    put_f32(h, 108, 352);  // vox_offset
    put_f32(h, 112, 1);    // scl_slope
    put_f32(h, 116, 0);    // scl_inter
    h[123] = 2 | 8;        // mm, s
    snprintf((char *)h + 148, 80, "anoswin data synth (Colin27-derived)");
    put_i16(h, 252, aligned ? 2 : 0);  // qform_code: aligned anatomy
    put_i16(h, 254, 2);                // sform_code
    // quatern b,c,d = 0: identity rotation; offsets = origin
    if (aligned)
        for (int d = 0; d < 3; d++) put_f32(h, 268 + 4 * d, origin[d]);
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++) put_f32(h, 280 + 16 * r + 4 * c, affine[r][c]);
    memcpy(h + 344, "n+1\0", 4);

    char tmp[4300];
    fs_temp_path(tmp, sizeof tmp, path);
    char mode[8];
    snprintf(mode, sizeof mode, "wb%d", level < 0 ? 1 : level > 9 ? 9 : level);
    gzFile gz = gzopen(tmp, mode);
    if (!gz) return as_fail("%s: cannot write: %s", path, strerror(errno));
    size_t n = (size_t)nx * ny * nz * bytes;
    int ok = gzwrite(gz, h, sizeof h) == (int)sizeof h;
    const unsigned char *p = data;
    for (size_t off = 0; ok && off < n; off += 1u << 24) {
        unsigned chunk = (unsigned)(n - off < (1u << 24) ? n - off : (1u << 24));
        ok = gzwrite(gz, p + off, chunk) == (int)chunk;
    }
    if (gzclose(gz) != Z_OK) ok = 0;
    if (!ok) {
        remove(tmp);
        return as_fail("%s: write failed (disk full?)", path);
    }
    return fs_commit(tmp, path);
}

// ---- the template: Colin27 on the SRI24-like grid, T1 and a T2-like contrast ------------------

int synth_template_placement(const volume *v, int shift[3], double origin[3], int lo[3], int hi[3]) {
    int n[3] = {NX, NY, NZ};
    for (int d = 0; d < 3; d++) lo[d] = n[d] + v->nx + v->ny + v->nz, hi[d] = -1;
    for (int k = 0; k < v->nz; k++)
        for (int j = 0; j < v->ny; j++)
            for (int i = 0; i < v->nx; i++) {
                if (!(v->data[(size_t)i + (size_t)v->nx * ((size_t)j + (size_t)v->ny * k)] > 0)) continue;
                int p[3] = {i, j, k};
                for (int d = 0; d < 3; d++) {
                    if (p[d] < lo[d]) lo[d] = p[d];
                    if (p[d] > hi[d]) hi[d] = p[d];
                }
            }
    if (hi[0] < 0) return -1;
    // Centre the bounding box on the grid (crop where it does not fit); world(new index) =
    // world(old index) = affine * (new - shift).
    for (int d = 0; d < 3; d++) {
        shift[d] = (int)floor((n[d] - (lo[d] + hi[d] + 1)) / 2.0);
        origin[d] = v->affine[d][3] - shift[d] * v->affine[d][d];
    }
    return 0;
}


typedef struct template3 {
    float *tpl;        // (NZ, NY, NX, 3): t1 (WM = 1), t2 (CSF = 1, WM ~ 0.33), brain indicator (0/1)
    int lo[3], hi[3];  // bounding box of the brain on the grid
    double origin[3];  // world mm of voxel (0,0,0): the template's world coordinates are kept
    float centre[3];   // brain centre (voxels): rotations and scalings are about it
} template3;

// 1-D k-means with 3 classes on a histogram: CSF < GM < WM means of the T1 brain voxels.
static void kmeans3(const double *hist, int nbins, double binw, double mu[3]) {
    double total = 0, cum = 0;
    for (int b = 0; b < nbins; b++) total += hist[b];
    double q[3] = {0.15, 0.5, 0.85};
    for (int c = 0, b = 0; c < 3; c++) {  // start at quantiles
        while (b < nbins - 1 && cum + hist[b] < q[c] * total) cum += hist[b++];
        mu[c] = (b + 0.5) * binw;
    }
    for (int it = 0; it < 50; it++) {
        double s[3] = {0}, w[3] = {0};
        for (int b = 0; b < nbins; b++) {
            double x = (b + 0.5) * binw;
            int best = 0;
            for (int c = 1; c < 3; c++)
                if (fabs(x - mu[c]) < fabs(x - mu[best])) best = c;
            s[best] += hist[b] * x;
            w[best] += hist[b];
        }
        for (int c = 0; c < 3; c++)
            if (w[c] > 0) mu[c] = s[c] / w[c];
    }
}

static int template_build(template3 *T, const char *path) {
    volume v;
    if (volume_read(&v, path) != 0) return -1;
    // The template must be a roughly RAS, 1 mm, axis-aligned brain (as ch2bet is).
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++) {
            double want = r == c ? 1.0 : 0.0;
            if (fabs(v.affine[r][c] - want) > 0.05) {
                volume_free(&v);
                return as_fail("%s: synth needs a 1 mm RAS-aligned skull-stripped template", path);
            }
        }
    int lo[3], hi[3], shift[3], n[3] = {NX, NY, NZ};
    if (synth_template_placement(&v, shift, T->origin, lo, hi) != 0) {
        volume_free(&v);
        return as_fail("%s: template is empty (no voxel > 0)", path);
    }
    float vmax = 0;
    for (size_t i = 0; i < volume_voxels(&v); i++) vmax = fmaxf(vmax, v.data[i]);
    // Class means from a histogram of brain intensities.
    enum { NB = 512 };
    double hist[NB] = {0}, binw = vmax / NB;
    size_t nv = volume_voxels(&v);
    for (size_t i = 0; i < nv; i++)
        if (v.data[i] > 0) hist[(int)fminf(NB - 1, v.data[i] / (float)binw)] += 1;
    double mu[3];
    kmeans3(hist, NB, binw, mu);
    // T1 -> T2 by a decreasing piecewise-linear map through the class means: CSF bright,
    // GM intermediate, WM dark; it keeps the T1's anatomy and texture (inverted).
    const double t2v[3] = {1.0, 0.55, 0.33};
    T->tpl = as_calloc(NVOX * 3, sizeof(float));
    for (int d = 0; d < 3; d++) {
        T->lo[d] = lo[d] + shift[d] < 0 ? 0 : lo[d] + shift[d];
        T->hi[d] = hi[d] + shift[d] >= n[d] ? n[d] - 1 : hi[d] + shift[d];
        T->centre[d] = 0.5f * (T->lo[d] + T->hi[d]);
    }
    for (int k = T->lo[2]; k <= T->hi[2]; k++)
        for (int j = T->lo[1]; j <= T->hi[1]; j++)
            for (int i = T->lo[0]; i <= T->hi[0]; i++) {
                int si = i - shift[0], sj = j - shift[1], sk = k - shift[2];
                if (si < 0 || sj < 0 || sk < 0 || si >= v.nx || sj >= v.ny || sk >= v.nz) continue;
                float x = v.data[(size_t)si + (size_t)v.nx * ((size_t)sj + (size_t)v.ny * sk)];
                if (x <= 0) continue;
                double t2;
                if (x <= mu[0]) t2 = t2v[0];
                else if (x <= mu[1]) t2 = t2v[0] + (x - mu[0]) / (mu[1] - mu[0]) * (t2v[1] - t2v[0]);
                else t2 = t2v[1] + (x - mu[1]) / (mu[2] - mu[1]) * (t2v[2] - t2v[1]);
                float *p = T->tpl + 3 * IDX(i, j, k);
                p[0] = (float)(x / mu[2]);
                p[1] = (float)fmax(t2, 0.2);
                p[2] = 1.0f;
            }
    volume_free(&v);
    return 0;
}

// ---- one subject ---------------------------------------------------------------------------------

enum { GS = 16, GX = NX / GS + 2, GY = NY / GS + 2, GZ = NZ / GS + 2 };  // displacement control grid

typedef struct warp {
    double A[3][3];             // global linear part (rotation * scaling), about the brain centre
    double t[3];                // shift (voxels)
    float disp[GZ][GY][GX][3];  // smooth displacement (voxels) at the control points
} warp;

static void warp_random(warp *w, rng *r) {
    double ang[3], sc[3];
    for (int d = 0; d < 3; d++) {
        ang[d] = clampf((float)rng_normal(r), -2, 2) * 2.0 * M_PI / 180.0;  // ~2 degrees
        sc[d] = 1.0 + clampf((float)rng_normal(r), -2, 2) * 0.035;          // ~3.5 % size
        w->t[d] = clampf((float)rng_normal(r), -2, 2) * (d == 2 ? 1.0 : 1.5);
    }
    double cx = cos(ang[0]), sx = sin(ang[0]), cy = cos(ang[1]), sy = sin(ang[1]), cz = cos(ang[2]), sz = sin(ang[2]);
    double Rx[3][3] = {{1, 0, 0}, {0, cx, -sx}, {0, sx, cx}};
    double Ry[3][3] = {{cy, 0, sy}, {0, 1, 0}, {-sy, 0, cy}};
    double Rz[3][3] = {{cz, -sz, 0}, {sz, cz, 0}, {0, 0, 1}};
    double M[3][3] = {{0}}, R[3][3] = {{0}};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 3; c++) M[a][b] += Rz[a][c] * Ry[c][b];
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 3; c++) R[a][b] += M[a][c] * Rx[c][b];
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) w->A[a][b] = R[a][b] * sc[b];
    // Random control-point displacements, smoothed once with [1 2 1]/4 along each axis: a
    // low-frequency field of about 1.5-2 mm rms, up to ~5 mm.
    float tmp[GZ][GY][GX][3];  // 38 KB
    for (int z = 0; z < GZ; z++)
        for (int y = 0; y < GY; y++)
            for (int x = 0; x < GX; x++)
                for (int c = 0; c < 3; c++) w->disp[z][y][x][c] = (float)rng_normal(r) * 3.2f;
    for (int axis = 0; axis < 3; axis++) {
        memcpy(tmp, w->disp, sizeof tmp);
        for (int z = 0; z < GZ; z++)
            for (int y = 0; y < GY; y++)
                for (int x = 0; x < GX; x++) {
                    int p[3] = {x, y, z}, lim[3] = {GX, GY, GZ};
                    int pa = p[axis] > 0 ? p[axis] - 1 : 0, pb = p[axis] < lim[axis] - 1 ? p[axis] + 1 : lim[axis] - 1;
                    int qa[3] = {x, y, z}, qb[3] = {x, y, z};
                    qa[axis] = pa;
                    qb[axis] = pb;
                    for (int c = 0; c < 3; c++)
                        w->disp[z][y][x][c] = 0.25f * tmp[qa[2]][qa[1]][qa[0]][c] + 0.5f * tmp[z][y][x][c] +
                                              0.25f * tmp[qb[2]][qb[1]][qb[0]][c];
                }
    }
}

// Trilinear sample of the 3-channel template at (x, y, z) voxels; zero outside.
static void sample3(float out[3], const float *tpl, double x, double y, double z) {
    out[0] = out[1] = out[2] = 0;
    if (!(x >= 0 && y >= 0 && z >= 0 && x < NX - 1 && y < NY - 1 && z < NZ - 1)) return;
    int i = (int)x, j = (int)y, k = (int)z;
    float fx = (float)(x - i), fy = (float)(y - j), fz = (float)(z - k);
    for (int dz = 0; dz < 2; dz++)
        for (int dy = 0; dy < 2; dy++)
            for (int dx = 0; dx < 2; dx++) {
                float wgt = (dx ? fx : 1 - fx) * (dy ? fy : 1 - fy) * (dz ? fz : 1 - fz);
                const float *p = tpl + 3 * IDX(i + dx, j + dy, k + dz);
                out[0] += wgt * p[0];
                out[1] += wgt * p[1];
                out[2] += wgt * p[2];
            }
}

// Deforms the template into subject space: t1, t2 and the brain mask.
static void warp_apply(float *t1, float *t2, unsigned char *brain, const template3 *T, const warp *w) {
    int lo[3], hi[3], n[3] = {NX, NY, NZ};
    for (int d = 0; d < 3; d++) {
        lo[d] = T->lo[d] - 20 < 0 ? 0 : T->lo[d] - 20;
        hi[d] = T->hi[d] + 20 >= n[d] ? n[d] - 1 : T->hi[d] + 20;
    }
    const float *c = T->centre;
    for (int k = lo[2]; k <= hi[2]; k++)
        for (int j = lo[1]; j <= hi[1]; j++)
            for (int i = lo[0]; i <= hi[0]; i++) {
                // displacement: trilinear in the control grid
                float gx = (float)i / GS, gy = (float)j / GS, gz = (float)k / GS;
                int a = (int)gx, b = (int)gy, e = (int)gz;
                float fx = gx - a, fy = gy - b, fz = gz - e, d3[3] = {0, 0, 0};
                for (int dz = 0; dz < 2; dz++)
                    for (int dy = 0; dy < 2; dy++)
                        for (int dx = 0; dx < 2; dx++) {
                            float wgt = (dx ? fx : 1 - fx) * (dy ? fy : 1 - fy) * (dz ? fz : 1 - fz);
                            const float *p = w->disp[e + dz][b + dy][a + dx];
                            d3[0] += wgt * p[0];
                            d3[1] += wgt * p[1];
                            d3[2] += wgt * p[2];
                        }
                double p[3] = {i - c[0], j - c[1], k - c[2]}, q[3];
                for (int r = 0; r < 3; r++)
                    q[r] = c[r] + w->A[r][0] * p[0] + w->A[r][1] * p[1] + w->A[r][2] * p[2] + w->t[r] + d3[r];
                float s[3];
                sample3(s, T->tpl, q[0], q[1], q[2]);
                size_t id = IDX(i, j, k);
                if (s[2] > 0.5f) {
                    // partial-volume edge: renormalise by the mask weight, as if resampled inside
                    t1[id] = s[0] / s[2];
                    t2[id] = s[1] / s[2];
                    brain[id] = 1;
                }
            }
}

// ---- lesions ----------------------------------------------------------------------------------------

typedef struct blob {
    double c[3];     // centre (voxels)
    double M[3][3];  // maps p - c to the unit-sphere frame: rows = rotated axes / semi-axis
} blob;

static void random_rotation(double R[3][3], rng *r) {
    double q[4], n = 0;
    for (int i = 0; i < 4; i++) {
        q[i] = rng_normal(r);
        n += q[i] * q[i];
    }
    n = sqrt(n);
    double a = q[0] / n, b = q[1] / n, c = q[2] / n, d = q[3] / n;
    double M[3][3] = {{a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)},
                      {2 * (b * c + a * d), a * a - b * b + c * c - d * d, 2 * (c * d - a * b)},
                      {2 * (b * d - a * c), 2 * (c * d + a * b), a * a - b * b - c * c + d * d}};
    memcpy(R, M, sizeof M);
}

// A randomly oriented ellipsoid whose semi-axes are radius * [lo, hi).
static void blob_make(blob *bl, const double c[3], double radius, double lo, double hi, rng *r) {
    double R[3][3];
    random_rotation(R, r);
    for (int a = 0; a < 3; a++) {
        double semi = radius * rng_uniform_range(r, lo, hi);
        for (int b = 0; b < 3; b++) bl->M[a][b] = R[a][b] / semi;
        bl->c[a] = c[a];
    }
}

static double blob_q(const blob *bl, const double p[3]) {
    double d[3] = {p[0] - bl->c[0], p[1] - bl->c[1], p[2] - bl->c[2]}, q = 0;
    for (int a = 0; a < 3; a++) {
        double u = bl->M[a][0] * d[0] + bl->M[a][1] * d[1] + bl->M[a][2] * d[2];
        q += u * u;
    }
    return q;
}

// Whether a ball of radius rad around (i,j,k) is inside the brain, checked on 14 points.
static int fits_in_brain(const unsigned char *brain, int nx, int ny, int nz, int i, int j, int k, double rad) {
    static const int dirs[14][3] = {{1, 0, 0},  {-1, 0, 0}, {0, 1, 0},  {0, -1, 0},  {0, 0, 1},  {0, 0, -1}, {1, 1, 1},
                                    {-1, 1, 1}, {1, -1, 1}, {1, 1, -1}, {-1, -1, 1}, {-1, 1, -1}, {1, -1, -1}, {-1, -1, -1}};
    if (!brain[(size_t)i + (size_t)nx * ((size_t)j + (size_t)ny * k)]) return 0;
    for (int d = 0; d < 14; d++) {
        double s = d < 6 ? rad : rad / sqrt(3.0);
        int x = i + (int)lrint(dirs[d][0] * s), y = j + (int)lrint(dirs[d][1] * s), z = k + (int)lrint(dirs[d][2] * s);
        if (x < 0 || y < 0 || z < 0 || x >= nx || y >= ny || z >= nz) return 0;
        if (!brain[(size_t)x + (size_t)nx * ((size_t)y + (size_t)ny * z)]) return 0;
    }
    return 1;
}

enum { NW = 8 };  // texture: plane waves per lesion

// One lesion, drawn whole before it is painted: a union of ellipsoids seen through a smooth
// warp of the coordinates, and its look in both modalities.
typedef struct lesion {
    int c[3];      // centre (voxel)
    double rad;    // mean radius (voxels)
    blob bl[4];
    int nb;
    double wamp, wfreq[3][3], wph[3];  // the warp: amplitude (voxels), frequencies, phases
    float v2, v1;                      // body intensity (t2 and t1 scales)
    int has_core, has_halo;
    double core, halo;  // core and halo borders, in units of the body's
    float core2, core1, halo_gain, tex;
    double tfreq[NW][3], tph[NW];  // texture waves
    int ext;                       // half-size of the box painted around c
} lesion;

// Chances of each look; core and halo only for lesions at least that large (voxels).
typedef struct look_odds {
    double hyper, core, halo;
    double core_min_rad, halo_min_rad;
} look_odds;

// The tumour-like shape: a main ellipsoid plus 0-3 overlapping smaller ones (blobby), with a
// smooth random warp of the coordinates (irregular border).
static void lesion_blobby(lesion *L, rng *r) {
    double c0[3] = {L->c[0], L->c[1], L->c[2]}, rad = L->rad;
    blob_make(&L->bl[0], c0, rad, 0.65, 1.35, r);
    L->nb = 1 + (int)rng_below(r, 4);
    for (int b = 1; b < L->nb; b++) {
        double dir[3], nn = 0, cb[3];
        for (int a = 0; a < 3; a++) {
            dir[a] = rng_normal(r);
            nn += dir[a] * dir[a];
        }
        nn = sqrt(nn);
        for (int a = 0; a < 3; a++) cb[a] = c0[a] + dir[a] / nn * rad * rng_uniform_range(r, 0.4, 0.8);
        blob_make(&L->bl[b], cb, rad * rng_uniform_range(r, 0.4, 0.75), 0.65, 1.35, r);
    }
    L->wamp = rad * rng_uniform_range(r, 0.05, 0.2);
    for (int a = 0; a < 3; a++) {
        for (int b = 0; b < 3; b++) L->wfreq[a][b] = rng_normal(r) * 2.0 / (rad + 2.0);
        L->wph[a] = rng_uniform_range(r, 0, 2 * M_PI);
    }
}

// Appearance. t2 relative scale: CSF 1, GM 0.55, WM 0.33; t1: WM 1, GM ~0.75, CSF ~0.35.
static void lesion_look(lesion *L, const look_odds *odds, rng *r) {
    int hyper = rng_uniform(r) < odds->hyper;
    L->v2 = hyper ? (float)rng_uniform_range(r, 0.65, 1.0) : (float)rng_uniform_range(r, 0.14, 0.24);
    L->v1 = hyper ? (float)rng_uniform_range(r, 0.3, 0.55) : (float)rng_uniform_range(r, 1.05, 1.25);
    L->has_core = L->rad >= odds->core_min_rad && rng_uniform(r) < odds->core;
    L->has_halo = L->rad >= odds->halo_min_rad && rng_uniform(r) < odds->halo;
    L->core = rng_uniform_range(r, 0.35, 0.6);
    L->halo = rng_uniform_range(r, 1.2, 1.5);
    L->core2 = (float)rng_uniform_range(r, 1.05, 1.25);
    L->core1 = (float)rng_uniform_range(r, 0.15, 0.3);
    L->halo_gain = (float)rng_uniform_range(r, 0.25, 0.45);
    L->tex = rng_uniform(r) < 0.6 ? (float)rng_uniform_range(r, 0.08, 0.22) : 0.0f;
    // texture: 8 plane waves in random directions, wavelengths 4-12 mm (no plaid pattern)
    for (int a = 0; a < NW; a++) {
        double dir[3], nn = 0, wl = rng_uniform_range(r, 4, 12);
        for (int b = 0; b < 3; b++) {
            dir[b] = rng_normal(r);
            nn += dir[b] * dir[b];
        }
        for (int b = 0; b < 3; b++) L->tfreq[a][b] = dir[b] / sqrt(nn) * 2 * M_PI / wl;
        L->tph[a] = rng_uniform_range(r, 0, 2 * M_PI);
    }
}

// The painted box: `reach` (voxels) bounds the shape's farthest point before the halo.
static void lesion_set_extent(lesion *L, double reach) {
    L->ext = (int)ceil(reach * (L->has_halo ? L->halo : 1.0) + L->wamp + 3);
}

// Paints L into t2 (and t1 when not NULL) inside `brain` but not on `keep_out` (NULL: nowhere
// kept out), setting its labels in seg.
static void lesion_paint(const lesion *L, float *t2, float *t1, unsigned char *seg, const unsigned char *brain,
                         const unsigned char *keep_out, int nx, int ny, int nz) {
    const double rad = L->rad, halo = L->halo;
    for (int k = L->c[2] - L->ext; k <= L->c[2] + L->ext; k++) {
        if (k < 0 || k >= nz) continue;
        for (int j = L->c[1] - L->ext; j <= L->c[1] + L->ext; j++) {
            if (j < 0 || j >= ny) continue;
            for (int i = L->c[0] - L->ext; i <= L->c[0] + L->ext; i++) {
                if (i < 0 || i >= nx) continue;
                size_t id = (size_t)i + (size_t)nx * ((size_t)j + (size_t)ny * k);
                if (!brain[id] || (keep_out && keep_out[id])) continue;
                double p[3] = {i, j, k}, pw[3];
                for (int a = 0; a < 3; a++)
                    pw[a] = p[a] + L->wamp * sin(L->wfreq[a][0] * i + L->wfreq[a][1] * j + L->wfreq[a][2] * k + L->wph[a]);
                double q = 1e30;
                for (int b = 0; b < L->nb; b++) {
                    double qb = blob_q(&L->bl[b], pw);
                    if (qb < q) q = qb;
                }
                double dist = (sqrt(q) - 1.0) * rad;  // ~ signed distance to the border (voxels)
                double hdist = (sqrt(q) - halo) * rad;
                if (dist > 1.0 && (!L->has_halo || hdist > 1.0)) continue;
                float alpha = clampf((float)(0.5 - dist), 0, 1);  // 1-voxel partial-volume edge
                float t = 1.0f;
                if (L->tex > 0) {
                    double s = 0;
                    for (int a = 0; a < NW; a++)
                        s += sin(L->tfreq[a][0] * i + L->tfreq[a][1] * j + L->tfreq[a][2] * k + L->tph[a]);
                    t = 1.0f + L->tex * (float)(s / 2.0);  // s has std 2
                }
                float l2 = L->v2 * t, l1 = L->v1 * t;
                if (L->has_core) {
                    float ac = clampf((float)(0.5 - (sqrt(q) - L->core) * rad), 0, 1);
                    l2 = (1 - ac) * l2 + ac * L->core2 * t;
                    l1 = (1 - ac) * l1 + ac * L->core1 * t;
                }
                if (L->has_halo && alpha < 1) {
                    // oedema: a mild T2 brightening / T1 darkening fading outwards
                    float ah = clampf((float)(0.5 - hdist), 0, 1) *
                               (float)clampf((float)(1.0 - (sqrt(q) - 1.0) / (halo - 1.0) * 0.5), 0.3f, 1.0f);
                    float base2 = t2[id] + L->halo_gain * ah * (0.9f - t2[id]);
                    if (base2 > t2[id]) t2[id] = base2;
                    if (t1) t1[id] *= 1.0f - 0.2f * L->halo_gain * ah;
                    if (ah >= 0.5f && !seg[id]) seg[id] = LESION_HALO;
                }
                if (alpha > 0) {
                    t2[id] = (1 - alpha) * t2[id] + alpha * l2;
                    if (t1) t1[id] = (1 - alpha) * t1[id] + alpha * l1;
                }
                if (dist < 0) {  // inside the border (alpha > 0.5)
                    int core_here = L->has_core && (sqrt(q) - L->core) * rad < 0;
                    seg[id] = core_here ? LESION_CORE : LESION_BODY;
                }
            }
        }
    }
}

// Axial extent of the brain (zlo > zhi when it is empty).
static void brain_z_range(const unsigned char *brain, int nx, int ny, int nz, int *zlo, int *zhi) {
    *zlo = nz;
    *zhi = -1;
    for (int k = 0; k < nz; k++)
        for (size_t q = 0; q < (size_t)nx * ny; q++)
            if (brain[q + (size_t)nx * ny * k]) {
                if (k < *zlo) *zlo = k;
                *zhi = k;
                break;
            }
}

int synth_lesions(float *t2, float *t1, unsigned char *seg, const unsigned char *brain, int nx, int ny, int nz,
                  const lesion_options *lo, rng *r) {
    // brain extent along z, for centres drawn outside the preferred range
    int zlo, zhi;
    brain_z_range(brain, nx, ny, nz, &zlo, &zhi);
    if (zhi < 0) return 0;
    int count = lo->min_count + (int)rng_below(r, (uint32_t)(lo->max_count - lo->min_count + 1));
    int painted = 0;
    for (int l = 0; l < count; l++) {
        // The first lesion is a large one (tumour-like, as the test protocol scores slices with
        // more than 1024 lesion pixels); the others span the whole range, down to a few mm.
        double lmin = log(lo->min_radius), lmax = log(lo->max_radius);
        double rad = exp(rng_uniform_range(r, l == 0 ? log(lo->first_min_radius) : lmin, lmax));
        // Centre: inside the brain, far enough from its edge for most of the lesion.
        int ci = -1, cj = -1, ck = -1;
        for (int tries = 0; tries < 400 && ci < 0; tries++) {
            if (tries && tries % 80 == 0) rad *= 0.8;
            int k;
            int ka = lo->kmin > zlo ? lo->kmin : zlo, kb = lo->kmax < zhi ? lo->kmax : zhi;
            if (l == 0 && ka + 4 <= kb - 4) ka += 4, kb -= 4;  // the large one: well inside the range
            if (ka <= kb && (l == 0 || rng_uniform(r) < lo->p_in_range))
                k = ka + (int)rng_below(r, (uint32_t)(kb - ka + 1));
            else k = zlo + (int)rng_below(r, (uint32_t)(zhi - zlo + 1));
            int i = (int)rng_below(r, (uint32_t)nx), j = (int)rng_below(r, (uint32_t)ny);
            if (fits_in_brain(brain, nx, ny, nz, i, j, k, 0.7 * rad)) ci = i, cj = j, ck = k;
        }
        if (ci < 0) continue;
        lesion L;
        L.c[0] = ci, L.c[1] = cj, L.c[2] = ck;
        L.rad = rad;
        lesion_blobby(&L, r);
        look_odds odds = {lo->p_hyper, lo->p_core, l == 0 ? lo->p_halo_first : lo->p_halo, 6, 5};
        lesion_look(&L, &odds, r);
        lesion_set_extent(&L, rad * 1.35 * 1.8);
        lesion_paint(&L, t2, t1, seg, brain, NULL, nx, ny, nz);
        painted++;
    }
    return painted;
}

// ---- lesion profiles other than glioma: placement that knows the anatomy -----------------------

// Template t2 levels (CSF 1, GM 0.55, WM 0.33): class borders half-way between the means.
#define T2_CSF 0.78f
#define T2_WM 0.44f
// CSF farther than this (mm) from the brain's edge is ventricles and cisterns, not sulci; above
// grid slice VENT_KMIN (MNI z = +7 mm) the cisterns are left out and the lateral ventricles stay.
#define VENT_DEPTH 18.0f
#define VENT_KMIN 75

// Squared Euclidean distance along one line (Felzenszwalb & Huttenlocher's lower envelope of
// parabolas): f is 0 at sources, INFINITY elsewhere; d gets min over sources q of (p - q)^2 +
// f[q]. v, z: scratch of n and n + 1.
static void edt_line(const float *f, float *d, int n, int *v, double *z) {
    int k = -1;
    for (int q = 0; q < n; q++) {
        if (isinf(f[q])) continue;  // no parabola: keeps lines without sources exact
        double s = -INFINITY;
        while (k >= 0) {
            int p = v[k];
            s = ((f[q] + (double)q * q) - (f[p] + (double)p * p)) / (2.0 * (q - p));
            if (s > z[k]) break;
            k--;
        }
        if (k < 0) s = -INFINITY;
        v[++k] = q;
        z[k] = s;
        z[k + 1] = INFINITY;
    }
    for (int q = 0, j = 0; q < n; q++) {
        if (k < 0) {
            d[q] = INFINITY;
            continue;
        }
        while (z[j + 1] < q) j++;
        d[q] = (float)((double)(q - v[j]) * (q - v[j]) + f[v[j]]);
    }
}

// dist = Euclidean distance (voxels = mm) from every voxel to the nearest one with src != 0.
static void distance_map(float *dist, const unsigned char *src) {
    for (size_t q = 0; q < NVOX; q++) dist[q] = src[q] ? 0.0f : INFINITY;
    enum { LMAX = NX > NY ? (NX > NZ ? NX : NZ) : (NY > NZ ? NY : NZ) };
    float f[LMAX], d[LMAX];
    int v[LMAX];
    double z[LMAX + 1];
    const int n[3] = {NX, NY, NZ};
    const size_t stride[3] = {1, NX, (size_t)NX * NY};
    for (int axis = 0; axis < 3; axis++) {
        // every line along `axis`: its first voxel runs over the other two axes
        int a = (axis + 1) % 3, b = (axis + 2) % 3;
        for (int ib = 0; ib < n[b]; ib++)
            for (int ia = 0; ia < n[a]; ia++) {
                float *line = dist + ia * stride[a] + ib * stride[b];
                for (int t = 0; t < n[axis]; t++) f[t] = line[t * stride[axis]];
                edt_line(f, d, n[axis], v, z);
                for (int t = 0; t < n[axis]; t++) line[t * stride[axis]] = d[t];
            }
    }
    for (size_t q = 0; q < NVOX; q++) dist[q] = sqrtf(dist[q]);
}

// Flood fill (6-neighbours) from `seed` over voxels equal to `from`, setting them to `to`;
// returns the component's size. queue: room for every such voxel.
static size_t flood(unsigned char *m, size_t seed, unsigned char from, unsigned char to, size_t *queue) {
    size_t head = 0, tail = 0;
    m[seed] = to;
    queue[tail++] = seed;
    while (head < tail) {
        size_t q = queue[head++];
        int i = (int)(q % NX), j = (int)(q / NX % NY), k = (int)(q / ((size_t)NX * NY));
        const int nb[6][3] = {{i - 1, j, k}, {i + 1, j, k}, {i, j - 1, k}, {i, j + 1, k}, {i, j, k - 1}, {i, j, k + 1}};
        for (int e = 0; e < 6; e++) {
            if (nb[e][0] < 0 || nb[e][1] < 0 || nb[e][2] < 0 || nb[e][0] >= NX || nb[e][1] >= NY || nb[e][2] >= NZ)
                continue;
            size_t p = IDX(nb[e][0], nb[e][1], nb[e][2]);
            if (m[p] != from) continue;
            m[p] = to;
            queue[tail++] = p;
        }
    }
    return tail;
}

// Keeps the largest 6-connected component of the 0/1 mask m.
static void keep_largest(unsigned char *m) {
    size_t n = 0, best = 0, best_size = 0;
    for (size_t q = 0; q < NVOX; q++) n += m[q];
    if (!n) return;
    size_t *queue = as_malloc(n * sizeof *queue);
    for (size_t q = 0; q < NVOX; q++)
        if (m[q] == 1) {
            size_t s = flood(m, q, 1, 2, queue);
            if (s > best_size) best_size = s, best = q;
        }
    flood(m, best, 2, 3, queue);
    for (size_t q = 0; q < NVOX; q++) m[q] = m[q] == 3;
    free(queue);
}

// What placement needs to know of one subject's brain, from its lesion-free t2.
typedef struct anatomy {
    const unsigned char *brain;
    const float *t2;   // template scale: CSF ~1, GM ~0.55, WM ~0.33 (being painted: apart() keeps
                       // new centres off the lesions already there)
    float *depth;      // distance to the brain's edge (mm)
    unsigned char *vent;  // ventricles: the largest component of deep CSF from slice VENT_KMIN up
    float *to_vent;    // distance to vent (mm)
    int lo[3], hi[3];  // bounding boxes of the brain and of vent (vlo, vhi)
    int vlo[3], vhi[3];
} anatomy;

static void bounding_box(const unsigned char *m, int lo[3], int hi[3]) {
    lo[0] = NX, lo[1] = NY, lo[2] = NZ, hi[0] = hi[1] = hi[2] = -1;
    for (int k = 0; k < NZ; k++)
        for (int j = 0; j < NY; j++)
            for (int i = 0; i < NX; i++) {
                if (!m[IDX(i, j, k)]) continue;
                int p[3] = {i, j, k};
                for (int d = 0; d < 3; d++) {
                    if (p[d] < lo[d]) lo[d] = p[d];
                    if (p[d] > hi[d]) hi[d] = p[d];
                }
            }
}

static void anatomy_build(anatomy *A, const float *t2, const unsigned char *brain) {
    A->brain = brain;
    A->t2 = t2;
    A->depth = as_malloc(NVOX * sizeof(float));
    A->to_vent = as_malloc(NVOX * sizeof(float));
    A->vent = as_malloc(NVOX);
    for (size_t q = 0; q < NVOX; q++) A->vent[q] = !brain[q];
    distance_map(A->depth, A->vent);
    for (size_t q = 0; q < NVOX; q++)
        A->vent[q] = q >= IDX(0, 0, VENT_KMIN) && brain[q] && t2[q] > T2_CSF && A->depth[q] > VENT_DEPTH;
    keep_largest(A->vent);
    distance_map(A->to_vent, A->vent);
    bounding_box(brain, A->lo, A->hi);
    bounding_box(A->vent, A->vlo, A->vhi);
}

static void anatomy_free(anatomy *A) {
    free(A->depth);
    free(A->to_vent);
    free(A->vent);
}

// A random voxel of the box lo..hi grown by `pad` (clipped to the grid).
static void random_voxel(int p[3], const int lo[3], const int hi[3], int pad, rng *r) {
    const int n[3] = {NX, NY, NZ};
    for (int d = 0; d < 3; d++) {
        int a = lo[d] - pad < 0 ? 0 : lo[d] - pad, b = hi[d] + pad >= n[d] ? n[d] - 1 : hi[d] + pad;
        p[d] = a + (int)rng_below(r, (uint32_t)(b - a + 1));
    }
}

// Lesions placed so far in a subject: centres and reaches, to keep new ones apart.
typedef struct placed {
    int n;
    int c[32][3];
    double reach[32];
} placed;

static int apart(const placed *P, const int c[3], double reach) {
    for (int m = 0; m < P->n; m++) {
        double d2 = 0;
        for (int a = 0; a < 3; a++) d2 += (double)(c[a] - P->c[m][a]) * (c[a] - P->c[m][a]);
        double gap = reach + P->reach[m] + 2;  // 2 voxels between the borders: no merged labels
        if (d2 < gap * gap) return 0;
    }
    return 1;
}

static void place(placed *P, const int c[3], double reach) {
    if (P->n >= 32) return;
    memcpy(P->c[P->n], c, sizeof P->c[0]);
    P->reach[P->n++] = reach;
}

// A smooth ellipsoid (no warp) with the long semi-axis `a` along the unit vector u and the
// other two `b`.
static void lesion_ovoid(lesion *L, const double u[3], double a, double b) {
    // two unit vectors perpendicular to u
    double t[3] = {fabs(u[0]) < 0.9 ? 1 : 0, fabs(u[0]) < 0.9 ? 0 : 1, 0}, v[3], w[3];
    v[0] = u[1] * t[2] - u[2] * t[1], v[1] = u[2] * t[0] - u[0] * t[2], v[2] = u[0] * t[1] - u[1] * t[0];
    double nv = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
    for (int d = 0; d < 3; d++) v[d] /= nv;
    w[0] = u[1] * v[2] - u[2] * v[1], w[1] = u[2] * v[0] - u[0] * v[2], w[2] = u[0] * v[1] - u[1] * v[0];
    for (int d = 0; d < 3; d++) {
        L->bl[0].c[d] = L->c[d];
        L->bl[0].M[0][d] = u[d] / a;
        L->bl[0].M[1][d] = v[d] / b;
        L->bl[0].M[2][d] = w[d] / b;
    }
    L->nb = 1;
    L->wamp = 0;  // no warp: the sin() terms vanish
    memset(L->wfreq, 0, sizeof L->wfreq);
    memset(L->wph, 0, sizeof L->wph);
}

static void random_direction(double u[3], rng *r) {
    double n = 0;
    for (int d = 0; d < 3; d++) {
        u[d] = rng_normal(r);
        n += u[d] * u[d];
    }
    n = sqrt(n);
    for (int d = 0; d < 3; d++) u[d] /= n;
}

// metastasis: 2-8 round lesions of diameter 3-15 mm anywhere in the brain, T2-bright, some with
// a fluid core or a thin oedema halo; apart from each other and wholly inside the brain.
static int lesions_metastasis(float *t2, float *t1, unsigned char *seg, const anatomy *A, rng *r) {
    static const look_odds odds = {1.0, 0.3, 0.4, 2.5, 2.0};
    placed P = {0};
    int count = 2 + (int)rng_below(r, 7), painted = 0;
    for (int l = 0; l < count; l++) {
        lesion L;
        L.rad = exp(rng_uniform_range(r, log(1.5), log(7.5)));  // log-uniform: small ones common
        lesion_look(&L, &odds, r);
        double reach = L.rad * 1.15 * (L.has_halo ? L.halo : 1.0);
        int c[3], ok = 0;
        for (int tries = 0; tries < 4000 && !ok; tries++) {
            random_voxel(c, A->lo, A->hi, 0, r);
            ok = fits_in_brain(A->brain, NX, NY, NZ, c[0], c[1], c[2], reach + 1) && apart(&P, c, reach);
        }
        if (!ok) continue;
        memcpy(L.c, c, sizeof c);
        double u[3];
        random_direction(u, r);
        double s = rng_uniform_range(r, 1.0, 1.15);  // round: at most 15 % longer along u
        lesion_ovoid(&L, u, L.rad * s, L.rad / sqrt(s));
        lesion_set_extent(&L, L.rad * 1.15);
        lesion_paint(&L, t2, t1, seg, A->brain, NULL, NX, NY, NZ);
        place(&P, c, reach);
        painted++;
    }
    return painted;
}

// One periventricular centre: outside the ventricles, in tissue, at 0.5-1 long semi-axis `a`
// from them; the long axis along the distance gradient, perpendicular to the wall.
static int periventricular(int c[3], double u[3], double a, const anatomy *A, rng *r) {
    random_voxel(c, A->vlo, A->vhi, (int)ceil(a) + 2, r);
    size_t id = IDX(c[0], c[1], c[2]);
    if (!A->brain[id] || A->vent[id] || A->t2[id] > 0.7f) return 0;
    if (A->to_vent[id] < 0.5 * a || A->to_vent[id] > a) return 0;
    if (c[0] < 1 || c[1] < 1 || c[2] < 1 || c[0] >= NX - 1 || c[1] >= NY - 1 || c[2] >= NZ - 1) return 0;
    const size_t stride[3] = {1, NX, (size_t)NX * NY};
    double n = 0;
    for (int d = 0; d < 3; d++) {
        float fa = A->to_vent[id + stride[d]], fb = A->to_vent[id - stride[d]];
        u[d] = isinf(fa) || isinf(fb) ? 0 : 0.5 * (fa - fb);
        n += u[d] * u[d];
    }
    if (n < 1e-6) return 0;
    for (int d = 0; d < 3; d++) u[d] /= sqrt(n);
    return 1;
}

// One juxtacortical centre: in white matter, near the surface, away from the ventricles, with
// grey matter (or CSF) within about `a` in one of 14 directions; the long axis points to it.
static int juxtacortical(int c[3], double u[3], double a, const anatomy *A, rng *r) {
    static const int dirs[14][3] = {{1, 0, 0},  {-1, 0, 0}, {0, 1, 0},  {0, -1, 0},  {0, 0, 1},  {0, 0, -1}, {1, 1, 1},
                                    {-1, 1, 1}, {1, -1, 1}, {1, 1, -1}, {-1, -1, 1}, {-1, 1, -1}, {1, -1, -1}, {-1, -1, -1}};
    random_voxel(c, A->lo, A->hi, 0, r);
    size_t id = IDX(c[0], c[1], c[2]);
    if (!A->brain[id] || A->t2[id] > T2_WM || A->depth[id] < a + 2 || A->depth[id] > 25 || A->to_vent[id] < 10)
        return 0;
    int first = (int)rng_below(r, 14);  // no preferred direction
    for (int e = 0; e < 14; e++) {
        int d = (first + e) % 14;
        double len = sqrt((double)(dirs[d][0] * dirs[d][0] + dirs[d][1] * dirs[d][1] + dirs[d][2] * dirs[d][2]));
        double s = (a + 1) / len;
        int x = c[0] + (int)lrint(dirs[d][0] * s), y = c[1] + (int)lrint(dirs[d][1] * s),
            z = c[2] + (int)lrint(dirs[d][2] * s);
        if (A->t2[IDX(x, y, z)] > 0.5f) {
            for (int b = 0; b < 3; b++) u[b] = dirs[d][b] / len;
            return 1;
        }
    }
    return 0;
}

// ms: 6-20 small ovoid T2-bright, T1-dark plaques without core or halo; 75 % periventricular,
// touching the ventricles with the long axis perpendicular to the wall (Dawson's fingers), the
// others juxtacortical.
static int lesions_ms(float *t2, float *t1, unsigned char *seg, const anatomy *A, rng *r) {
    static const look_odds odds = {1.0, 0.0, 0.0, 0.0, 0.0};
    placed P = {0};
    int count = 6 + (int)rng_below(r, 15), painted = 0;
    for (int l = 0; l < count; l++) {
        lesion L;
        L.rad = exp(rng_uniform_range(r, log(1.0), log(4.0)));  // diameter 2-8 mm (ball of equal volume)
        lesion_look(&L, &odds, r);
        L.v1 = (float)rng_uniform_range(r, 0.45, 0.75);  // T1: darker than white matter, not black
        double s = rng_uniform_range(r, 1.4, 2.2), b = L.rad / cbrt(s), a = s * b;  // a * b * b = rad^3
        int juxta = rng_uniform(r) < 0.25, c[3], ok = 0;
        double u[3];
        for (int tries = 0; tries < 20000 && !ok; tries++)
            ok = (juxta ? juxtacortical(c, u, a, A, r) : periventricular(c, u, a, A, r)) && apart(&P, c, a);
        if (!ok) continue;
        memcpy(L.c, c, sizeof c);
        lesion_ovoid(&L, u, a, b);
        lesion_set_extent(&L, a);
        lesion_paint(&L, t2, t1, seg, A->brain, A->vent, NX, NY, NZ);
        place(&P, c, a);
        painted++;
    }
    return painted;
}

// boundary: 1-2 glioma-like lesions of radius 6-18 mm centred 0.4-0.65 radius from the
// ventricles or from the brain's edge, so that their surface reaches it (painting stops there).
static int lesions_boundary(float *t2, float *t1, unsigned char *seg, const anatomy *A, rng *r) {
    static const look_odds odds = {0.75, 0.35, 0.3, 6, 5};
    placed P = {0};
    int count = 1 + (int)rng_below(r, 2), painted = 0;
    for (int l = 0; l < count; l++) {
        lesion L;
        L.rad = exp(rng_uniform_range(r, log(6.0), log(18.0)));
        int at_vent = rng_uniform(r) < 0.5, c[3], ok = 0;
        double lo = 0.4 * L.rad, hi = 0.65 * L.rad;
        for (int tries = 0; tries < 20000 && !ok; tries++) {
            random_voxel(c, at_vent ? A->vlo : A->lo, at_vent ? A->vhi : A->hi, at_vent ? (int)ceil(hi) + 1 : 0, r);
            size_t id = IDX(c[0], c[1], c[2]);
            float d = at_vent ? A->to_vent[id] : A->depth[id];
            ok = A->brain[id] && !A->vent[id] && d >= lo && d <= hi && apart(&P, c, L.rad);
        }
        if (!ok) continue;
        memcpy(L.c, c, sizeof c);
        lesion_blobby(&L, r);
        lesion_look(&L, &odds, r);
        lesion_set_extent(&L, L.rad * 1.35 * 1.8);
        lesion_paint(&L, t2, t1, seg, A->brain, A->vent, NX, NY, NZ);
        place(&P, c, L.rad);
        painted++;
    }
    return painted;
}

static const char *const profile_names[SYNTH_NPROFILES] = {"glioma", "metastasis", "ms", "boundary",
                                                           "hypo",   "sparse",     "none"};

const char *synth_profile_name(synth_profile p) {
    return (int)p >= 0 && (int)p < SYNTH_NPROFILES ? profile_names[p] : "?";
}

int synth_profile_parse(const char *name, synth_profile *p) {
    for (int i = 0; i < SYNTH_NPROFILES; i++)
        if (!strcmp(name, profile_names[i])) {
            *p = (synth_profile)i;
            return 0;
        }
    return -1;
}

// The lesions of a test subject of profile p; t2 and t1 on the template scale, lesion-free.
static void subject_lesions(synth_profile p, float *t2, float *t1, unsigned char *seg, const unsigned char *brain,
                            rng *r) {
    lesion_options lo;
    lesion_options_default(&lo);
    switch (p) {
    case SYNTH_GLIOMA: synth_lesions(t2, t1, seg, brain, NX, NY, NZ, &lo, r); return;
    case SYNTH_NONE: return;
    case SYNTH_HYPO:
    case SYNTH_SPARSE:
        lo.max_count = 2;
        lo.min_radius = lo.first_min_radius = 6.0f;
        lo.max_radius = 18.0f;
        if (p == SYNTH_HYPO) lo.p_hyper = lo.p_core = lo.p_halo = lo.p_halo_first = 0;
        else lo.kmin = 40, lo.kmax = 120, lo.p_in_range = 1.0f;
        synth_lesions(t2, t1, seg, brain, NX, NY, NZ, &lo, r);
        return;
    default: break;
    }
    anatomy A;
    anatomy_build(&A, t2, brain);
    if (p == SYNTH_METASTASIS) lesions_metastasis(t2, t1, seg, &A, r);
    else if (p == SYNTH_MS) lesions_ms(t2, t1, seg, &A, r);
    else lesions_boundary(t2, t1, seg, &A, r);
    anatomy_free(&A);
}

// ---- intensity changes: gamma, bias field, Rician noise, int16 -----------------------------------

static void finish_modality(short *out, float *img, const unsigned char *brain, rng *r, float scale) {
    double gamma = exp(clampf((float)rng_normal(r), -2, 2) * 0.1);
    double gain = rng_uniform_range(r, 0.85, 1.15);
    // bias: exp(sum of low-order separable cosines), amplitude ~ +-15 %
    double wb[3][3][3];
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 3; c++)
                wb[a][b][c] = (a + b + c) ? rng_normal(r) * 0.07 / (a + b + c) : 0.0;
    float sigma = (float)rng_uniform_range(r, 0.015, 0.04);
    float cx[3][NX], cy[3][NY], cz[3][NZ];
    for (int a = 0; a < 3; a++) {
        for (int i = 0; i < NX; i++) cx[a][i] = (float)cos(M_PI * a * i / (NX - 1));
        for (int i = 0; i < NY; i++) cy[a][i] = (float)cos(M_PI * a * i / (NY - 1));
        for (int i = 0; i < NZ; i++) cz[a][i] = (float)cos(M_PI * a * i / (NZ - 1));
    }
    for (int k = 0; k < NZ; k++)
        for (int j = 0; j < NY; j++)
            for (int i = 0; i < NX; i++) {
                size_t id = IDX(i, j, k);
                if (!brain[id]) {
                    out[id] = 0;
                    continue;
                }
                double b = 0;
                for (int a = 0; a < 3; a++)
                    for (int bb = 0; bb < 3; bb++) {
                        double s = cx[a][i] * cy[bb][j];
                        for (int c = 0; c < 3; c++) b += wb[a][bb][c] * s * cz[c][k];
                    }
                double v = pow(fmax(img[id], 0.0), gamma) * gain * exp(b);
                // Rician: magnitude of a complex signal with Gaussian noise in both channels
                double re = v + sigma * rng_normal(r), im = sigma * rng_normal(r);
                double m = sqrt(re * re + im * im) * scale;
                long q = lrint(m);
                out[id] = (short)(q < 1 ? 1 : q > 32767 ? 32767 : q);
            }
}

static void subject_id(char *out, size_t n, int is_test, int index) {
    snprintf(out, n, "%s_%03d", is_test ? "test" : "healthy", index);
}

typedef struct work {
    float *t1, *t2;
    unsigned char *brain, *seg;
    short *buf;
} work;

// The subject's anatomy, lesions and labels in wk (t1, t2 on the template's scale, brain, seg),
// and the seeds of its two modalities' finishing streams.
static void subject_make(const synth_options *o, const template3 *T, work *wk, int is_test, int index, rng *r1,
                         rng *r2) {
    rng r;
    // Independent streams: healthy i -> i, test j -> 2^32 + j (adding subjects changes no other).
    rng_seed_stream(&r, o->seed, (is_test ? (1ull << 32) : 0) + (uint64_t)index);
    memset(wk->t1, 0, NVOX * sizeof(float));
    memset(wk->t2, 0, NVOX * sizeof(float));
    memset(wk->brain, 0, NVOX);
    memset(wk->seg, 0, NVOX);
    warp *w = as_malloc(sizeof *w);
    warp_random(w, &r);
    warp_apply(wk->t1, wk->t2, wk->brain, T, w);
    free(w);
    if (is_test) subject_lesions(o->profile, wk->t2, wk->t1, wk->seg, wk->brain, &r);
    // Both modalities consume the stream in a fixed order whatever is written.
    rng_seed(r1, rng_u64(&r));
    rng_seed(r2, rng_u64(&r));
}

static int synth_subject(const synth_options *o, const template3 *T, work *wk, int is_test, int index) {
    rng r1, r2;
    subject_make(o, T, wk, is_test, index, &r1, &r2);
    char id[64], dir[4096], path[4200];
    subject_id(id, sizeof id, is_test, index);
    snprintf(dir, sizeof dir, "%s/%s/%s", o->out, is_test ? "test" : "healthy", id);
    if (fs_mkdirs(dir) != 0) return -1;
    if (o->write_t1) {
        finish_modality(wk->buf, wk->t1, wk->brain, &r1, 1000.0f);
        snprintf(path, sizeof path, "%s/%s_t1.nii.gz", dir, id);
        if (synth_write_nifti(path, wk->buf, 4, NX, NY, NZ, T->origin, o->gzip_level) != 0) return -1;
    }
    if (o->write_t2) {
        finish_modality(wk->buf, wk->t2, wk->brain, &r2, 1000.0f);
        snprintf(path, sizeof path, "%s/%s_t2.nii.gz", dir, id);
        if (synth_write_nifti(path, wk->buf, 4, NX, NY, NZ, T->origin, o->gzip_level) != 0) return -1;
    }
    if (is_test) {
        snprintf(path, sizeof path, "%s/%s_seg.nii.gz", dir, id);
        if (synth_write_nifti(path, wk->seg, 2, NX, NY, NZ, T->origin, o->gzip_level) != 0) return -1;
    }
    return 0;
}

struct synth_source {
    template3 T;
};

synth_source *synth_source_open(const char *brain_template) {
    if (!fs_exists(brain_template)) {
        as_fail("%s: template not found (install Debian's mricron-data: scripts/install-deps.sh)", brain_template);
        return NULL;
    }
    synth_source *s = as_calloc(1, sizeof *s);
    if (template_build(&s->T, brain_template) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

void synth_source_close(synth_source *s) {
    if (!s) return;
    free(s->T.tpl);
    free(s);
}

void synth_source_origin(const synth_source *s, double origin[3]) { memcpy(origin, s->T.origin, 3 * sizeof(double)); }

void synth_source_subject(const synth_source *s, const synth_options *o, int is_test, int index, int t2, short *scan,
                          unsigned char *seg, unsigned char *brain) {
    work wk;
    wk.t1 = as_malloc(NVOX * sizeof(float));
    wk.t2 = as_malloc(NVOX * sizeof(float));
    wk.brain = brain;
    wk.seg = seg;
    wk.buf = scan;
    rng r1, r2;
    subject_make(o, &s->T, &wk, is_test, index, &r1, &r2);
    if (t2) finish_modality(scan, wk.t2, brain, &r2, 1000.0f);
    else finish_modality(scan, wk.t1, brain, &r1, 1000.0f);
    free(wk.t1);
    free(wk.t2);
}

int synth_run(const synth_options *o) {
    if (!o->out || !o->out[0]) return as_fail("data synth: no output folder");
    if (!o->write_t1 && !o->write_t2) return as_fail("%s: no modality to write", o->out);
    if (!fs_exists(o->template_path))
        return as_fail("%s: template not found (install Debian's mricron-data: scripts/install-deps.sh)",
                       o->template_path);
    if (fs_mkdirs(o->out) != 0) return -1;
    template3 T;
    if (template_build(&T, o->template_path) != 0) return -1;
    int total = o->healthy + o->test, failed = 0;
    long done = 0;
    char first_error[1024] = "";
    progress pr;
    progress_begin(&pr, "data synth", total);
#pragma omp parallel
    {
        work wk;
        wk.t1 = as_malloc(NVOX * sizeof(float));
        wk.t2 = as_malloc(NVOX * sizeof(float));
        wk.brain = as_malloc(NVOX);
        wk.seg = as_malloc(NVOX);
        wk.buf = as_malloc(NVOX * sizeof(short));
#pragma omp for schedule(dynamic, 1)
        for (int s = 0; s < total; s++) {
            int bad;
#pragma omp atomic read
            bad = failed;
            if (bad) continue;
            // test subjects first: they take longer (lesions + seg), so the tail is shorter
            int is_test = s < o->test, index = is_test ? s : s - o->test;
            if (synth_subject(o, &T, &wk, is_test, index) != 0) {
#pragma omp critical(synth_err)
                {
                    if (!failed) snprintf(first_error, sizeof first_error, "%s", as_error());
                    failed = 1;
                }
            }
#pragma omp critical(synth_progress)
            {
                done++;
                progress_update(&pr, done, "subjects", NULL);
            }
        }
        free(wk.t1);
        free(wk.t2);
        free(wk.brain);
        free(wk.seg);
        free(wk.buf);
    }
    progress_end(&pr);
    free(T.tpl);
    if (failed) return as_fail("%s", first_error);
    char info[4096], path[4200];
    snprintf(info, sizeof info,
             "# anoswin data synth: parameters of this data set (written last: its presence means complete)\n"
             "template=%s\nseed=%llu\nhealthy=%d\ntest=%d\nprofile=%s\nmodalities=%s%s%s\ngrid=%dx%dx%d\nlayout=brats\n",
             o->template_path, (unsigned long long)o->seed, o->healthy, o->test, synth_profile_name(o->profile), o->write_t1 ? "t1" : "",
             o->write_t1 && o->write_t2 ? "," : "", o->write_t2 ? "t2" : "", NX, NY, NZ);
    snprintf(path, sizeof path, "%s/synth.txt", o->out);
    return fs_write_all(path, info, strlen(info));
}
