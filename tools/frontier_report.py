#!/usr/bin/python3
"""frontier_report.py — the report of tools/frontier.py (called by it; runs on
the .venv-eval interpreter, which has sacreBLEU; numpy and matplotlib come from
Debian through --system-site-packages).

Reads RUNS/<set>/<point>/s<seed>/{run.json, eval-dev.json, eval-test.json,
hyp-test.txt} and writes into RESULTS:
  points.tsv      one row per run, test split: method mode set param seed density bleu chrf
  points-dev.tsv  the same on the dev split (every choice below is made on it)
  tests.tsv       set density_band baseline delta_bleu p_value verdict (+ the two points,
                  their dev/test densities and delta_chrf in extra columns)
  dense-cross.tsv the sentence-level and the passage-level dense model on the passage test
  frontier-bleu.png, frontier-chrf.png   mean +- sd over seeds vs density, per set
  gpn-analysis.tsv, gpn-analysis.png     what the GPN learned (see analysis())

Bands (dev density): [0, .05) [.05, .1) [.1, .15) [.15, .2) [.2, .3) [.3, .4)
[.4, .5) [.5, .7) [.7, 1].  Per set and band: the learned point with the best
mean dev BLEU in the band (seed or renorm mode) against, per baseline method
(fixed, random, topk), its point closest in mean dev density, if within
max(0.02, 0.2 x the learned density) of it (else "no point").  Test:
sacreBLEU's paired bootstrap (1000 resamples, seed 12345) of the two systems'
test outputs concatenated over the seeds (seed s of one with seed s of the
other, the references repeated), two-sided; delta_bleu = BLEU(learned) -
BLEU(baseline) of those concatenations.  Verdict: better / worse when p < 0.05
(by the sign of delta), else equivalent (no significant difference; also
when delta is exactly 0, where the bootstrap's p is degenerate).
"""

import argparse
import json
import math
import os
import struct
import subprocess
import sys
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BANDS = [0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0000001]
BASELINES = ("fixed", "random", "topk")
# a baseline point matches a learned one when their mean dev densities differ
# by at most max(MATCH_ABS, MATCH_REL * the learned density)
MATCH_ABS, MATCH_REL = 0.02, 0.2


def band_of(d):
    for lo, hi in zip(BANDS, BANDS[1:]):
        if lo <= d < hi:
            return "%.2f-%.2f" % (lo, min(hi, 1.0))
    return "?"


def point_name(spec):
    """tools/frontier.py's directory name of a point spec."""
    p = spec.split(":")
    if p[0] == "dense":
        return p[0]
    return "%s-%s-%s%s" % (p[0], p[1], p[2].replace("@", "m."), "-gumbel" if p[3:] == ["gumbel"] else "")


def mean(x):
    return sum(x) / len(x) if x else float("nan")


def sd(x):
    if len(x) < 2:
        return 0.0
    m = mean(x)
    return math.sqrt(sum((v - m) ** 2 for v in x) / (len(x) - 1))


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().split("\n")[:-1]


# ------------------------------------------------------------ collection
def collect(a):
    """rows: dicts with set, point, method, mode, param, seed, dev, test (eval JSONs)."""
    rows = []
    for s in a.sets:
        for spec in a.points:
            name = point_name(spec)
            for sd_ in a.seeds:
                d = os.path.join(a.runs, s, name, "s%d" % sd_)
                if not os.path.exists(os.path.join(d, "done")):
                    print("frontier_report: %s not finished (skipped)" % d, file=sys.stderr)
                    continue
                r = json.load(open(os.path.join(d, "run.json")))
                r["dir"] = d
                r["dev"] = json.load(open(os.path.join(d, "eval-dev.json")))
                r["test"] = json.load(open(os.path.join(d, "eval-test.json")))
                cross = os.path.join(d, "eval-passage-test.json")
                r["cross"] = json.load(open(cross)) if os.path.exists(cross) else None
                rows.append(r)
    return rows


def write_points(a, rows, split, path):
    with open(path, "w") as f:
        f.write("method\tmode\tset\tparam\tseed\tdensity\tbleu\tchrf\n")
        for r in rows:
            e = r[split]
            f.write("%s\t%s\t%s\t%s\t%d\t%.6f\t%.4f\t%.4f\n" % (
                r["method"], r["mode"], r["set"], r["param"], r["seed"], e["density"], e["bleu"],
                e["chrf"]))


