#include "model/autoddpm/config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/config_text.h"
#include "util/error.h"

void ddpm_config_default(ddpm_config *c) {
    // autoddpm.yaml: 128 px, 1 channel, num_channels (128, 256, 256), attention (F, T, T), one
    // res block per level, 256 channels per head; DiffusionModelUNet's 32 groups; the DDPM
    // scheduler's 1000 linear betas 1e-4..2e-2; noise_level_recon 200, noise_level_inpaint 50,
    // resample_steps 5, masking_threshold 0.13.
    memset(c, 0, sizeof *c);
    c->img_size = 128;
    c->in_chans = 1;
    c->patch_size = 16;
    c->levels = 3;
    c->ch[0] = 128, c->ch[1] = 256, c->ch[2] = 256;
    c->attn[0] = 0, c->attn[1] = 1, c->attn[2] = 1;
    c->res_blocks = 1;
    c->head_ch = 256;
    c->groups = 32;
    c->timesteps = 1000;
    c->beta_start = 1e-4f;
    c->beta_end = 2e-2f;
    c->t_recon = 200;
    c->t_inpaint = 50;
    c->resample = 5;
    c->threshold = 0.13f;
    c->seed = 0;
    c->sampler = DDPM_SAMPLER_DDPM;  // inference_scheduler: ddpm
    c->inference_steps = 1000;       // inference_steps: 1000
}

static const config_field sampler_field = {"sampler", CONFIG_CHOICE, offsetof(ddpm_config, sampler), {"ddpm", "ddim"}};

int ddpm_sampler_timesteps(const ddpm_config *c, int level, int *ts) {
    const int r = ddpm_sampler_stride(c);
    int n = 0;
    for (int t = level; t >= 1; t -= r) ts[n++] = t;
    ts[n++] = 0;
    return n;
}

int ddpm_config_check(const ddpm_config *c) {
    if (c->in_chans < 1 || c->in_chans > 16) return as_fail("config: in_chans %d must lie in 1..16", c->in_chans);
    if (c->levels < 1 || c->levels > DDPM_MAX_LEVELS)
        return as_fail("config: %d levels; 1..%d are supported", c->levels, DDPM_MAX_LEVELS);
    if (c->img_size < 2 || c->img_size > 4096 || c->img_size % (1 << (c->levels - 1)))
        return as_fail("config: img_size %d must lie in 2..4096 and be divisible by 2^(levels-1) = %d", c->img_size,
                       1 << (c->levels - 1));
    if (c->patch_size < 1 || c->img_size % c->patch_size)
        return as_fail("config: patch_size %d must divide img_size %d", c->patch_size, c->img_size);
    if (c->groups < 1) return as_fail("config: groups %d must be positive", c->groups);
    for (int i = 0; i < c->levels; i++) {
        if (c->ch[i] < 1 || c->ch[i] > 4096 || c->ch[i] % c->groups)
            return as_fail("config: channels %d of level %d must lie in 1..4096 and be a multiple of groups %d",
                           c->ch[i], i, c->groups);
        if (c->attn[i] != 0 && c->attn[i] != 1) return as_fail("config: attention flags must be 0 or 1");
        if (c->attn[i] && c->ch[i] % ddpm_heads(c, c->ch[i]))
            return as_fail("config: level %d's %d channels do not split into heads of %d", i, c->ch[i], c->head_ch);
    }
    if (c->ch[c->levels - 1] % ddpm_heads(c, c->ch[c->levels - 1]))
        return as_fail("config: the middle's %d channels do not split into heads of %d", c->ch[c->levels - 1],
                       c->head_ch);
    if (c->res_blocks < 1 || c->res_blocks > 8) return as_fail("config: res_blocks %d must lie in 1..8", c->res_blocks);
    if (c->head_ch < 1) return as_fail("config: head_ch %d must be positive", c->head_ch);
    if (c->timesteps < 2 || c->timesteps > 100000)
        return as_fail("config: timesteps %d must lie in 2..100000", c->timesteps);
    if (!(c->beta_start > 0.0f && c->beta_start <= c->beta_end && c->beta_end < 1.0f))
        return as_fail("config: need 0 < beta_start %g <= beta_end %g < 1", (double)c->beta_start,
                       (double)c->beta_end);
    if (c->t_recon < 0 || c->t_recon >= c->timesteps || c->t_inpaint < 0 || c->t_inpaint >= c->timesteps)
        return as_fail("config: t_recon %d and t_inpaint %d must lie in 0..timesteps-1 (%d)", c->t_recon,
                       c->t_inpaint, c->timesteps - 1);
    if (c->resample < 1 || c->resample > 100) return as_fail("config: resample %d must lie in 1..100", c->resample);
    if (c->sampler != DDPM_SAMPLER_DDPM && c->sampler != DDPM_SAMPLER_DDIM)
        return as_fail("config: sampler must be ddpm or ddim");
    if (c->inference_steps < 1 || c->inference_steps > c->timesteps)
        return as_fail("config: inference_steps %d must lie in 1..timesteps (%d)", c->inference_steps, c->timesteps);
    if (!(c->threshold <= 1.0f)) return as_fail("config: threshold %g must be <= 1 (< 0: per-image 95th percentile)",
                                                (double)c->threshold);
    return 0;
}

