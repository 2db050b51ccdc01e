#!/usr/bin/python3
"""report.py — the ratios of a tools/peers/run.py result: granattn vs the best peer.

Usage: tools/peers/report.py DIR [--no-plot] [--quiet]

Reads DIR/peers.json and writes
  DIR/ratios.tsv   one row per shape, tab-separated, exactly the columns
                   N, H, T, threads, cache, ga_dense_us, ga_sparse_us, best_peer,
                   best_peer_us, frac_limit_dense
                   (medians over the interleaved rounds; best_peer: the fastest
                   peer variant whose output passed the reference check, `none`
                   if no variant did; missing numbers are `nan`)
  DIR/peers.tsv    every peer variant per shape: median us, reference error, status
  DIR/ratios.png   best peer time / granattn time vs N (dense solid, sparse dashed),
                   one panel per (T, threads, cache), one line per H (> 1: granattn faster)
and prints the table (granattn dense / sparse against the best peer per shape).
As a module (tools/summary.py, run.py): shape_row(), load(), table_rows().
Runs on Debian's python3 (matplotlib for the plot; without it the plot is skipped).
"""

import json
import math
import os
import sys

TSV_COLUMNS = ["N", "H", "T", "threads", "cache", "ga_dense_us", "ga_sparse_us", "best_peer",
               "best_peer_us", "frac_limit_dense"]


def median(values):
    v = sorted(x for x in values if x is not None and isinstance(x, (int, float))
               and math.isfinite(x))
    if not v:
        return None
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def ratio(a, b):
    return a / b if a is not None and b is not None and b > 0 else None


def shape_row(rec):
    """Medians of one shape record of peers.json, the best valid peer and the ratios."""
    g = rec.get("granattn", {})
    row = {k: rec[k] for k in ("N", "H", "T", "threads", "cache")}
    row["ga_dense_us"] = median(g.get("dense_us", []))
    row["ga_sparse_us"] = median(g.get("sparse_us", []))
    row["frac_limit_dense"] = median(g.get("frac_limit_dense", []))
    row["variants"] = {}
    best, best_us = None, None
    for key, pr in sorted(rec.get("peers", {}).items()):
        us = median(pr.get("us", []))
        row["variants"][key] = {"us": us, "err": pr.get("err"), "ok": pr.get("ok", False),
                                "wrong": pr.get("wrong", False), "why": pr.get("why")}
        if pr.get("ok") and not pr.get("wrong") and us is not None and (best_us is None or us < best_us):
            best, best_us = key, us
    row["best_peer"], row["best_peer_us"] = best, best_us
    row["x_dense"] = ratio(best_us, row["ga_dense_us"])
    row["x_sparse"] = ratio(best_us, row["ga_sparse_us"])
    return row


def load(d):
    with open(os.path.join(d, "peers.json"), encoding="utf-8") as f:
        doc = json.load(f)
    if not isinstance(doc, dict) or not isinstance(doc.get("shapes"), list):
        raise ValueError(f"{d}/peers.json: no 'shapes' list (not written by tools/peers/run.py?)")
    return doc, [shape_row(r) for r in doc["shapes"]]


def fmt_us(v):
    if v is None:
        return "-"
    return f"{v / 1000:.2f} ms" if v >= 10000 else f"{v:.1f} us"


def fmt_x(v):
    return "-" if v is None else f"{v:.2f}"


def num(v, digits=4):
    return "nan" if v is None else f"{v:.{digits}g}"


def write_tsv(d, rows):
    with open(os.path.join(d, "ratios.tsv"), "w", encoding="utf-8") as f:
        f.write("\t".join(TSV_COLUMNS) + "\n")
        for r in rows:
            f.write("\t".join([str(r["N"]), str(r["H"]), str(r["T"]), str(r["threads"]), r["cache"],
                               num(r["ga_dense_us"], 6), num(r["ga_sparse_us"], 6),
                               r["best_peer"] or "none", num(r["best_peer_us"], 6),
                               num(r["frac_limit_dense"], 4)]) + "\n")
    with open(os.path.join(d, "peers.tsv"), "w", encoding="utf-8") as f:
        f.write("N\tH\tT\tthreads\tcache\tpeer\tus\terr\tstatus\n")
        for r in rows:
            for key, v in r["variants"].items():
                st = "ok" if v["ok"] and not v["wrong"] else ("wrong" if v["wrong"] else "failed")
                f.write(f"{r['N']}\t{r['H']}\t{r['T']}\t{r['threads']}\t{r['cache']}\t{key}\t"
                        f"{num(v['us'], 6)}\t{num(v['err'], 3)}\t{st}\n")


