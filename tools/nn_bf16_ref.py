#!/usr/bin/env python3
"""PyTorch references for tests/test_nn_bf16.c (bf16 rounding and the bf16 GEMM).

Usage: nn_bf16_ref.py OUTDIR

Writes raw little-endian float32 (.f32) files:
  round_in.f32 / round_out.f32   float32 values (ties, denormals, infinities, NaN, the extremes,
                                 random) and torch's .to(torch.bfloat16) of them, widened back
                                 to float32 (exact, so the C side can compare bit patterns);
  gemm<i>_{a,b,c,ref,scale,fp}.f32  for each case below: the stored operands (leading dimensions
                                 wider than the logical sizes), the initial C, the product of the
                                 bf16-rounded operands computed in float64, the per-element scale
                                 |alpha|·|A||B| + |beta·C| of its rounding error, and the product
                                 of the unrounded operands.
The cases must match the C test: the transposes the linear layers use (forward 0/1, input
gradient 0/0, weight gradient 1/0), odd sizes, K past one 256-deep block, M and N past a block,
and weight gradients with K long enough to be split over the threads.
"""
import os
import sys

import torch

torch.manual_seed(1919)
OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)

# (trans_a, trans_b, M, N, K, alpha, beta, lda pad, ldb pad, ldc pad)
CASES = [
    (0, 1, 37, 45, 67, 1.0, 0.0, 0, 0, 0),
    (0, 0, 130, 33, 301, 1.0, 1.0, 3, 1, 2),
    (1, 0, 19, 70, 1000, 1.0, 1.0, 0, 5, 0),
    (0, 1, 300, 1100, 40, 0.5, 0.25, 1, 0, 7),
    (1, 1, 9, 17, 5, 1.0, 0.0, 2, 2, 2),
    (0, 0, 1, 1, 1, 2.0, 0.0, 0, 0, 0),
    (1, 0, 96, 384, 2000, 1.0, 1.0, 0, 0, 0),
    (1, 0, 200, 45, 777, 1.0, 1.0, 4, 3, 5),
    (1, 0, 70, 33, 600, 0.5, 0.0, 0, 0, 1),
    (1, 0, 40, 90, 2500, 1.0, 0.5, 1, 2, 3),
    (1, 0, 100, 40, 2600, 1.0, 0.0, 0, 1, 0),
    (0, 1, 65, 97, 2311, 1.0, 0.5, 1, 0, 2),
]


def save(name, t):
    t.detach().cpu().contiguous().numpy().astype("<f4").tofile(os.path.join(OUT, name + ".f32"))


def bf(t):
    return t.to(torch.bfloat16).double()


# ---- rounding ---------------------------------------------------------------------------------
def from_bits(bits):
    return torch.tensor(bits, dtype=torch.int64).to(torch.int32).view(torch.float32)


special = from_bits([
    0x3F808000,  # tie, even below: rounds down
    0x3F818000,  # tie, odd below: rounds up
    0x3F808001,  # just above a tie
    0x3F807FFF,  # just below a tie
    0x7F7FFFFF,  # FLT_MAX: rounds to inf
    0x7F7F7FFF,  # largest value that stays finite
    0x00000001, 0x00008000, 0x00018000, 0x007FFFFF,  # denormals (kept, not flushed)
    0x80000001, 0x807FFFFF, 0x80000000, 0x00000000,
    0x7F800000, 0xFF800000,  # infinities
    0xBF808000, 0xBF818000,  # negative ties
])
rand = torch.cat([torch.randn(4000), torch.randn(2000) * 1e30, torch.randn(2000) * 1e-38,
                  torch.rand(2000) * 3.0e38])
vals = torch.cat([special, rand])
save("round_in", vals)
save("round_out", vals.to(torch.bfloat16).float())

# ---- GEMM -------------------------------------------------------------------------------------
for i, (ta, tb, M, N, K, alpha, beta, pa, pb, pc) in enumerate(CASES):
    ar, ac = (K, M) if ta else (M, K)
    br, bc = (N, K) if tb else (K, N)
    A = torch.randn(ar, ac + pa)
    B = torch.randn(br, bc + pb) * 0.5
    C = torch.randn(M, N + pc)
    opA = A[:, :ac].double()
    opB = B[:, :bc].double()
    opA = opA.t() if ta else opA
    opB = opB.t() if tb else opB
    bA = bf(A[:, :ac])
    bB = bf(B[:, :bc])
    bA = bA.t() if ta else bA
    bB = bB.t() if tb else bB
    ref = C.double().clone()
    ref[:, :N] = alpha * (bA @ bB) + beta * C[:, :N].double()
    fp = C.double().clone()
    fp[:, :N] = alpha * (opA @ opB) + beta * C[:, :N].double()
    scale = torch.zeros(M, N + pc, dtype=torch.float64)
    scale[:, :N] = abs(alpha) * (bA.abs() @ bB.abs()) + abs(beta) * C[:, :N].double().abs()
    for name, t in (("a", A), ("b", B), ("c", C), ("ref", ref), ("scale", scale), ("fp", fp)):
        save(f"gemm{i}_{name}", t)

