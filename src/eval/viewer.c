// The report's 3-D viewer (see viewer.h): per-subject data files and the report.html section.
#include "eval/viewer.h"

#include <math.h>
#include <nifti1.h>  // nifti_1_header
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "eval/report.h"  // report_safe_id, report_html_str
#include "io/png.h"       // image_window_percentile
#include "util/error.h"   // as_fail, as_malloc
#include "util/fs.h"      // fs_file_*, fs_join, fs_mkdirs, fs_read_all, fs_write_all
#include "util/json.h"    // json_write_number

// ---- the viewer grid ------------------------------------------------------------------------------

typedef struct viewer_grid {
    int lo[3], m[3], f;     // native voxel of viewer voxel t: lo + f*t; m = viewer dims
    double affine[4][4];    // viewer voxel -> world mm
} viewer_grid;

static size_t grid_voxels(const viewer_grid *g) { return (size_t)g->m[0] * g->m[1] * g->m[2]; }

// Brain bounding box plus a margin, then the smallest stride f that fits max_voxels.
static void grid_plan(viewer_grid *g, const volume *img, const volume *brain, size_t max_voxels) {
    int n[3] = {img->nx, img->ny, img->nz}, lo[3] = {n[0], n[1], n[2]}, hi[3] = {-1, -1, -1};
    const float *in = brain && brain->data ? brain->data : img->data;
    for (int k = 0; k < n[2]; k++)
        for (int j = 0; j < n[1]; j++)
            for (int i = 0; i < n[0]; i++) {
                if (!(in[(size_t)i + (size_t)n[0] * ((size_t)j + (size_t)n[1] * k)] > 0)) continue;
                int v[3] = {i, j, k};
                for (int a = 0; a < 3; a++) {
                    if (v[a] < lo[a]) lo[a] = v[a];
                    if (v[a] > hi[a]) hi[a] = v[a];
                }
            }
    for (int a = 0; a < 3; a++) {
        if (hi[a] < 0) lo[a] = 0, hi[a] = n[a] - 1;  // no brain voxel: the whole grid
        lo[a] = lo[a] - 2 < 0 ? 0 : lo[a] - 2;
        hi[a] = hi[a] + 2 >= n[a] ? n[a] - 1 : hi[a] + 2;
        g->lo[a] = lo[a];
    }
    for (g->f = 1;; g->f++) {
        for (int a = 0; a < 3; a++) g->m[a] = (hi[a] - lo[a]) / g->f + 1;
        if (grid_voxels(g) <= max_voxels || (g->m[0] == 1 && g->m[1] == 1 && g->m[2] == 1)) break;
    }
    // world = A (lo + f t): the columns scale by f, the origin moves to lo.
    for (int r = 0; r < 4; r++) {
        for (int c = 0; c < 3; c++) g->affine[r][c] = img->affine[r][c] * g->f;
        g->affine[r][3] = img->affine[r][3];
        for (int c = 0; c < 3; c++) g->affine[r][3] += img->affine[r][c] * g->lo[c];
    }
}

// out (m0*m1*m2, x fastest) = v on the viewer grid.
static void grid_gather(float *out, const viewer_grid *g, const volume *v) {
    size_t t = 0;
    for (int c = 0; c < g->m[2]; c++)
        for (int b = 0; b < g->m[1]; b++)
            for (int a = 0; a < g->m[0]; a++) {
                size_t i = (size_t)(g->lo[0] + g->f * a), j = (size_t)(g->lo[1] + g->f * b),
                       k = (size_t)(g->lo[2] + g->f * c);
                out[t++] = v->data[i + (size_t)v->nx * (j + (size_t)v->ny * k)];
            }
}

// Voxels of the region (r > 0) that have a 6-neighbour outside it or lie on the grid's edge (the
// region minus its erosion by the 6-connected cross, the edge counting as outside).
static void outline(unsigned char *out, const float *r, const int m[3]) {
    size_t sx = 1, sy = (size_t)m[0], sz = (size_t)m[0] * m[1];
    for (int k = 0; k < m[2]; k++)
        for (int j = 0; j < m[1]; j++)
            for (int i = 0; i < m[0]; i++) {
                size_t v = i * sx + j * sy + k * sz;
                int in = r[v] > 0;
                int edge = i == 0 || j == 0 || k == 0 || i == m[0] - 1 || j == m[1] - 1 || k == m[2] - 1;
                out[v] = in && (edge || !(r[v - sx] > 0) || !(r[v + sx] > 0) || !(r[v - sy] > 0) ||
                                !(r[v + sy] > 0) || !(r[v - sz] > 0) || !(r[v + sz] > 0));
            }
}

