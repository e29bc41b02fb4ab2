// bf16 mixed precision against PyTorch (tools/nn_bf16_ref.py):
//  - bf16_from_float equals torch's .to(torch.bfloat16) bit for bit (ties to even, denormals,
//    infinities, overflow to infinity, NaN stays NaN);
//  - gemm_bf16 on the transposes and odd shapes the layers use equals the float64 product of the
//    bf16-rounded operands within fp32 accumulation error (|err| <= 16·sqrt(K)·2^-24 · the
//    element's |alpha|·|A||B| + |beta·C|), differs from the unrounded product as bf16 does
//    (relative L2 between 1e-4 and 1e-2: a kernel that quietly ran in fp32 fails the lower bound),
//    leaves C's padding columns alone and never reads C when beta is 0;
//  - the result is reproducible for a thread count (1, 2, 3), and the linear layers follow the
//    precision switch;
//  - window attention in fp32 and bf16 against torch (float64) with a shifted-window mask;
//  - Conv2d / ConvTranspose2d under bf16 against torch's float64 of the bf16-rounded tensors.
// Both kernels where the CPU has them (AMX-BF16 tiles, AVX512-BF16 vdpbf16ps); on a CPU without
// AVX512-BF16 only the rounding and the refusal of bf16 are checked.
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/testutil.h"
#include "nn/nn.h"

static const char *dir;

static float *rd(const char *name, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.f32", dir, name);
    return tu_read_f32(path, n);
}

static uint32_t bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static void test_rounding(void) {
    const size_t n = 18 + 10000;
    float *in = rd("round_in", n), *ref = rd("round_out", n);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        float got = bf16_to_float(bf16_from_float(in[i]));
        int ok = isnan(ref[i]) ? isnan(got) : bits(got) == bits(ref[i]);
        if (!ok && bad++ < 5)
            fprintf(stderr, "  round %zu: %a (0x%08x) -> 0x%08x, torch 0x%08x\n", i, in[i], bits(in[i]), bits(got),
                    bits(ref[i]));
    }
    CHECK(bad == 0, "bf16_from_float equals torch's rounding on %zu values (%zu differ)", n, bad);
    CHECK(isnan(bf16_to_float(bf16_from_float(NAN))), "NaN stays NaN");
    free(in);
    free(ref);
}

typedef struct gcase {
    int ta, tb, M, N, K;
    float alpha, beta;
    int pa, pb, pc;
} gcase;
// Must match CASES in tools/nn_bf16_ref.py.
static const gcase CASES[] = {
    {0, 1, 37, 45, 67, 1.0f, 0.0f, 0, 0, 0},     {0, 0, 130, 33, 301, 1.0f, 1.0f, 3, 1, 2},
    {1, 0, 19, 70, 1000, 1.0f, 1.0f, 0, 5, 0},   {0, 1, 300, 1100, 40, 0.5f, 0.25f, 1, 0, 7},
    {1, 1, 9, 17, 5, 1.0f, 0.0f, 2, 2, 2},       {0, 0, 1, 1, 1, 2.0f, 0.0f, 0, 0, 0},
    {1, 0, 96, 384, 2000, 1.0f, 1.0f, 0, 0, 0},  {1, 0, 200, 45, 777, 1.0f, 1.0f, 4, 3, 5},
    {1, 0, 70, 33, 600, 0.5f, 0.0f, 0, 0, 1},    {1, 0, 40, 90, 2500, 1.0f, 0.5f, 1, 2, 3},
    {1, 0, 100, 40, 2600, 1.0f, 0.0f, 0, 1, 0},
    // K blocks split evenly (3 x 800 rounded to 32: 800 + 800 + 711), 65 rows past one 64-row block
    {0, 1, 65, 97, 2311, 1.0f, 0.5f, 1, 0, 2},
};

