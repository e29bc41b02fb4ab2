// NIfTI-1/2 reading and writing. Headers are parsed by nifticlib (which knows every field and
// the byte swapping), but the file itself is read here through zlib, chunk by chunk, so that a
// hostile header (2^31 voxels, vox_offset past the end, huge extensions) can never make us
// allocate more than the file really holds: nifticlib would allocate what the header claims.
#include "data/volume.h"

#include <errno.h>
#include <math.h>
#include <nifti2_io.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "util/error.h"
#include "util/fs.h"

// Far above any brain scan (a 1 mm whole-body scan is ~1e8), far below what breaks int math.
#define VOLUME_MAX_VOXELS ((int64_t)1 << 30)
// Voxel sizes below 1 nm or affine entries beyond 1000 km are corrupt headers, not scans (and
// NIfTI-2 doubles like 1e-300 or 1e300 become 0 or inf in any float32 header we write).
#define VOLUME_MIN_MM 1e-6
#define VOLUME_MAX_MM 1e9

static void quiet_nifticlib(void) { nifti_set_debug_level(0); }

static uint32_t bswap32(uint32_t x) {
    return (x >> 24) | ((x >> 8) & 0xff00u) | ((x << 8) & 0xff0000u) | (x << 24);
}

// Reads up to `want` bytes; returns how many were read (short only at EOF), -1 on a zlib error.
static int64_t gz_read_upto(gzFile gz, unsigned char *buf, int64_t want) {
    int64_t got = 0;
    while (got < want) {
        int64_t chunk = want - got;
        if (chunk > (1 << 30)) chunk = 1 << 30;
        int r = gzread(gz, buf + got, (unsigned)chunk);
        if (r < 0) return -1;
        if (r == 0) break;
        got += r;
    }
    return got;
}

// The affine nibabel's get_best_affine() gives: sform if sform_code > 0, else qform if
// qform_code > 0, else the Analyze-style base affine (x flipped, centred on the grid). We follow
// nibabel rather than nifticlib here so that reorientation matches the reference exactly.
static void best_affine(const nifti_image *nim, double a[4][4]) {
    memset(a, 0, 16 * sizeof(double));
    if (nim->sform_code > 0) {
        memcpy(a, nim->sto_xyz.m, 16 * sizeof(double));
    } else if (nim->qform_code > 0) {
        memcpy(a, nim->qto_xyz.m, 16 * sizeof(double));
    } else {
        double d[3] = {nim->dx, nim->dy, nim->dz};
        int64_t n[3] = {nim->nx, nim->ny, nim->nz};
        for (int i = 0; i < 3; i++) {
            double z = i == 0 ? -d[i] : d[i];
            a[i][i] = z;
            a[i][3] = -(double)(n[i] - 1) / 2.0 * z;
        }
    }
    a[3][0] = a[3][1] = a[3][2] = 0;
    a[3][3] = 1;
}

// Rejects what no downstream step can handle: non-finite entries, a singular matrix, or shear
// (columns not perpendicular; small rounding from float32 headers is allowed).
static int check_affine(const double a[4][4], const char *path) {
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
            if (!isfinite(a[i][j])) return as_fail("%s: affine has non-finite entries", path);
            else if (fabs(a[i][j]) > VOLUME_MAX_MM)
                return as_fail("%s: affine entry %g mm is absurd (more than %g mm)", path, a[i][j], VOLUME_MAX_MM);
    double norm[3];
    for (int j = 0; j < 3; j++) {
        norm[j] = sqrt(a[0][j] * a[0][j] + a[1][j] * a[1][j] + a[2][j] * a[2][j]);
        if (!(norm[j] > 1e-6)) return as_fail("%s: affine is singular (voxel axis %d has zero length)", path, j);
    }
    double det = a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) +
                 a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
    if (!(fabs(det) > 1e-6 * norm[0] * norm[1] * norm[2])) return as_fail("%s: affine is singular", path);
    for (int p = 0; p < 3; p++)
        for (int q = p + 1; q < 3; q++) {
            double dot = a[0][p] * a[0][q] + a[1][p] * a[1][q] + a[2][p] * a[2][q];
            double c = dot / (norm[p] * norm[q]);
            if (fabs(c) > 1e-2)
                return as_fail("%s: affine is not orthogonal (voxel axes %d and %d at %.2f degrees)", path, p, q,
                               acos(c) * 180.0 / M_PI);
        }
    return 0;
}

