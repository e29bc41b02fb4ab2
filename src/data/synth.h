// The embedded data set: healthy and lesioned brains synthesised from the Colin27 template
// (Debian's mricron-data), so that anoswin can train and be tested with no download.
//
// Pipeline (docs/data.md, "Embedded synthetic data"): the skull-stripped Colin27 T1 is centred on a
// 240x240x155 1 mm grid like SRI24 (MNI world coordinates kept); a T2-like contrast is made
// by mapping T1 intensities through the CSF/GM/WM class means (CSF bright, WM dark). Each
// subject gets a random global affine (rotation, scaling, shift) plus a smooth displacement
// field (a few mm), a gamma change, a smooth multiplicative bias field and Rician noise. Test
// subjects also get lesions with ground truth, of the chosen profile (below): by default 1-3
// tumour-like ones of varied size, shape, contrast and texture.
// Every subject has its own random stream, so the result depends on the seed only, not on the
// thread count.
#ifndef ANOSWIN_DATA_SYNTH_H
#define ANOSWIN_DATA_SYNTH_H

#include <stdint.h>

#include "data/volume.h"
#include "util/rng.h"

#define SYNTH_DEFAULT_TEMPLATE "/usr/share/mricron/templates/ch2bet.nii.gz"
// The same Colin27 head with skull and scalp, on ch2bet's grid: the source of `data synth --raw`
// and, with ch2bet as its brain mask, `anoswin prep`'s default template.
#define SYNTH_HEAD_TEMPLATE "/usr/share/mricron/templates/ch2.nii.gz"
enum { SYNTH_NX = 240, SYNTH_NY = 240, SYNTH_NZ = 155 };

// Where the synthetic grid puts a 1 mm RAS-aligned template v: the voxel shift (grid index =
// v index + shift) that centres the bounding box [lo, hi] of its voxels > 0 on the 240x240x155
// grid, and the grid's origin (world mm of voxel 0,0,0) that keeps v's world coordinates.
// -1 when v has no voxel > 0. (`data synth` and `anoswin prep`'s default template share it.)
int synth_template_placement(const volume *v, int shift[3], double origin[3], int lo[3], int hi[3]);

// Ground-truth labels written to <id>_seg.nii.gz (BraTS-like; whole lesion = label > 0).
enum { LESION_CORE = 1, LESION_HALO = 2, LESION_BODY = 4 };

// Lesion profiles of the test subjects (docs/data.md, the profile table); healthy subjects are the
// same whatever the profile.
//   glioma      1-3 tumour-like lesions, radius 2.5-26 mm (the first 15-26 mm, centred in axial
//               slices 76..93), blobby, 75 % T2-bright / 25 % T2-dark, some with a fluid core,
//               an oedema halo, texture: BraTS-like gliomas (the default, and the data set of
//               anoswin's first releases, byte for byte)
//   metastasis  2-8 round lesions, diameter 3-15 mm (log-uniform), anywhere in the brain (every
//               axial level), T2-bright; 30 % of those of radius >= 2.5 mm a fluid core, 40 % of
//               those of radius >= 2 mm a thin oedema halo (1.2-1.5 radii): brain metastases
//   ms          6-20 ovoid plaques, diameter 2-8 mm (of the ball of equal volume), 1.4-2.2 times
//               longer than wide, T2-bright / T1-dark, no core or halo; 75 % periventricular (the
//               long axis perpendicular to the ventricle wall, which they touch: Dawson's
//               fingers), 25 % juxtacortical (in white matter, touching the cortex): multiple
//               sclerosis
//   boundary    1-2 glioma-like lesions, radius 6-18 mm, centred 0.4-0.65 radius from the
//               ventricles or from the brain's edge, so that they reach it: lesions whose border
//               is CSF or background, where a reconstruction error is hardest to tell
//   hypo        1-2 glioma-like lesions, radius 6-18 mm, all T2-dark (T1-bright), no core or
//               halo: the 25 % hypointense glioma lesions alone (blood products, calcification)
//   sparse      1-2 glioma-like lesions, radius 6-18 mm, centred anywhere in axial slices
//               40..120, so that many of the test slices 60..109 have none: a test set that did
//               not centre its lesions on the scored slices
//   none        no lesion (seg all 0): healthy test subjects, in the test layout
// Ventricles (ms, boundary) come from each subject's lesion-free t2: the largest connected
// part of the CSF class (t2 > 0.78) deeper than 18 mm from the brain's edge, from grid slice 75
// (MNI z = +7 mm) up: the lateral ventricles, without the cisterns below them.
typedef enum synth_profile {
    SYNTH_GLIOMA,
    SYNTH_METASTASIS,
    SYNTH_MS,
    SYNTH_BOUNDARY,
    SYNTH_HYPO,
    SYNTH_SPARSE,
    SYNTH_NONE,
    SYNTH_NPROFILES
} synth_profile;

