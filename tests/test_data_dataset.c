// Dataset discovery on small fixture trees (empty files: discovery never reads them) for every
// layout and the manifest CSV, plus the error cases, and the same-grid helper.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "helpers/testutil.h"
#include "util/error.h"
#include "util/fs.h"

static char root[4096];

// Creates root/<rel> (and its folders) as an empty file.
static void touch(const char *rel) {
    char p[8192], dir[8192];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    snprintf(dir, sizeof dir, "%s", p);
    *strrchr(dir, '/') = '\0';
    fs_mkdirs(dir);
    FILE *f = fopen(p, "w");
    if (f) fclose(f);
}

static void write_text(const char *rel, const char *text) {
    char p[8192];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    fs_write_all(p, text, strlen(text));
}

static void fresh(const char *name) {
    snprintf(root, sizeof root, "%s", tu_scratch_dir(name));
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

// Opens root (or root/rel) and expects failure with every `needle` (|-separated) in the message.
static void expect_error(const char *rel, const char *mod, const char *needles, const char *what) {
    char p[8192];
    snprintf(p, sizeof p, rel ? "%s/%s" : "%s", root, rel ? rel : "");
    dataset d;
    int rc = dataset_open(&d, p, mod);
    int ok = rc == -1 && d.n == 0 && d.subjects == NULL;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", needles);
    for (char *t = strtok(buf, "|"); t; t = strtok(NULL, "|")) ok &= strstr(as_error(), t) != NULL;
    CHECK(ok, "%s: rc %d, message '%s' should name '%s'", what, rc, as_error(), needles);
    if (rc == 0) dataset_free(&d);
}

int main(void) {
    dataset d;

    // ---- BraTS21: pairing by id, not listing order; modality choice; splits ----
    fresh("ds_brats");
    const char *ids[] = {"BraTS2021_00012", "BraTS2021_00000", "BraTS2021_00005"};
    for (int i = 0; i < 3; i++) {
        const char *mods[] = {"t1", "t1ce", "t2", "flair", "seg"};
        for (int m = 0; m < 5; m++) {
            char rel[512];
            snprintf(rel, sizeof rel, "%s/%s_%s.nii.gz", ids[i], ids[i], mods[m]);
            touch(rel);
        }
    }
    CHECK(dataset_open(&d, root, "flair") == 0, "brats open: %s", as_error());
    CHECK(d.n == 3 && !strcmp(d.layout, "brats") && !strcmp(d.modality, "flair"), "brats: %d subjects, %s", d.n,
          d.layout);
    int sorted = 1, paired = 1;
    for (int i = 0; i < d.n; i++) {
        if (i) sorted &= strcmp(d.subjects[i - 1].id, d.subjects[i].id) < 0;
        char want[256];
        snprintf(want, sizeof want, "%s/%s_flair.nii.gz", d.subjects[i].id, d.subjects[i].id);
        paired &= ends_with(d.subjects[i].image, want);
        snprintf(want, sizeof want, "%s/%s_seg.nii.gz", d.subjects[i].id, d.subjects[i].id);
        paired &= ends_with(d.subjects[i].label, want) && d.subjects[i].mask[0] == '\0';
    }
    CHECK(sorted && !strcmp(d.subjects[0].id, "BraTS2021_00000"), "brats sorted by id");
    CHECK(paired, "brats image and label paired by subject");
    CHECK(dataset_find(&d, "BraTS2021_00005") == &d.subjects[1], "dataset_find");
    dataset_free(&d);
    CHECK(dataset_open(&d, root, "T2") == 0 && ends_with(d.subjects[2].image, "00012_t2.nii.gz"),
          "modality is case-insensitive");
    dataset_free(&d);
    expect_error(NULL, "pd", "unknown modality 'pd'", "unknown requested modality");
    // Missing label where other subjects have one.
    char p[8192];
    snprintf(p, sizeof p, "%s/BraTS2021_00005/BraTS2021_00005_seg.nii.gz", root);
    remove(p);
    expect_error(NULL, "t2", "BraTS2021_00005|no label", "brats missing seg");
    touch("BraTS2021_00005/BraTS2021_00005_seg.nii.gz");
    // Missing image of the chosen modality.
    snprintf(p, sizeof p, "%s/BraTS2021_00012/BraTS2021_00012_t1.nii.gz", root);
    remove(p);
    expect_error(NULL, "t1", "BraTS2021_00012|no t1 image", "brats missing modality");
    touch("BraTS2021_00012/BraTS2021_00012_t1.nii.gz");
    // Unknown modality in a file name.
    touch("BraTS2021_00000/BraTS2021_00000_t3.nii.gz");
    expect_error(NULL, "t2", "BraTS2021_00000_t3.nii.gz|unknown modality 't3'", "brats unknown modality file");
    snprintf(p, sizeof p, "%s/BraTS2021_00000/BraTS2021_00000_t3.nii.gz", root);
    remove(p);
    // Duplicate subject in two folders.
    touch("extra/BraTS2021_00000/BraTS2021_00000_t2.nii.gz");
    expect_error(NULL, "t2", "duplicate subject BraTS2021_00000", "brats duplicate");

    // ---- the synth layout: healthy/ and test/ splits, labels only in test/ ----
    fresh("ds_synth");
    touch("healthy/h1/h1_t1.nii.gz");
    touch("healthy/h1/h1_t2.nii.gz");
    touch("healthy/h0/h0_t2.nii.gz");
    touch("test/t0/t0_t2.nii.gz");
    touch("test/t0/t0_seg.nii.gz");
    touch("test/t0/t0_mask.nii.gz");
    CHECK(dataset_open(&d, root, "t2") == 0 && d.n == 3, "synth layout: %s", as_error());
    CHECK(!strcmp(d.subjects[0].split, "healthy") && !strcmp(d.subjects[2].split, "test") &&
              d.subjects[0].label[0] == '\0' && ends_with(d.subjects[2].label, "t0_seg.nii.gz") &&
              ends_with(d.subjects[2].mask, "t0_mask.nii.gz"),
          "splits from folders, labels and masks where present");
    CHECK(dataset_keep_split(&d, "test") == 1 && !strcmp(d.subjects[0].id, "t0"), "keep split");
    dataset_free(&d);
    expect_error(NULL, "t1", "h0|no t1 image", "synth: a subject without t1");

    // ---- IXI ----
    fresh("ds_ixi");
    touch("IXI012-HH-1211-T2.nii.gz");
    touch("IXI002-Guys-0828-T2.nii.gz");
    touch("IXI002-Guys-0828-T1.nii.gz");
    touch("IXI002-Guys-0828-PD.nii.gz");
    touch("sub/IXI100-IOP-0988-T1.nii.gz");
    touch("README.txt");
    CHECK(dataset_open(&d, root, "t2") == 0 && d.n == 2 && !strcmp(d.layout, "ixi"), "ixi t2: %s", as_error());
    CHECK(!strcmp(d.subjects[0].id, "IXI002-Guys-0828") && ends_with(d.subjects[0].image, "IXI002-Guys-0828-T2.nii.gz") &&
              d.subjects[0].label[0] == '\0',
          "ixi ids from names, no labels");
    dataset_free(&d);
    CHECK(dataset_open(&d, root, "t1") == 0 && d.n == 2 && !strcmp(d.subjects[1].id, "IXI100-IOP-0988"),
          "ixi t1 (subjects lacking t1 are left out)");
    dataset_free(&d);
    expect_error(NULL, "flair", "no flair", "ixi has no flair");
    touch("copy/IXI012-HH-1211-T2.nii.gz");
    expect_error(NULL, "t2", "IXI012-HH-1211|two t2", "ixi duplicate");

    // ---- WMH challenge ----
    fresh("ds_wmh");
    touch("Utrecht/0/pre/FLAIR.nii.gz");
    touch("Utrecht/0/pre/T1.nii.gz");
    touch("Utrecht/0/orig/FLAIR.nii.gz");
    touch("Utrecht/0/wmh.nii.gz");
    touch("Singapore/50/pre/FLAIR.nii.gz");
    touch("Singapore/50/pre/T1.nii.gz");
    touch("Singapore/50/wmh.nii.gz");
    CHECK(dataset_open(&d, root, "flair") == 0 && d.n == 2 && !strcmp(d.layout, "wmh"), "wmh: %s", as_error());
    CHECK(!strcmp(d.subjects[0].id, "Singapore_50") && ends_with(d.subjects[0].image, "Singapore/50/pre/FLAIR.nii.gz") &&
              ends_with(d.subjects[0].label, "Singapore/50/wmh.nii.gz") &&
              ends_with(d.subjects[1].label, "Utrecht/0/wmh.nii.gz"),
          "wmh pairing");
    dataset_free(&d);
    expect_error(NULL, "t2", "no t2", "wmh has no t2");
    snprintf(p, sizeof p, "%s/Utrecht/0/wmh.nii.gz", root);
    remove(p);
    expect_error(NULL, "flair", "Utrecht_0|no label", "wmh missing label");

    // ---- MSLUB ----
    fresh("ds_mslub");
    touch("patient02/T2W.nii.gz");
    touch("patient02/consensus_gt.nii.gz");
    touch("patient02/brainmask.nii.gz");
    touch("patient01/T1W.nii.gz");
    touch("patient01/T2W.nii.gz");
    touch("patient01/FLAIR.nii.gz");
    touch("patient01/consensus_gt.nii.gz");
    CHECK(dataset_open(&d, root, "t2") == 0 && d.n == 2 && !strcmp(d.layout, "mslub"), "mslub: %s", as_error());
    CHECK(!strcmp(d.subjects[0].id, "patient01") && ends_with(d.subjects[1].mask, "patient02/brainmask.nii.gz") &&
              ends_with(d.subjects[1].label, "patient02/consensus_gt.nii.gz"),
          "mslub pairing");
    dataset_free(&d);
    expect_error(NULL, "flair", "patient02|no flair image", "mslub missing modality");
    snprintf(p, sizeof p, "%s/patient01/consensus_gt.nii.gz", root);
    remove(p);
    expect_error(NULL, "t2", "patient01|no label", "mslub missing label");

    // ---- preprocessed benchmark layout (t2/, seg/, mask/) ----
    fresh("ds_bench");
    touch("t2/00001_t2.nii.gz");
    touch("t2/00000_t2.nii.gz");
    touch("seg/00000_seg.nii.gz");
    touch("seg/00001_seg.nii.gz");
    touch("mask/00001_mask.nii.gz");
    CHECK(dataset_open(&d, root, "t2") == 0 && d.n == 2 && !strcmp(d.layout, "benchmark"), "benchmark: %s",
          as_error());
    CHECK(ends_with(d.subjects[1].label, "seg/00001_seg.nii.gz") && ends_with(d.subjects[1].mask, "mask/00001_mask.nii.gz") &&
              d.subjects[0].mask[0] == '\0',
          "benchmark pairing");
    dataset_free(&d);
    touch("seg/00007_seg.nii.gz");
    expect_error(NULL, "t2", "00007_seg.nii.gz|has no image", "benchmark orphan label");
    snprintf(p, sizeof p, "%s/seg/00007_seg.nii.gz", root);
    remove(p);
    snprintf(p, sizeof p, "%s/seg/00001_seg.nii.gz", root);
    remove(p);
    expect_error(NULL, "t2", "00001|no label", "benchmark missing label");

    // ---- manifest CSV ----
    fresh("ds_csv");
    touch("img/a.nii.gz");
    touch("img/b, with comma.nii.gz");
    touch("lab/b.nii.gz");
    touch("/m.nii");  // root/m.nii
    write_text("list.csv",
               "\xEF\xBB\xBFsubject,image,label,mask,split\r\n"
               "zed,img/a.nii.gz,,m.nii,test\r\n"
               "\r\n"
               "\"alpha\",\"img/b, with comma.nii.gz\",lab/b.nii.gz,,\"train\"\r\n");
    snprintf(p, sizeof p, "%s/list.csv", root);
    CHECK(dataset_open(&d, p, "t2") == 0 && d.n == 2 && !strcmp(d.layout, "manifest"), "manifest: %s", as_error());
    CHECK(!strcmp(d.subjects[0].id, "alpha") && ends_with(d.subjects[0].image, "/img/b, with comma.nii.gz") &&
              ends_with(d.subjects[0].label, "/lab/b.nii.gz") && !strcmp(d.subjects[0].split, "train") &&
              !strncmp(d.subjects[0].image, root, strlen(root)),
          "manifest: quoted fields, paths relative to the CSV's folder");
    CHECK(ends_with(d.subjects[1].mask, "/m.nii") && d.subjects[1].label[0] == '\0', "manifest: empty cells");
    // Round trip through dataset_write_manifest.
    char p2[8192];
    snprintf(p2, sizeof p2, "%s/out.csv", root);
    CHECK(dataset_write_manifest(&d, p2) == 0, "write manifest");
    dataset d2;
    CHECK(dataset_open(&d2, p2, NULL) == 0 && d2.n == 2 && d2.subjects[0].image[0] == '/' &&
              ends_with(d2.subjects[0].image, d.subjects[0].image) && ends_with(d2.subjects[1].mask, d.subjects[1].mask),
          "manifest round trip: %s", as_error());
    dataset_free(&d2);
    dataset_free(&d);
    // Column order is free; label/mask/split optional.
    write_text("min.csv", "image,subject\nimg/a.nii.gz,s1\n");
    snprintf(p, sizeof p, "%s/min.csv", root);
    CHECK(dataset_open(&d, p, "t2") == 0 && d.n == 1 && !strcmp(d.subjects[0].id, "s1"), "minimal manifest");
    dataset_free(&d);
    write_text("bad1.csv", "subject,image,label,mask,split\ns1,img/a.nii.gz,,\n");
    expect_error("bad1.csv", "t2", "bad1.csv:2|4 fields, expected 5", "csv wrong field count");
    write_text("bad2.csv", "subject,image,lable\ns1,img/a.nii.gz,\n");
    expect_error("bad2.csv", "t2", "bad2.csv:1|unknown column 'lable'", "csv unknown column");
    write_text("bad3.csv", "subject,image\ns1,\"img/a.nii.gz\n");
    expect_error("bad3.csv", "t2", "bad3.csv:2|quote", "csv unterminated quote");
    write_text("bad4.csv", "subject,image\ns1,img/a.nii.gz\ns1,img/a.nii.gz\n");
    expect_error("bad4.csv", "t2", "bad4.csv:3|duplicate subject s1", "csv duplicate subject");
    write_text("bad5.csv", "subject,image,label\ns9,img/a.nii.gz,lab/nope.nii.gz\n");
    expect_error("bad5.csv", "t2", "lab/nope.nii.gz|s9|not found", "csv missing label file");
    write_text("bad6.csv", "");
    expect_error("bad6.csv", "t2", "bad6.csv|empty", "csv empty");
    write_text("bad7.csv", "subject,label\ns1,lab/b.nii.gz\n");
    expect_error("bad7.csv", "t2", "bad7.csv|subject and image", "csv without image column");
    expect_error("nothere.csv", "t2", "nothere.csv", "missing csv");

    // ---- a folder with nothing recognisable ----
    fresh("ds_empty");
    touch("notes.txt");
    touch("scan.nii.gz");
    expect_error(NULL, "t2", "no recognisable scans", "unrecognised folder");

    // ---- same-grid helper ----
    volume a, b;
    volume_alloc(&a, 5, 4, 3, NULL);
    volume_alloc(&b, 5, 4, 3, NULL);
    CHECK(volume_check_same_grid(&a, "img.nii.gz", &b, "lab.nii.gz") == 0, "same grid");
    b.affine[0][3] = 1.0;
    CHECK(volume_check_same_grid(&a, "img.nii.gz", &b, "lab.nii.gz") == -1 && strstr(as_error(), "lab.nii.gz") &&
              strstr(as_error(), "img.nii.gz"),
          "shifted affine: %s", as_error());
    volume_free(&b);
    volume_alloc(&b, 5, 4, 2, NULL);
    CHECK(volume_check_same_grid(&a, "img.nii.gz", &b, "lab.nii.gz") == -1 && strstr(as_error(), "5x4x2") &&
              strstr(as_error(), "img.nii.gz"),
          "different dims: %s", as_error());
    volume_free(&a);
    volume_free(&b);
    return tu_finish();
}
