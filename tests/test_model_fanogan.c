// The f-AnoGAN baseline against its PyTorch reference (tools/fanogan_ref.py) on a small config
// that keeps every part (16 px, 2 channels, dim 3: channels 3/6/12, 2 residual blocks per network,
// z 5, batch 3): a PyTorch state_dict loads strictly; then, in the reference's order,
//  - a critic step: the loss, its Wasserstein and gradient-penalty terms and every critic
//    gradient; the penalty's own gradients (torch.autograd.grad with create_graph=True, then
//    grad of the penalty) compared on their own, as the difference of a step with lambda 10 and
//    one with lambda 0, so that the double backward cannot hide behind the Wasserstein term;
//  - a generator step: the loss and every generator gradient, the generator's running statistics
//    after its two training forwards;
//  - an izi_f encoder step (G in evaluation mode): the loss, both terms, every encoder gradient,
//    the encoder's running statistics;
//  - the evaluation reconstruction G(E(x));
// and each step leaves the other networks' gradients at exactly 0. Through the model interface:
// train_step's stage schedule (which networks move at which step), no validation loss in the GAN
// stage, the encoder's RMSProp step, and a checkpoint written here loads strictly in PyTorch and
// reconstructs the same (tools/fanogan_ref.py check, within 1e-4). Tolerances as
// tests/test_model_vae.c: values atol 1e-5 / rtol 1e-4, gradients atol 1e-4 / rtol 1e-3,
// relative L2 <= 1e-5 per tensor.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/model_checks.h"  // tu_checkpoint_checks
#include "helpers/testutil.h"
#include "model/checkpoint.h"  // checkpoint_load
#include "model/fanogan/fanogan.h"
#include "model/model.h"

static const char *dir;

static float *rd(const char *name, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.f32", dir, name);
    return tu_read_f32(path, n);
}

static float rd1(const char *name) {
    float *p = rd(name, 1), v = p[0];
    free(p);
    return v;
}

static void cmp_ref(const char *name, const float *got, const float *ref, size_t n, double atol, double rel) {
    tu_allclose(name, got, ref, n, atol, atol >= 1e-4 ? 1e-3 : 1e-4);
    double norm = 0;
    for (size_t i = 0; i < n; i++) norm += (double)ref[i] * ref[i];
    char buf[300];
    if (sqrt(norm) < 1e-9) {
        // An exact 0: the penalty's gradient of a bias after which the critic is linear (outside
        // the input gradient), or a generator bias right before a training-mode BatchNorm (the
        // batch mean cancels it). Ours must be 0 up to rounding.
        double worst = 0;
        for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(got[i]));
        snprintf(buf, sizeof buf, "%.200s is exactly 0 in the reference: ours %.3g", name, worst);
        CHECK(worst <= 1e-6, "%s", buf);
        return;
    }
    snprintf(buf, sizeof buf, "%.200s (rel L2)", name);
    tu_rel_l2(buf, got, ref, n, rel);
}

static void cmp(const char *name, const float *got, const char *ref_name, size_t n, double atol) {
    float *ref = rd(ref_name, n);
    cmp_ref(name, got, ref, n, atol, 1e-5);
    free(ref);
}

static void scalar(const char *what, float got, const char *ref_name) {
    const float r = rd1(ref_name);
    CHECK(fabsf(got - r) <= 1e-5f * fmaxf(1.0f, fabsf(r)), "%s %.9g vs torch %.9g", what, got, r);
}

static const char *CFG = "img_size=16,in_chans=2,patch_size=4,dim=3,z_dim=5,kappa=0.7,gp_lambda=10";