static void test_gemm_case(int idx, const gcase *g) {
    const int ar = g->ta ? g->K : g->M, ac = g->ta ? g->M : g->K, br = g->tb ? g->N : g->K,
              bc = g->tb ? g->K : g->N;
    const int lda = ac + g->pa, ldb = bc + g->pb, ldc = g->N + g->pc;
    const size_t na = (size_t)ar * lda, nb = (size_t)br * ldb, ncc = (size_t)g->M * ldc;
    char name[64];
#define RD(x, n) (snprintf(name, sizeof name, "gemm%d_%s", idx, x), rd(name, n))
    float *A = RD("a", na), *B = RD("b", nb), *C0 = RD("c", ncc), *ref = RD("ref", ncc), *scale = RD("scale", ncc),
          *fp = RD("fp", ncc);
#undef RD
    float *C = malloc(ncc * sizeof(float));
    memcpy(C, C0, ncc * sizeof(float));
    if (g->beta == 0.0f)  // beta 0 must not read C: NaN there would leak into the result
        for (int i = 0; i < g->M; i++)
            for (int j = 0; j < g->N; j++) C[(size_t)i * ldc + j] = NAN;
    omp_set_num_threads(2);
    gemm_bf16(g->ta, g->tb, g->M, g->N, g->K, g->alpha, A, lda, B, ldb, g->beta, C, ldc);

    const double tol = 16.0 * sqrt((double)g->K) * ldexp(1.0, -24);
    size_t bad = 0, pad_bad = 0;
    double e2 = 0, r2 = 0;
    for (int i = 0; i < g->M; i++)
        for (int j = 0; j < ldc; j++) {
            size_t k = (size_t)i * ldc + j;
            if (j >= g->N) {
                pad_bad += bits(C[k]) != bits(C0[k]);
                continue;
            }
            double err = fabs((double)C[k] - ref[k]);
            if (!(err <= tol * scale[k] + 1e-30) && bad++ < 5)
                fprintf(stderr, "  gemm%d (%d,%d): %.9g vs %.9g (scale %.3g)\n", idx, i, j, C[k], ref[k], scale[k]);
            double d = (double)C[k] - fp[k];
            e2 += d * d;
            r2 += (double)fp[k] * fp[k];
        }
    double rel = sqrt(e2 / (r2 > 0 ? r2 : 1e-300));
    CHECK(bad == 0, "gemm%d %c%c %dx%dx%d: product of bf16 operands within fp32 accumulation error (%zu off)", idx,
          g->ta ? 'T' : 'N', g->tb ? 'T' : 'N', g->M, g->N, g->K, bad);
    CHECK(pad_bad == 0, "gemm%d: columns past N untouched", idx);
    // One element (1x1x1) has no statistics; the lower bound holds for the sums.
    if (g->K > 1)
        CHECK(rel > 1e-4 && rel < 1e-2, "gemm%d: relative L2 to the fp32 product %.3g is bf16's (1e-4..1e-2)", idx,
              rel);

    // Reproducible for a thread count: 1, 2 and 3 threads each give the same bits twice, and
    // are all within the accumulation error (long weight gradients split K over the threads).
    float *C1 = malloc(ncc * sizeof(float)), *C2 = malloc(ncc * sizeof(float));
    int same = 1;
    size_t off = 0;
    for (int nt = 1; nt <= 3; nt++) {
        omp_set_num_threads(nt);
        memcpy(C1, C0, ncc * sizeof(float));
        memcpy(C2, C0, ncc * sizeof(float));
        gemm_bf16(g->ta, g->tb, g->M, g->N, g->K, g->alpha, A, lda, B, ldb, g->beta, C1, ldc);
        gemm_bf16(g->ta, g->tb, g->M, g->N, g->K, g->alpha, A, lda, B, ldb, g->beta, C2, ldc);
        for (int i = 0; i < g->M; i++)
            for (int j = 0; j < g->N; j++) {
                size_t k = (size_t)i * ldc + j;
                same &= bits(C1[k]) == bits(C2[k]);
                off += !(fabs((double)C1[k] - ref[k]) <= tol * scale[k] + 1e-30);
            }
    }
    omp_set_num_threads(2);
    CHECK(same, "gemm%d: the same bits twice with 1, 2 and 3 threads", idx);
    CHECK(off == 0, "gemm%d: within the accumulation error with 1, 2 and 3 threads (%zu off)", idx, off);
    free(C1), free(C2);
    free(A), free(B), free(C0), free(ref), free(scale), free(fp), free(C);
}

