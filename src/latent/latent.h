// The paper's latent-space analysis (section 4.2.2, Figure 3) as a run: encoder latents of
// healthy and lesion slices, projected to 2-D twice, (a) with every slice unmasked and (b) with
// the lesion slices' lesion tokens hidden, and how well healthy and lesion separate in each.
//
// Latent of a slice: the model's `latent` hook (model/model.h); for the Swin MAE the bottleneck,
// the last encoder stage's output, averaged over its tokens (the paper does not state its
// pooling). Healthy slices: every axial slice in the range with brain pixels, of the healthy
// scans. Lesion slices: the slices with at least min_lesion_px label pixels (model grid) of the
// labelled scans (or, with `pred`, of the scans detect found lesions in, located by its mask). Masked: the cells of a mask_size grid holding a label pixel are hidden, as the
// paper masks "pathological locations"; healthy slices stay unmasked in both panels.
//
// Outputs in `out` (each file written atomically, all after the work is done):
//   latents.npy / latents.csv   the latents (rows: healthy, lesion unmasked, lesion masked)
//   embedding.npy               (2, n, 2): panel (unmasked, masked) x slice x (x, y)
//   embedding.csv               panel, subject, z, group, x, y, k-means cluster
//   latent.png                  the two panels: healthy blue, lesion red, each 2-means cluster's
//                               2-sd covariance ellipse in black
//   latent.svg                  the same with titles, legend and numbers
//   latent.json                 the numbers below, counts, pooling and projection settings
#ifndef ANOSWIN_LATENT_LATENT_H
#define ANOSWIN_LATENT_LATENT_H

#include <stdint.h>

#include "data/slices.h"
#include "latent/separation.h"
#include "latent/umap.h"

enum { LATENT_UMAP = 0, LATENT_PCA = 1 };

typedef struct latent_options {
    const char *checkpoint;
    const char *lesion;    // data set (folder or manifest) with the lesion scans and their labels
    const char *healthy;   // data set of healthy scans; NULL: the "healthy" split of `lesion`
    const char *pred;      // detect's output folder: PRED/<id>/mask.nii.gz locates the lesion of
                           // a scan without a label (NULL: only labelled scans are lesion scans)
    const char *modality;  // NULL: t2
    const char *out;
    slice_options slices;  // size comes from the model
    int mask_size;         // px of the lesion-masking grid; 0: the model's token
    int min_lesion_px;     // default 1
    int projection;        // LATENT_UMAP (default) or LATENT_PCA
    umap_params umap;      // its seed also seeds k-means
    int knn_k;             // leave-one-scan-out k-NN accuracy (default 5)
    int batch;             // slices per forward (default 8)
    int verbose;           // progress on stderr
} latent_options;

void latent_options_default(latent_options *o);

typedef struct latent_panel {
    double silhouette_latent, silhouette_2d;  // of the healthy/lesion labels
    double knn_latent, knn_2d;                // leave-one-scan-out k-NN accuracy of healthy vs lesion
    double kmeans_ari, kmeans_accuracy;       // 2-means on the 2-D points vs healthy/lesion
    sep_ellipse ellipse[2];
} latent_panel;

typedef struct latent_result {
    int n_healthy, n_lesion, latent_dim;
    int healthy_scans, lesion_scans;
    int mask_size;  // the lesion cells' side in px (the token when not given)
    double seconds_latents, seconds_projection;
    latent_panel panel[2];  // 0: unmasked, 1: lesions masked
} latent_result;

// Runs the analysis. Returns 0, or -1 with an error naming the file (unreadable scans, a
// checkpoint whose method has no latent hook, no healthy or no lesion slices, a mask size that
// does not tile the image in whole tokens).
int latent_run(const latent_options *o, latent_result *r);

#endif
