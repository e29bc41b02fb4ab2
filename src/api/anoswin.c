// libanoswin's public functions (include/anoswin.h): thin wrappers that do what the CLI's
// commands do with their defaults, over the internal modules.
#include "anoswin.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/nyul.h"  // nyul_parse_setting
#include "detect/calibrate.h"
#include "detect/detect.h"
#include "detect/model_adapter.h"
#include "eval/eval.h"
#include "eval/report.h"
#include "model/model.h"
#include "nn/nn.h"
#include "train/train_data.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/hash.h"  // hash_floats

const char *anoswin_version(void) { return ANOSWIN_VERSION; }
const char *anoswin_error(void) { return as_error(); }
_Static_assert(sizeof((anoswin_detection *)0)->warning[0] == FP_WARNING_LEN &&
                   sizeof((anoswin_detection *)0)->warning / FP_WARNING_LEN == FP_MAX_WARNINGS,
               "anoswin_detection.warning holds the input guard's lines");

static int g_force;  // anoswin_set_force
void anoswin_set_force(int force) { g_force = force != 0; }

void anoswin_set_threads(int threads) {
    if (threads > 0) nn_set_threads(threads);
}

// ---- data sets ----------------------------------------------------------------------------------
struct anoswin_dataset {
    dataset d;
};

anoswin_dataset *anoswin_dataset_open(const char *path, const char *modality) {
    anoswin_dataset *d = as_calloc(1, sizeof *d);
    if (dataset_open(&d->d, path, modality)) {
        free(d);
        return NULL;
    }
    return d;
}

void anoswin_dataset_free(anoswin_dataset *d) {
    if (!d) return;
    dataset_free(&d->d);
    free(d);
}

int anoswin_dataset_size(const anoswin_dataset *d) { return d->d.n; }

static const subject *subject_at(const anoswin_dataset *d, int i) {
    return i >= 0 && i < d->d.n ? &d->d.subjects[i] : NULL;
}
const char *anoswin_dataset_id(const anoswin_dataset *d, int i) {
    return subject_at(d, i) ? subject_at(d, i)->id : NULL;
}
const char *anoswin_dataset_image(const anoswin_dataset *d, int i) {
    return subject_at(d, i) ? subject_at(d, i)->image : NULL;
}
const char *anoswin_dataset_label(const anoswin_dataset *d, int i) {
    return subject_at(d, i) ? subject_at(d, i)->label : NULL;
}
const char *anoswin_dataset_brain_mask(const anoswin_dataset *d, int i) {
    return subject_at(d, i) ? subject_at(d, i)->mask : NULL;
}

// ---- models -------------------------------------------------------------------------------------
struct anoswin_model {
    model m;
    char checkpoint[PATH_MAX];
    fingerprint guard;  // what it was trained on, when has_guard (the input guard)
    int has_guard;
};

anoswin_model *anoswin_model_load(const char *checkpoint, int max_batch) {
    anoswin_model *a = as_calloc(1, sizeof *a);
    if (model_load(&a->m, checkpoint, max_batch > 0 ? max_batch : 1)) {
        free(a);
        return NULL;
    }
    a->has_guard = fingerprint_read(&a->guard, checkpoint);
    if (a->has_guard < 0) {
        model_free(&a->m);
        free(a);
        return NULL;
    }
    snprintf(a->checkpoint, sizeof a->checkpoint, "%s", checkpoint);
    return a;
}

void anoswin_model_free(anoswin_model *m) {
    if (!m) return;
    model_free(&m->m);
    if (m->has_guard) fingerprint_free(&m->guard);
    free(m);
}

const char *anoswin_model_method(const anoswin_model *m) { return m->m.method->name; }
int anoswin_model_image_size(const anoswin_model *m) { return m->m.img_size; }
size_t anoswin_model_parameters(const anoswin_model *m) { return m->m.table->n_trainable; }

// ---- training -----------------------------------------------------------------------------------
int anoswin_train(const anoswin_train_settings *s) {
    if (!s->data || !s->out) return as_fail("anoswin_train: data and out are required");
    train_options o;
    train_options_default(&o);
    char *abs = realpath(s->data, NULL);  // stored absolute, as train does, so that a resume works anywhere
    snprintf(o.data, sizeof o.data, "%s", abs ? abs : s->data);
    free(abs);
    if (s->modality) snprintf(o.modality, sizeof o.modality, "%s", s->modality);
    if (s->config && train_options_set_config(&o, s->config, "config")) return -1;
    if (s->epochs > 0) o.epochs = s->epochs;
    if (s->batch > 0) o.batch = s->batch;
    o.max_steps = s->max_steps;
    o.quiet = s->quiet;
    if (s->intensity && nyul_parse_setting(s->intensity, &o.nyul)) return -1;
    o.out_dir = s->out;
    slice_set train = {0}, val = {0};
    fingerprint fp;
    char fp_json[4096];
    if (train_data_load(&o, &train, &val, &fp)) return -1;
    if (!fingerprint_to_json(&fp, fp_json, sizeof fp_json)) o.fingerprint = fp_json;
    train_result res;
    int rc = train_run(&o, &train, &val, 0, &res, NULL);
    slice_set_free(&train);
    slice_set_free(&val);
    return rc;
}