// Centroid of r > 0 in world mm; 0 when the region is empty.
static int centroid_mm(double mm[3], const float *r, const viewer_grid *g) {
    double s[3] = {0, 0, 0};
    size_t cnt = 0, t = 0;
    for (int k = 0; k < g->m[2]; k++)
        for (int j = 0; j < g->m[1]; j++)
            for (int i = 0; i < g->m[0]; i++, t++)
                if (r[t] > 0) s[0] += i, s[1] += j, s[2] += k, cnt++;
    if (!cnt) return 0;
    for (int a = 0; a < 3; a++) s[a] /= (double)cnt;
    for (int a = 0; a < 3; a++)
        mm[a] = g->affine[a][0] * s[0] + g->affine[a][1] * s[1] + g->affine[a][2] * s[2] + g->affine[a][3];
    return 1;
}

// ---- bytes: NIfTI-1, gzip, base64 ---------------------------------------------------------------

// A uint8 NIfTI-1 file (.nii: header, 4-byte empty extension, voxels) in memory; sform = affine.
static unsigned char *nifti_u8(size_t *len, const unsigned char *vox, const viewer_grid *g, float slope,
                               float inter) {
    nifti_1_header h;
    memset(&h, 0, sizeof h);
    h.sizeof_hdr = 348;
    h.dim[0] = 3;
    for (int a = 0; a < 3; a++) h.dim[a + 1] = (short)g->m[a];
    for (int a = 4; a < 8; a++) h.dim[a] = 1;
    h.datatype = DT_UINT8;
    h.bitpix = 8;
    h.pixdim[0] = 1;
    for (int c = 0; c < 3; c++)
        h.pixdim[c + 1] = (float)sqrt(g->affine[0][c] * g->affine[0][c] + g->affine[1][c] * g->affine[1][c] +
                                      g->affine[2][c] * g->affine[2][c]);
    h.vox_offset = 352;
    h.scl_slope = slope;
    h.scl_inter = inter;
    h.xyzt_units = NIFTI_UNITS_MM;
    h.sform_code = NIFTI_XFORM_SCANNER_ANAT;
    for (int c = 0; c < 4; c++) {
        h.srow_x[c] = (float)g->affine[0][c];
        h.srow_y[c] = (float)g->affine[1][c];
        h.srow_z[c] = (float)g->affine[2][c];
    }
    memcpy(h.magic, "n+1", 4);
    size_t n = grid_voxels(g);
    unsigned char *out = as_calloc(352 + n, 1);
    memcpy(out, &h, sizeof h);
    memcpy(out + 352, vox, n);
    *len = 352 + n;
    return out;
}

// gzip (not zlib) framing: what .nii.gz readers, NiiVue's included, expect.
static unsigned char *gzip_bytes(size_t *out_len, const unsigned char *in, size_t n) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return NULL;
    size_t cap = deflateBound(&zs, (uLong)n) + 32;
    unsigned char *out = as_malloc(cap);
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    int rc = deflate(&zs, Z_FINISH);
    *out_len = zs.total_out;
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

static void base64_write(FILE *f, const unsigned char *p, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        fputc(tab[v >> 18 & 63], f);
        fputc(tab[v >> 12 & 63], f);
        fputc(i + 1 < n ? tab[v >> 6 & 63] : '=', f);
        fputc(i + 2 < n ? tab[v & 63] : '=', f);
    }
}

// A JSON string that is also safe inside an HTML <script> element (no "<", ">" or "&").
static void js_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20 || ch == '<' || ch == '>' || ch == '&') fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