const char *synth_profile_name(synth_profile p);
int synth_profile_parse(const char *name, synth_profile *p);  // 0, or -1 for an unknown name

typedef struct synth_options {
    const char *out;            // output folder
    int healthy, test;          // subject counts (20, 10)
    uint64_t seed;              // 1
    int write_t1, write_t2;     // which modalities to write (both)
    const char *template_path;  // SYNTH_DEFAULT_TEMPLATE
    int gzip_level;             // 1: files are written once and read many times, speed wins
    synth_profile profile;      // lesions of the test subjects (SYNTH_GLIOMA)
} synth_options;

void synth_options_default(synth_options *o);
// Writes o->out/healthy/<id>/<id>_{t1,t2}.nii.gz (ids healthy_000...), o->out/test/<id>/
// <id>_{t1,t2,seg}.nii.gz (ids test_000...) and o->out/synth.txt (the parameters, written
// last). Images are int16 (WM ~1000 in t1, CSF ~1000 in t2; background exactly 0, so
// image > 0 is the brain mask); seg is uint8. OpenMP over subjects; progress on stderr.
int synth_run(const synth_options *o);
// `data synth --raw` (src/data/synth_raw.c): o->healthy raw-looking T1 head scans from
// o->template_path (a head with skull, SYNTH_HEAD_TEMPLATE), each moved by a random affine
// (rotation +-10 deg per axis, scaling 0.92-1.08, shear +-0.04, shift +-15 mm), sampled on a
// random grid (0.9-1.2 mm in plane, 1.0-1.5 mm slices; axial, coronal or sagittal storage, axes
// flipped at random; field of view 190-230 x 220-250 x 180-210 mm), times a smooth bias field
// (about +-20 %), with Rician noise (1-3 % of white matter). Writes
// o->out/healthy/raw_NNN/{raw_NNN_t1.nii.gz, bias.nii.gz, truth.json} (truth: the template-world
// -> subject-world matrix, the bias field's weights, the noise) and o->out/synth.txt last.
int synth_raw_run(const synth_options *o);

// The brain template prepared once for drawing `data synth` subjects one at a time.
typedef struct synth_source synth_source;
synth_source *synth_source_open(const char *brain_template);  // NULL with the error recorded
void synth_source_close(synth_source *s);
void synth_source_origin(const synth_source *s, double origin[3]);  // world mm of grid voxel 0,0,0
// Subject (is_test, index) of o's seed and profile exactly as synth_run writes it, on the
// SYNTH_NX x SYNTH_NY x SYNTH_NZ grid: scan = its t2 (t2 != 0) or t1 (int16 values), seg, brain
// (0/1); each of SYNTH_NX * SYNTH_NY * SYNTH_NZ elements.
void synth_source_subject(const synth_source *s, const synth_options *o, int is_test, int index, int t2, short *scan,
                          unsigned char *seg, unsigned char *brain);

// ---- lesions (also used by the phantom) ----

typedef struct lesion_options {
    int min_count, max_count;  // lesions per subject (1, 3)
    float min_radius, max_radius;  // mean radius range in voxels, log-uniform (2.5, 26)
    float first_min_radius;        // the first lesion is drawn from [this, max_radius] (15),
                                   // centred in [kmin+4, kmax-4]
    int kmin, kmax;            // preferred axial range for lesion centres (72, 97)
    float p_in_range;          // probability that another centre is drawn in [kmin, kmax] (0.8)
    double p_hyper;            // probability of a T2-hyperintense lesion, else hypointense (0.75)
    double p_core, p_halo;     // of a fluid core (radius >= 6) and an oedema halo (>= 5) (0.35, 0.3)
    double p_halo_first;       // of an oedema halo around the first lesion (0.6)
} lesion_options;

void lesion_options_default(lesion_options *o);

// Paints lesions into t2 (and t1 when not NULL: the matching contrast) inside `brain`
// (nx, ny, nz, x fastest), adding their labels to seg. Intensity scale: t2 CSF ~1, WM ~0.33;
// t1 WM ~1. Returns the number of lesions painted.
int synth_lesions(float *t2, float *t1, unsigned char *seg, const unsigned char *brain, int nx, int ny, int nz,
                  const lesion_options *lo, rng *r);

// NIfTI-1 writer for int16 (datatype 4) or uint8 (2) data with a diagonal 1 mm RAS affine
// whose origin (world mm of voxel 0,0,0) is given; gzip at `level`; atomic. (volume_write
// writes float32 at nifticlib's fixed gzip level, which is 4x the bytes and several times
// slower for the 60 volumes of the default data set.)
int synth_write_nifti(const char *path, const void *data, int datatype, int nx, int ny, int nz, const double origin[3],
                      int level);
// The same for any voxel-to-world affine (sform; the qform too when it is the 1 mm axis-aligned
// grid above), and float32 (datatype 16) as well.
int synth_write_nifti_affine(const char *path, const void *data, int datatype, int nx, int ny, int nz,
                             const double affine[4][4], int level);

#endif
