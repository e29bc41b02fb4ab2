// anoswin prep on raw-looking Colin27 scans (`data synth --raw`: known random affine, grid,
// storage orientation, bias field, noise): the registration error against the recorded truth
// (mean over the template's brain voxels <= 1 mm), the brain mask's Dice against the truth
// (>= 0.95), also with the scan's contrast inverted (a T2-like scan against the T1 template)
// and then its header rotated by 120 degrees (the orientation search),
// the Mattes MI gradient against finite differences, and a result that does not depend on the
// thread count; on the default template (Colin27 with skull) averaged to 2 mm and
// given as --template/--template-mask (the user-template path, and a quicker grid). The default
// 1 mm template is scored the same way by tests/test_prep_cli.sh (and against elastix by
// tests/test_prep_elastix_slow.sh).
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/reorient.h"
#include "data/synth.h"
#include "data/volume.h"
#include "helpers/testutil.h"
#include "prep/prep.h"
#include "prep/register.h"
#include "prep/template.h"
#include "util/affine.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/timer.h"

static int read_matrix(const char *path, const char *key, double m[4][4]) {
    char *js = json_read_file(path);
    if (!js) return -1;
    double v[16];
    int n = json_top_numbers(js, key, v, 16);
    free(js);
    if (n != 16) return -1;
    for (int i = 0; i < 16; i++) m[i / 4][i % 4] = v[i];
    return 0;
}

// Mean and max |a(x) - b(x)| (mm) over the brain voxels x of grid g (world coordinates).
static void displacement(double *mean, double *max, const volume *g, const uint8_t *brain, const double a[4][4],
                         const double b[4][4]) {
    double s = 0, mx = 0;
    long n = 0;
    for (int k = 0; k < g->nz; k++)
        for (int j = 0; j < g->ny; j++)
            for (int i = 0; i < g->nx; i++) {
                if (!brain[(size_t)i + (size_t)g->nx * ((size_t)j + (size_t)g->ny * k)]) continue;
                double p[3] = {i, j, k}, x[3], ya[3], yb[3];
                affine_apply(x, g->affine, p);
                affine_apply(ya, a, x);
                affine_apply(yb, b, x);
                double d = sqrt((ya[0] - yb[0]) * (ya[0] - yb[0]) + (ya[1] - yb[1]) * (ya[1] - yb[1]) +
                                (ya[2] - yb[2]) * (ya[2] - yb[2]));
                s += d, n++;
                if (d > mx) mx = d;
            }
    *mean = n ? s / n : INFINITY;
    *max = mx;
}

static double dice(const volume *m, const uint8_t *truth) {
    size_t nv = volume_voxels(m), a = 0, b = 0, ab = 0;
    for (size_t i = 0; i < nv; i++) {
        int x = m->data[i] > 0.5f, y = truth[i] != 0;
        a += x, b += y, ab += x && y;
    }
    return a + b ? 2.0 * ab / (a + b) : 0;
}

// The default template averaged over 2x2x2 blocks (mask: more than half brain), written as files.
static void write_template_2mm(const prep_template *t, const char *head, const char *mask) {
    const volume *h = &t->head;
    float pd[3] = {2, 2, 2};
    volume a, b;
    volume_alloc(&a, h->nx / 2, h->ny / 2, h->nz / 2, pd);
    volume_alloc_like(&b, &a);
    for (int d = 0; d < 3; d++) {
        for (int e = 0; e < 3; e++) a.affine[d][e] = b.affine[d][e] = h->affine[d][e] * 2;
        a.affine[d][3] = b.affine[d][3] = h->affine[d][3] + 0.5 * (h->affine[d][0] + h->affine[d][1] + h->affine[d][2]);
    }
    for (int k = 0; k < a.nz; k++)
        for (int j = 0; j < a.ny; j++)
            for (int i = 0; i < a.nx; i++) {
                double s = 0, m = 0;
                for (int c = 0; c < 8; c++) {
                    size_t id = (size_t)(2 * i + (c & 1)) + (size_t)h->nx * ((size_t)(2 * j + ((c >> 1) & 1)) + (size_t)h->ny * (2 * k + (c >> 2)));
                    s += h->data[id], m += t->brain[id];
                }
                size_t o = (size_t)i + (size_t)a.nx * ((size_t)j + (size_t)a.ny * k);
                a.data[o] = (float)(s / 8), b.data[o] = m > 4;
            }
    CHECK(volume_write(&a, &a, head, 16) == 0 && volume_write(&b, &b, mask, 2) == 0, "write the 2 mm template: %s",
          as_error());
    volume_free(&a), volume_free(&b);
}

