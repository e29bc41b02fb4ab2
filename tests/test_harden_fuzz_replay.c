// Replays the fuzz targets' seed corpora (fuzz/corpus/<target>/) and every input a fuzzing run
// ever failed on (fuzz/regress/<target>/) through the same harness code, built with the normal
// compiler: so `make test` (and its ASan+UBSan build) re-checks each finding without clang.
// A harness aborts when a property breaks (crash, error message not one line naming the file,
// write/read round trip changing a volume, manifest not reading back); that fails this test.
// fuzz_options is not replayed here: it needs the CLI linked with wrapped work functions.
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/testutil.h"
#include "util/fs.h"

#define LLVMFuzzerTestOneInput fuzz_nifti_one
#include "../fuzz/fuzz_nifti.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_safetensors_one
#include "../fuzz/fuzz_safetensors.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_manifest_one
#define LLVMFuzzerInitialize fuzz_manifest_init
#include "../fuzz/fuzz_manifest.c"
#undef LLVMFuzzerTestOneInput
#undef LLVMFuzzerInitialize

// Runs every file of <source>/fuzz/<kind>/<target>/ through one; returns how many.
static int replay(const char *kind, const char *target, int (*one)(const uint8_t *, size_t)) {
    char rel[256], dir[1200];
    snprintf(rel, sizeof rel, "fuzz/%s/%s", kind, target);
    snprintf(dir, sizeof dir, "%s", tu_source_path(rel));
    DIR *d = opendir(dir);
    CHECK(d != NULL, "%s exists", dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[1500];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unsigned char *data;
        size_t size;
        if (fs_read_all(path, &data, &size) != 0) {
            CHECK(0, "read %s", path);
            continue;
        }
        one(data, size);  // aborts the test on a broken property
        free(data);
        n++;
    }
    closedir(d);
    return n;
}

int main(void) {
    fuzz_manifest_init(NULL, NULL);
    int seeds = 0, found = 0;
    seeds += replay("corpus", "fuzz_nifti", fuzz_nifti_one);
    seeds += replay("corpus", "fuzz_safetensors", fuzz_safetensors_one);
    seeds += replay("corpus", "fuzz_manifest", fuzz_manifest_one);
    found += replay("regress", "fuzz_nifti", fuzz_nifti_one);
    found += replay("regress", "fuzz_safetensors", fuzz_safetensors_one);
    found += replay("regress", "fuzz_manifest", fuzz_manifest_one);
    CHECK(seeds >= 20 && found >= 7, "replayed %d seeds and %d past findings", seeds, found);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir());
    CHECK(system(cmd) == 0, "scratch folder removed");
    return tu_finish();
}
