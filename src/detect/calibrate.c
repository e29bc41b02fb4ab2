// Healthy-scan calibration of the anomaly-map threshold (see calibrate.h).
#include "detect/calibrate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect/normative.h"
#include "nn/nn.h"  // nn_precision: bf16 maps differ from fp32 ones by more than a threshold's margin
#include "util/error.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/stats.h"  // sort_floats, quantile_sorted_f32

const double calib_fpr_levels[CALIB_LEVELS] = {1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3,
                                               5e-3, 1e-2, 2e-2, 5e-2, 0.1,  0.2,  0.5};

void calibration_set_map(calibration *c, const amap_params *a, const slice_options *s) {
    c->window = a->window, c->stride = a->stride > 0 ? a->stride : a->window;
    c->positive_residual = a->positive_residual, c->window_norm = a->window_norm, c->slice_norm = a->slice_norm;
    c->restrict_to_brain = a->restrict_to_brain, c->norm = s->norm;
    c->z_first = s->z_first, c->z_last = s->z_last;
    c->precision = nn_precision();
}

void calibration_set_values(calibration *c, float *v, size_t n) {
    c->voxels = (int64_t)n;
    sort_floats(v, n);
    for (int l = 0; l < CALIB_LEVELS; l++) c->threshold[l] = quantile_sorted_f32(v, n, 1.0 - calib_fpr_levels[l]);
}

double calibration_threshold(const calibration *c, double fpr) {
    if (!(fpr >= calib_fpr_levels[0] && fpr <= calib_fpr_levels[CALIB_LEVELS - 1])) return NAN;
    for (int l = 0; l + 1 < CALIB_LEVELS; l++) {
        double a = calib_fpr_levels[l], b = calib_fpr_levels[l + 1];
        if (fpr > b) continue;
        double t = (log(fpr) - log(a)) / (log(b) - log(a));
        return c->threshold[l] + t * (c->threshold[l + 1] - c->threshold[l]);
    }
    return c->threshold[CALIB_LEVELS - 1];
}

static const char *norm_name(int norm) { return norm == SLICE_NORM_PERCENTILE ? "percentile" : "minmax"; }

// "dir/name.json" -> "dir/name.normative.f32" (out), and the file name alone (base, into out).
static void normative_path(char *out, size_t n, const char *json_path, const char **base) {
    snprintf(out, n, "%s", json_path);
    size_t l = strlen(out);
    if (l > 5 && !strcmp(out + l - 5, ".json")) out[l - 5] = 0;
    strncat(out, ".normative.f32", n - strlen(out) - 1);
    const char *slash = strrchr(out, '/');
    *base = slash ? slash + 1 : out;
}

static size_t normative_voxels(const calibration *c) {
    return (size_t)(c->z_last - c->z_first + 1) * c->norm_size * c->norm_size;
}

