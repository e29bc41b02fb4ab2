// Parameter table, config and initialisation. The PyTorch comparisons (names, shapes, order,
// relative_position_index, init statistics) run tools/swin_mae_ref.py as an independent reference.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/testutil.h"
#include "model/swinmae/config.h"
#include "model/params.h"
#include "model/swinmae/relpos.h"
#include "util/error.h"

static void test_counts_default(void) {
    swinmae_config c;
    swinmae_config_default(&c);
    CHECK(swinmae_config_check(&c) == 0, "default config valid: %s", as_error());
    param_table t;
    CHECK(param_table_build(&t, &c) == 0, "build");
    // Numbers from the reference page (the authors' model): 224 state_dict entries,
    // 26,936,916 parameters in all, 26,635,860 trainable; encoder 20,411,850 (patch_embed +
    // layers.*, so without mask_token and pos_embed).
    CHECK(t.n == 224, "224 entries, got %d", t.n);
    CHECK(t.n_floats == 26936916, "all floats %zu", t.n_floats);
    CHECK(t.n_trainable == 26635860, "trainable %zu", t.n_trainable);
    CHECK(t.n_i64_tensors == 14 && t.n_i64 == 14 * 49 * 49, "14 index buffers (one per block) (%d, %zu)", t.n_i64_tensors, t.n_i64);
    size_t enc = 0, s3 = 0;
    for (int i = 0; i < t.n; i++) {
        const param_entry *e = &t.entries[i];
        if (e->dtype != PARAM_F32) continue;
        if (!strncmp(e->name, "layers.", 7) || !strncmp(e->name, "patch_embed.", 12))
            enc += e->numel;
        if (!strncmp(e->name, "layers.3.", 9)) s3 += e->numel;
    }
    CHECK(enc == 20411850, "encoder params %zu", enc);
    CHECK(s3 > 14175000 && s3 < 14185000, "7x7 stage holds 14.18M: %zu", s3);
    const param_entry *e = param_table_find(&t, "layers.3.blocks.1.attn.relative_position_index");
    CHECK(e && e->dtype == PARAM_I64 && e->shape[0] == 49, "index buffer present");
    e = param_table_find(&t, "decoder_pred.weight");
    CHECK(e && e->shape[0] == 48 && e->shape[1] == 96 && e->offset + e->numel + 48 == t.n_floats, "decoder_pred last");
    CHECK(!strcmp(t.entries[0].name, "pos_embed") && !t.entries[0].trainable, "pos_embed first and frozen");
    CHECK(param_table_find(&t, "nope") == NULL, "missing name -> NULL");
    // Offsets are contiguous.
    size_t off = 0;
    int ok = 1;
    for (int i = 0; i < t.n; i++)
        if (t.entries[i].dtype == PARAM_F32) {
            ok &= t.entries[i].offset == off;
            off += t.entries[i].numel;
        }
    CHECK(ok && off == t.n_floats, "offsets contiguous");
    param_table_free(&t);
}

static void test_config(void) {
    swinmae_config c, d;
    swinmae_config_default(&c);
    char json[512];
    CHECK(swinmae_config_to_json(&c, json, sizeof json) == 0, "to json");
    swinmae_config_default(&d);
    d.embed_dim = 48;
    CHECK(swinmae_config_parse(&d, json, "test") == 0 && swinmae_config_equal(&c, &d), "json round trip: %s", json);
    swinmae_config_default(&d);
    CHECK(swinmae_config_parse(&d, "img_size=112, patch_size=2, embed_dim=48,depths=[1,2,1,2], num_heads=3/3/6/6,in_chans=1,drop_path_rate=0",
                               "--config") == 0,
          "kv parse: %s", as_error());
    CHECK(d.img_size == 112 && d.embed_dim == 48 && d.depths[0] == 1 && d.depths[3] == 2 && d.num_heads[2] == 6 &&
              d.in_chans == 1 && d.drop_path_rate == 0.0f && d.window == 7,
          "kv values");
    swinmae_config_default(&d);
    CHECK(swinmae_config_parse(&d, "img_size=100", "--config") == -1 && strstr(as_error(), "--config") &&
              strstr(as_error(), "img_size"),
          "bad img_size rejected: %s", as_error());
    CHECK(swinmae_config_parse(&d, "foo=1", "--config") == -1 && strstr(as_error(), "foo"), "unknown key: %s", as_error());
    CHECK(swinmae_config_parse(&d, "num_heads=[5,6,12,24]", "x") == -1 && strstr(as_error(), "num_heads"),
          "heads must divide: %s", as_error());
    CHECK(d.img_size == 224, "failed parse leaves config untouched");
    // DropPath schedule: linspace(0, 0.1, 8).
    CHECK(fabsf(swinmae_drop_path(&c, 0, 0)) == 0 && fabsf(swinmae_drop_path(&c, 3, 1) - 0.1f) < 1e-7f &&
              fabsf(swinmae_drop_path(&c, 1, 1) - 0.3f / 7) < 1e-7f,
          "drop path rates");
}

static void test_relpos_small(void) {
    // Window 2: positions (0,0),(0,1),(1,0),(1,1); table is 3x3. Written out by hand.
    int64_t idx[16];
    relative_position_index(idx, 2);
    const int64_t want[16] = {4, 3, 1, 0, 5, 4, 2, 1, 7, 6, 4, 3, 8, 7, 5, 4};
    CHECK(!memcmp(idx, want, sizeof want), "relative_position_index window 2");
}