// "key": "<base64 of the gzipped NIfTI>"
static int layer_write(FILE *f, const char *key, const unsigned char *vox, const viewer_grid *g, float slope,
                       float inter) {
    size_t nlen, glen;
    unsigned char *nii = nifti_u8(&nlen, vox, g, slope, inter);
    unsigned char *gz = gzip_bytes(&glen, nii, nlen);
    free(nii);
    if (!gz) return as_fail("viewer: gzip of the %s layer failed", key);
    fprintf(f, ",\n\"%s\": \"", key);
    base64_write(f, gz, glen);
    fputc('"', f);
    free(gz);
    return 0;
}

// ---- per-subject data -------------------------------------------------------------------------------

void report_viewer_path(char *out, size_t n, const char *run_dir, const char *id) {
    char safe[256];
    report_safe_id(safe, sizeof safe, id);
    if (run_dir && *run_dir) snprintf(out, n, "%s/viewer/%s.js", run_dir, safe);
    else snprintf(out, n, "viewer/%s.js", safe);
}

int eval_viewer_write(const volume *img, const volume *map, const volume *pred, const volume *lab,
                      const volume *brain, const char *id, const char *run_dir, size_t max_voxels) {
    char dir[4096], path[4200];
    fs_join(dir, sizeof dir, run_dir, "viewer");
    if (fs_mkdirs(dir) != 0) return -1;
    viewer_grid g;
    grid_plan(&g, img, brain, max_voxels);
    size_t n = grid_voxels(&g);
    float *v = as_malloc(n * sizeof *v), *r = as_malloc(n * sizeof *r);
    unsigned char *bm = as_malloc(n), *q = as_malloc(n);
    grid_gather(v, &g, img);
    if (brain && brain->data) grid_gather(r, &g, brain);
    for (size_t t = 0; t < n; t++) bm[t] = brain && brain->data ? r[t] > 0 : v[t] > 0;

    report_viewer_path(path, sizeof path, run_dir, id);
    fs_file af;
    if (fs_file_open(&af, path) != 0) goto fail;
    FILE *f = af.f;
    fputs("anoswinViewerData({\"id\": ", f);
    js_string(f, id);
    fprintf(f, ", \"shape\": [%d, %d, %d], \"step\": %d, \"max_voxels\": %zu", g.m[0], g.m[1], g.m[2], g.f,
            max_voxels);
    // scan: uint8 over its 0.1st..99.9th percentile in the brain
    float lo, hi;
    image_window_percentile(&lo, &hi, v, bm, n, 0.1, 99.9);
    double span = hi > lo ? (double)hi - lo : 1;
    for (size_t t = 0; t < n; t++) {
        double x = rint(((double)v[t] - lo) / span * 255.0);  // in double, as NumPy would
        q[t] = (unsigned char)(x < 0 ? 0 : x > 255 ? 255 : x);
    }
    if (layer_write(f, "scan", q, &g, (float)(span / 255.0), lo) != 0) goto fail_file;
    // map: uint8 over 0..max
    double focus[3], map_max = NAN;
    float p1, p99 = NAN;
    int has_focus = 0;
    if (map && map->data) {
        grid_gather(v, &g, map);
        float mx = 0;
        size_t arg = 0;
        for (size_t t = 0; t < n; t++)
            if (v[t] > mx) mx = v[t], arg = t;
        map_max = mx > 0 ? mx : 1;
        for (size_t t = 0; t < n; t++) {
            double x = rint(v[t] / map_max * 255.0);
            q[t] = (unsigned char)(x < 0 ? 0 : x > 255 ? 255 : x);
        }
        if (layer_write(f, "map", q, &g, (float)(map_max / 255.0), 0) != 0) goto fail_file;
        image_window_percentile(&p1, &p99, v, bm, n, 1, 99);
        if (mx > 0) {  // where the map peaks, unless an outline below gives a better place
            memset(r, 0, n * sizeof *r);
            r[arg] = 1;
            has_focus = centroid_mm(focus, r, &g);
        }
    }
    // outlines; the crosshair starts at the ground truth, else the mask, else the map's peak
    const volume *ov[2] = {lab, pred};
    const char *key[2] = {"gt", "mask"};
    int focus_rank = 0;
    for (int t = 0; t < 2; t++) {
        if (!ov[t] || !ov[t]->data) continue;
        grid_gather(r, &g, ov[t]);
        outline(q, r, g.m);
        if (layer_write(f, key[t], q, &g, 1, 0) != 0) goto fail_file;
        double c[3];
        if (focus_rank < 2 - t && centroid_mm(c, r, &g)) {
            memcpy(focus, c, sizeof c);
            has_focus = 1, focus_rank = 2 - t;
        }
    }
    fputs(",\n\"map_max\": ", f);
    json_write_number(f, map_max);
    fputs(", \"p99\": ", f);
    json_write_number(f, p99);
    fputs(", \"focus\": ", f);
    if (has_focus) fprintf(f, "[%.3f, %.3f, %.3f]", focus[0], focus[1], focus[2]);
    else fputs("null", f);
    fputs("});\n", f);
    free(v), free(r), free(bm), free(q);
    return fs_file_commit(&af);
fail_file:
    fs_file_abort(&af);
fail:
    free(v), free(r), free(bm), free(q);
    return -1;
}

