// `anoswin prep`: raw scans to the template's grid, one subject at a time: reorientation to
// RAS, N4 bias-field correction (src/prep/n4.h), rigid then affine registration to the template
// by Mattes mutual information (src/prep/register.h), skull stripping (the template's brain
// mask carried onto the scan, refined on its intensities: src/prep/mask.h), and resampling onto
// the template grid (linear for the image, nearest for a label given alongside).
//
// Outputs, in the BraTS layout that `train`, `detect` and `data list` read (docs/data.md):
//   OUT/[<split>/]<id>/<id>_<mod>.nii.gz   the registered scan, zero outside the brain (float32)
//   OUT/[<split>/]<id>/<id>_mask.nii.gz    the brain mask (uint8)
//   OUT/[<split>/]<id>/<id>_seg.nii.gz     the label, when the input had one (uint8)
//   OUT/[<split>/]<id>/<id>_bias.nii.gz    with write_bias: N4's multiplicative field on the
//                                          scan's own grid reoriented to RAS (float32)
//   OUT/[<split>/]<id>/<id>_qc.png         axial slices of the registered scan (skull kept) with
//                                          the template brain's outline in red
//   OUT/[<split>/]<id>/<id>_prep.json      transform, metric, brain volume, timings
//   OUT/prep.json                          every subject's status (written last)
// A subject that fails (unreadable or empty input, a registration that diverged or gave an
// implausible transform, an empty brain mask) gets a one-line error in prep.json and on stderr
// and no output folder at all.
#ifndef ANOSWIN_PREP_PREP_H
#define ANOSWIN_PREP_PREP_H

#include "prep/register.h"

typedef struct prep_options {
    const char *out;            // output folder (created)
    const char *template_path;  // NULL: Colin27 on the 240x240x155 grid (prep/template.h)
    const char *template_mask;  // with template_path
    const char *modality;       // "t1" (default), "t2", "flair": the name of the outputs and the
                                // scans picked from folders
    int n4;                     // 1: N4 bias-field correction, on the head before registering,
                                // then inside the registered brain (0: --no-n4)
    int write_bias;             // 1: also write N4's field on the scan's grid (--write-bias)
    double min_mi;              // 0.3: a registration ending below this Mattes MI fails (see prep.c)
    reg_options reg;
} prep_options;

void prep_options_default(prep_options *o);

// inputs: NIfTI files (id = the file name without .nii[.gz] and a trailing _<modality>; a label
// <id>_seg.nii.gz next to the file goes along) or folders in any layout `data list` knows (ids,
// labels and splits from there). Returns 0 when every subject was prepared, 1 when some failed
// (each reported), -1 on an error that stops everything (bad template, no input, output not
// writable) with the message recorded.
int prep_run(const prep_options *o, char *const *inputs, int ninputs);

// The registration's verdict, exposed for the tests: 0 when `g` is accepted, else -1 with `why`
// (n bytes) saying why it is refused: diverged (the metric did not end above where it started),
// too little of the template found (below min_mi), or an implausible transform (scales).
int prep_check_registration(const reg_result *g, double min_mi, char *why, size_t n);

#endif