// ---- detection ----------------------------------------------------------------------------------
// detect's options for a preset, as `anoswin detect --preset P [--calibration F]` sets them.
static int detect_settings(detect_options *o, calibration *cal, const anoswin_model *m, const char *preset,
                           const char *calib) {
    detect_options_default(o);
    int calibrated = !preset || !strcmp(preset, "calibrated");
    if (!calibrated) {
        if (postproc_preset(&o->post, preset)) return -1;
        o->preset = preset;
        o->amap.window_norm = 1, o->amap.slice_norm = 1;  // the paper's presets keep the paper's map
        return postproc_validate(&o->post);
    }
    // The calibration must have been made with detect's default map settings (checked).
    if (!calib) return as_fail("the calibrated preset needs a calibration (anoswin calibrate)");
    return calibration_read(cal, calib) ||
                   calibration_check(cal, calib, &o->amap, &o->slices,
                                     hash_floats(m->m.params, m->m.table->n_floats)) ||
                   detect_apply_calibration(o, cal, calib) || postproc_validate(&o->post)
               ? -1
               : 0;
}

int anoswin_detect(anoswin_model *m, const char *image, const char *brain_mask, const char *out_dir,
                   const char *preset, const char *calib, anoswin_detection *r) {
    detect_options o;
    calibration cal = {0};
    int rc = -1;
    if (detect_settings(&o, &cal, m, preset, calib)) goto done;
    if (amap_check_stride(o.amap.stride, o.amap.window, m->m.patch_size)) goto done;
    o.checkpoint = m->checkpoint;
    o.guard = m->has_guard ? &m->guard : NULL;
    o.force = g_force;
    // The subject is the file name without .nii[.gz], as detect names it.
    char id[256];
    const char *base = strrchr(image, '/');
    snprintf(id, sizeof id, "%s", base ? base + 1 : image);
    char *dot = strstr(id, ".nii");
    if (dot) *dot = 0;
    detect_input in = {.id = id, .image = image, .mask = brain_mask, .label = NULL};
    fingerprint_modality_of_name(image, in.modality);  // as detect does for a file argument
    detect_result res;
    if (detect_subject(&res, &m->m, &in, out_dir, &o)) goto done;
    if (r) {
        *r = (anoswin_detection){res.slices, res.components, (long long)res.lesion_voxels, res.lesion_ml, 0, {{0}}};
        r->warnings = res.n_warnings;
        memcpy(r->warning, res.warnings, sizeof r->warning[0] * (size_t)res.n_warnings);
    }
    rc = 0;
done:
    calibration_free(&cal);
    return rc;
}

// ---- evaluation ---------------------------------------------------------------------------------
int anoswin_eval(const char *pred_dir, const char *data, const char *modality, const char *out_dir) {
    dataset d = {0};
    if (dataset_open(&d, data, modality)) return -1;
    eval_input *in = as_calloc((size_t)(d.n > 0 ? d.n : 1), sizeof *in);
    int n = 0, rc = -1;
    for (int i = 0; i < d.n; i++) {  // the labelled subjects detect wrote, as eval takes them
        const subject *s = &d.subjects[i];
        char dir[4096], map[4200];
        fs_join(dir, sizeof dir, pred_dir, s->id);
        fs_join(map, sizeof map, dir, "anomaly_map.nii.gz");
        if (!*s->label || !fs_exists(map)) continue;
        in[n++] = (eval_input){s->id, as_strdup(dir), s->image, s->label, s->mask, EVAL_TEST};
    }
    eval_options opt;
    eval_options_default(&opt);
    eval_result res = {0};
    report_meta meta = {"Ano-swinMAE (anoswin)", data, pred_dir, NULL, NULL};
    if (!n) as_fail("%s: no subject with a label has predictions in %s", data, pred_dir);
    else if (!eval_run(&res, in, n, &opt) && !fs_mkdirs(out_dir)) rc = report_write(&res, &meta, out_dir);
    eval_result_free(&res);
    for (int i = 0; i < n; i++) free((char *)in[i].pred_dir);
    free(in);
    dataset_free(&d);
    return rc;
}
