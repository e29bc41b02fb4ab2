// PNG output and input: written files decoded by an independent Python decoder
// (tools/png_decode.py: zlib + PNG filters, no libpng), PNGs encoded by Python read back by
// libpng, colour maps against matplotlib's published values, overlays, panels, error cases.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers/testutil.h"
#include "io/png.h"
#include "util/error.h"
#include "util/fs.h"

static const char *dir;

static const char *path_in(const char *name) {
    static char buf[4][4096];
    static int k;
    char *out = buf[k++ % 4];
    snprintf(out, 4096, "%s/%s", dir, name);
    return out;
}

// Decodes with the Python reference; returns (h, w, c) float samples and checks the header.
static float *py_decode(const char *png, int w, int h, int c) {
    char args[8400];
    snprintf(args, sizeof args, "%s %s.f32 > %s.hdr", png, png, png);
    tu_run_python("tools/png_decode.py", args);
    char hdr[4200];
    snprintf(hdr, sizeof hdr, "%s.hdr", png);
    FILE *f = fopen(hdr, "r");
    int W = 0, H = 0, C = 0, D = 0;
    CHECK(f && fscanf(f, "%d %d %d %d", &W, &H, &C, &D) == 4, "decoder header for %s", png);
    if (f) fclose(f);
    CHECK(W == w && H == h && C == c && D == 8, "%s: %dx%dx%d depth %d, want %dx%dx%d depth 8", png, W, H, C, D, w,
          h, c);
    char raw[4200];
    snprintf(raw, sizeof raw, "%s.f32", png);
    return tu_read_f32(raw, (size_t)w * h * c);
}

static int dir_has_temp_files(const char *d) {
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -q '\\.tmp-'", d);
    return system(cmd) == 0;
}

