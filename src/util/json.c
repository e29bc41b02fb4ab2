// JSON writer and strict reader (see json.h).
#include "util/json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"  // as_fail, as_malloc
#include "util/fs.h"     // fs_read_all

// ---- writing ----------------------------------------------------------------------------------

void json_write_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch == '\n') fputs("\\n", f);
        else if (ch == '\t') fputs("\\t", f);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

void json_write_numbers(FILE *f, const double *v, int n) {
    fputc('[', f);
    for (int i = 0; i < n; i++) {
        if (i) fputc(',', f);
        json_write_number(f, v[i]);
    }
    fputc(']', f);
}

void json_write_number(FILE *f, double v) {
    if (!isfinite(v)) {
        fputs("null", f);
        return;
    }
    // %.17g always round-trips but prints 0.1 as 0.10000000000000001; fewer digits when they do.
    char s[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(s, sizeof s, "%.*g", prec, v);
        if (strtod(s, NULL) == v) break;
    }
    fputs(s, f);
}

int json_mem_open(json_mem *m) {
    m->buf = NULL;
    m->len = 0;
    m->f = open_memstream(&m->buf, &m->len);
    return m->f ? 0 : as_fail("out of memory for a JSON text");
}

int json_mem_close(json_mem *m, char *out, size_t n) {
    int bad = ferror(m->f);
    fclose(m->f);
    int rc = bad || m->len >= n ? -1 : 0;
    if (!rc) memcpy(out, m->buf, m->len + 1);
    free(m->buf);
    m->f = NULL, m->buf = NULL;
    return rc;
}

// ---- the strict cursor ------------------------------------------------------------------------

void json_cur_init(json_cur *c, const char *text, size_t n, const char *what, const char *kind) {
    c->p = c->start = text;
    c->end = text + n;
    c->what = what;
    c->kind = kind;
}

int json_fail(json_cur *c, const char *problem) {
    if (!c->kind) return -1;
    return as_fail("%s: bad %s: %s at byte %ld", c->what, c->kind, problem, (long)(c->p - c->start));
}

void json_ws(json_cur *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

int json_expect(json_cur *c, char ch) {
    json_ws(c);
    if (c->p >= c->end || *c->p != ch) {
        char msg[32];
        snprintf(msg, sizeof msg, "expected '%c'", ch);
        return json_fail(c, msg);
    }
    c->p++;
    return 0;
}

int json_peek(json_cur *c, char ch) {
    json_ws(c);
    return c->p < c->end && *c->p == ch;
}

int json_literal(json_cur *c, const char *lit) {
    json_ws(c);
    size_t n = strlen(lit);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n)) return -1;
    c->p += n;
    return 0;
}

static void put_utf8(char *out, size_t *k, unsigned cp) {
    if (cp < 0x80) out[(*k)++] = (char)cp;
    else if (cp < 0x800) {
        out[(*k)++] = (char)(0xC0 | (cp >> 6));
        out[(*k)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out[(*k)++] = (char)(0xE0 | (cp >> 12));
        out[(*k)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*k)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        out[(*k)++] = (char)(0xF0 | (cp >> 18));
        out[(*k)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[(*k)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*k)++] = (char)(0x80 | (cp & 0x3F));
    }
}

static int hex4(const char *s, unsigned *v) {
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = s[i];
        int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
        if (d < 0) return -1;
        *v = *v * 16 + (unsigned)d;
    }
    return 0;
}

