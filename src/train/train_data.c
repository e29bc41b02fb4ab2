#include "train/train_data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"  // dataset_open, dataset_keep_split
#include "data/fingerprint.h"  // scan_print_load_slices, fingerprint_add
#include "data/nyul.h"
#include "data/volume.h"
#include "util/error.h"    // as_fail
#include "util/rng.h"      // rng_seed_stream, rng_permutation
#include "util/timer.h"    // progress_*

#define SALT_VAL_SUBJECTS 0x5355424aULL  // "SUBJ"

static int count_split(const dataset *d, const char *split) {
    int n = 0;
    for (int i = 0; i < d->n; i++) n += !strcmp(d->subjects[i].split, split);
    return n;
}

// The standard of the selected subjects' brains (a first pass over them: each scan's map needs
// the standard before its slices are made).
static int measure_standard(nyul_standard *std, const dataset *d, const int *sel, int n, const char *what, int quiet) {
    progress p;
    if (!quiet) progress_begin(&p, "intensity standard", n);
    nyul_begin(std);
    for (int i = 0; i < n; i++) {
        const subject *s = &d->subjects[sel[i]];
        volume img, mask;
        if (volume_read(&img, s->image)) return -1;
        if (s->mask[0] && volume_read(&mask, s->mask)) {
            volume_free(&img);
            return -1;
        }
        if (s->mask[0] && !volume_same_grid(&img, &mask)) {
            volume_free(&img), volume_free(&mask);
            return as_fail("%s: mask %s is on a different grid", s->image, s->mask);
        }
        double lm[NYUL_N];
        size_t nb = nyul_landmarks(lm, img.data, s->mask[0] ? mask.data : NULL, volume_voxels(&img));
        if (s->mask[0]) volume_free(&mask);
        volume_free(&img);
        if (!nb) return as_fail("%s: empty brain (no voxel %s)", s->image, s->mask[0] ? "inside the mask" : "above 0");
        nyul_add(std, lm);
        if (!quiet) progress_update(&p, i + 1, "subj", s->id);
    }
    if (!quiet) progress_end(&p);
    return nyul_end(std, what);
}

int train_data_load(train_options *o, slice_set *train, slice_set *val, fingerprint *fp) {
    dataset d;
    if (dataset_open(&d, o->data, o->modality)) return -1;
    if (fp) fingerprint_begin(fp, strcmp(d.layout, "manifest") ? d.modality : "");
    // The healthy subjects, as an index list.
    const char *split = count_split(&d, "healthy") ? "healthy" : count_split(&d, "train") ? "train" : NULL;
    int *sel = as_malloc(sizeof(int) * (size_t)(d.n ? d.n : 1)), n = 0;
    for (int i = 0; i < d.n; i++) {
        const subject *s = &d.subjects[i];
        if (split ? !strcmp(s->split, split) : !s->label[0]) sel[n++] = i;
    }
    if (n == 0) {
        free(sel);
        dataset_free(&d);
        return as_fail("%s: no healthy subjects (split 'healthy' or 'train', or unlabelled scans)", o->data);
    }
    // Validation subjects: the first n_val of a seeded permutation.
    int n_val = (int)lround(o->val_fraction * n);
    if (o->val_fraction > 0 && n >= 2 && n_val < 1) n_val = 1;
    if (n_val > n - 1) n_val = n - 1;
    int *perm = as_malloc(sizeof(int) * (size_t)n);
    rng r;
    rng_seed_stream(&r, o->seed ^ SALT_VAL_SUBJECTS, 0);
    rng_permutation(&r, perm, n);
    uint8_t *is_val = as_calloc((size_t)n, 1);
    for (int i = 0; i < n_val; i++) is_val[perm[i]] = 1;

    slice_options so;
    slice_options_default(&so, 1);
    so.size = o->shape.img_size;
    so.z_first = o->z_first;
    so.z_last = o->z_last;
    so.clip_range = 1;  // volumes with fewer slices contribute what they have
    memset(&o->nyul_std, 0, sizeof o->nyul_std);
    if (o->nyul && measure_standard(&o->nyul_std, &d, sel, n, o->data, o->quiet)) {
        free(is_val), free(perm), free(sel);
        dataset_free(&d);
        return -1;
    }
    so.nyul = o->nyul_std;
    progress p;
    progress_begin(&p, "load", n);
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {  // subjects stay in id order within each part
        const subject *s = &d.subjects[sel[i]];
        slice_stack st;
        scan_print sp;
        if (scan_print_load_slices(&st, &sp, s->image, s->mask[0] ? s->mask : NULL, &so)) {
            rc = -1;
            break;
        }
        if (fp) fingerprint_add(fp, &sp);
        slice_set_append(is_val[i] ? val : train, st.img, st.brain, st.n, st.size);
        slices_free(&st);
        if (!o->quiet) progress_update(&p, i + 1, "subj", s->id);
    }
    if (!o->quiet) progress_end(&p);
    if (fp) fingerprint_end(fp);
    if (!rc && !o->quiet)
        fprintf(stderr, "data: %d healthy subjects (%s): %d training slices, %d validation slices (%d subjects)\n", n,
                split ? split : "unlabelled", train->n, val->n, n_val);
    free(is_val);
    free(perm);
    free(sel);
    dataset_free(&d);
    return rc;
}
