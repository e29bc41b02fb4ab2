// Command lines that `demo` and `experiment` build for the steps they run (this same
// executable), and the shell-quoted form they print, log and stamp so a user can rerun a step.
#ifndef ANOSWIN_CLI_ARGLIST_H
#define ANOSWIN_CLI_ARGLIST_H

#include <stddef.h>

typedef struct arglist {
    char *v[80];  // NULL-terminated, ready for execv
    int n;
} arglist;

void arg_add(arglist *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void arg_free(arglist *a);
// "anoswin <args>", each argument shell-quoted where needed.
void arg_line(const arglist *a, char *out, size_t n);

#endif
