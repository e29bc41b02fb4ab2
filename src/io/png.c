#include "io/png.h"

#include <errno.h>
#include <math.h>
#include <png.h>  // libpng (angle brackets: not our io/png.h)
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"  // as_fail, as_malloc
#include "util/fs.h"     // fs_file_open/commit/abort

// ---- colour maps ------------------------------------------------------------------------------

int colormap_parse(const char *name, colormap *cm) {
    if (!strcmp(name, "grey") || !strcmp(name, "gray")) *cm = COLORMAP_GREY;
    else if (!strcmp(name, "hot")) *cm = COLORMAP_HOT;
    else if (!strcmp(name, "inferno")) *cm = COLORMAP_INFERNO;
    else return -1;
    return 0;
}

static unsigned char to_byte(double v) {
    if (!(v > 0)) return 0;
    if (v >= 1) return 255;
    return (unsigned char)lrint(v * 255.0);
}

void colormap_rgb(colormap cm, float t, unsigned char rgb[3]) {
    double x = t;
    if (!(x > 0)) x = 0;
    if (x > 1) x = 1;
    switch (cm) {
    case COLORMAP_HOT:
        // matplotlib's 'hot': red ramps over the first ~3/8, green the next 3/8, blue the rest.
        rgb[0] = to_byte(0.0416 + (1 - 0.0416) * x / 0.365079);
        rgb[1] = to_byte((x - 0.365079) / (0.746032 - 0.365079));
        rgb[2] = to_byte((x - 0.746032) / (1 - 0.746032));
        return;
    case COLORMAP_INFERNO: {
        // Matt Zucker's degree-6 polynomial fit of matplotlib's inferno (shadertoy WlfXRN, CC0);
        // within ~1/255 of the table, and no 256-entry table to carry.
        static const double c[7][3] = {
            {0.0002189403691192265, 0.001651004631001012, -0.01948089843709184},
            {0.1065134194856116, 0.5639564367884091, 3.932712388889277},
            {11.60249308247187, -3.972853965665698, -15.9423941062914},
            {-41.70399613139459, 17.43639888205313, 44.35414519872813},
            {77.162935699427, -33.40235894210092, -81.80730925738993},
            {-71.31942824499214, 32.62606426397723, 73.20951985803202},
            {25.13112622477341, -12.24266895238567, -23.07032500287172},
        };
        for (int ch = 0; ch < 3; ch++) {
            double v = c[6][ch];
            for (int d = 5; d >= 0; d--) v = v * x + c[d][ch];
            rgb[ch] = to_byte(v);
        }
        return;
    }
    case COLORMAP_GREY:
    default:
        rgb[0] = rgb[1] = rgb[2] = to_byte(x);
        return;
    }
}

// ---- RGB pictures ------------------------------------------------------------------------------

void rgb_image_alloc(rgb_image *im, int w, int h) {
    im->w = w;
    im->h = h;
    im->px = as_calloc((size_t)w * h * 3, 1);
}

void rgb_image_free(rgb_image *im) {
    free(im->px);
    im->px = NULL;
    im->w = im->h = 0;
}

static float window01(float v, float lo, float hi) {
    if (!(hi > lo)) return 0;
    float t = (v - lo) / (hi - lo);
    return t > 0 ? (t < 1 ? t : 1) : 0;  // NaN -> 0
}

void rgb_image_from_grey(rgb_image *im, const float *img, int w, int h, float lo, float hi) {
    rgb_image_from_map(im, img, w, h, lo, hi, COLORMAP_GREY);
}

void rgb_image_from_map(rgb_image *im, const float *map, int w, int h, float lo, float hi, colormap cm) {
    rgb_image_alloc(im, w, h);
    size_t n = (size_t)w * h;
    for (size_t i = 0; i < n; i++) colormap_rgb(cm, window01(map[i], lo, hi), im->px + 3 * i);
}

static void blend(unsigned char *px, const unsigned char c[3], float alpha) {
    for (int ch = 0; ch < 3; ch++) px[ch] = (unsigned char)lrintf((1 - alpha) * px[ch] + alpha * c[ch]);
}