// linear_forward / linear_backward go through gemm_bf16 when the precision is bf16, and back.
static void test_precision_switch(void) {
    enum { N = 50, IC = 40, OC = 24 };
    float *x = malloc(sizeof(float) * N * IC), *w = malloc(sizeof(float) * OC * IC), *y = malloc(sizeof(float) * N * OC),
          *yr = malloc(sizeof(float) * N * OC), *dx = calloc(N * IC, sizeof(float)),
          *dxr = calloc(N * IC, sizeof(float));
    for (int i = 0; i < N * IC; i++) x[i] = sinf(0.37f * (float)i);
    for (int i = 0; i < OC * IC; i++) w[i] = cosf(0.11f * (float)i);
    CHECK(nn_set_precision(NN_BF16) == 0 && nn_precision() == NN_BF16, "precision bf16 selected");
    linear_forward(y, x, w, NULL, N, IC, OC);
    gemm_bf16(0, 1, N, OC, IC, 1.0f, x, IC, w, IC, 0.0f, yr, OC);
    CHECK(!memcmp(y, yr, sizeof(float) * N * OC), "bf16: linear_forward is gemm_bf16");
    linear_backward(dx, NULL, NULL, y, NULL, w, N, IC, OC);
    gemm_bf16(0, 0, N, IC, OC, 1.0f, y, OC, w, IC, 1.0f, dxr, IC);
    CHECK(!memcmp(dx, dxr, sizeof(float) * N * IC), "bf16: linear_backward's input gradient is gemm_bf16");
    CHECK(nn_set_precision(NN_FP32) == 0, "precision fp32 selected");
    linear_forward(y, x, w, NULL, N, IC, OC);
    gemm(0, 1, N, OC, IC, 1.0f, x, IC, w, IC, 0.0f, yr, OC);
    CHECK(!memcmp(y, yr, sizeof(float) * N * OC), "fp32: linear_forward is gemm");
    free(x), free(w), free(y), free(yr), free(dx), free(dxr);
}