// ---- report.html ---------------------------------------------------------------------------------

int report_viewer_install(const char *bundle, const char *run_dir) {
    char dir[4096], dst[4200];
    unsigned char *data;
    size_t n;
    fs_join(dir, sizeof dir, run_dir, "viewer");
    if (fs_mkdirs(dir) != 0 || fs_read_all(bundle, &data, &n) != 0) return -1;
    fs_join(dst, sizeof dst, dir, "niivue.umd.js");
    int rc = fs_write_all(dst, data, n);
    free(data);
    return rc;
}

int report_viewer_present(const eval_result *res, const char *run_dir) {
    char path[4200];
    fs_join(path, sizeof path, run_dir, "viewer/niivue.umd.js");
    if (!fs_exists(path)) return 0;
    for (int i = 0; i < res->n_subjects; i++) {
        report_viewer_path(path, sizeof path, run_dir, res->subjects[i].id);
        if (fs_exists(path)) return 1;
    }
    return 0;
}

void report_viewer_head(FILE *f) {
    fputs("<style>#nv-box .nvc{margin:4px 0;font-size:14px}"
          "#nv-frame{height:560px;background:#000;border:2px solid #334}"
          ".sw{display:inline-block;width:12px;height:12px;vertical-align:middle;border:1px solid #444}"
          "#page-errors{color:#a00;white-space:pre-wrap}</style>\n"
          "<script>window.anoswinErrors = [];\n"
          "(function () {\n"
          "  function add(m) {\n"
          "    window.anoswinErrors.push(String(m));\n"
          "    var e = document.getElementById('page-errors');\n"
          "    if (!e) return;\n"
          "    e.hidden = false;\n"
          "    e.textContent = 'Errors on this page:\\n' + window.anoswinErrors.join('\\n');\n"
          "  }\n"
          "  window.addEventListener('error', function (e) {\n"
          "    var t = e.target;\n"
          "    add(e.message || ('cannot load ' + ((t && (t.src || t.href)) || 'a resource')));\n"
          "  }, true);\n"
          "  window.addEventListener('unhandledrejection', function (e) {\n"
          "    add('unhandled: ' + ((e.reason && e.reason.message) || e.reason));\n"
          "  });\n"
          "  var ce = console.error;\n"
          "  console.error = function () {\n"
          "    add(Array.prototype.join.call(arguments, ' '));\n"
          "    ce.apply(console, arguments);\n"
          "  };\n"
          "})();</script>\n",
          f);
}

