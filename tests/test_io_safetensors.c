// safetensors reader/writer: round trip (F32, I64, metadata with characters that need JSON
// escapes), a file written by the Python reference writer, and hostile files that must fail
// with one clean line naming the file.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/testutil.h"
#include "io/safetensors.h"
#include "util/error.h"
#include "util/fs.h"

static char dir[1024];

static void write_raw(const char *path, const char *header, size_t data_len, long long hdr_len_override) {
    FILE *f = fopen(path, "wb");
    unsigned long long n = hdr_len_override >= 0 ? (unsigned long long)hdr_len_override : strlen(header);
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)(n >> (8 * i));
    fwrite(len, 1, 8, f);
    fwrite(header, 1, strlen(header), f);
    for (size_t i = 0; i < data_len; i++) fputc((int)(i & 0xff), f);
    fclose(f);
}

static void expect_fail(const char *label, const char *header, size_t data_len, long long hdr_len, const char *needle) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, label);
    write_raw(path, header, data_len, hdr_len);
    st_file f;
    as_error_clear();
    int rc = st_open(&f, path);
    const char *e = as_error();
    printf("  %-15s -> %s\n", label, e);
    CHECK(rc == -1 && strstr(e, path) && strchr(e, '\n') == NULL && (!needle || strstr(e, needle)),
          "%s rejected cleanly: rc=%d '%s'", label, rc, e);
    if (rc == 0) st_close(&f);
}

static void test_roundtrip(void) {
    float a[6] = {1, -2, 3.5f, 1e-30f, -0.0f, 7};
    int64_t b[3] = {-1, 0, (int64_t)1 << 40};
    st_write_item items[3] = {
        {.name = "w.a", .dtype = ST_F32, .ndim = 2, .shape = {2, 3}, .data = a},
        {.name = "idx \"q\"", .dtype = ST_I64, .ndim = 1, .shape = {3}, .data = b},
        {.name = "empty", .dtype = ST_F32, .ndim = 2, .shape = {0, 4}, .data = NULL},
    };
    st_kv meta[2] = {{"anoswin.config", "{\"img_size\":224}"}, {"note", "tab\there \\ ok"}};
    char path[1200];
    snprintf(path, sizeof path, "%s/rt.safetensors", dir);
    CHECK(st_write(path, items, 3, meta, 2) == 0, "write: %s", as_error());
    st_file f;
    CHECK(st_open(&f, path) == 0, "open: %s", as_error());
    CHECK(f.n == 3 && !strcmp(f.tensors[0].name, "w.a") && !strcmp(f.tensors[1].name, "idx \"q\""), "names and order");
    float a2[6];
    int64_t b2[3];
    CHECK(st_read_f32(&f, "w.a", a2, 6) == 0 && !memcmp(a, a2, sizeof a), "f32 values");
    CHECK(st_read_i64(&f, "idx \"q\"", b2, 3) == 0 && !memcmp(b, b2, sizeof b), "i64 values");
    CHECK(st_meta(&f, "anoswin.config") && !strcmp(st_meta(&f, "anoswin.config"), "{\"img_size\":224}"), "metadata 1");
    CHECK(st_meta(&f, "note") && !strcmp(st_meta(&f, "note"), "tab\there \\ ok"), "metadata 2");
    CHECK(st_read_f32(&f, "idx \"q\"", a2, 3) == -1 && strstr(as_error(), "I64") && strstr(as_error(), path),
          "dtype mismatch named: %s", as_error());
    CHECK(st_read_f32(&f, "w.a", a2, 5) == -1 && strstr(as_error(), "w.a"), "count mismatch named");
    CHECK(st_read_f32(&f, "nope", a2, 1) == -1 && strstr(as_error(), "nope"), "missing named");
    // Header length padded to 8.
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | f.map[i];
    CHECK(n % 8 == 0, "header padded to 8 (%llu)", (unsigned long long)n);
    st_close(&f);
}

