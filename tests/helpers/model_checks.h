// Checks every whole-model test makes of a method's checkpoints against its PyTorch reference
// (tests/test_model_<method>.c with tools/<method>_ref.py).
#ifndef ANOSWIN_TEST_MODEL_CHECKS_H
#define ANOSWIN_TEST_MODEL_CHECKS_H

#include <stddef.h>

// The PyTorch-written checkpoint `ref` loads strictly through the registry as `method` (method
// and config from its metadata); reconstruct() of the B images x (npx floats, in [0, 1], also in
// the file xs) returns a finite positive loss; model_save writes `ours`, and "<tool> check ours xs
// ys B" (ys: our reconstruction, written here) loads it strictly in PyTorch and reconstructs
// within 1e-4, or the test run aborts; `ours` loads back bit-exactly. Returns the reconstruction
// (npx floats, the caller frees it) for the method's own checks.
float *tu_checkpoint_checks(const char *method, const char *tool, const char *ref, const char *ours,
                            const char *xs, const char *ys, const float *x, int B, size_t npx);

#endif