int calibration_write(const calibration *c, const char *path) {
    char npath[4200];
    const char *nbase = NULL;
    if (c->norm_mean) {  // the maps first: a JSON never names a file that is not there
        normative_path(npath, sizeof npath, path, &nbase);
        size_t nv = normative_voxels(c);
        float *all = as_malloc(sizeof(float) * 2 * nv * c->norm_nscales);
        for (int k = 0; k < c->norm_nscales; k++) {
            memcpy(all + 2 * nv * k, c->norm_mean + nv * k, sizeof(float) * nv);
            memcpy(all + 2 * nv * k + nv, c->norm_sd + nv * k, sizeof(float) * nv);
        }
        int rc = fs_write_all(npath, all, sizeof(float) * 2 * nv * c->norm_nscales);
        free(all);
        if (rc) return -1;
    }
    fs_file af;
    if (fs_file_open(&af, path)) return -1;
    FILE *f = af.f;
    fprintf(f, "{\n  \"format\": \"anoswin-calibration-1\",\n  \"checkpoint\": ");
    json_write_string(f, c->checkpoint);
    fprintf(f, ",\n  \"weights_fnv1a\": \"%016llx\",\n", (unsigned long long)c->weights_hash);
    fprintf(f, "  \"mask_size\": %d,\n  \"stride\": %d,\n  \"residual\": \"%s\",\n  \"window_norm\": \"%s\",\n",
            c->window, c->stride, c->positive_residual ? "positive" : "abs", c->window_norm ? "minmax" : "none");
    fprintf(f, "  \"slice_norm\": \"%s\",\n  \"brain_only\": %s,\n  \"norm\": \"%s\",\n",
            c->slice_norm ? "max" : "none", c->restrict_to_brain ? "true" : "false", norm_name(c->norm));
    fprintf(f, "  \"precision\": \"%s\",\n", nn_precision_name(c->precision));
    fprintf(f, "  \"slice_range\": [%d, %d],\n  \"scans\": %d,\n  \"voxels\": %lld,\n", c->z_first, c->z_last,
            c->scans, (long long)c->voxels);
    if (c->norm_mean) {
        fprintf(f, "  \"normative_file\": ");
        json_write_string(f, nbase);
        fprintf(f, ",\n  \"normative_size\": %d,\n  \"normative_sigma\": %g,\n  \"normative_sd_floor\": %g,\n",
                c->norm_size, c->norm_sigma, c->norm_floor);
        fprintf(f, "  \"normative_scales\": [");
        for (int k = 0; k < c->norm_nscales; k++) fprintf(f, "%s%.9g", k ? ", " : "", c->norm_scales[k]);
        fprintf(f, "],\n  \"normative_units\": [");
        for (int k = 0; k < c->norm_nscales; k++) fprintf(f, "%s%.9g", k ? ", " : "", c->norm_unit[k]);
        fprintf(f, "],\n");
    }
    fprintf(f, "  \"fpr\": [");
    for (int l = 0; l < CALIB_LEVELS; l++) fprintf(f, "%s%.17g", l ? ", " : "", calib_fpr_levels[l]);
    fprintf(f, "],\n  \"threshold\": [");
    for (int l = 0; l < CALIB_LEVELS; l++) fprintf(f, "%s%.9g", l ? ", " : "", c->threshold[l]);
    fprintf(f, "]\n}\n");
    if (ferror(f)) {
        fs_file_abort(&af);
        return as_fail("%s: write error", path);
    }
    return fs_file_commit(&af);
}

static int read_int(const char *text, const char *path, const char *key, int *out) {
    double v;
    if (json_top_number(text, key, &v) || v != floor(v) || fabs(v) > 1e9)
        return as_fail("%s: calibration key \"%s\" missing or not an integer", path, key);
    *out = (int)v;
    return 0;
}

static int read_choice(const char *text, const char *path, const char *key, const char *one, const char *zero,
                       int *out) {
    char s[32];
    if (json_top_string(text, key, s, sizeof s) || (strcmp(s, one) && strcmp(s, zero)))
        return as_fail("%s: calibration key \"%s\" missing or not %s|%s", path, key, one, zero);
    *out = !strcmp(s, one);
    return 0;
}

