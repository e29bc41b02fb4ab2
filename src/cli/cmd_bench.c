#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

// Placeholder until the command lands; see the issue tracker.
int cmd_bench(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("Usage: anoswin bench detect [options]\n(bench train: not implemented yet)\n");
        return EXIT_OK;
    }
    if (argc > 1 && !strcmp(argv[1], "detect")) return bench_detect(argc - 1, argv + 1);
    return cli_usage_error("bench", "not implemented yet");
}
