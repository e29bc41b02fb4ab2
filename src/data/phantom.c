#include "data/phantom.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/synth.h"   // synth_lesions
#include "util/error.h"   // as_calloc
#include "util/rng.h"

void phantom_make(volume *img, volume *tissue, volume *label, const phantom_options *o) {
    int nx = o->nx, ny = o->ny, nz = o->nz;
    size_t n = (size_t)nx * ny * nz;
    rng r;
    rng_seed_stream(&r, o->seed, 0x9a47);
    // Brain semi-axes: most of the grid, with a little per-seed jitter.
    double ax = 0.42 * nx * rng_uniform_range(&r, 0.95, 1.05), ay = 0.45 * ny * rng_uniform_range(&r, 0.95, 1.05);
    double az = 0.42 * nz * rng_uniform_range(&r, 0.95, 1.05);
    double cx = 0.5 * (nx - 1), cy = 0.5 * (ny - 1), cz = 0.5 * (nz - 1);
    double ph1 = rng_uniform_range(&r, 0, 2 * M_PI), ph2 = rng_uniform_range(&r, 0, 2 * M_PI);
    unsigned char *cls = as_calloc(n, 1);
    for (int k = 0; k < nz; k++)
        for (int j = 0; j < ny; j++)
            for (int i = 0; i < nx; i++) {
                double x = (i - cx) / ax, y = (j - cy) / ay, z = (k - cz) / az;
                double rr = sqrt(x * x + y * y + z * z);
                if (rr > 1) continue;
                double az_ang = atan2(y, x), el = atan2(z, sqrt(x * x + y * y));
                // cortex thickness ~ 12 % of the radius, border folded by a few harmonics
                double wave = 0.04 * sin(9 * az_ang + ph1) * cos(7 * el + ph2) + 0.02 * sin(17 * az_ang + 3 * el);
                int c;
                if (rr > 0.95) c = PHANTOM_CSF;
                else if (rr > 0.80 + wave) c = PHANTOM_GM;
                else c = PHANTOM_WM;
                // midline fissure (CSF) in the upper half
                if (fabs(i - cx) < 0.8 && z > -0.1 && rr > 0.3) c = PHANTOM_CSF;
                // lateral ventricles: two small ellipsoids beside the midline
                for (int s = -1; s <= 1; s += 2) {
                    double vx = (x - s * 0.16) / 0.09, vy = (y + 0.05) / 0.35, vz = (z - 0.05) / 0.18;
                    if (vx * vx + vy * vy + vz * vz < 1) c = PHANTOM_CSF;
                }
                cls[(size_t)i + (size_t)nx * ((size_t)j + (size_t)ny * k)] = (unsigned char)c;
            }
    float pd[3] = {1, 1, 1};
    volume_alloc(img, nx, ny, nz, pd);
    static const float value[4] = {0.0f, 1.0f, 0.55f, 0.33f};
    unsigned char *brain = as_calloc(n, 1);
    for (size_t q = 0; q < n; q++) {
        img->data[q] = value[cls[q]];
        brain[q] = cls[q] != PHANTOM_BG;
    }
    unsigned char *seg = as_calloc(n, 1);
    if (o->lesions > 0) {
        lesion_options lo;
        lesion_options_default(&lo);
        int m = nx < ny ? (nx < nz ? nx : nz) : (ny < nz ? ny : nz);
        lo.min_count = lo.max_count = o->lesions;
        lo.min_radius = (float)fmax(1.5, 0.04 * m);
        lo.max_radius = (float)fmax(2.5, 0.14 * m);
        lo.first_min_radius = (float)fmax(2.0, 0.09 * m);
        lo.kmin = nz / 3;
        lo.kmax = 2 * nz / 3;
        synth_lesions(img->data, NULL, seg, brain, nx, ny, nz, &lo, &r);
    }
    if (o->noise > 0)
        for (size_t q = 0; q < n; q++) {
            if (!brain[q]) continue;
            double re = img->data[q] + o->noise * rng_normal(&r), im = o->noise * rng_normal(&r);
            float v = (float)sqrt(re * re + im * im);
            img->data[q] = v > 1e-3f ? v : 1e-3f;  // stays > 0 inside the brain
        }
    if (tissue) {
        volume_alloc(tissue, nx, ny, nz, pd);
        for (size_t q = 0; q < n; q++) tissue->data[q] = cls[q];
    }
    if (label) {
        volume_alloc(label, nx, ny, nz, pd);
        for (size_t q = 0; q < n; q++) label->data[q] = seg[q];
    }
    free(cls);
    free(brain);
    free(seg);
}
