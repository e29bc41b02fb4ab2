#include "latent/latent.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/volume.h"
#include "io/png.h"
#include "latent/linalg.h"
#include "model/model.h"
#include "util/csv.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/timer.h"

void latent_options_default(latent_options *o) {
    memset(o, 0, sizeof *o);
    slice_options_default(&o->slices, 0);
    o->min_lesion_px = 1;
    o->projection = LATENT_UMAP;
    umap_params_default(&o->umap);
    o->knn_k = 5;
    o->batch = 8;
}

// One analysed slice.
typedef struct item {
    const char *subject;
    int scan;  // 0.. in reading order
    int z, lesion, lesion_px;
} item;

typedef struct collect {
    item *items;
    float *lat;     // (n, D) unmasked
    float *lat_m;   // (n, D) lesion tokens masked (healthy: = unmasked)
    int n, cap, D, scans;
} collect;

static void collect_push(collect *c, const item *it, const float *z, const float *zm) {
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 256;
        c->items = as_realloc(c->items, sizeof(item) * (size_t)c->cap);
        c->lat = as_realloc(c->lat, sizeof(float) * (size_t)c->cap * c->D);
        c->lat_m = as_realloc(c->lat_m, sizeof(float) * (size_t)c->cap * c->D);
    }
    c->items[c->n] = *it;
    memcpy(c->lat + (size_t)c->n * c->D, z, sizeof(float) * (size_t)c->D);
    memcpy(c->lat_m + (size_t)c->n * c->D, zm, sizeof(float) * (size_t)c->D);
    c->n++;
}

// Token mask of one slice: every mask_size cell with a label pixel hidden, in whole tokens.
static int lesion_tokens(uint8_t *tm, const uint8_t *lab, int S, int P, int ms) {
    const int G = S / P;
    int hidden = 0;
    memset(tm, 0, (size_t)G * G);
    for (int cy = 0; cy < S; cy += ms)
        for (int cx = 0; cx < S; cx += ms) {
            int any = 0;
            for (int y = cy; y < cy + ms && !any; y++)
                for (int x = cx; x < cx + ms; x++)
                    if (lab[(size_t)y * S + x]) {
                        any = 1;
                        break;
                    }
            if (!any) continue;
            for (int ty = cy / P; ty < (cy + ms) / P; ty++)
                for (int tx = cx / P; tx < (cx + ms) / P; tx++) tm[ty * G + tx] = 1, hidden++;
        }
    return hidden;
}

// Latents of the chosen slices of one scan. lesion: the scan's label picks and masks the slices.
// Where a scan's lesion is: its label, else (with --pred) detect's mask of it; NULL when neither.
static const char *lesion_file(const subject *sub, const latent_options *o, char *buf, size_t n) {
    if (*sub->label) return sub->label;
    if (!o->pred) return NULL;
    char d[4200];
    fs_join(d, sizeof d, o->pred, sub->id);
    fs_join(buf, n, d, "mask.nii.gz");
    return fs_exists(buf) ? buf : NULL;
}

