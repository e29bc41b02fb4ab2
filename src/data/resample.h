// In-plane linear resizing with align_corners=True, computed like PyTorch's CPU kernel
// (F.interpolate(..., mode='bilinear' or 'trilinear', align_corners=True), float arithmetic), so
// a depth-preserving trilinear resize is this applied to each slice.
#ifndef ANOSWIN_DATA_RESAMPLE_H
#define ANOSWIN_DATA_RESAMPLE_H

#include <stddef.h>

#include "data/volume.h"

// out (oh,ow) from in (ih,iw); element (a,b) of each lives at ptr[a*s_a + b*s_b], so any plane
// of a volume can be read or written in place.
void resize_linear_ac(float *out, int oh, int ow, ptrdiff_t os_a, ptrdiff_t os_b, const float *in, int ih, int iw,
                      ptrdiff_t is_a, ptrdiff_t is_b);
// Same grid mapping (source = dst*(in-1)/(out-1)), nearest source sample (rounded), for labels.
void resize_nearest_ac(float *out, int oh, int ow, ptrdiff_t os_a, ptrdiff_t os_b, const float *in, int ih, int iw,
                       ptrdiff_t is_a, ptrdiff_t is_b);

// Trilinear value of v at continuous voxel coordinates p (x fastest); voxels outside the grid
// count as 0, so the value fades to 0 over the half voxel past the edge and is 0 beyond.
float volume_sample_linear(const volume *v, const double p[3]);

#endif
