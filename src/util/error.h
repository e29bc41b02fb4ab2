// Error reporting for the library: functions return 0 on success, -1 on failure after
// recording a one-line message "<file>: <what is wrong>". The CLI prints it as
// "anoswin: <message>" and exits 1. The library never exits or prints errors itself.
#ifndef ANOSWIN_UTIL_ERROR_H
#define ANOSWIN_UTIL_ERROR_H

#include <stddef.h>

// Records a printf-style message and returns -1, so callers can `return as_fail(...)`.
int as_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// The last recorded message ("" when none). Thread-local.
const char *as_error(void);
void as_error_clear(void);

// Allocation that cannot fail silently: aborts with a message naming the size on OOM.
void *as_malloc(size_t n);
void *as_calloc(size_t count, size_t size);
void *as_realloc(void *p, size_t n);
char *as_strdup(const char *s);

#endif
