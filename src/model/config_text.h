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

// After a config's check failed: -1 with "<what>: <the check's message less its 'config: '>".
int config_check_failed(const char *what);
// The shortest decimal (6 to 9 digits) that reads back as the same float ("0.1", not
// "0.100000001"): how configs write their floats.
void config_float_str(char *out, size_t n, float v);

// ---- configs described by a table of fields ----------------------------------------------------
// One row per key of a config struct, in the order of its JSON; parsing, the JSON and the list of
// known keys in errors all follow the table.
typedef enum { CONFIG_INT = 0, CONFIG_FLOAT, CONFIG_CHOICE } config_type;

typedef struct config_field {
    const char *key;
    config_type type;
    size_t offset;               // offsetof(struct, member): an int (INT, CHOICE) or a float (FLOAT)
    const char *choices[4];      // CHOICE: the names of the values 0, 1, ... (quoted in JSON)
} config_field;

// A CHOICE field's value at c->p (quoted or not; advanced past it) into *out, its index in
// f->choices; -1 (as_fail naming the choices) otherwise. For parsers that are not table-driven.
int config_choice(config_cursor *c, const config_field *f, int *out);

// Parses text onto the struct at cfg, every key from the table (errors name `what`); no check.
int config_fields_parse(void *cfg, const config_field *f, int nf, const char *text, const char *what);
// {"key":value,...} in table order; -1 when it does not fit in n bytes.
int config_fields_to_json(const void *cfg, const config_field *f, int nf, char *out, size_t n);

#endif