static void test_init_stats(void) {
    swinmae_config c;
    swinmae_config_default(&c);
    param_table t;
    param_table_build(&t, &c);
    float *p = as_malloc(t.n_floats * sizeof(float)), *q = as_malloc(t.n_floats * sizeof(float));
    params_init(&t, p, 7);
    params_init(&t, q, 7);
    CHECK(!memcmp(p, q, t.n_floats * sizeof(float)), "init deterministic");
    float *w = param_ptr(&t, p, "layers.3.blocks.0.mlp.fc1.weight");  // (3072, 768)
    double a = sqrt(6.0 / (768 + 3072)), s2 = 0, mx = 0;
    size_t n = 3072 * 768;
    for (size_t i = 0; i < n; i++) {
        s2 += (double)w[i] * w[i];
        mx = fmax(mx, fabs(w[i]));
    }
    CHECK(mx <= a && mx > 0.999 * a, "xavier bound %g vs %g", mx, a);
    CHECK(fabs(s2 / n - a * a / 3) < 0.01 * a * a / 3, "xavier variance");
    float *ln = param_ptr(&t, p, "norm_up.weight"), *lb = param_ptr(&t, p, "norm_up.bias");
    CHECK(ln[0] == 1 && ln[95] == 1 && lb[0] == 0 && lb[95] == 0, "layernorm 1/0");
    float *pe = param_ptr(&t, p, "pos_embed");
    // token (row 1, col 2): first quarter sin(2 * 10000^0) = sin 2, third quarter sin(1).
    CHECK(fabsf(pe[(56 + 2) * 96 + 0] - sinf(2.0f)) < 1e-6f && fabsf(pe[(56 + 2) * 96 + 48] - sinf(1.0f)) < 1e-6f &&
              fabsf(pe[(56 + 2) * 96 + 24] - cosf(2.0f)) < 1e-6f,
          "pos_embed sin-cos layout");
    free(p);
    free(q);
    param_table_free(&t);
}

// Names, dtypes, shapes and order equal the PyTorch reference's state_dict.
static void compare_with_torch(const char *config) {
    const char *dir = tu_scratch_dir("model_params");
    char path[1024], args[2048];
    snprintf(path, sizeof path, "%s/names.txt", dir);
    snprintf(args, sizeof args, "names --out '%s'%s%s%s", path, config ? " --config '" : "", config ? config : "",
             config ? "'" : "");
    tu_run_python("tools/swin_mae_ref.py", args);
    swinmae_config c;
    swinmae_config_default(&c);
    if (config) CHECK(swinmae_config_parse(&c, config, "--config") == 0, "parse %s: %s", config, as_error());
    param_table t;
    CHECK(param_table_build(&t, &c) == 0, "build");
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "open %s", path);
    if (!f) return;
    char name[256], dt[8], shape[64];
    int i = 0, bad = 0;
    while (fscanf(f, "%255s %7s %63s", name, dt, shape) == 3) {
        if (i >= t.n) {
            bad++;
            printf("extra torch entry %s\n", name);
            i++;
            continue;
        }
        const param_entry *e = &t.entries[i++];
        char s[64];
        param_shape_str(e, s, sizeof s);
        if (strcmp(name, e->name) || strcmp(shape, s) || strcmp(dt, e->dtype == PARAM_F32 ? "F32" : "I64")) {
            if (bad++ < 5) printf("entry %d: torch %s %s %s, anoswin %s %s\n", i - 1, name, dt, shape, e->name, s);
        }
    }
    fclose(f);
    CHECK(bad == 0 && i == t.n, "%s: %d entries equal torch's state_dict (%d mismatches, torch has %d)",
          config ? config : "paper config", t.n, bad, i);
    // relative_position_index and pos_embed equal the reference's buffers.
    snprintf(path, sizeof path, "%s/relpos.i64", dir);
    snprintf(args, sizeof args, "relpos --config 'window=%d' --out '%s'", c.window, path);
    tu_run_python("tools/swin_mae_ref.py", args);
    size_t n = (size_t)c.window * c.window * c.window * c.window;
    int64_t *ref = tu_read_i64(path, n), *got = as_malloc(n * sizeof *got);
    relative_position_index(got, c.window);
    CHECK(!memcmp(ref, got, n * sizeof *got), "relative_position_index (window %d) equals torch's buffer", c.window);
    free(ref);
    free(got);
    snprintf(path, sizeof path, "%s/posembed.f32", dir);
    snprintf(args, sizeof args, "posembed --config 'img_size=%d,patch_size=%d,window=%d,embed_dim=%d' --out '%s'",
             c.img_size, c.patch_size, c.window, c.embed_dim, path);
    tu_run_python("tools/swin_mae_ref.py", args);
    n = (size_t)swinmae_num_tokens(&c) * c.embed_dim;
    float *pr = tu_read_f32(path, n), *pg = as_malloc(n * sizeof *pg);
    pos_embed_sincos(pg, c.embed_dim, swinmae_grid(&c));
    tu_allclose("pos_embed", pg, pr, n, 1e-6, 1e-6);
    free(pr);
    free(pg);
    param_table_free(&t);
}

int main(void) {
    compare_with_torch(NULL);
    compare_with_torch("img_size=112,patch_size=2,in_chans=1,embed_dim=24,depths=[1,3,2,1],num_heads=[1,2,3,4],window=7,mlp_ratio=2");
    compare_with_torch("img_size=64,patch_size=2,embed_dim=16,depths=2/2/2/2,num_heads=1/2/4/8,window=4");
    test_counts_default();
    test_config();
    test_relpos_small();
    test_init_stats();
    return tu_finish();
}
