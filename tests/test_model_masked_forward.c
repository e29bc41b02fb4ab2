// swinmae_forward_masked (the anomaly map's shortcut: the last decoder stage runs only the
// windows the masked tokens depend on) against the full swinmae_forward of the same inference
// model: the same loss, and the same prediction at every masked token. Windows at the image
// border (where the shifted blocks mask across the wrap-around), in the interior at odd
// offsets, several per image, and an image with nothing masked, at a small config (odd depth in
// the last stage) and at the paper config.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/testutil.h"
#include "model/params.h"
#include "model/swinmae/swin_mae.h"
#include "util/error.h"
#include "util/rng.h"

// Masks the token rectangle [r0, r0+h) x [c0, c0+w) of image b (G x G tokens).
static void mask_rect(uint8_t *mask, int b, int G, int r0, int c0, int h, int w) {
    for (int r = r0; r < r0 + h; r++)
        for (int c = c0; c < c0 + w; c++) mask[(size_t)b * G * G + r * G + c] = 1;
}

static void compare(const char *config, const char *tag) {
    swinmae_config cfg;
    swinmae_config_default(&cfg);
    if (config && swinmae_config_parse(&cfg, config, "config")) {
        CHECK(0, "%s: config", tag);
        return;
    }
    const int B = 4, G = cfg.img_size / cfg.patch_size, L = G * G, u = G / 4;  // u: a 64 px window at 224
    swinmae m;
    if (swinmae_create(&m, &cfg, B, 0)) {
        CHECK(0, "%s: create", tag);
        return;
    }
    params_init(&m.table, m.params, 3);
    size_t npix = (size_t)B * cfg.in_chans * cfg.img_size * cfg.img_size,
           K = (size_t)cfg.patch_size * cfg.patch_size * cfg.in_chans;
    float *img = as_malloc(sizeof(float) * npix), *full = as_malloc(sizeof(float) * (size_t)B * L * K);
    uint8_t *mask = as_calloc((size_t)B * L, 1);
    rng r;
    rng_seed(&r, 11);
    for (size_t i = 0; i < npix; i++) img[i] = (float)rng_uniform(&r);
    mask_rect(mask, 0, G, 0, 0, u, u);                  // top-left corner
    mask_rect(mask, 1, G, G - u, G - u, u, u);          // bottom-right corner: wrap-around regions
    mask_rect(mask, 2, G, 3, 5, u / 2 + 1, u);          // interior, odd offsets, not square
    mask_rect(mask, 2, G, G - u / 2, 1, u / 2, u / 2);  // a second window in the same image
    // image 3: nothing masked
    float loss_full = swinmae_forward(&m, img, mask, B, 0, 0);
    memcpy(full, swinmae_pred(&m), sizeof(float) * (size_t)B * L * K);
    float loss_masked = swinmae_forward_masked(&m, img, mask, B);
    const float *part = swinmae_pred(&m);
    size_t n = 0;
    for (int i = 0; i < B * L; i++) n += mask[i];
    float *a = as_malloc(sizeof(float) * n * K), *b = as_malloc(sizeof(float) * n * K);
    size_t k = 0;
    for (int i = 0; i < B * L; i++)
        if (mask[i]) {
            memcpy(a + k * K, part + (size_t)i * K, sizeof(float) * K);
            memcpy(b + k * K, full + (size_t)i * K, sizeof(float) * K);
            k++;
        }
    char what[160];
    snprintf(what, sizeof what, "%s: prediction at the %zu masked tokens", tag, n);
    tu_allclose(what, a, b, n * K, 1e-5, 1e-4);
    CHECK(fabsf(loss_masked - loss_full) <= 1e-5f * loss_full, "%s: loss %.8g vs %.8g", tag, loss_masked, loss_full);
    // The shortcut must leave the full forward intact.
    swinmae_forward(&m, img, mask, B, 0, 0);
    CHECK(!memcmp(swinmae_pred(&m), full, sizeof(float) * (size_t)B * L * K), "%s: full forward unchanged after", tag);
    free(a), free(b), free(img), free(full), free(mask);
    swinmae_free(&m);
}

int main(void) {
    compare("img_size=128,patch_size=4,in_chans=1,embed_dim=16,depths=3/1/1/1,num_heads=1/1/2/2,window=4",
            "small, 3 blocks in the last stage");
    compare(NULL, "paper config");
    return tu_finish();
}
