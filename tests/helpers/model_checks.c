// The checkpoint checks shared by the whole-model tests (model_checks.h).
#include "helpers/model_checks.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/testutil.h"
#include "model/model.h"

float *tu_checkpoint_checks(const char *method, const char *tool, const char *ref, const char *ours,
                            const char *xs, const char *ys, const float *x, int B, size_t npx) {
    model m;
    CHECK(model_load(&m, ref, B) == 0, "model_load of a PyTorch-written %s state_dict", method);
    CHECK(m.method && !strcmp(m.method->name, method), "the checkpoint's method is %s", method);
    float *y = calloc(npx, sizeof(float));
    if (!m.method) return y;  // nothing loaded: the checks above failed
    float err = m.method->reconstruct(&m, y, x, NULL, B);
    CHECK(isfinite(err) && err > 0, "reconstruct returns a positive loss (%g)", err);
    CHECK(model_save(&m, ours, NULL, 0) == 0, "model_save");
    tu_write_f32(ys, y, npx);
    char args[17000];
    snprintf(args, sizeof args, "check %s %s %s %d", ours, xs, ys, B);
    tu_run_python(tool, args);  // aborts the test when PyTorch disagrees
    CHECK(1, "PyTorch loads our checkpoint strictly and reconstructs within 1e-4");
    model back;
    CHECK(model_load(&back, ours, B) == 0, "our checkpoint loads back");
    CHECK(!memcmp(back.params, m.params, sizeof(float) * m.table->n_floats), "save/load round trip is exact");
    model_free(&back);
    model_free(&m);
    return y;
}