// Converts nvox raw voxels (already in CPU byte order) to float with y = x*slope + inter.
static int convert_voxels(float *out, const void *raw, int64_t nvox, int datatype, double slope, double inter) {
#define CONVERT(T)                                                                       \
    do {                                                                                 \
        const T *p = (const T *)raw;                                                     \
        for (int64_t i = 0; i < nvox; i++) out[i] = (float)((double)p[i] * slope + inter); \
    } while (0)
    switch (datatype) {
        case NIFTI_TYPE_UINT8: CONVERT(uint8_t); break;
        case NIFTI_TYPE_INT8: CONVERT(int8_t); break;
        case NIFTI_TYPE_INT16: CONVERT(int16_t); break;
        case NIFTI_TYPE_UINT16: CONVERT(uint16_t); break;
        case NIFTI_TYPE_INT32: CONVERT(int32_t); break;
        case NIFTI_TYPE_UINT32: CONVERT(uint32_t); break;
        case NIFTI_TYPE_INT64: CONVERT(int64_t); break;
        case NIFTI_TYPE_UINT64: CONVERT(uint64_t); break;
        case NIFTI_TYPE_FLOAT32: CONVERT(float); break;
        case NIFTI_TYPE_FLOAT64: CONVERT(double); break;
        default: return -1;
    }
#undef CONVERT
    return 0;
}

static int datatype_supported(int dt) {
    switch (dt) {
        case NIFTI_TYPE_UINT8: case NIFTI_TYPE_INT8: case NIFTI_TYPE_INT16: case NIFTI_TYPE_UINT16:
        case NIFTI_TYPE_INT32: case NIFTI_TYPE_UINT32: case NIFTI_TYPE_INT64: case NIFTI_TYPE_UINT64:
        case NIFTI_TYPE_FLOAT32: case NIFTI_TYPE_FLOAT64: return 1;
        default: return 0;
    }
}

// Checks on the raw header fields that nifticlib would silently repair (it turns a zero or NaN
// pixdim into 1, a negative dim into 1, a non-finite scl_inter into 0): a scan with such a
// header is broken and the user should know. Fields are given in CPU byte order.
static int check_raw_fields(int64_t ndim, const int64_t *dim, const double *pixdim, double slope, double inter,
                            const char *path) {
    if (ndim < 1 || ndim > 7) return as_fail("%s: invalid number of dimensions %lld", path, (long long)ndim);
    for (int d = 1; d <= ndim; d++)
        if (dim[d] < 1) return as_fail("%s: invalid size %lld along dimension %d", path, (long long)dim[d], d);
    for (int d = 1; d <= 3 && d <= ndim; d++)
        if (!isfinite(pixdim[d]) || pixdim[d] <= 0)
            return as_fail("%s: invalid voxel size pixdim[%d] = %g", path, d, pixdim[d]);
    if (slope != 0 && isfinite(slope) && !isfinite(inter)) return as_fail("%s: valid scl_slope but non-finite scl_inter", path);
    return 0;
}

