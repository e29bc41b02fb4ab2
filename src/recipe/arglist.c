#include "recipe/arglist.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/error.h"
#include "util/timer.h"

void arg_add(arglist *a, const char *fmt, ...) {
    if (a->n >= (int)(sizeof a->v / sizeof a->v[0]) - 2) abort();  // our own command lines are short
    va_list ap;
    va_start(ap, fmt);
    char buf[4096];
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    a->v[a->n++] = as_strdup(buf);
    a->v[a->n] = NULL;
}

void arg_free(arglist *a) {
    for (int i = 0; i < a->n; i++) free(a->v[i]);
    a->n = 0;
}

void arg_line(const arglist *a, char *out, size_t n) {
    size_t k = (size_t)snprintf(out, n, "anoswin");
    for (int i = 0; i < a->n && k + 4 < n; i++) {
        const char *s = a->v[i];
        int plain = *s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=./:,+@%") ==
                              strlen(s);
        if (plain) k += (size_t)snprintf(out + k, n - k, " %s", s);
        else {
            k += (size_t)snprintf(out + k, n - k, " '");
            for (; *s && k + 6 < n; s++) {
                if (*s == '\'') k += (size_t)snprintf(out + k, n - k, "'\\''");
                else out[k++] = *s, out[k] = 0;
            }
            k += (size_t)snprintf(out + k, n - k, "'");
        }
        if (k >= n) {
            out[n - 1] = 0;
            return;
        }
    }
}

// ---- running a step ---------------------------------------------------------------------------
static volatile sig_atomic_t arg_signal = 0;
static volatile pid_t arg_child = 0;
static struct sigaction arg_saved[2];

static void arg_on_signal(int sig) {
    arg_signal = sig;
    if (arg_child > 0 && sig == SIGTERM) kill(arg_child, SIGTERM);
}

void arg_catch_signals(int on) {
    if (on) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = arg_on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, &arg_saved[0]);
        sigaction(SIGTERM, &sa, &arg_saved[1]);
    } else {
        sigaction(SIGINT, &arg_saved[0], NULL);
        sigaction(SIGTERM, &arg_saved[1], NULL);
    }
}

int arg_interrupted(void) { return (int)arg_signal; }

int arg_run(const arglist *a, const char *stdout_path, double time_limit, int *timed_out) {
    if (timed_out) *timed_out = 0;
    fflush(stdout);
    fflush(stderr);
    char *argv[sizeof a->v / sizeof a->v[0] + 1];
    argv[0] = "anoswin";
    for (int i = 0; i <= a->n; i++) argv[i + 1] = a->v[i];
    pid_t pid = fork();
    if (pid < 0) return as_fail("fork: %s", strerror(errno));
    if (pid == 0) {
        if (stdout_path) {
            int fd = open(stdout_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0 || dup2(fd, 1) < 0) {
                fprintf(stderr, "anoswin: %s: %s\n", stdout_path, strerror(errno));
                _exit(1);
            }
            close(fd);
        }
        execv("/proc/self/exe", argv);
        fprintf(stderr, "anoswin: /proc/self/exe: %s\n", strerror(errno));
        _exit(127);
    }
    arg_child = pid;
    double t0 = now_seconds();
    int status = 0, sent = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, time_limit > 0 && !sent ? WNOHANG : 0);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) {
            arg_child = 0;
            return as_fail("waitpid: %s", strerror(errno));
        }
        if (r == 0) {
            if (now_seconds() - t0 >= time_limit) {
                fprintf(stderr, "training reached the %.1f-minute bound: stopping after the current step\n",
                        time_limit / 60);
                kill(pid, SIGTERM);
                sent = 1;
                if (timed_out) *timed_out = 1;
            } else {
                struct timespec ts = {0, 200000000};
                nanosleep(&ts, NULL);
            }
        }
    }
    arg_child = 0;
    if (WIFEXITED(status)) {
        int rc = WEXITSTATUS(status);
        return sent && rc == 128 + SIGTERM ? 0 : rc;
    }
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 1;
}