static void list_str(char *out, size_t n, const int *v, int len) {
    size_t w = 0;
    out[0] = 0;
    for (int i = 0; i < len && w < n; i++) w += (size_t)snprintf(out + w, n - w, "%s%d", i ? "-" : "", v[i]);
}

int ddpm_config_to_json(const ddpm_config *c, char *out, size_t n) {
    char bs[32], be[32], th[32], ch[128], at[64];
    config_float_str(bs, sizeof bs, c->beta_start);
    config_float_str(be, sizeof be, c->beta_end);
    config_float_str(th, sizeof th, c->threshold);
    list_str(ch, sizeof ch, c->ch, c->levels);
    list_str(at, sizeof at, c->attn, c->levels);
    int w = snprintf(out, n,
                     "{\"img_size\":%d,\"in_chans\":%d,\"patch_size\":%d,\"channels\":\"%s\",\"attention\":\"%s\","
                     "\"res_blocks\":%d,\"head_ch\":%d,\"groups\":%d,\"timesteps\":%d,\"beta_start\":%s,"
                     "\"beta_end\":%s,\"t_recon\":%d,\"t_inpaint\":%d,\"resample\":%d,\"threshold\":%s,\"seed\":%llu,"
                     "\"sampler\":\"%s\",\"inference_steps\":%d}",
                     c->img_size, c->in_chans, c->patch_size, ch, at, c->res_blocks, c->head_ch, c->groups,
                     c->timesteps, bs, be, c->t_recon, c->t_inpaint, c->resample, th, (unsigned long long)c->seed,
                     sampler_field.choices[c->sampler], c->inference_steps);
    return (w < 0 || (size_t)w >= n) ? -1 : 0;
}

void ddpm_config_describe(const ddpm_config *c, char *out, size_t n) {
    char ch[128], at[64];
    list_str(ch, sizeof ch, c->ch, c->levels);
    list_str(at, sizeof at, c->attn, c->levels);
    snprintf(out, n,
             "img %d in %d channels %s attention %s res_blocks %d head_ch %d groups %d; %d steps betas %g..%g; "
             "t_recon %d t_inpaint %d resample %d threshold %g seed %llu; sampler %s",
             c->img_size, c->in_chans, ch, at, c->res_blocks, c->head_ch, c->groups, c->timesteps,
             (double)c->beta_start, (double)c->beta_end, c->t_recon, c->t_inpaint, c->resample,
             (double)c->threshold, (unsigned long long)c->seed, sampler_field.choices[c->sampler]);
    if (c->sampler == DDPM_SAMPLER_DDIM) {
        size_t w = strlen(out);
        if (w < n) snprintf(out + w, n - w, " (%d inference steps)", c->inference_steps);
    }
}