# ---- window attention (the fast path's shape: head_dim 32, 7x7 windows) -------------------------
# qkv (nwin*T, 3C) with columns (3, heads, hd); bias (heads, T, T); region (nW*T) labels, -100
# between different labels of a window; out (nwin*T, C); gradients of sum(out * g).
def attention_case(prefix, NWIN, NW, T, HEADS, HD, regions):
    C = HEADS * HD
    qkv = torch.randn(NWIN * T, 3 * C).double().requires_grad_(True)
    bias = (torch.randn(HEADS, T, T) * 0.5).double().requires_grad_(True)
    region = torch.randint(0, regions, (NW * T,))
    g = torch.randn(NWIN * T, C).double()
    x = qkv.view(NWIN, T, 3, HEADS, HD).permute(2, 0, 3, 1, 4)  # (3, nwin, heads, T, hd)
    q, k, v = x[0] * HD ** -0.5, x[1], x[2]
    att = q @ k.transpose(-2, -1) + bias.unsqueeze(0)
    reg = region.view(NW, T)[torch.arange(NWIN) % NW]
    mask = (reg.unsqueeze(2) != reg.unsqueeze(1)).double() * -100.0  # (nwin, T, T)
    att = torch.softmax(att + mask.unsqueeze(1), dim=-1)
    out = (att @ v).permute(0, 2, 1, 3).reshape(NWIN * T, C)
    out.backward(g)
    for name, t in (("qkv", qkv), ("bias", bias), ("region", region.double()), ("g", g), ("out", out),
                    ("dqkv", qkv.grad), ("dbias", bias.grad)):
        save(f"{prefix}_{name}", t)


attention_case("attn", 4, 2, 49, 2, 32, 3)
# The long-window path (T > 64: the ViT's global attention, head_dim 64, one region = no mask).
attention_case("lattn", 2, 1, 80, 2, 64, 1)

# ---- convolutions under bf16 (src/nn/conv.c's products through gemm_bf16) ------------------------
# Every product of a convolution multiplies two of x, w and the output gradient g (im2col/col2im
# only copy and add), so the bf16 result is the float64 convolution of the bf16-rounded tensors:
# conv<i>_{x,w,b,g} inputs; _{y,dx,dw}_bf from the rounded x, w, g (y plus the unrounded bias);
# _{y,dx,dw}_fp from the unrounded ones; _db the bias gradient (an fp32 sum of g, never rounded).
# (transposed, B, IC, H, W, OC, k, stride, pad, out_pad): must match CONV_CASES in the C test.
CONV_CASES = [
    (0, 3, 5, 11, 9, 7, 3, 2, 1, 0),    # several images per product (30 pixels each)
    (0, 2, 40, 16, 16, 48, 3, 1, 1, 0),  # K = 360 over tile and block edges, 256 pixels an image
    (0, 1, 33, 7, 7, 20, 1, 1, 0, 0),   # pointwise, one image: the products run on the tensors
    (1, 2, 24, 8, 8, 16, 4, 2, 1, 0),   # DCGAN-style upsampling
    (1, 3, 6, 5, 7, 3, 5, 2, 2, 1),     # odd sizes, output padding
]
F = torch.nn.functional
for i, (tr, B, IC, H, W, OC, k, s, p, op) in enumerate(CONV_CASES):
    x = torch.randn(B, IC, H, W)
    w = torch.randn(*((IC, OC) if tr else (OC, IC)), k, k) * (1.0 / (IC * k * k) ** 0.5)
    b = torch.randn(OC)

    def run(xx, ww, gg):
        xx = xx.clone().requires_grad_(True)
        ww = ww.clone().requires_grad_(True)
        if tr:
            y = F.conv_transpose2d(xx, ww, None, stride=s, padding=p, output_padding=op)
        else:
            y = F.conv2d(xx, ww, None, stride=s, padding=p)
        if gg is None:
            return y
        y.backward(gg)
        return y, xx.grad, ww.grad

    g = torch.randn(run(x.double(), w.double(), None).shape)
    for tag, cast in (("bf", bf), ("fp", lambda t: t.double())):
        y, dx, dw = run(cast(x), cast(w), cast(g))
        save(f"conv{i}_y_{tag}", y + b.double().view(1, -1, 1, 1))
        save(f"conv{i}_dx_{tag}", dx)
        save(f"conv{i}_dw_{tag}", dw)
    for name, t in (("x", x), ("w", w), ("b", b), ("g", g), ("db", g.double().sum((0, 2, 3)))):
        save(f"conv{i}_{name}", t)
