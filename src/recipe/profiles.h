// The profiles recipe, `anoswin experiment profiles`: one trained checkpoint (any method) on the
// synthetic tuning material the detection defaults were chosen on (docs/detection.md): healthy
// calibration scans (data synth seed 5001) and one lesion set per profile of `data synth
// --profile` (seeds 6001.. in profile order, `none` = lesion-free scans), detected with the demo's
// map settings (demo_map_options: a whole-image method, found from the checkpoint's method tag, gets
// no window) and detect's calibrated default, evaluated per volume, one table per profile. It
// puts any method on the footing of the README's per-profile table: train it with `anoswin demo
// --method M` (the demo's data and budget), then run this on OUT/train/last.safetensors.
// These are tuning sets: their numbers compare methods and settings; they are not test results.
#ifndef ANOSWIN_RECIPE_PROFILES_H
#define ANOSWIN_RECIPE_PROFILES_H

typedef struct profiles_options {
    const char *checkpoint;  // the model to evaluate
    const char *out;         // RUN folder
    const char *precision;   // "fp32" or "bf16" (NULL: bf16 where the CPU has AVX512-BF16)
    int small;               // the demo's --small map settings and one subject per profile (tests)
    int subjects;            // lesion subjects per profile (0: 4, --small 1); the first 4 of a larger
                             // set are the 4-subject set's (data synth seeds each subject by its index)
    const char *model_set;   // inference settings over the checkpoint's config ("K=V,..."; NULL: none),
                             // given to calibrate and detect (e.g. autoDDPM's sampler)
    int reuse;               // reuse finished steps of an earlier run in RUN with the same options
    long threads, seed;      // seed: eval's bootstrap
} profiles_options;

// Runs the recipe; the table goes to RUN/profiles.{md,csv} and stdout. Returns 0, 1 when some
// profile's step failed (the others are still reported), or -1 with an error.
int profiles_run(const profiles_options *o);

#endif
