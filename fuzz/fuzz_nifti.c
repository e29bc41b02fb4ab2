// libFuzzer target: NIfTI reading (volume_read). The first input byte picks options: bit 0
// gzip-compresses the rest before writing it to disk (the .nii.gz path), bit 1 writes a
// successfully read volume back and reads it again (the copy must match exactly).
// Properties: no crash/leak/UB; failures leave a one-line error naming the file; successes
// give a sane grid of finite voxels with a finite affine.
#include <math.h>
#include <nifti1.h>

#include "data/volume.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > (1u << 20)) return 0;
    unsigned flags = data[0];
    char path[600], out[600];
    fuzz_path(path, sizeof path, (flags & 1) ? "in.nii.gz" : "in.nii");
    fuzz_write(path, data + 1, size - 1, flags & 1);
    volume v;
    as_error_clear();
    if (volume_read(&v, path) != 0) {
        fuzz_check_error(path);
        if (v.data || v.header) abort();
        return 0;
    }
    if (v.nx < 1 || v.ny < 1 || v.nz < 1 || !v.data || !v.header) abort();
    for (size_t i = 0; i < volume_voxels(&v); i++)
        if (!isfinite(v.data[i])) abort();
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            if (!isfinite(v.affine[i][j])) abort();
    if (flags & 2) {
        fuzz_path(out, sizeof out, (flags & 4) ? "out.nii.gz" : "out.nii");
        if (volume_write(&v, &v, out, NIFTI_TYPE_FLOAT32) != 0) {
            fprintf(stderr, "fuzz: cannot write back a volume we read: %s\n", as_error());
            abort();
        }
        volume w;
        if (volume_read(&w, out) != 0) {
            fprintf(stderr, "fuzz: cannot re-read what we wrote: %s\n", as_error());
            abort();
        }
        if (!volume_same_grid(&v, &w)) {
            fprintf(stderr, "fuzz: write/read round trip changed the grid\n");
            abort();
        }
        for (size_t i = 0; i < volume_voxels(&v); i++)
            if (v.data[i] != w.data[i]) {  // == on purpose: -0 reads back as +0 (x*1+0)
                fprintf(stderr, "fuzz: write/read round trip changed voxel %zu: %g -> %g\n", i, v.data[i], w.data[i]);
                abort();
            }
        volume_free(&w);
        remove(out);
    }
    volume_free(&v);
    return 0;
}
