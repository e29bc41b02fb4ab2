#include "train/dist.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/error.h"  // as_fail
#include "util/timer.h"  // now_seconds

#ifdef ANOSWIN_WITH_MPI
#include <mpi.h>
#endif

static int g_inited, g_rank, g_size = 1;
#ifdef ANOSWIN_WITH_MPI
static int g_mpi;  // MPI_Init was called (launched by mpirun with more than one rank)
#endif

// Launched by an MPI launcher? (Open MPI's mpirun, PMIx launchers such as srun --mpi=pmix,
// MPICH's hydra / PMI-2.) Decided from the environment so that a plain run never touches MPI
// (an Open MPI singleton init can be slow or fail in containers).
static int launcher_size(void) {
    const char *keys[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        const char *v = getenv(keys[k]);
        if (v && atoi(v) > 0) return atoi(v);
    }
    return getenv("PMIX_RANK") || getenv("PMI_RANK") ? 2 : 1;  // size unknown but launched
}

// ---- watchdog --------------------------------------------------------------------------------
// A thread that checks once a second whether this rank has waited in one collective for longer
// than the timeout. It never calls MPI (MPI is initialised FUNNELED): it reports and _exits,
// and mpirun then ends the job because a rank died.

static atomic_long g_wait_since_ms;  // 0: not in a collective
static const char *_Atomic g_wait_what;
static atomic_int g_armed, g_quit;
static double g_timeout = 900.0;
static pthread_t g_watchdog;
static int g_watchdog_running;

static long now_ms(void) { return (long)(now_seconds() * 1000.0) + 1; }

static void *watchdog_main(void *arg) {
    (void)arg;
    while (!atomic_load(&g_quit)) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
        long since = atomic_load(&g_wait_since_ms);
        if (!atomic_load(&g_armed) || since == 0) continue;
        double waited = (double)(now_ms() - since) / 1000.0;
        if (waited > g_timeout) {
            const char *what = atomic_load(&g_wait_what);
            fprintf(stderr,
                    "anoswin: rank %d of %d: no answer from the other ranks for %.0f s in %s (a rank is stuck or "
                    "gone; ANOSWIN_MPI_TIMEOUT=%.0f); ending the job\n",
                    g_rank, g_size, waited, what ? what : "a collective", g_timeout);
            fflush(stderr);
            _exit(3);
        }
    }
    return NULL;
}

static double g_comm_seconds, g_comm_t0;

static __attribute__((unused)) void wait_begin(const char *what) {
    atomic_store(&g_wait_what, what);
    atomic_store(&g_wait_since_ms, now_ms());
    g_comm_t0 = now_seconds();
}

static __attribute__((unused)) void wait_end(void) {
    atomic_store(&g_wait_since_ms, 0);
    g_comm_seconds += now_seconds() - g_comm_t0;
}

double dist_comm_seconds(void) { return g_comm_seconds; }

void dist_watchdog_arm(void) {
    if (g_size <= 1 || g_timeout <= 0) return;
    if (!g_watchdog_running) {
        if (pthread_create(&g_watchdog, NULL, watchdog_main, NULL) != 0) return;  // no watchdog, no harm
        g_watchdog_running = 1;
    }
    atomic_store(&g_armed, 1);
}

// ---- setup -----------------------------------------------------------------------------------

int dist_init(void) {
    if (g_inited) return 0;
    int n = launcher_size();
    const char *t = getenv("ANOSWIN_MPI_TIMEOUT");
    if (t && *t) g_timeout = atof(t);
#ifdef ANOSWIN_WITH_MPI
    if (n > 1) {
        int provided;
        MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
        MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
        MPI_Comm_size(MPI_COMM_WORLD, &g_size);
        g_mpi = 1;
    }
#else
    if (n > 1)
        return as_fail("launched by mpirun with %d ranks, but this anoswin was built without MPI "
                       "(configure with -DANOSWIN_MPI=ON and libopenmpi-dev installed)",
                       n);
#endif
    g_inited = 1;
    return 0;
}

