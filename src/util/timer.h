// Wall-clock time and progress lines on stderr (step, rate, ETA). Results never go here.
#ifndef ANOSWIN_UTIL_TIMER_H
#define ANOSWIN_UTIL_TIMER_H

#include <stddef.h>

double now_seconds(void);  // monotonic clock

typedef struct progress {
    const char *label;
    long total;
    double start, last_print;
    int is_tty;
} progress;

void progress_begin(progress *p, const char *label, long total);
// Prints "label  done/total  rate unit/s  ETA mm:ss  extra" at most a few times a second
// (always on the last step). `extra` may be NULL.
void progress_update(progress *p, long done, const char *unit, const char *extra);
void progress_end(progress *p);

// Peak resident set size of this process in bytes (from getrusage).
size_t peak_rss_bytes(void);

#endif
