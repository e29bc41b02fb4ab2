// The ViT MAE against its PyTorch reference (tools/vitmae_ref.py) on two small configs with odd
// sizes (head dims 5 and 4, MLP ratio 3): case a (2 channels) hides 6, 6 and 13 of 16 tokens, so
// the encoder runs two groups of different lengths; case b has norm_pix_loss, one encoder block
// and 100 tokens, 30 of them hidden (attention's long-window path: 71 and 101 rows). A PyTorch
// state_dict loads strictly; the prediction, the loss and every parameter gradient match (the
// frozen position embeddings get none); the sin-cos embeddings of a fresh model equal PyTorch's;
// a checkpoint written by PyTorch predicts through the model interface (the inference path,
// blocks in place) within 1e-4; and a checkpoint written here loads strictly in PyTorch and
// predicts the same (tools/vitmae_ref.py check, within 1e-4).
// Tolerances as tests/test_model_vae.c: values atol 1e-5 / rtol 1e-4, gradients atol 1e-4 /
// rtol 1e-3, relative L2 <= 1e-5 each.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/testutil.h"
#include "model/checkpoint.h"  // checkpoint_load
#include "model/model.h"
#include "model/vitmae/vitmae.h"

static const char *dir;

static const char *path_of(const char *cs, const char *name) {
    static char path[4][4200];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s/%s", dir, cs, name);
    return path[k];
}

static float *rd(const char *cs, const char *name, size_t n) {
    char file[300];
    snprintf(file, sizeof file, "%s.f32", name);
    return tu_read_f32(path_of(cs, file), n);
}

static uint8_t *rd_mask(const char *cs, size_t n) {
    const char *p = path_of(cs, "mask.u8");
    FILE *f = fopen(p, "rb");
    uint8_t *m = calloc(n + 1, 1);
    if (!f || fread(m, 1, n + 1, f) != n) {
        fprintf(stderr, "%s: missing or not %zu bytes\n", p, n);
        exit(1);
    }
    fclose(f);
    return m;
}

static void cmp(const char *name, const float *got, const float *ref, size_t n, double atol) {
    tu_allclose(name, got, ref, n, atol, atol >= 1e-4 ? 1e-3 : 1e-4);
    char buf[300];
    snprintf(buf, sizeof buf, "%.200s (rel L2)", name);
    tu_rel_l2(buf, got, ref, n, 1e-5);
}

typedef struct parity_case {
    const char *name, *config;
    int B, n_tensors;
} parity_case;

static const parity_case CASES[2] = {
    {"a",
     "img_size=16,in_chans=2,patch_size=4,embed_dim=20,depth=2,num_heads=4,decoder_embed_dim=12,decoder_depth=2,"
     "decoder_num_heads=3,mlp_ratio=3,norm_pix_loss=0",
     3, 4 + 2 + 2 * 12 + 2 + 2 + 2 * 12 + 2 + 2},
    {"b",
     "img_size=40,in_chans=1,patch_size=4,embed_dim=20,depth=1,num_heads=4,decoder_embed_dim=12,decoder_depth=2,"
     "decoder_num_heads=3,mlp_ratio=3,norm_pix_loss=1",
     2, 4 + 2 + 12 + 2 + 2 + 2 * 12 + 2 + 2},
};

