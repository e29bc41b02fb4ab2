// Morphology and labelling (src/util/morph.c) against scipy.ndimage (tools/ref_morph.py) on
// random maps and masks of odd shapes, 2-D, per-slice stacks and 3-D; component ranking/top-N on
// constructed cases.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/morph.h"
#include "helpers/testutil.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/rng.h"

typedef struct tcase { int nx, ny, nz, ndim, shape, k; float density; } tcase;

static const tcase cases[] = {
    {37, 23, 1, 2, MORPH_SQUARE, 3, 0.6f}, {37, 23, 1, 2, MORPH_SQUARE, 1, 0.5f},
    {31, 29, 1, 2, MORPH_SQUARE, 4, 0.7f}, {19, 41, 1, 2, MORPH_CROSS, 5, 0.6f},
    {13, 11, 1, 2, MORPH_SQUARE, 2, 0.4f}, {17, 13, 5, 2, MORPH_SQUARE, 3, 0.55f},
    {15, 12, 9, 3, MORPH_SQUARE, 3, 0.75f}, {11, 14, 7, 3, MORPH_CROSS, 3, 0.45f},
    {9, 10, 8, 3, MORPH_SQUARE, 2, 0.35f}, {12, 9, 6, 3, MORPH_SQUARE, 5, 0.8f},
    {3, 2, 1, 2, MORPH_SQUARE, 7, 0.9f},  // element larger than the image
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

static void path_of(char *buf, size_t n, const char *dir, const char *name, int id) {
    char f[128];
    snprintf(f, sizeof f, "%s_%d.f32", name, id);
    fs_join(buf, n, dir, f);
}

static void check_u8(const char *what, const uint8_t *got, const char *dir, const char *ref, int id, size_t n) {
    char p[4096], name[128];
    path_of(p, sizeof p, dir, ref, id);
    float *r = tu_read_f32(p, n);
    float *g = as_malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) g[i] = got[i];
    snprintf(name, sizeof name, "case %d %s", id, what);
    tu_allclose(name, g, r, n, 0, 0);
    free(g);
    free(r);
}

static void check_labels(const char *dir, int id, const uint8_t *mask, const tcase *c, size_t n) {
    static const int conns[] = {4, 8, 6, 18, 26};
    int32_t *lab = as_malloc(sizeof(int32_t) * n);
    float *g = as_malloc(sizeof(float) * n);
    for (int j = 0; j < 5; j++) {
        int nl = morph_label(lab, mask, c->nx, c->ny, c->nz, conns[j]);
        char ref[32], p[4096], name[128];
        snprintf(ref, sizeof ref, "label%d", conns[j]);
        path_of(p, sizeof p, dir, ref, id);
        float *r = tu_read_f32(p, n);
        float rmax = 0;
        for (size_t i = 0; i < n; i++) {
            g[i] = (float)lab[i];
            if (r[i] > rmax) rmax = r[i];
        }
        snprintf(name, sizeof name, "case %d label conn %d (%d components)", id, conns[j], nl);
        tu_allclose(name, g, r, n, 0, 0);
        CHECK(nl == (int)rmax, "case %d conn %d: %d components, scipy %d", id, conns[j], nl, (int)rmax);
        free(r);
    }
    free(g);
    free(lab);
}

static void test_against_scipy(void) {
    const char *dir = tu_scratch_dir("util_morph");
    char p[4096];
    fs_join(p, sizeof p, dir, "cases.txt");
    FILE *f = fopen(p, "w");
    rng r;
    rng_seed(&r, 1234);
    float *maps[NCASES];
    uint8_t *masks[NCASES];
    for (int id = 0; id < NCASES; id++) {
        const tcase *c = &cases[id];
        size_t n = (size_t)c->nx * c->ny * c->nz;
        fprintf(f, "%d %d %d %d %d %d %d\n", id, c->nx, c->ny, c->nz, c->ndim, c->shape, c->k);
        maps[id] = as_malloc(sizeof(float) * n);
        masks[id] = as_malloc(n);
        float *mf = as_malloc(sizeof(float) * n);
        for (size_t i = 0; i < n; i++) {
            maps[id][i] = (float)rng_uniform(&r);
            masks[id][i] = rng_uniform(&r) < c->density;
            mf[i] = masks[id][i];
        }
        path_of(p, sizeof p, dir, "map", id);
        tu_write_f32(p, maps[id], n);
        path_of(p, sizeof p, dir, "mask", id);
        tu_write_f32(p, mf, n);
        free(mf);
    }
    fclose(f);
    char args[4200];
    snprintf(args, sizeof args, "%s", dir);
    tu_run_python("tools/ref_morph.py", args);

    for (int id = 0; id < NCASES; id++) {
        const tcase *c = &cases[id];
        size_t n = (size_t)c->nx * c->ny * c->nz;
        float *g = as_malloc(sizeof(float) * n);
        uint8_t *b = as_malloc(n);
        char name[128];
        float *ref;

        morph_erode_f32(g, maps[id], c->nx, c->ny, c->nz, c->ndim, c->shape, c->k);
        path_of(p, sizeof p, dir, "gerode", id);
        ref = tu_read_f32(p, n);
        snprintf(name, sizeof name, "case %d grey erosion", id);
        tu_allclose(name, g, ref, n, 0, 0);
        free(ref);
        if (c->k % 2) {
            path_of(p, sizeof p, dir, "gerode_reflect", id);
            ref = tu_read_f32(p, n);
            snprintf(name, sizeof name, "case %d grey erosion = mode reflect", id);
            tu_allclose(name, g, ref, n, 0, 0);
            free(ref);
        }
        morph_dilate_f32(g, maps[id], c->nx, c->ny, c->nz, c->ndim, c->shape, c->k);
        path_of(p, sizeof p, dir, "gdilate", id);
        ref = tu_read_f32(p, n);
        snprintf(name, sizeof name, "case %d grey dilation", id);
        tu_allclose(name, g, ref, n, 0, 0);
        free(ref);
        if (c->k % 2) {
            path_of(p, sizeof p, dir, "gdilate_reflect", id);
            ref = tu_read_f32(p, n);
            snprintf(name, sizeof name, "case %d grey dilation = mode reflect", id);
            tu_allclose(name, g, ref, n, 0, 0);
            free(ref);
        }
        morph_erode_u8(b, masks[id], c->nx, c->ny, c->nz, c->ndim, c->shape, c->k, 0);
        check_u8("binary erosion border 0", b, dir, "berode0", id, n);
        morph_erode_u8(b, masks[id], c->nx, c->ny, c->nz, c->ndim, c->shape, c->k, 1);
        check_u8("binary erosion border 1", b, dir, "berode1", id, n);
        morph_dilate_u8(b, masks[id], c->nx, c->ny, c->nz, c->ndim, c->shape, c->k);
        check_u8("binary dilation", b, dir, "bdilate", id, n);
        check_labels(dir, id, masks[id], c, n);
        free(b);
        free(g);
        free(maps[id]);
        free(masks[id]);
    }
}

