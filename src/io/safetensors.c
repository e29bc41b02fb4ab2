#include "io/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/error.h"
#include "util/fs.h"
#include "util/json.h"  // json_cur: the header parser; json_write_string

static const struct {
    const char *name;
    size_t size;
} dtypes[ST_NUM_DTYPES] = {
    [ST_F32] = {"F32", 4}, [ST_I64] = {"I64", 8}, [ST_F64] = {"F64", 8}, [ST_F16] = {"F16", 2},
    [ST_BF16] = {"BF16", 2}, [ST_I32] = {"I32", 4}, [ST_I16] = {"I16", 2}, [ST_I8] = {"I8", 1},
    [ST_U8] = {"U8", 1}, [ST_BOOL] = {"BOOL", 1}, [ST_U16] = {"U16", 2}, [ST_U32] = {"U32", 4},
    [ST_U64] = {"U64", 8},
};

const char *st_dtype_name(st_dtype d) { return (unsigned)d < ST_NUM_DTYPES ? dtypes[d].name : "?"; }
size_t st_dtype_size(st_dtype d) { return (unsigned)d < ST_NUM_DTYPES ? dtypes[d].size : 0; }

#define ST_MAX_HEADER (100u << 20)

// ---- reading ----------------------------------------------------------------------------------

static int parse_metadata(json_cur *c, st_file *f) {
    if (!json_literal(c, "null")) return 0;
    if (json_expect(c, '{')) return -1;
    if (json_peek(c, '}')) {
        c->p++;
        return 0;
    }
    for (;;) {
        char *k, *v;
        if (json_string(c, &k)) return -1;
        if (json_expect(c, ':') || json_string(c, &v)) {
            free(k);
            return -1;
        }
        f->meta_keys = as_realloc(f->meta_keys, (size_t)(f->n_meta + 1) * sizeof(char *));
        f->meta_values = as_realloc(f->meta_values, (size_t)(f->n_meta + 1) * sizeof(char *));
        f->meta_keys[f->n_meta] = k;
        f->meta_values[f->n_meta++] = v;
        if (json_peek(c, ',')) {
            c->p++;
            continue;
        }
        return json_expect(c, '}');
    }
}

static int parse_tensor(json_cur *c, st_tensor *t) {
    int have_dtype = 0, have_shape = 0, have_off = 0;
    if (json_expect(c, '{')) return -1;
    for (;;) {
        char *key;
        if (json_string(c, &key)) return -1;
        if (json_expect(c, ':')) {
            free(key);
            return -1;
        }
        if (!strcmp(key, "dtype")) {
            char *d;
            free(key);
            if (json_string(c, &d)) return -1;
            int found = -1;
            for (int i = 0; i < ST_NUM_DTYPES; i++)
                if (!strcmp(d, dtypes[i].name)) found = i;
            if (found < 0) {
                as_fail("%s: tensor '%s' has unknown dtype '%.20s'", c->what, t->name, d);
                free(d);
                return -1;
            }
            free(d);
            t->dtype = (st_dtype)found;
            have_dtype = 1;
        } else if (!strcmp(key, "shape")) {
            free(key);
            if (json_expect(c, '[')) return -1;
            t->ndim = 0;
            if (json_peek(c, ']')) c->p++;
            else
                for (;;) {
                    uint64_t v;
                    if (t->ndim == ST_MAX_DIMS) return json_fail(c, "too many dimensions");
                    if (json_uint(c, &v)) return -1;
                    t->shape[t->ndim++] = (int64_t)v;
                    if (json_peek(c, ',')) {
                        c->p++;
                        continue;
                    }
                    if (json_expect(c, ']')) return -1;
                    break;
                }
            have_shape = 1;
        } else if (!strcmp(key, "data_offsets")) {
            free(key);
            uint64_t b, e;
            if (json_expect(c, '[') || json_uint(c, &b) || json_expect(c, ',') || json_uint(c, &e) || json_expect(c, ']')) return -1;
            if (e < b) return as_fail("%s: tensor '%s' has data_offsets end before begin", c->what, t->name);
            t->begin = (size_t)b;
            t->end = (size_t)e;
            have_off = 1;
        } else {
            as_fail("%s: tensor '%s' has unknown field '%.40s'", c->what, t->name, key);
            free(key);
            return -1;
        }
        if (json_peek(c, ',')) {
            c->p++;
            continue;
        }
        if (json_expect(c, '}')) return -1;
        break;
    }
    if (!have_dtype || !have_shape || !have_off)
        return as_fail("%s: tensor '%s' lacks %s", c->what, t->name,
                       !have_dtype ? "a dtype" : !have_shape ? "a shape" : "data_offsets");
    // numel * size must equal the span; guard the multiplication against overflow.
    unsigned __int128 bytes = st_dtype_size(t->dtype);
    size_t numel = 1;
    for (int i = 0; i < t->ndim; i++) {
        bytes *= (unsigned __int128)(uint64_t)t->shape[i];
        if (bytes > ((unsigned __int128)1 << 62)) return as_fail("%s: tensor '%s' is impossibly large", c->what, t->name);
        numel *= (size_t)t->shape[i];
    }
    t->numel = numel;
    if (bytes != (unsigned __int128)(t->end - t->begin)) {
        char s[128];
        st_shape_str(t, s, sizeof s);
        return as_fail("%s: tensor '%s': shape %s of %s needs %llu bytes but data_offsets span %zu", c->what, t->name, s,
                       st_dtype_name(t->dtype), (unsigned long long)bytes, t->end - t->begin);
    }
    return 0;
}