TABLE_HEADERS = ["N", "H", "T", "thr", "cache", "granattn dense", "granattn sparse", "best peer",
                 "best peer time", "dense x", "sparse x", "frac_limit"]


def table_rows(rows):
    """Rows of the printed table (x = best peer time / granattn time: > 1 granattn faster)."""
    return [[str(r["N"]), str(r["H"]), str(r["T"]), str(r["threads"]), r["cache"],
             fmt_us(r["ga_dense_us"]), fmt_us(r["ga_sparse_us"]), r["best_peer"] or "none",
             fmt_us(r["best_peer_us"]), fmt_x(r["x_dense"]), fmt_x(r["x_sparse"]),
             "-" if r["frac_limit_dense"] is None else f"{r['frac_limit_dense']:.2f}"]
            for r in rows]


def format_table(headers, rows):
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.rjust(w) if i else c.ljust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def notes(doc, rows):
    """Lines about versions, skipped peers and variants excluded as wrong."""
    out = []
    vers = []
    for p, by_t in sorted(doc.get("peers", {}).items()):
        info = next(iter(by_t.values()), {})
        v = ", ".join(f"{k} {val}" for k, val in info.get("versions", {}).items())
        simd = info.get("simd", {})
        cap = simd.get("cpu_capability") or simd.get("default_precision") or ""
        vers.append(f"{p}: {v}" + (f" ({cap})" if p == "torch" and cap else ""))
    if vers:
        out.append("peers: " + "; ".join(vers))
    for p, why in sorted(doc.get("skipped_peers", {}).items()):
        out.append(f"skipped peer {p}: {why}")
    wrong, failed = {}, {}
    for r in rows:
        for key, v in r["variants"].items():
            if v["wrong"]:
                wrong.setdefault(key, []).append(v["err"])
            elif not v["ok"]:
                failed.setdefault(key, v["why"])
    for key, errs in sorted(wrong.items()):
        e = max((x for x in errs if x is not None and math.isfinite(x)), default=float("nan"))
        out.append(f"WRONG (excluded from best peer): {key} in {len(errs)} shapes, max err {e:.3g}")
    for key, why in sorted(failed.items()):
        out.append(f"not run: {key}: {why}")
    cfg = doc.get("config", {})
    out.append(f"x = best peer time / granattn time (> 1: granattn faster); medians of "
               f"{cfg.get('rounds')} interleaved rounds; granattn-bench isa "
               f"{doc.get('bench', {}).get('isa')}, sparse {doc.get('bench', {}).get('sparse')}")
    return out


def plot(d, rows):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report.py: matplotlib not available: no ratios.png", file=sys.stderr)
        return None
    panels = sorted({(r["T"], r["threads"], r["cache"]) for r in rows},
                    key=lambda p: (p[0], p[1], p[2] != "hot"))
    if not panels:
        return None
    cols = min(4, len(panels))
    nrows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.4 * nrows), squeeze=False)
    for ax, (T, th, cache) in zip(axes.flat, panels):
        for i, H in enumerate(sorted({r["H"] for r in rows})):
            sel = sorted((r for r in rows if (r["T"], r["threads"], r["cache"], r["H"]) ==
                          (T, th, cache, H)), key=lambda r: r["N"])
            color = f"C{i}"
            for key, style, lab in (("x_dense", "-o", "dense"), ("x_sparse", "--s", "sparse")):
                pts = [(r["N"], r[key]) for r in sel if r[key] is not None]
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], style, color=color,
                            label=f"H={H} {lab}", markersize=4)
        ax.axhline(1.0, color="gray", linewidth=0.8)
        ax.set_xscale("log", base=2)
        ax.set_title(f"T={T}, {th} thread{'s' if th > 1 else ''}, {cache}", fontsize=10)
        ax.set_xlabel("N (keys)")
        ax.set_ylabel("best peer / granattn time")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle("granattn vs the best CPU attention peer (> 1: granattn faster)", fontsize=11)
    fig.tight_layout()
    path = os.path.join(d, "ratios.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    d = argv[0]
    bad = [a for a in argv[1:] if a not in ("--no-plot", "--quiet")]
    if bad:
        print(f"report.py: unknown option {bad[0]} (try --help)", file=sys.stderr)
        return 2
    try:
        doc, rows = load(d)
    except (OSError, ValueError) as e:
        print(f"report.py: {e}", file=sys.stderr)
        return 1
    write_tsv(d, rows)
    png = None if "--no-plot" in argv else plot(d, rows)
    if "--quiet" not in argv:
        print(format_table(TABLE_HEADERS, table_rows(rows)))
        for line in notes(doc, rows):
            print(line)
        print(f"wrote {os.path.join(d, 'ratios.tsv')}" + (f", {png}" if png else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
