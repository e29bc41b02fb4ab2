// The healthy-scan calibration (src/detect/calibrate.c) and the JSON reader it uses
// (src/util/json.c): thresholds equal numpy.quantile(values, 1 - fpr) (tools/calibrate_ref.py),
// log-linear interpolation between the table's rates, the file's round trip, corrupted files
// refused naming the file, calibration_check refusing other map settings or weights, and
// json_top_value finding only top-level keys.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/calibrate.h"
#include "helpers/testutil.h"
#include "util/error.h"
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
    for (int l = 0; l < CALIB_LEVELS; l++) c->threshold[l] = 0.9 / (1 + l) + 1e-7 * l;
}

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
               b.scans == a.scans && b.voxels == a.voxels;
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
    float w[4] = {1, 2, 3, 4}, w2[4] = {1, 2, 3, 4.0000005f};
    CHECK(calib_hash_floats(w, 4) != calib_hash_floats(w2, 4) && calib_hash_floats(w, 4) == calib_hash_floats(w, 4),
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

int main(void) {
    dir = tu_scratch_dir("detect_calibrate");
    test_json();
    test_quantiles();
    test_interpolation();
    test_round_trip();
    test_corrupted();
    test_check();
    return tu_finish();
}
