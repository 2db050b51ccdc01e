#!/usr/bin/env python3
"""tools/mpi/project.py — tables of the MPI scaling note from the measurements
of tools/mpi/scaling.sh (steps.tsv, allreduce.tsv, train-mpi.txt).

    python3 tools/mpi/project.py results/<machine>/mpi-scaling

Prints Markdown: measured step times (median over rounds), the allreduce
measurements, and the projected step time and speedup on R machines.

Projection (no overlap of communication with the backward, which the
implementation does not do):

    T(R) = (T1 - Tupd) / R + Tupd + Tar(R)
    Tar(R) = 2 (R - 1) alpha + 2 (R - 1) / R * S / B      (ring allreduce)

T1: measured step time of one machine (1 process, all its cores); Tupd:
measured clipping + AdamW time per step (every rank repeats it over all
parameters, so it does not shrink with R); S: gradient bytes (4 x parameters);
alpha, B: per-message latency and bandwidth of the link.  The first row uses
this machine's measured shared-memory allreduce (alpha from the 4 KiB message,
B from the fastest call at the gradient's size); the network rows use
typical achievable figures for the link, which are assumptions, not
measurements.  The compute term assumes the batch splits evenly and a rank's
share runs R times faster — optimistic at large R, where each rank's share
of a 4096-token batch becomes a few sentences (smaller GEMMs, load imbalance).
"""
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

LINKS = [  # name, alpha (s), B (bytes/s)
    ("10 GbE (assumed 1.1 GB/s, 30 us)", 30e-6, 1.1e9),
    ("25 GbE (assumed 2.8 GB/s, 20 us)", 20e-6, 2.8e9),
    ("100 Gb/s InfiniBand (assumed 11 GB/s, 2 us)", 2e-6, 11e9),
]
RS = [2, 4, 8, 16, 32]


def main(d):
    d = Path(d)
    steps = defaultdict(list)
    for line in (d / "steps.tsv").read_text().splitlines()[1:]:
        cfg, _rnd, r, th, _n, ms = line.split("\t")
        steps[(cfg, int(r), int(th))].append(float(ms))
    ar = {}
    for line in (d / "allreduce.tsv").read_text().splitlines()[1:]:
        f = line.split("\t")
        ar[int(f[1])] = (float(f[2]) * 1e-3, float(f[3]) * 1e-3)
    upd, grad = defaultdict(list), defaultdict(list)
    for line in (d / "train-mpi.txt").read_text().splitlines():
        m = re.match(r"(\w+) n=\d+: mpi: .*?([\d.]+) ms in the gradient allreduce of (\d+) "
                     r"bytes, ([\d.]+) ms clipping", line)
        if m:
            grad[m.group(1)].append(float(m.group(2)))
            upd[m.group(1)].append(float(m.group(4)))
    params = {}
    for line in (d / "load.txt").read_text().splitlines():
        m = re.match(r"(\w+): (\d+) parameters", line)
        if m:
            params[m.group(1)] = int(m.group(2))

    print("### Measured step time (median over rounds, ms)\n")
    print("| config | parameters | 1 process x 1 thread | 1 process x 2 threads | "
          "mpirun -np 2 x 1 thread | rounds |")
    print("|---|---|---|---|---|---|")
    for cfg in ("tiny", "small", "default"):
        cells = []
        for key in ((cfg, 1, 1), (cfg, 1, 2), (cfg, 2, 1)):
            v = steps.get(key)
            cells.append("%.1f" % statistics.median(v) if v else "-")
        n = max(len(steps.get((cfg, r, t), [])) for r, t in ((1, 1), (1, 2), (2, 1)))
        print("| %s | %d | %s | %d |" % (cfg, params.get(cfg, 0), " | ".join(cells), n))

    print("\n### Per step under mpirun -np 2 (rank 0, median over runs, ms)\n")
    print("| config | gradient bytes | gradient allreduce (in training) | "
          "clipping + AdamW (1 thread) |")
    print("|---|---|---|---|")
    for cfg in ("tiny", "small", "default"):
        if cfg in grad:
            print("| %s | %d | %.2f | %.2f |" % (cfg, 4 * params[cfg],
                                                statistics.median(grad[cfg]),
                                                statistics.median(upd[cfg])))

    print("\n### MPI_Allreduce alone, 2 ranks (tools/mpi/allreduce_bench.c)\n")
    print("| bytes | median ms | fastest ms | bandwidth at fastest (GB/s) |")
    print("|---|---|---|---|")
    alpha_shm = ar[4096][0] / 2  # R = 2: 2 (R - 1) = 2 latency terms
    for s, (med, mn) in sorted(ar.items()):
        print("| %d | %.3f | %.3f | %.2f |" % (s, 1e3 * med, 1e3 * mn, s / mn / 1e9))

    print("\n### Projected step time on R machines (ms) and speedup over 1 machine\n")
    for cfg in ("small", "default"):
        if (cfg, 1, 2) not in steps or cfg not in upd:
            continue
        t1 = statistics.median(steps[(cfg, 1, 2)]) * 1e-3
        tu = statistics.median(upd[cfg]) * 1e-3
        s = 4 * params[cfg]
        links = list(LINKS)
        if s in ar:
            b_shm = s / max(ar[s][1] - 2 * alpha_shm, 1e-9)
            links.insert(0, ("this machine's shared memory, measured (%.2f GB/s, %.1f us; "
                             "2 ranks on one machine)" % (b_shm / 1e9, 1e6 * alpha_shm),
                             alpha_shm, b_shm))
        print("**%s** (T1 = %.0f ms on one machine, Tupd = %.1f ms, S = %.1f MB):\n"
              % (cfg, 1e3 * t1, 1e3 * tu, s / 1e6))
        print("| link | " + " | ".join("R = %d" % r for r in RS) + " |")
        print("|---|" + "---|" * len(RS))
        for name, a, b in links:
            cells = []
            for r in RS:
                tar = 2 * (r - 1) * a + 2 * (r - 1) / r * s / b
                tr = (t1 - tu) / r + tu + tar
                cells.append("%.0f ms, %.1fx (Tar %.0f)" % (1e3 * tr, t1 / tr, 1e3 * tar))
            print("| %s | %s |" % (name, " | ".join(cells)))
        print()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/xeon-2c/mpi-scaling")
