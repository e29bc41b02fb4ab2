// `anoswin data synth --raw`: raw-looking scans for `anoswin prep` and its tests. Colin27 with
// skull and scalp (ch2.nii.gz), moved by a random affine, sampled on a random field of view,
// voxel size and storage orientation, with a smooth multiplicative bias field and Rician
// noise. What was done is recorded next to each scan (truth.json, bias.nii.gz), so that
// registration and bias correction can be scored against the truth.
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/synth.h"
#include "data/resample.h"  // volume_sample_linear
#include "data/volume.h"    // volume_read, volume_write
#include "util/affine.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/timer.h"

typedef struct raw_subject {
    double g[4][4];     // template world -> subject world (the anatomy's motion)
    double affine[4][4];  // subject voxel -> world
    int n[3], perm[3], flip[3];
    float vox[3];
    double bias_w[3][3][3];  // log-bias = sum w[a][b][c] cos(pi a u) cos(pi b v) cos(pi c w), u,v,w in [0,1] over the voxel grid
    double sigma, gain;
} raw_subject;

static void raw_draw(raw_subject *s, const volume *head, rng *r) {
    // Anatomy: rotation (+-10 deg per axis), scaling (0.92..1.08), shear (+-0.04), shift (+-15 mm)
    // about the head volume's centre.
    double ang[3], sc[3], sh[3], t[3], c[3];
    for (int d = 0; d < 3; d++) ang[d] = rng_uniform_range(r, -10, 10) * M_PI / 180;
    for (int d = 0; d < 3; d++) sc[d] = rng_uniform_range(r, 0.92, 1.08);
    for (int d = 0; d < 3; d++) sh[d] = rng_uniform_range(r, -0.04, 0.04);
    for (int d = 0; d < 3; d++) t[d] = rng_uniform_range(r, -15, 15);
    double mid[3] = {(head->nx - 1) / 2.0, (head->ny - 1) / 2.0, (head->nz - 1) / 2.0};
    affine_apply(c, head->affine, mid);
    double rx[4][4], ry[4][4], rz[4][4], S[4][4], H[4][4], A[4][4];
    affine_identity(rx), affine_identity(ry), affine_identity(rz), affine_identity(S), affine_identity(H);
    rx[1][1] = rx[2][2] = cos(ang[0]), rx[1][2] = -sin(ang[0]), rx[2][1] = sin(ang[0]);
    ry[0][0] = ry[2][2] = cos(ang[1]), ry[0][2] = sin(ang[1]), ry[2][0] = -sin(ang[1]);
    rz[0][0] = rz[1][1] = cos(ang[2]), rz[0][1] = -sin(ang[2]), rz[1][0] = sin(ang[2]);
    for (int d = 0; d < 3; d++) S[d][d] = sc[d];
    H[0][1] = sh[0], H[0][2] = sh[1], H[1][2] = sh[2];
    affine_mul(A, rz, ry);
    affine_mul(A, A, rx);
    affine_mul(A, A, S);
    affine_mul(A, A, H);
    // g(x) = A (x - c) + c + t
    double cc[3];
    affine_apply(cc, A, c);
    for (int d = 0; d < 3; d++) A[d][3] = c[d] + t[d] - cc[d];
    memcpy(s->g, A, sizeof A);
    // Acquisition: a storage orientation (axial, coronal or sagittal slices, each axis flipped
    // at random), voxel size 0.9-1.2 mm in plane and 1.0-1.5 mm between slices, and a field of
    // view of 190-230 x 220-250 x 180-210 mm (R, A, S) centred near the moved head.
    static const int perms[3][3] = {{0, 1, 2}, {0, 2, 1}, {1, 2, 0}};
    int pi = (int)rng_below(r, 3);
    float inplane = (float)rng_uniform_range(r, 0.9, 1.2), slice = (float)rng_uniform_range(r, 1.0, 1.5);
    double fov[3] = {rng_uniform_range(r, 190, 230), rng_uniform_range(r, 220, 250), rng_uniform_range(r, 180, 210)};
    double centre[3];
    affine_apply(centre, s->g, c);
    for (int d = 0; d < 3; d++) centre[d] += rng_uniform_range(r, -8, 8);
    memset(s->affine, 0, sizeof s->affine);
    s->affine[3][3] = 1;
    double mid_s[3];
    for (int i = 0; i < 3; i++) {
        s->perm[i] = perms[pi][i];
        s->flip[i] = rng_below(r, 2);
        s->vox[i] = i == 2 ? slice : inplane;
        s->n[i] = (int)ceil(fov[s->perm[i]] / s->vox[i]);
        s->affine[s->perm[i]][i] = s->flip[i] ? -s->vox[i] : s->vox[i];
        mid_s[i] = (s->n[i] - 1) / 2.0;
    }
    double m[3];
    affine_apply(m, s->affine, mid_s);
    for (int d = 0; d < 3; d++) s->affine[d][3] = centre[d] - m[d];
    // Bias: exp of low-order cosines, about +-20 %; noise 1-3 % of the white matter.
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            for (int cq = 0; cq < 3; cq++)
                s->bias_w[a][b][cq] = (a + b + cq) ? rng_normal(r) * 0.1 / (a + b + cq) : 0.0;
    s->sigma = rng_uniform_range(r, 0.01, 0.03);
    s->gain = rng_uniform_range(r, 3.5, 4.5);
}

