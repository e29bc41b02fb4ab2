// Small JSON helpers for the files anoswin writes and reads back (calibration, summaries):
// string escaping for writers, and a reader that finds a key of the top-level object while
// skipping nested values and strings properly (so "grow" inside a string or a nested object is
// never mistaken for the key).
#ifndef ANOSWIN_UTIL_JSON_H
#define ANOSWIN_UTIL_JSON_H

#include <stdio.h>

// Writes s as a JSON string literal (quotes, backslashes and control characters escaped).
void json_write_string(FILE *f, const char *s);

// The value of top-level key `key` in the object `text` (the first non-blank character after its
// colon), or NULL when absent or when text is not an object.
const char *json_top_value(const char *text, const char *key);
// Number at top-level key: 0 and *out set, or -1 (absent, null or not a number).
int json_top_number(const char *text, const char *key, double *out);
// String at top-level key, unescaped (\" \\ \/ \n \t only; others kept as is) into out (truncated
// to n-1 bytes): 0, or -1 when absent or not a string.
int json_top_string(const char *text, const char *key, char *out, size_t n);
// Array of numbers at top-level key into out (at most max): the count, or -1 when absent or not an
// array of numbers.
int json_top_numbers(const char *text, const char *key, double *out, int max);

#endif
