#!/usr/bin/python3
"""trace-subset.py — the first target steps of a .gatrace file as a new,
valid .gatrace (include/granattn_trace.h): every key (K, V, bias: N
unchanged), Q and levels cut to the first --steps rows, CRC recomputed.
For small committed samples of big traces (results/traces/).

  tools/trace-subset.py IN.gatrace OUT.gatrace --steps 256
"""
import argparse
import struct
import sys
import zlib

ap = argparse.ArgumentParser(description="Keep the first STEPS target steps of a trace file.")
ap.add_argument("inp")
ap.add_argument("out")
ap.add_argument("--steps", type=int, required=True, help="target steps to keep (>= 0)")
a = ap.parse_args()
b = open(a.inp, "rb").read()
if b[:8] != b"GATRACE1" or len(b) < 76:
    sys.exit("trace-subset: %s is not a trace file" % a.inp)
H, N, dh, T, L, mode, layer, res = struct.unpack_from("<8i", b, 8)
size = 72 + 4 * (T * H * dh + 2 * H * N * dh + N) + T * N + 4
if min(H, N, dh, T) < 0 or len(b) != size:
    sys.exit("trace-subset: %s: %d bytes, header says %d" % (a.inp, len(b), size))
if struct.unpack_from("<I", b, size - 4)[0] != zlib.crc32(b[:-4]):
    sys.exit("trace-subset: %s: CRC mismatch" % a.inp)
k = max(0, min(a.steps, T))
q0 = 72
kv0 = q0 + 4 * T * H * dh
lev0 = kv0 + 4 * (2 * H * N * dh + N)
out = bytearray(b[:8])
out += struct.pack("<8i", H, N, dh, k, L, mode, layer, res)
out += b[40:72]
out += b[q0:q0 + 4 * k * H * dh]
out += b[kv0:lev0]
out += b[lev0:lev0 + k * N]
out += struct.pack("<I", zlib.crc32(bytes(out)))
open(a.out, "wb").write(out)
print("%s: T %d -> %d, N %d, %d bytes" % (a.out, T, k, N, len(out)))
