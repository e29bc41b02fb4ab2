// CSV field writers and the line splitter (see csv.h).
#include "util/csv.h"

#include <math.h>
#include <string.h>

#include "util/json.h"  // json_write_number

void csv_write_field(FILE *f, const char *s) {
    if (!s) return;
    size_t len = strlen(s);
    if (!strpbrk(s, ",\"\n\r") && !(len && (strchr(" \t", s[0]) || strchr(" \t", s[len - 1])))) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

void csv_write_number(FILE *f, double v) {
    if (isfinite(v)) json_write_number(f, v);
}

void csv_write_fixed(FILE *f, double v, int decimals) {
    if (isfinite(v)) fprintf(f, "%.*f", decimals, v);
}

int csv_split(char *line, char **fields, int max) {
    int n = 0;
    char *p = line;
    while (n < max) {
        char *w = p;
        fields[n++] = w;
        if (*p == '"') {
            p++;
            for (;;) {
                if (!*p) break;
                if (*p == '"' && p[1] == '"') *w++ = '"', p += 2;
                else if (*p == '"') {
                    p++;
                    break;
                } else *w++ = *p++;
            }
            while (*p && *p != ',') p++;
        } else {
            while (*p && *p != ',' && *p != '\n' && *p != '\r') w++, p++;
        }
        int more = *p == ',';
        *w = 0;  // w <= p: writing here never clobbers unread input past p
        if (!more) break;
        p++;
    }
    return n;
}