// The fused MLP in bf16 (row tiles, each tile's products on one thread: AMX tiles where present,
// else the unfused layers) gives the unfused layers' values bit for bit: every output element is
// the same K-ordered bf16 sum whichever rows a product covers. N is no multiple of the tile.
static void test_mlp_fused(void) {
    enum { N = 300, C = 96, HID = 384, TILE = 128 };
    float *x = malloc(sizeof(float) * N * C), *w1 = malloc(sizeof(float) * HID * C), *b1 = malloc(sizeof(float) * HID),
          *w2 = malloc(sizeof(float) * C * HID), *y = malloc(sizeof(float) * N * C), *yr = malloc(sizeof(float) * N * C),
          *pre = malloc(sizeof(float) * N * HID), *prer = malloc(sizeof(float) * N * HID),
          *act = malloc(sizeof(float) * N * HID), *actr = malloc(sizeof(float) * N * HID),
          *dg = malloc(sizeof(float) * N * HID);
    for (int i = 0; i < N * C; i++) x[i] = sinf(0.37f * (float)i);
    for (int i = 0; i < HID * C; i++) w1[i] = 0.2f * cosf(0.11f * (float)i), w2[i] = 0.2f * sinf(0.07f * (float)i);
    for (int i = 0; i < HID; i++) b1[i] = 0.1f * cosf((float)i);
    nn_set_precision(NN_BF16);
    mlp_forward(y, pre, act, x, w1, b1, w2, N, C, HID, TILE);
    linear_forward(prer, x, w1, b1, N, C, HID);
    gelu_forward(actr, prer, (size_t)N * HID);
    linear_forward(yr, actr, w2, NULL, N, HID, C);
    CHECK(!memcmp(pre, prer, sizeof(float) * N * HID) && !memcmp(y, yr, sizeof(float) * N * C),
          "bf16 (%s): fused MLP forward = unfused layers, bit for bit", nn_bf16_kernel());
    // Backward: dact = (dy·W2) ∘ GELU'(pre); dy = y here.
    memcpy(dg, pre, sizeof(float) * N * HID);
    gelu_value_grad(act, dg, (size_t)N * HID);
    mlp_backward_act(act, y, w2, dg, N, C, HID, TILE);
    gemm_bf16(0, 0, N, HID, C, 1.0f, y, C, w2, HID, 0.0f, actr, HID);
    gelu_backward(actr, actr, pre, (size_t)N * HID);
    CHECK(!memcmp(act, actr, sizeof(float) * N * HID), "bf16 (%s): fused MLP backward = unfused, bit for bit",
          nn_bf16_kernel());
    nn_set_precision(NN_FP32);
    free(x), free(w1), free(b1), free(w2), free(y), free(yr), free(pre), free(prer), free(act), free(actr), free(dg);
}

// Window attention against torch in float64: the fast path (head_dim 32, T 49, a shifted-window
// mask) stays fp32 in bf16, to 1e-5 relative L2 (the reference itself); the long-window path (T 80,
// head_dim 64, no mask: the ViT's) runs its products in bf16 on AMX, within 1e-2 and farther than
// 1e-4 (its operands really are bf16), and in fp32 elsewhere.
static void attention_case(const char *pre, int NWIN, int NW, int T, int HEADS, int C, int long_path) {
    char key[64];
#define RD(name, n) (snprintf(key, sizeof key, "%s_%s", pre, name), rd(key, n))
    const size_t nq = (size_t)NWIN * T * 3 * C, no = (size_t)NWIN * T * C, nb = (size_t)HEADS * T * T;
    float *qkv = RD("qkv", nq), *bias = RD("bias", nb), *regf = RD("region", (size_t)NW * T), *g = RD("g", no),
          *out_ref = RD("out", no), *dqkv_ref = RD("dqkv", nq), *dbias_ref = RD("dbias", nb);
#undef RD
    int *region = malloc(sizeof(int) * NW * T);
    for (int i = 0; i < NW * T; i++) region[i] = (int)regf[i];
    float *out = malloc(sizeof(float) * no), *dqkv = malloc(sizeof(float) * nq), *dbias = malloc(sizeof(float) * nb);
    for (int run = 0; run < 2; run++) {
        nn_set_precision(run ? NN_BF16 : NN_FP32);
        const int tiles = run && long_path && !strcmp(nn_bf16_kernel(), "amx-bf16");
        const double tol = tiles ? 1e-2 : 1e-5;
        const char *pn = run == 0 ? "fp32" : "bf16";
        char name[96];
        window_attention_forward(out, qkv, bias, region, NWIN, NW, T, C, HEADS);
        memset(dqkv, 0, sizeof(float) * nq);
        memset(dbias, 0, sizeof(float) * nb);
        window_attention_backward(dqkv, dbias, g, qkv, bias, region, NWIN, NW, T, C, HEADS);
        snprintf(name, sizeof name, "%s %s (%s) out", pre, pn, nn_bf16_kernel());
        tu_rel_l2(name, out, out_ref, no, tol);
        snprintf(name, sizeof name, "%s %s dqkv", pre, pn);
        tu_rel_l2(name, dqkv, dqkv_ref, nq, tol);
        snprintf(name, sizeof name, "%s %s dbias", pre, pn);
        tu_rel_l2(name, dbias, dbias_ref, nb, tol);
        if (tiles) {
            double e2 = 0, r2 = 0;
            for (size_t i = 0; i < nq; i++)
                e2 += (dqkv[i] - dqkv_ref[i]) * (double)(dqkv[i] - dqkv_ref[i]), r2 += dqkv_ref[i] * (double)dqkv_ref[i];
            CHECK(sqrt(e2 / r2) > 1e-4, "%s bf16 on AMX: dqkv differs from float64 as bf16 does (%.3g)", pre,
                  sqrt(e2 / r2));
        }
    }
    nn_set_precision(NN_FP32);
    free(qkv), free(bias), free(regf), free(g), free(out_ref), free(dqkv_ref), free(dbias_ref);
    free(region), free(out), free(dqkv), free(dbias);
}