// Parses the header bytes into a nifti_image (no data, no extensions). Returns NULL after
// recording an error naming the file.
static nifti_image *parse_header(const unsigned char *h, int64_t hlen, const char *path) {
    if (hlen < 348) return as_fail("%s: not a NIfTI file (too short)", path), NULL;
    uint32_t sz;
    memcpy(&sz, h, 4);
    nifti_image *nim = NULL;
    if (sz == 348 || bswap32(sz) == 348) {
        if (!memcmp(h + 344, "ni1", 4)) return as_fail("%s: two-file NIfTI (.hdr/.img) is not supported; use .nii or .nii.gz", path), NULL;
        if (memcmp(h + 344, "n+1", 4)) return as_fail("%s: not a NIfTI file (no NIfTI-1 magic)", path), NULL;
        nifti_1_header hdr, hs;
        memcpy(&hdr, h, sizeof hdr);
        hs = hdr;
        if (sz != 348) nifti_swap_as_nifti1(&hs);
        int64_t dim[8];
        double pixdim[8];
        for (int d = 0; d < 8; d++) {
            dim[d] = hs.dim[d];
            pixdim[d] = hs.pixdim[d];
        }
        if (check_raw_fields(dim[0], dim, pixdim, hs.scl_slope, hs.scl_inter, path)) return NULL;
        nim = nifti_convert_n1hdr2nim(hdr, path);
    } else if (sz == 540 || bswap32(sz) == 540) {
        if (hlen < 540) return as_fail("%s: not a NIfTI file (truncated NIfTI-2 header)", path), NULL;
        if (!memcmp(h + 4, "ni2", 4)) return as_fail("%s: two-file NIfTI (.hdr/.img) is not supported; use .nii or .nii.gz", path), NULL;
        if (memcmp(h + 4, "n+2", 4)) return as_fail("%s: not a NIfTI file (no NIfTI-2 magic)", path), NULL;
        nifti_2_header hdr, hs;
        memcpy(&hdr, h, sizeof hdr);
        hs = hdr;
        if (sz != 540) nifti_swap_as_nifti2(&hs);
        if (check_raw_fields(hs.dim[0], hs.dim, hs.pixdim, hs.scl_slope, hs.scl_inter, path)) return NULL;
        // nifticlib moves a vox_offset inside the header to 540, 4 bytes before where a standard
        // file's data starts: the voxels would come out shifted.
        if (hs.vox_offset < 540) return as_fail("%s: invalid vox_offset %lld (inside the header)", path, (long long)hs.vox_offset), NULL;
        nim = nifti_convert_n2hdr2nim(hdr, path);
        // nifticlib's converter marks every image NIfTI-1 (its file readers fix the type up
        // afterwards): without this, writing a result would squeeze 64-bit fields into a
        // NIfTI-1 header, and a NIfTI-2 vox_offset inside the 540-byte header would pass.
        if (nim) nim->nifti_type = NIFTI_FTYPE_NIFTI2_1;
    } else {
        return as_fail("%s: not a NIfTI file", path), NULL;
    }
    if (!nim) return as_fail("%s: unreadable NIfTI header", path), NULL;
    return nim;
}

static int validate_header(const nifti_image *nim, const char *path) {
    if (nim->dim[0] < 1 || nim->dim[0] > 7) return as_fail("%s: invalid number of dimensions %lld", path, (long long)nim->dim[0]);
    for (int d = 1; d <= nim->dim[0]; d++)
        if (nim->dim[d] < 1) return as_fail("%s: invalid size %lld along dimension %d", path, (long long)nim->dim[d], d);
    for (int d = 4; d <= nim->dim[0]; d++)
        if (nim->dim[d] > 1) {
            if (d == 4) return as_fail("%s: 4-D file with %lld volumes; one 3-D volume expected", path, (long long)nim->dim[4]);
            return as_fail("%s: %lld-D file; one 3-D volume expected", path, (long long)nim->dim[0]);
        }
    int64_t n[3] = {nim->dim[1], nim->dim[0] >= 2 ? nim->dim[2] : 1, nim->dim[0] >= 3 ? nim->dim[3] : 1};
    double vox = (double)n[0] * (double)n[1] * (double)n[2];
    if (vox > (double)VOLUME_MAX_VOXELS)
        return as_fail("%s: absurd size %lldx%lldx%lld (more than 2^30 voxels)", path, (long long)n[0], (long long)n[1], (long long)n[2]);
    if (!datatype_supported(nim->datatype))
        return as_fail("%s: unsupported datatype %s (%d)", path, nifti_datatype_string(nim->datatype), nim->datatype);
    for (int d = 1; d <= 3; d++) {
        double p = nim->pixdim[d];
        if (d > nim->dim[0] && p == 0) continue;  // unused trailing dimension
        if (!isfinite(p) || p < VOLUME_MIN_MM || p > VOLUME_MAX_MM) return as_fail("%s: invalid voxel size pixdim[%d] = %g", path, d, p);
    }
    // A quaternion component beyond 1 is a corrupt qform (nifticlib would silently renormalise
    // it, and a NIfTI-2 double like 1e135 becomes inf in the float32 header of any result).
    if (nim->sform_code <= 0 && nim->qform_code > 0 &&
        !(fabs(nim->quatern_b) <= 1.0001 && fabs(nim->quatern_c) <= 1.0001 && fabs(nim->quatern_d) <= 1.0001))
        return as_fail("%s: invalid qform quaternion (%g, %g, %g)", path, (double)nim->quatern_b,
                       (double)nim->quatern_c, (double)nim->quatern_d);
    if (nim->iname_offset < (nim->nifti_type >= NIFTI_FTYPE_NIFTI2_1 ? 540 : 348))
        return as_fail("%s: invalid vox_offset %lld", path, (long long)nim->iname_offset);
    return 0;
}