static int scan_latents(collect *c, model *m, const subject *sub, int lesion, const latent_options *o, int ms) {
    slice_options so = o->slices;
    model_slice_options(m, &so);
    slice_stack s;
    if (slices_load(&s, sub->image, *sub->mask ? sub->mask : NULL, &so)) return -1;
    const int S = s.size, C = m->in_chans, L = model_tokens(m), D = c->D;
    uint8_t *lab = NULL;
    if (lesion) {
        volume lv;
        char buf[8500];
        if (volume_read(&lv, lesion_file(sub, o, buf, sizeof buf))) {
            slices_free(&s);
            return -1;
        }
        lab = as_malloc((size_t)s.n * S * S);
        int e = slices_labels(lab, &s, &lv);
        volume_free(&lv);
        if (e) {
            free(lab);
            slices_free(&s);
            return -1;
        }
    }
    const int B = o->batch;
    float *img = as_malloc(sizeof(float) * (size_t)B * C * S * S);
    uint8_t *tm = as_calloc((size_t)B * L, 1), *tmz = as_calloc((size_t)B * L, 1);
    float *z = as_malloc(sizeof(float) * (size_t)B * D), *zm = as_malloc(sizeof(float) * (size_t)B * D);
    item *its = as_malloc(sizeof(item) * (size_t)B);
    int nb = 0;
    for (int k = 0; k <= s.n; k++) {
        if (k < s.n) {
            const uint8_t *br = s.brain + (size_t)k * S * S;
            int brain = 0, lpx = 0;
            for (int i = 0; i < S * S; i++) brain += br[i] != 0;
            if (lab)
                for (int i = 0; i < S * S; i++) lpx += lab[(size_t)k * S * S + i] != 0;
            if (!brain || (lesion && lpx < o->min_lesion_px)) continue;
            slices_input(img + (size_t)nb * C * S * S, &s, k, C);
            if (lesion) lesion_tokens(tm + (size_t)nb * L, lab + (size_t)k * S * S, S, m->patch_size, ms);
            its[nb] = (item){sub->id, c->scans, s.z[k], lesion, lpx};
            nb++;
        }
        if (nb == B || (k == s.n && nb > 0)) {
            m->method->latent(m, z, img, tmz, nb);
            if (lesion) m->method->latent(m, zm, img, tm, nb);
            for (int b = 0; b < nb; b++)
                collect_push(c, &its[b], z + (size_t)b * D, (lesion ? zm : z) + (size_t)b * D);
            nb = 0;
        }
    }
    c->scans++;
    free(its);
    free(zm);
    free(z);
    free(tmz);
    free(tm);
    free(img);
    free(lab);
    slices_free(&s);
    return 0;
}

// ---- writers ---------------------------------------------------------------------------------------
// NumPy's .npy (version 1.0): little-endian float32, C order.
static void npy_header(FILE *f, const int *shape, int nd) {
    char dict[256];
    int len = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < nd; i++) len += snprintf(dict + len, sizeof dict - (size_t)len, "%d%s", shape[i],
                                                 nd == 1 ? "," : i < nd - 1 ? ", " : "");
    len += snprintf(dict + len, sizeof dict - (size_t)len, "), }");
    int total = 10 + len + 1, pad = (64 - total % 64) % 64;
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    unsigned short hl = (unsigned short)(len + pad + 1);
    unsigned char h2[2] = {(unsigned char)(hl & 0xff), (unsigned char)(hl >> 8)};
    fwrite(h2, 1, 2, f);
    fwrite(dict, 1, (size_t)len, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
}

static int write_npy(const char *path, const float *const *parts, const size_t *counts, int nparts, const int *shape,
                     int nd) {
    fs_file af;
    if (fs_file_open(&af, path)) return -1;
    npy_header(af.f, shape, nd);
    for (int p = 0; p < nparts; p++) fwrite(parts[p], sizeof(float), counts[p], af.f);
    return fs_file_commit(&af);
}

static const char *group_name(int lesion) { return lesion ? "lesion" : "healthy"; }

static int write_latents_csv(const char *path, const collect *c) {
    fs_file af;
    if (fs_file_open(&af, path)) return -1;
    FILE *f = af.f;
    fprintf(f, "subject,z,group,masked,lesion_px");
    for (int d = 0; d < c->D; d++) fprintf(f, ",l%d", d);
    fputc('\n', f);
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < c->n; i++) {
            const item *it = &c->items[i];
            if (pass == 1 && !it->lesion) continue;
            csv_write_field(f, it->subject);
            fprintf(f, ",%d,%s,%d,%d", it->z, group_name(it->lesion), pass, it->lesion_px);
            const float *z = (pass ? c->lat_m : c->lat) + (size_t)i * c->D;
            for (int d = 0; d < c->D; d++) fputc(',', f), csv_write_number(f, z[d]);
            fputc('\n', f);
        }
    return fs_file_commit(&af);
}

