// The experiment recipe: the paper's Table 1 or 2 on the user's data for one or more methods
// (train or reuse each method's models with its own recipe, model.h model_recipe; detect with
// each data set's post-processing preset; evaluate; one combined report with the paper's numbers
// beside ours), every step a command line of this executable run by the recipes' step runner
// (step.h). See `anoswin experiment --help`.
#ifndef ANOSWIN_RECIPE_EXPERIMENT_H
#define ANOSWIN_RECIPE_EXPERIMENT_H

enum { SET_BRATS, SET_MSLUB, SET_WMH, NSETS };
enum { EXP_MAX_METHODS = 8 };

typedef struct experiment_options {
    int table;                 // 1 or 2
    const char *ixi;           // healthy IXI scans (training)
    const char *sets[NSETS];   // test data sets (NULL: rows skipped)
    const char *out;           // RUN folder
    int reuse;                 // reuse finished steps (and trained models) of an earlier run
    const char *methods[EXP_MAX_METHODS];  // method tags, in report order
    int nmethods;                          // 0: the default method alone
    // Each method's model config: a JSON file, JSON or key=value text, or the name of one of the
    // method's presets (NULL: the method's default).
    const char *configs[EXP_MAX_METHODS];
    long epochs, batch;        // <= 0: each method's recipe
    long max_steps;            // <= 0: none
    int masks[8], nmasks;      // sliding mask sizes
    int train_slices[2];       // RAS axial range for training ([0] < 0: train's default)
    int test_slices[2];        // RAS axial range detected and scored ([0] < 0: detect's default)
    double val_share;          // share of each test set's labelled subjects in the validation split
    long bootstrap;            // < 0: eval's default
    long seed, threads;        // threads <= 0: all cores
} experiment_options;

// Runs the recipe; the report goes to RUN/report.* and its table to stdout. Returns 0, 1 when
// some step failed (the other rows are still reported), or -1 with an error (after a SIGINT or
// SIGTERM, arg_interrupted() says which).
int experiment_run(const experiment_options *o);

#endif
