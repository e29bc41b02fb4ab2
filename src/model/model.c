// The method registry and the method-independent model functions (see model.h).
#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/checkpoint.h"  // checkpoint_load_file, checkpoint_save
#include "util/error.h"        // as_fail

extern const model_method model_swinmae;
extern const model_method model_vae;
extern const model_method model_fanogan;
extern const model_method model_vitmae;
extern const model_method model_autoddpm;

// One line per method. The first is what untagged checkpoints are.
static const model_method *const methods[] = {&model_swinmae, &model_vae, &model_fanogan, &model_vitmae,
                                              &model_autoddpm};
#define N_METHODS (int)(sizeof methods / sizeof methods[0])

const model_method *model_method_find(const char *name) {
    for (int i = 0; i < N_METHODS; i++)
        if (!strcmp(methods[i]->name, name)) return methods[i];
    return NULL;
}

const model_method *model_method_get(const char *name, const char *what) {
    const model_method *mm = model_method_find(name);
    if (!mm) as_fail("%s: unknown method '%.40s'", what, name);
    return mm;
}

const model_method *model_method_default(void) { return methods[0]; }

int model_method_count(void) { return N_METHODS; }

const model_method *model_method_at(int i) { return i >= 0 && i < N_METHODS ? methods[i] : NULL; }

const char *model_preset_find(const model_method *mm, const char *name) {
    const model_preset *p = mm->recipe ? mm->recipe->presets : NULL;
    for (; p && p->name; p++)
        if (!strcmp(p->name, name)) return p->config;
    return NULL;
}

void model_preset_names(const model_method *mm, char *out, size_t n) {
    size_t w = 0;
    out[0] = 0;
    const model_preset *p = mm->recipe ? mm->recipe->presets : NULL;
    for (; p && p->name && w < n; p++) w += (size_t)snprintf(out + w, n - w, "%s%s", w ? "," : "", p->name);
}

const model_method *model_method_of_checkpoint(const st_file *f) {
    const char *tag = st_meta(f, CHECKPOINT_METHOD_KEY);
    if (!tag) return methods[0];
    const model_method *mm = model_method_find(tag);
    if (!mm) as_fail("%s: a checkpoint of method '%.40s', which this build does not know", f->path, tag);
    return mm;
}

const model_method *model_method_of_file(const char *checkpoint) {
    st_file f;
    if (st_open(&f, checkpoint)) return NULL;
    const model_method *mm = model_method_of_checkpoint(&f);
    st_close(&f);
    return mm;
}

int model_create(model *m, const char *method, const char *config_json, int max_batch, int training,
                 const char *what) {
    memset(m, 0, sizeof *m);
    const model_method *mm = model_method_get(method, what);
    if (!mm) return -1;
    m->method = mm;
    return mm->create(m, config_json, max_batch, training, what);
}

void model_free(model *m) {
    if (m->method) m->method->free(m);
    memset(m, 0, sizeof *m);
}

int model_load(model *m, const char *checkpoint, int max_batch) { return model_load_with(m, checkpoint, max_batch, NULL); }

int model_load_with(model *m, const char *checkpoint, int max_batch, const char *settings) {
    memset(m, 0, sizeof *m);
    st_file f;
    if (st_open(&f, checkpoint)) return -1;
    char cfg[2048], base[2048], what[4300];
    const model_method *mm = model_method_of_checkpoint(&f);
    int rc = -1, ok = mm && !mm->checkpoint_config(&f, base, sizeof base);
    snprintf(what, sizeof what, "%s: --model-set", checkpoint);
    if (ok && settings && settings[0]) ok = !mm->config_parse(base, settings, cfg, sizeof cfg, NULL, what);
    else if (ok) memcpy(cfg, base, sizeof cfg);
    if (ok) {
        m->method = mm;
        if (!mm->create(m, cfg, max_batch, 0, checkpoint)) {
            rc = checkpoint_load_file(&f, m->table, m->params);
            const char *std = rc ? NULL : st_meta(&f, NYUL_KEY);
            snprintf(what, sizeof what, "%s: metadata " NYUL_KEY, checkpoint);
            if (std) rc = nyul_from_json(&m->intensity, std, what);
            if (rc) model_free(m);
        } else {
            m->method = NULL;
        }
    }
    st_close(&f);
    return rc;
}

int model_config_of_metadata(const st_file *f, const char *kind,
                             int (*config_parse)(const char *base, const char *text, char *out, size_t n,
                                                 model_shape *shape, const char *what),
                             char *out, size_t n) {
    const char *json = st_meta(f, "anoswin.config");
    if (!json) return as_fail("%s: %s checkpoint without anoswin.config metadata", f->path, kind);
    char what[4200];
    snprintf(what, sizeof what, "%s: metadata anoswin.config", f->path);
    return config_parse(json, NULL, out, n, NULL, what);
}

int model_save(const model *m, const char *path, const st_kv *extra, int n_extra) {
    char cfg[2048];
    if (model_config_json(m, cfg, sizeof cfg)) return as_fail("%s: model config too long", path);
    if (!m->intensity.on)
        return checkpoint_save_method(path, m->method->name, cfg, m->table, m->params, extra, n_extra);
    char std[1024];
    if (nyul_to_json(&m->intensity, std, sizeof std)) return as_fail("%s: intensity standard too long", path);
    st_kv *kv = as_malloc(sizeof(st_kv) * (size_t)(n_extra + 1));
    if (n_extra) memcpy(kv, extra, sizeof(st_kv) * (size_t)n_extra);
    kv[n_extra] = (st_kv){NYUL_KEY, std};
    int rc = checkpoint_save_method(path, m->method->name, cfg, m->table, m->params, kv, n_extra + 1);
    free(kv);
    return rc;
}

void model_slice_options(const model *m, slice_options *so) {
    so->size = m->img_size;
    so->nyul = m->intensity;
}

int model_config_json(const model *m, char *out, size_t n) { return m->method->config_to_json(m, out, n); }

void model_zero_grad(model *m) {
    if (m->grads) memset(m->grads, 0, sizeof(float) * m->table->n_floats);
}