// A file from the pure-Python writer (tools/safetensors_io.py) reads here.
static void test_python_file(void) {
    char path[1200], ref[1200], args[4000];
    snprintf(path, sizeof path, "%s/py.safetensors", dir);
    snprintf(ref, sizeof ref, "%s/py.f32", dir);
    snprintf(args, sizeof args,
             "-c \"import sys; sys.path.insert(0, '%s/tools'); import torch, safetensors_io as S; torch.manual_seed(1); "
             "x = torch.randn(5, 3, 2); S.save_file({'x': x, 'i': torch.arange(4)}, '%s', {'k': 'v'}); "
             "x.numpy().astype('<f4').tofile('%s')\"",
             tu_source_path("."), path, ref);
    char cmd[5000];
    snprintf(cmd, sizeof cmd, "%s %s", getenv("ANOSWIN_PYTHON") ? getenv("ANOSWIN_PYTHON") : "/usr/bin/python3", args);
    CHECK(system(cmd) == 0, "python writer ran");
    st_file f;
    CHECK(st_open(&f, path) == 0, "open python file: %s", as_error());
    float x[30];
    int64_t i4[4];
    float *r = tu_read_f32(ref, 30);
    CHECK(st_read_f32(&f, "x", x, 30) == 0 && !memcmp(x, r, sizeof x), "python tensor values");
    CHECK(st_read_i64(&f, "i", i4, 4) == 0 && i4[3] == 3, "python int64");
    CHECK(st_meta(&f, "k") && !strcmp(st_meta(&f, "k"), "v"), "python metadata");
    free(r);
    st_close(&f);
}

static void test_hostile(void) {
    const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    // Sanity: the well-formed version opens.
    char path[1200];
    snprintf(path, sizeof path, "%s/good.safetensors", dir);
    write_raw(path, ok, 8, -1);
    st_file f;
    int rc = st_open(&f, path);
    CHECK(rc == 0, "good raw file opens: %s", as_error());
    if (rc == 0) st_close(&f);

    expect_fail("truncated", ok, 5, -1, "truncated");
    expect_fail("trailing", ok, 12, -1, "trailing");
    expect_fail("huge_header", ok, 8, 1LL << 40, "header length");
    expect_fail("header_past_end", ok, 8, 4000, "header length");
    expect_fail("not_json", "PK\003\004 this is a zip", 0, -1, NULL);
    expect_fail("bad_dtype", "{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, -1, "F33");
    expect_fail("size_mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, -1, "'a'");
    expect_fail("overlap",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                12, -1, "overlap");
    expect_fail("gap",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                12, -1, "contiguous");
    expect_fail("not_from_zero", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, -1, NULL);
    expect_fail("duplicate",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                8, -1, "twice");
    expect_fail("negative_shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, -1, NULL);
    expect_fail("float_offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.0]}}", 8, -1, NULL);
    expect_fail("overflow_shape",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4611686018427387904],\"data_offsets\":[0,8]}}",
                8, -1, NULL);
    expect_fail("missing_field", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 0, -1, "data_offsets");
    expect_fail("unterminated", "{\"a\":{\"dtype\":\"F32", 0, -1, NULL);
    expect_fail("trailing_json", "{}{}", 0, -1, NULL);
    expect_fail("nul_in_header", "{\"a\\u0000\":1}", 0, -1, NULL);
    // Too short to hold the length field, and empty.
    snprintf(path, sizeof path, "%s/short.safetensors", dir);
    fs_write_all(path, "abc", 3);
    CHECK(st_open(&f, path) == -1 && strstr(as_error(), path), "3-byte file: %s", as_error());
    snprintf(path, sizeof path, "%s/missing.safetensors", dir);
    CHECK(st_open(&f, path) == -1 && strstr(as_error(), path), "missing file: %s", as_error());
}

int main(void) {
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("io_safetensors"));
    test_roundtrip();
    test_python_file();
    test_hostile();
    return tu_finish();
}
