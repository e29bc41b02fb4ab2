#!/usr/bin/env python3
"""Independent reference for anoswin's training masks (src/train/masking.c).

Re-implements util/rng (splitmix64-seeded xoshiro256**, Lemire's bounded integers,
Fisher-Yates) in pure Python and the window masking rule with numpy, written from the spec:

  units of `unit` px on a token grid of (H/p, W/p); a unit is brain if the fraction of brain
  pixels in it (clipped at the border) is > cover; per sample i, a permutation of the candidate
  units (brain units in unit order, or all units when none / no brain mask) is drawn from
  stream (seed, stream0 + i); the first int(n*(1-ratio)) are kept, the rest masked.

usage: ref_masking.py DIR H W PATCH UNIT RATIO COVER B SEED STREAM0 HAS_BRAIN
reads DIR/brain.f32 (B,H,W) when HAS_BRAIN=1, writes DIR/mask_ref.f32 (B, L) with 0/1.
"""
import sys
import numpy as np

M64 = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


class Rng:
    def __init__(self, seed):
        self.s = []
        x = seed & M64
        for _ in range(4):
            x, v = splitmix64(x)
            self.s.append(v)

    @classmethod
    def stream(cls, seed, stream):
        x = (seed ^ ((stream * 0xD1342543DE82EF95 + 0x632BE59BD9B4E019) & M64)) & M64
        _, v = splitmix64(x)
        return cls(v)

    def u64(self):
        s = self.s
        rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & M64
        result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def below(self, n):
        m = (self.u64() & 0xFFFFFFFF) * n
        low = m & 0xFFFFFFFF
        if low < n:
            threshold = ((1 << 32) - n) % n
            while low < threshold:
                m = (self.u64() & 0xFFFFFFFF) * n
                low = m & 0xFFFFFFFF
        return m >> 32

    def permutation(self, n):
        p = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self.below(i + 1)
            p[i], p[j] = p[j], p[i]
        return p


def main():
    d = sys.argv[1]
    H, W, P, UNIT = (int(v) for v in sys.argv[2:6])
    ratio, cover = float(sys.argv[6]), float(sys.argv[7])
    B, seed, stream0, has_brain = int(sys.argv[8]), int(sys.argv[9]), int(sys.argv[10]), int(sys.argv[11])
    lh, lw, k = H // P, W // P, UNIT // P
    uh, uw = -(-H // UNIT), -(-W // UNIT)
    brain = np.fromfile(f"{d}/brain.f32", dtype="<f4").reshape(B, H, W) > 0 if has_brain else None
    out = np.zeros((B, lh, lw), dtype=np.float32)
    for i in range(B):
        cand = list(range(uh * uw))
        if brain is not None:
            # coverage on the padded grid: pad to a multiple of UNIT, count brain and real pixels
            pad = np.zeros((uh * UNIT, uw * UNIT), dtype=np.int64)
            real = np.zeros_like(pad)
            pad[:H, :W] = brain[i]
            real[:H, :W] = 1
            inside = pad.reshape(uh, UNIT, uw, UNIT).sum(axis=(1, 3)).ravel()
            area = real.reshape(uh, UNIT, uw, UNIT).sum(axis=(1, 3)).ravel()
            b = [u for u in range(uh * uw) if float(inside[u]) > cover * float(area[u])]
            if b:
                cand = b
        n = len(cand)
        perm = Rng.stream(seed, stream0 + i).permutation(n)
        keep = int(n * (1 - ratio))
        for j in perm[keep:]:
            u = cand[j]
            r, c = u // uw, u % uw
            out[i, r * k:(r + 1) * k, c * k:(c + 1) * k] = 1  # numpy clips at the border
    out.reshape(B, lh * lw).astype("<f4").tofile(f"{d}/mask_ref.f32")


if __name__ == "__main__":
    main()
