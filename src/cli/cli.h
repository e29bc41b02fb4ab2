// The anoswin command line: one function per subcommand, each in src/cli/cmd_<name>.c.
// Exit codes: 0 success, 1 bad input ("anoswin: <file>: <what is wrong>"), 2 usage error.
#ifndef ANOSWIN_CLI_H
#define ANOSWIN_CLI_H

#include <stddef.h>

enum { EXIT_OK = 0, EXIT_BAD_INPUT = 1, EXIT_USAGE = 2 };

int cmd_info(int argc, char **argv);
// info helpers in src/cli/info_model.c: the model's tensor table (exit status), and a listing
// of any safetensors file (0 / -1 with the error recorded).
int info_model(const char *method, const char *config, const char *checkpoint);
int info_safetensors(const char *path);
int cmd_data(int argc, char **argv);
int cmd_prep(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_reconstruct(int argc, char **argv);
int cmd_detect(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);  // src/cli/cmd_detect.c: detect's map options
int cmd_eval(int argc, char **argv);
int cmd_latent(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_experiment(int argc, char **argv);
// `anoswin bench detect` (src/cli/bench_detect.c), dispatched by cmd_bench.
int bench_detect(int argc, char **argv);

// Prints "anoswin: <as_error()>" and returns EXIT_BAD_INPUT.
int cli_report_error(void);
// Prints "anoswin <cmd>: <message>\nTry 'anoswin <cmd> --help'." and returns EXIT_USAGE.
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Strict number parsing for option values: the whole string must parse and lie in [lo, hi];
// otherwise a usage error naming the option is printed and -1 returned.
int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);
int cli_parse_double(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out);
// A repeatable "K=V,..." option (--model-set): appends s to list (n bytes) after a comma; a usage
// error naming the option and -1 when it does not fit.
int cli_append_settings(const char *cmd, const char *opt, char *list, size_t n, const char *s);

// Finds a file shipped in the source tree (e.g. "bench/torch_train_step.py"): under
// $ANOSWIN_SOURCE_DIR, else next to the executable's tree (.., ../.., ../share/anoswin), else
// under ./. Returns 0 and the path in out, or -1 when it is nowhere.
int cli_find_source_file(const char *rel, char *out, size_t n);

#endif