int json_string(json_cur *c, char **out) {
    if (json_expect(c, '"')) return -1;
    const char *s = c->p;
    size_t cap = 0;
    while (s < c->end && *s != '"') {
        if (*s == '\\') s++;
        s++;
        cap++;
    }
    if (s >= c->end) return json_fail(c, "unterminated string");
    // Each source character yields at most 4 bytes (\uXXXX as UTF-8 is 3; a pair is 4 for 12).
    char *buf = as_malloc(cap * 4 + 1);
    size_t k = 0;
    while (*c->p != '"') {
        unsigned char ch = (unsigned char)*c->p++;
        if (ch < 0x20) {
            free(buf);
            return json_fail(c, "control character in string");
        }
        if (ch != '\\') {
            buf[k++] = (char)ch;
            continue;
        }
        char e = *c->p++;
        switch (e) {
        case '"': buf[k++] = '"'; break;
        case '\\': buf[k++] = '\\'; break;
        case '/': buf[k++] = '/'; break;
        case 'b': buf[k++] = '\b'; break;
        case 'f': buf[k++] = '\f'; break;
        case 'n': buf[k++] = '\n'; break;
        case 'r': buf[k++] = '\r'; break;
        case 't': buf[k++] = '\t'; break;
        case 'u': {
            unsigned cp;
            if (c->end - c->p < 4 || hex4(c->p, &cp) || cp == 0) {
                free(buf);
                return json_fail(c, "bad \\u escape");
            }
            c->p += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && c->end - c->p >= 6 && c->p[0] == '\\' && c->p[1] == 'u') {
                unsigned lo;
                if (!hex4(c->p + 2, &lo) && lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    c->p += 6;
                }
            }
            put_utf8(buf, &k, cp);
            break;
        }
        default:
            free(buf);
            return json_fail(c, "bad escape in string");
        }
    }
    c->p++;
    buf[k] = 0;
    *out = buf;
    return 0;
}

int json_uint(json_cur *c, uint64_t *v) {
    json_ws(c);
    if (c->p >= c->end || *c->p < '0' || *c->p > '9') return json_fail(c, "expected a non-negative integer");
    uint64_t x = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        // Checked before multiplying: x * 10 could wrap around 2^64 to a small valid size.
        if (x > ((uint64_t)1 << 62) / 10) return json_fail(c, "integer too large");
        x = x * 10 + (uint64_t)(*c->p++ - '0');
    }
    if (c->p < c->end && (*c->p == '.' || *c->p == 'e' || *c->p == 'E')) return json_fail(c, "expected an integer");
    *v = x;
    return 0;
}

static int is_digit(json_cur *c) { return c->p < c->end && *c->p >= '0' && *c->p <= '9'; }

int json_number(json_cur *c, double *v) {
    json_ws(c);
    const char *s = c->p;
    static const struct {
        const char *token;
        double value;
    } legacy[] = {{"inf", INFINITY}, {"-inf", -INFINITY}, {"nan", NAN}, {"-nan", NAN}};
    for (int i = 0; i < 4; i++)
        if (!json_literal(c, legacy[i].token)) {
            *v = legacy[i].value;
            return 0;
        }
    // The grammar first (strtod alone takes hex, leading '+', "infinity" ...), then strtod.
    if (c->p < c->end && *c->p == '-') c->p++;
    if (!is_digit(c)) return json_fail(c, "expected a number");
    if (*c->p == '0') c->p++;
    else
        while (is_digit(c)) c->p++;
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (!is_digit(c)) return json_fail(c, "expected digits after '.'");
        while (is_digit(c)) c->p++;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-')) c->p++;
        if (!is_digit(c)) return json_fail(c, "expected an exponent");
        while (is_digit(c)) c->p++;
    }
    char tmp[64];
    size_t n = (size_t)(c->p - s);
    if (n >= sizeof tmp) return json_fail(c, "number too long");
    memcpy(tmp, s, n);
    tmp[n] = 0;
    *v = strtod(tmp, NULL);
    return 0;
}

static int skip_depth(json_cur *c, int depth) {
    if (depth > 64) return json_fail(c, "nested too deep");
    json_ws(c);
    if (c->p >= c->end) return json_fail(c, "expected a value");
    char ch = *c->p;
    if (ch == '"') {
        char *s;
        if (json_string(c, &s)) return -1;
        free(s);
        return 0;
    }
    if (ch == '{' || ch == '[') {
        char close = ch == '{' ? '}' : ']';
        c->p++;
        if (json_peek(c, close)) {
            c->p++;
            return 0;
        }
        for (;;) {
            if (ch == '{') {
                char *k;
                if (json_string(c, &k)) return -1;
                free(k);
                if (json_expect(c, ':')) return -1;
            }
            if (skip_depth(c, depth + 1)) return -1;
            if (json_peek(c, ',')) {
                c->p++;
                continue;
            }
            return json_expect(c, close);
        }
    }
    if (!json_literal(c, "true") || !json_literal(c, "false") || !json_literal(c, "null")) return 0;
    double v;
    return json_number(c, &v);
}

