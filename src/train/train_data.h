// Training slices from a data set on disk: the healthy subjects, split by subject into a
// training and a held-out validation part, loaded at model size through the slice pipeline
// (data/slices.h: RAS, in-plane resize, min-max to [0,1], axial slices z_first..z_last), after
// the Nyúl standardisation (data/nyul.h) when the options ask for it.
//
// Which subjects are healthy: those whose split is "healthy" (`anoswin data synth`), else
// those whose split is "train", else every subject without a lesion label (e.g. an IXI folder).
// Validation: round(val_fraction * n) subjects (at least 1 when val_fraction > 0 and n >= 2,
// never all), chosen by a permutation drawn from the run seed.
#ifndef ANOSWIN_TRAIN_TRAIN_DATA_H
#define ANOSWIN_TRAIN_TRAIN_DATA_H

#include "data/fingerprint.h"
#include "train/trainer.h"

// Fills train and val (empty sets on entry) from o->data / o->modality / o->z_first..z_last /
// o->val_fraction / o->seed at size o->shape.img_size. Progress on stderr unless o->quiet.
// fp (may be NULL) gets the fingerprint of every healthy volume loaded (data/fingerprint.h), with
// the data set's modality when its layout names it (not a manifest's).
// With o->nyul, the intensity standard is first measured on every healthy volume (validation
// ones too: it needs no labels) into o->nyul_std, and every slice is built through it.
int train_data_load(train_options *o, slice_set *train, slice_set *val, fingerprint *fp);

#endif
