// Detects lesions in one scan through libanoswin's public header alone (include/anoswin.h):
//
//   detect_one CHECKPOINT SCAN OUT_DIR [BRAIN_MASK]
//
// with the paper's BraTS post-processing (preset brats), writing what `anoswin detect --preset
// brats` writes for that subject into OUT_DIR, and printing the lesion volume.
#include <stdio.h>

#include "anoswin.h"

int main(int argc, char **argv) {
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: %s CHECKPOINT SCAN OUT_DIR [BRAIN_MASK]\n", argv[0]);
        return 2;
    }
    anoswin_model *m = anoswin_model_load(argv[1], 8);
    if (!m) {
        fprintf(stderr, "detect_one: %s\n", anoswin_error());
        return 1;
    }
    anoswin_detection r;
    int rc = anoswin_detect(m, argv[2], argc == 5 ? argv[4] : NULL, argv[3], "brats", NULL, &r);
    if (rc)
        fprintf(stderr, "detect_one: %s\n", anoswin_error());
    else
        printf("%s: %d slices, %d lesion component(s), %.3f ml (%s model, %zu parameters, %d px; libanoswin %s)\n",
               argv[2], r.slices, r.components, r.lesion_ml, anoswin_model_method(m), anoswin_model_parameters(m),
               anoswin_model_image_size(m), anoswin_version());
    anoswin_model_free(m);
    return rc ? 1 : 0;
}
