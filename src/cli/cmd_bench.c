#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

// Placeholder until the command lands; see the issue tracker.
int cmd_bench(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("Usage: anoswin bench [options]\n(not implemented yet)\n");
        return EXIT_OK;
    }
    return cli_usage_error("bench", "not implemented yet");
}
