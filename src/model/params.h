// The parameter table: one entry per state_dict tensor of the reference PyTorch model, in
// state_dict order, generated from the config. It is the single description that drives the
// contiguous float parameter buffer, the gradient buffer, AdamW state, safetensors I/O and the
// parameter count.
//
// Two storage kinds:
//   F32 tensors live in ONE float buffer of `n_floats` elements; `offset` counts floats.
//     This includes the frozen `pos_embed` (trainable = 0: it gets no update; its gradient
//     slot exists but stays zero since the model never reads it).
//   I64 tensors (`...attn.relative_position_index`, identical for every block) are not in the
//     float buffer; `offset` counts int64s in an optional index buffer of `n_i64` elements
//     that params_fill_index fills. They are constant: checkpoints write the computed values
//     and loading checks them.
// Counts at the paper config: 224 entries, 26,936,916 floats ("all": every F32 tensor, i.e.
// what sum(p.numel() for p in model.parameters()) gives), 26,635,860 trainable (all minus
// pos_embed), 16 I64 buffers of 49x49.
#ifndef ANOSWIN_MODEL_PARAMS_H
#define ANOSWIN_MODEL_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "model/swinmae/config.h"

typedef enum { PARAM_F32 = 0, PARAM_I64 = 1 } param_dtype;

// How params_init fills a tensor (the reference's initialisation).
typedef enum {
    INIT_ZERO = 0,      // Linear bias, LayerNorm bias
    INIT_ONE,           // LayerNorm weight
    INIT_XAVIER,        // Linear weight: U(-a, a), a = sqrt(6 / (fan_in + fan_out))
    INIT_KAIMING_CONV,  // Conv2d default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform a=sqrt(5))
    INIT_CONV_BIAS,     // Conv2d default bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    INIT_NORMAL_002,    // mask_token: N(0, 0.02)
    INIT_TRUNC_002,     // relative_position_bias_table: N(0, 0.02) truncated to [-2, 2] (torch's absolute bounds)
    INIT_SINCOS,        // pos_embed: MAE's 2-D sin-cos embedding
    INIT_RELPOS,        // relative_position_index (I64)
    INIT_COUNTER,       // BatchNorm's num_batches_tracked (I64): written as 0, any value loads
} param_init;

#define PARAM_NAME_MAX 80
#define PARAM_MAX_DIMS 4

typedef struct param_entry {
    char name[PARAM_NAME_MAX];
    param_dtype dtype;
    int ndim;
    int64_t shape[PARAM_MAX_DIMS];
    size_t numel;
    size_t offset;      // in floats (F32) or int64s (I64) into the respective buffer
    int trainable;      // 0 for pos_embed and the I64 buffers
    param_init init;
    int fan_in, fan_out;
} param_entry;

typedef struct param_table {
    swinmae_config cfg;
    param_entry *entries;
    int n;
    size_t n_floats;     // float buffer length (all F32 tensors, pos_embed included)
    size_t n_trainable;  // floats in trainable tensors
    size_t n_i64;        // int64 buffer length
    int n_f32_tensors, n_i64_tensors;
} param_table;

// Appends one entry (F32 into the float buffer, I64 into the index buffer) to a table that other
// methods build themselves (t starts zeroed; cfg stays unused). fan_in/fan_out are the caller's.
param_entry *param_table_add(param_table *t, param_dtype dt, param_init init, int trainable, int ndim,
                             const int64_t *shape, const char *name);
// Builds the table for a (checked) config. Returns -1 with an error if the config is invalid.
int param_table_build(param_table *t, const swinmae_config *cfg);
void param_table_free(param_table *t);
// Entry by exact state_dict name, or NULL.
const param_entry *param_table_find(const param_table *t, const char *name);
int param_table_index(const param_table *t, const char *name);  // -1 when absent
// Float pointer to a named F32 tensor inside buf; aborts (programming error) when the name is
// missing or not F32, so model code can look up its weights without error plumbing.
float *param_ptr(const param_table *t, float *buf, const char *name);
// The same by printf-style name, NULL when buf is NULL (a model's views of gradients it does not
// have): what the models use to point their layer structs into the parameter buffers.
float *param_ptrf(const param_table *t, float *buf, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
// "1x3136x96"-style shape string.
void param_shape_str(const param_entry *e, char *out, size_t n);

// Fills every F32 tensor per the reference initialisation. Each tensor draws from its own
// rng stream (seed, entry index), so the result does not depend on the table's evaluation order.
void params_init(const param_table *t, float *params, uint64_t seed);
// Writes the relative_position_index values of the INIT_RELPOS entries and 0 for the counters
// (idx has n_i64 elements).
void params_fill_index(const param_table *t, int64_t *idx);
// MAE's get_2d_sincos_pos_embed(dim, grid) without cls token: out (grid*grid, dim).
// Token m = i*grid + j (row i, col j): [0,D/4) sin(j w_k), [D/4,D/2) cos(j w_k),
// [D/2,3D/4) sin(i w_k), [3D/4,D) cos(i w_k), w_k = 10000^(-k/(D/4)).
void pos_embed_sincos(float *out, int dim, int grid);

#endif