def by_point(rows, s):
    out = {}
    for r in rows:
        if r["set"] == s:
            out.setdefault(r["point"], []).append(r)
    return out


# ---------------------------------------------------------- significance
def paired(a, sys_rows, base_rows, refs):
    """sacreBLEU paired bootstrap of two systems (seed-aligned, concatenated)."""
    from sacrebleu.metrics import BLEU, CHRF
    from sacrebleu.significance import PairedTest
    seeds = sorted(set(r["seed"] for r in sys_rows) & set(r["seed"] for r in base_rows))
    hs, hb, rr = [], [], []
    for sd_ in seeds:
        x = [r for r in sys_rows if r["seed"] == sd_][0]
        y = [r for r in base_rows if r["seed"] == sd_][0]
        hs += read_lines(os.path.join(x["dir"], x.get("hyp", "hyp-test.txt")))
        hb += read_lines(os.path.join(y["dir"], y.get("hyp", "hyp-test.txt")))
        rr += refs
    if not (len(hs) == len(hb) == len(rr)):
        raise RuntimeError("hypothesis / reference lengths differ (%d, %d, %d)"
                           % (len(hs), len(hb), len(rr)))
    os.environ.setdefault("SACREBLEU_SEED", "12345")
    pt = PairedTest([("baseline", hb), ("learned", hs)], {"BLEU": BLEU(), "chrF": CHRF()}, [rr],
                    test_type="bs", n_samples=1000)
    _, res = pt()
    # res: {"System": names, metric name ("BLEU", "chrF2"): [baseline, learned] Results}
    bleu, chrf = [res[k] for k in res if k != "System"]
    return {"delta_bleu": bleu[1].score - bleu[0].score, "p_bleu": bleu[1].p_value,
            "delta_chrf": chrf[1].score - chrf[0].score, "p_chrf": chrf[1].p_value,
            "seeds": len(seeds)}


def refs_of(a, s):
    if a.toy:
        return read_lines(os.path.join(a.runs, "toydata", s, "test.es"))
    return read_lines(os.path.join(ROOT, "data", "corpus" if s == "sentence" else "windows", "test.es"))


def tests(a, rows, path):
    out = []
    for s in a.sets:
        pts = by_point(rows, s)
        refs = refs_of(a, s)
        dev_d = {n: mean([r["dev"]["density"] for r in v]) for n, v in pts.items()}
        dev_b = {n: mean([r["dev"]["bleu"] for r in v]) for n, v in pts.items()}
        meth = {n: v[0]["method"] for n, v in pts.items()}
        bands = sorted(set(band_of(dev_d[n]) for n in pts if meth[n] == "learned"))
        for b in bands:
            learned = [n for n in pts if meth[n] == "learned" and band_of(dev_d[n]) == b]
            ln = max(learned, key=lambda n: dev_b[n])
            for base in BASELINES:
                cand = [n for n in pts if meth[n] == base and
                        abs(dev_d[n] - dev_d[ln]) <= max(MATCH_ABS, MATCH_REL * dev_d[ln])]
                if not cand:
                    out.append([s, b, base, "NA", "NA", "no point", ln, "-", "%.4f" % dev_d[ln],
                                "-", "NA", "NA"])
                    continue
                bn = min(cand, key=lambda n: abs(dev_d[n] - dev_d[ln]))
                t = paired(a, pts[ln], pts[bn], refs)
                v = "equivalent"
                if t["p_bleu"] < 0.05 and t["delta_bleu"] != 0.0:
                    v = "better" if t["delta_bleu"] > 0 else "worse"
                out.append([s, b, base, "%.4f" % t["delta_bleu"], "%.4f" % t["p_bleu"], v, ln, bn,
                            "%.4f" % dev_d[ln], "%.4f" % dev_d[bn],
                            "%.4f" % t["delta_chrf"], "%.4f" % t["p_chrf"]])
    with open(path, "w") as f:
        f.write("set\tdensity_band\tbaseline\tdelta_bleu\tp_value\tverdict\tlearned_point\t"
                "baseline_point\tlearned_dev_density\tbaseline_dev_density\tdelta_chrf\tp_chrf\n")
        for r in out:
            f.write("\t".join(map(str, r)) + "\n")
    return out


