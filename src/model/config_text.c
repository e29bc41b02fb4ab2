// Config text tokenizer (see config_text.h).
#include "model/config_text.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "util/error.h"

const char *config_skip_ws(const char *p) {
    while (*p && isspace((unsigned char)*p)) p++;
    return p;
}

void config_cursor_init(config_cursor *c, const char *text, const char *what) {
    c->p = config_skip_ws(text);
    c->braced = *c->p == '{';
    if (c->braced) c->p++;
    c->what = what;
}

int config_next_key(config_cursor *c, char *key, size_t n) {
    const char *p = config_skip_ws(c->p), *what = c->what;
    if (!*p || (c->braced && *p == '}')) return 0;
    int quoted = *p == '"';
    if (quoted) p++;
    size_t k = 0;
    while (*p && (isalnum((unsigned char)*p) || *p == '_')) {
        if (k + 1 >= n) return as_fail("%s: config key too long", what);
        key[k++] = *p++;
    }
    key[k] = 0;
    if (quoted) {
        if (*p != '"') return as_fail("%s: bad config key near '%.20s'", what, p);
        p++;
    }
    if (!k) return as_fail("%s: expected a config key near '%.20s'", what, p);
    p = config_skip_ws(p);
    if (*p != '=' && *p != ':') return as_fail("%s: config key '%s' needs '=' or ':' and a value", what, key);
    c->p = config_skip_ws(p + 1);
    return 1;
}

int config_end_value(config_cursor *c, const char *key) {
    const char *p = config_skip_ws(c->p);
    if (*p == ',') p++;
    else if (*p && !(c->braced && *p == '}'))
        return as_fail("%s: expected ',' after config key '%s' near '%.20s'", c->what, key, p);
    c->p = p;
    return 0;
}

int config_number(config_cursor *c, const char *key, double *v) {
    const char *p = config_skip_ws(c->p);
    char *end;
    errno = 0;
    *v = strtod(p, &end);
    if (end == p || errno) return as_fail("%s: config key '%s' needs a number", c->what, key);
    c->p = end;
    return 0;
}

int config_int(double v, int *out, const char *what, const char *key) {
    // Range first: converting an out-of-range double to int is undefined behaviour.
    if (!(v >= INT_MIN && v <= INT_MAX) || v != (double)(int)v)
        return as_fail("%s: config key '%s' needs an integer, got %g", what, key, v);
    *out = (int)v;
    return 0;
}
