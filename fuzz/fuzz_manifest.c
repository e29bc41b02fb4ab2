// libFuzzer target: the manifest CSV reader behind dataset discovery (dataset_open on a .csv),
// then what commands do with the result (split filtering, lookup, writing the manifest back).
// The scratch folder holds a few real files (a.nii.gz, b.nii.gz, sub/c.nii) so that relative
// and absolute paths in the CSV can resolve. Properties: no crash/leak/UB; failures leave a
// one-line error; successes give subjects sorted by unique non-empty ids with existing images,
// and the manifest written back reads again to the same subjects.
#include "data/dataset.h"
#include "fuzz_common.h"

#include <sys/stat.h>

static void touch(const char *rel) {
    char p[700];
    fuzz_path(p, sizeof p, rel);
    FILE *f = fopen(p, "wb");
    if (!f) abort();
    fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    char sub[700];
    fuzz_path(sub, sizeof sub, "sub");
    mkdir(sub, 0755);
    touch("a.nii.gz");
    touch("b.nii.gz");
    touch("sub/c.nii");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 16)) return 0;
    char path[600], out[600];
    fuzz_path(path, sizeof path, "m.csv");
    fuzz_write(path, data, size, 0);
    dataset d;
    as_error_clear();
    if (dataset_open(&d, path, "t2") != 0) {
        fuzz_check_error(NULL);  // names the CSV, or the missing file it lists
        return 0;
    }
    if (d.n < 1 || strcmp(d.layout, "manifest")) abort();
    for (int i = 0; i < d.n; i++) {
        const subject *s = &d.subjects[i];
        if (!s->id[0] || !s->image[0] || !s->label || !s->mask || !s->split) abort();
        if (i && strcmp(d.subjects[i - 1].id, s->id) >= 0) abort();  // sorted, unique
        if (dataset_find(&d, s->id) != s) abort();
    }
    fuzz_path(out, sizeof out, "back.csv");
    if (dataset_write_manifest(&d, out) != 0) abort();
    dataset back;
    if (dataset_open(&back, out, "t2") != 0) {
        fprintf(stderr, "fuzz: manifest we wrote does not read back: %s\n", as_error());
        abort();
    }
    if (back.n != d.n) abort();
    for (int i = 0; i < d.n; i++)
        if (strcmp(back.subjects[i].id, d.subjects[i].id) || strcmp(back.subjects[i].split, d.subjects[i].split))
            abort();
    dataset_free(&back);
    dataset_keep_split(&d, "test");
    dataset_free(&d);
    return 0;
}