static int raw_write_truth(const char *path, const raw_subject *s, const char *head_path, uint64_t seed) {
    fs_file af;
    if (fs_file_open(&af, path) != 0) return -1;
    FILE *f = af.f;
    fprintf(f, "{\n  \"source\": ");
    json_write_string(f, head_path);
    fprintf(f, ",\n  \"seed\": \"%llu\",\n  \"template_to_subject\": [", (unsigned long long)seed);
    for (int i = 0; i < 16; i++) {
        if (i) fputs(", ", f);
        json_write_number(f, s->g[i / 4][i % 4]);
    }
    fprintf(f, "],\n  \"voxel_size\": [");
    for (int i = 0; i < 3; i++) {
        if (i) fputs(", ", f);
        json_write_number(f, s->vox[i]);
    }
    fprintf(f, "],\n  \"dims\": [%d, %d, %d],\n  \"bias_log_cosine_weights\": [", s->n[0], s->n[1], s->n[2]);
    for (int i = 0; i < 27; i++) {
        if (i) fputs(", ", f);
        json_write_number(f, s->bias_w[i / 9][(i / 3) % 3][i % 3]);
    }
    fprintf(f, "],\n  \"bias_model\": \"bias(i,j,k) = exp(sum_abc w[a][b][c] cos(pi a i/(nx-1)) cos(pi b j/(ny-1)) "
               "cos(pi c k/(nz-1))), w flattened a-major; also bias.nii.gz\",\n  \"noise_sigma_of_white_matter\": ");
    json_write_number(f, s->sigma);
    fprintf(f, "\n}\n");
    if (ferror(f)) {
        fs_file_abort(&af);
        return as_fail("%s: write failed", path);
    }
    return fs_file_commit(&af);
}

// White matter ~ the 95th percentile of the head's non-zero voxels: the noise scale.
static float raw_wm_level(const volume *head) {
    size_t nv = volume_voxels(head), hist[256] = {0}, nz = 0;
    float vmax = 0;
    for (size_t i = 0; i < nv; i++) vmax = fmaxf(vmax, head->data[i]);
    for (size_t i = 0; i < nv; i++)
        if (head->data[i] > 0) hist[(int)fminf(255, head->data[i] / vmax * 255)]++, nz++;
    size_t cum = 0;
    int b = 0;
    while (b < 255 && (cum += hist[b]) < 0.95 * nz) b++;
    return (b + 0.5f) / 255 * vmax;
}

