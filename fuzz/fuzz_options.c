// libFuzzer target: command-line parsing. The input is split at newline bytes into an argv
// ("anoswin" + up to 63 words) that goes through the real dispatcher (src/cli/main.c, built
// with main renamed) and the real option parsers of the commands. Only commands whose work
// functions are replaced at link time (-Wl,--wrap, see fuzz/CMakeLists.txt) are called, so the
// parsers run unchanged but nothing is synthesised, walked or read outside a scratch folder
// (the process works inside it; paths must be relative without "..", or inside it):
//   synth_run      -> checks the parsed options are in range, returns 0 (no files written)
//   dataset_open, volume_read, st_open -> the real readers, for scratch paths only
//   fs_mkdirs, fs_write_all -> real, for scratch paths only (train's early output-folder check)
//   train_data_load -> fails like a data set without slices (no data is loaded, nothing trained)
// Other commands are not run (they would do real work). Words starting with '@' are instead fed
// to swinmae_config_parse, the parser of `--config` override lists.
// Properties: no crash/leak/UB, exit code 0, 1 or 2.
#include <getopt.h>

#include "data/dataset.h"
#include "data/synth.h"
#include "data/volume.h"
#include "io/safetensors.h"
#include "fuzz_common.h"
#include "model/swinmae/config.h"
#include "train/train_data.h"  // train_data_load (wrapped), fingerprint
#include "train/trainer.h"

int anoswin_cli_main(int argc, char **argv);

// Relative without "..", or inside the scratch folder (the process runs inside it).
static int scratch_path(const char *path) {
    if (!strncmp(path, fuzz_dir(), strlen(fuzz_dir()))) return 1;
    return path[0] && path[0] != '/' && !strstr(path, "..");
}

int __real_dataset_open(dataset *d, const char *path, const char *modality);
int __wrap_dataset_open(dataset *d, const char *path, const char *modality) {
    if (!scratch_path(path)) {
        memset(d, 0, sizeof *d);
        return as_fail("%s: (fuzz) not opened outside the scratch folder", path);
    }
    return __real_dataset_open(d, path, modality);
}

int __real_volume_read(volume *v, const char *path);
int __wrap_volume_read(volume *v, const char *path) {
    if (!scratch_path(path)) {
        memset(v, 0, sizeof *v);
        return as_fail("%s: (fuzz) not opened outside the scratch folder", path);
    }
    return __real_volume_read(v, path);
}

int __real_st_open(st_file *f, const char *path);
int __wrap_st_open(st_file *f, const char *path) {
    if (!scratch_path(path)) {
        memset(f, 0, sizeof *f);
        return as_fail("%s: (fuzz) not opened outside the scratch folder", path);
    }
    return __real_st_open(f, path);
}

int __real_fs_mkdirs(const char *dir);
int __wrap_fs_mkdirs(const char *dir) {
    if (!scratch_path(dir)) return as_fail("%s: (fuzz) no folders outside the scratch folder", dir);
    return __real_fs_mkdirs(dir);
}

int __real_fs_write_all(const char *path, const void *data, size_t n);
int __wrap_fs_write_all(const char *path, const void *data, size_t n) {
    if (!scratch_path(path)) return as_fail("%s: (fuzz) no files outside the scratch folder", path);
    return __real_fs_write_all(path, data, n);
}

int __wrap_train_data_load(const train_options *o, slice_set *train, slice_set *val, fingerprint *fp) {
    (void)train, (void)val, (void)fp;
    return as_fail("%s: (fuzz) no data loaded", o->data);
}

int __wrap_synth_run(const synth_options *o) {
    if (!o->out || o->healthy < 0 || o->test < 0 || (!o->write_t1 && !o->write_t2) || !o->template_path) abort();
    return 0;
}

static const char *const allowed[] = {"data", "info", "train", "-h", "--help", "help", "-V", "--version"};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    if (!freopen("/dev/null", "w", stdout)) abort();  // usage texts; stderr stays for reports
    if (chdir(fuzz_dir()) != 0) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096) return 0;
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = 0;
    char *argv[65];
    int argc = 0;
    argv[argc++] = "anoswin";
    for (char *p = buf; p < buf + size && argc < 64;) {
        size_t n = strcspn(p, "\n");
        if (p + n > buf + size) n = (size_t)(buf + size - p);
        p[n] = 0;
        argv[argc++] = p;
        p += n + 1;
    }
    argv[argc] = NULL;
    // Config override lists (`--config TEXT`).
    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '@') {
            swinmae_config c;
            swinmae_config_default(&c);
            as_error_clear();
            if (swinmae_config_parse(&c, argv[i] + 1, "--config") != 0) fuzz_check_error("--config");
            else if (swinmae_config_check(&c) != 0) abort();
        }
    int known = 0;
    for (size_t k = 0; k < sizeof allowed / sizeof *allowed; k++)
        if (argc > 1 && !strcmp(argv[1], allowed[k])) known = 1;
    if (known) {
        // A fresh getopt state: commands reset optind to 1, which keeps glibc's position inside
        // a grouped short option ("-hx") from the previous run.
        char *dummy[] = {"x", NULL};
        optind = 0;
        opterr = 0;
        (void)getopt_long(1, dummy, "", NULL, NULL);
        opterr = 1;
        int rc = anoswin_cli_main(argc, argv);
        if (rc < 0 || rc > 2) abort();
    }
    free(buf);
    return 0;
}