def dense_cross(a, rows, path):
    """Sentence-level vs passage-level dense model on the passage test."""
    sent = [r for r in rows if r["set"] == "sentence" and r["method"] == "dense" and r["cross"]]
    pas = [r for r in rows if r["set"] == "passage" and r["method"] == "dense"]
    with open(path, "w") as f:
        f.write("model\tseed\ttest_set\tdensity\tbleu\tchrf\n")
        for r in sent:
            e = r["cross"]
            f.write("sentence-dense\t%d\tpassage\t%.6f\t%.4f\t%.4f\n" % (r["seed"], e["density"], e["bleu"], e["chrf"]))
        for r in pas:
            e = r["test"]
            f.write("passage-dense\t%d\tpassage\t%.6f\t%.4f\t%.4f\n" % (r["seed"], e["density"], e["bleu"], e["chrf"]))
        if sent and pas:
            cs = [dict(r, hyp="hyp-passage-test.txt") for r in sent]
            t = paired(a, pas, cs, refs_of(a, "passage"))
            f.write("# passage-dense minus sentence-dense: delta_bleu %.4f (p %.4f), delta_chrf %.4f "
                    "(p %.4f), paired bootstrap over %d seeds\n"
                    % (t["delta_bleu"], t["p_bleu"], t["delta_chrf"], t["p_chrf"], t["seeds"]))


# ------------------------------------------------------------------ plots
STYLE = {"dense": ("k", "*"), "learned": ("C0", "o"), "fixed": ("C1", "s"), "random": ("C2", "^"),
         "topk": ("C3", "D")}


def plots(a, rows):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    for metric in ("bleu", "chrf"):
        fig, axes = plt.subplots(1, len(a.sets), figsize=(6.5 * len(a.sets), 4.6), squeeze=False)
        for ax, s in zip(axes[0], a.sets):
            pts = by_point(rows, s)
            groups = {}
            for n, v in pts.items():
                groups.setdefault((v[0]["method"], v[0]["mode"]), []).append(v)
            for (m, mode), vs in sorted(groups.items()):
                xs = sorted(([mean([r["test"]["density"] for r in v]), sd([r["test"]["density"] for r in v]),
                              mean([r["test"][metric] for r in v]), sd([r["test"][metric] for r in v])]
                             for v in vs))
                col, mk = STYLE[m]
                ax.errorbar([x[0] for x in xs], [x[2] for x in xs], xerr=[x[1] for x in xs],
                            yerr=[x[3] for x in xs], color=col, marker=mk, capsize=3,
                            linestyle="-" if mode != "renorm" else "--",
                            label=m if m == "dense" else "%s (%s)" % (m, mode))
            ax.set_xlabel("cross-attention density (test, decoded)")
            ax.set_ylabel("%s (test)" % ("BLEU" if metric == "bleu" else "chrF"))
            ax.set_title("%s set: mean ± sd over %d seeds" % (s, len(a.seeds)))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(a.results, "frontier-%s.png" % metric), dpi=110)
        plt.close(fig)


# ---------------------------------------------------------------- analysis
def read_trace(path):
    """A .gatrace file (include/granattn_trace.h) as numpy arrays."""
    import numpy as np
    b = open(path, "rb").read()
    if b[:8] != b"GATRACE1" or struct.unpack_from("<I", b, len(b) - 4)[0] != zlib.crc32(b[:-4]):
        raise RuntimeError("%s: not a valid trace file" % path)
    H, N, dh, T, L, mode, layer, _ = struct.unpack_from("<8i", b, 8)
    tau = np.frombuffer(b, "<f4", 8, 40)
    o = 72
    Q = np.frombuffer(b, "<f4", T * H * dh, o).reshape(T, H, dh)
    o += 4 * T * H * dh
    K = np.frombuffer(b, "<f4", H * N * dh, o).reshape(H, N, dh)
    o += 4 * H * N * dh * 2 + 4 * N
    lev = np.frombuffer(b, "u1", T * N, o).reshape(T, N)
    return {"H": H, "N": N, "dh": dh, "T": T, "L": L, "layer": layer, "tau": tau[:L], "Q": Q,
            "K": K, "lev": lev}


def token_types(a, ids):
    """Per source id: eos | punct | word (starts a word) | subword | token (toy)."""
    if a.toy:
        return ["eos" if i == 3 else "token" for i in ids]
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=os.path.join(ROOT, "data", "spm", "spm.model"))
    out = []
    for i in ids:
        if i == 3:
            out.append("eos")
            continue
        p = sp.id_to_piece(int(i))
        core = p.lstrip("\u2581")
        if core and all(not c.isalnum() for c in core):
            out.append("punct")
        else:
            out.append("word" if p.startswith("\u2581") else "subword")
    return out