// "a-b-c" (quoted or not) at *pp: the numbers into v, their count into *len.
static int parse_list(const char **pp, int *v, int *len, const char *what, const char *key) {
    const char *p = *pp;
    int q = *p == '"', n = 0;
    if (q) p++;
    for (;;) {
        char *end;
        long x = strtol(p, &end, 10);
        if (end == p || x < 0 || x > 1000000 || n == DDPM_MAX_LEVELS)
            return as_fail("%s: config key '%s' must be up to %d non-negative integers joined by '-' (\"128-256-256\")",
                           what, key, DDPM_MAX_LEVELS);
        v[n++] = (int)x;
        p = end;
        if (*p != '-') break;
        p++;
    }
    if (q) {
        if (*p != '"') return as_fail("%s: config key '%s': unterminated string", what, key);
        p++;
    }
    *len = n;
    *pp = p;
    return 0;
}

int ddpm_config_parse(ddpm_config *cfg, const char *text, const char *what) {
    ddpm_config c = *cfg;
    config_cursor cur;
    config_cursor_init(&cur, text, what);
    char key[64];
    int got, n_attn = -1;
    while ((got = config_next_key(&cur, key, sizeof key)) > 0) {
        const char *p = cur.p;
        if (!strcmp(key, "channels")) {
            if (parse_list(&p, c.ch, &c.levels, what, key)) return -1;
        } else if (!strcmp(key, "sampler")) {
            if (config_choice(&cur, &sampler_field, &c.sampler)) return -1;
            p = cur.p;
        } else if (!strcmp(key, "attention")) {
            int a[DDPM_MAX_LEVELS];
            if (parse_list(&p, a, &n_attn, what, key)) return -1;
            memcpy(c.attn, a, sizeof a);
        } else {
            double v;
            if (config_number(&cur, key, &v)) return -1;
            p = cur.p;
            int *ip = NULL;
            float *fp = NULL;
            if (!strcmp(key, "img_size")) ip = &c.img_size;
            else if (!strcmp(key, "in_chans")) ip = &c.in_chans;
            else if (!strcmp(key, "patch_size")) ip = &c.patch_size;
            else if (!strcmp(key, "res_blocks")) ip = &c.res_blocks;
            else if (!strcmp(key, "head_ch")) ip = &c.head_ch;
            else if (!strcmp(key, "groups")) ip = &c.groups;
            else if (!strcmp(key, "timesteps")) ip = &c.timesteps;
            else if (!strcmp(key, "t_recon")) ip = &c.t_recon;
            else if (!strcmp(key, "t_inpaint")) ip = &c.t_inpaint;
            else if (!strcmp(key, "resample")) ip = &c.resample;
            else if (!strcmp(key, "inference_steps")) ip = &c.inference_steps;
            else if (!strcmp(key, "beta_start")) fp = &c.beta_start;
            else if (!strcmp(key, "beta_end")) fp = &c.beta_end;
            else if (!strcmp(key, "threshold")) fp = &c.threshold;
            else if (!strcmp(key, "seed")) {
                if (!(v >= 0 && v <= 9007199254740992.0 && v == (double)(uint64_t)v))
                    return as_fail("%s: config key 'seed' must be a non-negative integer", what);
                c.seed = (uint64_t)v;
            } else
                return as_fail("%s: unknown config key '%s' (known: img_size in_chans patch_size channels attention "
                               "res_blocks head_ch groups timesteps beta_start beta_end t_recon t_inpaint resample "
                               "threshold seed sampler inference_steps)",
                               what, key);
            if (ip) {
                if (config_int(v, ip, what, key)) return -1;
            } else if (fp) {
                *fp = (float)v;
            }
        }
        cur.p = p;
        if (config_end_value(&cur, key)) return -1;
    }
    if (got < 0) return -1;
    if (n_attn >= 0 && n_attn != c.levels)
        return as_fail("%s: %d attention flags for %d levels of channels", what, n_attn, c.levels);
    if (ddpm_config_check(&c)) return config_check_failed(what);
    *cfg = c;
    return 0;
}
