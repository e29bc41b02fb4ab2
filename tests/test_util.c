// rng reproducibility/statistics and atomic file writes.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/testutil.h"
#include "util/csv.h"
#include "util/error.h"
#include "util/json.h"
#include "util/fs.h"
#include "util/rng.h"

int main(void) {
    rng a, b;
    rng_seed(&a, 42);
    rng_seed(&b, 42);
    int same = 1;
    for (int i = 0; i < 1000; i++) same &= rng_u64(&a) == rng_u64(&b);
    CHECK(same, "same seed gives the same stream");
    rng_seed_stream(&b, 42, 1);
    CHECK(rng_u64(&a) != rng_u64(&b), "streams differ");

    // Moments of the normal and uniform generators (n = 200000: 5 sigma bounds).
    double s = 0, s2 = 0, u = 0;
    int n = 200000;
    for (int i = 0; i < n; i++) {
        double z = rng_normal(&a);
        s += z;
        s2 += z * z;
        u += rng_uniform(&a);
    }
    CHECK(fabs(s / n) < 5 / sqrt(n), "normal mean %g", s / n);
    CHECK(fabs(s2 / n - 1) < 5 * sqrt(2.0 / n), "normal variance %g", s2 / n);
    CHECK(fabs(u / n - 0.5) < 5 * sqrt(1.0 / 12 / n), "uniform mean %g", u / n);

    int perm[196], seen[196] = {0};
    rng_permutation(&a, perm, 196);
    int ok = 1;
    for (int i = 0; i < 196; i++) ok &= perm[i] >= 0 && perm[i] < 196 && !seen[perm[i]]++;
    CHECK(ok, "permutation is a bijection");

    // Atomic write: content lands whole, no temp file remains, failure names the file.
    const char *dir = tu_scratch_dir("util");
    char path[4096];
    fs_join(path, sizeof path, dir, "x.nii.gz");
    char tmp[4200];
    fs_temp_path(tmp, sizeof tmp, path);
    CHECK(strstr(tmp, ".nii.gz") && tmp[strlen(tmp) - 1] == 'z', "temp path keeps extension: %s", tmp);
    CHECK(fs_write_all(path, "hello", 5) == 0, "write_all");
    unsigned char *data;
    size_t len;
    CHECK(fs_read_all(path, &data, &len) == 0 && len == 5 && !memcmp(data, "hello", 5), "read back");
    free(data);
    CHECK(!fs_exists(tmp), "temp file gone");
    CHECK(fs_write_all("/nonexistent-dir/x.bin", "x", 1) == -1 && strstr(as_error(), "/nonexistent-dir/x.bin"),
          "error names file: %s", as_error());

    // JSON: one number format that reads back exactly, escaping, a strict reader.
    char *mem;
    size_t mlen;
    FILE *f = open_memstream(&mem, &mlen);
    double nums[4] = {0.1, 1.0 / 3, 1e-300, -2.5e17};
    for (int i = 0; i < 4; i++) json_write_number(f, nums[i]), fputc(' ', f);
    json_write_number(f, INFINITY);
    fputc(' ', f);
    json_write_string(f, "a\"b\\c\nd\x01");
    fputc(' ', f);
    csv_write_field(f, "x,y");
    fputc(' ', f);
    csv_write_field(f, " pad");
    fclose(f);
    char *p = mem;
    int exact = 1;
    for (int i = 0; i < 4; i++) exact &= strtod(p, &p) == nums[i];
    CHECK(exact && !strncmp(mem, "0.1 ", 4), "numbers read back exactly, 0.1 stays short: %s", mem);
    CHECK(NULL != strstr(mem, " null \"a\\\"b\\\\c\\nd\\u0001\" \"x,y\" \" pad\""), "null, escapes and CSV quoting: %s", mem);
    free(mem);
    char out[64];
    const char *doc = "{\"s\": \"q\\u00e9\\n\", \"n\": {\"k\": [1, 2e3]}, \"b\": true, \"u\": \"18446744073709551615\"}";
    uint64_t big;
    int flag;
    CHECK(json_check(doc, "doc") == 0 && json_top_string(doc, "s", out, sizeof out) == 0 && !strcmp(out, "q\xc3\xa9\n"),
          "strict string with \\u escape: %s", as_error());
    double k[3];
    CHECK(json_top_numbers(json_top_value(doc, "n"), "k", k, 3) == 2 && k[1] == 2000 && json_top_bool(doc, "b", &flag) == 0 && flag &&
              json_top_u64(doc, "u", &big) == 0 && big == UINT64_MAX,
          "nested, bool and quoted 64-bit members");
    const char *bad[] = {"{\"a\": 01}", "{\"a\": 1,}", "{\"a\": +1}", "{\"a\": \"x\"} x", "{\"a\": 0x10}", "[1 2]"};
    for (int i = 0; i < 6; i++)
        CHECK(json_check(bad[i], "bad.json") == -1 && strstr(as_error(), "bad.json"), "refused: %s (%s)", bad[i],
              as_error());
    CHECK(json_top_number("{\"best_val\": inf}", "best_val", k) == 0 && isinf(k[0]) && k[0] > 0,
          "inf of older training states still reads");
    return tu_finish();
}