static int write_embedding_csv(const char *path, const collect *c, float *const Y[2], int *const cl[2]) {
    fs_file af;
    if (fs_file_open(&af, path)) return -1;
    FILE *f = af.f;
    fprintf(f, "panel,subject,z,group,x,y,cluster\n");
    for (int p = 0; p < 2; p++)
        for (int i = 0; i < c->n; i++) {
            const item *it = &c->items[i];
            fprintf(f, "%s,", p ? "masked" : "unmasked");
            csv_write_field(f, it->subject);
            fprintf(f, ",%d,%s,", it->z, group_name(it->lesion));
            csv_write_number(f, Y[p][2 * i]);
            fputc(',', f);
            csv_write_number(f, Y[p][2 * i + 1]);
            fprintf(f, ",%d\n", cl[p][i]);
        }
    return fs_file_commit(&af);
}

static void json_panel(FILE *f, const latent_panel *p) {
    const char *keys[6] = {"silhouette_latent", "silhouette_2d", "knn_accuracy_latent", "knn_accuracy_2d",
                           "kmeans_ari", "kmeans_accuracy"};
    const double vals[6] = {p->silhouette_latent, p->silhouette_2d, p->knn_latent, p->knn_2d, p->kmeans_ari,
                            p->kmeans_accuracy};
    fputc('{', f);
    for (int k = 0; k < 6; k++) {
        json_write_string(f, keys[k]);
        fputc(':', f);
        json_write_number(f, vals[k]);
        fputc(',', f);
    }
    fprintf(f, "\"kmeans_ellipses\":[");
    for (int c = 0; c < 2; c++) {
        const sep_ellipse *e = &p->ellipse[c];
        fprintf(f, "%s{\"n\":%d,\"centre\":[", c ? "," : "", e->n);
        json_write_number(f, e->cx), fputc(',', f), json_write_number(f, e->cy);
        fprintf(f, "],\"sd\":[");
        json_write_number(f, e->sd1), fputc(',', f), json_write_number(f, e->sd2);
        fprintf(f, "],\"angle_rad\":");
        json_write_number(f, e->angle);
        fputc('}', f);
    }
    fprintf(f, "]}");
}

// A float option as the decimal it was given as (0.1, not 0.10000000149).
static double float_decimal(float v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.7g", v);
    return strtod(buf, NULL);
}

static int write_json(const char *path, const latent_options *o, const latent_result *r, const char *method) {
    fs_file af;
    if (fs_file_open(&af, path)) return -1;
    FILE *f = af.f;
    fprintf(f, "{\"checkpoint\":");
    json_write_string(f, o->checkpoint);
    fprintf(f, ",\"method\":");
    json_write_string(f, method);
    fprintf(f, ",\"pooling\":\"mean over the bottleneck tokens (last encoder stage)\",\"latent_dim\":%d,", r->latent_dim);
    fprintf(f, "\"healthy_scans\":%d,\"lesion_scans\":%d,\"healthy_slices\":%d,\"lesion_slices\":%d,", r->healthy_scans,
            r->lesion_scans, r->n_healthy, r->n_lesion);
    fprintf(f, "\"slice_range\":[%d,%d],\"mask_size\":%d,\"min_lesion_px\":%d,\"knn_k\":%d,", o->slices.z_first,
            o->slices.z_last, r->mask_size, o->min_lesion_px, o->knn_k);
    fprintf(f, "\"projection\":\"%s\",", o->projection == LATENT_PCA ? "pca" : "umap");
    const umap_params *u = &o->umap;
    fprintf(f, "\"umap\":{\"n_neighbors\":%d,\"min_dist\":", u->n_neighbors);
    json_write_number(f, float_decimal(u->min_dist));
    fprintf(f, ",\"spread\":");
    json_write_number(f, float_decimal(u->spread));
    fprintf(f, ",\"n_epochs\":%d,\"init\":\"%s\",\"seed\":%llu},", u->n_epochs,
            u->init == UMAP_INIT_RANDOM ? "random" : "spectral", (unsigned long long)u->seed);
    fprintf(f, "\"seconds\":{\"latents\":");
    json_write_number(f, r->seconds_latents);
    fprintf(f, ",\"projection\":");
    json_write_number(f, r->seconds_projection);
    fprintf(f, "},\"panels\":{\"unmasked\":");
    json_panel(f, &r->panel[0]);
    fprintf(f, ",\"masked\":");
    json_panel(f, &r->panel[1]);
    fprintf(f, "}}\n");
    return fs_file_commit(&af);
}

