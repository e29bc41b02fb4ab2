// Model checkpoints: anoswin -> PyTorch (load_state_dict(strict=True) in the reference, values
// bit-identical) and PyTorch -> anoswin (with and without our metadata, the latter inferring
// the config from shapes), at a small config and the paper config; strict name/shape/dtype
// matching with errors naming the tensor and the file.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/testutil.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/model.h"
#include "model/params.h"
#include "model/swinmae/relpos.h"
#include "util/error.h"

static char dir[1024];
static const char *SMALL = "img_size=112,patch_size=2,in_chans=1,embed_dim=24,depths=[1,3,2,1],num_heads=[1,2,3,4],mlp_ratio=2";

static void interchange(const char *config, const char *tag) {
    swinmae_config c;
    swinmae_config_default(&c);
    if (config) swinmae_config_parse(&c, config, "--config");
    param_table t;
    CHECK(param_table_build(&t, &c) == 0, "build");
    float *p = as_malloc(t.n_floats * sizeof(float)), *q = as_malloc(t.n_floats * sizeof(float));
    params_init(&t, p, 5);
    char path[1200], flat[1200], args[4000], cfgarg[600];
    snprintf(cfgarg, sizeof cfgarg, "%s%s%s", config ? "--config '" : "", config ? config : "", config ? "'" : "");

    // anoswin -> PyTorch
    snprintf(path, sizeof path, "%s/%s_c.safetensors", dir, tag);
    snprintf(flat, sizeof flat, "%s/%s_c.f32", dir, tag);
    st_kv extra[1] = {{"epoch", "3"}};
    CHECK(checkpoint_save(path, &t, p, extra, 1) == 0, "%s: save: %s", tag, as_error());
    snprintf(args, sizeof args, "st2torch '%s' '%s' %s", path, flat, cfgarg);
    tu_run_python("tools/checkpoint_check.py", args);
    float *r = tu_read_f32(flat, t.n_floats);
    CHECK(!memcmp(r, p, t.n_floats * sizeof(float)), "%s: PyTorch loads anoswin's file strictly, values identical", tag);
    free(r);
    st_file f;
    CHECK(st_open(&f, path) == 0 && st_meta(&f, "epoch") && !strcmp(st_meta(&f, "epoch"), "3") &&
              !strcmp(st_meta(&f, "format"), "pt"),
          "%s: metadata kept", tag);
    CHECK(st_meta(&f, CHECKPOINT_METHOD_KEY) && !strcmp(st_meta(&f, CHECKPOINT_METHOD_KEY), "swinmae"),
          "%s: the type tag is written", tag);
    st_close(&f);
    // A method this build does not know is refused, naming the file.
    char other[1300];
    snprintf(other, sizeof other, "%s/%s_vae.safetensors", dir, tag);
    st_write_item one = {.name = "w", .dtype = ST_F32, .ndim = 1, .shape = {1}, .data = p};
    st_kv vae[1] = {{CHECKPOINT_METHOD_KEY, "vae"}};
    model mo;
    CHECK(st_write(other, &one, 1, vae, 1) == 0 && model_load(&mo, other, 1) == -1 && strstr(as_error(), other) &&
              strstr(as_error(), "vae"),
          "%s: unknown method refused: %s", tag, as_error());

    // PyTorch -> anoswin, with and without metadata.
    for (int meta = 1; meta >= 0; meta--) {
        snprintf(path, sizeof path, "%s/%s_t%d.safetensors", dir, tag, meta);
        snprintf(flat, sizeof flat, "%s/%s_t%d.f32", dir, tag, meta);
        snprintf(args, sizeof args, "torch2st '%s' '%s' %s --seed 2 %s", path, flat, cfgarg, meta ? "" : "--no-metadata");
        tu_run_python("tools/checkpoint_check.py", args);
        swinmae_config got;
        CHECK(checkpoint_read_config(path, &got) == 0 && swinmae_config_equal(&got, &c), "%s: config from %s: %s", tag,
              meta ? "metadata" : "shapes", as_error());
        memset(q, 0, t.n_floats * sizeof(float));
        CHECK(checkpoint_load(path, &t, q) == 0, "%s: load torch file: %s", tag, as_error());
        r = tu_read_f32(flat, t.n_floats);
        CHECK(!memcmp(r, q, t.n_floats * sizeof(float)), "%s: torch values loaded exactly (metadata %d)", tag, meta);
        free(r);
        // Untagged (converted, or written before the tag): the Swin MAE, through the interface.
        model m;
        CHECK(model_load(&m, path, 1) == 0 && !strcmp(m.method->name, "swinmae") && m.table->n_floats == t.n_floats &&
                  !memcmp(m.params, q, t.n_floats * sizeof(float)),
              "%s: an untagged file loads as the Swin MAE through model_load: %s", tag, as_error());
        model_free(&m);
    }
    free(p);
    free(q);
    param_table_free(&t);
}

