// The UMAP embedding's quality (issue #20's reference check): on scikit-learn's digits (1797
// points in 64-D, 10 known classes) the trustworthiness (sklearn.manifold.trustworthiness, 5
// neighbours) of our 2-D UMAP lies within 0.02 of what scikit-learn's t-SNE reaches on the same
// data (tools/umap_ref.py trust), with umap-learn's default parameters, spectral and random
// starts. Slow: t-SNE takes about half a minute.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "helpers/testutil.h"
#include "latent/umap.h"
#include "util/error.h"
#include "util/timer.h"

int main(void) {
    const char *dir = tu_scratch_dir("test_latent_trust_slow");
    char args[20000], p[4300], yp[2][4300], out[4300];
    snprintf(args, sizeof args, "data digits %s", dir);
    tu_run_python("tools/umap_ref.py", args);
    const int n = 1797, d = 64;
    snprintf(p, sizeof p, "%s/X.f32", dir);
    float *X = tu_read_f32(p, (size_t)n * d);
    float *Y = malloc(sizeof(float) * (size_t)n * 2);
    const int inits[2] = {UMAP_INIT_SPECTRAL, UMAP_INIT_RANDOM};
    const char *names[2] = {"spectral", "random"};
    double secs[2];
    for (int t = 0; t < 2; t++) {
        umap_params prm;
        umap_params_default(&prm);
        prm.init = inits[t];
        double t0 = now_seconds();
        int rc = umap_embed(X, n, d, &prm, Y);
        secs[t] = now_seconds() - t0;
        CHECK(rc == 0, "umap_embed (%s start): %s", names[t], as_error());
        snprintf(yp[t], sizeof yp[t], "%s/Y_%s.f32", dir, names[t]);
        tu_write_f32(yp[t], Y, (size_t)n * 2);
    }
    snprintf(out, sizeof out, "%s/trust.txt", dir);
    snprintf(args, sizeof args, "trust %s %d %d 2 %s %s > %s", p, n, d, yp[0], yp[1], out);
    tu_run_python("tools/umap_ref.py", args);
    FILE *f = fopen(out, "r");
    double tr[3] = {0, 0, 1};
    int ok = f && fscanf(f, "%lf %lf %lf", &tr[0], &tr[1], &tr[2]) == 3;
    if (f) fclose(f);
    CHECK(ok, "trustworthiness from scikit-learn");
    for (int t = 0; t < 2; t++) {
        CHECK(tr[t] >= tr[2] - 0.02, "digits, %s start (%.1f s): trustworthiness %.4f, t-SNE %.4f (within 0.02)",
              names[t], secs[t], tr[t], tr[2]);
        printf("digits, %s start: UMAP trustworthiness %.4f in %.1f s; t-SNE %.4f\n", names[t], tr[t], secs[t], tr[2]);
    }
    free(Y);
    free(X);
    return tu_finish();
}