int volume_read(volume *v, const char *path) {
    memset(v, 0, sizeof *v);
    quiet_nifticlib();
    struct stat st;
    if (stat(path, &st) != 0) return as_fail("%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return as_fail("%s: not a regular file", path);
    gzFile gz = gzopen(path, "rb");  // reads plain files transparently too
    if (!gz) return as_fail("%s: cannot open: %s", path, strerror(errno));
    unsigned char head[540];
    int64_t hlen = gz_read_upto(gz, head, sizeof head);
    if (hlen < 0) {
        gzclose(gz);
        return as_fail("%s: not a NIfTI file (corrupt gzip stream)", path);
    }
    nifti_image *nim = parse_header(head, hlen, path);
    if (!nim) {
        gzclose(gz);
        return -1;
    }
    if (validate_header(nim, path)) goto fail;
    // A 2-D image is a volume with one slice.
    int64_t nx = nim->dim[1], ny = nim->dim[0] >= 2 ? nim->dim[2] : 1, nz = nim->dim[0] >= 3 ? nim->dim[3] : 1;
    int64_t nvox = nx * ny * nz;
    int64_t nbytes = nvox * nim->nbyper;
    int64_t offset = nim->iname_offset;
    // Uncompressed files: the size check is exact and costs nothing.
    int compressed = !gzdirect(gz);
    if (!compressed && offset + nbytes > (int64_t)st.st_size) {
        as_fail("%s: file is shorter than its header claims (%lld bytes of voxel data at offset %lld, file has %lld)",
                path, (long long)nbytes, (long long)offset, (long long)st.st_size);
        goto fail;
    }
    // Skip header remainder and extensions, without trusting their sizes.
    {
        int64_t pos = hlen;
        unsigned char skip[4096];
        while (pos < offset) {
            int64_t want = offset - pos < (int64_t)sizeof skip ? offset - pos : (int64_t)sizeof skip;
            int64_t got = gz_read_upto(gz, skip, want);
            if (got <= 0) {
                as_fail("%s: vox_offset %lld is past the end of the file", path, (long long)offset);
                goto fail;
            }
            pos += got;
        }
        if (pos > offset) {  // data starts inside what we already read (vox_offset < 540 in NIfTI-1)
            gzseek(gz, offset, SEEK_SET);
        }
    }
    // Read the voxels in growing chunks: allocation follows what the file really holds.
    unsigned char *raw = NULL;
    {
        int64_t cap = 0, got = 0;
        while (got < nbytes) {
            int64_t want = nbytes - got;
            int64_t step = cap < (64 << 20) ? (64 << 20) : cap;  // at most doubles
            if (want > step) want = step;
            if (got + want > cap) {
                cap = got + want;
                raw = as_realloc(raw, (size_t)cap);
            }
            int64_t r = gz_read_upto(gz, raw + got, want);
            if (r < 0) {
                free(raw);
                as_fail("%s: corrupt gzip stream", path);
                goto fail;
            }
            got += r;
            if (r < want) {
                free(raw);
                as_fail("%s: file is shorter than its header claims (%lld of %lld bytes of voxel data)", path,
                        (long long)got, (long long)nbytes);
                goto fail;
            }
        }
    }
    gzclose(gz);
    gz = NULL;
    if (nim->byteorder != nifti_short_order() && nim->swapsize > 1) nifti_swap_Nbytes(nvox, nim->swapsize, raw);
    // scl_slope/scl_inter as nibabel applies them: a zero or non-finite slope means "unscaled".
    double slope = nim->scl_slope, inter = nim->scl_inter;
    if (slope == 0 || !isfinite(slope)) {
        slope = 1;
        inter = 0;
    } else if (!isfinite(inter)) {
        free(raw);
        as_fail("%s: valid scl_slope but non-finite scl_inter", path);
        goto fail;
    }
    v->data = as_malloc((size_t)nvox * sizeof(float));
    convert_voxels(v->data, raw, nvox, nim->datatype, slope, inter);
    free(raw);
    for (int64_t i = 0; i < nvox; i++)
        if (!isfinite(v->data[i])) {
            as_fail("%s: non-finite voxel value (NaN or Inf) at voxel %lld", path, (long long)i);
            free(v->data);
            v->data = NULL;
            goto fail;
        }
    v->nx = (int)nx;
    v->ny = (int)ny;
    v->nz = (int)nz;
    v->pixdim[0] = (float)nim->pixdim[1];
    // Beyond dim[0], pixdim is 0 (meaning 1) or a valid size that nifticlib's qform already
    // uses: keeping it keeps the affine of a written result equal to the one read here.
    v->pixdim[1] = (float)(nim->pixdim[2] > 0 ? nim->pixdim[2] : 1);
    v->pixdim[2] = (float)(nim->pixdim[3] > 0 ? nim->pixdim[3] : 1);
    // Make the kept header describe exactly one 3-D volume.
    nim->ndim = nim->dim[0] = 3;
    nim->nx = nim->dim[1] = nx;
    nim->ny = nim->dim[2] = ny;
    nim->nz = nim->dim[3] = nz;
    for (int d = 4; d < 8; d++) nim->dim[d] = 1;
    nim->nt = nim->nu = nim->nv = nim->nw = 1;
    nim->nvox = nvox;
    nim->dy = nim->pixdim[2] = v->pixdim[1];
    nim->dz = nim->pixdim[3] = v->pixdim[2];
    best_affine(nim, v->affine);
    if (check_affine(v->affine, path)) {
        free(v->data);
        v->data = NULL;
        goto fail;
    }
    v->header = nim;
    return 0;
fail:
    if (gz) gzclose(gz);
    nifti_image_free(nim);
    memset(v, 0, sizeof *v);
    return -1;
}

// A header for a synthetic volume: sform and qform both set from the affine (code 1, scanner).
static nifti_image *header_from_affine(const volume *like) {
    int64_t dims[8] = {3, like->nx, like->ny, like->nz, 1, 1, 1, 1};
    nifti_image *nim = nifti_make_new_nim(dims, NIFTI_TYPE_FLOAT32, 0);
    for (int d = 0; d < 3; d++) nim->pixdim[d + 1] = like->pixdim[d];
    nim->dx = like->pixdim[0];
    nim->dy = like->pixdim[1];
    nim->dz = like->pixdim[2];
    memcpy(nim->sto_xyz.m, like->affine, sizeof nim->sto_xyz.m);
    nim->sto_ijk = nifti_dmat44_inverse(nim->sto_xyz);
    nim->sform_code = NIFTI_XFORM_SCANNER_ANAT;
    double qb, qc, qd, qx, qy, qz, dx, dy, dz, qfac;
    nifti_dmat44_to_quatern(nim->sto_xyz, &qb, &qc, &qd, &qx, &qy, &qz, &dx, &dy, &dz, &qfac);
    nim->quatern_b = qb;
    nim->quatern_c = qc;
    nim->quatern_d = qd;
    nim->qoffset_x = qx;
    nim->qoffset_y = qy;
    nim->qoffset_z = qz;
    nim->qfac = qfac;
    nim->qform_code = NIFTI_XFORM_SCANNER_ANAT;
    nim->qto_xyz = nifti_quatern_to_dmat44(qb, qc, qd, qx, qy, qz, like->pixdim[0], like->pixdim[1], like->pixdim[2], qfac);
    nim->qto_ijk = nifti_dmat44_inverse(nim->qto_xyz);
    nim->xyz_units = NIFTI_UNITS_MM;
    return nim;
}

// Counts the decompressed bytes of a file we just wrote (nifticlib's writer reports no errors).
static int64_t gz_length(const char *path) {
    gzFile gz = gzopen(path, "rb");
    if (!gz) return -1;
    static __thread unsigned char buf[1 << 16];
    int64_t n = 0;
    int r;
    while ((r = gzread(gz, buf, sizeof buf)) > 0) n += r;
    gzclose(gz);
    return r < 0 ? -1 : n;
}

static int has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

int volume_write(const volume *v, const volume *like, const char *path, int nifti_datatype) {
    quiet_nifticlib();
    if (!like) like = v;
    if (v->nx != like->nx || v->ny != like->ny || v->nz != like->nz)
        return as_fail("%s: volume %dx%dx%d does not match the reference grid %dx%dx%d", path, v->nx, v->ny, v->nz,
                       like->nx, like->ny, like->nz);
    if (nifti_datatype != NIFTI_TYPE_FLOAT32 && nifti_datatype != NIFTI_TYPE_UINT8)
        return as_fail("%s: can only write float32 or uint8, not datatype %d", path, nifti_datatype);
    if (!has_suffix(path, ".nii") && !has_suffix(path, ".nii.gz"))
        return as_fail("%s: output name must end in .nii or .nii.gz", path);
    {  // a missing folder gets a clear message (nifticlib would print its own to stderr)
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash) {
            *(slash == dir ? slash + 1 : slash) = '\0';
            if (!fs_is_dir(dir)) return as_fail("%s: cannot write: folder %s does not exist", path, dir);
        }
    }
    nifti_image *nim = like->header ? nifti_copy_nim_info((const nifti_image *)like->header) : header_from_affine(like);
    if (!nim) return as_fail("%s: cannot build a NIfTI header", path);
    // One 3-D volume, unscaled, of the requested type; geometry (sform/qform/pixdim) as `like`.
    nim->ndim = nim->dim[0] = 3;
    nim->nx = nim->dim[1] = v->nx;
    nim->ny = nim->dim[2] = v->ny;
    nim->nz = nim->dim[3] = v->nz;
    for (int d = 4; d < 8; d++) nim->dim[d] = 1;
    nim->nt = nim->nu = nim->nv = nim->nw = 1;
    nim->nvox = (int64_t)volume_voxels(v);
    nim->datatype = nifti_datatype;
    nifti_datatype_sizes(nifti_datatype, &nim->nbyper, &nim->swapsize);
    nim->scl_slope = 0;
    nim->scl_inter = 0;
    nim->intent_code = 0;
    nifti_free_extensions(nim);
    size_t n = volume_voxels(v);
    void *buf;
    float lo = INFINITY, hi = -INFINITY;
    if (nifti_datatype == NIFTI_TYPE_FLOAT32) {
        buf = as_malloc(n * sizeof(float));
        memcpy(buf, v->data, n * sizeof(float));
        for (size_t i = 0; i < n; i++) {
            if (v->data[i] < lo) lo = v->data[i];
            if (v->data[i] > hi) hi = v->data[i];
        }
    } else {
        uint8_t *b = as_malloc(n);
        for (size_t i = 0; i < n; i++) {
            float x = v->data[i];
            b[i] = (uint8_t)(x <= 0 || !(x == x) ? 0 : x >= 255 ? 255 : lrintf(x));
            if (b[i] < lo) lo = b[i];
            if (b[i] > hi) hi = b[i];
        }
        buf = b;
    }
    nim->cal_min = n ? lo : 0;
    nim->cal_max = n ? hi : 0;
    nim->data = buf;
    char tmp[4300];
    fs_temp_path(tmp, sizeof tmp, path);
    // The temp name keeps ".nii"/".nii.gz", so nifticlib picks the format and compression.
    if (nifti_set_filenames(nim, tmp, 0, 1) != 0) {
        nifti_image_free(nim);
        return as_fail("%s: cannot set output file name", path);
    }
    // Always NIfTI-1: this nifticlib writes a type NIFTI2_1 image as a headerless data file,
    // and when a field does not fit NIfTI-1 it falls back to a NIfTI-2 header with the
    // two-file magic "ni2". So fields copied from a NIfTI-2 source that NIfTI-1 cannot hold
    // and that do not matter for a result map (slice timing, out-of-range xform codes) are
    // reset, and grids NIfTI-1 cannot describe are refused.
    if (v->nx > 32767 || v->ny > 32767 || v->nz > 32767) {
        nifti_image_free(nim);
        return as_fail("%s: cannot write a %dx%dx%d grid (NIfTI-1 allows at most 32767 voxels per axis)", path, v->nx,
                       v->ny, v->nz);
    }
    if (nim->slice_start < 0 || nim->slice_start > 32767 || nim->slice_end < 0 || nim->slice_end > 32767)
        nim->slice_start = nim->slice_end = 0;
    if (nim->qform_code < 0) nim->qform_code = NIFTI_XFORM_UNKNOWN;  // both mean "not set"
    if (nim->sform_code < 0) nim->sform_code = NIFTI_XFORM_UNKNOWN;
    if (nim->qform_code > 32767) nim->qform_code = NIFTI_XFORM_SCANNER_ANAT;  // both mean "set"
    if (nim->sform_code > 32767) nim->sform_code = NIFTI_XFORM_SCANNER_ANAT;
    nim->nifti_type = NIFTI_FTYPE_NIFTI1_1;
    nifti_set_iname_offset(nim, 1);
    int64_t want = nim->iname_offset + (int64_t)n * nim->nbyper;
    errno = 0;
    nifti_image_write(nim);
    nifti_image_free(nim);  // frees buf too
    int64_t got = gz_length(tmp);
    if (got != want) {
        int e = errno;
        remove(tmp);
        return as_fail("%s: write failed%s%s", path, e ? ": " : "", e ? strerror(e) : " (disk full or folder not writable?)");
    }
    return fs_commit(tmp, path);
}