def spearman(x, y):
    import numpy as np

    def rank(v):
        order = np.argsort(v, kind="mergesort")
        r = np.empty(len(v))
        r[order] = np.arange(len(v))
        # average ranks of ties
        vs = v[order]
        i = 0
        while i < len(vs):
            j = i
            while j + 1 < len(vs) and vs[j + 1] == vs[i]:
                j += 1
            r[order[i:j + 1]] = (i + j) / 2.0
            i = j + 1
        return r
    rx, ry = rank(np.asarray(x, float)), rank(np.asarray(y, float))
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def analysis(a, rows):
    """Per set: the learned point with the best mean dev BLEU (seed mode
    first; seed 1's checkpoint) traced teacher-forced on the first N test
    sentences (granattn inspect --dump-trace); per decoder layer: the level
    mix by relative source position and by token type, the mean score gap
    to the row max (head mean of m_h - s_hi) per level and its Spearman
    correlation with the level, and where the learned rule and the fixed
    rule at the matched tau (fixed:MODE:@that point, when run) disagree."""
    import numpy as np
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    binpath = os.environ.get("GRANATTN_BIN") or os.path.join(ROOT, "build", "model", "granattn")
    tsv, figs = [], []
    for s in a.sets:
        pts = by_point(rows, s)
        learned = [n for n, v in pts.items() if v[0]["method"] == "learned"]
        if not learned:
            continue
        ln = max(learned, key=lambda n: (pts[n][0]["mode"] == "seed", mean([r["dev"]["bleu"] for r in pts[n]])))
        run = sorted(pts[ln], key=lambda r: r["seed"])[0]
        ck = os.path.join(run["dir"], "last.ckpt")
        if not os.path.exists(ck):
            print("frontier_report: %s: no checkpoint (--keep-ckpt none): no GPN analysis" % ck, file=sys.stderr)
            continue
        tdir = os.path.join(a.runs, "analysis", s)
        os.makedirs(tdir, exist_ok=True)
        if a.toy:
            src_ids, tgt_ids = toy_ids(a, s, tdir)
        else:
            d = os.path.join(ROOT, "data", "tok" if s == "sentence" else "windows/tok")
            src_ids, tgt_ids = os.path.join(d, "test.en.ids"), os.path.join(d, "test.es.ids")
        done = os.path.join(tdir, "traced-%s" % ln)
        if not os.path.exists(done):
            for f in os.listdir(tdir):
                if f.endswith(".gatrace"):
                    os.remove(os.path.join(tdir, f))
            cmd = [binpath, "inspect", "--model", ck, "--input", src_ids, "--ref", tgt_ids, "--id-files",
                   "--max-sents", str(a.analysis_sents), "--dump-trace", tdir, "--name", "t"]
            if subprocess.call(cmd, cwd=ROOT, stdout=subprocess.DEVNULL) != 0:
                print("frontier_report: inspect failed for %s" % ck, file=sys.stderr)
                continue
            open(done, "w").close()
        # matched fixed tau of this learned point (if run)
        tau_fix = None
        mf = os.path.join(a.runs, s, "fixed-%s-m.%s" % (run["mode"].split("+")[0], ln), "match.json")
        if os.path.exists(mf):
            tau_fix = json.load(open(mf)).get("tau")
        srcs = [list(map(int, l.split())) for l in read_lines(src_ids)][:a.analysis_sents]
        layers = {}
        for k, src in enumerate(srcs):
            ids = src + [3]
            types = token_types(a, ids)
            l = 0
            while os.path.exists(os.path.join(tdir, "t-s%d-l%d.gatrace" % (k, l))):
                tr = read_trace(os.path.join(tdir, "t-s%d-l%d.gatrace" % (k, l)))
                st = layers.setdefault(l, {"pos": np.zeros((5, tr["L"])), "type": {}, "gap": [], "lev": [],
                                           "dis": np.zeros(4), "rows": 0, "tau": tr["tau"]})
                N, T, L = tr["N"], tr["T"], tr["L"]
                S = np.einsum("thd,hnd->htn", tr["Q"], tr["K"]) / math.sqrt(tr["dh"])
                m = S.max(axis=2, keepdims=True)
                gap = (m - S).mean(axis=0)  # [T][N]
                lev = tr["lev"].astype(int)
                rel = np.minimum((np.arange(N) * 5) // max(N, 1), 4)
                for t in range(T):
                    for i in range(N):
                        st["pos"][rel[i], lev[t, i]] += 1
                        st["type"].setdefault(types[i] if i < len(types) else "?", np.zeros(L))[lev[t, i]] += 1
                st["gap"].append(gap.ravel())
                st["lev"].append(lev.ravel())
                if tau_fix is not None:
                    r = np.exp(-(m - S))  # a_i / a_max  [H][T][N]
                    a_w = np.exp(S - m)
                    a_w = a_w / a_w.sum(axis=2, keepdims=True)
                    keep_l = r >= tr["tau"][lev][None, :, :]
                    keep_f = r >= tau_fix
                    st["dis"] += [np.mean(keep_l != keep_f), (a_w * (keep_l & ~keep_f)).sum(axis=2).mean(),
                                  (a_w * (keep_f & ~keep_l)).sum(axis=2).mean(), 1]
                st["rows"] += T
                l += 1
        for l, st in sorted(layers.items()):
            g, lv = np.concatenate(st["gap"]), np.concatenate(st["lev"])
            mix = st["pos"].sum(axis=0) / st["pos"].sum()
            gl = ["%.3f" % g[lv == k].mean() if (lv == k).any() else "NA" for k in range(len(mix))]
            dis = st["dis"] / st["dis"][3] if st["dis"][3] else None
            tsv.append([s, ln, l, "/".join("%.3f" % x for x in mix), "/".join(gl), "%.3f" % spearman(lv, g),
                        "%.4f" % dis[0] if dis is not None else "NA",
                        "%.4f" % dis[1] if dis is not None else "NA",
                        "%.4f" % dis[2] if dis is not None else "NA",
                        "%.6g" % tau_fix if tau_fix is not None else "NA"]
                       + ["%s:%s" % (k, "/".join("%.2f" % x for x in v / v.sum()))
                          for k, v in sorted(st["type"].items())])
        figs.append((s, ln, layers, tau_fix))
    with open(os.path.join(a.results, "gpn-analysis.tsv"), "w") as f:
        f.write("set\tpoint\tlayer\tlevel_mix\tmean_gap_per_level\tspearman_level_gap\t"
                "fixed_disagree_frac\tmass_learned_only\tmass_fixed_only\ttau_fixed\tmix_by_token_type...\n")
        for r in tsv:
            f.write("\t".join(map(str, r)) + "\n")
    if not figs:
        return
    fig, axes = plt.subplots(len(figs), 4, figsize=(20, 4 * len(figs)), squeeze=False)
    for row, (s, ln, layers, tau_fix) in zip(axes, figs):
        nl = len(layers)
        L = len(next(iter(layers.values()))["tau"]) if layers else 0
        names = ["coarse", "medium", "fine"] + ["level %d" % k for k in range(3, 8)]
        # (a) level mix by relative source position, per layer
        w = 0.8 / max(nl, 1)
        for l, st in sorted(layers.items()):
            p = st["pos"] / np.maximum(st["pos"].sum(axis=1, keepdims=True), 1)
            bottom = np.zeros(5)
            for k in range(L):
                row[0].bar(np.arange(5) + l * w, p[:, k], w, bottom=bottom, color="C%d" % k,
                           label=names[k] if l == 0 else None, edgecolor="white", linewidth=0.3)
                bottom += p[:, k]
        row[0].set_xticks(np.arange(5) + w * (nl - 1) / 2)
        row[0].set_xticklabels(["0-20%", "20-40%", "40-60%", "60-80%", "80-100%"])
        row[0].set_title("%s: %s, level mix by source position\n(bars: decoder layers 0..%d)" % (s, ln, nl - 1))
        row[0].legend(fontsize=8)
        # (b) level mix by token type
        types = sorted(set(k for st in layers.values() for k in st["type"]))
        for l, st in sorted(layers.items()):
            bottom = np.zeros(len(types))
            for k in range(L):
                v = np.array([st["type"].get(t, np.zeros(L))[k] / max(st["type"].get(t, np.ones(L)).sum(), 1)
                              for t in types])
                row[1].bar(np.arange(len(types)) + l * w, v, w, bottom=bottom, color="C%d" % k,
                           edgecolor="white", linewidth=0.3)
                bottom += v
        row[1].set_xticks(np.arange(len(types)) + w * (nl - 1) / 2)
        row[1].set_xticklabels(types)
        row[1].set_title("level mix by source token type")
        # (c) score gap to the row max by level
        for l, st in sorted(layers.items()):
            g, lv = np.concatenate(st["gap"]), np.concatenate(st["lev"])
            ys = [g[lv == k].mean() if (lv == k).any() else np.nan for k in range(L)]
            row[2].plot(range(L), ys, marker="o", label="layer %d (Spearman %.2f)" % (l, spearman(lv, g)))
        if tau_fix:
            row[2].axhline(-math.log(tau_fix), color="k", linestyle=":", label="fixed rule: gap = -ln tau %.3g" % tau_fix)
        row[2].set_xticks(range(L))
        row[2].set_xticklabels(names[:L])
        row[2].set_ylabel("mean score gap to the row max (head mean)")
        row[2].set_title("chosen level vs score gap")
        row[2].legend(fontsize=8)
        # (d) where the learned rule and the matched fixed rule disagree
        if tau_fix is None:
            row[3].text(0.5, 0.5, "no matched fixed point\n(fixed:MODE:@%s not run)" % ln,
                        ha="center", va="center", transform=row[3].transAxes)
            row[3].set_axis_off()
            continue
        ls = sorted(layers)
        dis = [layers[l]["dis"] / max(layers[l]["dis"][3], 1) for l in ls]
        x = np.arange(len(ls))
        row[3].bar(x - 0.27, [d[0] for d in dis], 0.27, label="(query, head, key) decisions that differ")
        row[3].bar(x, [d[1] for d in dis], 0.27, label="weight kept by learned only (per row)")
        row[3].bar(x + 0.27, [d[2] for d in dis], 0.27, label="weight kept by fixed only (per row)")
        row[3].set_xticks(x)
        row[3].set_xticklabels(["layer %d" % l for l in ls])
        row[3].set_title("learned rule vs fixed tau %.3g (matched density)" % tau_fix)
        row[3].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(a.results, "gpn-analysis.png"), dpi=100)
    plt.close(fig)


