// PNG pictures for humans: grey slices with an intensity window, colour-mapped anomaly maps,
// overlays of a mask or map on a slice, side-by-side panels; and reading a grey PNG (masks
// drawn by hand for `reconstruct --mask`). libpng underneath; every write is atomic.
//
// Images are row-major, row 0 at the top: img[y*w + x]. RGB images are 3 bytes per pixel.
// (Names avoid the png_ prefix, which belongs to libpng.)
#ifndef ANOSWIN_IO_PNG_H
#define ANOSWIN_IO_PNG_H

#include <stddef.h>

typedef enum colormap {
    COLORMAP_GREY,     // black -> white
    COLORMAP_HOT,      // black -> red -> yellow -> white (matplotlib 'hot'-like)
    COLORMAP_INFERNO,  // perceptually uniform black -> purple -> orange -> pale yellow
} colormap;

// "grey"/"gray", "hot", "inferno" -> 0; anything else -> -1 (no error recorded).
int colormap_parse(const char *name, colormap *cm);
// t in [0,1] (clamped; NaN -> 0) -> 8-bit sRGB.
void colormap_rgb(colormap cm, float t, unsigned char rgb[3]);

typedef struct rgb_image {
    int w, h;
    unsigned char *px;  // (h, w, 3)
} rgb_image;

void rgb_image_alloc(rgb_image *im, int w, int h);  // black
void rgb_image_free(rgb_image *im);
// Grey picture of img (h, w): lo -> black, hi -> white, clamped outside. Allocates im.
void rgb_image_from_grey(rgb_image *im, const float *img, int w, int h, float lo, float hi);
// Colour-mapped picture of map (h, w) with window [lo, hi]. Allocates im.
void rgb_image_from_map(rgb_image *im, const float *map, int w, int h, float lo, float hi, colormap cm);
// Blends `colour` with weight alpha into every pixel where mask != 0; with outline != 0 only
// the mask's boundary pixels (4-neighbour) are painted, at full opacity.
void rgb_image_overlay_mask(rgb_image *im, const unsigned char *mask, const unsigned char colour[3], float alpha,
                            int outline);
// Blends the colour-mapped map (window [lo, hi]) with weight alpha where map > threshold.
void rgb_image_overlay_map(rgb_image *im, const float *map, float lo, float hi, colormap cm, float alpha,
                           float threshold);
// Tiles placed left to right with `gap` black pixels between them (heights may differ; tiles
// are top-aligned). Allocates out.
void rgb_image_panel(rgb_image *out, const rgb_image *tiles, int n, int gap);

// An axial slice k of a volume vol (nz, ny, nx) stored x fastest in RAS orientation, as a
// picture (h = ny, w = nx) in the usual viewer convention: anterior at the top (row 0 = j = ny-1),
// x = i left to right (patient's left on the left: neurological convention).
void image_axial_slice(float *out, const float *vol, int nx, int ny, int k);
// Robust window: the p_lo and p_hi percentiles (0..100) of img over pixels where mask != 0
// (all pixels when mask is NULL; lo = hi = 0 when none). Handy for display of MRI slices.
void image_window_percentile(float *lo, float *hi, const float *img, const unsigned char *mask, size_t n,
                             double p_lo, double p_hi);

// Writers (atomic: temp file + rename; errors name the file).
int pngfile_write_rgb(const char *path, const rgb_image *im);
// 8-bit grey: round(255 * clamp((v - lo) / (hi - lo), 0, 1)); hi <= lo gives black.
int pngfile_write_grey(const char *path, const float *img, int w, int h, float lo, float hi);
// 8-bit grey, bytes as given (e.g. a 0/255 mask).
int pngfile_write_u8(const char *path, const unsigned char *img, int w, int h);
int pngfile_write_map(const char *path, const float *map, int w, int h, float lo, float hi, colormap cm);

// Reads any PNG as grey in [0,1] (8-bit / 255, 16-bit / 65535; palette expanded, alpha dropped,
// colour converted to luminance). *img is allocated (h, w). Errors name the file.
int pngfile_read_grey(const char *path, float **img, int *w, int *h);

#endif
