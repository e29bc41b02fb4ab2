// Config text tokenizer (see config_text.h).
#include "model/config_text.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int config_check_failed(const char *what) {
    char msg[512];
    const char *e = as_error();
    snprintf(msg, sizeof msg, "%s", strncmp(e, "config: ", 8) ? e : e + 8);
    return as_fail("%s: %s", what, msg);
}

void config_float_str(char *out, size_t n, float v) {
    if (!out || !n) return;  // (GCC's sanitizer build sees a NULL destination through inlining)
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(out, n, "%.*g", prec, (double)v);
        if (strtof(out, NULL) == v) break;
    }
}

// ---- configs described by a table of fields ----------------------------------------------------

// "a or b", "a, b or c"
static void choice_list(char *out, size_t n, const config_field *f) {
    size_t w = 0;
    out[0] = 0;
    for (int i = 0; i < 4 && f->choices[i] && w < n; i++)
        w += (size_t)snprintf(out + w, n - w, "%s%s", i == 0 ? "" : i + 1 < 4 && f->choices[i + 1] ? ", " : " or ",
                              f->choices[i]);
}

// A choice's name, quoted or not, at c->p: the longest that matches.
int config_choice(config_cursor *c, const config_field *f, int *out) {
    const char *p = c->p;
    int q = *p == '"', best = -1;
    size_t best_len = 0;
    if (q) p++;
    for (int i = 0; i < 4 && f->choices[i]; i++) {
        size_t len = strlen(f->choices[i]);
        if (len > best_len && !strncmp(p, f->choices[i], len)) best = i, best_len = len;
    }
    if (best < 0 || (q && p[best_len] != '"')) {
        char list[128];
        choice_list(list, sizeof list, f);
        return as_fail("%s: config key '%s' must be %s", c->what, f->key, list);
    }
    *out = best;
    c->p = p + best_len + (size_t)q;
    return 0;
}

static int unknown_key(const config_field *f, int nf, const char *what, const char *key) {
    char known[1024];
    size_t w = 0;
    known[0] = 0;
    for (int i = 0; i < nf && w < sizeof known; i++)
        w += (size_t)snprintf(known + w, sizeof known - w, "%s%s", i ? " " : "", f[i].key);
    return as_fail("%s: unknown config key '%s' (known: %s)", what, key, known);
}

int config_fields_parse(void *cfg, const config_field *f, int nf, const char *text, const char *what) {
    config_cursor cur;
    config_cursor_init(&cur, text, what);
    char key[64];
    int got;
    while ((got = config_next_key(&cur, key, sizeof key)) > 0) {
        const config_field *k = NULL;
        for (int i = 0; i < nf && !k; i++)
            if (!strcmp(key, f[i].key)) k = &f[i];
        if (!k) return unknown_key(f, nf, what, key);
        char *field = (char *)cfg + k->offset;
        double v;
        if (k->type == CONFIG_CHOICE) {
            if (config_choice(&cur, k, (int *)field)) return -1;
        } else if (config_number(&cur, key, &v)) {
            return -1;
        } else if (k->type == CONFIG_INT) {
            if (config_int(v, (int *)field, what, key)) return -1;
        } else {
            *(float *)field = (float)v;
        }
        if (config_end_value(&cur, key)) return -1;
    }
    return got < 0 ? -1 : 0;
}

int config_fields_to_json(const void *cfg, const config_field *f, int nf, char *out, size_t n) {
    size_t w = 0;
    for (int i = 0; i <= nf; i++) {
        const char *sep = i ? "," : "{";
        int r;
        if (i == nf) {
            r = snprintf(out + w, n - w, "%s}", nf ? "" : "{");
        } else {
            const char *field = (const char *)cfg + f[i].offset;
            char num[32];
            if (f[i].type == CONFIG_INT) {
                r = snprintf(out + w, n - w, "%s\"%s\":%d", sep, f[i].key, *(const int *)field);
            } else if (f[i].type == CONFIG_FLOAT) {
                config_float_str(num, sizeof num, *(const float *)field);
                r = snprintf(out + w, n - w, "%s\"%s\":%s", sep, f[i].key, num);
            } else {
                r = snprintf(out + w, n - w, "%s\"%s\":\"%s\"", sep, f[i].key, f[i].choices[*(const int *)field]);
            }
        }
        if (r < 0 || (w += (size_t)r) >= n) return -1;
    }
    return 0;
}
