// The FLOP count used by `anoswin bench` against torch.profiler's count of the PyTorch
// reference's matrix products (tools/ref_flops.py), at the paper config and a small odd one.
#include <stdio.h>
#include <stdlib.h>

#include "helpers/testutil.h"
#include "model/swinmae/config.h"
#include "model/swinmae/flops.h"
#include "util/error.h"

static void check_config(const char *name, const char *override) {
    swinmae_config cfg;
    swinmae_config_default(&cfg);
    if (override && swinmae_config_parse(&cfg, override, "test") != 0) {
        CHECK(0, "%s: config %s: %s", name, override, as_error());
        return;
    }
    const char *dir = tu_scratch_dir(name);
    char path[4096], args[8192];
    snprintf(path, sizeof path, "%s/gflops.f32", dir);
    snprintf(args, sizeof args, "%s %s%s%s", path, override ? "'" : "", override ? override : "", override ? "'" : "");
    tu_run_python("tools/ref_flops.py", args);
    float *ref = tu_read_f32(path, 1);
    float got = (float)(swinmae_flops_forward(&cfg) / 1e9);
    printf("%s: %.6f GFLOP forward (profiler %.6f), %.6f per training step\n", name, got, ref[0],
           swinmae_flops_train(&cfg) / 1e9);
    tu_allclose(name, &got, ref, 1, 0, 1e-6);
    free(ref);
}

int main(void) {
    check_config("flops_paper", NULL);
    check_config("flops_small", "img_size=64,patch_size=2,window=4,embed_dim=24,depths=[1,2,1,1],num_heads=[1,2,3,4],in_chans=1");
    swinmae_config cfg;
    swinmae_config_default(&cfg);
    double f = swinmae_flops_forward(&cfg) / 1e9;
    CHECK(f > 10.8 && f < 11.0, "paper config ~10.9 GFLOP forward (%g)", f);
    return tu_finish();
}
