#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libgen.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/error.h"
#include "util/fs.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"info", cmd_info, "describe a NIfTI file or the model's tensors"},
    {"data", cmd_data, "build the embedded synthetic data set (data synth)"},
    {"prep", cmd_prep, "raw scans to the template grid: registration, skull stripping, resampling"},
    {"train", cmd_train, "train the Swin MAE on healthy scans"},
    {"reconstruct", cmd_reconstruct, "reconstruct a slice or volume under a given mask"},
    {"calibrate", cmd_calibrate, "detection thresholds from healthy scans"},
    {"detect", cmd_detect, "anomaly maps and lesion masks for new scans"},
    {"eval", cmd_eval, "Dice, AUPRC and AUROC against ground truth"},
    {"latent", cmd_latent, "the paper's latent-space analysis (Figure 3): UMAP of healthy vs lesion"},
    {"bench", cmd_bench, "measure speed and memory against the PyTorch reference"},
    {"demo", cmd_demo, "synthesise data, train, detect and evaluate end to end"},
    {"experiment", cmd_experiment, "run the paper's Table 1 / Table 2 experiments"},
};
enum { NUM_COMMANDS = sizeof commands / sizeof commands[0] };

static void print_help(FILE *f) {
    fprintf(f,
            "anoswin %s - unsupervised anomaly detection in brain MRI with a Swin masked autoencoder\n\n"
            "Usage: anoswin <command> [options]\n\nCommands:\n",
            ANOSWIN_VERSION);
    for (int i = 0; i < NUM_COMMANDS; i++) fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f,
            "\nOptions:\n  -h, --help     show this help\n  -V, --version  show the version\n\n"
            "Run 'anoswin <command> --help' for a command's options.\n");
}

int cli_report_error(void) {
    const char *msg = as_error();
    fprintf(stderr, "anoswin: %s\n", msg[0] ? msg : "unknown error");
    return EXIT_BAD_INPUT;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "anoswin %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'anoswin %s --help'.\n", cmd);
    return EXIT_USAGE;
}

int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out) {
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) {
        cli_usage_error(cmd, "--%s: expected an integer in [%ld, %ld], got '%s'", opt, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_double(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out) {
    char *end = NULL;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= lo && v <= hi)) {
        cli_usage_error(cmd, "--%s: expected a number in [%g, %g], got '%s'", opt, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_append_settings(const char *cmd, const char *opt, char *list, size_t n, const char *s) {
    size_t w = strlen(list);
    if (w + strlen(s) + 2 > n) {
        cli_usage_error(cmd, "--%s: too long", opt);
        return -1;
    }
    snprintf(list + w, n - w, "%s%s", w ? "," : "", s);
    return 0;
}

int cli_find_source_file(const char *rel, char *out, size_t n) {
    const char *src = getenv("ANOSWIN_SOURCE_DIR");
    if (src) {
        fs_join(out, n, src, rel);
        if (fs_exists(out)) return 0;
    }
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = 0;
        char *dir = dirname(exe);
        const char *ups[] = {"..", "../..", "../share/anoswin"};
        for (int i = 0; i < 3; i++) {
            char base[4200];
            fs_join(base, sizeof base, dir, ups[i]);
            fs_join(out, n, base, rel);
            if (fs_exists(out)) return 0;
        }
    }
    fs_join(out, n, ".", rel);
    return fs_exists(out) ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        print_help(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "-h") || !strcmp(name, "--help") || !strcmp(name, "help")) {
        print_help(stdout);
        return EXIT_OK;
    }
    if (!strcmp(name, "-V") || !strcmp(name, "--version")) {
        printf("anoswin %s\n", ANOSWIN_VERSION);
        return EXIT_OK;
    }
    for (int i = 0; i < NUM_COMMANDS; i++)
        if (!strcmp(name, commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "anoswin: unknown command '%s'\nTry 'anoswin --help'.\n", name);
    return EXIT_USAGE;
}
