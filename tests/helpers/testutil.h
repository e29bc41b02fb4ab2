// Shared test harness: checks that count, tensor comparison with a scaled tolerance, raw
// float32 files written by the Python reference scripts, and the closing "N passed, M failed".
#ifndef ANOSWIN_TESTUTIL_H
#define ANOSWIN_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

extern int tu_passed, tu_failed;

// Records one check; prints "FAIL: <what>" (with file:line) when cond is false.
#define CHECK(cond, ...) tu_check((cond), __FILE__, __LINE__, __VA_ARGS__)
void tu_check(int cond, const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

// |got-ref| <= atol + rtol*|ref| elementwise. Prints "name: OK maxdiff=… (worst at i)" or FAIL
// with the first few mismatches. Counts as one check. Returns 1 when it passed.
int tu_allclose(const char *name, const float *got, const float *ref, size_t n, double atol, double rtol);
// Relative L2 error ||got-ref|| / max(||ref||, tiny) <= tol. Counts as one check.
int tu_rel_l2(const char *name, const float *got, const float *ref, size_t n, double tol);

// Raw little-endian float32 / int64 files (numpy's arr.astype('<f4').tofile()).
// Aborts the test with a message when the file is missing or its size differs from n.
float *tu_read_f32(const char *path, size_t n);
int64_t *tu_read_i64(const char *path, size_t n);
void tu_write_f32(const char *path, const float *x, size_t n);

// $ANOSWIN_SOURCE_DIR/<rel> (or ./<rel> when unset).
const char *tu_source_path(const char *rel);
// Runs "$ANOSWIN_PYTHON <source>/<script> <args>" through the shell; aborts the test run if
// it fails (a reference that cannot run is a failure, never a skip).
void tu_run_python(const char *script, const char *args);
// A fresh scratch folder under the current directory, named after the test.
const char *tu_scratch_dir(const char *name);

// ---- reference tensors of the layer tests (tools/nn_*_ref.py) --------------------------------
// tu_ref_run makes the scratch folder of `test`, runs "<script> FOLDER" there and remembers the
// folder; tu_ref reads FOLDER/TAG_NAME.f32 (FOLDER/NAME.f32 when tag is "") of n floats.
const char *tu_ref_run(const char *test, const char *script);
float *tu_ref(const char *tag, const char *name, size_t n);
// Buffers a test keeps until tu_free_kept (one call at the end: clean under LeakSanitizer); tu_ref
// and tu_zeros keep theirs.
void *tu_keep(void *p);
float *tu_zeros(size_t n);
void tu_free_kept(void);
// got vs ref under both bounds: tu_allclose with atol and rtol 1e-4, or 1e-3 for gradient
// tolerances (atol >= 1e-4: sums over many terms depend on the order and on FMA contraction, e.g.
// in the -O0 sanitizer build), and a relative L2 error <= 1e-5 ("<name> (rel L2)").
void tu_cmp(const char *name, const float *got, const float *ref, size_t n, double atol);

// Prints "N passed, M failed" and returns the process exit code (0 only when nothing failed
// and at least one check ran).
int tu_finish(void);

#endif