// Registration, mask and grid of one prepared subject against the truth of `data synth --raw`.
static void check_subject(const char *out, const char *raw, const char *id, const prep_template *tpl) {
    char path[4400], truth[4400];
    snprintf(path, sizeof path, "%s/healthy/%s/%s_prep.json", out, id, id);
    snprintf(truth, sizeof truth, "%s/healthy/%s/truth.json", raw, id);
    double est[4][4], tru[4][4], mean, max;
    if (read_matrix(path, "template_to_subject", est) != 0 || read_matrix(truth, "template_to_subject", tru) != 0) {
        CHECK(0, "%s: transform not found in %s or %s", id, path, truth);
        return;
    }
    displacement(&mean, &max, &tpl->head, tpl->brain, est, tru);
    printf("%s: registration error over the template brain: mean %.3f mm, max %.3f mm\n", id, mean, max);
    CHECK(mean <= 1.0, "%s: mean registration error %.3f mm > 1 mm", id, mean);
    snprintf(path, sizeof path, "%s/healthy/%s/%s_mask.nii.gz", out, id, id);
    volume m, img;
    if (volume_read(&m, path) != 0) {
        CHECK(0, "%s", as_error());
        return;
    }
    CHECK(volume_same_grid(&m, &tpl->head), "%s: mask not on the template grid", id);
    // The truth on the template grid: the template's brain is where the subject's brain maps.
    double d = dice(&m, tpl->brain);
    printf("%s: brain mask Dice against the truth %.4f\n", id, d);
    CHECK(d >= 0.95, "%s: brain mask Dice %.4f < 0.95", id, d);
    snprintf(path, sizeof path, "%s/healthy/%s/%s_t1.nii.gz", out, id, id);
    if (volume_read(&img, path) == 0) {
        size_t outside = 0, inside = 0;
        for (size_t i = 0; i < volume_voxels(&img); i++) {
            if (m.data[i] < 0.5f) outside += img.data[i] != 0;
            else inside += img.data[i] > 0;
        }
        CHECK(outside == 0, "%s: %zu voxels outside the brain mask are not 0", id, outside);
        CHECK(inside > volume_voxels(&img) / 20, "%s: the brain is (nearly) empty (%zu voxels > 0)", id, inside);
        volume_free(&img);
    } else {
        CHECK(0, "%s", as_error());
    }
    volume_free(&m);
}