static void test_attention(void) {
    attention_case("attn", 4, 2, 49, 2, 64, 0);
    attention_case("lattn", 2, 1, 80, 2, 128, 1);
}

// Convolutions follow the switch: under bf16, Conv2d and ConvTranspose2d (forward, input and
// weight gradients) equal the float64 convolution of the bf16-rounded tensors within fp32
// accumulation error (relative L2 <= 1e-5) and differ from the unrounded one as bf16 does
// (1e-4..1e-2); the bias gradient stays an fp32 sum. Must match CONV_CASES in the reference.
typedef struct ccase {
    int tr, B, IC, H, W, OC, k, s, p, op;
} ccase;
static const ccase CONV_CASES[] = {
    {0, 3, 5, 11, 9, 7, 3, 2, 1, 0}, {0, 2, 40, 16, 16, 48, 3, 1, 1, 0}, {0, 1, 33, 7, 7, 20, 1, 1, 0, 0},
    {1, 2, 24, 8, 8, 16, 4, 2, 1, 0}, {1, 3, 6, 5, 7, 3, 5, 2, 2, 1},
};

static double rel_l2(const float *got, const float *ref, size_t n) {
    double e2 = 0, r2 = 0;
    for (size_t i = 0; i < n; i++) e2 += (got[i] - (double)ref[i]) * (got[i] - (double)ref[i]), r2 += ref[i] * (double)ref[i];
    return sqrt(e2 / (r2 > 0 ? r2 : 1e-300));
}

