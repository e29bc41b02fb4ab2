// Training options and state, and their JSON (see train_state.h).
#include "train/train_state.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"       // nn_precision_*
#include "util/error.h"  // as_fail
#include "util/json.h"   // json_write_*, json_mem_*, json_top_*

// ---- options ---------------------------------------------------------------------------------

void train_options_default(train_options *o) {
    memset(o, 0, sizeof *o);
    const model_method *mm = model_method_default();
    snprintf(o->method, sizeof o->method, "%s", mm->name);
    if (mm->config_parse(NULL, NULL, o->config, sizeof o->config, &o->shape, "default config")) abort();
    o->epochs = 400;
    o->batch = 10;
    o->lr = 1e-3;
    o->min_lr = 0.0;
    o->warmup_epochs = 10;
    o->mask_ratio = 0.35;
    o->mask_unit = 0;
    o->mask_brain = 1;
    o->brain_cover = 0.5;
    o->drop_path = 1;
    o->seed = 0;
    o->threads = 0;
    o->precision = NN_FP32;
    o->save_every = 10;
    o->recon_count = 4;
    o->max_steps = 0;
    snprintf(o->modality, sizeof o->modality, "t2");
    o->z_first = 60;
    o->z_last = 109;
    o->val_fraction = 0.1;
}

int train_options_set_config(train_options *o, const char *text, const char *what) {
    const model_method *mm = model_method_get(o->method, what);
    char cfg[sizeof o->config];
    model_shape shape;
    if (!mm || mm->config_parse(o->config[0] ? o->config : NULL, text, cfg, sizeof cfg, &shape, what)) return -1;
    memcpy(o->config, cfg, sizeof cfg);
    o->shape = shape;
    return 0;
}

// Options as one JSON object. Doubles in the one number format read back exactly; 64-bit
// integers are quoted (a JSON reader holding numbers as doubles would round them).
int train_options_to_json(const train_options *o, char *out, size_t n) {
    json_mem m;
    if (json_mem_open(&m)) return -1;
    FILE *f = m.f;
    fputs("{\"method\":", f);
    json_write_string(f, o->method);
    fprintf(f, ",\"config\":%s,\"epochs\":%d,\"batch\":%d,\"lr\":", o->config, o->epochs, o->batch);
    json_write_number(f, o->lr);
    fputs(",\"min_lr\":", f);
    json_write_number(f, o->min_lr);
    fputs(",\"warmup_epochs\":", f);
    json_write_number(f, o->warmup_epochs);
    fputs(",\"mask_ratio\":", f);
    json_write_number(f, o->mask_ratio);
    fprintf(f, ",\"mask_unit\":%d,\"mask_brain\":%d,\"brain_cover\":", o->mask_unit, o->mask_brain);
    json_write_number(f, o->brain_cover);
    fprintf(f, ",\"drop_path\":%d,\"seed\":\"%" PRIu64 "\",\"save_every\":%d,\"recon_count\":%d,\"data\":",
            o->drop_path, o->seed, o->save_every, o->recon_count);
    json_write_string(f, o->data);
    fputs(",\"modality\":", f);
    json_write_string(f, o->modality);
    fprintf(f, ",\"z_first\":%d,\"z_last\":%d,\"val_fraction\":", o->z_first, o->z_last);
    json_write_number(f, o->val_fraction);
    fprintf(f, ",\"ranks\":%d,\"precision\":\"%s\",\"intensity\":\"%s\"}", o->ranks > 0 ? o->ranks : 1,
            nn_precision_name(o->precision), o->nyul ? "nyul" : "minmax");
    return json_mem_close(&m, out, n);
}

