// A 3-D scalar volume in memory, plus the geometry needed to write results that overlay the
// input in any viewer. Layout is nifticlib's: x fastest, data[i + nx*(j + ny*k)].
#ifndef ANOSWIN_DATA_VOLUME_H
#define ANOSWIN_DATA_VOLUME_H

#include <stddef.h>

typedef struct volume {
    int nx, ny, nz;
    float *data;              // nx*ny*nz floats, scl_slope/scl_inter already applied
    float pixdim[3];          // voxel size in mm
    double affine[4][4];      // voxel (i,j,k,1) -> world mm (RAS+), from sform, else qform, else pixdim
    void *header;             // the source nifti_image (no data) kept for writing; NULL if synthetic
} volume;

static inline size_t volume_voxels(const volume *v) { return (size_t)v->nx * v->ny * v->nz; }

// Reads NIfTI-1/2, .nii or .nii.gz, any common datatype (uint8/int16/int32/float32/float64...),
// one 3-D volume. Errors (return -1, as_error() = "<path>: <problem>"): missing file, not NIfTI,
// not 3-D / more than one volume, absurd sizes, non-finite voxels, bad pixdim or affine.
int volume_read(volume *v, const char *path);
// Writes float32 (NIFTI_TYPE_FLOAT32) or uint8 (NIFTI_TYPE_UINT8) with the geometry of `like`
// (its header/affine/pixdim; `like` may be v itself), atomically (temp file + rename).
int volume_write(const volume *v, const volume *like, const char *path, int nifti_datatype);
// A new zero-filled volume with the same grid and geometry as `like`.
void volume_alloc_like(volume *v, const volume *like);
// A new zero-filled synthetic volume with 1 mm voxels and an identity-like RAS affine.
void volume_alloc(volume *v, int nx, int ny, int nz, const float pixdim[3]);
void volume_free(volume *v);
// dst gets src's grid and geometry (a copy of its header) but no data (dst->data = NULL);
// volume_alloc_like(x, dst) then works as on src. Free with volume_free.
void volume_copy_geometry(volume *dst, const volume *src);
// The file the volume was read from, or "(in memory)".
const char *volume_source_name(const volume *v);
// 1 when a and b have the same dimensions and (to 1e-4 mm) the same affine.
int volume_same_grid(const volume *a, const volume *b);

#endif
