// Command lines that `demo` and `experiment` build for the steps they run (this same
// executable), the shell-quoted form they print, log and stamp so a user can rerun a step, and
// running them.
#ifndef ANOSWIN_RECIPE_ARGLIST_H
#define ANOSWIN_RECIPE_ARGLIST_H

#include <stddef.h>

typedef struct arglist {
    char *v[80];  // NULL-terminated, ready for execv
    int n;
} arglist;

void arg_add(arglist *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void arg_free(arglist *a);
// "anoswin <args>", each argument shell-quoted where needed.
void arg_line(const arglist *a, char *out, size_t n);

// Runs this executable (/proc/self/exe) as "anoswin <a>" and waits. stdout_path: the child's
// stdout goes to that file (NULL: ours; stderr, with its progress, stays ours). time_limit > 0:
// after that many seconds the child gets SIGTERM (training stops after its current step and
// saves) and *timed_out is set; exit status 143 is then a success. Returns the child's exit
// status (128 + signal when killed), or -1 (as_fail) when it could not run.
int arg_run(const arglist *a, const char *stdout_path, double time_limit, int *timed_out);
// on = 1: SIGINT and SIGTERM are caught (arg_interrupted() then returns the signal) and a
// SIGTERM is passed on to the running step so that it can save; the child shares the terminal's
// process group and gets Ctrl-C itself. on = 0: the handlers from before are restored.
void arg_catch_signals(int on);
int arg_interrupted(void);

#endif
