// Shared bits of the libFuzzer targets: every reader under test takes a path, so each input is
// written to a per-process scratch file first; and the one-line error contract is checked.
#ifndef ANOSWIN_FUZZ_COMMON_H
#define ANOSWIN_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "util/error.h"

// A private scratch folder (created once per process) and a file name inside it.
static inline const char *fuzz_dir(void) {
    static char dir[512];
    if (!dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/anoswin-fuzz-XXXXXX", t && t[0] ? t : "/tmp");
        if (!mkdtemp(dir)) {
            perror("fuzz: mkdtemp");
            abort();
        }
    }
    return dir;
}

static inline void fuzz_path(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", fuzz_dir(), name); }

// Writes bytes to path, plain or gzip-compressed (so that mutations of the plain bytes also
// exercise the decompressing read path).
static inline void fuzz_write(const char *path, const uint8_t *data, size_t size, int gzip) {
    if (gzip) {
        gzFile gz = gzopen(path, "wb1");
        if (!gz || (size && gzwrite(gz, data, (unsigned)size) != (int)size) || gzclose(gz) != Z_OK) abort();
        return;
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f)) abort();
}

// The library's error contract: a failing call leaves one line that names the file.
static inline void fuzz_check_error(const char *path) {
    const char *e = as_error();
    if (!e[0] || strchr(e, '\n') || (path && !strstr(e, path))) {
        fprintf(stderr, "fuzz: error message breaks the contract (one line naming %s): '%s'\n", path ? path : "-", e);
        abort();
    }
}

#endif
