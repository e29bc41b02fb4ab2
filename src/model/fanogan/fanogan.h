// The f-AnoGAN baseline's networks and its three training passes (the model interface wrapper is
// method.c). Parameter names follow tools/fanogan_ref.py's PyTorch module (generator.*, critic.*,
// encoder.*), so checkpoints load there with strict=True and back. Images here are in the
// generator's range [-1, 1]; method.c maps the engine's [0, 1] to it and back.
//
// The critic's gradient penalty is exact: the critic runs a tangent pass along dP/dg (g = the
// input gradient, P the penalty) next to its forward, and the reverse of both streams gives
// d<g, dP/dg>/dθ = dP/dθ, which is what torch.autograd.grad(..., create_graph=True) + backward
// computes (see nn/gan.h).
#ifndef ANOSWIN_MODEL_FANOGAN_FANOGAN_H
#define ANOSWIN_MODEL_FANOGAN_FANOGAN_H

#include "model/fanogan/config.h"  // fanogan_config
#include "model/params.h"          // param_table

#define FG_MAXB FANOGAN_MAX_BLOCKS

// The critic (LayerNorm, with tangent buffers) or the encoder (BatchNorm): one input conv, n
// down-blocks, a dense output. Activations for `cap` images.
typedef struct fg_down {
    const char *name;  // "critic" / "encoder"
    int bn;            // 1: BatchNorm (encoder); 0: per-sample LayerNorm (critic)
    int out_dim;
    // a[0] the input conv's output, a[i+1] block i's output (a[n] flattened: the features f).
    // Block i: h1 = ReLU(norm1(a[i])), c1 = conv1(h1), h2 = ReLU(norm2(c1)), c2 = conv2(h2),
    // pa = MeanPool(a[i]); a[i+1] = MeanPool(c2) + shortcut(pa).
    float *a[FG_MAXB + 1], *h1[FG_MAXB], *c1[FG_MAXB], *h2[FG_MAXB], *c2[FG_MAXB], *pa[FG_MAXB];
    float *m1[FG_MAXB], *r1[FG_MAXB], *m2[FG_MAXB], *r2[FG_MAXB];  // norm statistics
    float *at[FG_MAXB + 1], *ht1[FG_MAXB], *ct1[FG_MAXB], *ht2[FG_MAXB], *ct2[FG_MAXB], *pat[FG_MAXB];  // tangents
    float *out;  // (cap, out_dim)
} fg_down;

// The generator: a[0] = Linear(z) viewed (ch(n), 4, 4); block j (ch(n-j) -> ch(n-j-1), side s -> 2s):
// h1 = ReLU(BN1(a[j])), u1 = Upsample(h1), c1 = conv1(u1), h2 = ReLU(BN2(c1)),
// a[j+1] = conv2(h2) + Upsample(shortcut(a[j])); then hb = ReLU(BN(a[n])), out = tanh(conv(hb)).
typedef struct fg_up {
    float *a[FG_MAXB + 1], *h1[FG_MAXB], *u1[FG_MAXB], *c1[FG_MAXB], *h2[FG_MAXB];
    float *m1[FG_MAXB], *r1[FG_MAXB], *m2[FG_MAXB], *r2[FG_MAXB], *mb, *rb;
    float *hb, *out;
    const float *z;  // the last forward's input (B, z_dim)
} fg_up;

typedef struct fanogan {
    fanogan_config cfg;
    param_table table;
    float *params, *grads;  // grads NULL for inference
    int max_batch, n;
    fg_down critic, encoder;
    fg_up gen;
    // The last pass's terms (batch means).
    float d_real, d_fake, gp;      // critic step: mean D(real), mean D(fake), the penalty (with lambda)
    float rec_img, rec_feat;       // encoder step / reconstruction: MSE(x, x̂), MSE(f(x), f(x̂))
    // Scratch: interpolates, the critic's input gradient and dP/dg, features of x, ones, a
    // shortcut's output, gradient buffers shared by the passes (each as large as the largest
    // activation), im2col columns.
    float *x_hat, *g_in, *eps, *feat_x, *ones, *tmp;
    float *junk;  // the frozen generator's BatchNorm gradients land here (batchnorm2d_backward needs some)
    float *d_a[2], *d_at[2], *d_pa, *d_pat, *d_c2, *d_ct2, *d_h2, *d_ht2, *d_c1, *d_ct1, *d_h1, *d_ht1, *d_u1;
    float *d_img, *d_z, *d_out, *d_feat;
    float *cols;
    float *arena;
} fanogan;

// Builds the parameter table of a (checked) config: tools/fanogan_ref.py's state_dict order.
int fanogan_table_build(param_table *t, const fanogan_config *c);
int fanogan_create(fanogan *f, const fanogan_config *c, int max_batch, int training);
void fanogan_free(fanogan *f);
// Parameters of one of the three networks ("generator", "critic", "encoder"): [begin, end) of
// the table's entries, which the table keeps contiguous per network.
void fanogan_net_span(const fanogan *f, const char *net, int *begin, int *end);

// Stage 1, one critic step on B images: fake = G(z) (G in training mode: batch statistics and
// its running update), x_hat = real + alpha_b (fake - real); loss = mean D(fake) - mean D(real) +
// gp_lambda * mean_b (||dD(x_hat)/dx_hat||_b - 1)^2. grads of the critic's parameters +=.
// z (B, z_dim), alpha (B).
float fanogan_critic_step(fanogan *f, const float *real, const float *z, const float *alpha, int B);
// Stage 1, one generator step: loss = -mean D(G(z)) (G in training mode); generator grads +=.
float fanogan_generator_step(fanogan *f, const float *z, int B);
// Stage 2, one izi_f step on B images x: E in training mode, G in evaluation mode, the critic's
// features f; loss = MSE(x, G(E(x))) + kappa * MSE(f(x), f(G(E(x)))); encoder grads +=.
float fanogan_encoder_step(fanogan *f, const float *x, int B);
// Detection: out (B, in_chans, H, W) = G(E(x)) with running statistics; sets rec_img and
// rec_feat and returns the izi_f loss. feat_err (B) gets each image's feature MSE (may be NULL).
float fanogan_reconstruct(fanogan *f, float *out, const float *x, int B, float *feat_err);
// Schlegl et al.'s anomaly score of each image (2019, the izi_f score A(x)): score (B) =
// MSE(x_b, G(E(x_b))) + kappa * MSE(f(x_b), f(G(E(x_b)))), in the GAN's [-1, 1] range.
void fanogan_image_score(fanogan *f, float *score, const float *x, int B);

#endif