void volume_alloc_like(volume *v, const volume *like) {
    memset(v, 0, sizeof *v);
    v->nx = like->nx;
    v->ny = like->ny;
    v->nz = like->nz;
    memcpy(v->pixdim, like->pixdim, sizeof v->pixdim);
    memcpy(v->affine, like->affine, sizeof v->affine);
    v->data = as_calloc(volume_voxels(v) ? volume_voxels(v) : 1, sizeof(float));
    if (like->header) {
        quiet_nifticlib();
        v->header = nifti_copy_nim_info((const nifti_image *)like->header);
    }
}

void volume_alloc(volume *v, int nx, int ny, int nz, const float pixdim[3]) {
    memset(v, 0, sizeof *v);
    v->nx = nx;
    v->ny = ny;
    v->nz = nz;
    for (int i = 0; i < 3; i++) v->pixdim[i] = pixdim ? pixdim[i] : 1.0f;
    for (int i = 0; i < 4; i++) v->affine[i][i] = i < 3 ? v->pixdim[i] : 1.0;
    v->data = as_calloc(volume_voxels(v) ? volume_voxels(v) : 1, sizeof(float));
}

void volume_free(volume *v) {
    if (!v) return;
    free(v->data);
    if (v->header) nifti_image_free((nifti_image *)v->header);
    memset(v, 0, sizeof *v);
}

void volume_copy_geometry(volume *dst, const volume *src) {
    memset(dst, 0, sizeof *dst);
    dst->nx = src->nx;
    dst->ny = src->ny;
    dst->nz = src->nz;
    memcpy(dst->pixdim, src->pixdim, sizeof dst->pixdim);
    memcpy(dst->affine, src->affine, sizeof dst->affine);
    if (src->header) {
        quiet_nifticlib();
        dst->header = nifti_copy_nim_info((const nifti_image *)src->header);
    }
}

const char *volume_source_name(const volume *v) {
    const nifti_image *nim = v->header;
    return nim && nim->fname ? nim->fname : "(in memory)";
}

int volume_same_grid(const volume *a, const volume *b) {
    if (a->nx != b->nx || a->ny != b->ny || a->nz != b->nz) return 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
            if (!(fabs(a->affine[i][j] - b->affine[i][j]) <= 1e-4)) return 0;
    return 1;
}
