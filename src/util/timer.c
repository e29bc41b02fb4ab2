#include "util/timer.h"

#include <stdio.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void progress_begin(progress *p, const char *label, long total) {
    p->label = label;
    p->total = total;
    p->start = now_seconds();
    p->last_print = 0.0;
    p->is_tty = isatty(2);
}

static void format_duration(char *buf, size_t n, double s) {
    if (s < 0 || s > 1e7) {
        snprintf(buf, n, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else
        snprintf(buf, n, "%02ld:%02ld", t / 60, t % 60);
}

void progress_update(progress *p, long done, const char *unit, const char *extra) {
    double t = now_seconds();
    int last = done >= p->total;
    // Not a terminal (a log file, CI): print less often so logs stay readable.
    double every = p->is_tty ? 0.25 : 5.0;
    if (!last && t - p->last_print < every) return;
    p->last_print = t;
    double elapsed = t - p->start;
    double rate = elapsed > 0 ? (double)done / elapsed : 0.0;
    char eta[32], took[32];
    format_duration(eta, sizeof eta, rate > 0 ? (double)(p->total - done) / rate : -1);
    format_duration(took, sizeof took, elapsed);
    fprintf(stderr, "%s%s %ld/%ld  %.2f %s/s  elapsed %s  ETA %s%s%s%s", p->is_tty ? "\r\033[K" : "", p->label,
            done, p->total, rate, unit ? unit : "it", took, eta, extra ? "  " : "", extra ? extra : "",
            p->is_tty ? "" : "\n");
    fflush(stderr);
}

void progress_end(progress *p) {
    if (p->is_tty) fputc('\n', stderr);
}

size_t peak_rss_bytes(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (size_t)ru.ru_maxrss * 1024;  // Linux reports kilobytes
}
