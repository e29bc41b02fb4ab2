#include "model/param_layers.h"

#include <stdio.h>
#include <string.h>

// Names are built in buffers longer than an entry's, so that param_table_add reports a name that
// does not fit instead of the compiler fearing truncation.
#define NAME_BUF (PARAM_NAME_MAX + 32)

void param_add_conv(param_table *t, const char *prefix, int in, int out, int k, int transposed, int bias) {
    char name[NAME_BUF];
    // PyTorch: Conv2d weight (out, in, k, k); ConvTranspose2d (in, out, k, k). Its default init
    // takes fan_in from dim 1 in both cases.
    int64_t w[4] = {transposed ? in : out, transposed ? out : in, k, k}, b[1] = {out};
    int fan_in = (transposed ? out : in) * k * k;
    snprintf(name, sizeof name, "%s.weight", prefix);
    param_table_add(t, PARAM_F32, INIT_KAIMING_CONV, 1, 4, w, name)->fan_in = fan_in;
    if (!bias) return;
    snprintf(name, sizeof name, "%s.bias", prefix);
    param_table_add(t, PARAM_F32, INIT_CONV_BIAS, 1, 1, b, name)->fan_in = fan_in;
}

void param_add_dense(param_table *t, const char *prefix, int in, int out) {
    char name[NAME_BUF];
    int64_t w[2] = {out, in}, b[1] = {out};
    snprintf(name, sizeof name, "%s.weight", prefix);
    param_table_add(t, PARAM_F32, INIT_KAIMING_CONV, 1, 2, w, name)->fan_in = in;  // nn.Linear's default
    snprintf(name, sizeof name, "%s.bias", prefix);
    param_table_add(t, PARAM_F32, INIT_CONV_BIAS, 1, 1, b, name)->fan_in = in;
}

void param_add_affine(param_table *t, const char *prefix, int C) {
    char name[NAME_BUF];
    int64_t s[1] = {C};
    snprintf(name, sizeof name, "%s.weight", prefix);
    param_table_add(t, PARAM_F32, INIT_ONE, 1, 1, s, name);
    snprintf(name, sizeof name, "%s.bias", prefix);
    param_table_add(t, PARAM_F32, INIT_ZERO, 1, 1, s, name);
}

void param_add_bn(param_table *t, const char *prefix, int C) {
    char name[NAME_BUF];
    int64_t s[1] = {C};
    param_add_affine(t, prefix, C);
    snprintf(name, sizeof name, "%s.running_mean", prefix);
    param_table_add(t, PARAM_F32, INIT_ZERO, 0, 1, s, name);
    snprintf(name, sizeof name, "%s.running_var", prefix);
    param_table_add(t, PARAM_F32, INIT_ONE, 0, 1, s, name);
    snprintf(name, sizeof name, "%s.num_batches_tracked", prefix);
    param_table_add(t, PARAM_I64, INIT_COUNTER, 0, 0, s, name);
}

void param_block_views(swin_block_weights *w, const param_table *t, float *buf, const char *prefix) {
    memset(w, 0, sizeof *w);
    if (!buf) return;
    static const char *const names[] = {"norm1.weight",   "norm1.bias",     "attn.relative_position_bias_table",
                                        "attn.qkv.weight", "attn.qkv.bias",  "attn.proj.weight",
                                        "attn.proj.bias",  "norm2.weight",   "norm2.bias",
                                        "mlp.fc1.weight",  "mlp.fc1.bias",   "mlp.fc2.weight",
                                        "mlp.fc2.bias"};
    float **dst[] = {&w->norm1_w, &w->norm1_b, &w->rpb_table, &w->qkv_w,   &w->qkv_b,   &w->proj_w, &w->proj_b,
                     &w->norm2_w, &w->norm2_b, &w->fc1_w,     &w->fc1_b,   &w->fc2_w,   &w->fc2_b};
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++) {
        char name[2 * NAME_BUF];
        snprintf(name, sizeof name, "%s.%s", prefix, names[i]);
        if (i == 2 && !param_table_find(t, name)) continue;  // a block without position bias
        *dst[i] = param_ptr(t, buf, name);
    }
}
