// The template `anoswin prep` registers to and resamples onto: a T1 head (with skull: the
// subject's skull helps the registration) and its brain mask, on the output grid.
#ifndef ANOSWIN_PREP_TEMPLATE_H
#define ANOSWIN_PREP_TEMPLATE_H

#include <stdint.h>

#include "data/volume.h"

typedef struct prep_template {
    volume head;     // the template T1; its grid and geometry are the output's
    uint8_t *brain;  // brain mask on that grid (0/1)
    char head_path[1024], mask_path[1024];
} prep_template;

// head_path NULL: the default, Colin27 (SYNTH_HEAD_TEMPLATE with skull, its brain from
// SYNTH_DEFAULT_TEMPLATE > 0) placed on the 240x240x155 1 mm grid exactly as `data synth` places
// it (synth_template_placement), so prepared scans share the synthetic data's grid. Otherwise
// head_path and mask_path (brain mask, > 0 = brain, on the head's grid; e.g. SRI24's T1 and
// brain mask) are used as they are.
int prep_template_load(prep_template *t, const char *head_path, const char *mask_path);
void prep_template_free(prep_template *t);

#endif