// The viewer: loads a subject's data file on demand (a <script> element), shows the scan in grey,
// the map in NiiVue's "warm" colours above the slider's value, and the two outlines in flat colours.
static const char viewer_js[] =
    "(function () {\n"
    "  var status = document.getElementById('nv-status');\n"
    "  function say(s, state) {\n"
    "    status.textContent = s;\n"
    "    document.documentElement.setAttribute('data-viewer', state);\n"
    "  }\n"
    "  function fail(e) { say('3-D viewer failed: ' + e, 'failed'); console.error('3-D viewer: ' + e); }\n"
    "  if (typeof niivue === 'undefined') { fail('viewer/niivue.umd.js did not load'); return; }\n"
    "  var cfg = JSON.parse(document.getElementById('nv-config').textContent);\n"
    "  var sel = document.getElementById('nv-subject'), thr = document.getElementById('nv-thr'),\n"
    "      thrVal = document.getElementById('nv-thr-val'), info = document.getElementById('nv-info');\n"
    "  var shown = {map: 'nv-show-map', mask: 'nv-show-mask', gt: 'nv-show-gt'};\n"
    "  var nv = new niivue.Niivue({backColor: [0, 0, 0, 1], isColorbar: true, dragAndDropEnabled: false,\n"
    "                              crosshairColor: [1, 1, 1, 0.5], crosshairWidth: 1, show3Dcrosshair: true});\n"
    "  var attached = nv.attachTo('nv-canvas');\n"
    "  nv.addColormap('anoswin-mask', {R: [0, 60], G: [0, 140], B: [0, 255], A: [0, 255], I: [0, 255]});\n"
    "  nv.addColormap('anoswin-gt', {R: [0, 40], G: [0, 255], B: [0, 40], A: [0, 255], I: [0, 255]});\n"
    "  var data = {}, want = null, vols = {}, busy = Promise.resolve();\n"
    "  window.anoswinViewerData = function (d) { data[d.id] = d; if (d.id === want) show(d); };\n"
    "  function apply() {\n"
    "    var t = parseFloat(thr.value);\n"
    "    thrVal.textContent = t.toPrecision(3);\n"
    "    if (vols.map) vols.map.cal_min = t;\n"
    "    for (var k in shown)\n"
    "      if (vols[k]) vols[k].opacity = document.getElementById(shown[k]).checked ? (k === 'map' ? 0.8 : 1) : 0;\n"
    "    nv.updateGLVolume();\n"
    "  }\n"
    "  async function layers(d) {\n"
    "    await attached;\n"
    "    while (nv.volumes.length) nv.removeVolumeByIndex(nv.volumes.length - 1);\n"
    "    vols = {};\n"
    "    var t0 = cfg.threshold !== null ? cfg.threshold : (d.p99 !== null ? d.p99 : 0.5 * d.map_max);\n"
    "    var spec = [['scan', 'gray', NaN, NaN], ['map', 'warm', t0, d.map_max],\n"
    "                ['mask', 'anoswin-mask', 0.5, 1], ['gt', 'anoswin-gt', 0.5, 1]];\n"
    "    for (var i = 0; i < spec.length; i++) {\n"
    "      var s = spec[i];\n"
    "      if (!d[s[0]]) continue;\n"
    "      var v = await niivue.NVImage.loadFromBase64({base64: d[s[0]], name: d.id + '_' + s[0] + '.nii.gz',\n"
    "          colormap: s[1], cal_min: s[2], cal_max: s[3], colorbarVisible: s[0] === 'map'});\n"
    "      nv.addVolume(v);\n"
    "      vols[s[0]] = v;\n"
    "    }\n"
    "    if (d.map_max !== null) {\n"
    "      thr.max = Math.max(d.map_max, t0);  // a validation threshold above this subject's maximum stays\n"
    "      thr.step = 'any';\n"
    "      thr.value = t0;\n"
    "    }\n"
    "    thr.disabled = !vols.map;\n"
    "    nv.setInterpolation(true);\n"
    "    apply();\n"
    "    if (d.focus) { nv.scene.crosshairPos = nv.mm2frac(d.focus); nv.drawScene(); }\n"
    "    info.textContent = d.id + ': ' + d.shape.join(' x ') + ' voxels' +\n"
    "        (d.step > 1 ? ' (every ' + d.step + 'th voxel)' : '') + '; layers: ' + Object.keys(vols).join(', ');\n"
    "    say('3-D viewer: ' + d.id + ' shown', 'ready');\n"
    "  }\n"
    "  function show(d) { busy = busy.then(function () { return layers(d); }).catch(function (e) { fail(e); }); }\n"
    "  function load(id) {\n"
    "    want = id;\n"
    "    if (data[id]) return show(data[id]);\n"
    "    say('3-D viewer: loading ' + id + ' ...', 'loading');\n"
    "    var s = document.createElement('script');\n"
    "    s.src = cfg.files[id];\n"
    "    s.onerror = function () { fail('cannot read ' + cfg.files[id]); };\n"
    "    document.head.appendChild(s);\n"
    "  }\n"
    "  var views = {axial: nv.sliceTypeAxial, coronal: nv.sliceTypeCoronal, sagittal: nv.sliceTypeSagittal,\n"
    "               multiplanar: nv.sliceTypeMultiplanar, render: nv.sliceTypeRender};\n"
    "  document.querySelectorAll('[data-view]').forEach(function (b) {\n"
    "    b.onclick = function () { nv.setSliceType(views[b.getAttribute('data-view')]); };\n"
    "  });\n"
    "  nv.setSliceType(nv.sliceTypeMultiplanar);\n"
    "  thr.oninput = apply;\n"
    "  for (var k in shown) document.getElementById(shown[k]).onchange = apply;\n"
    "  sel.onchange = function () { load(sel.value); };\n"
    "  document.querySelectorAll('[data-subject]').forEach(function (a) {\n"
    "    a.onclick = function () { sel.value = a.getAttribute('data-subject'); load(sel.value); };\n"
    "  });\n"
    "  load(sel.value);\n"
    "})();\n";