// Compares the gradients of one network (entries named net.*) with the reference files
// prefix + name; every other trainable entry must have a zero gradient. Returns the count.
static int cmp_net_grads(const fanogan *f, const char *net, const char *prefix) {
    int n = 0;
    const size_t len = strlen(net);
    for (int i = 0; i < f->table.n; i++) {
        const param_entry *e = &f->table.entries[i];
        if (e->dtype != PARAM_F32) continue;
        const float *g = f->grads + e->offset;
        if (!strncmp(e->name, net, len) && e->name[len] == '.' && e->trainable) {
            char name[200], what[200];
            snprintf(name, sizeof name, "%s%s", prefix, e->name);
            snprintf(what, sizeof what, "d %s", e->name);
            cmp(what, g, name, e->numel, 1e-4);
            n++;
        } else {
            int zero = 1;
            for (size_t k = 0; k < e->numel; k++) zero &= g[k] == 0.0f;
            if (!zero) CHECK(0, "%s gets a gradient in the %s step", e->name, net);
        }
    }
    return n;
}

static int cmp_stats(const fanogan *f, const char *net) {
    int n = 0;
    const size_t len = strlen(net);
    for (int i = 0; i < f->table.n; i++) {
        const param_entry *e = &f->table.entries[i];
        if (e->dtype != PARAM_F32 || e->trainable || strncmp(e->name, net, len)) continue;
        char name[200], what[200];
        snprintf(name, sizeof name, "post__%s", e->name);
        snprintf(what, sizeof what, "updated %s", e->name);
        cmp(what, f->params + e->offset, name, e->numel, 1e-5);
        n++;
    }
    return n;
}

static int load_ref(fanogan *f, const char *cfg_text, int B) {
    fanogan_config c;
    fanogan_config_default(&c);
    if (fanogan_config_parse(&c, cfg_text, "test") || fanogan_create(f, &c, B, 1)) return -1;
    char ref[4200];
    snprintf(ref, sizeof ref, "%s/ref.safetensors", dir);
    return checkpoint_load(ref, &f->table, f->params);
}