int calibration_read(calibration *c, const char *path) {
    memset(c, 0, sizeof *c);
    unsigned char *buf;
    size_t n;
    if (fs_read_all(path, &buf, &n)) return -1;
    char *text = as_malloc(n + 1);
    memcpy(text, buf, n);
    text[n] = 0;
    free(buf);
    int rc = -1;
    char fmt[64], hash[32];
    double fpr[CALIB_LEVELS + 1], range[3], voxels;
    const char *bo;
    if (json_top_string(text, "format", fmt, sizeof fmt) || strcmp(fmt, "anoswin-calibration-1")) {
        as_fail("%s: not an anoswin calibration (\"format\" is not anoswin-calibration-1)", path);
        goto done;
    }
    if (read_int(text, path, "mask_size", &c->window) || read_int(text, path, "stride", &c->stride) ||
        read_int(text, path, "scans", &c->scans) ||
        read_choice(text, path, "residual", "positive", "abs", &c->positive_residual) ||
        read_choice(text, path, "window_norm", "minmax", "none", &c->window_norm) ||
        read_choice(text, path, "slice_norm", "max", "none", &c->slice_norm) ||
        read_choice(text, path, "norm", "percentile", "minmax", &c->norm))
        goto done;
    c->norm = c->norm ? SLICE_NORM_PERCENTILE : SLICE_NORM_MINMAX;
    if (!(bo = json_top_value(text, "brain_only")) || (strncmp(bo, "true", 4) && strncmp(bo, "false", 5))) {
        as_fail("%s: calibration key \"brain_only\" missing or not true|false", path);
        goto done;
    }
    c->restrict_to_brain = bo[0] == 't';
    char prec[16];
    c->precision = NN_FP32;  // files written before bf16 existed
    if (json_top_value(text, "precision") &&
        (json_top_string(text, "precision", prec, sizeof prec) || nn_precision_parse(prec, &c->precision))) {
        as_fail("%s: calibration key \"precision\" is not fp32|bf16", path);
        goto done;
    }
    if (json_top_numbers(text, "slice_range", range, 3) != 2 || json_top_number(text, "voxels", &voxels) ||
        json_top_string(text, "checkpoint", c->checkpoint, sizeof c->checkpoint) ||
        json_top_string(text, "weights_fnv1a", hash, sizeof hash)) {
        as_fail("%s: calibration keys slice_range, voxels, checkpoint or weights_fnv1a missing", path);
        goto done;
    }
    c->z_first = (int)range[0], c->z_last = (int)range[1], c->voxels = (int64_t)voxels;
    c->weights_hash = strtoull(hash, NULL, 16);
    if (json_top_numbers(text, "fpr", fpr, CALIB_LEVELS + 1) != CALIB_LEVELS ||
        json_top_numbers(text, "threshold", c->threshold, CALIB_LEVELS) != CALIB_LEVELS) {
        as_fail("%s: calibration \"fpr\" and \"threshold\" must hold %d numbers", path, CALIB_LEVELS);
        goto done;
    }
    char nfile[1024];
    if (!json_top_string(text, "normative_file", nfile, sizeof nfile)) {
        double size, sigma, fl;
        if (json_top_number(text, "normative_size", &size) || json_top_number(text, "normative_sigma", &sigma) ||
            json_top_number(text, "normative_sd_floor", &fl) || size < 1 || size > 4096 || !(sigma > 0) ||
            !(fl > 0) || c->z_last < c->z_first || strchr(nfile, '/')) {
            as_fail("%s: normative keys (normative_size, normative_sigma, normative_sd_floor, slice_range, a file "
                    "name in the same folder) missing or invalid", path);
            goto done;
        }
        c->norm_size = (int)size, c->norm_sigma = (float)sigma, c->norm_floor = (float)fl;
        double sc[NORMATIVE_MAX_SCALES + 1], un[NORMATIVE_MAX_SCALES + 1];
        int ns = json_top_numbers(text, "normative_scales", sc, NORMATIVE_MAX_SCALES + 1);
        if (ns < 0 && !json_top_value(text, "normative_scales") && !json_top_value(text, "normative_units")) {
            ns = 1, sc[0] = 0, un[0] = 1;  // written before multi-scale scoring: one scale, plain z-scores
        } else if (ns < 1 || ns > NORMATIVE_MAX_SCALES ||
                   json_top_numbers(text, "normative_units", un, NORMATIVE_MAX_SCALES + 1) != ns) {
            as_fail("%s: \"normative_scales\" and \"normative_units\" must hold the same number (1..%d) of values",
                    path, NORMATIVE_MAX_SCALES);
            goto done;
        }
        for (int k = 0; k < ns; k++) {
            if (!(sc[k] >= 0 && sc[k] <= 64) || !(un[k] > 0) || !isfinite(un[k])) {
                as_fail("%s: normative scale %g (unit %g): scales 0..64 px with positive units", path, sc[k], un[k]);
                goto done;
            }
            c->norm_scales[k] = (float)sc[k], c->norm_unit[k] = (float)un[k];
        }
        c->norm_nscales = ns;
        char npath[4200];
        const char *slash = strrchr(path, '/');
        snprintf(npath, sizeof npath, "%.*s%s", slash ? (int)(slash - path + 1) : 0, path, nfile);
        unsigned char *nb;
        size_t len, nv = normative_voxels(c);
        if (fs_read_all(npath, &nb, &len)) goto done;
        if (len != sizeof(float) * 2 * nv * ns) {
            free(nb);
            as_fail("%s: %zu bytes, expected %zu (mean and sd of %d slices of %dx%d at %d scale%s)", npath, len,
                    sizeof(float) * 2 * nv * ns, c->z_last - c->z_first + 1, c->norm_size, c->norm_size, ns,
                    ns == 1 ? "" : "s");
            goto done;
        }
        c->norm_mean = as_malloc(sizeof(float) * nv * ns), c->norm_sd = as_malloc(sizeof(float) * nv * ns);
        for (int k = 0; k < ns; k++) {
            memcpy(c->norm_mean + nv * k, nb + sizeof(float) * 2 * nv * k, sizeof(float) * nv);
            memcpy(c->norm_sd + nv * k, nb + sizeof(float) * (2 * nv * k + nv), sizeof(float) * nv);
        }
        free(nb);
        for (size_t q = 0; q < nv * ns; q++)
            if (!(c->norm_sd[q] > 0) || !isfinite(c->norm_mean[q])) {
                as_fail("%s: normative sd not positive or mean not finite at voxel %zu", npath, q);
                goto done;
            }
    }
    for (int l = 0; l < CALIB_LEVELS; l++) {
        if (fabs(fpr[l] - calib_fpr_levels[l]) > 1e-12 * calib_fpr_levels[l] || !isfinite(c->threshold[l]) ||
            (l && c->threshold[l] > c->threshold[l - 1])) {
            as_fail("%s: calibration table entry %d (fpr %g, threshold %g) is out of order or not finite", path, l,
                    fpr[l], c->threshold[l]);
            goto done;
        }
    }
    rc = 0;
done:
    free(text);
    if (rc) calibration_free(c);
    return rc;
}

