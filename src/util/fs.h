// Files: atomic replacement (write to a temp name in the same folder, fsync, rename) so that
// nothing is ever left half-written, plus small path helpers.
#ifndef ANOSWIN_UTIL_FS_H
#define ANOSWIN_UTIL_FS_H

#include <stddef.h>
#include <stdio.h>

// Writes a temp path next to `path` that keeps its extension(s) (".nii.gz" stays last, so
// libraries that pick the format from the name still work): "dir/.name.tmp-PID.nii.gz".
void fs_temp_path(char *out, size_t n, const char *path);
// fsyncs `tmp` and renames it over `path`; on failure removes tmp and records an error.
int fs_commit(const char *tmp, const char *path);

// Atomic FILE* writing: open -> write -> fs_file_commit (or fs_file_abort on error).
typedef struct fs_file {
    FILE *f;
    char path[4096];
    char tmp[4200];
} fs_file;
int fs_file_open(fs_file *af, const char *path);
int fs_file_commit(fs_file *af);
void fs_file_abort(fs_file *af);

int fs_mkdirs(const char *dir);            // mkdir -p; error names the folder
// rm -r of a folder the caller created (a step's outputs); no-op when absent; links not followed.
int fs_remove_tree(const char *path);
int fs_exists(const char *path);
int fs_is_dir(const char *path);
// Reads a whole file (binary); *n gets its size. Error names the file.
int fs_read_all(const char *path, unsigned char **data, size_t *n);
// Writes a whole buffer atomically.
int fs_write_all(const char *path, const void *data, size_t n);
// Joins "a/b" into out.
void fs_join(char *out, size_t n, const char *a, const char *b);

#endif
