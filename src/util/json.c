// JSON helpers (see json.h).
#include "util/json.h"

#include <stdlib.h>
#include <string.h>

void json_write_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

static const char *skip_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

// Past the string literal starting at p (p at its opening quote); NULL when unterminated.
static const char *skip_string(const char *p) {
    for (p++; *p; p++) {
        if (*p == '\\' && p[1]) p++;
        else if (*p == '"') return p + 1;
    }
    return NULL;
}

// Past the value starting at p: a string, a nested object/array (brackets counted outside
// strings), or a scalar up to the next ',' '}' ']'. NULL on malformed input.
static const char *skip_value(const char *p) {
    if (*p == '"') return skip_string(p);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (*p) {
            if (*p == '"') {
                if (!(p = skip_string(p))) return NULL;
                continue;
            }
            if (*p == '{' || *p == '[') depth++;
            else if (*p == '}' || *p == ']') {
                if (--depth == 0) return p + 1;
            }
            p++;
        }
        return NULL;
    }
    while (*p && *p != ',' && *p != '}' && *p != ']') p++;
    return p;
}

const char *json_top_value(const char *text, const char *key) {
    const char *p = skip_ws(text);
    if (*p != '{') return NULL;
    p = skip_ws(p + 1);
    size_t kl = strlen(key);
    while (*p == '"') {
        const char *k0 = p + 1, *k1 = skip_string(p);
        if (!k1) return NULL;
        p = skip_ws(k1);
        if (*p != ':') return NULL;
        p = skip_ws(p + 1);
        if ((size_t)(k1 - 1 - k0) == kl && !memcmp(k0, key, kl)) return p;
        if (!(p = skip_value(p))) return NULL;
        p = skip_ws(p);
        if (*p != ',') return NULL;
        p = skip_ws(p + 1);
    }
    return NULL;
}

int json_top_number(const char *text, const char *key, double *out) {
    const char *p = json_top_value(text, key);
    if (!p) return -1;
    char *end;
    double v = strtod(p, &end);
    if (end == p) return -1;
    *out = v;
    return 0;
}

int json_top_string(const char *text, const char *key, char *out, size_t n) {
    const char *p = json_top_value(text, key);
    if (!p || *p != '"' || !n) return -1;
    size_t w = 0;
    for (p++; *p && *p != '"'; p++) {
        char ch = *p;
        if (ch == '\\' && p[1]) {
            ch = *++p;
            ch = ch == 'n' ? '\n' : ch == 't' ? '\t' : ch;
        }
        if (w + 1 < n) out[w++] = ch;
    }
    out[w] = 0;
    return *p == '"' ? 0 : -1;
}

int json_top_numbers(const char *text, const char *key, double *out, int max) {
    const char *p = json_top_value(text, key);
    if (!p || *p != '[') return -1;
    p = skip_ws(p + 1);
    int n = 0;
    if (*p == ']') return 0;
    for (;;) {
        char *end;
        double v = strtod(p, &end);
        if (end == p) return -1;
        if (n < max) out[n] = v;
        n++;
        p = skip_ws(end);
        if (*p == ']') return n < max ? n : max;
        if (*p != ',') return -1;
        p = skip_ws(p + 1);
    }
}