void calibration_free(calibration *c) {
    free(c->norm_mean), free(c->norm_sd);
    c->norm_mean = c->norm_sd = NULL;
}

int calibration_normalise(const calibration *c, const char *path, float *maps, const int *z, int n, int S) {
    if (!c->norm_mean) return 0;
    if (S != c->norm_size)
        return as_fail("%s: normative maps are %dx%d, this model's slices %dx%d", path, c->norm_size, c->norm_size,
                       S, S);
    size_t hw = (size_t)S * S, nv = normative_voxels(c);
    for (int i = 0; i < n; i++)
        if (z[i] < c->z_first || z[i] > c->z_last)
            return as_fail("%s: slice %d lies outside the calibrated slices %d..%d; calibrate on the range you "
                           "detect on",
                           path, z[i], c->z_first, c->z_last);
    float *raw = as_malloc(sizeof(float) * hw), *z1 = as_malloc(sizeof(float) * hw);
    for (int i = 0; i < n; i++) {
        float *m = maps + hw * i;
        memcpy(raw, m, sizeof(float) * hw);
        size_t o = hw * (size_t)(z[i] - c->z_first);
        for (int k = 0; k < c->norm_nscales; k++) {
            smooth_slices(z1, raw, S, S, 1, c->norm_scales[k]);
            normative_z(z1, z1, c->norm_mean + nv * k + o, c->norm_sd + nv * k + o, hw);
            float inv = 1.0f / c->norm_unit[k];
            for (size_t q = 0; q < hw; q++) m[q] = k == 0 || z1[q] * inv > m[q] ? z1[q] * inv : m[q];
        }
    }
    free(raw), free(z1);
    return 0;
}

int calibration_check(const calibration *c, const char *path, const amap_params *a, const slice_options *s,
                      uint64_t weights_hash) {
    calibration want = *c;
    calibration_set_map(&want, a, s);
    const char *what = want.window != c->window                       ? "mask size"
                       : want.stride != c->stride                     ? "stride"
                       : want.positive_residual != c->positive_residual ? "residual"
                       : want.window_norm != c->window_norm           ? "window norm"
                       : want.slice_norm != c->slice_norm             ? "slice norm"
                       : want.restrict_to_brain != c->restrict_to_brain ? "brain-only"
                       : want.norm != c->norm                         ? "intensity norm"
                       : want.precision != c->precision               ? "precision (--precision fp32|bf16)"
                                                                      : NULL;
    if (what) return as_fail("%s: calibrated with another %s than this detection's; calibrate again", path, what);
    if (weights_hash != c->weights_hash)
        return as_fail("%s: calibrated with other weights (%s); calibrate again with this checkpoint", path,
                       c->checkpoint);
    return 0;
}
