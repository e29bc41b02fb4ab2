// The one step runner of the recipes (demo.h, experiment.h). A recipe is a list of steps, each
// a command line of THIS executable (arglist.h) that a user could type. A step that finished
// writes DIR/stamps/<name>.txt: its command line, then "seconds S" (and "stopped-by-time-bound"
// when a time limit stopped it); the stamp is written last, so an interrupted step is redone. A
// later run reuses a step whose stamp holds the same command line.
#ifndef ANOSWIN_RECIPE_STEP_H
#define ANOSWIN_RECIPE_STEP_H

#include <stddef.h>
#include <stdio.h>

#include "recipe/arglist.h"

enum { STEP_RAN = 0, STEP_REUSED = 1, STEP_FAILED = 2 };
enum { STEP_MAX = 128 };

typedef struct step_runner {
    const char *dir;       // the recipe's folder: DIR/stamps/
    const char *who;       // message prefix ("demo", "experiment")
    int reuse;             // 1: a step with a matching stamp is skipped
    int chain;             // 1: once a step ran, every later step runs too (their inputs changed)
    int any_threads;       // 1: stamps match apart from "--threads N" (results do not depend on it)
    int numbered;          // 1: "[k/n] name" headers (n = nsteps) with the recipe's elapsed time
    int nsteps;
    FILE *log;             // NULL, or every command line is appended (and reused ones marked)
    int keep_output;       // 1: a step's stdout goes to DIR/logs/<name>.stdout.txt and a running
                           // step leaves DIR/stamps/<name>.started (its command line)
    const char *resume_hint;  // added to the message when a step is interrupted (may be NULL)
    // what happened
    double t_start;
    int ran_any, nrun, nreused, step;
    const char *step_name[STEP_MAX];
    double step_seconds[STEP_MAX];
    int reused[STEP_MAX];
} step_runner;

typedef struct step_spec {
    const char *name;
    const arglist *args;
    const char *const *outputs;  // NULL-terminated folders/files removed before a run (may be NULL)
    const char *stdout_path;     // the step's stdout (NULL: keep_output's log, else ours)
    double time_limit;           // > 0: SIGTERM after that many seconds (the step then saves)
    int force;                   // an input of the step was just redone: its stamp cannot be trusted
} step_spec;

// Runs (or reuses) one step. Returns STEP_RAN or STEP_REUSED; STEP_FAILED when the child failed
// (*exit_code set, message recorded); -1 when it could not run or was interrupted (message).
// timed_out (may be NULL): set when the time limit stopped the step (also for a reused step).
int step_run(step_runner *r, const step_spec *s, int *exit_code, int *timed_out);

// DIR/stamps/<name>.<ext>.
void step_stamp_path(char *out, size_t n, const step_runner *r, const char *name, const char *ext);
// The first line of a file ("" when absent): a stamp's command line.
void step_first_line(const char *path, char *line, size_t n);
// Two command lines do the same work (with any_threads: equal apart from "--threads N").
int step_same_command(const char *a, const char *b, int any_threads);

#endif
