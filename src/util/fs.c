#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/error.h"

void fs_temp_path(char *out, size_t n, const char *path) {
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *ext = strchr(base, '.');
    if (!ext || ext == base) ext = base + strlen(base);
    int dirlen = (int)(base - path);
    snprintf(out, n, "%.*s.%.*s.tmp-%ld%s", dirlen, path, (int)(ext - base), base, (long)getpid(), ext);
}

static int fsync_path(const char *p) {
    int fd = open(p, O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int fs_commit(const char *tmp, const char *path) {
    if (fsync_path(tmp) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return as_fail("%s: cannot write: %s", path, strerror(e));
    }
    return 0;
}

int fs_file_open(fs_file *af, const char *path) {
    snprintf(af->path, sizeof af->path, "%s", path);
    fs_temp_path(af->tmp, sizeof af->tmp, path);
    af->f = fopen(af->tmp, "wb");
    if (!af->f) return as_fail("%s: cannot write: %s", path, strerror(errno));
    return 0;
}

int fs_file_commit(fs_file *af) {
    int bad = ferror(af->f);
    if (fclose(af->f) != 0 || bad) {
        af->f = NULL;
        unlink(af->tmp);
        return as_fail("%s: write failed (disk full?)", af->path);
    }
    af->f = NULL;
    return fs_commit(af->tmp, af->path);
}

void fs_file_abort(fs_file *af) {
    if (af->f) fclose(af->f);
    af->f = NULL;
    unlink(af->tmp);
}

int fs_mkdirs(const char *dir) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    size_t n = strlen(buf);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) return as_fail("%s: cannot create folder: %s", buf, strerror(errno));
            buf[i] = c;
        }
    }
    if (!fs_is_dir(dir)) return as_fail("%s: not a folder", dir);
    return 0;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

int fs_remove_tree(const char *path) {
    if (!fs_exists(path)) return 0;
    if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return as_fail("%s: cannot remove: %s", path, strerror(errno));
    return 0;
}

int fs_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int fs_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int fs_read_all(const char *path, unsigned char **data, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return as_fail("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return as_fail("%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    unsigned char *buf = as_malloc(size + 1);
    if (fread(buf, 1, size, f) != size) {
        fclose(f);
        free(buf);
        return as_fail("%s: read failed", path);
    }
    fclose(f);
    buf[size] = 0;
    *data = buf;
    *n = size;
    return 0;
}

int fs_write_all(const char *path, const void *data, size_t n) {
    fs_file af;
    if (fs_file_open(&af, path)) return -1;
    if (fwrite(data, 1, n, af.f) != n) {
        fs_file_abort(&af);
        return as_fail("%s: write failed (disk full?)", path);
    }
    return fs_file_commit(&af);
}

void fs_join(char *out, size_t n, const char *a, const char *b) {
    size_t la = strlen(a);
    snprintf(out, n, "%s%s%s", a, (la && a[la - 1] == '/') ? "" : "/", b);
}