// Writes the table's tensors with one change, then expects checkpoint_load to name `needle`.
enum { DROP, EXTRA, RESHAPE, RETYPE, BAD_INDEX };
static void strict_case(const param_table *t, const float *p, int what, const char *label, const char *needle) {
    int64_t *idx = as_malloc(t->n_i64 * sizeof *idx);
    params_fill_index(t, idx);
    st_write_item *it = as_calloc((size_t)t->n + 1, sizeof *it);
    int n = 0;
    float extra[2] = {0};
    for (int i = 0; i < t->n; i++) {
        const param_entry *e = &t->entries[i];
        if (what == DROP && i == 7) continue;
        st_write_item *w = &it[n++];
        w->name = e->name;
        w->dtype = e->dtype == PARAM_F32 ? ST_F32 : ST_I64;
        w->ndim = e->ndim;
        memcpy(w->shape, e->shape, sizeof e->shape);
        w->data = e->dtype == PARAM_F32 ? (const void *)(p + e->offset) : (const void *)(idx + e->offset);
        if (what == RESHAPE && i == 7) {
            w->ndim = 2;
            w->shape[0] = e->shape[0] / 2;
            w->shape[1] = 2;  // same bytes, different shape
        }
        if (what == RETYPE && i == 7) {
            w->dtype = ST_I32;  // same bytes (4), wrong dtype
        }
    }
    if (what == EXTRA) it[n++] = (st_write_item){.name = "head.weight", .dtype = ST_F32, .ndim = 1, .shape = {2}, .data = extra};
    if (what == BAD_INDEX) idx[5] += 1;
    char path[1200];
    snprintf(path, sizeof path, "%s/strict_%s.safetensors", dir, label);
    CHECK(st_write(path, it, n, NULL, 0) == 0, "write %s", label);
    float *q = as_malloc(t->n_floats * sizeof(float));
    int rc = checkpoint_load(path, t, q);
    printf("  %-9s -> %s\n", label, as_error());
    CHECK(rc == -1 && strstr(as_error(), path) && strstr(as_error(), needle), "%s rejected naming '%s'", label, needle);
    free(q);
    free(it);
    free(idx);
}

static void test_strict(void) {
    swinmae_config c;
    swinmae_config_default(&c);
    swinmae_config_parse(&c, SMALL, "--config");
    param_table t;
    param_table_build(&t, &c);
    float *p = as_malloc(t.n_floats * sizeof(float));
    params_init(&t, p, 1);
    const char *name7 = t.entries[7].name;
    strict_case(&t, p, DROP, "missing", name7);
    strict_case(&t, p, EXTRA, "extra", "head.weight");
    strict_case(&t, p, RESHAPE, "reshaped", name7);
    strict_case(&t, p, RETYPE, "retyped", name7);
    strict_case(&t, p, BAD_INDEX, "badindex", "relative_position_index");
    // A checkpoint of another config does not load into this table.
    swinmae_config d;
    swinmae_config_default(&d);
    param_table td;
    param_table_build(&td, &d);
    char path[1200];
    snprintf(path, sizeof path, "%s/strict_other.safetensors", dir);
    float *pd = as_calloc(td.n_floats, sizeof(float));
    checkpoint_save(path, &td, pd, NULL, 0);
    CHECK(checkpoint_load(path, &t, p) == -1 && strstr(as_error(), path), "other config rejected: %s", as_error());
    free(pd);
    param_table_free(&td);
    free(p);
    param_table_free(&t);
}

// tools/ref_model_dump.py output (what nn's and train's parity tests read) loads here.
static void test_dump_readable(void) {
    char out[1200], args[2000], path[1300];
    snprintf(out, sizeof out, "%s/dump", dir);
    snprintf(args, sizeof args, "'%s' --config '%s' --batch 1 --adamw-steps 1", out, SMALL);
    tu_run_python("tools/ref_model_dump.py", args);
    swinmae_config c;
    snprintf(path, sizeof path, "%s/weights.safetensors", out);
    CHECK(checkpoint_read_config(path, &c) == 0, "dump config");
    param_table t;
    param_table_build(&t, &c);
    float *p = as_malloc(t.n_floats * sizeof(float)), *g = as_malloc(t.n_floats * sizeof(float));
    CHECK(checkpoint_load(path, &t, p) == 0, "dump weights load: %s", as_error());
    snprintf(path, sizeof path, "%s/grads.safetensors", out);
    st_file f;
    int ok = st_open(&f, path) == 0;
    CHECK(ok, "grads open: %s", as_error());
    for (int i = 0; ok && i < t.n; i++)
        if (t.entries[i].dtype == PARAM_F32)
            ok = st_read_f32(&f, t.entries[i].name, g + t.entries[i].offset, t.entries[i].numel) == 0;
    CHECK(ok, "every table tensor has a gradient: %s", as_error());
    if (f.map) st_close(&f);
    snprintf(path, sizeof path, "%s/grads_flat.f32", out);
    float *gf = tu_read_f32(path, t.n_floats);
    CHECK(!memcmp(gf, g, t.n_floats * sizeof(float)), "grads_flat is the table layout");
    free(gf);
    free(p);
    free(g);
    param_table_free(&t);
}

int main(void) {
    test_dump_readable();
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("model_checkpoint"));
    test_strict();
    interchange(SMALL, "small");
    interchange(NULL, "paper");
    return tu_finish();
}