int main(void) {
    dir = tu_scratch_dir("io_png");

    // ---- grey with a window: odd size to catch stride bugs ----
    int w = 37, h = 23;
    float *img = malloc(sizeof(float) * w * h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) img[y * w + x] = -0.5f + 2.0f * (float)(x * h + y) / (float)(w * h);
    img[5] = NAN;
    float lo = -0.2f, hi = 1.1f;
    CHECK(pngfile_write_grey(path_in("grey.png"), img, w, h, lo, hi) == 0, "write grey: %s", as_error());
    float *want = malloc(sizeof(float) * w * h);
    for (int i = 0; i < w * h; i++) {
        double t = (img[i] - lo) / (hi - lo);  // the documented rule, computed here
        if (!(t > 0)) t = 0;
        if (t > 1) t = 1;
        want[i] = (float)floor(t * 255 + 0.5);
    }
    float *dec = py_decode(path_in("grey.png"), w, h, 1);
    tu_allclose("grey png vs python decoder", dec, want, (size_t)w * h, 0.51, 0);
    free(dec);
    float *back = NULL;
    int bw = 0, bh = 0;
    CHECK(pngfile_read_grey(path_in("grey.png"), &back, &bw, &bh) == 0 && bw == w && bh == h, "read grey back");
    for (int i = 0; i < w * h; i++) want[i] /= 255.0f;
    if (back) tu_allclose("grey png read back", back, want, (size_t)w * h, 1e-6, 0);
    free(back);
    CHECK(!dir_has_temp_files(dir), "no temp files left after writes");

    // ---- colour maps: matplotlib's values (inferno/hot at 0, 0.5, 1), +-8 levels (a polynomial fit) ----
    struct { colormap cm; float t; int rgb[3]; } ref[] = {
        {COLORMAP_INFERNO, 0.0f, {0, 0, 4}},       {COLORMAP_INFERNO, 0.5f, {188, 55, 84}},
        {COLORMAP_INFERNO, 1.0f, {252, 255, 164}}, {COLORMAP_INFERNO, 0.25f, {87, 16, 110}},
        {COLORMAP_HOT, 0.0f, {11, 0, 0}},          {COLORMAP_HOT, 0.5f, {255, 90, 0}},
        {COLORMAP_HOT, 1.0f, {255, 255, 255}},     {COLORMAP_GREY, 0.5f, {128, 128, 128}},
    };
    for (size_t r = 0; r < sizeof ref / sizeof ref[0]; r++) {
        unsigned char c[3];
        colormap_rgb(ref[r].cm, ref[r].t, c);
        int ok = 1;
        for (int ch = 0; ch < 3; ch++) ok &= abs(c[ch] - ref[r].rgb[ch]) <= 8;
        CHECK(ok, "colormap %d at %.2f: got %d %d %d want %d %d %d", ref[r].cm, ref[r].t, c[0], c[1], c[2],
              ref[r].rgb[0], ref[r].rgb[1], ref[r].rgb[2]);
    }
    colormap cm;
    CHECK(colormap_parse("inferno", &cm) == 0 && cm == COLORMAP_INFERNO, "parse inferno");
    CHECK(colormap_parse("jet", &cm) == -1, "unknown colour map rejected");

    // ---- colour-mapped map through the Python decoder ----
    CHECK(pngfile_write_map(path_in("map.png"), img, w, h, lo, hi, COLORMAP_INFERNO) == 0, "write map");
    dec = py_decode(path_in("map.png"), w, h, 3);
    float *wantrgb = malloc(sizeof(float) * w * h * 3);
    for (int i = 0; i < w * h; i++) {
        unsigned char c[3];
        double t = (img[i] - lo) / (hi - lo);
        colormap_rgb(COLORMAP_INFERNO, isnan(t) ? 0.0f : (float)t, c);
        for (int ch = 0; ch < 3; ch++) wantrgb[3 * i + ch] = c[ch];
    }
    tu_allclose("inferno png vs python decoder (RGB order, stride)", dec, wantrgb, (size_t)w * h * 3, 1.01, 0);
    free(dec);
    free(wantrgb);

    // ---- overlays and panel ----
    rgb_image a, b, panel;
    float flat[16 * 12];
    for (int i = 0; i < 16 * 12; i++) flat[i] = 0.5f;
    rgb_image_from_grey(&a, flat, 16, 12, 0, 1);
    unsigned char mask[16 * 12] = {0};
    for (int y = 3; y < 8; y++)
        for (int x = 4; x < 10; x++) mask[y * 16 + x] = 1;
    const unsigned char red[3] = {255, 0, 0};
    rgb_image_overlay_mask(&a, mask, red, 0.5f, 0);
    const unsigned char *p = a.px + 3 * (5 * 16 + 6);
    CHECK(abs(p[0] - 192) <= 1 && abs(p[1] - 64) <= 1 && p[2] == p[1], "mask blend 50%%: %d %d %d", p[0], p[1], p[2]);
    p = a.px + 3 * (0 * 16 + 0);
    CHECK(p[0] == 128 && p[1] == 128, "outside the mask unchanged");
    rgb_image_from_grey(&b, flat, 16, 12, 0, 1);
    rgb_image_overlay_mask(&b, mask, red, 1.0f, 1);
    CHECK(b.px[3 * (3 * 16 + 6)] == 255 && b.px[3 * (3 * 16 + 6) + 1] == 0, "outline on the boundary");
    CHECK(b.px[3 * (5 * 16 + 6)] == 128, "outline leaves the inside");
    float heat[16 * 12] = {0};
    heat[0] = 1.0f;
    rgb_image_overlay_map(&b, heat, 0, 1, COLORMAP_HOT, 1.0f, 0.5f);
    CHECK(b.px[0] == 255 && b.px[1] == 255 && b.px[2] == 255, "map overlay above threshold");
    CHECK(b.px[3] == 128, "map overlay leaves pixels below threshold");
    rgb_image tiles[2] = {a, b};
    tiles[1].h = 10;  // shorter tile: top-aligned, rest black
    rgb_image_panel(&panel, tiles, 2, 3);
    CHECK(panel.w == 35 && panel.h == 12, "panel size %dx%d", panel.w, panel.h);
    CHECK(!memcmp(panel.px + 3 * (5 * 35 + 6), a.px + 3 * (5 * 16 + 6), 3), "panel tile 0 in place");
    CHECK(!memcmp(panel.px + 3 * (3 * 35 + 19 + 6), b.px + 3 * (3 * 16 + 6), 3), "panel tile 1 in place");
    CHECK(panel.px[3 * (5 * 35 + 17)] == 0, "gap is black");
    CHECK(panel.px[3 * (11 * 35 + 20)] == 0, "below a short tile is black");
    CHECK(pngfile_write_rgb(path_in("panel.png"), &panel) == 0, "write panel");
    dec = py_decode(path_in("panel.png"), 35, 12, 3);
    float *pf = malloc(sizeof(float) * 35 * 12 * 3);
    for (int i = 0; i < 35 * 12 * 3; i++) pf[i] = panel.px[i];
    tu_allclose("panel png vs python decoder", dec, pf, 35 * 12 * 3, 0, 0);
    free(pf);
    free(dec);
    rgb_image_free(&a);
    rgb_image_free(&b);
    rgb_image_free(&panel);

    // ---- axial slice orientation and percentile window ----
    float vol[4 * 3 * 2];
    for (int i = 0; i < 24; i++) vol[i] = (float)i;
    float sl[12];
    image_axial_slice(sl, vol, 4, 3, 1);
    CHECK(sl[0] == 12 + 8 && sl[3] == 12 + 11 && sl[8] == 12, "axial slice: anterior (j=ny-1) on top");
    float ramp[101], wlo, whi;
    for (int i = 0; i < 101; i++) ramp[i] = (float)(100 - i);
    image_window_percentile(&wlo, &whi, ramp, NULL, 101, 1, 99);
    CHECK(fabsf(wlo - 1) < 1e-5 && fabsf(whi - 99) < 1e-5, "percentile window %g %g", wlo, whi);

    // ---- reading PNGs that Python encodes: 16-bit grey, 8-bit RGB ----
    float g16[5 * 3];
    for (int i = 0; i < 15; i++) g16[i] = (float)(i * 4369);  // 0..61166
    tu_write_f32(path_in("g16.f32"), g16, 15);
    char args[8400];
    snprintf(args, sizeof args, "--encode %s 5 3 1 16 %s", path_in("g16.f32"), path_in("g16.png"));
    tu_run_python("tools/png_decode.py", args);
    CHECK(pngfile_read_grey(path_in("g16.png"), &back, &bw, &bh) == 0 && bw == 5 && bh == 3, "read 16-bit: %s",
          as_error());
    for (int i = 0; i < 15; i++) g16[i] /= 65535.0f;
    if (back) tu_allclose("16-bit grey read", back, g16, 15, 1e-6, 0);
    free(back);
    float rgb[2 * 2 * 3] = {255, 255, 255, 0, 0, 0, 100, 100, 100, 255, 0, 0};
    tu_write_f32(path_in("rgb.f32"), rgb, 12);
    snprintf(args, sizeof args, "--encode %s 2 2 3 8 %s", path_in("rgb.f32"), path_in("rgb.png"));
    tu_run_python("tools/png_decode.py", args);
    CHECK(pngfile_read_grey(path_in("rgb.png"), &back, &bw, &bh) == 0 && bw == 2 && bh == 2, "read RGB: %s",
          as_error());
    if (back) {
        CHECK(fabsf(back[0] - 1) < 0.01f && back[1] < 0.01f && fabsf(back[2] - 100 / 255.0f) < 0.02f,
              "RGB greys -> their grey value: %g %g %g", back[0], back[1], back[2]);
        CHECK(back[3] > 0.1f && back[3] < 0.4f, "pure red -> luminance %g", back[3]);
    }
    free(back);

    // ---- errors name the file, write nothing partial ----
    FILE *f = fopen(path_in("notpng.png"), "wb");
    fputs("hello, I am not a PNG file at all", f);
    fclose(f);
    CHECK(pngfile_read_grey(path_in("notpng.png"), &back, &bw, &bh) == -1 && strstr(as_error(), "notpng.png") &&
              back == NULL,
          "not a PNG: %s", as_error());
    unsigned char *bytes;
    size_t nbytes;
    fs_read_all(path_in("grey.png"), &bytes, &nbytes);
    fs_write_all(path_in("trunc.png"), bytes, nbytes / 2);
    free(bytes);
    CHECK(pngfile_read_grey(path_in("trunc.png"), &back, &bw, &bh) == -1 && strstr(as_error(), "trunc.png"),
          "truncated PNG: %s", as_error());
    CHECK(pngfile_read_grey(path_in("missing.png"), &back, &bw, &bh) == -1 && strstr(as_error(), "missing.png"),
          "missing PNG: %s", as_error());
    CHECK(pngfile_write_grey(path_in("nodir/x.png"), img, w, h, 0, 1) == -1 && strstr(as_error(), "nodir/x.png"),
          "unwritable path: %s", as_error());
    CHECK(pngfile_write_grey(path_in("empty.png"), img, 0, h, 0, 1) == -1 && !fs_exists(path_in("empty.png")),
          "empty image refused, nothing written");
    CHECK(!dir_has_temp_files(dir), "no temp files left after failures");

    free(img);
    free(want);
    return tu_finish();
}