int json_skip(json_cur *c) { return skip_depth(c, 0); }

// ---- documents --------------------------------------------------------------------------------

int json_check(const char *text, const char *what) {
    json_cur c;
    json_cur_init(&c, text, strlen(text), what, "JSON");
    if (json_skip(&c)) return -1;
    json_ws(&c);
    return c.p == c.end ? 0 : json_fail(&c, "trailing characters after the value");
}

char *json_read_file(const char *path) {
    unsigned char *buf;
    size_t n;
    if (fs_read_all(path, &buf, &n)) return NULL;
    if (memchr(buf, 0, n)) {
        free(buf);
        as_fail("%s: not a JSON file (binary data)", path);
        return NULL;
    }
    char *text = as_malloc(n + 1);
    memcpy(text, buf, n);
    text[n] = 0;
    free(buf);
    if (json_check(text, path)) {
        free(text);
        return NULL;
    }
    return text;
}

// The look-ups are silent (a cursor without a kind records no message): a malformed document
// yields "absent", and the readers say which key they lacked.
static void quiet_cur(json_cur *c, const char *text) { json_cur_init(c, text, strlen(text), "", NULL); }

const char *json_top_value(const char *text, const char *key) {
    if (!text) return NULL;
    json_cur c;
    quiet_cur(&c, text);
    const char *found = NULL;
    if (json_expect(&c, '{') || json_peek(&c, '}')) goto out;
    for (;;) {
        char *k;
        if (json_string(&c, &k)) goto out;
        int match = !strcmp(k, key);
        free(k);
        if (json_expect(&c, ':')) goto out;
        json_ws(&c);
        if (match) {
            found = c.p;
            goto out;
        }
        if (json_skip(&c)) goto out;
        if (!json_peek(&c, ',')) goto out;
        c.p++;
    }
out:
    return found;
}

size_t json_value_len(const char *v) {
    json_cur c;
    quiet_cur(&c, v);
    return json_skip(&c) ? 0 : (size_t)(c.p - v);
}

int json_top_number(const char *text, const char *key, double *out) {
    const char *p = json_top_value(text, key);
    if (!p || !json_value_len(p)) return -1;
    json_cur c;
    quiet_cur(&c, p);
    if (!json_literal(&c, "null") || json_number(&c, out)) return -1;
    return 0;
}

int json_top_u64(const char *text, const char *key, uint64_t *out) {
    const char *p = json_top_value(text, key);
    if (!p || !json_value_len(p)) return -1;
    if (*p == '"') p++;
    if (*p < '0' || *p > '9') return -1;
    char *end;
    *out = strtoull(p, &end, 10);
    return 0;
}

int json_top_bool(const char *text, const char *key, int *out) {
    const char *p = json_top_value(text, key);
    if (!p) return -1;
    json_cur c;
    quiet_cur(&c, p);
    if (!json_literal(&c, "true")) *out = 1;
    else if (!json_literal(&c, "false")) *out = 0;
    else return -1;
    return 0;
}

int json_top_string(const char *text, const char *key, char *out, size_t n) {
    const char *p = json_top_value(text, key);
    if (!p || *p != '"' || !n) return -1;
    json_cur c;
    quiet_cur(&c, p);
    char *s;
    if (json_string(&c, &s)) return -1;
    snprintf(out, n, "%s", s);
    free(s);
    return 0;
}

int json_top_numbers(const char *text, const char *key, double *out, int max) {
    const char *p = json_top_value(text, key);
    if (!p || *p != '[' || !json_value_len(p)) return -1;
    json_cur c;
    quiet_cur(&c, p + 1);
    if (json_peek(&c, ']')) return 0;
    int n = 0;
    for (;;) {
        double v;
        if (json_number(&c, &v)) return -1;
        if (n < max) out[n] = v;
        n++;
        if (json_peek(&c, ']')) return n < max ? n : max;
        if (json_expect(&c, ',')) return -1;
    }
}