int train_options_from_json(train_options *o, const char *json, const char *what) {
    train_options_default(o);
    if (json_check(json, what)) return -1;
    // Runs from before the method tag are Swin MAE runs: the default method.
    if (json_top_value(json, "method") && json_top_string(json, "method", o->method, sizeof o->method))
        return as_fail("%s: bad method in the run's options", what);
    if (strcmp(o->method, model_method_default()->name)) o->config[0] = 0;  // not the default's config
    const char *c = json_top_value(json, "config");
    size_t cn = c && *c == '{' ? json_value_len(c) : 0;
    char cfg[1024];
    if (!cn) return as_fail("%s: no model config in the run's options", what);
    if (cn >= sizeof cfg) return as_fail("%s: bad model config in the run's options", what);
    memcpy(cfg, c, cn);
    cfg[cn] = 0;
    if (train_options_set_config(o, cfg, what)) return -1;
    struct {
        const char *key;
        double *d;
        int *i;
    } num[] = {{"epochs", NULL, &o->epochs},       {"batch", NULL, &o->batch},
               {"lr", &o->lr, NULL},               {"min_lr", &o->min_lr, NULL},
               {"warmup_epochs", &o->warmup_epochs, NULL}, {"mask_ratio", &o->mask_ratio, NULL},
               {"mask_unit", NULL, &o->mask_unit}, {"mask_brain", NULL, &o->mask_brain},
               {"brain_cover", &o->brain_cover, NULL}, {"drop_path", NULL, &o->drop_path},
               {"save_every", NULL, &o->save_every}, {"recon_count", NULL, &o->recon_count},
               {"z_first", NULL, &o->z_first},     {"z_last", NULL, &o->z_last},
               {"val_fraction", &o->val_fraction, NULL}};
    for (size_t k = 0; k < sizeof num / sizeof num[0]; k++) {
        double v;
        if (json_top_number(json, num[k].key, &v)) return as_fail("%s: run options lack \"%s\"", what, num[k].key);
        if (num[k].d) *num[k].d = v;
        else *num[k].i = (int)v;
    }
    if (json_top_u64(json, "seed", &o->seed)) return as_fail("%s: run options lack \"seed\"", what);
    double ranks;  // absent in runs from before MPI: one process
    o->ranks = json_top_number(json, "ranks", &ranks) ? 1 : (int)ranks;
    char prec[16];  // absent in runs from before bf16: fp32
    if (json_top_value(json, "precision") &&
        (json_top_string(json, "precision", prec, sizeof prec) || nn_precision_parse(prec, &o->precision)))
        return as_fail("%s: bad precision in the run's options", what);
    char inten[16];  // absent in runs from before the standardisation: min-max
    o->nyul = 0;
    if (json_top_value(json, "intensity") &&
        (json_top_string(json, "intensity", inten, sizeof inten) || nyul_parse_setting(inten, &o->nyul)))
        return as_fail("%s: bad intensity in the run's options", what);
    if (json_top_string(json, "data", o->data, sizeof o->data) ||
        json_top_string(json, "modality", o->modality, sizeof o->modality))
        return as_fail("%s: run options lack the data settings", what);
    return 0;
}

// ---- training state --------------------------------------------------------------------------

int train_state_to_json(const train_state *s, char *out, size_t n) {
    json_mem m;
    if (json_mem_open(&m)) return -1;
    FILE *f = m.f;
    fprintf(f, "{\"global_step\":%ld,\"best_val\":", s->global_step);
    json_write_number(f, s->best_val);  // null while there is none (inf)
    fprintf(f, ",\"best_epoch\":%d,\"elapsed\":", s->best_epoch);
    json_write_number(f, s->elapsed);
    fputs(",\"loss_sum\":", f);
    json_write_number(f, s->loss_sum);
    fprintf(f, ",\"loss_count\":%ld,\"n_train\":%d,\"n_val\":%d,\"data_hash\":\"%" PRIu64 "\"}", s->loss_count,
            s->n_train, s->n_val, s->data_hash);
    return json_mem_close(&m, out, n);
}

int train_state_from_json(train_state *s, const char *json, const char *what) {
    if (json_check(json, what)) return -1;
    double v[7];
    const char *keys[7] = {"global_step", "best_val", "best_epoch", "elapsed", "loss_sum", "loss_count", "n_train"};
    for (int k = 0; k < 7; k++) {
        const char *p = json_top_value(json, keys[k]);
        // best_val is null (older runs: inf) until a validation loss exists.
        if (k == 1 && p && !strncmp(p, "null", 4)) v[k] = INFINITY;
        else if (json_top_number(json, keys[k], &v[k]))
            return as_fail("%s: training state lacks \"%s\"", what, keys[k]);
    }
    double nv;
    if (json_top_number(json, "n_val", &nv) || json_top_u64(json, "data_hash", &s->data_hash))
        return as_fail("%s: training state lacks the data record", what);
    s->global_step = (long)v[0];
    s->best_val = v[1];
    s->best_epoch = (int)v[2];
    s->elapsed = v[3];
    s->loss_sum = v[4];
    s->loss_count = (long)v[5];
    s->n_train = (int)v[6];
    s->n_val = (int)nv;
    return 0;
}
