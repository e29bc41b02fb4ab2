// Hostile NIfTI files (tools/nifti_hostile.py) through the library: volume_read and slices_load
// refuse each with a message naming the file and the problem, nothing crashes, and nothing
// close to what the headers claim (up to 2^40 voxels) is ever allocated. Writes that cannot
// succeed leave no file behind.
#include <nifti2_io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/testutil.h"
#include "data/slices.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/timer.h"

int main(void) {
    char dir[1024], args[2048], list[2048];
    snprintf(dir, sizeof dir, "%s", tu_scratch_dir("hostile"));
    snprintf(args, sizeof args, "'%s'", dir);
    tu_run_python("tools/nifti_hostile.py", args);
    snprintf(list, sizeof list, "%s/hostile.txt", dir);
    FILE *f = fopen(list, "r");
    CHECK(f != NULL, "hostile list");
    if (!f) return tu_finish();
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        *tab = '\0';
        char *expect = tab + 1;
        expect[strcspn(expect, "\n")] = '\0';
        char path[2100];
        snprintf(path, sizeof path, "%s/%s", dir, line);
        volume v;
        as_error_clear();
        int rc = volume_read(&v, path);
        CHECK(rc == -1 && strstr(as_error(), path) && strstr(as_error(), expect) && !strchr(as_error(), '\n'),
              "volume_read %s: rc %d, '%s' (want '%s')", line, rc, as_error(), expect);
        CHECK(v.data == NULL && v.header == NULL, "%s: nothing left allocated in the volume", line);
        slice_stack s;
        slice_options o;
        slice_options_default(&o, 1);
        rc = slices_load(&s, path, NULL, &o);
        CHECK(rc == -1 && strstr(as_error(), path), "slices_load %s: '%s'", line, as_error());
        n++;
    }
    fclose(f);
    CHECK(n >= 30, "%d hostile files tried", n);
    size_t rss = peak_rss_bytes();
    CHECK(rss < ((size_t)300 << 20), "peak memory %zu MiB stays far below what the headers claim", rss >> 20);

    // Writes that fail leave nothing behind.
    volume v;
    float pd[3] = {1, 1, 1};
    volume_alloc(&v, 3, 3, 3, pd);
    char path[2100];
    snprintf(path, sizeof path, "%s/out.txt", dir);
    CHECK(volume_write(&v, &v, path, NIFTI_TYPE_FLOAT32) == -1 && !fs_exists(path), "bad extension refused: %s",
          as_error());
    snprintf(path, sizeof path, "%s/out.nii", dir);
    CHECK(volume_write(&v, &v, path, NIFTI_TYPE_INT16) == -1 && !fs_exists(path), "int16 output refused: %s", as_error());
    snprintf(path, sizeof path, "%s/missing_dir/out.nii.gz", dir);
    CHECK(volume_write(&v, &v, path, NIFTI_TYPE_FLOAT32) == -1 && strstr(as_error(), path), "missing folder: %s",
          as_error());
    snprintf(args, sizeof args, "ls -a '%s' | grep -q tmp-", dir);
    CHECK(system(args) != 0, "no temp files left");
    volume_free(&v);
    return tu_finish();
}
