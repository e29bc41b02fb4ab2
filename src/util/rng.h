// Seeded, platform-independent random numbers (xoshiro256**, seeded by splitmix64).
// Every random choice in anoswin goes through this so that a seed reproduces a run.
#ifndef ANOSWIN_UTIL_RNG_H
#define ANOSWIN_UTIL_RNG_H

#include <stdint.h>

typedef struct rng { uint64_t s[4]; } rng;

void rng_seed(rng *r, uint64_t seed);
// An independent stream derived from (seed, stream id), e.g. one per subject or per rank.
void rng_seed_stream(rng *r, uint64_t seed, uint64_t stream);
uint64_t rng_u64(rng *r);
double rng_uniform(rng *r);                 // [0, 1)
double rng_uniform_range(rng *r, double lo, double hi);
uint32_t rng_below(rng *r, uint32_t n);     // uniform integer in [0, n), unbiased
double rng_normal(rng *r);                  // standard normal
void rng_permutation(rng *r, int *perm, int n);  // uniform random permutation of 0..n-1

#endif
