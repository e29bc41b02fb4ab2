// The VAE baseline against its PyTorch reference (tools/vae_ref.py) on a small config that keeps
// every part (32 px, 2 channels, 3 blocks of 5x5 / stride 2, 4x4 bottleneck, z 6, batch 3,
// dropout with explicit scales): a PyTorch state_dict loads strictly, the training forward's
// output, loss terms, every parameter gradient and the BatchNorm running statistics match, the
// evaluation forward (running statistics, z = mu) matches, and a checkpoint written here loads
// strictly in PyTorch and reconstructs the same (tools/vae_ref.py check, within 1e-4). The config
// text through its table (model/config_text.h): the JSON of the defaults as checkpoints have
// always stored it, the round trip, the choice key, and the errors naming the key.
// Tolerances as tests/test_nn_layers.c: values atol 1e-5 / rtol 1e-4, gradients atol 1e-4 /
// rtol 1e-3, relative L2 <= 1e-5 each.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/model_checks.h"  // tu_checkpoint_checks
#include "helpers/testutil.h"
#include "util/error.h"  // as_error
#include "model/checkpoint.h"  // checkpoint_load
#include "model/model.h"
#include "model/vae/vae.h"

static const char *dir;

static float *rd(const char *name, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.f32", dir, name);
    return tu_read_f32(path, n);
}

// One reference scalar (the file's single float).
static float rd1(const char *name) {
    float *p = rd(name, 1), v = p[0];
    free(p);
    return v;
}

static void cmp(const char *name, const float *got, const char *ref_name, size_t n, double atol) {
    float *ref = rd(ref_name, n);
    tu_allclose(name, got, ref, n, atol, atol >= 1e-4 ? 1e-3 : 1e-4);
    double norm = 0;
    for (size_t i = 0; i < n; i++) norm += (double)ref[i] * ref[i];
    if (sqrt(norm) < 1e-9) {
        // A convolution bias right before training-mode BatchNorm: the batch mean cancels it, so
        // its exact gradient is 0 and ours is float rounding; the elementwise bound above is the test.
        printf("%s: exact gradient 0 (bias before BatchNorm), no relative check\n", name);
        free(ref);
        return;
    }
    char buf[300];
    snprintf(buf, sizeof buf, "%.200s (rel L2)", name);
    tu_rel_l2(buf, got, ref, n, 1e-5);
    free(ref);
}

static const char *CFG = "img_size=32,in_chans=2,patch_size=8,res=4,z_dim=6,base_ch=8,max_ch=16,kernel=5,slope=0.3,"
                         "dropout=0.25,beta=0.5,rec_loss=l1";

static void test_training_step(void) {
    const int B = 3;
    vae_config c;
    vae_config_default(&c);
    CHECK(vae_config_parse(&c, CFG, "test") == 0, "small config parses");
    vae v;
    CHECK(vae_create(&v, &c, B, 1) == 0, "vae_create");
    char ref[4200];
    snprintf(ref, sizeof ref, "%s/ref.safetensors", dir);
    CHECK(checkpoint_load(ref, &v.table, v.params) == 0, "PyTorch state_dict loads strictly");
    const size_t Z = (size_t)c.z_dim, F = (size_t)vae_flat(&c), npx = (size_t)B * c.in_chans * c.img_size * c.img_size;
    float *x = rd("x", npx), *eps = rd("eps", B * Z);
    float *drop[3] = {rd("drop0", B * Z), rd("drop1", B * Z), rd("drop2", B * F)};
    memset(v.grads, 0, sizeof(float) * v.table.n_floats);
    float loss = vae_forward(&v, x, eps, (const float *const *)drop, B, 1);
    vae_backward(&v, x, B);
    cmp("vae training output", v.out, "y", npx, 1e-5);
    cmp("vae mu (after dropout)", v.mu, "mu", B * Z, 1e-5);
    cmp("vae log sigma (after dropout)", v.ls, "ls", B * Z, 1e-5);
    float lr = rd1("loss"), rr = rd1("rec"), kr = rd1("kl");
    CHECK(fabsf(loss - lr) <= 1e-5f * fabsf(lr), "loss %.9g vs torch %.9g", loss, lr);
    CHECK(fabsf(v.rec - rr) <= 1e-5f * fabsf(rr), "reconstruction term %.9g vs torch %.9g", v.rec, rr);
    CHECK(fabsf(v.kl - kr) <= 1e-5f * fabsf(kr), "KL term %.9g vs torch %.9g", v.kl, kr);
    int n_grads = 0, n_stats = 0;
    for (int i = 0; i < v.table.n; i++) {
        const param_entry *e = &v.table.entries[i];
        if (e->dtype != PARAM_F32) continue;
        char name[200], what[200];
        if (e->trainable) {
            snprintf(name, sizeof name, "grad__%s", e->name);
            snprintf(what, sizeof what, "d %s", e->name);
            cmp(what, v.grads + e->offset, name, e->numel, 1e-4);
            n_grads++;
        } else {
            snprintf(name, sizeof name, "post__%s", e->name);
            snprintf(what, sizeof what, "updated %s", e->name);
            cmp(what, v.params + e->offset, name, e->numel, 1e-5);
            int zero = 1;
            for (size_t k = 0; k < e->numel; k++) zero &= v.grads[e->offset + k] == 0.0f;
            CHECK(zero, "%s gets no gradient", e->name);
            n_stats++;
        }
    }
    CHECK(n_grads == 38 && n_stats == 14, "every parameter compared (%d gradients, %d running statistics)", n_grads,
          n_stats);
    // The evaluation forward after that step uses the updated running statistics and z = mu.
    vae_forward(&v, x, NULL, NULL, B, 0);
    cmp("vae evaluation output", v.out, "y_eval", npx, 1e-5);
    free(x);
    free(eps);
    for (int i = 0; i < 3; i++) free(drop[i]);
    vae_free(&v);
}

