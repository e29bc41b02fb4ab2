// JSON, the one place anoswin writes and reads it: safetensors headers, checkpoint metadata
// (model config, training options and state), detect summaries, calibrations, reports.
//
// Writing: one string escaper and one number format (the shortest of 15..17 significant digits
// that reads back to the same double, so a threshold written and read again selects the same
// voxels; non-finite numbers become null, which JSON has instead of inf/nan).
//
// Reading is strict, as a parser of untrusted files must be: a cursor that validates the grammar
// before any value is trusted, and errors that name the file and the byte. The key look-ups
// (json_top_*) walk one object's members with that cursor, so a key inside a string or a nested
// object is never mistaken for a member. One extension: the bare tokens inf, -inf and nan are
// read as numbers, because training states written before null replaced them hold them.
#ifndef ANOSWIN_UTIL_JSON_H
#define ANOSWIN_UTIL_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

// ---- writing ----------------------------------------------------------------------------------

// s as a string literal: quotes, backslashes and control characters escaped (NULL writes "").
void json_write_string(FILE *f, const char *s);
// v in the one number format (see above).
void json_write_number(FILE *f, double v);
// The n numbers of v as an array: [a,b,...].
void json_write_numbers(FILE *f, const double *v, int n);

// A JSON text built in memory (metadata values): write to m.f, then json_mem_close copies the
// text into out. Returns -1 when it does not fit in n bytes.
typedef struct json_mem {
    FILE *f;
    char *buf;
    size_t len;
} json_mem;
int json_mem_open(json_mem *m);
int json_mem_close(json_mem *m, char *out, size_t n);

// ---- the strict cursor ------------------------------------------------------------------------

typedef struct json_cur {
    const char *p, *start, *end;
    const char *what;  // the file, for messages
    const char *kind;  // what the text is ("safetensors header"), for messages; NULL: no messages
} json_cur;

void json_cur_init(json_cur *c, const char *text, size_t n, const char *what, const char *kind);
// Records "<what>: bad <kind>: <problem> at byte N" (unless kind is NULL); returns -1.
int json_fail(json_cur *c, const char *problem);
void json_ws(json_cur *c);
int json_expect(json_cur *c, char ch);   // skips blanks, then ch or a failure
int json_peek(json_cur *c, char ch);     // skips blanks; 1 when ch comes next
int json_literal(json_cur *c, const char *lit);  // 0 and consumed when next, -1 (no message)
// A string into a fresh NUL-terminated allocation (every escape, \u as UTF-8; NUL refused).
int json_string(json_cur *c, char **out);
// A non-negative integer (no sign, fraction or exponent), at most 2^62.
int json_uint(json_cur *c, uint64_t *v);
// A number by the JSON grammar (or inf, -inf, nan).
int json_number(json_cur *c, double *v);
// Past any value, nested at most 64 deep.
int json_skip(json_cur *c);

// ---- documents --------------------------------------------------------------------------------

// 0 when text is one JSON value and blanks, else -1 with a message naming `what`.
int json_check(const char *text, const char *what);
// The file as a NUL-terminated string checked with json_check (free it), or NULL with a message.
char *json_read_file(const char *path);

// The value of member `key` of the object at `text` (its first character), or NULL when absent
// or when the members before it are malformed. Works on nested objects too: pass the pointer
// json_top_value returned for the outer key.
const char *json_top_value(const char *text, const char *key);
// Bytes the value at v spans (0 when malformed): a nested object as text.
size_t json_value_len(const char *v);
// Number member: 0 and *out set, or -1 (absent, null or not a number).
int json_top_number(const char *text, const char *key, double *out);
// Unsigned 64-bit member, bare or quoted (the writers quote them: a double cannot hold them).
int json_top_u64(const char *text, const char *key, uint64_t *out);
// true/false member: 0 and *out 1/0, or -1.
int json_top_bool(const char *text, const char *key, int *out);
// String member unescaped into out (truncated to n-1 bytes): 0, or -1 when absent or not a string.
int json_top_string(const char *text, const char *key, char *out, size_t n);
// Array of numbers into out (at most max): the count, or -1 when absent or not numbers.
int json_top_numbers(const char *text, const char *key, double *out, int max);

#endif
