// The recipes' step runner (see step.h).
#include "recipe/step.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "util/fs.h"
#include "util/timer.h"

void step_stamp_path(char *out, size_t n, const step_runner *r, const char *name, const char *ext) {
    char dir[4096], file[512];
    fs_join(dir, sizeof dir, r->dir, "stamps");
    snprintf(file, sizeof file, "%s.%s", name, ext);
    fs_join(out, n, dir, file);
}

void step_first_line(const char *path, char *line, size_t n) {
    line[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    if (fgets(line, (int)n, f)) line[strcspn(line, "\n")] = 0;
    fclose(f);
}

static void drop_threads(char *s) {
    char *p;
    while ((p = strstr(s, " --threads "))) {
        char *q = p + 11;
        while (*q && *q != ' ') q++;
        memmove(p, q, strlen(q) + 1);
    }
}

int step_same_command(const char *a, const char *b, int any_threads) {
    if (!any_threads) return !strcmp(a, b);
    char *x = as_strdup(a), *y = as_strdup(b);
    drop_threads(x);
    drop_threads(y);
    int same = !strcmp(x, y);
    free(x);
    free(y);
    return same;
}

// A reused step: its time and whether a time limit stopped it, from its stamp.
static int reuse_step(step_runner *r, const step_spec *s, int k, const char *stamp, const char *line,
                      int *timed_out) {
    if (r->numbered)
        fprintf(stderr, "\n[%d/%d] %s: reusing the finished step (%s; --force redoes it)\n", k + 1, r->nsteps,
                s->name, stamp);
    else
        fprintf(stderr, "%s: %s: reusing the finished step (%s)\n", r->who, s->name, stamp);
    if (r->log) {
        fprintf(r->log, "# %s (reused: finished earlier with this command)\n%s\n\n", s->name, line);
        fflush(r->log);
    }
    r->reused[k] = 1;
    r->nreused++;
    if (timed_out) *timed_out = 0;
    FILE *f = fopen(stamp, "r");
    if (f) {
        char buf[8192];
        while (fgets(buf, sizeof buf, f)) {
            if (!strncmp(buf, "seconds ", 8)) r->step_seconds[k] = atof(buf + 8);
            if (!strncmp(buf, "stopped-by-time-bound", 21) && timed_out) *timed_out = 1;
        }
        fclose(f);
    }
    return STEP_REUSED;
}

// Where the step's stdout goes ("" : ours), its folder created (an output just removed may hold it).
static int stdout_target(const step_runner *r, const step_spec *s, char *out, size_t n) {
    out[0] = 0;
    if (s->stdout_path) {
        snprintf(out, n, "%s", s->stdout_path);
        char parent[4200];
        snprintf(parent, sizeof parent, "%s", s->stdout_path);
        char *slash = strrchr(parent, '/');
        if (slash && slash != parent) {
            *slash = 0;
            if (fs_mkdirs(parent)) return -1;
        }
    } else if (r->keep_output) {
        char logdir[4096], fname[512];
        fs_join(logdir, sizeof logdir, r->dir, "logs");
        if (fs_mkdirs(logdir)) return -1;
        snprintf(fname, sizeof fname, "%s.stdout.txt", s->name);
        fs_join(out, n, logdir, fname);
    }
    return 0;
}

int step_run(step_runner *r, const step_spec *s, int *exit_code, int *timed_out) {
    char line[16384], stamp[4200], started[4200], old[16384], dir[4096], out[4200], text[16500];
    arg_line(s->args, line, sizeof line);
    step_stamp_path(stamp, sizeof stamp, r, s->name, "txt");
    step_stamp_path(started, sizeof started, r, s->name, "started");
    step_first_line(stamp, old, sizeof old);
    if (exit_code) *exit_code = 0;
    if (r->step >= STEP_MAX) return as_fail("%s: more than %d steps", r->who, STEP_MAX);
    int k = r->step++;
    r->step_name[k] = s->name;
    if (r->reuse && !s->force && !(r->chain && r->ran_any) && step_same_command(old, line, r->any_threads))
        return reuse_step(r, s, k, stamp, line, timed_out);

    r->ran_any = 1;
    fs_join(dir, sizeof dir, r->dir, "stamps");
    if (fs_mkdirs(dir)) return -1;
    remove(stamp);
    for (int i = 0; s->outputs && s->outputs[i]; i++)
        if (fs_remove_tree(s->outputs[i])) return -1;
    if (stdout_target(r, s, out, sizeof out)) return -1;
    if (r->keep_output) {
        int m = snprintf(text, sizeof text, "%s\n", line);
        if (fs_write_all(started, text, (size_t)m)) return -1;
    }
    if (r->log) {
        fprintf(r->log, "# %s\n%s\n\n", s->name, line);
        fflush(r->log);
    }
    if (r->numbered)
        fprintf(stderr, "\n[%d/%d] %s (%s elapsed %.0f s)\n  $ %s\n", k + 1, r->nsteps, s->name, r->who,
                now_seconds() - r->t_start, line);
    else
        fprintf(stderr, "\n%s: %s\n  $ %s\n", r->who, s->name, line);
    double t0 = now_seconds();
    int rc = arg_run(s->args, out[0] ? out : NULL, s->time_limit, timed_out);
    if (rc < 0) return -1;
    if (arg_interrupted() || rc == 130 || rc == 143) {  // stopped by the user: no further step
        if (r->resume_hint)
            return as_fail("%s: interrupted during %s (exit %d); %s", r->who, s->name, rc, r->resume_hint);
        return as_fail("%s: interrupted during %s", r->who, s->name);
    }
    if (rc != 0) {
        if (exit_code) *exit_code = rc;
        if (out[0] && !s->stdout_path)
            as_fail("%s: step %s failed (exit %d; its output: %s): %s", r->who, s->name, rc, out, line);
        else
            as_fail("%s: step '%s' failed (exit %d): %s", r->who, s->name, rc, line);
        return STEP_FAILED;
    }
    r->step_seconds[k] = now_seconds() - t0;
    int m = snprintf(text, sizeof text, "%s\nseconds %.1f\n%s", line, r->step_seconds[k],
                     timed_out && *timed_out ? "stopped-by-time-bound\n" : "");
    if (fs_write_all(stamp, text, (size_t)m)) return -1;
    if (r->keep_output) remove(started);
    r->nrun++;
    return STEP_RAN;
}