void report_viewer_section(FILE *f, const eval_result *res, const char *run_dir, double threshold) {
    fputs("<h2 id=\"viewer\">3-D viewer</h2>\n<p>The scan (grey), the anomaly map in colour above the slider's "
          "value (colour bar in the map's units), and the outlines of detect's mask and of the ground truth. Click "
          "or drag to move the crosshair, scroll to step through slices; in 3-D, drag to rotate. The slider starts "
          "at ",
          f);
    if (isfinite(threshold)) fprintf(f, "the val-threshold protocol's threshold (%.4g).", threshold);
    else fputs("each subject's 99th percentile of the map in the brain (no validation threshold in this run).", f);
    fputs("</p>\n<div id=\"nv-box\">\n<div class=\"nvc\">subject <select id=\"nv-subject\">", f);
    char rel[4200];
    for (int i = 0; i < res->n_subjects; i++) {
        char full[4200];
        report_viewer_path(full, sizeof full, run_dir, res->subjects[i].id);
        if (!fs_exists(full)) continue;
        fputs("<option value=\"", f);
        report_html_str(f, res->subjects[i].id);
        fputs("\">", f);
        report_html_str(f, res->subjects[i].id);
        fputs("</option>", f);
    }
    fputs("</select> view <button data-view=\"axial\">axial</button><button data-view=\"coronal\">coronal</button>"
          "<button data-view=\"sagittal\">sagittal</button><button data-view=\"multiplanar\">multiplanar</button>"
          "<button data-view=\"render\">3-D</button></div>\n<div class=\"nvc\"><label><input type=\"checkbox\" "
          "id=\"nv-show-map\" checked> anomaly map</label> above <input type=\"range\" id=\"nv-thr\" min=\"0\" "
          "max=\"1\" step=\"0.01\" value=\"0.5\"> <span id=\"nv-thr-val\"></span> &nbsp; <label><input "
          "type=\"checkbox\" id=\"nv-show-mask\" checked> <span class=\"sw\" style=\"background:#3c8cff\"></span> "
          "detect's mask (outline)</label> &nbsp; <label><input type=\"checkbox\" id=\"nv-show-gt\" checked> <span "
          "class=\"sw\" style=\"background:#28ff28\"></span> ground truth (outline)</label></div>\n"
          "<div id=\"nv-frame\"><canvas id=\"nv-canvas\"></canvas></div>\n<p id=\"nv-status\">3-D viewer: "
          "starting ... (it needs JavaScript and WebGL2)</p><p id=\"nv-info\"></p>\n</div>\n"
          "<script type=\"application/json\" id=\"nv-config\">{\"threshold\": ",
          f);
    json_write_number(f, threshold);
    fputs(", \"files\": {", f);
    int first = 1;
    for (int i = 0; i < res->n_subjects; i++) {
        char full[4200];
        report_viewer_path(full, sizeof full, run_dir, res->subjects[i].id);
        if (!fs_exists(full)) continue;
        report_viewer_path(rel, sizeof rel, NULL, res->subjects[i].id);
        fputs(first ? "" : ", ", f);
        first = 0;
        js_string(f, res->subjects[i].id);
        fputs(": ", f);
        js_string(f, rel);
    }
    fputs("}}</script>\n<script src=\"viewer/niivue.umd.js\"></script>\n<script>\n", f);
    fputs(viewer_js, f);
    fputs("</script>\n", f);
}