def toy_ids(a, s, tdir):
    """Source / reference id files of the toy test split (for inspect --id-files)."""
    from_bin = os.path.join(a.runs, "toydata", s, "test.bin")
    b = open(from_bin, "rb").read()
    n = struct.unpack_from("<I", b, 8)[0]
    off, src, tgt = 16, [], []
    for _ in range(n):
        k = struct.unpack_from("<H", b, off)[0]
        src.append(list(struct.unpack_from("<%dH" % k, b, off + 2)))
        off += 2 + 2 * k
        k = struct.unpack_from("<H", b, off)[0]
        tgt.append(list(struct.unpack_from("<%dH" % k, b, off + 2)))
        off += 2 + 2 * k
    ps, pt = os.path.join(tdir, "src.ids"), os.path.join(tdir, "tgt.ids")
    with open(ps, "w") as f:
        f.write("".join(" ".join(str(i) for i in x if i not in (0, 2, 3)) + "\n" for x in src))
    with open(pt, "w") as f:
        f.write("".join(" ".join(str(i) for i in x if i not in (0, 2, 3)) + "\n" for x in tgt))
    return ps, pt


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--sets", required=True)
    ap.add_argument("--seeds", required=True)
    ap.add_argument("--points", required=True)
    ap.add_argument("--trunks", default="")
    ap.add_argument("--beam", type=int, default=4)
    ap.add_argument("--analysis-sents", type=int, default=200)
    ap.add_argument("--passage-max-len", type=int, default=640)
    ap.add_argument("--toy", action="store_true")
    ap.add_argument("--no-analysis", action="store_true")
    a = ap.parse_args()
    a.sets = a.sets.split(",")
    a.seeds = [int(x) for x in a.seeds.split(",")]
    a.points = a.points.split(",")
    os.makedirs(a.results, exist_ok=True)
    rows = collect(a)
    if not rows:
        print("frontier_report: no finished runs under %s" % a.runs, file=sys.stderr)
        return 1
    write_points(a, rows, "test", os.path.join(a.results, "points.tsv"))
    write_points(a, rows, "dev", os.path.join(a.results, "points-dev.tsv"))
    t = tests(a, rows, os.path.join(a.results, "tests.tsv"))
    dense_cross(a, rows, os.path.join(a.results, "dense-cross.tsv"))
    plots(a, rows)
    if not a.no_analysis:
        analysis(a, rows)
    print("frontier_report: %d runs; %d tests (%s); wrote %s" % (
        len(rows), len(t), ", ".join("%s %s %s: %s" % (r[0], r[1], r[2], r[5]) for r in t), a.results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
