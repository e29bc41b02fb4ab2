#include "prep/template.h"

#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"  // volume_check_same_grid
#include "data/synth.h"    // synth_template_placement, SYNTH_*
#include "util/error.h"
#include "util/fs.h"

static int default_template(prep_template *t) {
    volume bet, head;
    if (!fs_exists(SYNTH_DEFAULT_TEMPLATE) || !fs_exists(SYNTH_HEAD_TEMPLATE))
        return as_fail("%s: template not found (install Debian's mricron-data: scripts/install-deps.sh)",
                       fs_exists(SYNTH_DEFAULT_TEMPLATE) ? SYNTH_HEAD_TEMPLATE : SYNTH_DEFAULT_TEMPLATE);
    if (volume_read(&bet, SYNTH_DEFAULT_TEMPLATE) != 0) return -1;
    if (volume_read(&head, SYNTH_HEAD_TEMPLATE) != 0) {
        volume_free(&bet);
        return -1;
    }
    int shift[3], lo[3], hi[3];
    double origin[3];
    int rc = volume_check_same_grid(&bet, SYNTH_DEFAULT_TEMPLATE, &head, SYNTH_HEAD_TEMPLATE);
    if (rc == 0 && synth_template_placement(&bet, shift, origin, lo, hi) != 0)
        rc = as_fail("%s: template is empty (no voxel > 0)", SYNTH_DEFAULT_TEMPLATE);
    if (rc == 0) {
        volume_alloc(&t->head, SYNTH_NX, SYNTH_NY, SYNTH_NZ, NULL);
        for (int d = 0; d < 3; d++) t->head.affine[d][3] = origin[d];
        t->brain = as_calloc(volume_voxels(&t->head), 1);
        for (int k = 0; k < SYNTH_NZ; k++)
            for (int j = 0; j < SYNTH_NY; j++)
                for (int i = 0; i < SYNTH_NX; i++) {
                    int si = i - shift[0], sj = j - shift[1], sk = k - shift[2];
                    if (si < 0 || sj < 0 || sk < 0 || si >= bet.nx || sj >= bet.ny || sk >= bet.nz) continue;
                    size_t s = (size_t)si + (size_t)bet.nx * ((size_t)sj + (size_t)bet.ny * sk);
                    size_t d = (size_t)i + (size_t)SYNTH_NX * ((size_t)j + (size_t)SYNTH_NY * k);
                    t->head.data[d] = head.data[s];
                    t->brain[d] = bet.data[s] > 0;
                }
        snprintf(t->head_path, sizeof t->head_path, "%s", SYNTH_HEAD_TEMPLATE);
        snprintf(t->mask_path, sizeof t->mask_path, "%s", SYNTH_DEFAULT_TEMPLATE);
    }
    volume_free(&bet);
    volume_free(&head);
    return rc;
}

int prep_template_load(prep_template *t, const char *head_path, const char *mask_path) {
    memset(t, 0, sizeof *t);
    if (!head_path) return default_template(t);
    if (!mask_path) return as_fail("%s: --template needs --template-mask (the template's brain mask)", head_path);
    volume m;
    if (volume_read(&t->head, head_path) != 0) return -1;
    if (volume_read(&m, mask_path) != 0) {
        volume_free(&t->head);
        return -1;
    }
    int rc = volume_check_same_grid(&t->head, head_path, &m, mask_path);
    size_t nv = volume_voxels(&m), nb = 0;
    if (rc == 0) {
        t->brain = as_malloc(nv);
        for (size_t i = 0; i < nv; i++) nb += t->brain[i] = m.data[i] > 0;
        if (nb == 0) rc = as_fail("%s: brain mask is empty (no voxel > 0)", mask_path);
    }
    volume_free(&m);
    if (rc != 0) {
        prep_template_free(t);
        return -1;
    }
    snprintf(t->head_path, sizeof t->head_path, "%s", head_path);
    snprintf(t->mask_path, sizeof t->mask_path, "%s", mask_path);
    return 0;
}

void prep_template_free(prep_template *t) {
    volume_free(&t->head);
    free(t->brain);
    memset(t, 0, sizeof *t);
}
