// libFuzzer target: safetensors reading (st_open) and what a checkpoint load does next
// (checkpoint_config: the "anoswin.config" metadata JSON or shape inference; then, for small
// models, the strict checkpoint_load_file). Properties: no crash/leak/UB; failures leave a
// one-line error naming the file; an opened file's tensors lie inside the mapping.
#include "fuzz_common.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/params.h"

static volatile unsigned fuzz_sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 20)) return 0;
    char path[600];
    fuzz_path(path, sizeof path, "in.safetensors");
    fuzz_write(path, data, size, 0);
    st_file f;
    as_error_clear();
    if (st_open(&f, path) != 0) {
        fuzz_check_error(path);
        return 0;
    }
    unsigned sum = 0;
    for (int i = 0; i < f.n; i++) {
        const st_tensor *t = &f.tensors[i];
        if (t->end < t->begin || (size_t)(f.data - f.map) + t->end > f.size) abort();
        if (t->numel * st_dtype_size(t->dtype) != t->end - t->begin) abort();
        const unsigned char *p = st_tensor_data(&f, t);
        for (size_t k = 0; k < t->end - t->begin; k++) sum += p[k];  // ASan checks every byte
        if (st_find(&f, t->name) != t) abort();
        char s[256];
        st_shape_str(t, s, sizeof s);
    }
    fuzz_sink = sum;
    for (int i = 0; i < f.n_meta; i++) (void)st_meta(&f, f.meta_keys[i]);
    swinmae_config cfg;
    as_error_clear();
    if (checkpoint_config(&f, &cfg) == 0) {
        param_table t;
        if (param_table_build(&t, &cfg) == 0) {
            if (t.n_floats < (1u << 22)) {  // small models only: the load itself is strict
                float *params = as_malloc(t.n_floats * sizeof(float) + 1);
                if (checkpoint_load_file(&f, &t, params) != 0) fuzz_check_error(path);
                free(params);
            }
            param_table_free(&t);
        }
    } else {
        fuzz_check_error(path);
    }
    st_close(&f);
    return 0;
}
