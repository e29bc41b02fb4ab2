// prep's verdict on a registration (src/prep/prep.c, prep_check_registration): the failures a
// real scan rarely produces on demand, so tests/test_prep_cli.sh cannot provoke them all: a
// metric that ended where it started or lower (diverged), one that found too little of the
// template, scales out of range or too anisotropic; each named in the message; a registered
// head (the metric and scales of a real run) accepted. The empty-mask failure is provoked end
// to end in tests/test_prep_cli.sh (a template mask too thin to survive the opening).
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "helpers/testutil.h"
#include "prep/prep.h"

static reg_result good(void) {
    reg_result g;
    memset(&g, 0, sizeof g);
    g.mi_initial = 0.52, g.mi_final = 1.31;  // a raw head of `data synth --raw`
    g.sv[0] = 1.07, g.sv[1] = 1.0, g.sv[2] = 0.93;
    return g;
}

static void expect_refused(const char *what, const reg_result *g, const char *word) {
    char why[512] = "";
    int rc = prep_check_registration(g, 0.3, why, sizeof why);
    CHECK(rc == -1 && strstr(why, word) != NULL, "%s: refused naming '%s' (rc %d, '%s')", what, word, rc, why);
}

int main(void) {
    reg_result g = good();
    char why[512] = "";
    CHECK(prep_check_registration(&g, 0.3, why, sizeof why) == 0, "a registered head is accepted ('%s')", why);
    g.mi_final = g.mi_initial;
    expect_refused("the metric ended where it started", &g, "diverged");
    g.mi_final = g.mi_initial - 0.1;
    expect_refused("the metric ended lower", &g, "diverged");
    g = good(), g.mi_initial = 0.05, g.mi_final = 0.19;  // the featureless ellipsoid of docs/prep.md
    expect_refused("too little of the template", &g, "too little");
    g = good(), g.sv[2] = 0.6;
    expect_refused("a scale below 0.67", &g, "implausible");
    g = good(), g.sv[0] = 1.6;
    expect_refused("a scale above 1.5", &g, "implausible");
    g = good(), g.sv[0] = 1.45, g.sv[2] = 1.0;
    expect_refused("largest over smallest above 1.4", &g, "implausible");
    g = good(), g.mi_final = NAN;
    expect_refused("a NaN metric", &g, "diverged");
    return tu_finish();
}