int dist_rank(void) { return g_rank; }
int dist_size(void) { return g_size; }
int dist_is_root(void) { return g_rank == 0; }

static void watchdog_stop(void) {
    if (!g_watchdog_running) return;
    atomic_store(&g_quit, 1);
    pthread_join(g_watchdog, NULL);
    g_watchdog_running = 0;
}

void dist_finalize(void) {
    watchdog_stop();
#ifdef ANOSWIN_WITH_MPI
    if (g_mpi) {
        MPI_Finalize();
        g_mpi = 0;
    }
#endif
    g_inited = 0;
    g_rank = 0;
    g_size = 1;
}

void dist_abort(int code) {
    fflush(stdout);
    fflush(stderr);
#ifdef ANOSWIN_WITH_MPI
    if (g_mpi) MPI_Abort(MPI_COMM_WORLD, code);
#endif
    exit(code);
}

// ---- collectives -----------------------------------------------------------------------------

void dist_allreduce_sum_f32(float *buf, size_t n, const char *what) {
    if (g_size <= 1) return;
#ifdef ANOSWIN_WITH_MPI
    wait_begin(what);
    // MPI counts are int: cut very large buffers into chunks of 2^28 floats (1 GiB).
    for (size_t i = 0; i < n; i += (size_t)1 << 28) {
        size_t c = n - i < ((size_t)1 << 28) ? n - i : ((size_t)1 << 28);
        MPI_Allreduce(MPI_IN_PLACE, buf + i, (int)c, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    }
    wait_end();
#else
    (void)buf, (void)n, (void)what;
#endif
}

void dist_allreduce_sum_f64(double *buf, int n, const char *what) {
    if (g_size <= 1) return;
#ifdef ANOSWIN_WITH_MPI
    wait_begin(what);
    MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    wait_end();
#else
    (void)buf, (void)n, (void)what;
#endif
}

void dist_allreduce_max_i32(int *buf, int n, const char *what) {
    if (g_size <= 1) return;
#ifdef ANOSWIN_WITH_MPI
    wait_begin(what);
    MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    wait_end();
#else
    (void)buf, (void)n, (void)what;
#endif
}

void dist_bcast(void *buf, size_t bytes, int root, const char *what) {
    if (g_size <= 1) return;
#ifdef ANOSWIN_WITH_MPI
    wait_begin(what);
    for (size_t i = 0; i < bytes; i += (size_t)1 << 30) {
        size_t c = bytes - i < ((size_t)1 << 30) ? bytes - i : ((size_t)1 << 30);
        MPI_Bcast((char *)buf + i, (int)c, MPI_BYTE, root, MPI_COMM_WORLD);
    }
    wait_end();
#else
    (void)buf, (void)bytes, (void)root, (void)what;
#endif
}

void dist_barrier(const char *what) {
    if (g_size <= 1) return;
#ifdef ANOSWIN_WITH_MPI
    wait_begin(what);
    MPI_Barrier(MPI_COMM_WORLD);
    wait_end();
#else
    (void)what;
#endif
}

int dist_all_equal_u64(uint64_t v, const char *what) {
    if (g_size <= 1) return 1;
    int same = 1;
#ifdef ANOSWIN_WITH_MPI
    uint64_t mm[2] = {v, ~v};  // max(v) and max(~v) = ~min(v)
    wait_begin(what);
    MPI_Allreduce(MPI_IN_PLACE, mm, 2, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    wait_end();
    same = mm[0] == ~mm[1];
#else
    (void)v, (void)what;
#endif
    return same;
}

uint64_t dist_checksum_f32(const float *x, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        uint32_t w;
        memcpy(&w, x + i, sizeof w);
        h = (h ^ w) * 0x100000001b3ULL;
    }
    return h;
}
