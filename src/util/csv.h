// CSV fields for the files anoswin writes (manifests, report tables, experiment tables), so that
// every table reads back the same in the manifest reader (data/dataset.c), Python and spreadsheets.
// The writers put no separators: callers write ',' and '\n'. csv_split reads a line back.
#ifndef ANOSWIN_UTIL_CSV_H
#define ANOSWIN_UTIL_CSV_H

#include <stdio.h>

// s, quoted (quotes doubled) when a reader would otherwise split it (',' '"' line breaks) or
// trim it (leading or trailing blanks); NULL writes an empty field.
void csv_write_field(FILE *f, const char *s);
// v in JSON's number format (util/json.h), empty when not finite: a blank cell, not "nan".
void csv_write_number(FILE *f, double v);
// v with `decimals` digits after the point (tables meant for people), empty when not finite.
void csv_write_fixed(FILE *f, double v, int decimals);
// Splits one CSV line (RFC 4180 quotes, as the writers above make them) into at most `max`
// fields, in place: the fields point into `line`. Returns the count.
int csv_split(char *line, char **fields, int max);

#endif
