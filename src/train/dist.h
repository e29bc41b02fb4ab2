// Data-parallel training across processes with MPI: the only place anoswin talks to MPI.
//
// `mpirun -np N anoswin train ...` starts N ranks; each one computes the gradient of its share
// of every global batch, the gradients are summed with MPI_Allreduce, and every rank applies
// the same AdamW step (trainer.c says how the loss is weighted so that N ranks x batch b equal
// one process with batch N*b). Rank 0 alone writes files.
//
// Without MPI (built with -DANOSWIN_MPI=OFF, ANOSWIN_WITH_MPI undefined) or without a launcher
// (no OMPI_COMM_WORLD_SIZE / PMIX_RANK / PMI_RANK in the environment) every function below is a
// no-op with rank 0 of 1, and MPI is never initialised: the binary trains exactly as before.
//
// Failure policy: MPI errors are fatal (MPI_ERRORS_ARE_FATAL aborts the whole job with MPI's
// message). A rank that dies makes mpirun kill the others. A rank that hangs (e.g. a stalled
// file system) is caught by a watchdog: once armed (dist_watchdog_arm), any collective that
// waits longer than ANOSWIN_MPI_TIMEOUT seconds (default 900; 0 = never) prints which rank
// waited on what and exits that rank with status 3, which makes mpirun end the job.
#ifndef ANOSWIN_TRAIN_DIST_H
#define ANOSWIN_TRAIN_DIST_H

#include <stddef.h>
#include <stdint.h>

// Initialises MPI when launched by an MPI launcher. Returns 0, or -1 with an error (launched by
// mpirun with N > 1 but built without MPI). Safe to call more than once.
int dist_init(void);
int dist_rank(void);  // 0 when not distributed
int dist_size(void);  // 1 when not distributed
int dist_is_root(void);
// Finalises MPI (after every rank's last collective). The watchdog is stopped first.
void dist_finalize(void);
// Ends the whole job at once with status `code` (MPI_Abort; exit(code) when not distributed).
// Use when this rank cannot go on but others may be waiting in a collective.
void dist_abort(int code) __attribute__((noreturn));

// Collectives (every rank must call them in the same order). `what` names the call in the
// watchdog's message.
void dist_allreduce_sum_f32(float *buf, size_t n, const char *what);  // in place
void dist_allreduce_sum_f64(double *buf, int n, const char *what);    // in place
void dist_allreduce_max_i32(int *buf, int n, const char *what);       // in place
void dist_bcast(void *buf, size_t bytes, int root, const char *what);
void dist_barrier(const char *what);
// 1 when v is the same on every rank.
int dist_all_equal_u64(uint64_t v, const char *what);

// From now on collectives are timed by the watchdog (not before: data loading may take long
// and unevenly on different ranks).
void dist_watchdog_arm(void);

// Seconds this rank spent inside collectives so far (waiting for slower ranks included).
double dist_comm_seconds(void);

// FNV-1a over the bits of a float buffer (the check that ranks hold identical parameters).
uint64_t dist_checksum_f32(const float *x, size_t n);

#endif