static void test_steps(void) {
    const int B = 3;
    fanogan f, w_only;
    CHECK(load_ref(&f, CFG, B) == 0, "PyTorch state_dict loads strictly");
    char cfg0[256];
    snprintf(cfg0, sizeof cfg0, "%s,gp_lambda=0", CFG);
    CHECK(load_ref(&w_only, cfg0, B) == 0, "the same weights with gp_lambda 0");
    const fanogan_config *c = &f.cfg;
    const size_t npx = (size_t)B * c->in_chans * c->img_size * c->img_size, Z = (size_t)c->z_dim;
    float *real = rd("real", npx), *x = rd("x", npx), *z = rd("z", B * Z), *z2 = rd("z2", B * Z),
          *alpha = rd("alpha", B);

    // Critic step.
    memset(f.grads, 0, sizeof(float) * f.table.n_floats);
    float loss = fanogan_critic_step(&f, real, z, alpha, B);
    scalar("critic loss", loss, "critic_loss");
    scalar("gradient penalty", f.gp, "gp");
    scalar("mean D(real)", f.d_real, "d_real");
    scalar("mean D(fake)", f.d_fake, "d_fake");
    CHECK(rd1("gp") > 0.1f * fabsf(rd1("critic_loss")), "the penalty is a large part of the loss (%g of %g)",
          rd1("gp"), rd1("critic_loss"));
    int n = cmp_net_grads(&f, "critic", "critic_grad__");
    CHECK(n == 2 + 2 * 9 + 2, "every critic gradient compared (%d)", n);
    memset(w_only.grads, 0, sizeof(float) * w_only.table.n_floats);
    fanogan_critic_step(&w_only, real, z, alpha, B);
    CHECK(w_only.gp == 0.0f, "gp_lambda 0: no penalty");
    int n_gp = 0;
    for (int i = 0; i < f.table.n; i++) {
        const param_entry *e = &f.table.entries[i];
        if (e->dtype != PARAM_F32 || !e->trainable || strncmp(e->name, "critic.", 7)) continue;
        float *d = calloc(e->numel, sizeof(float));
        for (size_t k = 0; k < e->numel; k++) d[k] = f.grads[e->offset + k] - w_only.grads[e->offset + k];
        char name[200], what[200];
        snprintf(name, sizeof name, "gp_grad__%s", e->name);
        snprintf(what, sizeof what, "penalty's d %s (double backward)", e->name);
        float *ref = rd(name, e->numel);
        // A difference of two accumulated gradients: its rounding is the larger gradient's, so
        // the relative L2 bound is 1e-4 here.
        cmp_ref(what, d, ref, e->numel, 1e-4, 1e-4);
        free(ref);
        free(d);
        n_gp++;
    }
    CHECK(n_gp == n, "every penalty gradient compared (%d)", n_gp);
    fanogan_free(&w_only);

    // Generator step.
    memset(f.grads, 0, sizeof(float) * f.table.n_floats);
    loss = fanogan_generator_step(&f, z2, B);
    scalar("generator loss", loss, "gen_loss");
    n = cmp_net_grads(&f, "generator", "gen_grad__");
    int ns = cmp_stats(&f, "generator");
    CHECK(n == 2 + 2 * 9 + 2 + 2 && ns == 2 * 4 + 2, "every generator gradient (%d) and statistic (%d) compared", n, ns);

    // Encoder step (izi_f).
    memset(f.grads, 0, sizeof(float) * f.table.n_floats);
    loss = fanogan_encoder_step(&f, x, B);
    scalar("izi_f loss", loss, "enc_loss");
    scalar("izi_f image term", f.rec_img, "enc_rec");
    scalar("izi_f feature term", f.rec_feat, "enc_feat");
    n = cmp_net_grads(&f, "encoder", "enc_grad__");
    ns = cmp_stats(&f, "encoder");
    CHECK(n == 2 + 2 * 9 + 2 && ns == 2 * 4, "every encoder gradient (%d) and statistic (%d) compared", n, ns);

    // Evaluation reconstruction.
    float *y = calloc(npx, sizeof(float));
    fanogan_reconstruct(&f, y, x, B, NULL);
    cmp("G(E(x)) in evaluation mode", y, "y_eval", npx, 1e-5);
    float score[3];
    fanogan_image_score(&f, score, x, B);
    cmp("the anomaly score A(x) of each image", score, "score_eval", B, 1e-5);
    free(y);
    free(real);
    free(x);
    free(z);
    free(z2);
    free(alpha);
    fanogan_free(&f);
}

// Which networks' trainable parameters differ between two copies of the buffer (the generator's
// running statistics move with every training forward, critic steps included, as in PyTorch).
static void changed(const model *m, const float *before, int out[3]) {
    static const char *const nets[3] = {"generator.", "critic.", "encoder."};
    for (int k = 0; k < 3; k++) out[k] = 0;
    for (int i = 0; i < m->table->n; i++) {
        const param_entry *e = &m->table->entries[i];
        if (e->dtype != PARAM_F32 || !e->trainable) continue;
        for (int k = 0; k < 3; k++)
            if (!strncmp(e->name, nets[k], strlen(nets[k])))
                out[k] |= memcmp(before + e->offset, m->params + e->offset, sizeof(float) * e->numel) != 0;
    }
}

