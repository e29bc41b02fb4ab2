#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char last_error[1024];

int as_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    // Messages quote names from files (tensor names, CSV cells): keep them one printable line.
    for (char *p = last_error; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    return -1;
}

const char *as_error(void) { return last_error; }

void as_error_clear(void) { last_error[0] = '\0'; }

static void out_of_memory(size_t n) {
    fprintf(stderr, "anoswin: out of memory allocating %zu bytes\n", n);
    abort();
}

void *as_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) out_of_memory(n);
    return p;
}

void *as_calloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) out_of_memory(count * size);
    return p;
}

void *as_realloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) out_of_memory(n);
    return q;
}

char *as_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = as_malloc(n);
    memcpy(d, s, n);
    return d;
}