void rgb_image_overlay_mask(rgb_image *im, const unsigned char *mask, const unsigned char colour[3], float alpha,
                            int outline) {
    int w = im->w, h = im->h;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            if (!mask[i]) continue;
            if (outline) {
                int edge = x == 0 || y == 0 || x == w - 1 || y == h - 1 || !mask[i - 1] || !mask[i + 1] ||
                           !mask[i - w] || !mask[i + w];
                if (edge) memcpy(im->px + 3 * i, colour, 3);
            } else {
                blend(im->px + 3 * i, colour, alpha);
            }
        }
}

void rgb_image_overlay_map(rgb_image *im, const float *map, float lo, float hi, colormap cm, float alpha,
                           float threshold) {
    size_t n = (size_t)im->w * im->h;
    for (size_t i = 0; i < n; i++) {
        if (!(map[i] > threshold)) continue;
        unsigned char c[3];
        colormap_rgb(cm, window01(map[i], lo, hi), c);
        blend(im->px + 3 * i, c, alpha);
    }
}

void rgb_image_panel(rgb_image *out, const rgb_image *tiles, int n, int gap) {
    int w = 0, h = 0;
    for (int t = 0; t < n; t++) {
        w += tiles[t].w + (t ? gap : 0);
        if (tiles[t].h > h) h = tiles[t].h;
    }
    rgb_image_alloc(out, w > 0 ? w : 1, h > 0 ? h : 1);
    int x0 = 0;
    for (int t = 0; t < n; t++) {
        for (int y = 0; y < tiles[t].h; y++)
            memcpy(out->px + 3 * ((size_t)y * out->w + x0), tiles[t].px + 3 * (size_t)y * tiles[t].w,
                   3 * (size_t)tiles[t].w);
        x0 += tiles[t].w + gap;
    }
}

void image_axial_slice(float *out, const float *vol, int nx, int ny, int k) {
    const float *s = vol + (size_t)nx * ny * k;
    for (int r = 0; r < ny; r++) memcpy(out + (size_t)r * nx, s + (size_t)(ny - 1 - r) * nx, sizeof(float) * nx);
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

void image_window_percentile(float *lo, float *hi, const float *img, const unsigned char *mask, size_t n,
                             double p_lo, double p_hi) {
    float *v = as_malloc(sizeof(float) * (n ? n : 1));
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if ((!mask || mask[i]) && isfinite(img[i])) v[m++] = img[i];
    *lo = *hi = 0;
    if (m) {
        qsort(v, m, sizeof(float), cmp_float);
        // Linear interpolation between order statistics (numpy's default 'linear' method).
        double q[2] = {p_lo, p_hi};
        float *o[2] = {lo, hi};
        for (int t = 0; t < 2; t++) {
            double pos = q[t] / 100.0 * (double)(m - 1);
            if (pos < 0) pos = 0;
            if (pos > (double)(m - 1)) pos = (double)(m - 1);
            size_t a = (size_t)pos, b = a + 1 < m ? a + 1 : a;
            double f = pos - (double)a;
            *o[t] = (float)(v[a] + f * (v[b] - v[a]));
        }
    }
    free(v);
}

// ---- libpng writing ----------------------------------------------------------------------------

static void png_error_cb(png_structp png, png_const_charp msg) {
    char *buf = png_get_error_ptr(png);
    snprintf(buf, 256, "%s", msg);
    png_longjmp(png, 1);
}

static void png_warning_cb(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;  // warnings (e.g. unknown chunks) are not the user's concern
}

// rows: h pointers to rows of w * channels bytes; color_type PNG_COLOR_TYPE_GRAY or _RGB.
static int write_png(const char *path, unsigned char **rows, int w, int h, int color_type) {
    if (w <= 0 || h <= 0) return as_fail("%s: cannot write an empty %dx%d image", path, w, h);
    fs_file af;
    if (fs_file_open(&af, path) != 0) return -1;
    char msg[256] = "";
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, msg, png_error_cb, png_warning_cb);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, &info);
        fs_file_abort(&af);
        return as_fail("%s: cannot start libpng", path);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fs_file_abort(&af);
        return as_fail("%s: cannot write PNG: %s", path, msg);
    }
    png_init_io(png, af.f);
    png_set_compression_level(png, 6);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, color_type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return fs_file_commit(&af);
}

