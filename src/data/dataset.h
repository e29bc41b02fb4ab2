// Finding the scans of a data set on disk: which files are the images, labels and brain
// masks of which subject. Pairing is by subject id (never by listing order); subjects come
// out sorted by id. Layouts (detected automatically; see docs/data.md):
//
//   manifest CSV  header subject,image,label,mask,split (any column order; subject and image
//                 required); relative paths are resolved against the CSV's folder; "quoted,
//                 fields" allowed; empty cells mean none.
//   BraTS21       <id>/<id>_{t1,t1ce,t2,flair,seg,mask}.nii.gz, subject folders at any depth
//                 (the parent folder becomes the split, e.g. healthy/ and test/ from
//                 `anoswin data synth`); label = seg, brain mask = mask.
//   benchmark     <root>/{t1,t2,flair}/<id>_<mod>.nii.gz [+ <root>/seg/<id>_seg.nii.gz]
//                 [+ <root>/mask/<id>_mask.nii.gz]: the preprocessed IXI/BraTS/MSLUB/WMH sets
//                 of the benchmark line (skull-stripped, SRI24-registered).
//   WMH           <site>/<id>/pre/{FLAIR,T1}.nii.gz + <site>/<id>/wmh.nii.gz (MICCAI 2017 WMH
//                 challenge); id = "<site>_<id>".
//   MSLUB         <id>/{T1W,T2W,FLAIR}.nii.gz + <id>/consensus_gt.nii.gz [+ brainmask.nii.gz]
//                 (Lesjak et al. 2018); id = the folder.
//   IXI           IXI012-HH-1211-T2.nii.gz files anywhere below the folder; no labels.
//
// Errors (return -1, as_error() names the subject and/or file): unknown modality, a subject
// without the requested image, a missing label where the layout requires one, a label with no
// image, a duplicate subject, a bad CSV line, a folder with no recognisable scans.
#ifndef ANOSWIN_DATA_DATASET_H
#define ANOSWIN_DATA_DATASET_H

#include "data/volume.h"

typedef struct subject {
    char *id;
    char *image;  // path of the scan in the chosen modality
    char *label;  // ground-truth lesion mask, "" when none
    char *mask;   // brain mask, "" when none (then image > 0 is used)
    char *split;  // "" when none; e.g. "healthy", "test", "train", "val"
} subject;

typedef struct dataset {
    char layout[16];    // "manifest", "brats", "benchmark", "wmh", "mslub", "ixi"
    char modality[8];   // "t1", "t2", "flair"
    subject *subjects;  // sorted by id
    int n;
} dataset;

// dir_or_csv: a folder in one of the layouts above, or a manifest .csv file.
// modality: "t1", "t2" or "flair" (case-insensitive; NULL means "t2"). Ignored by manifests
// except that it must be valid.
int dataset_open(dataset *d, const char *dir_or_csv, const char *modality);
void dataset_free(dataset *d);
// Keeps only the subjects whose split equals `split` (order kept). Returns how many remain.
int dataset_keep_split(dataset *d, const char *split);
// The subject with this id, or NULL.
const subject *dataset_find(const dataset *d, const char *id);
// Writes the dataset as a manifest CSV with absolute paths, atomically; "-" = stdout.
int dataset_write_manifest(const dataset *d, const char *path);

// Two volumes share a voxel grid: same dimensions and affines within 0.01 mm. On mismatch
// returns -1 with "<path_b>: grid AxBxC (...) does not match <path_a> (DxExF ...)".
int volume_check_same_grid(const volume *a, const char *path_a, const volume *b, const char *path_b);

#endif
