// One Swin Transformer block (pre-norm, shifted windows), composed from the layers in nn.h:
//   x_mid = x + DropPath(proj(WindowAttention(shift+partition(LN1(x)))) reversed+unshifted)
//   out   = x_mid + DropPath(fc2(GELU(fc1(LN2(x_mid)))))
// The shift + window partition is fused into LN1 (rows written through geom->perm), and the
// window reverse + roll back into the residual add.
#ifndef ANOSWIN_NN_SWIN_BLOCK_H
#define ANOSWIN_NN_SWIN_BLOCK_H

#include <stddef.h>

#include "nn/nn.h"

// Pointers to one block's tensors (parameters or their gradients), state_dict order.
typedef struct swin_block_weights {
    float *norm1_w, *norm1_b;  // (C)
    float *rpb_table;          // ((2ws-1)^2, heads), or NULL: no position bias (ViT blocks)
    float *qkv_w, *qkv_b;      // (3C, C), (3C)
    float *proj_w, *proj_b;    // (C, C), (C)
    float *norm2_w, *norm2_b;  // (C)
    float *fc1_w, *fc1_b;      // (hidden, C), (hidden)
    float *fc2_w, *fc2_b;      // (C, hidden), (C)
} swin_block_weights;

typedef struct swin_block_dims {
    int B, C, heads, hidden;
    const swin_geom *geom;  // resolution, window, shift, permutation, mask regions
    const int *relpos;      // (T, T) relative position index
} swin_block_dims;

// What backward needs, N = B*H*W tokens. For inference the pointers may share one scratch
// area across blocks (ln stats may be NULL, x_mid may equal out).
typedef struct swin_block_cache {
    float *ln1_mean, *ln1_rstd;  // (N)
    float *qkv;                  // (N, 3C) window order
    float *attn;                 // (N, C) window order, attention output before proj, or NULL:
                                 // forward then uses scratch and backward recomputes it
    float *x_mid;                // (N, C) token order, after the attention residual
    float *ln2_mean, *ln2_rstd;  // (N)
    float *fc1;                  // (N, hidden) before GELU; the backward leaves GELU'(fc1) there
} swin_block_cache;

// Floats of one training cache; floats of the scratch that forward and backward use.
size_t swin_block_cache_floats(const swin_block_dims *d);
size_t swin_block_scratch_floats(const swin_block_dims *d);
// Points c at consecutive parts of buf (swin_block_cache_floats(d) floats); attn = NULL.
void swin_block_cache_init(swin_block_cache *c, float *buf, const swin_block_dims *d);

// out (B, H, W, C) from inp (B, H, W, C). drop (2, B): per-sample DropPath scales of the
// attention and MLP branches, or NULL (eval). out may equal inp only when c->x_mid == out too
// (inference).
void swin_block_forward(float *out, const swin_block_cache *c, float *scratch, const float *inp,
                        const swin_block_weights *w, const swin_block_dims *d, const float *drop);
// dx (B, H, W, C): on entry dL/dout, on return dL/dinp. Parameter gradients accumulate into dw.
// c, inp, drop: as in the forward that preceded.
void swin_block_backward(float *dx, const swin_block_weights *dw, float *scratch, const swin_block_cache *c,
                         const float *inp, const swin_block_weights *w, const swin_block_dims *d, const float *drop);

// Optional wall-time profile of the block's parts (for bench programs): when nn_profile_on is
// set, each part adds its seconds to nn_profile_sec[part]. Not thread-safe across models.
enum {
    NN_PROF_FWD_LN, NN_PROF_FWD_QKV, NN_PROF_FWD_ATTN, NN_PROF_FWD_PROJ, NN_PROF_FWD_RES, NN_PROF_FWD_FC1,
    NN_PROF_FWD_GELU, NN_PROF_FWD_FC2, NN_PROF_BWD_RES, NN_PROF_BWD_GELU, NN_PROF_BWD_FC2, NN_PROF_BWD_FC1,
    NN_PROF_BWD_LN, NN_PROF_BWD_PROJ, NN_PROF_BWD_ATTN, NN_PROF_BWD_QKV, NN_PROF_BWD_MEMSET, NN_PROF_COUNT
};
extern int nn_profile_on;
extern double nn_profile_sec[NN_PROF_COUNT];
extern const char *const nn_profile_names[NN_PROF_COUNT];

#endif