// One raw-looking scan of `head` (on any grid) into o->out/split/id/: <id>_<mod>.nii.gz,
// bias.nii.gz, truth.json and, when seg is given (on head's grid), <id>_seg.nii.gz carried
// through the same transform (nearest), so that the truth exists on the raw grid too.
static int raw_subject_run(const synth_options *o, const volume *head, const volume *seg, const char *split,
                           const char *id, const char *mod, uint64_t stream, float wm) {
    rng r;
    rng_seed_stream(&r, o->seed, stream);
    raw_subject s;
    raw_draw(&s, head, &r);
    double ginv[4][4], hinv[4][4], vox2tpl[4][4];
    if (affine_invert(ginv, s.g) != 0 || affine_invert(hinv, head->affine) != 0)
        return as_fail("%s: singular affine", head->header ? volume_source_name(head) : "template");
    // subject voxel -> subject world -> template world -> template voxel
    affine_mul(vox2tpl, ginv, s.affine);
    affine_mul(vox2tpl, hinv, vox2tpl);
    volume img, bias;
    volume_alloc(&img, s.n[0], s.n[1], s.n[2], s.vox);
    memcpy(img.affine, s.affine, sizeof s.affine);
    volume_alloc_like(&bias, &img);
    size_t nv = volume_voxels(&img);
    unsigned char *lab = seg ? as_calloc(nv, 1) : NULL;
    double cs[3][3][512];
    for (int a = 0; a < 3; a++)
        for (int d = 0; d < 3; d++)
            for (int i = 0; i < s.n[d] && i < 512; i++) cs[d][a][i] = cos(M_PI * a * i / (s.n[d] - 1));
    double sig = s.sigma * wm * s.gain;
    for (int k = 0; k < s.n[2]; k++)
        for (int j = 0; j < s.n[1]; j++)
            for (int i = 0; i < s.n[0]; i++) {
                double p[3] = {i, j, k}, q[3];
                affine_apply(q, vox2tpl, p);
                double lb = 0;
                for (int a = 0; a < 3; a++)
                    for (int b = 0; b < 3; b++)
                        for (int c = 0; c < 3; c++) lb += s.bias_w[a][b][c] * cs[0][a][i] * cs[1][b][j] * cs[2][c][k];
                size_t id = (size_t)i + (size_t)s.n[0] * ((size_t)j + (size_t)s.n[1] * k);
                bias.data[id] = (float)exp(lb);
                double v = volume_sample_linear(head, q) * s.gain * bias.data[id];
                double re = v + sig * rng_normal(&r), im = sig * rng_normal(&r);
                img.data[id] = (float)sqrt(re * re + im * im);
                if (lab) {
                    long a = lround(q[0]), b = lround(q[1]), c = lround(q[2]);
                    if (a >= 0 && b >= 0 && c >= 0 && a < seg->nx && b < seg->ny && c < seg->nz)
                        lab[id] = (unsigned char)seg->data[(size_t)a + (size_t)seg->nx * ((size_t)b + (size_t)seg->ny * c)];
                }
            }
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/%s/%s", o->out, split, id);
    int rc = fs_mkdirs(dir);
    short *q = as_malloc(nv * sizeof(short));
    for (size_t i = 0; i < nv; i++) {  // int16 like a scanner's
        long x = lrintf(img.data[i]);
        q[i] = (short)(x > 32767 ? 32767 : x);
    }
    if (rc == 0)
        snprintf(path, sizeof path, "%s/bias.nii.gz", dir),
            rc = synth_write_nifti_affine(path, bias.data, 16, s.n[0], s.n[1], s.n[2], s.affine, o->gzip_level);
    if (rc == 0) snprintf(path, sizeof path, "%s/truth.json", dir), rc = raw_write_truth(path, &s, o->template_path, o->seed);
    if (rc == 0 && lab)
        snprintf(path, sizeof path, "%s/%s_seg.nii.gz", dir, id),
            rc = synth_write_nifti_affine(path, lab, 2, s.n[0], s.n[1], s.n[2], s.affine, o->gzip_level);
    // the scan last: a subject folder with its scan is complete
    if (rc == 0)
        snprintf(path, sizeof path, "%s/%s_%s.nii.gz", dir, id, mod),
            rc = synth_write_nifti_affine(path, q, 4, s.n[0], s.n[1], s.n[2], s.affine, o->gzip_level);
    free(q), free(lab);
    volume_free(&img);
    volume_free(&bias);
    return rc;
}