static void test_training_step(const parity_case *pc) {
    const char *cs = pc->name;
    const int B = pc->B;
    vitmae_config c;
    vitmae_config_default(&c);
    CHECK(vitmae_config_parse(&c, pc->config, "test") == 0, "case %s: config parses", cs);
    vitmae v;
    CHECK(vitmae_create(&v, &c, B, 1) == 0, "case %s: vitmae_create", cs);
    CHECK(v.table.n == pc->n_tensors, "case %s: %d tensors in the table (want %d)", cs, v.table.n, pc->n_tensors);
    CHECK(checkpoint_load(path_of(cs, "ref.safetensors"), &v.table, v.params) == 0,
          "case %s: PyTorch state_dict loads strictly", cs);
    const int L = vitmae_tokens(&c), K = vitmae_patch_dim(&c);
    const size_t npx = (size_t)B * c.in_chans * c.img_size * c.img_size;
    float *x = rd(cs, "x", npx), *pred = calloc((size_t)B * L * K, sizeof(float)), *img = calloc(npx, sizeof(float));
    uint8_t *mask = rd_mask(cs, (size_t)B * L);
    memset(v.grads, 0, sizeof(float) * v.table.n_floats);
    float loss = vitmae_forward(&v, x, mask, B);
    vitmae_backward(&v);
    char what[300];
    snprintf(what, sizeof what, "case %s prediction", cs);
    vitmae_pred(&v, pred);
    float *ref = rd(cs, "pred", (size_t)B * L * K);
    cmp(what, pred, ref, (size_t)B * L * K, 1e-5);
    free(ref);
    ref = rd(cs, "loss", 1);
    CHECK(fabsf(loss - ref[0]) <= 1e-5f * fabsf(ref[0]), "case %s: loss %.9g vs torch %.9g", cs, loss, ref[0]);
    free(ref);
    snprintf(what, sizeof what, "case %s prediction in pixels", cs);
    vitmae_pixels(&v, img);
    ref = rd(cs, "recon", npx);
    cmp(what, img, ref, npx, 1e-5);
    free(ref);
    int n_grads = 0, n_frozen = 0;
    for (int i = 0; i < v.table.n; i++) {
        const param_entry *e = &v.table.entries[i];
        if (e->trainable) {
            char name[200];
            snprintf(name, sizeof name, "grad__%s", e->name);
            snprintf(what, sizeof what, "case %s d %s", cs, e->name);
            ref = rd(cs, name, e->numel);
            cmp(what, v.grads + e->offset, ref, e->numel, 1e-4);
            free(ref);
            n_grads++;
        } else {
            int zero = 1;
            for (size_t k = 0; k < e->numel; k++) zero &= v.grads[e->offset + k] == 0.0f;
            CHECK(zero, "case %s: frozen %s gets no gradient", cs, e->name);
            n_frozen++;
        }
    }
    CHECK(n_grads == pc->n_tensors - 2 && n_frozen == 2, "case %s: every parameter compared (%d gradients, %d frozen)",
          cs, n_grads, n_frozen);

    // A fresh model's sin-cos embeddings are PyTorch's (the reference file holds them untouched).
    vitmae fresh;
    CHECK(vitmae_create(&fresh, &c, 1, 0) == 0, "case %s: inference model", cs);
    vitmae_init(&fresh, 1);
    const char *pe[2] = {"pos_embed", "decoder_pos_embed"};
    for (int i = 0; i < 2; i++) {
        const param_entry *e = param_table_find(&fresh.table, pe[i]);
        snprintf(what, sizeof what, "case %s fresh %s", cs, pe[i]);
        tu_allclose(what, fresh.params + e->offset, v.params + e->offset, e->numel, 1e-6, 1e-6);
    }
    vitmae_free(&fresh);
    free(x);
    free(pred);
    free(img);
    free(mask);
    vitmae_free(&v);
}

static void test_interface(const parity_case *pc) {
    const char *cs = pc->name;
    const int B = pc->B;
    CHECK(model_method_find("vitmae") != NULL, "the registry knows 'vitmae'");
    model m;
    CHECK(model_load(&m, path_of(cs, "ref.safetensors"), B) == 0, "case %s: model_load of a PyTorch checkpoint", cs);
    CHECK(!strcmp(m.method->name, "vitmae") && !m.method->whole_image, "case %s: a masking vitmae model", cs);
    const int L = model_tokens(&m);
    const size_t npx = (size_t)B * m.in_chans * m.img_size * m.img_size;
    float *x = rd(cs, "x", npx), *y = calloc(npx, sizeof(float)), *ref = rd(cs, "recon", npx);
    uint8_t *mask = rd_mask(cs, (size_t)B * L);
    float *want = rd(cs, "loss", 1);
    float loss = m.method->reconstruct(&m, y, x, mask, B);
    char what[100];
    snprintf(what, sizeof what, "case %s reconstruct (inference path)", cs);
    tu_allclose(what, y, ref, npx, 1e-4, 0);
    CHECK(fabsf(loss - want[0]) <= 1e-4f * fabsf(want[0]), "case %s: reconstruct's loss %g vs torch %g", cs, loss,
          want[0]);
    float *lat = calloc((size_t)B * 20, sizeof(float));
    CHECK(m.method->latent(&m, NULL, x, mask, B) == 20, "case %s: latent length embed_dim", cs);
    m.method->latent(&m, lat, x, mask, B);
    int fin = 1;
    for (int i = 0; i < B * 20; i++) fin &= isfinite(lat[i]) != 0;
    CHECK(fin, "case %s: latent finite", cs);
    const char *ours = path_of(cs, "ours.safetensors"), *ys = path_of(cs, "y_ours.f32");
    CHECK(model_save(&m, ours, NULL, 0) == 0, "case %s: model_save", cs);
    tu_write_f32(ys, y, npx);
    char args[17000];
    snprintf(args, sizeof args, "check %s %s %s %s %d", ours, path_of(cs, "x.f32"), path_of(cs, "mask.u8"), ys, B);
    tu_run_python("tools/vitmae_ref.py", args);  // aborts the test when PyTorch disagrees
    CHECK(1, "case %s: PyTorch loads our checkpoint strictly and predicts within 1e-4", cs);
    model back;
    CHECK(model_load(&back, ours, B) == 0, "case %s: our checkpoint loads back", cs);
    CHECK(!memcmp(back.params, m.params, sizeof(float) * m.table->n_floats), "case %s: save/load round trip is exact",
          cs);
    model_free(&back);
    model_free(&m);

    // Training through the interface: fresh parameters, a finite loss and gradients.
    model t;
    CHECK(model_create(&t, "vitmae", pc->config, B, 1, "test") == 0, "case %s: model_create vitmae (training)", cs);
    t.method->init_params(&t, 3);
    model_zero_grad(&t);
    loss = t.method->train_batch(&t, x, mask, B, 1, 11);
    double gsum = 0;
    for (size_t i = 0; i < t.table->n_floats; i++) gsum += fabs(t.grads[i]);
    CHECK(isfinite(loss) && loss > 0 && isfinite(gsum) && gsum > 0, "case %s: train_batch: loss %g, |grad| sum %g", cs,
          loss, gsum);
    model_free(&t);
    free(x);
    free(y);
    free(ref);
    free(want);
    free(mask);
    free(lat);
}