static void test_conv_case(int idx, const ccase *c) {
    const int OH = c->tr ? convt_out_size(c->H, c->k, c->s, c->p, c->op) : conv_out_size(c->H, c->k, c->s, c->p);
    const int OW = c->tr ? convt_out_size(c->W, c->k, c->s, c->p, c->op) : conv_out_size(c->W, c->k, c->s, c->p);
    const size_t nx = (size_t)c->B * c->IC * c->H * c->W, nw = (size_t)c->IC * c->OC * c->k * c->k,
                 ny = (size_t)c->B * c->OC * OH * OW;
    char name[96];
#define RD(x, n) (snprintf(name, sizeof name, "conv%d_%s", idx, x), rd(name, n))
    float *x = RD("x", nx), *w = RD("w", nw), *b = RD("b", c->OC), *g = RD("g", ny), *db_ref = RD("db", c->OC);
    float *ref[2][3] = {{RD("y_bf", ny), RD("dx_bf", nx), RD("dw_bf", nw)}, {RD("y_fp", ny), RD("dx_fp", nx), RD("dw_fp", nw)}};
#undef RD
    const size_t ns = c->tr ? conv_transpose2d_scratch_floats(c->B, c->IC, c->OC, c->k, c->H, c->W)
                            : conv2d_scratch_floats(c->B, c->IC, c->OC, c->k, OH, OW);
    float *y = malloc(sizeof(float) * ny), *dx = calloc(nx, sizeof(float)), *dw = calloc(nw, sizeof(float)),
          *db = calloc((size_t)c->OC, sizeof(float)), *scratch = malloc(sizeof(float) * ns);
    nn_set_precision(NN_BF16);
    if (c->tr) {
        conv_transpose2d_forward(y, scratch, x, w, b, c->B, c->IC, c->H, c->W, c->OC, c->k, c->s, c->p, c->op);
        conv_transpose2d_backward(dx, dw, db, scratch, g, x, w, c->B, c->IC, c->H, c->W, c->OC, c->k, c->s, c->p,
                                  c->op);
    } else {
        conv2d_forward(y, scratch, x, w, b, c->B, c->IC, c->H, c->W, c->OC, c->k, c->s, c->p);
        conv2d_backward(dx, dw, db, scratch, g, x, w, c->B, c->IC, c->H, c->W, c->OC, c->k, c->s, c->p);
    }
    nn_set_precision(NN_FP32);
    const float *got[3] = {y, dx, dw};
    const size_t n[3] = {ny, nx, nw};
    const char *what[3] = {"y", "dx", "dw"};
    for (int t = 0; t < 3; t++) {
        double eb = rel_l2(got[t], ref[0][t], n[t]), ef = rel_l2(got[t], ref[1][t], n[t]);
        printf("conv%d %s: rel L2 %.2g to bf16 operands' float64, %.2g to fp32's\n", idx, what[t], eb, ef);
        CHECK(eb <= 1e-5, "conv%d %s %s: relative L2 %.3g to the float64 result of bf16 operands (<= 1e-5)", idx,
              c->tr ? "transposed" : "conv2d", what[t], eb);
        CHECK(ef > 1e-4 && ef < 1e-2, "conv%d %s: relative L2 %.3g to the unrounded result is bf16's (1e-4..1e-2)",
              idx, what[t], ef);
    }
    snprintf(name, sizeof name, "conv%d db (fp32 sum)", idx);
    tu_rel_l2(name, db, db_ref, (size_t)c->OC, 1e-5);
    free(x), free(w), free(b), free(g), free(db_ref), free(y), free(dx), free(dw), free(db), free(scratch);
    for (int i = 0; i < 2; i++)
        for (int t = 0; t < 3; t++) free(ref[i][t]);
}

int main(void) {
    dir = tu_scratch_dir("nn_bf16");
    tu_run_python("tools/nn_bf16_ref.py", dir);
    int p = -1;
    CHECK(nn_precision_parse("bf16", &p) == 0 && p == NN_BF16, "parse bf16");
    CHECK(nn_precision_parse("fp32", &p) == 0 && p == NN_FP32, "parse fp32");
    CHECK(nn_precision_parse("fp16", &p) != 0, "parse rejects fp16");
    CHECK(nn_precision() == NN_FP32, "fp32 is the default");
    test_rounding();
    if (!nn_bf16_supported()) {
        CHECK(nn_set_precision(NN_BF16) != 0 && nn_precision() == NN_FP32, "no AVX512-BF16: bf16 refused, fp32 kept");
        printf("(no AVX512-BF16 on this CPU: the bf16 GEMM checks are skipped)\n");
        return tu_finish();
    }
    // Each kernel this CPU has: AMX tiles where allowed, then vdpbf16ps.
    for (int amx = 1; amx >= 0; amx--) {
        nn_bf16_allow_amx(amx);
        if (amx && strcmp(nn_bf16_kernel(), "amx-bf16")) continue;
        printf("kernel %s\n", nn_bf16_kernel());
        for (int i = 0; i < (int)(sizeof CASES / sizeof CASES[0]); i++) test_gemm_case(i, &CASES[i]);
        test_precision_switch();
        test_mlp_fused();
        test_attention();
        for (int i = 0; i < (int)(sizeof CONV_CASES / sizeof CONV_CASES[0]); i++) test_conv_case(i, &CONV_CASES[i]);
    }
    return tu_finish();
}
