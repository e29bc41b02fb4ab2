#include "model/checkpoint.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/swinmae/relpos.h"
#include "util/error.h"

int checkpoint_save(const char *path, const param_table *t, const float *params, const st_kv *extra, int n_extra) {
    char json[512];
    swinmae_config_to_json(&t->cfg, json, sizeof json);
    return checkpoint_save_method(path, "swinmae", json, t, params, extra, n_extra);  // the table is a Swin MAE's
}

int checkpoint_save_method(const char *path, const char *method, const char *config_json, const param_table *t,
                           const float *params, const st_kv *extra, int n_extra) {
    int64_t *idx = as_malloc((t->n_i64 ? t->n_i64 : 1) * sizeof *idx);
    params_fill_index(t, idx);
    st_write_item *items = as_calloc((size_t)t->n, sizeof *items);
    for (int i = 0; i < t->n; i++) {
        const param_entry *e = &t->entries[i];
        items[i].name = e->name;
        items[i].dtype = e->dtype == PARAM_F32 ? ST_F32 : ST_I64;
        items[i].ndim = e->ndim;
        for (int d = 0; d < e->ndim; d++) items[i].shape[d] = e->shape[d];
        items[i].data = e->dtype == PARAM_F32 ? (const void *)(params + e->offset) : (const void *)(idx + e->offset);
    }
    st_kv *meta = as_malloc((size_t)(n_extra + 3) * sizeof *meta);
    meta[0] = (st_kv){"format", "pt"};
    meta[1] = (st_kv){CHECKPOINT_METHOD_KEY, method};
    meta[2] = (st_kv){"anoswin.config", config_json};
    int m = 3;
    for (int i = 0; i < n_extra; i++)
        if (strcmp(extra[i].key, "format") && strcmp(extra[i].key, CHECKPOINT_METHOD_KEY) &&
            strcmp(extra[i].key, "anoswin.config"))
            meta[m++] = extra[i];
    int rc = st_write(path, items, t->n, meta, m);
    free(meta);
    free(items);
    free(idx);
    return rc;
}

static const st_tensor *need(const st_file *f, const char *name, int ndim) {
    const st_tensor *t = st_find(f, name);
    if (!t) {
        as_fail("%s: no tensor '%s' (not a Swin MAE checkpoint?)", f->path, name);
        return NULL;
    }
    if (t->ndim != ndim) {
        as_fail("%s: tensor '%s' has %d dimensions, expected %d", f->path, name, t->ndim, ndim);
        return NULL;
    }
    return t;
}

// floor(sqrt(x)) for 0 <= x <= 2^62 (shapes from a file: counting up would take 2^31 steps).
static int64_t isqrt64(int64_t x) {
    int64_t r = (int64_t)sqrt((double)x);
    while (r > 0 && r * r > x) r--;
    while ((r + 1) * (r + 1) <= x) r++;
    return r;
}

int checkpoint_config(const st_file *f, swinmae_config *cfg) {
    swinmae_config_default(cfg);
    const char *json = st_meta(f, "anoswin.config");
    if (json) {
        char what[4200];
        snprintf(what, sizeof what, "%s: metadata anoswin.config", f->path);
        return swinmae_config_parse(cfg, json, what);
    }
    // Infer from shapes (a PyTorch state_dict without our metadata).
    const st_tensor *pw = need(f, "patch_embed.proj.weight", 4), *pe = need(f, "pos_embed", 3);
    if (!pw || !pe) return -1;
    if (pw->shape[2] != pw->shape[3]) return as_fail("%s: patch_embed.proj.weight is not square", f->path);
    cfg->embed_dim = (int)pw->shape[0];
    cfg->in_chans = (int)pw->shape[1];
    cfg->patch_size = (int)pw->shape[2];
    int64_t L = pe->shape[1], g = isqrt64(L);
    if (g * g != L) return as_fail("%s: pos_embed has %lld tokens, not a square grid", f->path, (long long)L);
    cfg->img_size = (int)(g * cfg->patch_size);
    char name[128];
    for (int i = 0; i < SWINMAE_STAGES; i++) {
        int j = 0;
        for (;; j++) {
            snprintf(name, sizeof name, "layers.%d.blocks.%d.norm1.weight", i, j);
            if (!st_find(f, name) || j > 64) break;
        }
        cfg->depths[i] = j;
        snprintf(name, sizeof name, "layers.%d.blocks.0.attn.relative_position_bias_table", i);
        const st_tensor *tb = need(f, name, 2);
        if (!tb) return -1;
        cfg->num_heads[i] = (int)tb->shape[1];
        if (i == 0) {
            int64_t r = isqrt64(tb->shape[0]);
            cfg->window = (int)((r + 1) / 2);
        }
    }
    const st_tensor *fc1 = need(f, "layers.0.blocks.0.mlp.fc1.weight", 2);
    if (!fc1) return -1;
    cfg->mlp_ratio = cfg->embed_dim ? (int)(fc1->shape[0] / cfg->embed_dim) : 0;
    if (swinmae_config_check(cfg)) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", as_error());
        return as_fail("%s: tensor shapes give an invalid model (%s)", f->path, msg);
    }
    return 0;
}

int checkpoint_read_config(const char *path, swinmae_config *cfg) {
    st_file f;
    if (st_open(&f, path)) return -1;
    int rc = checkpoint_config(&f, cfg);
    st_close(&f);
    return rc;
}

int checkpoint_load_file(const st_file *f, const param_table *t, float *params) {
    for (int i = 0; i < f->n; i++)
        if (param_table_index(t, f->tensors[i].name) < 0)
            return as_fail("%s: unexpected tensor '%s' (not in the model)", f->path, f->tensors[i].name);
    int64_t *want = NULL;
    for (int i = 0; i < t->n; i++) {
        const param_entry *e = &t->entries[i];
        const st_tensor *s = st_find(f, e->name);
        char ws[64], gs[64];
        param_shape_str(e, ws, sizeof ws);
        if (!s) {
            free(want);
            return as_fail("%s: missing tensor '%s' (shape %s)", f->path, e->name, ws);
        }
        st_dtype dt = e->dtype == PARAM_F32 ? ST_F32 : ST_I64;
        int same = s->dtype == dt && s->ndim == e->ndim;
        for (int d = 0; same && d < e->ndim; d++) same = s->shape[d] == e->shape[d];
        if (!same) {
            st_shape_str(s, gs, sizeof gs);
            free(want);
            return as_fail("%s: tensor '%s' is %s %s, the model needs %s %s", f->path, e->name, st_dtype_name(s->dtype), gs,
                           st_dtype_name(dt), ws);
        }
        if (e->dtype == PARAM_F32) memcpy(params + e->offset, st_tensor_data(f, s), e->numel * sizeof(float));
        else if (e->init == INIT_RELPOS) {
            if (!want) {
                want = as_malloc(e->numel * sizeof *want);
                relative_position_index(want, t->cfg.window);
            }
            if (memcmp(want, st_tensor_data(f, s), e->numel * sizeof *want)) {
                free(want);
                return as_fail("%s: tensor '%s' differs from Swin's relative position index", f->path, e->name);
            }
        }
    }
    free(want);
    return 0;
}

int checkpoint_load(const char *path, const param_table *t, float *params) {
    st_file f;
    if (st_open(&f, path)) return -1;
    int rc = checkpoint_load_file(&f, t, params);
    st_close(&f);
    return rc;
}
