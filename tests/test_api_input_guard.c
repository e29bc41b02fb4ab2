// The input guard through the library's public header (include/anoswin.h), as `anoswin detect`
// applies it: anoswin_detect reports nothing for a scan like the training data (a T2 test scan
// of a model trained on T2 scans), and for the T1 scan of the same subject returns the
// differences (the modality, named by the file, and the intensities) in anoswin_detection and
// prints each on stderr as "anoswin: warning: SCAN: ..."; with anoswin_set_force(1) it prints
// nothing but still returns them; summary.json records them and whether they were forced.
// Then a model trained with the Nyúl standard (intensity "nyul"): summary.json states it.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anoswin.h"
#include "data/synth.h"
#include "helpers/testutil.h"
#include "util/error.h"
#include "util/fs.h"

// anoswin_detect with stderr captured into err (NUL-terminated).
static int detect_capture(anoswin_model *m, const char *scan, const char *out, anoswin_detection *r, char *err,
                          size_t n, const char *errpath) {
    fflush(stderr);
    int saved = dup(2), fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    close(fd);
    int rc = anoswin_detect(m, scan, NULL, out, "brats", NULL, r);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    FILE *f = fopen(errpath, "r");
    size_t got = f ? fread(err, 1, n - 1, f) : 0;
    err[got] = 0;
    if (f) fclose(f);
    return rc;
}

int main(void) {
    const char *dir = tu_scratch_dir("api_input_guard");
    char data[4096], run[4096], ckpt[4200], t1[4200], t2[4200], out[4200], errpath[4200], err[8192], path[4400];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(run, sizeof run, "%s/run", dir);
    snprintf(errpath, sizeof errpath, "%s/stderr.txt", dir);
    synth_options so;
    synth_options_default(&so);
    so.out = data, so.healthy = 2, so.test = 1;
    CHECK(synth_run(&so) == 0, "data synth: %s", as_error());
    anoswin_train_settings ts = {.data = data, .modality = "t2", .out = run, .config =
                                 "img_size=64,patch_size=4,in_chans=1,embed_dim=8,num_heads=1/1/2/2,window=2",
                                 .epochs = 1, .batch = 2, .max_steps = 2, .quiet = 1};
    CHECK(anoswin_train(&ts) == 0, "anoswin_train: %s", anoswin_error());
    snprintf(ckpt, sizeof ckpt, "%s/last.safetensors", run);
    snprintf(t1, sizeof t1, "%s/test/test_000/test_000_t1.nii.gz", data);
    snprintf(t2, sizeof t2, "%s/test/test_000/test_000_t2.nii.gz", data);
    anoswin_model *m = anoswin_model_load(ckpt, 4);
    CHECK(m != NULL, "anoswin_model_load: %s", anoswin_error());
    if (!m) return tu_finish();

    anoswin_detection r;
    snprintf(out, sizeof out, "%s/det_t2", dir);
    CHECK(detect_capture(m, t2, out, &r, err, sizeof err, errpath) == 0, "detect t2: %s", anoswin_error());
    printf("T2 scan, T2 model: %d input-guard differences\n", r.warnings);
    CHECK(r.warnings == 0, "a scan like the training data: %d differences (%s)", r.warnings, r.warnings ? r.warning[0] : "");
    CHECK(!strstr(err, "warning"), "a scan like the training data: stderr says %s", err);

    snprintf(out, sizeof out, "%s/det_t1", dir);
    CHECK(detect_capture(m, t1, out, &r, err, sizeof err, errpath) == 0, "detect t1: %s", anoswin_error());
    printf("T1 scan, T2 model: %d differences:\n", r.warnings);
    int modality = 0;
    for (int i = 0; i < r.warnings; i++) {
        printf("  %s\n", r.warning[i]);
        modality |= strstr(r.warning[i], "modality") != NULL;
        CHECK(strstr(err, r.warning[i]) != NULL, "difference %d not on stderr: %s", i, r.warning[i]);
    }
    CHECK(r.warnings >= 1 && modality, "the T1 scan's modality is not reported");
    CHECK(strstr(err, "anoswin: warning: ") && strstr(err, "test_000_t1.nii.gz"), "stderr: %s", err);

    anoswin_set_force(1);
    snprintf(out, sizeof out, "%s/det_t1_forced", dir);
    int n = r.warnings;
    CHECK(detect_capture(m, t1, out, &r, err, sizeof err, errpath) == 0, "detect t1 forced: %s", anoswin_error());
    CHECK(r.warnings == n, "forced: %d differences returned, %d unforced", r.warnings, n);
    CHECK(!strstr(err, "warning"), "forced: stderr still says %s", err);
    snprintf(path, sizeof path, "%s/summary.json", out);
    char *js = NULL;
    size_t len = 0;
    CHECK(fs_read_all(path, (unsigned char **)&js, &len) == 0, "%s", as_error());
    if (js) {
        js = realloc(js, len + 1);
        js[len] = 0;
        CHECK(strstr(js, "\"forced\": true") && strstr(js, "modality"), "summary.json's input_guard: %.400s",
              strstr(js, "input_guard") ? strstr(js, "input_guard") : js);
        free(js);
    }
    anoswin_set_force(0);
    anoswin_model_free(m);

    // The Nyúl standard through the header: trained in, applied and stated by anoswin_detect.
    ts.intensity = "zscore";
    snprintf(run, sizeof run, "%s/run_bad", dir);
    ts.out = run;
    CHECK(anoswin_train(&ts) == -1 && strstr(anoswin_error(), "zscore"), "bad intensity: %s", anoswin_error());
    ts.intensity = "nyul";
    snprintf(run, sizeof run, "%s/run_nyul", dir);
    CHECK(anoswin_train(&ts) == 0, "anoswin_train nyul: %s", anoswin_error());
    snprintf(ckpt, sizeof ckpt, "%s/last.safetensors", run);
    m = anoswin_model_load(ckpt, 4);
    CHECK(m != NULL, "anoswin_model_load nyul: %s", anoswin_error());
    if (!m) return tu_finish();
    snprintf(out, sizeof out, "%s/det_nyul", dir);
    CHECK(detect_capture(m, t2, out, &r, err, sizeof err, errpath) == 0, "detect nyul: %s", anoswin_error());
    snprintf(path, sizeof path, "%s/summary.json", out);
    js = NULL;
    CHECK(fs_read_all(path, (unsigned char **)&js, &len) == 0, "%s", as_error());
    if (js) {
        js = realloc(js, len + 1);
        js[len] = 0;
        CHECK(strstr(js, "\"intensity_standard\": {\"method\":\"nyul\",\"scans\":2") != NULL,
              "summary.json states the standard: %.300s",
              strstr(js, "intensity_standard") ? strstr(js, "intensity_standard") : js);
        free(js);
    }
    anoswin_model_free(m);
    return tu_finish();
}
