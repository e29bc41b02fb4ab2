// Nyúl intensity standardisation (see nyul.h).
#include "data/nyul.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/slices.h"  // slices_percentiles
#include "util/error.h"
#include "util/json.h"

const double nyul_percentiles[NYUL_N] = {1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 99};

static int in_brain(const float *v, const float *mask, size_t i) { return mask ? mask[i] > 0 : v[i] > 0; }

size_t nyul_landmarks(double lm[NYUL_N], const float *v, const float *mask, size_t n) {
    size_t nb = 0;
    for (size_t i = 0; i < n; i++) nb += in_brain(v, mask, i);
    if (!nb) return 0;
    float *b = as_malloc(sizeof(float) * nb);
    for (size_t i = 0, k = 0; i < n; i++)
        if (in_brain(v, mask, i)) b[k++] = v[i];
    slices_percentiles(lm, b, nb, nyul_percentiles, NYUL_N);
    free(b);
    return nb;
}

void nyul_begin(nyul_standard *s) { memset(s, 0, sizeof *s); }

// The scan's landmarks with p1 -> NYUL_LO and p99 -> NYUL_HI; 0 when p1 = p99.
static int rescale(double out[NYUL_N], const double lm[NYUL_N]) {
    double w = lm[NYUL_N - 1] - lm[0];
    if (!(w > 0)) return 0;
    for (int l = 0; l < NYUL_N; l++) out[l] = NYUL_LO + (lm[l] - lm[0]) / w * (NYUL_HI - NYUL_LO);
    return 1;
}

void nyul_add(nyul_standard *s, const double lm[NYUL_N]) {
    double r[NYUL_N];
    if (!rescale(r, lm)) {
        s->on = -1;  // remembered for nyul_end: a flat brain cannot define a scale
        return;
    }
    for (int l = 0; l < NYUL_N; l++) s->landmarks[l] += r[l];
    s->scans++;
}

int nyul_end(nyul_standard *s, const char *what) {
    if (s->on < 0)
        return as_fail("%s: a training scan's brain is flat (1st percentile = 99th): no intensity scale", what);
    if (!s->scans) return as_fail("%s: no training scan to measure the intensity standard on", what);
    for (int l = 0; l < NYUL_N; l++) s->landmarks[l] /= s->scans;
    s->on = 1;
    return 0;
}

// Piecewise linear through (xp, fp), xp ascending. extend: the first and last segments go on
// beyond the ends (scipy's interp1d(..., fill_value="extrapolate"), as Nyúl's method maps the
// whole range), so a lesion darker than the scan's p1 keeps its contrast instead of landing on
// p1's value; else fp[0] below xp[0] and fp[n - 1] above xp[n - 1] (numpy.interp, a session 13
// standard). A segment of zero width (tied landmarks) is flat.
static double interp(double x, const double *xp, const double *fp, int n, int extend) {
    if (!extend && x <= xp[0]) return fp[0];
    if (!extend && x >= xp[n - 1]) return fp[n - 1];
    int j = 0;
    while (j + 1 < n - 1 && xp[j + 1] <= x) j++;  // the segment: xp[j] <= x < xp[j + 1], or an end
    double w = xp[j + 1] - xp[j];
    if (!(w > 0)) return x < xp[j] ? fp[j] : fp[j + 1];
    return fp[j] + (fp[j + 1] - fp[j]) * (x - xp[j]) / w;
}

void nyul_apply(float *v, const float *mask, size_t n, const nyul_standard *s) {
    double lm[NYUL_N];
    int ok = nyul_landmarks(lm, v, mask, n) > 0 && lm[NYUL_N - 1] > lm[0];
    int extend = !s->clamped;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        if (!in_brain(v, mask, i))
            v[i] = 0;
        else
            v[i] = ok ? (float)fmax(interp(v[i], lm, s->landmarks, NYUL_N, extend), NYUL_FLOOR) : (float)NYUL_LO;
    }
}

int nyul_parse_setting(const char *text, int *nyul) {
    if (strcmp(text, "minmax") && strcmp(text, "nyul")) return as_fail("intensity '%s': expected minmax or nyul", text);
    *nyul = !strcmp(text, "nyul");
    return 0;
}

int nyul_to_json(const nyul_standard *s, char *out, size_t n) {
    json_mem m;
    if (json_mem_open(&m)) return -1;
    FILE *f = m.f;
    fprintf(f, "{\"method\":\"nyul\",\"scans\":%d,\"percentiles\":", s->scans);
    json_write_numbers(f, nyul_percentiles, NYUL_N);
    fputs(",\"landmarks\":", f);
    json_write_numbers(f, s->landmarks, NYUL_N);
    fprintf(f, ",\"tails\":\"%s\"}", s->clamped ? "clamp" : "extend");
    return json_mem_close(&m, out, n);
}

int nyul_from_json(nyul_standard *s, const char *json, const char *what) {
    memset(s, 0, sizeof *s);
    if (json_check(json, what)) return -1;
    char method[16];
    double x, p[NYUL_N];
    if (json_top_string(json, "method", method, sizeof method) || strcmp(method, "nyul"))
        return as_fail("%s: unknown intensity standardisation (expected method \"nyul\")", what);
    if (json_top_number(json, "scans", &x) || !(x >= 1 && x < 1e9)) return as_fail("%s: bad scans", what);
    s->scans = (int)x;
    if (json_top_numbers(json, "percentiles", p, NYUL_N) != NYUL_N) return as_fail("%s: bad percentiles", what);
    for (int l = 0; l < NYUL_N; l++)
        if (p[l] != nyul_percentiles[l]) return as_fail("%s: percentiles other than 1, 10, ..., 90, 99", what);
    if (json_top_numbers(json, "landmarks", s->landmarks, NYUL_N) != NYUL_N)
        return as_fail("%s: bad landmarks (expected %d numbers)", what, NYUL_N);
    for (int l = 0; l < NYUL_N; l++)
        if (!isfinite(s->landmarks[l]) || (l && !(s->landmarks[l] > s->landmarks[l - 1])))
            return as_fail("%s: landmarks must be finite and increasing", what);
    // Session 13 wrote no "tails": its standards clamped, and its models keep seeing what they
    // were trained on.
    char tails[16] = "clamp";
    if (json_top_value(json, "tails") &&
        (json_top_string(json, "tails", tails, sizeof tails) || (strcmp(tails, "extend") && strcmp(tails, "clamp"))))
        return as_fail("%s: bad tails (expected \"extend\" or \"clamp\")", what);
    s->clamped = !strcmp(tails, "clamp");
    s->on = 1;
    return 0;
}
