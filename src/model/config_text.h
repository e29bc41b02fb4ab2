// The text of a model config, as every method takes it: "key=value, key=value" or the JSON-like
// {"key": value, ...} that checkpoints store. One tokenizer for every method's parser, so keys,
// separators and error messages read the same whatever the method.
#ifndef ANOSWIN_MODEL_CONFIG_TEXT_H
#define ANOSWIN_MODEL_CONFIG_TEXT_H

#include <stddef.h>

typedef struct config_cursor {
    const char *p;     // the value after config_next_key; advance it while reading the value
    int braced;        // the text opened with '{'
    const char *what;  // named in errors (e.g. "--config")
} config_cursor;

const char *config_skip_ws(const char *p);
void config_cursor_init(config_cursor *c, const char *text, const char *what);
// The next key (at most n-1 bytes) with c->p past '=' or ':' at its value: 1; 0 at the end of the
// text; -1 (as_fail) on a malformed key.
int config_next_key(config_cursor *c, char *key, size_t n);
// After a value: consumes ',' or accepts the end; -1 (as_fail naming key) otherwise.
int config_end_value(config_cursor *c, const char *key);
// A number at c->p (advanced past it); -1 (as_fail naming key) when there is none.
int config_number(config_cursor *c, const char *key, double *v);
// v as an int; -1 (as_fail) when it is not an integer in range.
int config_int(double v, int *out, const char *what, const char *key);

#endif
