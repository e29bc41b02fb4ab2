#include "model/param_layers.h"

#include <stdio.h>

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