int main(void) {
    const char *dir = tu_scratch_dir("prep_register");
    char raw[4096], out1[4096], head2[4096], mask2[4096], in0[4400];
    snprintf(raw, sizeof raw, "%s/raw", dir);
    snprintf(out1, sizeof out1, "%s/out1", dir);
    snprintf(head2, sizeof head2, "%s/tpl2_t1.nii.gz", dir);
    snprintf(mask2, sizeof mask2, "%s/tpl2_mask.nii.gz", dir);
    double t0 = now_seconds();
    synth_options so;
    synth_options_default(&so);
    so.out = raw;
    so.healthy = 2;
    so.test = 0;
    so.seed = 7;
    so.template_path = SYNTH_HEAD_TEMPLATE;
    CHECK(synth_raw_run(&so) == 0, "data synth --raw: %s", as_error());
    printf("data synth --raw: 2 scans in %.1f s\n", now_seconds() - t0);
    snprintf(in0, sizeof in0, "%s/healthy/raw_000/raw_000_t1.nii.gz", raw);

    prep_template tpl, tpl2;
    CHECK(prep_template_load(&tpl, NULL, NULL) == 0, "default template: %s", as_error());
    write_template_2mm(&tpl, head2, mask2);
    prep_template_free(&tpl);
    CHECK(prep_template_load(&tpl2, head2, mask2) == 0, "2 mm template: %s", as_error());

    // ---- the Mattes MI gradient against central differences, near the truth ------------------
    {
        volume v, ras;
        CHECK(volume_read(&v, in0) == 0, "%s", as_error());
        volume_to_ras(&ras, &v, NULL);
        volume_free(&v);
        char truth[4400];
        snprintf(truth, sizeof truth, "%s/healthy/raw_000/truth.json", raw);
        double m[4][4], g[12], worst = 0, dot = 0, n1 = 0, n2 = 0;
        CHECK(read_matrix(truth, "template_to_subject", m) == 0, "truth of raw_000");
        // off the optimum, so that the gradient is not ~0: 3 mm and 2 % away
        m[0][3] += 3, m[1][3] -= 2, m[0][0] *= 1.02, m[1][2] += 0.02;
        reg_options ro;
        reg_options_default(&ro);
        // m, then m -+ h along each of the 12 parameters
        double ms[25][4][4], mi[25];
        for (int e = 0; e < 25; e++) memcpy(ms[e], m, sizeof ms[e]);
        for (int e = 0; e < 12; e++) {
            double h = e < 9 ? 1e-3 : 0.05;
            double *p = e < 9 ? &ms[0][e / 3][e % 3] : &ms[0][e - 9][3];
            size_t off = (size_t)(p - &ms[0][0][0]);
            (&ms[1 + 2 * e][0][0])[off] += h;
            (&ms[2 + 2 * e][0][0])[off] -= h;
        }
        CHECK(reg_mattes_mi(mi, g, &tpl2.head, tpl2.brain, &ras, &ro, 1, (const double(*)[4][4])ms, 25) == 0,
              "reg_mattes_mi: %s", as_error());
        for (int e = 0; e < 12; e++) {
            double h = e < 9 ? 1e-3 : 0.05, fd = (mi[1 + 2 * e] - mi[2 + 2 * e]) / (2 * h);
            dot += fd * g[e], n1 += fd * fd, n2 += g[e] * g[e];
            double rel = fabs(fd - g[e]) / (fabs(fd) + 1e-3 * (e < 9 ? 100 : 1));
            if (rel > worst) worst = rel;
        }
        double cosine = dot / sqrt(n1 * n2), ratio = sqrt(n2 / n1);
        printf("Mattes MI %.4f: analytic vs finite-difference gradient: cosine %.4f, norm ratio %.3f, worst rel %.3f\n",
               mi[0], cosine, ratio, worst);
        CHECK(cosine >= 0.98, "MI gradient direction: cosine %.4f with finite differences", cosine);
        CHECK(ratio > 0.9 && ratio < 1.1, "MI gradient norm: %.3f of finite differences", ratio);

        // ---- the same registration with 1 and 2 threads -------------------------------------
        reg_result r1, r2;
        omp_set_num_threads(1);
        int rc1 = reg_affine(&r1, &tpl2.head, tpl2.brain, &ras, &ro);
        omp_set_num_threads(2);
        int rc2 = reg_affine(&r2, &tpl2.head, tpl2.brain, &ras, &ro);
        CHECK(rc1 == 0 && rc2 == 0, "reg_affine: %s", as_error());
        printf("T1 to the 2 mm template: Mattes MI %.3f -> %.3f\n", r1.mi_initial, r1.mi_final);
        CHECK(!memcmp(r1.matrix, r2.matrix, sizeof r1.matrix), "1 and 2 threads give different transforms");

        // ---- another contrast: the T1 scan with its tissue contrast inverted (CSF bright, white
        // matter and fat dark, background still dark), as a T2 against the T1 template --------
        double mean, max, w = 0;
        size_t nv = volume_voxels(&ras), cnt[1024] = {0};
        float vmax = 0;
        for (size_t i = 0; i < nv; i++) vmax = ras.data[i] > vmax ? ras.data[i] : vmax;
        for (size_t i = 0; i < nv; i++) cnt[(int)(ras.data[i] / vmax * 1023)]++;
        for (size_t b = 0, cum = 0; b < 1024; b++)
            if ((cum += cnt[b]) >= 0.99 * nv) {
                w = (b + 0.5) / 1024 * vmax;
                break;
            }
        for (size_t i = 0; i < nv; i++) {
            double v = ras.data[i] / w;
            ras.data[i] = (float)(v < 0.1 ? v : w * fmax(1.2 - v, 0.05));
        }
        reg_result r3;
        CHECK(reg_affine(&r3, &tpl2.head, tpl2.brain, &ras, &ro) == 0, "reg_affine (inverted contrast): %s", as_error());
        double tm[4][4];
        read_matrix(truth, "template_to_subject", tm);
        displacement(&mean, &max, &tpl2.head, tpl2.brain, r3.matrix, tm);
        printf("inverted contrast (T2-like) to the T1 template: error mean %.3f mm, max %.3f mm, Mattes MI %.3f -> %.3f\n",
               mean, max, r3.mi_initial, r3.mi_final);
        CHECK(mean <= 1.0, "inverted contrast: mean registration error %.3f mm > 1 mm", mean);

        // ---- and a header 120 degrees off (about the y axis): the orientation search --------
        double Rw[4][4], a = 120 * M_PI / 180;
        affine_identity(Rw);
        Rw[2][2] = Rw[0][0] = cos(a), Rw[2][0] = -sin(a), Rw[0][2] = sin(a);
        affine_mul(ras.affine, Rw, ras.affine);
        affine_mul(tm, Rw, tm);  // the world moved with the header: so did the truth
        CHECK(reg_affine(&r3, &tpl2.head, tpl2.brain, &ras, &ro) == 0, "reg_affine (rotated header): %s", as_error());
        displacement(&mean, &max, &tpl2.head, tpl2.brain, r3.matrix, tm);
        printf("the same with its header rotated 120 degrees: error mean %.3f mm, max %.3f mm\n", mean, max);
        CHECK(mean <= 1.0, "rotated header: mean registration error %.3f mm > 1 mm", mean);
        volume_free(&ras);
    }

    // ---- the whole of prep on the raw folder (both scans, split kept), 2 mm template ---------
    prep_options po;
    prep_options_default(&po);
    po.out = out1;
    po.template_path = head2, po.template_mask = mask2;
    char *a1[] = {raw};
    t0 = now_seconds();
    int rc = prep_run(&po, a1, 1);
    printf("prep, 2 scans on the 2 mm template: %.1f s\n", now_seconds() - t0);
    CHECK(rc == 0, "prep: rc %d %s", rc, as_error());
    check_subject(out1, raw, "raw_000", &tpl2);
    check_subject(out1, raw, "raw_001", &tpl2);

    prep_template_free(&tpl2);
    return tu_finish();
}