static void test_configs(void) {
    vitmae_config c;
    vitmae_config_default(&c);
    CHECK(vitmae_config_parse(&c, "preset=vit-b16", "test") == 0 && c.embed_dim == 768 && c.depth == 12 &&
              c.num_heads == 12 && c.decoder_embed_dim == 512 && c.decoder_depth == 8 && c.patch_size == 16,
          "preset vit-b16");
    param_table t;
    CHECK(vitmae_table_build(&t, &c) == 0, "vit-b16 table");
    // models_mae.py's mae_vit_base_patch16 has 111,907,840 parameters (position tables included)
    // with 3 channels; one channel drops 2 x 256 inputs of each of the 768 patch-embedding rows
    // and 2 x 256 rows (512 weights + 1 bias) of the prediction head.
    CHECK(t.n_floats == 111907840u - 2u * 256u * 768u - 2u * 256u * 513u, "vit-b16: %zu floats", t.n_floats);
    param_table_free(&t);
    // ViT-L/16 with its decoder is Table 1's 329M-parameter MAE (328,754,944 in tools/vitmae_ref.py).
    CHECK(vitmae_config_parse(&c, "preset=vit-l16", "test") == 0 && vitmae_table_build(&t, &c) == 0 &&
              t.n_floats == 328754944u,
          "vit-l16: %zu floats", t.n_floats);
    param_table_free(&t);
    CHECK(vitmae_config_parse(&c, "preset=vit-l16,img_size=128", "test") == 0 && c.embed_dim == 1024 && c.depth == 24 &&
              c.img_size == 128,
          "preset vit-l16 then an override");
    CHECK(vitmae_config_parse(&c, "preset=vit-x", "test") != 0, "an unknown preset is an error");
    CHECK(vitmae_config_parse(&c, "embed_dim=30", "test") != 0, "embed_dim must be a multiple of 4");
    CHECK(vitmae_config_parse(&c, "img_size=256,patch_size=2", "test") != 0, "too many tokens is an error");
}

// The reference's default and named configs equal config.c's: the bench's PyTorch side builds
// them from tools/vitmae_ref.py, and a drifted one times a different model (its default once had
// patch 4, 1024 tokens, against anoswin's patch 8).
static void test_presets_match_reference(void) {
    const char *p = path_of(".", "presets.txt");
    FILE *f = fopen(p, "r");
    CHECK(f != NULL, "%s written by the reference", p);
    if (!f) return;
    char name[64], json[1024], ours[1024];
    int n = 0;
    while (fscanf(f, "%63s %1023s", name, json) == 2) {
        vitmae_config c;
        if (!strcmp(name, "default")) vitmae_config_default(&c);
        else CHECK(vitmae_config_preset(&c, name) == 0, "reference preset '%s' exists in config.c", name);
        CHECK(vitmae_config_to_json(&c, ours, sizeof ours) == 0 && !strcmp(ours, json),
              "config '%s' equals the reference's:\n  ours  %s\n  torch %s", name, ours, json);
        n++;
    }
    fclose(f);
    CHECK(n == 4, "the default and 3 presets compared (%d)", n);
}

int main(void) {
    dir = tu_scratch_dir("test_model_vitmae");
    char args[4200];
    snprintf(args, sizeof args, "dump %s", dir);
    tu_run_python("tools/vitmae_ref.py", args);
    test_presets_match_reference();
    test_configs();
    for (int i = 0; i < 2; i++) {
        test_training_step(&CASES[i]);
        test_interface(&CASES[i]);
    }
    return tu_finish();
}