static void test_interface(void) {
    const int B = 3;
    char ref[4200], ours[4200], xs[4200], ys[4200];
    snprintf(ref, sizeof ref, "%s/ref.safetensors", dir);
    snprintf(ours, sizeof ours, "%s/ours.safetensors", dir);
    snprintf(xs, sizeof xs, "%s/x01.f32", dir);
    snprintf(ys, sizeof ys, "%s/y_ours.f32", dir);
    CHECK(model_method_find("fanogan") != NULL, "the registry knows 'fanogan'");
    const size_t npx = (size_t)B * 2 * 16 * 16;
    float *x = rd("x", npx);
    for (size_t i = 0; i < npx; i++) x[i] = 0.5f * (x[i] + 1.0f);  // the engine's [0, 1]
    tu_write_f32(xs, x, npx);

    // Training through the interface: a run of 8 steps, stage 1 for the first 4 (gan_frac 0.5),
    // n_critic 2: the critic moves every step, the generator every second step, the encoder
    // never; then only the encoder moves.
    model t;
    CHECK(model_create(&t, "fanogan", "img_size=16,in_chans=2,patch_size=4,dim=3,z_dim=5,n_critic=2", B, 1,
                       "test") == 0,
          "model_create fanogan (training)");
    CHECK(t.method->train_step != NULL, "f-AnoGAN takes whole training steps");
    t.method->init_params(&t, 3);
    float *before = malloc(sizeof(float) * t.table->n_floats);
    float *opt_m = calloc(t.table->n_floats, sizeof(float)), *opt_v = calloc(t.table->n_floats, sizeof(float));
    const int want[8][3] = {{0, 1, 0}, {1, 1, 0}, {0, 1, 0}, {1, 1, 0}, {0, 0, 1}, {0, 0, 1}, {0, 0, 1}, {0, 0, 1}};
    for (int step = 0; step < 8; step++) {
        memcpy(before, t.params, sizeof(float) * t.table->n_floats);
        float loss = t.method->train_step(&t, x, B, step, 8, 100 + step, opt_m, opt_v);
        int got[3];
        changed(&t, before, got);
        CHECK(isfinite(loss) && got[0] == want[step][0] && got[1] == want[step][1] && got[2] == want[step][2],
              "step %d: loss %g, generator/critic/encoder moved %d/%d/%d (want %d/%d/%d)", step, loss, got[0], got[1],
              got[2], want[step][0], want[step][1], want[step][2]);
        if (step == 0) {
            float v = t.method->predict(&t, NULL, x, NULL, B);
            CHECK(isnan(v), "no validation loss during the GAN stage (%g)", v);
        }
        if (step == 4) {
            // The first encoder step is TF1's RMSProp from its mean-square slot at 1:
            // p - lr g / sqrt(0.9 + 0.1 g^2 + 1e-10), with the gradients the step left behind.
            double worst = 0;
            int n_enc = 0;
            for (int i = 0; i < t.table->n; i++) {
                const param_entry *e = &t.table->entries[i];
                if (e->dtype != PARAM_F32 || !e->trainable || strncmp(e->name, "encoder.", 8)) continue;
                for (size_t k = 0; k < e->numel; k++) {
                    const double g = t.grads[e->offset + k];
                    const double want_p = before[e->offset + k] - 5e-5 * g / sqrt(0.9 + 0.1 * g * g + 1e-10);
                    worst = fmax(worst, fabs(want_p - t.params[e->offset + k]));
                    n_enc++;
                }
            }
            CHECK(n_enc > 0 && worst <= 1e-7, "the first encoder step is TF's RMSProp (worst |diff| %.3g over %d)",
                  worst, n_enc);
        }
    }
    float v = t.method->predict(&t, NULL, x, NULL, B);
    CHECK(isfinite(v) && v > 0, "the izi_f validation loss after the encoder stage (%g)", v);
    free(before);
    free(opt_m);
    free(opt_v);
    model_free(&t);

    // Strict load of the PyTorch file through the registry, reconstruction, save, and PyTorch's
    // strict load + the same reconstruction.
    float *y = tu_checkpoint_checks("fanogan", "tools/fanogan_ref.py", ref, ours, xs, ys, x, B, npx);
    float lo = 1, hi = 0;
    for (size_t i = 0; i < npx; i++) lo = fminf(lo, y[i]), hi = fmaxf(hi, y[i]);
    CHECK(lo >= 0.0f && hi <= 1.0f, "reconstructions in [0, 1] (%g..%g)", lo, hi);
    free(y);
    free(x);
}

int main(void) {
    dir = tu_scratch_dir("test_model_fanogan");
    char args[4200];
    snprintf(args, sizeof args, "dump %s", dir);
    tu_run_python("tools/fanogan_ref.py", args);
    test_steps();
    test_interface();
    return tu_finish();
}