static void test_interface(void) {
    const int B = 3;
    char ref[4200], ours[4200], xs[4200], ys[4200];
    snprintf(ref, sizeof ref, "%s/ref.safetensors", dir);
    snprintf(ours, sizeof ours, "%s/ours.safetensors", dir);
    snprintf(xs, sizeof xs, "%s/x.f32", dir);
    snprintf(ys, sizeof ys, "%s/y_ours.f32", dir);
    CHECK(model_method_find("vae") != NULL, "the registry knows 'vae'");

    // Training through the interface: finite loss, gradients, running statistics move.
    model t;
    CHECK(model_create(&t, "vae", CFG, B, 1, "test") == 0, "model_create vae (training)");
    t.method->init_params(&t, 3);
    const size_t npx = (size_t)B * 2 * 32 * 32;
    float *x = rd("x", npx);
    const param_entry *rm = param_table_find(t.table, "encoder.0.bn.running_mean");
    CHECK(rm && rm->trainable == 0, "running statistics are in the table, not trainable");
    model_zero_grad(&t);
    float loss = t.method->train_batch(&t, x, NULL, B, 1, 11);
    double gsum = 0;
    for (size_t i = 0; i < t.table->n_floats; i++) gsum += fabs(t.grads[i]);
    CHECK(isfinite(loss) && loss > 0 && gsum > 0, "train_batch: loss %g, |grad| sum %g", loss, gsum);
    CHECK(t.params[rm->offset] != 0.0f, "a training step moves the running mean");
    model_free(&t);

    // Strict load of the PyTorch file through the registry (method and config from metadata),
    // evaluation reconstruction, save, and PyTorch's strict load + the same reconstruction.
    free(tu_checkpoint_checks("vae", "tools/vae_ref.py", ref, ours, xs, ys, x, B, npx));
    free(x);
}

static void test_config_text(void) {
    vae_config c, d;
    vae_config_default(&c);
    char json[1024], small[40];
    // The format vae_config_to_json had before the table (key order, %d, shortest floats, quoted
    // loss), with the defaults of vae_config_default.
    const char *want = "{\"img_size\":128,\"in_chans\":1,\"patch_size\":16,\"res\":8,\"z_dim\":128,\"base_ch\":32,"
                       "\"max_ch\":128,\"kernel\":5,\"slope\":0.3,\"dropout\":0.1,\"beta\":1,\"rec_loss\":\"l1\"}";
    CHECK(vae_config_to_json(&c, json, sizeof json) == 0 && !strcmp(json, want), "default JSON: %s", json);
    CHECK(vae_config_to_json(&c, small, sizeof small) == -1, "JSON that does not fit: -1");
    CHECK(vae_config_parse(&c, CFG, "test") == 0 && c.img_size == 32 && c.z_dim == 6 && c.slope == 0.3f &&
              c.dropout == 0.25f && c.rec_l2 == 0,
          "key=value text parses: %s", as_error());
    CHECK(vae_config_parse(&c, "{\"rec_loss\": \"l2\", \"beta\": 2.5}", "test") == 0 && c.rec_l2 == 1 &&
              c.beta == 2.5f && c.img_size == 32,
          "JSON on top of a config: %s", as_error());
    vae_config_default(&d);
    CHECK(vae_config_to_json(&c, json, sizeof json) == 0 && vae_config_parse(&d, json, "test") == 0 &&
              !memcmp(&c, &d, sizeof c),
          "to_json then parse gives the config back: %s", json);
    CHECK(vae_config_parse(&d, "rec_loss=l3", "cfg") == -1 &&
              !strcmp(as_error(), "cfg: config key 'rec_loss' must be l1 or l2"),
          "a bad choice names the key and the choices: %s", as_error());
    CHECK(vae_config_parse(&d, "depth=3", "cfg") == -1 &&
              !strcmp(as_error(),
                      "cfg: unknown config key 'depth' (known: img_size in_chans patch_size res z_dim "
                      "base_ch max_ch kernel slope dropout beta rec_loss)"),
          "an unknown key lists the known ones: %s", as_error());
    CHECK(
        vae_config_parse(&d, "kernel=4", "cfg") == -1 && strstr(as_error(), "cfg: kernel 4 must be odd") == as_error(),
        "the check's message names `what`, not 'config:': %s", as_error());
    CHECK(vae_config_parse(&d, "z_dim=2.5", "cfg") == -1 && strstr(as_error(), "needs an integer"),
          "an integer key refuses 2.5: %s", as_error());
}

int main(void) {
    dir = tu_scratch_dir("test_model_vae");
    char args[4200];
    snprintf(args, sizeof args, "dump %s", dir);
    tu_run_python("tools/vae_ref.py", args);
    test_config_text();
    test_training_step();
    test_interface();
    return tu_finish();
}
