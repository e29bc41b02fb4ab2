// The healthy-scan calibration (src/detect/calibrate.c) and the JSON reader it uses
// (src/util/json.c): thresholds equal numpy.quantile(values, 1 - fpr) (tools/calibrate_ref.py),
// log-linear interpolation between the table's rates, the file's round trip, corrupted files
// refused naming the file, calibration_check refusing other map settings or weights, and
// json_top_value finding only top-level keys. gaussian_filter3d (src/util/gaussian.c) equals
// scipy.ndimage.gaussian_filter (mode 'reflect', truncate 4 as the normative model smooths;
// 'nearest', truncate 3, per-axis sigma as registration's pyramid does). The normative model
// (src/detect/normative.c): normative_fit / normative_z equal NumPy's mean, predictive variance (ddof 1 x (1 + 1/k)),
// smoothing, sqrt + floor, with and without a map left out (tools/calibrate_ref.py); the normative
// maps' file beside the JSON (round trip byte for byte; truncated, missing, outside the folder or with a non-positive
// sd refused naming it) and calibration_normalise (z-scores of the calibrated slices; slices
// outside the calibrated range or another size refused naming the file).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/calibrate.h"
#include "detect/normative.h"
#include "helpers/testutil.h"
#include "nn/nn.h"
#include "util/error.h"
#include "util/gaussian.h"  // gaussian_filter3d
#include "util/hash.h"
#include "util/json.h"
#include "util/rng.h"

static const char *dir;