static int cmp_begin(const void *a, const void *b) {
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int parse_header(st_file *f, const char *hdr, size_t n) {
    json_cur c;
    json_cur_init(&c, hdr, n, f->path, "safetensors header");
    if (memchr(hdr, 0, n)) return as_fail("%s: not a safetensors file (binary data in the header)", f->path);
    if (json_expect(&c, '{')) return as_fail("%s: not a safetensors file (header is not a JSON object)", f->path);
    int cap = 0;
    if (json_peek(&c, '}')) c.p++;
    else
        for (;;) {
            char *name;
            if (json_string(&c, &name)) return -1;
            if (json_expect(&c, ':')) {
                free(name);
                return -1;
            }
            if (!strcmp(name, "__metadata__")) {
                free(name);
                if (f->n_meta) return as_fail("%s: two __metadata__ entries", f->path);
                if (parse_metadata(&c, f)) return -1;
            } else {
                if (f->n == cap) {
                    cap = cap ? 2 * cap : 64;
                    f->tensors = as_realloc(f->tensors, (size_t)cap * sizeof *f->tensors);
                }
                st_tensor *t = &f->tensors[f->n++];
                memset(t, 0, sizeof *t);
                t->name = name;
                if (parse_tensor(&c, t)) return -1;
            }
            if (json_peek(&c, ',')) {
                c.p++;
                continue;
            }
            if (json_expect(&c, '}')) return -1;
            break;
        }
    json_ws(&c);
    if (c.p != c.end) return json_fail(&c, "trailing characters after the JSON object");

    // Names unique; spans contiguous from 0 without overlap; total == data section length.
    st_tensor **order = as_malloc((size_t)(f->n ? f->n : 1) * sizeof *order);
    for (int i = 0; i < f->n; i++) order[i] = &f->tensors[i];
    qsort(order, (size_t)f->n, sizeof *order, cmp_begin);
    size_t pos = 0;
    int rc = 0;
    for (int i = 0; i < f->n && !rc; i++) {
        if (order[i]->begin < pos) rc = as_fail("%s: tensor '%s' overlaps another tensor's data", f->path, order[i]->name);
        else if (order[i]->begin > pos) rc = as_fail("%s: gap before tensor '%s' (data_offsets not contiguous)", f->path, order[i]->name);
        pos = order[i]->end;
    }
    free(order);
    if (rc) return -1;
    size_t data_len = f->size - 8 - n;
    if (pos != data_len)
        return as_fail("%s: %s (header describes %zu data bytes, file has %zu)", f->path,
                       pos > data_len ? "truncated file" : "trailing bytes after the tensor data", pos, data_len);
    for (int i = 0; i < f->n; i++)
        for (int j = i + 1; j < f->n; j++)
            if (!strcmp(f->tensors[i].name, f->tensors[j].name))
                return as_fail("%s: tensor '%s' appears twice", f->path, f->tensors[i].name);
    return 0;
}

int st_open(st_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    f->path = as_strdup(path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        as_fail("%s: cannot open: %s", path, strerror(errno));
        st_close(f);
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        close(fd);
        as_fail("%s: not a regular file", path);
        st_close(f);
        return -1;
    }
    f->size = (size_t)sb.st_size;
    if (f->size < 8) {
        close(fd);
        as_fail("%s: not a safetensors file (only %zu bytes)", path, f->size);
        st_close(f);
        return -1;
    }
    void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        as_fail("%s: cannot map: %s", path, strerror(errno));
        st_close(f);
        return -1;
    }
    f->map = m;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | f->map[i];
    if (n < 2 || n > ST_MAX_HEADER || n > f->size - 8) {
        as_fail("%s: not a safetensors file or truncated (header length %llu, file %zu bytes)", path,
                (unsigned long long)n, f->size);
        st_close(f);
        return -1;
    }
    f->data = f->map + 8 + n;
    if (parse_header(f, (const char *)f->map + 8, (size_t)n)) {
        st_close(f);
        return -1;
    }
    return 0;
}