// ---- picture ----------------------------------------------------------------------------------------
enum { PANEL = 480, MARGIN = 20 };

static void put_px(rgb_image *im, int x, int y, const unsigned char c[3]) {
    if (x < 0 || y < 0 || x >= im->w || y >= im->h) return;
    memcpy(im->px + ((size_t)y * im->w + x) * 3, c, 3);
}

// Panel coordinates: one scale for both axes (distances keep their meaning), the box of the
// points and ellipses centred.
typedef struct view {
    double sc, ox, oy;
} view;

static view panel_view(const float *Y, int n, const latent_panel *p) {
    double lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY};
    for (int i = 0; i < n; i++)
        for (int t = 0; t < 2; t++) lo[t] = fmin(lo[t], Y[2 * i + t]), hi[t] = fmax(hi[t], Y[2 * i + t]);
    for (int e = 0; e < 2; e++) {
        const sep_ellipse *el = &p->ellipse[e];
        if (el->n < 2) continue;
        double ca = cos(el->angle), sa = sin(el->angle);
        double hx = hypot(2 * el->sd1 * ca, 2 * el->sd2 * sa), hy = hypot(2 * el->sd1 * sa, 2 * el->sd2 * ca);
        lo[0] = fmin(lo[0], el->cx - hx), hi[0] = fmax(hi[0], el->cx + hx);
        lo[1] = fmin(lo[1], el->cy - hy), hi[1] = fmax(hi[1], el->cy + hy);
    }
    double span = fmax(hi[0] - lo[0], hi[1] - lo[1]);
    view v;
    v.sc = span > 0 ? (PANEL - 2 * MARGIN) / span : 1.0;
    v.ox = PANEL / 2.0 - v.sc * (lo[0] + hi[0]) / 2, v.oy = PANEL / 2.0 + v.sc * (lo[1] + hi[1]) / 2;
    return v;
}

static void draw_panel(rgb_image *im, const float *Y, const collect *c, const latent_panel *p) {
    static const unsigned char white[3] = {255, 255, 255}, frame[3] = {160, 160, 160}, black[3] = {0, 0, 0};
    static const unsigned char healthy[3] = {31, 119, 180}, lesion[3] = {214, 39, 40};
    rgb_image_alloc(im, PANEL, PANEL);
    for (int i = 0; i < PANEL * PANEL; i++) memcpy(im->px + (size_t)i * 3, white, 3);
    for (int i = 0; i < PANEL; i++) {
        put_px(im, i, 0, frame), put_px(im, i, PANEL - 1, frame);
        put_px(im, 0, i, frame), put_px(im, PANEL - 1, i, frame);
    }
    const view v = panel_view(Y, c->n, p);
    for (int pass = 0; pass < 2; pass++)  // lesion points over healthy ones
        for (int i = 0; i < c->n; i++) {
            if (c->items[i].lesion != pass) continue;
            int x = (int)lround(v.ox + v.sc * Y[2 * i]), y = (int)lround(v.oy - v.sc * Y[2 * i + 1]);
            for (int dy = -2; dy <= 2; dy++)
                for (int dx = -2; dx <= 2; dx++)
                    if (dx * dx + dy * dy <= 5) put_px(im, x + dx, y + dy, pass ? lesion : healthy);
        }
    for (int e = 0; e < 2; e++) {  // 2-sd ellipses of the 2-means clusters
        const sep_ellipse *el = &p->ellipse[e];
        if (el->n < 2) continue;
        double ca = cos(el->angle), sa = sin(el->angle);
        for (int k = 0; k < 1440; k++) {
            double th = 2 * M_PI * k / 1440, u = 2 * el->sd1 * cos(th), w = 2 * el->sd2 * sin(th);
            double x = el->cx + u * ca - w * sa, y = el->cy + u * sa + w * ca;
            put_px(im, (int)lround(v.ox + v.sc * x), (int)lround(v.oy - v.sc * y), black);
        }
    }
}

