// The paper's published numbers (Tables 1 and 2), keyed by the engine's method tags, so that
// `anoswin experiment` prints them beside ours for every method the paper reports, including
// methods registered later (a method the paper does not report simply has none).
#ifndef ANOSWIN_RECIPE_PAPER_H
#define ANOSWIN_RECIPE_PAPER_H

// Percent, million parameters, seconds per slice on the paper's A100; NAN = not reported.
typedef struct paper_numbers {
    double dice, auprc, params_m, s_per_slice;
} paper_numbers;

// The numbers of `method` (a tag: "swinmae", "vae", ...) in table 1 or 2 for a model trained on
// IXI <train_mod> and tested on <set> <test_mod> ("brats21", "mslub", "wmh"; "t1", "t2",
// "flair") with sliding mask `mask` px (0 for methods without one). All NAN when not reported.
paper_numbers paper_lookup(const char *method, int table, const char *train_mod, const char *set,
                           const char *test_mod, int mask);
// The paper's name of a method ("Ano-swinMAE", "VAE (Baur et al. 2021b)"), or NULL when the
// paper does not report it.
const char *paper_method_name(const char *method);
// Where a method's numbers come from and how they were evaluated, as far as the paper says.
const char *paper_protocol(const char *method);

#endif