static const char *path_in(const char *name) {
    static char buf[8][4200];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

// Thresholds of calibration_set_values against numpy for one set of values.
static void quantiles_vs_numpy(const char *name, float *v, size_t n) {
    char vp[4200], rp[4200], args[9000];
    snprintf(vp, sizeof vp, "%s", path_in("values.f32"));
    snprintf(rp, sizeof rp, "%s", path_in("quantiles.txt"));
    tu_write_f32(vp, v, n);
    snprintf(args, sizeof args, "quantiles %s %s", vp, rp);
    tu_run_python("tools/calibrate_ref.py", args);
    calibration c = {0};
    calibration_set_values(&c, v, n);  // sorts v
    FILE *f = fopen(rp, "r");
    CHECK(f != NULL, "%s: numpy's quantiles readable", name);
    if (!f) return;
    double worst = 0;
    int rows = 0, levels_ok = 1;
    double lv, q;
    while (fscanf(f, "%lf %lf", &lv, &q) == 2 && rows < CALIB_LEVELS) {
        levels_ok &= fabs(lv - calib_fpr_levels[rows]) <= 1e-12 * lv;
        double rel = fabs(c.threshold[rows] - q) / fmax(fabs(q), 1e-30);
        worst = rel > worst ? rel : worst;
        rows++;
    }
    fclose(f);
    CHECK(rows == CALIB_LEVELS && levels_ok, "%s: %d rates, the same as calib_fpr_levels", name, rows);
    CHECK(worst <= 1e-6 && c.voxels == (int64_t)n, "%s (n %zu): thresholds = numpy.quantile(v, 1 - fpr), worst "
          "relative difference %.3g", name, n, worst);
}

static void test_quantiles(void) {
    rng r;
    rng_seed(&r, 3);
    enum { N = 20011 };
    float *v = malloc(sizeof(float) * N);
    for (int i = 0; i < N; i++) v[i] = (float)fabs(rng_normal(&r)) * 0.05f;
    quantiles_vs_numpy("half-normal", v, N);
    for (int i = 0; i < N; i++) v[i] = (float)exp(2 * rng_normal(&r));  // heavy tail
    quantiles_vs_numpy("log-normal", v, N);
    for (int i = 0; i < 997; i++) v[i] = (float)rng_below(&r, 7);  // ties
    quantiles_vs_numpy("ties", v, 997);
    for (int i = 0; i < 3; i++) v[i] = (float)(3 - i);  // reversed, tiny
    quantiles_vs_numpy("n 3", v, 3);
    v[0] = 0.25f;
    quantiles_vs_numpy("n 1", v, 1);
    free(v);
    calibration c;
    calibration_set_values(&c, NULL, 0);
    CHECK(isnan(c.threshold[0]) && c.voxels == 0, "no values: NAN thresholds");
}

static void test_interpolation(void) {
    calibration c = {0};
    for (int l = 0; l < CALIB_LEVELS; l++) c.threshold[l] = 10.0 - l * l * 0.25;  // decreasing
    int exact = 1;
    for (int l = 0; l < CALIB_LEVELS; l++) exact &= calibration_threshold(&c, calib_fpr_levels[l]) == c.threshold[l];
    CHECK(exact, "at a table rate: the table's threshold");
    // between 2e-3 (entry 7) and 5e-3 (entry 8): linear in log(rate)
    double f = 3e-3, t = (log(f) - log(2e-3)) / (log(5e-3) - log(2e-3));
    double want = c.threshold[7] + t * (c.threshold[8] - c.threshold[7]);
    CHECK(fabs(calibration_threshold(&c, f) - want) < 1e-12, "3e-3: %.9g, want %.9g (log-linear)",
          calibration_threshold(&c, f), want);
    double g = sqrt(1e-4 * 2e-4);  // the geometric mean lies half way
    CHECK(fabs(calibration_threshold(&c, g) - 0.5 * (c.threshold[3] + c.threshold[4])) < 1e-12,
          "geometric mean of 1e-4 and 2e-4: the midpoint");
    CHECK(isnan(calibration_threshold(&c, 9e-6)) && isnan(calibration_threshold(&c, 0.6)) &&
              isnan(calibration_threshold(&c, NAN)),
          "outside 1e-5 .. 0.5: NAN");
}

static void sample(calibration *c) {
    memset(c, 0, sizeof *c);
    c->window = 32, c->stride = 16, c->positive_residual = 1, c->window_norm = 0, c->slice_norm = 0;
    c->restrict_to_brain = 1, c->norm = SLICE_NORM_PERCENTILE, c->z_first = 70, c->z_last = 99;
    snprintf(c->checkpoint, sizeof c->checkpoint, "runs/a \"quoted\" dir\\b/best.safetensors");
    c->weights_hash = 0xfedcba9876543210ull;
    c->scans = 17, c->voxels = 5000000123ll;
    c->precision = NN_BF16;
    for (int l = 0; l < CALIB_LEVELS; l++) c->threshold[l] = 0.9 / (1 + l) + 1e-7 * l;
}

static char *slurp(const char *p);
static void spit(const char *p, const char *s);

static void test_round_trip(void) {
    calibration a, b;
    sample(&a);
    const char *p = path_in("cal.json");
    CHECK(calibration_write(&a, p) == 0, "write: %s", as_error());
    CHECK(calibration_read(&b, p) == 0, "read back: %s", as_error());
    int same = b.window == a.window && b.stride == a.stride && b.positive_residual == a.positive_residual &&
               b.window_norm == a.window_norm && b.slice_norm == a.slice_norm &&
               b.restrict_to_brain == a.restrict_to_brain && b.norm == a.norm && b.z_first == a.z_first &&
               b.z_last == a.z_last && !strcmp(b.checkpoint, a.checkpoint) && b.weights_hash == a.weights_hash &&
               b.scans == a.scans && b.voxels == a.voxels && b.precision == NN_BF16;
    CHECK(same, "round trip: settings, checkpoint '%s', hash %016llx, scans, voxels %lld", b.checkpoint,
          (unsigned long long)b.weights_hash, (long long)b.voxels);
    double worst = 0;
    for (int l = 0; l < CALIB_LEVELS; l++) worst = fmax(worst, fabs(b.threshold[l] - a.threshold[l]) / a.threshold[l]);
    CHECK(worst < 1e-8, "round trip: thresholds within %.2g relative", worst);
    // the other value of every two-way setting
    a.positive_residual = 0, a.window_norm = 1, a.slice_norm = 1, a.restrict_to_brain = 0, a.norm = SLICE_NORM_MINMAX;
    calibration_write(&a, p);
    CHECK(calibration_read(&b, p) == 0 && b.positive_residual == 0 && b.window_norm == 1 && b.slice_norm == 1 &&
              b.restrict_to_brain == 0 && b.norm == SLICE_NORM_MINMAX,
          "round trip of the other settings");
    // written before bf16 existed: no "precision" key, read as fp32; a bad value refused
    char *text = slurp(p), *at = text ? strstr(text, "  \"precision\": \"bf16\",\n") : NULL;
    CHECK(at != NULL, "\"precision\": \"bf16\" written");
    if (at) {
        memmove(at, at + strlen("  \"precision\": \"bf16\",\n"), strlen(at + strlen("  \"precision\": \"bf16\",\n")) + 1);
        spit(p, text);
        CHECK(calibration_read(&b, p) == 0 && b.precision == NN_FP32, "no precision key: fp32 (%s)", as_error());
    }
    free(text);
    text = slurp(p);
    char *brace = text ? strchr(text, '{') : NULL;
    if (brace) {
        char *bad = malloc(strlen(text) + 64);
        sprintf(bad, "{\n  \"precision\": \"fp8\",%s", brace + 1);
        spit(p, bad);
        CHECK(calibration_read(&b, p) == -1 && strstr(as_error(), "precision") && strstr(as_error(), p),
              "precision fp8 refused naming the file: %s", as_error());
        free(bad);
    }
    free(text);
}

static char *slurp(const char *p) {
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = calloc((size_t)n + 1, 1);
    if (fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
    fclose(f);
    return s;
}

static void spit(const char *p, const char *s) {
    FILE *f = fopen(p, "wb");
    fputs(s, f);
    fclose(f);
}

// text with the first occurrence of `from` replaced by `to`
static char *replaced(const char *text, const char *from, const char *to) {
    const char *at = strstr(text, from);
    if (!at) return NULL;
    size_t n = strlen(text) - strlen(from) + strlen(to) + 1;
    char *s = malloc(n);
    snprintf(s, n, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    return s;
}

static void refused(const char *what, const char *text, const char *name, const char *also) {
    const char *p = path_in(name);
    spit(p, text);
    calibration c;
    int rc = calibration_read(&c, p);
    CHECK(rc == -1 && strstr(as_error(), p) && (!also || strstr(as_error(), also)), "%s refused naming the file%s%s: %s",
          what, also ? " and " : "", also ? also : "", rc ? as_error() : "(accepted)");
}

static void test_corrupted(void) {
    calibration a;
    sample(&a);
    const char *p = path_in("good.json");
    calibration_write(&a, p);
    char *good = slurp(p), *s;
    CHECK(good && strstr(good, "\"stride\": 16"), "the written file has \"stride\": 16");
    refused("not JSON", "hello\n", "notjson.json", NULL);
    refused("empty file", "", "empty.json", NULL);
    refused("another format", s = replaced(good, "anoswin-calibration-1", "anoswin-calibration-9"), "fmt.json",
            "format");
    free(s);
    refused("missing key", s = replaced(good, "\"stride\": 16,", ""), "nostride.json", "stride");
    free(s);
    refused("key only nested", s = replaced(good, "\"stride\": 16,", "\"nested\": {\"stride\": 16},"),
            "nested.json", "stride");
    free(s);
    // the table out of order: entry 1 raised above entry 0
    char t1[64], t0[64], bad[64];
    snprintf(t0, sizeof t0, "[%.9g, %.9g", a.threshold[0], a.threshold[1]);
    snprintf(bad, sizeof bad, "[%.9g, %.9g", a.threshold[0], a.threshold[0] * 2);
    refused("out-of-order table", s = replaced(good, t0, bad), "order.json", "out of order");
    free(s);
    snprintf(t1, sizeof t1, ", %.9g]", a.threshold[CALIB_LEVELS - 1]);
    refused("short table", s = replaced(good, t1, "]"), "short.json", "threshold");
    free(s);
    refused("non-finite threshold", s = replaced(good, t0, "[nan, 1"), "nan.json", NULL);
    free(s);
    refused("other rates", s = replaced(good, "1.0000000000000001e-05", "3e-05"), "rates.json", NULL);
    free(s);
    refused("bad residual", s = replaced(good, "\"positive\"", "\"signed\""), "resid.json", "residual");
    free(s);
    refused("truncated", s = replaced(good, "\"scans\"", "\"sc"), "trunc.json", NULL);
    free(s);
    calibration c;
    CHECK(calibration_read(&c, path_in("absent.json")) == -1 && strstr(as_error(), "absent.json"),
          "a missing file is named: %s", as_error());
    free(good);
}

static void test_check(void) {
    amap_params ap;
    amap_defaults(&ap);
    slice_options so;
    slice_options_default(&so, 0);
    ap.stride = 0;  // the paper's grid: stride = window
    calibration c = {0};
    calibration_set_map(&c, &ap, &so);
    c.weights_hash = 42;
    snprintf(c.checkpoint, sizeof c.checkpoint, "model.safetensors");
    CHECK(c.stride == ap.window, "stride 0 recorded as the window (%d)", c.stride);
    CHECK(calibration_check(&c, "cal.json", &ap, &so, 42) == 0, "same settings and weights accepted: %s", as_error());
    amap_params b = ap;
    b.stride = ap.window;
    CHECK(calibration_check(&c, "cal.json", &b, &so, 42) == 0, "stride = window is the same grid as stride 0");
    b.stride = ap.window / 2;
    CHECK(calibration_check(&c, "my/cal.json", &b, &so, 42) == -1 && strstr(as_error(), "my/cal.json") &&
              strstr(as_error(), "stride"),
          "another stride refused: %s", as_error());
    b = ap;
    b.positive_residual = !ap.positive_residual;
    CHECK(calibration_check(&c, "my/cal.json", &b, &so, 42) == -1 && strstr(as_error(), "my/cal.json") &&
              strstr(as_error(), "residual"),
          "another residual refused: %s", as_error());
    b = ap;
    b.window = ap.window / 2;
    CHECK(calibration_check(&c, "my/cal.json", &b, &so, 42) == -1 && strstr(as_error(), "mask size"),
          "another mask size refused: %s", as_error());
    b = ap;
    b.slice_norm = !ap.slice_norm;
    CHECK(calibration_check(&c, "my/cal.json", &b, &so, 42) == -1 && strstr(as_error(), "slice norm"),
          "another slice norm refused: %s", as_error());
    slice_options s2 = so;
    s2.norm = so.norm == SLICE_NORM_MINMAX ? SLICE_NORM_PERCENTILE : SLICE_NORM_MINMAX;
    CHECK(calibration_check(&c, "my/cal.json", &ap, &s2, 42) == -1 && strstr(as_error(), "norm"),
          "another intensity norm refused: %s", as_error());
    CHECK(calibration_check(&c, "my/cal.json", &ap, &so, 43) == -1 && strstr(as_error(), "my/cal.json") &&
              strstr(as_error(), "weights") && strstr(as_error(), "model.safetensors"),
          "other weights refused: %s", as_error());
    s2 = so;
    s2.z_first = so.z_first + 3;
    CHECK(calibration_check(&c, "cal.json", &ap, &s2, 42) == 0, "another slice range is allowed (informative)");
    CHECK(c.precision == nn_precision(), "the process's GEMM precision recorded (%d)", c.precision);
    c.precision = c.precision == NN_FP32 ? NN_BF16 : NN_FP32;
    CHECK(calibration_check(&c, "my/cal.json", &ap, &so, 42) == -1 && strstr(as_error(), "my/cal.json") &&
              strstr(as_error(), "precision"),
          "a calibration made in the other precision refused: %s", as_error());
    float w[4] = {1, 2, 3, 4}, w2[4] = {1, 2, 3, 4.0000005f};
    CHECK(hash_floats(w, 4) != hash_floats(w2, 4) && hash_floats(w, 4) == hash_floats(w, 4),
          "the weights hash sees a one-ulp change");
}

static void test_json(void) {
    const char *t = "{\"a\": {\"grow\": 1, \"x\": \"grow\"}, \"s\": \"\\\"grow\\\": 5\", \"l\": [{\"grow\": 2}, \"]}\"],"
                    " \"grow\": 7, \"after\": \"x\"}";
    double v = 0;
    CHECK(json_top_number(t, "grow", &v) == 0 && v == 7, "nested objects, arrays and strings with the key skipped: "
          "grow = %g (want 7)", v);
    char s[64];
    CHECK(json_top_string(t, "after", s, sizeof s) == 0 && !strcmp(s, "x"), "the key after them is found");
    CHECK(json_top_string(t, "s", s, sizeof s) == 0 && !strcmp(s, "\"grow\": 5"), "a string is unescaped: %s", s);
    CHECK(json_top_value("{\"a\": {\"grow\": 1}, \"b\": \"grow\"}", "grow") == NULL,
          "a key only nested or inside a string is absent");
    CHECK(json_top_value("{\"note\": \"say \\\"grow\\\": 3\"}", "grow") == NULL, "an escaped quote does not end a "
          "string");
    CHECK(json_top_value("[{\"grow\": 1}]", "grow") == NULL && json_top_value("", "grow") == NULL,
          "not an object: absent");
    CHECK(json_top_value("{\"a\": \"unterminated, \"grow\": 1", "grow") == NULL, "unterminated string: absent");
    double arr[4];
    CHECK(json_top_numbers("{\"x\": {\"r\": [9]}, \"r\": [1, 2.5, -3]}", "r", arr, 4) == 3 && arr[1] == 2.5 &&
              arr[2] == -3,
          "numbers array at the top level");
    CHECK(json_top_numbers("{\"r\": [1, \"a\"]}", "r", arr, 4) == -1, "a non-number in the array refused");
    // json_write_string's output reads back
    const char *p = path_in("str.json");
    FILE *f = fopen(p, "w");
    fputs("{\"k\": ", f);
    json_write_string(f, "a \"b\" \\ c");
    fputs("}", f);
    fclose(f);
    char *text = slurp(p);
    CHECK(text && json_top_string(text, "k", s, sizeof s) == 0 && !strcmp(s, "a \"b\" \\ c"),
          "json_write_string round trip: %s", text ? text : "(unreadable)");
    free(text);
}

// ---- normative model ----------------------------------------------------------------------------

static void fill_random(rng *r, float *x, size_t n, float scale, float offset) {
    for (size_t i = 0; i < n; i++) x[i] = offset + scale * (float)rng_normal(r);
}

// gaussian_filter3d (util/gaussian.c, sigma per axis x, y, z) against scipy.ndimage.gaussian_filter.
static void gaussian_vs_scipy(rng *r, int nz, int ny, int nx, const double sigma[3], double truncate,
                              gauss_border border) {
    size_t n = (size_t)nz * ny * nx;
    float *x = malloc(sizeof(float) * n);
    fill_random(r, x, n, 1.0f, 0.5f);
    const char *mode = border == GAUSS_NEAREST ? "nearest" : "reflect";
    char ip[4200], op[4200], args[9000], name[200];
    snprintf(ip, sizeof ip, "%s", path_in("g_in.f32"));
    snprintf(op, sizeof op, "%s", path_in("g_out.f32"));
    tu_write_f32(ip, x, n);
    snprintf(args, sizeof args, "gauss %s %d %d %d %.9g,%.9g,%.9g %s %s %.9g", ip, nz, ny, nx, sigma[2], sigma[1],
             sigma[0], op, mode, truncate);
    tu_run_python("tools/calibrate_ref.py", args);
    float *ref = tu_read_f32(op, n);
    gaussian_filter3d(x, nx, ny, nz, sigma, truncate, border);
    snprintf(name, sizeof name, "gaussian_filter3d (nz %d, ny %d, nx %d), sigma (%g, %g, %g), %s, truncate %g vs scipy",
             nz, ny, nx, sigma[2], sigma[1], sigma[0], mode, truncate);
    tu_allclose(name, x, ref, n, 1e-5, 1e-5);
    free(x), free(ref);
}

static void test_gaussian(void) {
    rng r;
    rng_seed(&r, 11);
    static const int shapes[][3] = {{7, 5, 3}, {3, 5, 7}, {1, 9, 4}, {12, 12, 6}, {2, 1, 13}};
    static const double sigmas[] = {0.5, 1.0, 2.0, 3.3};  // 3.3: radius 13, beyond every axis
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t g = 0; g < sizeof sigmas / sizeof sigmas[0]; g++) {
            const double iso[3] = {sigmas[g], sigmas[g], sigmas[g]};
            gaussian_vs_scipy(&r, shapes[s][0], shapes[s][1], shapes[s][2], iso, 4.0, GAUSS_REFLECT);
        }
    // registration's pyramid (prep/register.c): per-axis sigma, 'nearest', truncate 3; an axis
    // left alone, and radii past the line (the border sample repeats)
    static const double aniso[][3] = {{1.0, 0.7, 1.9}, {0.5, 2.6, 0.0}, {4.2, 0.05, 1.3}};
    for (size_t g = 0; g < sizeof aniso / sizeof aniso[0]; g++) {
        gaussian_vs_scipy(&r, 6, 9, 11, aniso[g], 3.0, GAUSS_NEAREST);
        gaussian_vs_scipy(&r, 6, 9, 11, aniso[g], 4.0, GAUSS_REFLECT);
    }
    float x[60], y[60];
    fill_random(&r, x, 60, 1.0f, 0.0f);
    memcpy(y, x, sizeof x);
    const double zero[3] = {0, 0, 0}, big[3] = {3.3, 3.3, 3.3};
    gaussian_filter3d(x, 5, 4, 3, zero, 4.0, GAUSS_REFLECT);
    CHECK(!memcmp(x, y, sizeof x), "sigma 0: the volume unchanged");
    // a constant volume stays constant under 'reflect' and 'nearest' (weights sum to 1, no zero padding)
    for (int b = 0; b < 2; b++) {
        for (int i = 0; i < 60; i++) x[i] = 0.75f;
        gaussian_filter3d(x, 5, 4, 3, big, 4.0, b ? GAUSS_NEAREST : GAUSS_REFLECT);
        float worst = 0;
        for (int i = 0; i < 60; i++) worst = fmaxf(worst, fabsf(x[i] - 0.75f));
        CHECK(worst < 1e-6f, "%s: a constant volume stays constant (max change %.3g)", b ? "nearest" : "reflect",
              worst);
    }
}

// normative_fit (map `skip` left out) and normative_z of `map` against calibrate_ref.py.
static void normative_vs_numpy(const char *what, const float *maps, int n, int skip, int nx, int ny, int nz,
                               float sigma, float floor_, const float *map) {
    size_t nv = (size_t)nx * ny * nz;
    char mp[4200], qp[4200], op[4200], args[16000], name[256];
    snprintf(mp, sizeof mp, "%s", path_in("n_maps.f32"));
    snprintf(qp, sizeof qp, "%s", path_in("n_map.f32"));
    snprintf(op, sizeof op, "%s", path_in("n_out.f32"));
    tu_write_f32(mp, maps, nv * (size_t)n);
    tu_write_f32(qp, map, nv);
    snprintf(args, sizeof args, "normative %s %d %d %d %d %d %.9g %.9g %s %s", mp, n, nz, ny, nx, skip, sigma, floor_,
             qp, op);
    tu_run_python("tools/calibrate_ref.py", args);
    float *ref = tu_read_f32(op, 3 * nv);
    float *mean = malloc(sizeof(float) * nv), *sd = malloc(sizeof(float) * nv), *z = malloc(sizeof(float) * nv);
    normative_fit(mean, sd, maps, n, skip, nx, ny, nz, sigma, floor_);
    normative_z(z, map, mean, sd, nv);
    snprintf(name, sizeof name, "%s: normative_fit mean vs numpy", what);
    tu_allclose(name, mean, ref, nv, 1e-6, 1e-5);
    snprintf(name, sizeof name, "%s: normative_fit sd vs numpy (sqrt(var ddof 1 x (1 + 1/k)) + floor)", what);
    tu_allclose(name, sd, ref + nv, nv, 1e-6, 1e-5);
    snprintf(name, sizeof name, "%s: normative_z vs numpy", what);
    tu_allclose(name, z, ref + 2 * nv, nv, 1e-4, 1e-4);
    memcpy(z, map, sizeof(float) * nv);
    normative_z(z, z, mean, sd, nv);  // in place
    snprintf(name, sizeof name, "%s: normative_z in place", what);
    tu_allclose(name, z, ref + 2 * nv, nv, 1e-4, 1e-4);
    free(ref), free(mean), free(sd), free(z);
}

static void test_normative_fit(void) {
    rng r;
    rng_seed(&r, 12);
    enum { N = 5, NX = 7, NY = 6, NZ = 4, NV = NX * NY * NZ };
    float *maps = malloc(sizeof(float) * N * NV), map[NV];
    // a spatial pattern shared by the maps plus noise that differs between them (and with voxel)
    for (int i = 0; i < N; i++)
        for (int q = 0; q < NV; q++)
            maps[i * NV + q] = 0.1f * (float)(q % NX) / NX + (0.01f + 0.04f * (float)(q % 5)) * (float)rng_normal(&r);
    fill_random(&r, map, NV, 0.05f, 0.1f);
    normative_vs_numpy("all 5 maps, sigma 1.5", maps, N, -1, NX, NY, NZ, 1.5f, 0.02f, map);
    normative_vs_numpy("map 2 left out, sigma 1.5", maps, N, 2, NX, NY, NZ, 1.5f, 0.02f, map);
    normative_vs_numpy("map 0 left out, sigma 3.3", maps, N, 0, NX, NY, NZ, 3.3f, 0.02f, map);
    normative_vs_numpy("map 4 left out, sigma 0 (no smoothing)", maps, N, 4, NX, NY, NZ, 0.0f, 0.05f, map);
    normative_vs_numpy("2 maps, one left out (variance 0: sd = floor)", maps, 2, 1, NX, NY, NZ, 2.0f, 0.02f, map);
    free(maps);
}

// ---- normative calibration files ---------------------------------------------------------------

static long file_size(const char *p) {
    FILE *f = fopen(p, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

// sample() with normative maps of slices 70..99, size 8
static void sample_normative(calibration *c, rng *r) {
    sample(c);
    c->norm_size = 8, c->norm_sigma = 2.5f, c->norm_floor = 0.03f;
    c->norm_nscales = 1, c->norm_scales[0] = 0, c->norm_unit[0] = 1;
    size_t nv = (size_t)(c->z_last - c->z_first + 1) * 8 * 8;
    c->norm_mean = malloc(sizeof(float) * nv), c->norm_sd = malloc(sizeof(float) * nv);
    for (size_t q = 0; q < nv; q++)
        c->norm_mean[q] = (float)rng_normal(r) * 0.1f, c->norm_sd[q] = 0.03f + (float)fabs(rng_normal(r)) * 0.05f;
}

static void copy_file(const char *from, const char *to, long keep) {
    char *s = slurp(from);
    long n = file_size(from);
    FILE *f = fopen(to, "wb");
    if (s && f && keep <= n) fwrite(s, 1, (size_t)keep, f);
    if (f) fclose(f);
    free(s);
}

static void test_normative_file(void) {
    rng r;
    rng_seed(&r, 13);
    calibration a, b;
    sample_normative(&a, &r);
    size_t nv = (size_t)30 * 8 * 8;
    const char *p = path_in("ncal.json"), *np_ = path_in("ncal.normative.f32");
    CHECK(calibration_write(&a, p) == 0, "normative write: %s", as_error());
    CHECK(file_size(np_) == (long)(2 * nv * sizeof(float)), "ncal.normative.f32 beside the JSON: %ld bytes, want %zu",
          file_size(np_), 2 * nv * sizeof(float));
    float *raw = tu_read_f32(np_, 2 * nv);
    CHECK(!memcmp(raw, a.norm_mean, sizeof(float) * nv) && !memcmp(raw + nv, a.norm_sd, sizeof(float) * nv),
          "the file holds mean then sd, float32");
    free(raw);
    char *text = slurp(p);
    char nfile[256];
    CHECK(text && !json_top_string(text, "normative_file", nfile, sizeof nfile) && !strcmp(nfile, "ncal.normative.f32"),
          "the JSON names the file without its folder: \"%s\"", text ? nfile : "(unreadable)");
    CHECK(calibration_read(&b, p) == 0, "normative read back: %s", as_error());
    CHECK(b.norm_mean && b.norm_sd && b.norm_size == 8 && b.norm_sigma == a.norm_sigma &&
              b.norm_floor == a.norm_floor && b.z_first == 70 && b.z_last == 99,
          "normative size %d, sigma %g, floor %g, slices %d..%d read back", b.norm_size, b.norm_sigma, b.norm_floor,
          b.z_first, b.z_last);
    CHECK(b.norm_mean && !memcmp(b.norm_mean, a.norm_mean, sizeof(float) * nv) &&
              !memcmp(b.norm_sd, a.norm_sd, sizeof(float) * nv),
          "normative mean and sd read back bit for bit");

    // calibration_normalise: z-scores against the calibrated slices
    enum { S = 8, HW = S * S };
    int zs[3] = {70, 85, 99};
    float maps[3 * HW], want[3 * HW];
    fill_random(&r, maps, 3 * HW, 0.1f, 0.05f);
    for (int i = 0; i < 3; i++)
        for (int q = 0; q < HW; q++) {
            size_t o = (size_t)(zs[i] - 70) * HW + q;
            want[i * HW + q] = (maps[i * HW + q] - a.norm_mean[o]) / a.norm_sd[o];
        }
    CHECK(calibration_normalise(&b, p, maps, zs, 3, S) == 0, "normalise slices 70, 85, 99: %s", as_error());
    tu_allclose("calibration_normalise: (map - mean[z]) / sd[z] of each slice", maps, want, 3 * HW, 1e-6, 1e-6);
    float keep[3 * HW];
    memcpy(keep, maps, sizeof maps);
    int out_hi[2] = {98, 100}, out_lo[2] = {69, 70};
    CHECK(calibration_normalise(&b, p, maps, out_hi, 2, S) == -1 && strstr(as_error(), p) &&
              strstr(as_error(), "100") && strstr(as_error(), "70..99"),
          "slice 100 outside 70..99 refused naming the file, the slice and the range: %s", as_error());
    CHECK(calibration_normalise(&b, p, maps, out_lo, 2, S) == -1 && strstr(as_error(), p) &&
              strstr(as_error(), "69") && strstr(as_error(), "70..99"),
          "slice 69 outside 70..99 refused naming the file, the slice and the range: %s", as_error());
    memcpy(maps, keep, sizeof maps);  // (a refused range may have normalised the slices before it)
    CHECK(calibration_normalise(&b, p, maps, zs, 1, 16) == -1 && strstr(as_error(), p) && strstr(as_error(), "8x8") &&
              strstr(as_error(), "16x16"),
          "slices of another size refused naming the file and both sizes: %s", as_error());
    CHECK(!memcmp(keep, maps, sizeof keep), "a refused size leaves the maps alone");
    calibration plain;
    sample(&plain);
    CHECK(calibration_normalise(&plain, "plain.json", maps, out_hi, 2, 16) == 0 && !memcmp(keep, maps, sizeof keep),
          "a calibration without normative maps leaves the maps alone");
    calibration_free(&b);
    CHECK(!b.norm_mean && !b.norm_sd, "calibration_free clears the maps");

    // a file written before multi-scale scoring (no normative_scales / normative_units) reads as one
    // scale of plain z-scores; one key without the other is refused
    char *old = slurp(p);
    CHECK(old && strstr(old, "\"normative_scales\": [0]") && strstr(old, "\"normative_units\": [1]"),
          "one scale written as \"normative_scales\": [0], \"normative_units\": [1]");
    if (old) {
        char *a1 = strstr(old, "  \"normative_scales\""), *a2 = a1 ? strstr(a1, "\n") : NULL;
        char *b1 = a2 ? strstr(a2, "  \"normative_units\"") : NULL, *b2 = b1 ? strstr(b1, "\n") : NULL;
        if (a1 && a2 && b1 && b2) {
            char *noscales = malloc(strlen(old) + 1), *nounits = malloc(strlen(old) + 1);
            snprintf(noscales, strlen(old) + 1, "%.*s%s", (int)(a1 - old), old, b2 + 1);  // both lines out
            snprintf(nounits, strlen(old) + 1, "%.*s%s", (int)(b1 - old), old, b2 + 1);   // units line out
            spit(path_in("ncal.json"), noscales);
            CHECK(calibration_read(&b, p) == 0 && b.norm_nscales == 1 && b.norm_scales[0] == 0 && b.norm_unit[0] == 1,
                  "without normative_scales/units: one scale 0, unit 1 (%s)", as_error());
            calibration_free(&b);
            spit(path_in("ncal.json"), nounits);
            CHECK(calibration_read(&b, p) == -1 && strstr(as_error(), "normative_units") && strstr(as_error(), p),
                  "normative_scales without normative_units refused naming the file: %s", as_error());
            free(noscales), free(nounits);
        } else {
            CHECK(0, "the normative_scales and normative_units lines found in the JSON");
        }
        spit(path_in("ncal.json"), old);
    }
    free(old);

    // two scales: the file holds each scale's mean then sd; the score is the maximum over scales of
    // each scale's z-score (the map smoothed in-plane at that scale) over its unit
    calibration m2 = a;
    m2.norm_nscales = 2, m2.norm_scales[1] = 1.5f, m2.norm_unit[0] = 2.0f, m2.norm_unit[1] = 3.0f;
    m2.norm_mean = malloc(sizeof(float) * 2 * nv), m2.norm_sd = malloc(sizeof(float) * 2 * nv);
    memcpy(m2.norm_mean, a.norm_mean, sizeof(float) * nv), memcpy(m2.norm_sd, a.norm_sd, sizeof(float) * nv);
    for (size_t q = 0; q < nv; q++)
        m2.norm_mean[nv + q] = (float)rng_normal(&r) * 0.02f, m2.norm_sd[nv + q] = 0.01f + (float)fabs(rng_normal(&r)) * 0.01f;
    const char *p2 = path_in("ncal2.json");
    CHECK(calibration_write(&m2, p2) == 0 && file_size(path_in("ncal2.normative.f32")) == (long)(4 * nv * sizeof(float)),
          "two scales: %ld bytes, want %zu", file_size(path_in("ncal2.normative.f32")), 4 * nv * sizeof(float));
    float *raw2 = tu_read_f32(path_in("ncal2.normative.f32"), 4 * nv);
    CHECK(raw2 && !memcmp(raw2 + 2 * nv, m2.norm_mean + nv, sizeof(float) * nv) &&
              !memcmp(raw2 + 3 * nv, m2.norm_sd + nv, sizeof(float) * nv),
          "the second scale's mean then sd follow the first's");
    free(raw2);
    CHECK(calibration_read(&b, p2) == 0 && b.norm_nscales == 2 && b.norm_scales[1] == 1.5f && b.norm_unit[1] == 3.0f,
          "two scales read back: %s", as_error());
    float m3[3 * HW], sm[HW];
    memcpy(m3, keep, sizeof m3);
    for (int i = 0; i < 3; i++) {
        smooth_slices(sm, keep + i * HW, S, S, 1, 1.5f);
        for (int q = 0; q < HW; q++) {
            size_t o = (size_t)(zs[i] - 70) * HW + q;
            float z0 = (keep[i * HW + q] - a.norm_mean[o]) / a.norm_sd[o] / 2.0f;
            float z1 = (sm[q] - m2.norm_mean[nv + o]) / m2.norm_sd[nv + o] / 3.0f;
            want[i * HW + q] = z0 > z1 ? z0 : z1;
        }
    }
    CHECK(calibration_normalise(&b, p2, m3, zs, 3, S) == 0, "normalise at two scales: %s", as_error());
    tu_allclose("two scales: max over scales of z / unit", m3, want, 3 * HW, 1e-5, 1e-5);
    int differs = 0;
    for (int q = 0; q < 3 * HW; q++) differs += fabsf(want[q] - (keep[q] - a.norm_mean[(size_t)(zs[q / HW] - 70) * HW + q % HW]) / a.norm_sd[(size_t)(zs[q / HW] - 70) * HW + q % HW] / 2.0f) > 1e-4f;
    CHECK(differs > 0, "the smoothed scale wins somewhere (%d of %d voxels), so the test sees it", differs, 3 * HW);
    calibration_free(&b), calibration_free(&m2);

    // a plain calibration names no file and writes none
    const char *pp = path_in("plaincal.json");
    CHECK(calibration_write(&plain, pp) == 0 && file_size(path_in("plaincal.normative.f32")) == -1,
          "a plain calibration writes no .normative.f32");
    char *ptext = slurp(pp);
    CHECK(ptext && !strstr(ptext, "normative"), "a plain calibration's JSON has no normative key");
    free(ptext);
    CHECK(calibration_read(&b, pp) == 0 && !b.norm_mean, "a plain calibration reads back without maps");

    // truncated / missing normative file
    const char *tp = path_in("trunc.json"), *tnp = path_in("trunc.normative.f32");
    calibration_write(&a, tp);
    copy_file(np_, tnp, (long)(2 * nv * sizeof(float)) - 4);
    CHECK(calibration_read(&b, tp) == -1 && strstr(as_error(), tnp) && !b.norm_mean,
          "a truncated .normative.f32 refused naming it: %s", as_error());
    const char *mp = path_in("missing.json");
    calibration_write(&a, mp);
    remove(path_in("missing.normative.f32"));
    CHECK(calibration_read(&b, mp) == -1 && strstr(as_error(), "missing.normative.f32"),
          "a missing .normative.f32 refused naming it: %s", as_error());

    // normative_file naming a path with '/': refused even where that file exists and fits
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", path_in("sub"));
    CHECK(system(cmd) == 0, "mkdir sub");
    copy_file(np_, path_in("sub/ncal.normative.f32"), file_size(np_));
    char *s;
    refused("normative_file in a subfolder", s = replaced(text, "\"ncal.normative.f32\"", "\"sub/ncal.normative.f32\""),
            "slash.json", "normative");
    free(s);
    char upname[4400];  // the same file by way of the parent folder
    snprintf(upname, sizeof upname, "\"../%s/ncal.normative.f32\"", dir);
    refused("normative_file through ../", s = replaced(text, "\"ncal.normative.f32\"", upname), "slash2.json",
            "normative");
    free(s);
    refused("normative_size 0", s = replaced(text, "\"normative_size\": 8", "\"normative_size\": 0"), "size0.json",
            "normative");
    free(s);
    refused("normative_sigma 0", s = replaced(text, "\"normative_sigma\": 2.5", "\"normative_sigma\": 0"),
            "sigma0.json", "normative");
    free(s);
    // another size that does not fit the file's bytes: refused naming the .normative.f32
    const char *sp = path_in("size4.json");
    spit(sp, s = replaced(text, "\"normative_size\": 8", "\"normative_size\": 4"));
    free(s);
    CHECK(calibration_read(&b, sp) == -1 && strstr(as_error(), "ncal.normative.f32"),
          "normative_size 4 against a file of 8x8 maps refused naming the file: %s", as_error());

    // a non-positive sd (0, negative, NaN) or a non-finite mean: refused naming the file
    static const float bad_sd[] = {0.0f, -0.01f, NAN};
    for (int k = 0; k < 4; k++) {
        calibration c;
        sample_normative(&c, &r);
        if (k < 3) c.norm_sd[17 * k + 5] = bad_sd[k];
        else c.norm_mean[100] = INFINITY;
        const char *bp = path_in("badsd.json");
        CHECK(calibration_write(&c, bp) == 0, "write");
        CHECK(calibration_read(&b, bp) == -1 && strstr(as_error(), "badsd.normative.f32") && !b.norm_mean,
              "%s refused naming the file: %s", k == 0 ? "sd 0" : k == 1 ? "a negative sd" : k == 2 ? "sd NaN" :
              "an infinite mean", as_error());
        calibration_free(&c);
    }
    free(text);
    calibration_free(&a);
}

int main(void) {
    dir = tu_scratch_dir("detect_calibrate");
    test_json();
    test_quantiles();
    test_interpolation();
    test_round_trip();
    test_corrupted();
    test_check();
    test_gaussian();
    test_normative_fit();
    test_normative_file();
    return tu_finish();
}
