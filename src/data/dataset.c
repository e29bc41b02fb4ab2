#include "data/dataset.h"

#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "util/csv.h"    // csv_write_field
#include "util/error.h"  // as_fail, as_malloc, as_strdup
#include "util/fs.h"     // fs_read_all, fs_file_*, fs_exists, fs_is_dir

// ---- small string helpers ----------------------------------------------------------------------

typedef struct strlist {
    char **s;
    int n, cap;
} strlist;

static void strlist_add(strlist *l, const char *s) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->s = as_realloc(l->s, sizeof(char *) * (size_t)l->cap);
    }
    l->s[l->n++] = as_strdup(s);
}

static void strlist_free(strlist *l) {
    for (int i = 0; i < l->n; i++) free(l->s[i]);
    free(l->s);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static char *path_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *out = as_malloc(n);
    if (!a[0]) snprintf(out, n, "%s", b);
    else snprintf(out, n, "%s%s%s", a, a[strlen(a) - 1] == '/' ? "" : "/", b);
    return out;
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

// The folder part of a relative path ("" at the top): written into out.
static void dir_name(char *out, size_t n, const char *p) {
    const char *s = strrchr(p, '/');
    snprintf(out, n, "%.*s", s ? (int)(s - p) : 0, p);
}

// "x.nii.gz" / "x.nii" -> stem "x"; 0 when not a NIfTI name.
static int nii_stem(char *stem, size_t n, const char *base) {
    size_t len = strlen(base);
    size_t ext = 0;
    if (len > 7 && !strcasecmp(base + len - 7, ".nii.gz")) ext = 7;
    else if (len > 4 && !strcasecmp(base + len - 4, ".nii")) ext = 4;
    if (!ext) return 0;
    snprintf(stem, n, "%.*s", (int)(len - ext), base);
    return 1;
}

// ---- folder walk: every file below root (relative paths, hidden entries skipped), sorted --------

static void walk(const char *root, const char *rel, int depth, strlist *files, strlist *dirs) {
    char *full = rel[0] ? path_join(root, rel) : as_strdup(root);
    DIR *d = opendir(full);
    if (!d) {
        free(full);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;  // ., .., hidden files and our own .tmp- files
        char *r = path_join(rel, e->d_name);
        char *f = path_join(full, e->d_name);
        struct stat st;
        if (stat(f, &st) == 0) {
            if (S_ISDIR(st.st_mode)) {
                strlist_add(dirs, r);
                if (depth > 0) walk(root, r, depth - 1, files, dirs);
            } else if (S_ISREG(st.st_mode)) {
                strlist_add(files, r);
            }
        }
        free(r);
        free(f);
    }
    closedir(d);
    free(full);
}

// ---- subjects being assembled --------------------------------------------------------------------

enum { MOD_T1, MOD_T2, MOD_FLAIR, MOD_T1CE, MOD_N };
static const char *mod_names[MOD_N] = {"t1", "t2", "flair", "t1ce"};

typedef struct entry {
    char *key;  // what identifies the subject while scanning (its folder, or its id)
    char *id;
    char *split;
    char *img[MOD_N];
    char *label, *mask;
} entry;

typedef struct entries {
    entry *e;
    int n, cap;
} entries;

static entry *entries_get(entries *es, const char *key, const char *id, const char *split) {
    for (int i = 0; i < es->n; i++)
        if (!strcmp(es->e[i].key, key)) return &es->e[i];
    if (es->n == es->cap) {
        es->cap = es->cap ? 2 * es->cap : 64;
        es->e = as_realloc(es->e, sizeof(entry) * (size_t)es->cap);
    }
    entry *e = &es->e[es->n++];
    memset(e, 0, sizeof *e);
    e->key = as_strdup(key);
    e->id = as_strdup(id);
    e->split = as_strdup(split);
    return e;
}

static void entries_free(entries *es) {
    for (int i = 0; i < es->n; i++) {
        entry *e = &es->e[i];
        free(e->key);
        free(e->id);
        free(e->split);
        for (int m = 0; m < MOD_N; m++) free(e->img[m]);
        free(e->label);
        free(e->mask);
    }
    free(es->e);
    memset(es, 0, sizeof *es);
}

// Stores *slot = path; a second file for the same slot is a duplicate.
static int set_slot(char **slot, const char *path, const char *id, const char *what) {
    if (*slot) return as_fail("%s: subject %s has two %s files (also %s)", path, id, what, *slot);
    *slot = as_strdup(path);
    return 0;
}

static int parse_modality(const char *s, int *mod) {
    for (int m = 0; m < MOD_N; m++)
        if (!strcasecmp(s, mod_names[m])) {
            *mod = m;
            return 0;
        }
    return -1;
}

static int cmp_subject(const void *a, const void *b) {
    return strcmp(((const subject *)a)->id, ((const subject *)b)->id);
}

enum { LABEL_OPTIONAL, LABEL_REQUIRED, LABEL_PER_SPLIT };

// Turns the scanned entries into sorted subjects: the requested modality must be there, labels
// must be there where required, ids must be unique.
static int finish(dataset *d, entries *es, const char *root, int mod, int label_rule, int skip_missing_image) {
    for (int i = 0; i < es->n; i++) {
        entry *e = &es->e[i];
        int any_img = 0;
        for (int m = 0; m < MOD_N; m++) any_img |= e->img[m] != NULL;
        if (!any_img && e->label) return as_fail("%s: label of subject %s has no image", e->label, e->id);
        if (!any_img && e->mask) return as_fail("%s: brain mask of subject %s has no image", e->mask, e->id);
        if (!e->img[mod] && !skip_missing_image)
            return as_fail("%s: subject %s has no %s image", e->key, e->id, mod_names[mod]);
        if (label_rule == LABEL_REQUIRED && e->img[mod] && !e->label)
            return as_fail("%s: subject %s has no label", e->img[mod], e->id);
        if (label_rule == LABEL_PER_SPLIT && !e->label && e->img[mod])
            for (int j = 0; j < es->n; j++)
                if (es->e[j].label && !strcmp(es->e[j].split, e->split))
                    return as_fail("%s: subject %s has no label (subject %s in the same folder has %s)", e->key,
                                   e->id, es->e[j].id, base_name(es->e[j].label));
        for (int j = 0; j < i; j++)
            if (!strcmp(es->e[j].id, e->id))
                return as_fail("%s: duplicate subject %s (also %s)", e->key, e->id, es->e[j].key);
    }
    d->subjects = as_calloc((size_t)es->n + 1, sizeof(subject));
    d->n = 0;
    for (int i = 0; i < es->n; i++) {
        entry *e = &es->e[i];
        if (!e->img[mod]) continue;
        subject *s = &d->subjects[d->n++];
        s->id = as_strdup(e->id);
        s->image = path_join(root, e->img[mod]);
        s->label = e->label ? path_join(root, e->label) : as_strdup("");
        s->mask = e->mask ? path_join(root, e->mask) : as_strdup("");
        s->split = as_strdup(e->split);
    }
    if (d->n == 0) return as_fail("%s: no %s images found (%s layout)", root, mod_names[mod], d->layout);
    qsort(d->subjects, (size_t)d->n, sizeof(subject), cmp_subject);
    return 0;
}

// ---- layouts ------------------------------------------------------------------------------------

// <root>/{t1,t2,flair}/<id>_<mod>.nii.gz, <root>/seg/<id>_seg.nii.gz, <root>/mask/<id>_mask.nii.gz
static int find_benchmark_dir(const strlist *dirs, const char *name) {
    for (int i = 0; i < dirs->n; i++)
        if (!strchr(dirs->s[i], '/') && !strcasecmp(dirs->s[i], name)) return i;
    return -1;
}

static int is_benchmark(const strlist *files, const strlist *dirs) {
    for (int m = 0; m < MOD_N; m++) {
        int k = find_benchmark_dir(dirs, mod_names[m]);
        if (k < 0) continue;
        size_t len = strlen(dirs->s[k]);
        for (int i = 0; i < files->n; i++)
            if (!strncmp(files->s[i], dirs->s[k], len) && files->s[i][len] == '/' && !strchr(files->s[i] + len + 1, '/'))
                return 1;
    }
    return 0;
}

static int scan_benchmark(entries *es, const strlist *files, int *has_seg) {
    *has_seg = 0;
    for (int i = 0; i < files->n; i++) {
        const char *f = files->s[i];
        const char *slash = strchr(f, '/');
        if (!slash || strchr(slash + 1, '/')) continue;  // exactly <folder>/<file>
        char folder[256], stem[1024];
        snprintf(folder, sizeof folder, "%.*s", (int)(slash - f), f);
        if (!nii_stem(stem, sizeof stem, slash + 1)) continue;
        int mod = -1, is_seg = !strcasecmp(folder, "seg"), is_mask = !strcasecmp(folder, "mask");
        if (!is_seg && !is_mask && parse_modality(folder, &mod) != 0) continue;  // other folders
        char *us = strrchr(stem, '_');
        if (!us || strcasecmp(us + 1, folder))
            return as_fail("%s: expected a name <subject>_%s.nii.gz in folder %s/", f, folder, folder);
        *us = '\0';
        entry *e = entries_get(es, stem, stem, "");
        if (is_seg) {
            *has_seg = 1;
            if (set_slot(&e->label, f, stem, "label") != 0) return -1;
        } else if (is_mask) {
            if (set_slot(&e->mask, f, stem, "brain mask") != 0) return -1;
        } else if (set_slot(&e->img[mod], f, stem, mod_names[mod]) != 0) {
            return -1;
        }
    }
    return 0;
}

// <dir>/<dir>_<suffix>.nii.gz where the file name starts with its folder's name.
static int brats_suffix(const char *f, char *dir, size_t ndir, const char **suffix, char *stem, size_t nstem) {
    dir_name(dir, ndir, f);
    if (!dir[0] || !nii_stem(stem, nstem, base_name(f))) return 0;
    const char *dname = base_name(dir);
    size_t len = strlen(dname);
    if (strncmp(stem, dname, len) || stem[len] != '_' || !stem[len + 1]) return 0;
    *suffix = stem + len + 1;
    return 1;
}

static int scan_brats(entries *es, const strlist *files) {
    for (int i = 0; i < files->n; i++) {
        char dir[4096], stem[1024], split[4096];
        const char *suffix;
        if (!brats_suffix(files->s[i], dir, sizeof dir, &suffix, stem, sizeof stem)) continue;
        dir_name(split, sizeof split, dir);
        entry *e = entries_get(es, dir, base_name(dir), split);
        int mod;
        if (!strcasecmp(suffix, "seg")) {
            if (set_slot(&e->label, files->s[i], e->id, "seg") != 0) return -1;
        } else if (!strcasecmp(suffix, "mask")) {
            if (set_slot(&e->mask, files->s[i], e->id, "mask") != 0) return -1;
        } else if (parse_modality(suffix, &mod) == 0) {
            if (set_slot(&e->img[mod], files->s[i], e->id, mod_names[mod]) != 0) return -1;
        } else {
            return as_fail("%s: subject %s: unknown modality '%s' (expected t1, t1ce, t2, flair, seg or mask)",
                           files->s[i], e->id, suffix);
        }
    }
    return 0;
}

// WMH challenge: <site>/<id>/pre/{FLAIR,T1}.nii.gz + <site>/<id>/wmh.nii.gz
static int wmh_subject(const char *f, char *subj, size_t n, const char **name) {
    char dir[4096];
    dir_name(dir, sizeof dir, f);
    if (strcmp(base_name(dir), "pre") || !strchr(dir, '/')) return 0;
    dir_name(subj, n, dir);
    *name = base_name(f);
    return 1;
}

static int scan_wmh(entries *es, const strlist *files) {
    for (int i = 0; i < files->n; i++) {
        char subj[4096], stem[256];
        const char *name;
        if (!wmh_subject(files->s[i], subj, sizeof subj, &name) || !nii_stem(stem, sizeof stem, name)) continue;
        int mod = !strcmp(stem, "FLAIR") ? MOD_FLAIR : !strcmp(stem, "T1") ? MOD_T1 : -1;
        if (mod < 0) continue;  // other preprocessed files
        char id[4096];
        snprintf(id, sizeof id, "%s", subj);
        for (char *c = id; *c; c++)
            if (*c == '/') *c = '_';
        entry *e = entries_get(es, subj, id, "");
        if (set_slot(&e->img[mod], files->s[i], id, mod_names[mod]) != 0) return -1;
        if (!e->label) {
            for (int j = 0; j < files->n; j++) {
                char dir[4096], st[64];
                dir_name(dir, sizeof dir, files->s[j]);
                if (!strcmp(dir, subj) && nii_stem(st, sizeof st, base_name(files->s[j])) && !strcmp(st, "wmh"))
                    e->label = as_strdup(files->s[j]);
            }
        }
    }
    return 0;
}

// MSLUB: <id>/{T1W,T2W,FLAIR}.nii.gz + <id>/consensus_gt.nii.gz [+ <id>/brainmask.nii.gz]
static int scan_mslub(entries *es, const strlist *files) {
    for (int i = 0; i < files->n; i++) {
        char dir[4096], stem[256];
        dir_name(dir, sizeof dir, files->s[i]);
        if (!dir[0] || !nii_stem(stem, sizeof stem, base_name(files->s[i]))) continue;
        int mod = !strcasecmp(stem, "T1W") ? MOD_T1 : !strcasecmp(stem, "T2W") ? MOD_T2
                : !strcasecmp(stem, "FLAIR") ? MOD_FLAIR : -1;
        int is_gt = !strcasecmp(stem, "consensus_gt"), is_mask = !strcasecmp(stem, "brainmask");
        if (mod < 0 && !is_gt && !is_mask) continue;
        char id[4096];
        snprintf(id, sizeof id, "%s", dir);
        for (char *c = id; *c; c++)
            if (*c == '/') *c = '_';
        entry *e = entries_get(es, dir, id, "");
        if (is_gt) {
            if (set_slot(&e->label, files->s[i], id, "consensus_gt") != 0) return -1;
        } else if (is_mask) {
            if (set_slot(&e->mask, files->s[i], id, "brainmask") != 0) return -1;
        } else if (set_slot(&e->img[mod], files->s[i], id, mod_names[mod]) != 0) {
            return -1;
        }
    }
    return 0;
}

// IXI: IXI<num>-<site>-<num>-<T1|T2|PD|MRA|DTI>[anything].nii[.gz]; id = "IXI<num>-<site>-<num>".
static int ixi_parse(const char *base, char *id, size_t n, char *mod, size_t nmod) {
    if (strncmp(base, "IXI", 3) || !isdigit((unsigned char)base[3])) return 0;
    const char *p = base + 3;
    while (isdigit((unsigned char)*p)) p++;
    if (*p++ != '-' || !isalpha((unsigned char)*p)) return 0;
    while (isalpha((unsigned char)*p)) p++;
    if (*p++ != '-' || !isdigit((unsigned char)*p)) return 0;
    while (isdigit((unsigned char)*p)) p++;
    if (*p != '-') return 0;
    snprintf(id, n, "%.*s", (int)(p - base), base);
    p++;
    size_t k = 0;
    while (isalnum((unsigned char)p[k])) k++;
    if (!k) return 0;
    snprintf(mod, nmod, "%.*s", (int)k, p);
    return 1;
}

static int scan_ixi(entries *es, const strlist *files) {
    for (int i = 0; i < files->n; i++) {
        char stem[1024], id[256], mod[16];
        if (!nii_stem(stem, sizeof stem, base_name(files->s[i])) || !ixi_parse(stem, id, sizeof id, mod, sizeof mod))
            continue;
        int m;
        if (parse_modality(mod, &m) != 0) continue;  // PD, MRA, DTI: not used by anoswin
        entry *e = entries_get(es, id, id, "");
        if (set_slot(&e->img[m], files->s[i], id, mod_names[m]) != 0) return -1;
    }
    return 0;
}

// ---- manifest CSV -----------------------------------------------------------------------------

enum { COL_SUBJECT, COL_IMAGE, COL_LABEL, COL_MASK, COL_SPLIT, COL_N };
static const char *col_names[COL_N] = {"subject", "image", "label", "mask", "split"};

// Splits one CSV record starting at *p (RFC 4180 quoting; a quoted field may not span lines).
// Fields are written into `fields` (caller frees). Returns the field count, -1 on a bad quote.
static int csv_record(const char **p, const char *end, strlist *fields) {
    const char *s = *p;
    char *buf = as_malloc((size_t)(end - s) + 1);
    int nf = 0;
    for (;;) {
        size_t k = 0;
        if (s < end && *s == '"') {
            s++;
            for (;;) {
                if (s >= end || *s == '\n') {
                    free(buf);
                    return -1;
                }
                if (*s == '"') {
                    if (s + 1 < end && s[1] == '"') {
                        buf[k++] = '"';
                        s += 2;
                        continue;
                    }
                    s++;
                    break;
                }
                buf[k++] = *s++;
            }
            while (s < end && (*s == ' ' || *s == '\t' || *s == '\r')) s++;
            if (s < end && *s != ',' && *s != '\n') {
                free(buf);
                return -1;
            }
            buf[k] = '\0';
            strlist_add(fields, buf);  // quoted: kept exactly (dataset_write_manifest relies on it)
        } else {
            while (s < end && *s != ',' && *s != '\n') buf[k++] = *s++;
            while (k && (buf[k - 1] == '\r' || buf[k - 1] == ' ' || buf[k - 1] == '\t')) k--;
            buf[k] = '\0';
            const char *t = buf;
            while (*t == ' ' || *t == '\t') t++;
            strlist_add(fields, t);
        }
        nf++;
        if (s < end && *s == ',') {
            s++;
            continue;
        }
        if (s < end && *s == '\n') s++;
        break;
    }
    free(buf);
    *p = s;
    return nf;
}

static int open_manifest(dataset *d, const char *csv) {
    unsigned char *data;
    size_t n;
    if (fs_read_all(csv, &data, &n) != 0) return -1;
    const char *p = (const char *)data, *end = p + n;
    if (n >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) p += 3;  // UTF-8 byte-order mark (spreadsheets)
    char folder[4096];
    dir_name(folder, sizeof folder, csv);
    int col[COL_N], ncols = 0, line = 0, rc = -1;
    strlist fields = {0};
    entries es = {0};
    for (int c = 0; c < COL_N; c++) col[c] = -1;
    while (p < end) {
        line++;
        const char *start = p;
        while (start < end && (*start == ' ' || *start == '\t' || *start == '\r')) start++;
        if (start < end && *start == '\n') {  // blank line
            p = start + 1;
            continue;
        }
        strlist_free(&fields);
        int nf = csv_record(&p, end, &fields);
        if (nf < 0) {
            as_fail("%s:%d: unterminated or misplaced quote", csv, line);
            goto out;
        }
        if (ncols == 0) {
            ncols = nf;
            for (int i = 0; i < nf; i++) {
                int c = 0;
                while (c < COL_N && strcasecmp(fields.s[i], col_names[c])) c++;
                if (c == COL_N) {
                    as_fail("%s:%d: unknown column '%s' (expected subject,image,label,mask,split)", csv, line,
                            fields.s[i]);
                    goto out;
                }
                if (col[c] >= 0) {
                    as_fail("%s:%d: column '%s' appears twice", csv, line, col_names[c]);
                    goto out;
                }
                col[c] = i;
            }
            if (col[COL_SUBJECT] < 0 || col[COL_IMAGE] < 0) {
                as_fail("%s:%d: header needs at least the columns subject and image "
                        "(subject,image,label,mask,split)", csv, line);
                goto out;
            }
            continue;
        }
        if (nf != ncols) {
            as_fail("%s:%d: %d fields, expected %d as in the header", csv, line, nf, ncols);
            goto out;
        }
        const char *v[COL_N];
        for (int c = 0; c < COL_N; c++) v[c] = col[c] >= 0 ? fields.s[col[c]] : "";
        if (!v[COL_SUBJECT][0] || !v[COL_IMAGE][0]) {
            as_fail("%s:%d: empty %s", csv, line, !v[COL_SUBJECT][0] ? "subject" : "image");
            goto out;
        }
        for (int j = 0; j < es.n; j++)
            if (!strcmp(es.e[j].id, v[COL_SUBJECT])) {
                as_fail("%s:%d: duplicate subject %s", csv, line, v[COL_SUBJECT]);
                goto out;
            }
        entry *e = entries_get(&es, v[COL_SUBJECT], v[COL_SUBJECT], v[COL_SPLIT]);
        const int cols[3] = {COL_IMAGE, COL_LABEL, COL_MASK};
        char **slots[3] = {&e->img[0], &e->label, &e->mask};
        for (int k = 0; k < 3; k++) {
            const char *val = v[cols[k]];
            if (!val[0]) continue;
            char *full = (val[0] == '/' || !folder[0]) ? as_strdup(val) : path_join(folder, val);
            if (!fs_exists(full)) {
                as_fail("%s: %s of subject %s not found (%s:%d)", full, col_names[cols[k]], e->id, csv, line);
                free(full);
                goto out;
            }
            *slots[k] = full;
        }
    }
    if (ncols == 0) {
        as_fail("%s: empty manifest (expected the header subject,image,label,mask,split)", csv);
        goto out;
    }
    if (es.n == 0) {
        as_fail("%s: manifest lists no subjects", csv);
        goto out;
    }
    // The image column is whatever modality the user listed: keep it in slot 0 and finish.
    rc = finish(d, &es, "", 0, LABEL_OPTIONAL, 0);
out:
    strlist_free(&fields);
    entries_free(&es);
    free(data);
    return rc;
}

// ---- public API ---------------------------------------------------------------------------------

int dataset_open(dataset *d, const char *path, const char *modality) {
    memset(d, 0, sizeof *d);
    int mod = MOD_T2;
    if (modality && (parse_modality(modality, &mod) != 0))
        return as_fail("%s: unknown modality '%s' (expected t1, t2 or flair)", path, modality);
    snprintf(d->modality, sizeof d->modality, "%s", mod_names[mod]);
    if (!fs_exists(path)) return as_fail("%s: no such file or folder", path);
    if (!fs_is_dir(path)) {
        snprintf(d->layout, sizeof d->layout, "manifest");
        int rc = open_manifest(d, path);
        if (rc != 0) dataset_free(d);
        return rc;
    }

    strlist files = {0}, dirs = {0};
    walk(path, "", 6, &files, &dirs);
    if (files.n > 1) qsort(files.s, (size_t)files.n, sizeof(char *), cmp_str);
    if (dirs.n > 1) qsort(dirs.s, (size_t)dirs.n, sizeof(char *), cmp_str);
    int has_wmh = 0, has_mslub = 0, has_brats = 0, has_ixi = 0;
    for (int i = 0; i < files.n; i++) {
        char a[4096], b[1024], stem[1024];
        const char *suffix, *name;
        if (wmh_subject(files.s[i], a, sizeof a, &name) && nii_stem(stem, sizeof stem, name) &&
            (!strcmp(stem, "FLAIR") || !strcmp(stem, "T1")))
            has_wmh = 1;
        if (nii_stem(stem, sizeof stem, base_name(files.s[i])) && strchr(files.s[i], '/') &&
            (!strcasecmp(stem, "consensus_gt") || !strcasecmp(stem, "T2W") || !strcasecmp(stem, "T1W")))
            has_mslub = 1;
        if (brats_suffix(files.s[i], a, sizeof a, &suffix, b, sizeof b)) has_brats = 1;
        char id[256], m[16];
        if (nii_stem(stem, sizeof stem, base_name(files.s[i])) && ixi_parse(stem, id, sizeof id, m, sizeof m))
            has_ixi = 1;
    }
    entries es = {0};
    int rc;
    if (is_benchmark(&files, &dirs)) {
        snprintf(d->layout, sizeof d->layout, "benchmark");
        int has_seg = 0;
        rc = scan_benchmark(&es, &files, &has_seg);
        if (rc == 0) rc = finish(d, &es, path, mod, has_seg ? LABEL_REQUIRED : LABEL_OPTIONAL, 0);
    } else if (has_wmh) {
        snprintf(d->layout, sizeof d->layout, "wmh");
        rc = (mod == MOD_T1 || mod == MOD_FLAIR)
                 ? scan_wmh(&es, &files)
                 : as_fail("%s: WMH layout has no %s images (t1 or flair)", path, mod_names[mod]);
        if (rc == 0) rc = finish(d, &es, path, mod, LABEL_REQUIRED, 0);
    } else if (has_mslub) {
        snprintf(d->layout, sizeof d->layout, "mslub");
        rc = scan_mslub(&es, &files);
        if (rc == 0) rc = finish(d, &es, path, mod, LABEL_REQUIRED, 0);
    } else if (has_brats) {
        snprintf(d->layout, sizeof d->layout, "brats");
        rc = scan_brats(&es, &files);
        if (rc == 0) rc = finish(d, &es, path, mod, LABEL_PER_SPLIT, 0);
    } else if (has_ixi) {
        snprintf(d->layout, sizeof d->layout, "ixi");
        rc = mod == MOD_FLAIR ? as_fail("%s: IXI has no flair images (t1 or t2)", path) : scan_ixi(&es, &files);
        // IXI lacks some modalities for some subjects: those subjects are left out, not an error.
        if (rc == 0) rc = finish(d, &es, path, mod, LABEL_OPTIONAL, 1);
    } else {
        rc = as_fail("%s: no recognisable scans (expected a BraTS21, IXI, MSLUB, WMH or benchmark layout, or a "
                     "manifest CSV; see docs/data.md)", path);
    }
    entries_free(&es);
    strlist_free(&files);
    strlist_free(&dirs);
    if (rc != 0) dataset_free(d);
    return rc;
}

static void subject_free(subject *s) {
    free(s->id);
    free(s->image);
    free(s->label);
    free(s->mask);
    free(s->split);
}

void dataset_free(dataset *d) {
    for (int i = 0; i < d->n; i++) subject_free(&d->subjects[i]);
    free(d->subjects);
    d->subjects = NULL;
    d->n = 0;
}

int dataset_keep_split(dataset *d, const char *split) {
    int k = 0;
    for (int i = 0; i < d->n; i++) {
        if (!strcmp(d->subjects[i].split, split)) d->subjects[k++] = d->subjects[i];
        else subject_free(&d->subjects[i]);
    }
    d->n = k;
    return k;
}

const subject *dataset_find(const dataset *d, const char *id) {
    for (int i = 0; i < d->n; i++)
        if (!strcmp(d->subjects[i].id, id)) return &d->subjects[i];
    return NULL;
}

static void manifest_field(FILE *f, const char *s, int last, int is_path) {
    // Paths become absolute, so the manifest works wherever it is saved.
    char *abs = is_path && s[0] ? realpath(s, NULL) : NULL;
    if (abs) s = abs;
    csv_write_field(f, s);  // quoted where csv_record would split or trim: fields round-trip exactly
    fputc(last ? '\n' : ',', f);
    free(abs);
}

int dataset_write_manifest(const dataset *d, const char *path) {
    fs_file af;
    FILE *f = stdout;
    int to_stdout = !strcmp(path, "-");
    if (!to_stdout) {
        if (fs_file_open(&af, path) != 0) return -1;
        f = af.f;
    }
    fprintf(f, "subject,image,label,mask,split\n");
    for (int i = 0; i < d->n; i++) {
        const subject *s = &d->subjects[i];
        manifest_field(f, s->id, 0, 0);
        manifest_field(f, s->image, 0, 1);
        manifest_field(f, s->label, 0, 1);
        manifest_field(f, s->mask, 0, 1);
        manifest_field(f, s->split, 1, 0);
    }
    if (to_stdout) return fflush(stdout) == 0 ? 0 : as_fail("-: cannot write to stdout");
    return fs_file_commit(&af);
}

int volume_check_same_grid(const volume *a, const char *path_a, const volume *b, const char *path_b) {
    int same = a->nx == b->nx && a->ny == b->ny && a->nz == b->nz;
    double worst = 0;
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++) {
            double diff = fabs(a->affine[r][c] - b->affine[r][c]);
            if (diff > worst) worst = diff;
        }
    if (same && worst <= 0.01) return 0;
    if (!same)
        return as_fail("%s: grid %dx%dx%d does not match %s (%dx%dx%d)", path_b, b->nx, b->ny, b->nz, path_a, a->nx,
                       a->ny, a->nz);
    return as_fail("%s: voxel-to-world affine differs from %s's by up to %.3g mm", path_b, path_a, worst);
}
