#include "train/checkpoint_io.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/fingerprint.h"  // FINGERPRINT_KEY
#include "io/safetensors.h"    // st_write, st_open, st_read_f32, st_meta
#include "model/checkpoint.h"  // CHECKPOINT_METHOD_KEY
#include "nn/nn.h"             // nn_precision
#include "util/error.h"        // as_fail

int run_save_model(const char *path, const model *m, const train_state *st, const char *fingerprint) {
    char step[32], best[64];
    snprintf(step, sizeof step, "%ld", st->global_step);
    snprintf(best, sizeof best, "%.9g", st->best_val);
    // The precision the weights were trained in (train_run has set it): fp32 master weights
    // either way, so a checkpoint loads and runs in both.
    st_kv kv[] = {{"anoswin.step", step}, {"anoswin.best_val", best},
                  {"anoswin.precision", nn_precision_name(nn_precision())}, {FINGERPRINT_KEY, fingerprint}};
    return model_save(m, path, kv, fingerprint ? 4 : 3);
}

int run_save_resume(const char *path, const model *m, const adamw *opt, const char *options_json,
                    const train_state *st) {
    char cfg[1024], state[2048], step[32];
    if (model_config_json(m, cfg, sizeof cfg) || train_state_to_json(st, state, sizeof state))
        return as_fail("%s: metadata too long", path);
    snprintf(step, sizeof step, "%ld", opt->step);
    int64_t n = (int64_t)m->table->n_floats;
    st_write_item items[3] = {
        {.name = "params", .dtype = ST_F32, .ndim = 1, .shape = {n}, .data = m->params},
        {.name = "adamw.m", .dtype = ST_F32, .ndim = 1, .shape = {n}, .data = opt->m},
        {.name = "adamw.v", .dtype = ST_F32, .ndim = 1, .shape = {n}, .data = opt->v},
    };
    st_kv meta[] = {{"format", "anoswin-resume"},
                    {CHECKPOINT_METHOD_KEY, m->method->name},
                    {"anoswin.config", cfg},
                    {"anoswin.options", options_json},
                    {"anoswin.state", state},
                    {"adamw.step", step}};
    return st_write(path, items, 3, meta, 6);
}

int run_read_metadata(const char *path, char *options, size_t n_options, char *state, size_t n_state) {
    st_file f;
    if (st_open(&f, path)) return -1;
    const char *o = st_meta(&f, "anoswin.options"), *s = st_meta(&f, "anoswin.state");
    int rc = 0;
    if (!o || !s)
        rc = as_fail("%s: not an anoswin resume file (no training state)", path);
    else if (strlen(o) >= n_options || strlen(s) >= n_state)
        rc = as_fail("%s: training metadata too long", path);
    else {
        strcpy(options, o);
        strcpy(state, s);
    }
    st_close(&f);
    return rc;
}

int run_load_resume(const char *path, model *m, adamw *opt, train_state *st) {
    st_file f;
    if (st_open(&f, path)) return -1;
    int rc = -1;
    const char *cfg_json = st_meta(&f, "anoswin.config"), *state = st_meta(&f, "anoswin.state");
    const char *step = st_meta(&f, "adamw.step");
    char cfg[2048], own[2048];
    if (!cfg_json || !state || !step) {
        as_fail("%s: not an anoswin resume file (no training state)", path);
        goto out;
    }
    // Both configs as the method writes them, so that equal configs compare equal as text.
    const char *tag = st_meta(&f, CHECKPOINT_METHOD_KEY);
    if (tag && strcmp(tag, m->method->name)) {
        as_fail("%s: a run of method '%.40s', not %s", path, tag, m->method->name);
        goto out;
    }
    if (m->method->config_parse(NULL, cfg_json, cfg, sizeof cfg, NULL, path) || model_config_json(m, own, sizeof own))
        goto out;
    if (strcmp(cfg, own)) {
        as_fail("%s: model config differs from the run's", path);
        goto out;
    }
    size_t n = m->table->n_floats;
    if (st_read_f32(&f, "params", m->params, n) || st_read_f32(&f, "adamw.m", opt->m, n) ||
        st_read_f32(&f, "adamw.v", opt->v, n))
        goto out;
    char *end;
    opt->step = strtol(step, &end, 10);
    if (*end || opt->step < 0) {
        as_fail("%s: bad adamw.step '%s'", path, step);
        goto out;
    }
    if (train_state_from_json(st, state, path)) goto out;
    rc = 0;
out:
    st_close(&f);
    return rc;
}