void st_close(st_file *f) {
    if (f->map) munmap((void *)f->map, f->size);
    for (int i = 0; i < f->n; i++) free(f->tensors[i].name);
    free(f->tensors);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    free(f->path);
    memset(f, 0, sizeof *f);
}

const st_tensor *st_find(const st_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

const char *st_meta(const st_file *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta_keys[i], key)) return f->meta_values[i];
    return NULL;
}

const void *st_tensor_data(const st_file *f, const st_tensor *t) { return f->data + t->begin; }

void st_shape_str(const st_tensor *t, char *out, size_t n) {
    size_t w = 0;
    out[0] = 0;
    if (t->ndim == 0) snprintf(out, n, "scalar");
    for (int i = 0; i < t->ndim && w < n; i++)
        w += (size_t)snprintf(out + w, n - w, i ? "x%lld" : "%lld", (long long)t->shape[i]);
}

static int read_typed(const st_file *f, const char *name, void *out, size_t numel, st_dtype want) {
    const st_tensor *t = st_find(f, name);
    if (!t) return as_fail("%s: no tensor '%s'", f->path, name);
    if (t->dtype != want)
        return as_fail("%s: tensor '%s' is %s, expected %s", f->path, name, st_dtype_name(t->dtype), st_dtype_name(want));
    if (t->numel != numel) return as_fail("%s: tensor '%s' has %zu elements, expected %zu", f->path, name, t->numel, numel);
    memcpy(out, st_tensor_data(f, t), numel * st_dtype_size(want));
    return 0;
}

int st_read_f32(const st_file *f, const char *name, float *out, size_t numel) {
    return read_typed(f, name, out, numel, ST_F32);
}
int st_read_i64(const st_file *f, const char *name, int64_t *out, size_t numel) {
    return read_typed(f, name, out, numel, ST_I64);
}

// ---- writing ----------------------------------------------------------------------------------

int st_write(const char *path, const st_write_item *items, int n, const st_kv *meta, int n_meta) {
    char *hs = NULL;
    size_t hn = 0;
    FILE *h = open_memstream(&hs, &hn);
    if (!h) return as_fail("%s: out of memory for the header", path);
    fputc('{', h);
    int first = 1;
    if (n_meta > 0) {
        fputs("\"__metadata__\":{", h);
        for (int i = 0; i < n_meta; i++) {
            if (i) fputc(',', h);
            json_write_string(h, meta[i].key);
            fputc(':', h);
            json_write_string(h, meta[i].value);
        }
        fputc('}', h);
        first = 0;
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        const st_write_item *it = &items[i];
        size_t bytes = st_dtype_size(it->dtype);
        if (!bytes || it->ndim < 0 || it->ndim > ST_MAX_DIMS) {
            fclose(h);
            free(hs);
            return as_fail("%s: tensor '%s': bad dtype or rank", path, it->name);
        }
        for (int d = 0; d < it->ndim; d++) bytes *= (size_t)it->shape[d];
        if (!first) fputc(',', h);
        first = 0;
        json_write_string(h, it->name);
        fprintf(h, ":{\"dtype\":\"%s\",\"shape\":[", st_dtype_name(it->dtype));
        for (int d = 0; d < it->ndim; d++) fprintf(h, d ? ",%lld" : "%lld", (long long)it->shape[d]);
        fprintf(h, "],\"data_offsets\":[%zu,%zu]}", off, off + bytes);
        off += bytes;
    }
    fputc('}', h);
    // The data section starts 8-byte aligned, so a mapped file's tensors can be read in place.
    for (long pos = ftell(h); pos % 8; pos++) fputc(' ', h);
    if (fclose(h)) {
        free(hs);
        return as_fail("%s: out of memory for the header", path);
    }
    fs_file af;
    if (fs_file_open(&af, path)) {
        free(hs);
        return -1;
    }
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)hn >> (8 * i));
    int ok = fwrite(len, 1, 8, af.f) == 8 && fwrite(hs, 1, hn, af.f) == hn;
    free(hs);
    for (int i = 0; i < n && ok; i++) {
        size_t bytes = st_dtype_size(items[i].dtype);
        for (int d = 0; d < items[i].ndim; d++) bytes *= (size_t)items[i].shape[d];
        if (bytes) ok = fwrite(items[i].data, 1, bytes, af.f) == bytes;
    }
    if (!ok) {
        fs_file_abort(&af);
        return as_fail("%s: write failed (disk full?)", path);
    }
    return fs_file_commit(&af);
}
