#include "cli/arglist.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

void arg_add(arglist *a, const char *fmt, ...) {
    if (a->n >= (int)(sizeof a->v / sizeof a->v[0]) - 2) abort();  // our own command lines are short
    va_list ap;
    va_start(ap, fmt);
    char buf[4096];
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    a->v[a->n++] = as_strdup(buf);
    a->v[a->n] = NULL;
}

void arg_free(arglist *a) {
    for (int i = 0; i < a->n; i++) free(a->v[i]);
    a->n = 0;
}

void arg_line(const arglist *a, char *out, size_t n) {
    size_t k = (size_t)snprintf(out, n, "anoswin");
    for (int i = 0; i < a->n && k + 4 < n; i++) {
        const char *s = a->v[i];
        int plain = *s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=./:,+@%") ==
                              strlen(s);
        if (plain) k += (size_t)snprintf(out + k, n - k, " %s", s);
        else {
            k += (size_t)snprintf(out + k, n - k, " '");
            for (; *s && k + 6 < n; s++) {
                if (*s == '\'') k += (size_t)snprintf(out + k, n - k, "'\\''");
                else out[k++] = *s, out[k] = 0;
            }
            k += (size_t)snprintf(out + k, n - k, "'");
        }
        if (k >= n) {
            out[n - 1] = 0;
            return;
        }
    }
}