// Constructed: three blobs with known means; ranking and top-N; ties go to the earlier label.
static void test_ranking(void) {
    enum { NX = 12, NY = 8 };
    uint8_t m[NX * NY] = {0};
    float v[NX * NY] = {0};
    int32_t lab[NX * NY];
    // blob A (first in scan order) at rows 0-1 cols 0-1, value 0.6
    // blob B rows 0-2 cols 5-6, value 0.9 ; blob C rows 5-6 cols 2-3, value 0.6 (ties A)
    // blob D single pixel (7, 11), value 0.95
    for (int y = 0; y < NY; y++)
        for (int x = 0; x < NX; x++) {
            int i = x + NX * y;
            if (y <= 1 && x <= 1) m[i] = 1, v[i] = 0.6f;
            if (y <= 2 && (x == 5 || x == 6)) m[i] = 1, v[i] = 0.9f;
            if ((y == 5 || y == 6) && (x == 2 || x == 3)) m[i] = 1, v[i] = 0.6f;
        }
    m[11 + NX * 7] = 1, v[11 + NX * 7] = 0.95f;
    v[5 + NX * 0] = 0.3f;  // B mean: (5*0.9 + 0.3)/6 = 0.8
    int n = morph_label(lab, m, NX, NY, 1, 8);
    CHECK(n == 4, "4 components, got %d", n);
    CHECK(lab[0] == 1 && lab[5] == 2 && lab[2 + NX * 5] == 3 && lab[11 + NX * 7] == 4, "scan-order labels");
    int64_t size[5];
    double mean[5];
    morph_component_stats(size, mean, lab, v, NX * NY, n);
    CHECK(size[1] == 4 && size[2] == 6 && size[3] == 4 && size[4] == 1, "sizes");
    CHECK(mean[2] > 0.7999 && mean[2] < 0.8001, "mean of B %g", mean[2]);
    uint8_t out[NX * NY];
    int kept[4];
    int nk = morph_keep_top(out, kept, lab, NX * NY, mean, n, 2);
    CHECK(nk == 2 && kept[0] == 4 && kept[1] == 2, "top 2 = D, B (got %d: %d %d)", nk, kept[0], kept[1]);
    CHECK(out[11 + NX * 7] && out[6 + NX * 2] && !out[0] && !out[2 + NX * 5], "top-2 mask");
    nk = morph_keep_top(out, kept, lab, NX * NY, mean, n, 3);
    CHECK(nk == 3 && kept[2] == 1, "tie 0.6: earlier label A wins (got %d)", kept[2]);
    nk = morph_keep_top(out, NULL, lab, NX * NY, mean, n, 7);
    int all = 1;
    for (int i = 0; i < NX * NY; i++) all &= out[i] == (m[i] != 0);
    CHECK(nk == 4 && all, "N larger than the count keeps everything");
    CHECK(morph_label(lab, m, NX, NY, 1, 5) == -1, "bad connectivity refused");
}

// Grey erosion of the continuous map then threshold: a pixel survives only if its whole k x k
// window is above the threshold (the meaning of "erode the combined map").
static void test_erode_threshold(void) {
    enum { NX = 9, NY = 9 };
    float m[NX * NY], e[NX * NY];
    for (int i = 0; i < NX * NY; i++) m[i] = 0.2f;
    for (int y = 2; y <= 6; y++)
        for (int x = 2; x <= 6; x++) m[x + NX * y] = 0.8f;
    m[8 + NX * 0] = 1.0f;  // isolated hot pixel
    morph_erode_f32(e, m, NX, NY, 1, 2, MORPH_SQUARE, 3);
    int ok = 1;
    for (int y = 0; y < NY; y++)
        for (int x = 0; x < NX; x++) ok &= (e[x + NX * y] > 0.5f) == (x >= 3 && x <= 5 && y >= 3 && y <= 5);
    CHECK(ok, "3x3 erosion keeps the 3x3 core of a 5x5 block and removes a lone pixel");
    morph_erode_f32(e, m, NX, NY, 1, 2, MORPH_SQUARE, 1);
    CHECK(!memcmp(e, m, sizeof m), "k = 1 is the identity");
}

int main(void) {
    test_against_scipy();
    test_ranking();
    test_erode_threshold();
    return tu_finish();
}