// The same two panels as SVG, with what a PNG cannot say: titles, legend and the numbers.
static int write_svg(const char *path, float *const Y[2], const collect *c, const latent_result *r,
                     const char *projection, int knn) {
    fs_file af;
    if (fs_file_open(&af, path)) return -1;
    FILE *f = af.f;
    const int top = 44, W = 2 * PANEL + 8, H = PANEL + top + 40;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\">\n"
            "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, H, W, H);
    const char *titles[2] = {"(a) unmasked", "(b) lesions masked"};
    for (int p = 0; p < 2; p++) {
        const latent_panel *lp = &r->panel[p];
        const view v = panel_view(Y[p], c->n, lp);
        const int x0 = p * (PANEL + 8);
        fprintf(f, "<g transform=\"translate(%d,%d)\">\n", x0, top);
        fprintf(f, "<rect width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#a0a0a0\"/>\n", PANEL, PANEL);
        fprintf(f, "<text x=\"%d\" y=\"-24\" font-size=\"15\" text-anchor=\"middle\">%s: %s of the latents</text>\n",
                PANEL / 2, titles[p], projection);
        fprintf(f, "<text x=\"%d\" y=\"-7\" font-size=\"12\" text-anchor=\"middle\">silhouette %.3f (latent %.3f), "
                "%d-NN accuracy %.3f, 2-means ARI %.3f</text>\n", PANEL / 2, lp->silhouette_2d, lp->silhouette_latent,
                knn, lp->knn_2d, lp->kmeans_ari);
        for (int pass = 0; pass < 2; pass++)
            for (int i = 0; i < c->n; i++) {
                if (c->items[i].lesion != pass) continue;
                fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.2\" fill=\"%s\"/>\n", v.ox + v.sc * Y[p][2 * i],
                        v.oy - v.sc * Y[p][2 * i + 1], pass ? "#d62728" : "#1f77b4");
            }
        for (int e = 0; e < 2; e++) {
            const sep_ellipse *el = &lp->ellipse[e];
            if (el->n < 2) continue;
            fprintf(f, "<ellipse cx=\"%.1f\" cy=\"%.1f\" rx=\"%.1f\" ry=\"%.1f\" transform=\"rotate(%.2f %.1f %.1f)\" "
                    "fill=\"none\" stroke=\"black\"/>\n", v.ox + v.sc * el->cx, v.oy - v.sc * el->cy,
                    2 * v.sc * el->sd1, 2 * v.sc * el->sd2, -el->angle * 180 / M_PI, v.ox + v.sc * el->cx,
                    v.oy - v.sc * el->cy);
        }
        fprintf(f, "</g>\n");
    }
    fprintf(f, "<g font-size=\"13\" transform=\"translate(10,%d)\">"
            "<circle cx=\"5\" cy=\"-4\" r=\"4\" fill=\"#1f77b4\"/><text x=\"14\" y=\"0\">healthy slices (%d)</text>"
            "<circle cx=\"185\" cy=\"-4\" r=\"4\" fill=\"#d62728\"/><text x=\"194\" y=\"0\">lesion slices (%d)</text>"
            "<text x=\"370\" y=\"0\">ellipses: 2-means clusters, 2 sd of their covariance</text></g>\n</svg>\n",
            top + PANEL + 26, r->n_healthy, r->n_lesion);
    return fs_file_commit(&af);
}

// ---- the run ---------------------------------------------------------------------------------------
static int open_sets(const latent_options *o, dataset *les, dataset *hea, int *have_hea) {
    *have_hea = 0;
    if (dataset_open(les, o->lesion, o->modality)) return -1;
    if (o->healthy) {
        if (dataset_open(hea, o->healthy, o->modality)) {
            dataset_free(les);
            return -1;
        }
        *have_hea = 1;
    }
    return 0;
}

