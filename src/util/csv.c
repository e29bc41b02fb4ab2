// CSV field writers (see csv.h).
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
