#!/usr/bin/env python3
"""Independent PNG decoder (zlib + the PNG filter rules, no libpng) for the tests.

usage: png_decode.py IN.png OUT.f32
       png_decode.py --encode IN.f32 W H CHANNELS DEPTH OUT.png   (the other direction)
Writes the decoded samples as raw little-endian float32 (h, w, channels), in the file's own
units (0..255 or 0..65535), and prints "w h channels depth" on stdout.
Supports non-interlaced grey / grey+alpha / RGB / RGBA at 8 or 16 bits (what anoswin writes).
"""
import struct
import sys
import zlib

import numpy as np


def decode(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise SystemExit(f"{path}: not a PNG")
    pos, idat, hdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        crc = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise SystemExit(f"{path}: bad CRC in {kind!r}")
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = hdr
    if interlace:
        raise SystemExit("interlaced PNG not supported")
    channels = {0: 1, 4: 2, 2: 3, 6: 4}[ctype]
    bpp = channels * depth // 8
    stride = w * bpp
    raw = zlib.decompress(idat)
    out = np.zeros((h, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.uint8)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = np.frombuffer(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)], dtype=np.uint8)
        if f == 0:
            cur = line.copy()
        elif f == 1:  # Sub: a running sum per byte of the pixel, modulo 256
            cur = (np.cumsum(line.reshape(w, bpp).astype(np.int64), axis=0) & 0xFF).astype(np.uint8).reshape(-1)
        elif f == 2:  # Up
            cur = ((line.astype(np.int64) + prev) & 0xFF).astype(np.uint8)
        elif f in (3, 4):  # Average and Paeth depend on the byte just decoded: one byte at a time
            cur = bytearray(stride)
            ln, pv = line.tobytes(), prev.tobytes()
            for x in range(stride):
                a = cur[x - bpp] if x >= bpp else 0
                b = pv[x]
                if f == 3:
                    p = (a + b) // 2
                else:
                    c = pv[x - bpp] if x >= bpp else 0
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if (pa <= pb and pa <= pc) else (b if pb <= pc else c)
                cur[x] = (ln[x] + p) & 0xFF
            cur = np.frombuffer(bytes(cur), dtype=np.uint8)
        else:
            raise SystemExit(f"bad filter {f}")
        out[y] = cur
        prev = cur
    if depth == 16:
        vals = out.reshape(h, w * channels, 2).astype(np.uint32)
        vals = (vals[..., 0] << 8) | vals[..., 1]
    else:
        vals = out
    return vals.reshape(h, w, channels).astype(np.float32), (w, h, channels, depth)


def encode(src, w, h, channels, depth, dst):
    vals = np.fromfile(src, dtype="<f4").reshape(h, w * channels)
    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    vals = np.rint(vals).astype(np.uint32)
    if depth == 16:
        b = np.stack([(vals >> 8) & 0xFF, vals & 0xFF], axis=-1).reshape(h, -1).astype(np.uint8)
    else:
        b = vals.astype(np.uint8)
    raw = b"".join(b"\x00" + row.tobytes() for row in b)

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    open(dst, "wb").write(png)


if __name__ == "__main__":
    if sys.argv[1] == "--encode":
        src, w, h, c, d, dst = sys.argv[2:8]
        encode(src, int(w), int(h), int(c), int(d), dst)
        sys.exit(0)
    arr, (w, h, c, d) = decode(sys.argv[1])
    arr.astype("<f4").tofile(sys.argv[2])
    print(w, h, c, d)
