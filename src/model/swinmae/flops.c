#include "model/swinmae/flops.h"

// One Swin block on N tokens of dim d: qkv, attention (QK^T and AV over windows of w*w
// tokens; all heads together span d), proj, and the two MLP layers.
static double block_flops(double N, double d, double w, double mlp_ratio) {
    double qkv = 2 * N * d * 3 * d;
    double attn = 2 * (2 * N * (w * w) * d);
    double proj = 2 * N * d * d;
    double mlp = 2 * (2 * N * d * mlp_ratio * d);
    return qkv + attn + proj + mlp;
}

static double embed_flops(const swinmae_config *c) {
    double L = swinmae_num_tokens(c);
    return 2 * L * (double)swinmae_patch_dim(c) * c->embed_dim;
}

double swinmae_flops_forward(const swinmae_config *c) {
    const double w = c->window, r = c->mlp_ratio;
    double f = embed_flops(c);
    // encoder: stage i at resolution G/2^i, dim C*2^i; patch merging 4d -> 2d after stages 0..2
    for (int i = 0; i < SWINMAE_STAGES; i++) {
        double res = swinmae_stage_res(c, i), N = res * res, d = swinmae_stage_dim(c, i);
        f += c->depths[i] * block_flops(N, d, w, r);
        if (i < SWINMAE_STAGES - 1) f += 2 * (N / 4) * (4 * d) * (2 * d);
    }
    // first_patch_expanding: Linear(8C -> 16C) at the last resolution
    double res3 = swinmae_stage_res(c, 3), d3 = swinmae_stage_dim(c, 3);
    f += 2 * res3 * res3 * d3 * 2 * d3;
    // layers_up.u runs at stage 2-u; u = 0,1 end with Linear(d -> 2d) before the regroup
    for (int u = 0; u < SWINMAE_STAGES - 1; u++) {
        int s = SWINMAE_STAGES - 2 - u;
        double res = swinmae_stage_res(c, s), N = res * res, d = swinmae_stage_dim(c, s);
        f += c->depths[s] * block_flops(N, d, w, r);
        if (u < SWINMAE_STAGES - 2) f += 2 * N * d * 2 * d;
    }
    // decoder_pred: Linear(C -> p*p*in) on every token
    f += 2 * (double)swinmae_num_tokens(c) * c->embed_dim * swinmae_patch_dim(c);
    return f;
}

double swinmae_flops_train(const swinmae_config *c) {
    return 3 * swinmae_flops_forward(c) - embed_flops(c);
}
