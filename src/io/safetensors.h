// safetensors reader/writer (https://github.com/huggingface/safetensors format):
//   u64 little-endian header length N | N bytes of JSON | tensor data (row-major, little-endian).
// The JSON maps each tensor name to {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}
// (offsets relative to the data section) plus an optional "__metadata__" string->string map,
// where anoswin keeps the model config ("anoswin.config") and training state.
//
// Reading validates everything before trusting a size: header length within the file (and at
// most 100 MB), JSON well-formed, known dtype, shape * dtype size == offset span, offsets
// contiguous and non-overlapping starting at 0, header + data == file length exactly, no
// duplicate names. Every error is one line naming the file. Writing is atomic (util/fs.h).
// Tensor data of all known dtypes can be located; anoswin itself uses F32 and I64.
#ifndef ANOSWIN_IO_SAFETENSORS_H
#define ANOSWIN_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    ST_F32 = 0, ST_I64, ST_F64, ST_F16, ST_BF16, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL, ST_U16, ST_U32, ST_U64,
    ST_NUM_DTYPES
} st_dtype;

const char *st_dtype_name(st_dtype d);  // "F32"
size_t st_dtype_size(st_dtype d);       // bytes per element

#define ST_MAX_DIMS 8

typedef struct st_tensor {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t numel;
    size_t begin, end;  // byte offsets in the data section
} st_tensor;

typedef struct st_kv {
    const char *key, *value;
} st_kv;

typedef struct st_file {
    char *path;
    const unsigned char *map;  // the whole file, mmap'd read-only
    size_t size;
    const unsigned char *data;  // start of the data section
    int n;                      // tensors, in header order
    st_tensor *tensors;
    int n_meta;                 // __metadata__ entries, in header order
    char **meta_keys, **meta_values;
} st_file;

// Opens and validates a file (mmap). Returns 0, or -1 with "<path>: <problem>".
int st_open(st_file *f, const char *path);
void st_close(st_file *f);
const st_tensor *st_find(const st_file *f, const char *name);
// Metadata value for key, or NULL.
const char *st_meta(const st_file *f, const char *key);
// Pointer to a tensor's bytes (possibly unaligned: copy out with memcpy or st_read_*).
const void *st_tensor_data(const st_file *f, const st_tensor *t);
// Copies a tensor out after checking dtype and element count; errors name tensor and file.
int st_read_f32(const st_file *f, const char *name, float *out, size_t numel);
int st_read_i64(const st_file *f, const char *name, int64_t *out, size_t numel);
// "1x3136x96".
void st_shape_str(const st_tensor *t, char *out, size_t n);

// One tensor to write: data points at numel * dtype size bytes (host order = little-endian).
typedef struct st_write_item {
    const char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data;
} st_write_item;

// Writes the tensors in the given order (data contiguous, in that order) and the metadata
// (may be NULL / 0), atomically. The header is padded with spaces to a multiple of 8 bytes.
int st_write(const char *path, const st_write_item *items, int n, const st_kv *meta, int n_meta);

#endif
