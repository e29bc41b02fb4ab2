// `anoswin info --model [--method M] [--config S] [--checkpoint C]` and `anoswin info FILE.safetensors`:
// the parameter table (every state_dict tensor with dtype and shape) with totals, and a
// generic listing of any safetensors file. Called from cmd_info.c.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/model.h"
#include "model/params.h"
#include "util/error.h"

// 26936916 -> "26,936,916"
static const char *commas(size_t v, char *buf, size_t n) {
    char tmp[32];
    int len = snprintf(tmp, sizeof tmp, "%zu", v), w = 0;
    for (int i = 0; i < len && (size_t)w + 2 < n; i++) {
        if (i && (len - i) % 3 == 0) buf[w++] = ',';
        buf[w++] = tmp[i];
    }
    buf[w] = 0;
    return buf;
}

// The method and config (the checkpoint's, with --config on top; a preset name stands for its
// text) and its source, for info_model.
static int info_config(const model_method **mm, char *cfg, size_t n, const char **source, const char *method,
                       const char *config, st_file *f, const char *checkpoint) {
    char base[2048];
    *mm = checkpoint ? model_method_of_checkpoint(f) : method ? model_method_get(method, "--method")
                                                               : model_method_default();
    *source = "paper default";
    if (!*mm) return -1;
    if (checkpoint && method && strcmp(method, (*mm)->name))
        return as_fail("%s: a checkpoint of method %s, not %s", checkpoint, (*mm)->name, method);
    const char *preset = config ? model_preset_find(*mm, config) : NULL;
    if (preset) config = preset;
    if (checkpoint) {
        if ((*mm)->checkpoint_config(f, base, sizeof base)) return -1;
        *source = st_meta(f, "anoswin.config") ? "checkpoint metadata" : "checkpoint tensor shapes";
    }
    if (config) *source = checkpoint ? "checkpoint + --config" : "--config";
    return (*mm)->config_parse(checkpoint ? base : NULL, config, cfg, n, NULL, "--config");
}

int info_model(const char *method, const char *config, const char *checkpoint) {
    st_file f = {0};
    if (checkpoint && st_open(&f, checkpoint)) return cli_report_error();
    const model_method *mm;
    const char *source;
    char cfg[2048];
    model m = {0};
    if (info_config(&mm, cfg, sizeof cfg, &source, method, config, &f, checkpoint) ||
        model_create(&m, mm->name, cfg, 1, 0, "--config") ||
        (checkpoint && checkpoint_load_file(&f, m.table, m.params))) {
        if (checkpoint) st_close(&f);
        model_free(&m);
        return cli_report_error();
    }
    const param_table t = *m.table;
    char desc[256], a[32], b[32];
    mm->describe(&m, desc, sizeof desc);
    printf("model: %s, %s (from %s)\n", mm->title, desc, source);
    printf("config: %s\n", cfg);
    if (checkpoint) {
        printf("checkpoint: %s (loads strictly)\n", checkpoint);
        for (int i = 0; i < f.n_meta; i++)
            if (strcmp(f.meta_keys[i], "anoswin.config")) printf("  metadata %s = %s\n", f.meta_keys[i], f.meta_values[i]);
    }
    printf("%4s  %-56s %-5s %-14s %12s  %s\n", "#", "name", "dtype", "shape", "numel", "");
    for (int i = 0; i < t.n; i++) {
        const param_entry *e = &t.entries[i];
        char s[64];
        param_shape_str(e, s, sizeof s);
        printf("%4d  %-56s %-5s %-14s %12zu  %s\n", i, e->name, e->dtype == PARAM_F32 ? "F32" : "I64", s, e->numel,
               e->dtype == PARAM_I64 ? "buffer" : e->trainable ? "" : "frozen");
    }
    printf("tensors: %d (%d float, %d int64 buffers)\n", t.n, t.n_f32_tensors, t.n_i64_tensors);
    printf("parameters: %s in all, %s trainable (all = every float tensor%s)\n", commas(t.n_floats, a, sizeof a),
           commas(t.n_trainable, b, sizeof b), t.n_trainable < t.n_floats ? ", incl. frozen ones" : "");
    printf("int64 buffer elements: %s\n", commas(t.n_i64, a, sizeof a));
    printf("float32 parameter buffer: %.1f MiB (gradients and each AdamW moment the same)\n",
           (double)t.n_floats * 4 / (1 << 20));
    if (checkpoint) st_close(&f);
    model_free(&m);
    return EXIT_OK;
}

int info_safetensors(const char *path) {
    st_file f;
    if (st_open(&f, path)) return -1;
    char a[32];
    printf("%s\n  format:      safetensors, %d tensors, %s bytes\n", path, f.n, commas(f.size, a, sizeof a));
    for (int i = 0; i < f.n_meta; i++) printf("  metadata:    %s = %s\n", f.meta_keys[i], f.meta_values[i]);
    size_t total = 0;
    for (int i = 0; i < f.n; i++) {
        char s[128];
        st_shape_str(&f.tensors[i], s, sizeof s);
        printf("  %-56s %-5s %s\n", f.tensors[i].name, st_dtype_name(f.tensors[i].dtype), s);
        total += f.tensors[i].numel;
    }
    printf("  elements:    %s\n", commas(total, a, sizeof a));
    st_close(&f);
    return 0;
}