static void project(const float *X, int n, int D, const latent_options *o, float *Y, int *rc) {
    if (o->projection == LATENT_PCA) {
        linalg_pca(X, n, D, 2, Y, NULL);
        *rc = 0;
    } else {
        umap_params u = o->umap;
        u.verbose = o->verbose;
        *rc = umap_embed(X, n, D, &u, Y);
    }
}

int latent_run(const latent_options *o, latent_result *r) {
    memset(r, 0, sizeof *r);
    model m;
    if (model_load(&m, o->checkpoint, o->batch)) return -1;
    if (!m.method->latent) {
        as_fail("%s: the %s has no latent for the analysis", o->checkpoint, m.method->title);
        model_free(&m);
        return -1;
    }
    const int ms = o->mask_size ? o->mask_size : m.patch_size;
    r->mask_size = ms;
    if (ms % m.patch_size || m.img_size % ms) {
        as_fail("%s: --mask-size %d must be a multiple of the patch size %d and divide the image size %d",
                o->checkpoint, ms, m.patch_size, m.img_size);
        model_free(&m);
        return -1;
    }
    dataset les, hea;
    int have_hea;
    if (open_sets(o, &les, &hea, &have_hea)) {
        model_free(&m);
        return -1;
    }
    collect c = {.D = m.method->latent(&m, NULL, NULL, NULL, 0)};
    r->latent_dim = c.D;
    int rc = 0;
    double t0 = now_seconds();
    // Healthy scans first (from their own set, or the lesion set's healthy split), then the
    // labelled scans.
    const dataset *hs = have_hea ? &hea : &les;
    int total = 0;
    for (int i = 0; i < hs->n; i++) total += have_hea || !strcmp(hs->subjects[i].split, "healthy");
    char buf[8500];
    for (int i = 0; i < les.n; i++)
        total += lesion_file(&les.subjects[i], o, buf, sizeof buf) && strcmp(les.subjects[i].split, "healthy") != 0;
    progress pr;
    if (o->verbose) progress_begin(&pr, "latent", total);
    int done = 0;
    for (int pass = 0; pass < 2 && !rc; pass++) {
        const dataset *d = pass ? &les : hs;
        for (int i = 0; i < d->n && !rc; i++) {
            const subject *s = &d->subjects[i];
            int is_healthy_split = !strcmp(s->split, "healthy");
            if (pass == 0 && !have_hea && !is_healthy_split) continue;
            if (pass == 1 && (!lesion_file(s, o, buf, sizeof buf) || is_healthy_split)) continue;
            rc = scan_latents(&c, &m, s, pass, o, ms);
            if (!rc) {
                pass ? r->lesion_scans++ : r->healthy_scans++;
                if (o->verbose) progress_update(&pr, ++done, "scans", s->id);
            }
        }
    }
    if (o->verbose) progress_end(&pr);
    r->seconds_latents = now_seconds() - t0;
    for (int i = 0; i < c.n; i++) c.items[i].lesion ? r->n_lesion++ : r->n_healthy++;
    if (!rc && (r->n_healthy == 0 || r->n_lesion == 0))
        rc = as_fail("%s: %d healthy and %d lesion slices; the analysis needs both", o->lesion, r->n_healthy,
                     r->n_lesion);
    if (!rc && c.n < 3) rc = as_fail("%s: %d slices; the projection needs at least 3", o->lesion, c.n);

    float *Y[2] = {NULL, NULL};
    int *cl[2] = {NULL, NULL}, *group = NULL, *scan = NULL;
    if (!rc) {
        group = as_malloc(sizeof(int) * (size_t)c.n);
        scan = as_malloc(sizeof(int) * (size_t)c.n);
        for (int i = 0; i < c.n; i++) group[i] = c.items[i].lesion, scan[i] = c.items[i].scan;
        t0 = now_seconds();
        for (int p = 0; p < 2 && !rc; p++) {
            const float *X = p ? c.lat_m : c.lat;
            Y[p] = as_malloc(sizeof(float) * (size_t)c.n * 2);
            cl[p] = as_malloc(sizeof(int) * (size_t)c.n);
            if (o->verbose) fprintf(stderr, "latent: projecting the %s panel (%d slices)\n", p ? "masked" : "unmasked", c.n);
            project(X, c.n, c.D, o, Y[p], &rc);
            if (rc) break;
            latent_panel *lp = &r->panel[p];
            float cent[4];
            sep_kmeans(Y[p], c.n, 2, 2, 10, o->umap.seed, cl[p], cent);
            lp->silhouette_latent = sep_silhouette(X, c.n, c.D, group);
            lp->silhouette_2d = sep_silhouette(Y[p], c.n, 2, group);
            lp->knn_latent = sep_knn_accuracy(X, c.n, c.D, group, scan, o->knn_k);
            lp->knn_2d = sep_knn_accuracy(Y[p], c.n, 2, group, scan, o->knn_k);
            lp->kmeans_ari = sep_adjusted_rand(cl[p], group, c.n);
            int agree = 0;
            for (int i = 0; i < c.n; i++) agree += cl[p][i] == group[i];
            lp->kmeans_accuracy = fmax(agree, c.n - agree) / c.n;
            for (int e = 0; e < 2; e++) sep_ellipse_of(Y[p], c.n, cl[p], e, &lp->ellipse[e]);
        }
        r->seconds_projection = now_seconds() - t0;
    }
    if (!rc) rc = fs_mkdirs(o->out);
    if (!rc) {
        char path[4200];
        const int N = c.n, Nl = r->n_lesion;
        // latents.npy: every slice unmasked, then the lesion slices masked.
        float *lm = as_malloc(sizeof(float) * (size_t)(Nl ? Nl : 1) * c.D);
        int q = 0;
        for (int i = 0; i < N; i++)
            if (c.items[i].lesion) memcpy(lm + (size_t)q++ * c.D, c.lat_m + (size_t)i * c.D, sizeof(float) * c.D);
        const float *parts[2] = {c.lat, lm};
        size_t counts[2] = {(size_t)N * c.D, (size_t)Nl * c.D};
        int shape[3] = {N + Nl, c.D, 0};
        fs_join(path, sizeof path, o->out, "latents.npy");
        rc = write_npy(path, parts, counts, 2, shape, 2);
        free(lm);
        if (!rc) {
            fs_join(path, sizeof path, o->out, "latents.csv");
            rc = write_latents_csv(path, &c);
        }
        if (!rc) {
            const float *ep[2] = {Y[0], Y[1]};
            size_t ec[2] = {(size_t)N * 2, (size_t)N * 2};
            int es[3] = {2, N, 2};
            fs_join(path, sizeof path, o->out, "embedding.npy");
            rc = write_npy(path, ep, ec, 2, es, 3);
        }
        if (!rc) {
            fs_join(path, sizeof path, o->out, "embedding.csv");
            rc = write_embedding_csv(path, &c, Y, cl);
        }
        if (!rc) {
            rgb_image tiles[2], all;
            for (int p = 0; p < 2; p++) draw_panel(&tiles[p], Y[p], &c, &r->panel[p]);
            rgb_image_panel(&all, tiles, 2, 8);
            fs_join(path, sizeof path, o->out, "latent.png");
            rc = pngfile_write_rgb(path, &all);
            rgb_image_free(&all);
            for (int p = 0; p < 2; p++) rgb_image_free(&tiles[p]);
        }
        if (!rc) {
            fs_join(path, sizeof path, o->out, "latent.svg");
            rc = write_svg(path, Y, &c, r, o->projection == LATENT_PCA ? "PCA" : "UMAP", o->knn_k);
        }
        if (!rc) {
            fs_join(path, sizeof path, o->out, "latent.json");
            rc = write_json(path, o, r, m.method->name);
        }
    }
    for (int p = 0; p < 2; p++) free(Y[p]), free(cl[p]);
    free(scan);
    free(group);
    free(c.items);
    free(c.lat);
    free(c.lat_m);
    if (have_hea) dataset_free(&hea);
    dataset_free(&les);
    model_free(&m);
    return rc;
}
