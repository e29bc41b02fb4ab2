// anoswin data synth on a small set: determinism (same seed -> identical files, whatever the
// thread count), readable by our NIfTI reader and discovery, checked independently with
// nibabel (tools/check_synth.py: grid, orientation, lesions inside the brain and visible).
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/synth.h"
#include "data/volume.h"
#include "helpers/testutil.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/timer.h"

static int same_file(const char *a, const char *b) {
    unsigned char *x, *y;
    size_t nx, ny;
    if (fs_read_all(a, &x, &nx) != 0) return 0;
    if (fs_read_all(b, &y, &ny) != 0) {
        free(x);
        return 0;
    }
    int same = nx == ny && !memcmp(x, y, nx);
    free(x);
    free(y);
    return same;
}

int main(void) {
    const char *dir = tu_scratch_dir("data_synth");
    char a[4096], b[4096], c[4096];
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    snprintf(c, sizeof c, "%s/c", dir);
    synth_options o;
    synth_options_default(&o);
    o.healthy = 2;
    o.test = 2;
    o.seed = 7;
    o.out = a;
    omp_set_num_threads(2);
    double t0 = now_seconds();
    CHECK(synth_run(&o) == 0, "synth a: %s", as_error());
    printf("synth 2+2 subjects: %.1f s\n", now_seconds() - t0);
    o.out = b;
    omp_set_num_threads(1);
    CHECK(synth_run(&o) == 0, "synth b: %s", as_error());
    o.out = c;
    o.seed = 8;
    o.healthy = 0;
    o.test = 1;
    CHECK(synth_run(&o) == 0, "synth c: %s", as_error());
    omp_set_num_threads(2);

    // Determinism across thread counts; another seed gives other data.
    const char *files[] = {"healthy/healthy_000/healthy_000_t1.nii.gz", "healthy/healthy_001/healthy_001_t2.nii.gz",
                           "test/test_000/test_000_t2.nii.gz", "test/test_001/test_001_seg.nii.gz",
                           "test/test_001/test_001_t1.nii.gz"};
    for (int i = 0; i < 5; i++) {
        char pa[8300], pb[8300];
        snprintf(pa, sizeof pa, "%s/%s", a, files[i]);
        snprintf(pb, sizeof pb, "%s/%s", b, files[i]);
        CHECK(same_file(pa, pb), "same seed, 2 vs 1 threads: identical %s", files[i]);
    }
    char pa[8300], pc[8300];
    snprintf(pa, sizeof pa, "%s/test/test_000/test_000_t2.nii.gz", a);
    snprintf(pc, sizeof pc, "%s/test/test_000/test_000_t2.nii.gz", c);
    CHECK(fs_exists(pc) && !same_file(pa, pc), "another seed, other data");

    // Our reader and discovery read it back.
    dataset d;
    CHECK(dataset_open(&d, a, "t2") == 0 && d.n == 4 && !strcmp(d.layout, "brats"), "discovery: %s", as_error());
    if (d.n == 4) {
        CHECK(!strcmp(d.subjects[2].id, "test_000") && !strcmp(d.subjects[2].split, "test") && d.subjects[2].label[0] &&
                  !d.subjects[0].label[0] && !strcmp(d.subjects[0].split, "healthy"),
              "splits and labels");
        volume img, seg;
        CHECK(volume_read(&img, d.subjects[2].image) == 0, "volume_read image: %s", as_error());
        CHECK(volume_read(&seg, d.subjects[2].label) == 0, "volume_read seg: %s", as_error());
        CHECK(img.nx == 240 && img.ny == 240 && img.nz == 155 && img.pixdim[0] == 1, "grid 240x240x155 1 mm");
        CHECK(volume_check_same_grid(&img, d.subjects[2].image, &seg, d.subjects[2].label) == 0, "seg on the image grid");
        size_t nles = 0, bad = 0;
        for (size_t q = 0; q < volume_voxels(&img); q++)
            if (seg.data[q] > 0) {
                nles++;
                bad += img.data[q] <= 0;
            }
        CHECK(nles > 0 && bad == 0, "lesions (%zu voxels) inside the brain (%zu outside)", nles, bad);
        volume_free(&img);
        volume_free(&seg);
    }
    dataset_free(&d);
    CHECK(dataset_open(&d, a, "t1") == 0 && d.n == 4, "t1 written too");
    dataset_free(&d);

    // Errors: missing template named; nothing written for a refused run.
    o.out = c;
    o.template_path = "/nonexistent/ch2bet.nii.gz";
    CHECK(synth_run(&o) == -1 && strstr(as_error(), "/nonexistent/ch2bet.nii.gz"), "missing template: %s", as_error());

    char args[8400];
    snprintf(args, sizeof args, "%s 2 2", a);
    tu_run_python("tools/check_synth.py", args);
    CHECK(1, "nibabel checks passed");
    return tu_finish();
}