static int write_bytes(const char *path, const unsigned char *px, int w, int h, int channels) {
    if (w <= 0 || h <= 0) return as_fail("%s: cannot write an empty %dx%d image", path, w, h);
    unsigned char **rows = as_malloc(sizeof(*rows) * (size_t)h);
    for (int y = 0; y < h; y++) rows[y] = (unsigned char *)px + (size_t)y * w * channels;
    int rc = write_png(path, rows, w, h, channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY);
    free(rows);
    return rc;
}

int pngfile_write_rgb(const char *path, const rgb_image *im) { return write_bytes(path, im->px, im->w, im->h, 3); }

int pngfile_write_u8(const char *path, const unsigned char *img, int w, int h) { return write_bytes(path, img, w, h, 1); }

int pngfile_write_grey(const char *path, const float *img, int w, int h, float lo, float hi) {
    if (w <= 0 || h <= 0) return as_fail("%s: cannot write an empty %dx%d image", path, w, h);
    size_t n = (size_t)w * h;
    unsigned char *b = as_malloc(n);
    for (size_t i = 0; i < n; i++) b[i] = to_byte(window01(img[i], lo, hi));
    int rc = write_bytes(path, b, w, h, 1);
    free(b);
    return rc;
}

int pngfile_write_map(const char *path, const float *map, int w, int h, float lo, float hi, colormap cm) {
    if (w <= 0 || h <= 0) return as_fail("%s: cannot write an empty %dx%d image", path, w, h);
    rgb_image im;
    rgb_image_from_map(&im, map, w, h, lo, hi, cm);
    int rc = pngfile_write_rgb(path, &im);
    rgb_image_free(&im);
    return rc;
}

// ---- libpng reading ----------------------------------------------------------------------------

int pngfile_read_grey(const char *path, float **img, int *w, int *h) {
    *img = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return as_fail("%s: cannot open: %s", path, strerror(errno));
    unsigned char sig[8];
    if (fread(sig, 1, 8, f) != 8 || png_sig_cmp(sig, 0, 8)) {
        fclose(f);
        return as_fail("%s: not a PNG file", path);
    }
    char msg[256] = "";
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, msg, png_error_cb, png_warning_cb);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        return as_fail("%s: cannot start libpng", path);
    }
    // Everything that must be freed after a longjmp lives in volatile locals.
    unsigned char *volatile buf = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        free(buf);
        free(rows);
        return as_fail("%s: corrupt PNG: %s", path, msg);
    }
    png_init_io(png, f);
    png_set_sig_bytes(png, 8);
    png_set_user_limits(png, 1 << 15, 1 << 15);
    png_read_info(png, info);
    int ct = png_get_color_type(png, info);
    png_set_expand(png);  // palette -> RGB, grey < 8 bits -> 8 bits, tRNS -> alpha
    png_set_strip_alpha(png);
    if (ct == PNG_COLOR_TYPE_RGB || ct == PNG_COLOR_TYPE_RGB_ALPHA || ct == PNG_COLOR_TYPE_PALETTE)
        png_set_rgb_to_gray_fixed(png, 1, -1, -1);  // default (Rec. 709) weights, no warning
    png_read_update_info(png, info);
    int W = (int)png_get_image_width(png, info), H = (int)png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info), channels = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    buf = as_malloc(rowbytes * (size_t)H);
    rows = as_malloc(sizeof(png_bytep) * (size_t)H);
    for (int y = 0; y < H; y++) rows[y] = buf + (size_t)y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    if (channels != 1 || (depth != 8 && depth != 16)) {
        free(buf);
        free(rows);
        return as_fail("%s: unsupported PNG layout (%d channels, %d bits after conversion)", path, channels, depth);
    }
    float *out = as_malloc(sizeof(float) * (size_t)W * H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const unsigned char *p = rows[y];
            out[(size_t)y * W + x] = depth == 8 ? p[x] / 255.0f : ((p[2 * x] << 8) | p[2 * x + 1]) / 65535.0f;
        }
    free(buf);
    free(rows);
    *img = out;
    *w = W;
    *h = H;
    return 0;
}
