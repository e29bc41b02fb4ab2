#include "helpers/testutil.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int tu_passed, tu_failed;

void tu_check(int cond, const char *file, int line, const char *fmt, ...) {
    if (cond) {
        tu_passed++;
        return;
    }
    tu_failed++;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int tu_allclose(const char *name, const float *got, const float *ref, size_t n, double atol, double rtol) {
    double maxdiff = 0;
    size_t worst = 0, bad = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)ref[i]);
        if (!(d <= atol + rtol * fabs((double)ref[i]))) {  // NaN fails too
            if (bad < 5) fprintf(stderr, "  %s[%zu]: got %.8g want %.8g\n", name, i, got[i], ref[i]);
            bad++;
        }
        if (!(d <= maxdiff)) {
            maxdiff = d;
            worst = i;
        }
    }
    if (bad) {
        tu_failed++;
        fprintf(stderr, "%s: FAIL %zu/%zu mismatches, maxdiff=%.3g at %zu (atol %.1g rtol %.1g)\n", name, bad, n,
                maxdiff, worst, atol, rtol);
        return 0;
    }
    tu_passed++;
    printf("%s: OK maxdiff=%.3g (n=%zu)\n", name, maxdiff, n);
    return 1;
}

int tu_rel_l2(const char *name, const float *got, const float *ref, size_t n, double tol) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - (double)ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    double rel = sqrt(num) / fmax(sqrt(den), 1e-30);
    int ok = rel <= tol;  // NaN fails
    if (ok) {
        tu_passed++;
        printf("%s: OK rel_l2=%.3g (n=%zu)\n", name, rel, n);
    } else {
        tu_failed++;
        fprintf(stderr, "%s: FAIL rel_l2=%.3g > %.1g (n=%zu)\n", name, rel, tol, n);
    }
    return ok;
}

static void *read_exact(const char *path, size_t bytes) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "FAIL: cannot open reference file %s\n", path);
        exit(1);
    }
    void *buf = malloc(bytes ? bytes : 1);
    size_t got = fread(buf, 1, bytes, f);
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (got != bytes || extra) {
        fprintf(stderr, "FAIL: %s: expected %zu bytes\n", path, bytes);
        exit(1);
    }
    return buf;
}

float *tu_read_f32(const char *path, size_t n) { return read_exact(path, n * sizeof(float)); }
int64_t *tu_read_i64(const char *path, size_t n) { return read_exact(path, n * sizeof(int64_t)); }

void tu_write_f32(const char *path, const float *x, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(x, sizeof(float), n, f) != n) {
        fprintf(stderr, "FAIL: cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

const char *tu_source_path(const char *rel) {
    static char buf[8][4096];
    static int k;
    const char *root = getenv("ANOSWIN_SOURCE_DIR");
    char *out = buf[k++ % 8];
    snprintf(out, 4096, "%s/%s", root ? root : ".", rel);
    return out;
}

void tu_run_python(const char *script, const char *args) {
    const char *py = getenv("ANOSWIN_PYTHON");
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "%s %s %s", py ? py : "/usr/bin/python3", tu_source_path(script), args ? args : "");
    int rc = system(cmd);
    if (rc != 0) {
        fprintf(stderr, "FAIL: reference script failed (%d): %s\n", rc, cmd);
        exit(1);
    }
}

const char *tu_scratch_dir(const char *name) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "scratch_%s", name);
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", buf, buf);
    if (system(cmd) != 0) {
        fprintf(stderr, "FAIL: cannot create %s\n", buf);
        exit(1);
    }
    return buf;
}

static char ref_dir[4096];

const char *tu_ref_run(const char *test, const char *script) {
    snprintf(ref_dir, sizeof ref_dir, "%s", tu_scratch_dir(test));
    tu_run_python(script, ref_dir);
    return ref_dir;
}

float *tu_ref(const char *tag, const char *name, size_t n) {
    char path[8400];
    snprintf(path, sizeof path, "%s/%s%s%s.f32", ref_dir, tag, *tag ? "_" : "", name);
    return tu_keep(tu_read_f32(path, n));
}

static void **kept;
static size_t n_kept, cap_kept;

void *tu_keep(void *p) {
    if (n_kept == cap_kept) {
        cap_kept = cap_kept ? 2 * cap_kept : 256;
        kept = realloc(kept, sizeof *kept * cap_kept);
        if (!kept) {
            fprintf(stderr, "FAIL: out of memory keeping test buffers\n");
            exit(1);
        }
    }
    kept[n_kept++] = p;
    return p;
}

float *tu_zeros(size_t n) { return tu_keep(calloc(n ? n : 1, sizeof(float))); }

void tu_free_kept(void) {
    for (size_t i = 0; i < n_kept; i++) free(kept[i]);
    free(kept);
    kept = NULL, n_kept = cap_kept = 0;
}

void tu_cmp(const char *name, const float *got, const float *ref, size_t n, double atol) {
    tu_allclose(name, got, ref, n, atol, atol >= 1e-4 ? 1e-3 : 1e-4);
    char buf[4200];
    snprintf(buf, sizeof buf, "%.4000s (rel L2)", name);
    tu_rel_l2(buf, got, ref, n, 1e-5);
}

int tu_finish(void) {
    printf("%d passed, %d failed\n", tu_passed, tu_failed);
    return (tu_failed == 0 && tu_passed > 0) ? 0 : 1;
}