// A raw-looking test subject: `data synth`'s test_<index> (the same seed and profile: the same
// scan, lesions and label as on the grid) inside the Colin27 head. The scan replaces the head
// where the subject's brain is; elsewhere the head's skull and scalp, scaled so that the head
// over the brain's voxels has the scan's mean there. Then raw-ized like a healthy raw scan.
static int raw_test_subject(const synth_options *o, const synth_source *src, const volume *ch2, int index) {
    size_t nv = (size_t)SYNTH_NX * SYNTH_NY * SYNTH_NZ;
    short *scan = as_malloc(nv * sizeof(short));
    unsigned char *seg = as_malloc(nv), *brain = as_malloc(nv);
    float pd[3] = {1, 1, 1};
    volume head, lab;
    volume_alloc(&head, SYNTH_NX, SYNTH_NY, SYNTH_NZ, pd);
    double origin[3], inv[4][4], V[4][4];
    synth_source_origin(src, origin);
    for (int d = 0; d < 3; d++) head.affine[d][3] = origin[d];
    volume_alloc_like(&lab, &head);
    affine_invert(inv, ch2->affine);  // checked on reading
    affine_mul(V, inv, head.affine);
    char id[64];
    snprintf(id, sizeof id, "test_%03d", index);
    int rc = 0;
    for (int m = 0; m < 2 && rc == 0; m++) {
        if (!(m ? o->write_t2 : o->write_t1)) continue;
        synth_source_subject(src, o, 1, index, m, scan, seg, brain);
        double sb = 0, sh = 0;
        for (int k = 0; k < SYNTH_NZ; k++)
            for (int j = 0; j < SYNTH_NY; j++)
                for (int i = 0; i < SYNTH_NX; i++) {
                    size_t g = (size_t)i + (size_t)SYNTH_NX * ((size_t)j + (size_t)SYNTH_NY * k);
                    double p[3] = {i, j, k}, q[3];
                    affine_apply(q, V, p);
                    long a = lround(q[0]), b = lround(q[1]), c = lround(q[2]);
                    float h = a >= 0 && b >= 0 && c >= 0 && a < ch2->nx && b < ch2->ny && c < ch2->nz
                                  ? ch2->data[(size_t)a + (size_t)ch2->nx * ((size_t)b + (size_t)ch2->ny * c)]
                                  : 0.0f;
                    head.data[g] = h;
                    lab.data[g] = seg[g];
                    if (brain[g]) sb += scan[g], sh += h;
                }
        double k = sh > 0 ? sb / sh : 1;
        for (size_t g = 0; g < nv; g++) head.data[g] = brain[g] ? scan[g] : (float)(head.data[g] * k);
        // the same pose, field of view and bias for both modalities: one stream per subject
        rc = raw_subject_run(o, &head, &lab, "test", id, m ? "t2" : "t1", (4ull << 32) + (uint64_t)index,
                             raw_wm_level(&head));
    }
    free(scan), free(seg), free(brain);
    volume_free(&head), volume_free(&lab);
    return rc;
}

int synth_raw_run(const synth_options *o) {
    if (!o->out || !o->out[0]) return as_fail("data synth: no output folder");
    if (!fs_exists(o->template_path))
        return as_fail("%s: template not found (install Debian's mricron-data: scripts/install-deps.sh)",
                       o->template_path);
    volume head;
    if (volume_read(&head, o->template_path) != 0) return -1;
    if (head.nx > 512 || head.ny > 512 || head.nz > 512) {
        volume_free(&head);
        return as_fail("%s: template larger than 512 voxels along an axis", o->template_path);
    }
    float wm = raw_wm_level(&head);
    synth_source *src = NULL;
    if (o->test > 0 && !(src = synth_source_open(SYNTH_DEFAULT_TEMPLATE))) {
        volume_free(&head);
        return -1;
    }
    if (fs_mkdirs(o->out) != 0) {
        volume_free(&head), synth_source_close(src);
        return -1;
    }
    int failed = 0, total = o->healthy + o->test;
    long done = 0;
    char first_error[1024] = "";
    progress pr;
    progress_begin(&pr, "data synth --raw", total);
#pragma omp parallel for schedule(dynamic, 1)
    for (int s = 0; s < total; s++) {
        char id[64];
        int rc;
        if (s < o->healthy) {
            snprintf(id, sizeof id, "raw_%03d", s);
            rc = raw_subject_run(o, &head, NULL, "healthy", id, "t1", (3ull << 32) + (uint64_t)s, wm);
        } else {
            rc = raw_test_subject(o, src, &head, s - o->healthy);
        }
        if (rc != 0) {
#pragma omp critical(synth_raw_err)
            {
                if (!failed) snprintf(first_error, sizeof first_error, "%s", as_error());
                failed = 1;
            }
        }
#pragma omp critical(synth_raw_progress)
        progress_update(&pr, ++done, "subjects", NULL);
    }
    progress_end(&pr);
    volume_free(&head);
    synth_source_close(src);
    if (failed) return as_fail("%s", first_error);
    char info[4096], path[4200];
    snprintf(info, sizeof info,
             "# anoswin data synth --raw: parameters of this data set (written last: its presence means complete)\n"
             "template=%s\nseed=%llu\nraw=%d\ntest=%d\nprofile=%s\nmodalities=%s\nlayout=brats\n",
             o->template_path, (unsigned long long)o->seed, o->healthy, o->test, synth_profile_name(o->profile),
             o->test == 0 || (o->write_t1 && !o->write_t2) ? "t1" : o->write_t1 ? "t1,t2" : o->healthy ? "t1 (raw), t2 (test)" : "t2");
    snprintf(path, sizeof path, "%s/synth.txt", o->out);
    return fs_write_all(path, info, strlen(info));
}
