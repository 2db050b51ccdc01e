#!/usr/bin/python3
"""inspect_map.py — render granularity maps from `granattn inspect` output.

Reads the JSON written by `granattn inspect` (per decoder layer: the level of
every (target step, source token) pair and every head's attention weights)
and draws, per decoder layer, a source x target grid: each cell is coloured
by its granularity level (coarse / medium / fine ... in distinct hues), and
the attention weight (mean over heads) is shown as the cell's opacity, with
a dot on the pairs whose weight was dropped by every head. Writes
OUT/map-layerN.png plus OUT/map.png (all layers side by side).

Token labels come from the SentencePiece model (--spm); without it the ids
are shown.

JSON fields used: src_ids [S], tgt_ids [T], L, tau [L], dense, layers[k]:
{layer, density, levels [T][S], weights [H][T][S]}.

Usage:  tools/inspect_map.py inspect-out/inspect.json --out inspect-out
"""

import argparse
import json
import os
import sys


def fail(msg):
    """Print an error and exit with status 1."""
    print("inspect_map.py: error: %s" % msg, file=sys.stderr)
    sys.exit(1)


def load(path):
    """The inspect JSON, with its shapes checked."""
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except OSError as e:
        fail("cannot read %s: %s" % (path, e.strerror))
    except ValueError as e:
        fail("%s is not valid JSON: %s" % (path, e))
    for key in ("src_ids", "tgt_ids", "layers", "L", "tau"):
        if key not in d:
            fail("%s: missing field %r (not a `granattn inspect` file?)"
                 % (path, key))
    S, T = len(d["src_ids"]), len(d["tgt_ids"])
    for ly in d["layers"]:
        lev, w = ly.get("levels"), ly.get("weights")
        if (lev is None or len(lev) != T or any(len(r) != S for r in lev)
                or w is None or any(len(h) != T for h in w)
                or any(len(r) != S for h in w for r in h)):
            fail("%s: layer %s has levels/weights of the wrong shape "
                 "(expected [%d][%d] and [H][%d][%d])"
                 % (path, ly.get("layer"), T, S, T, S))
    return d


def labels(ids, spm_path):
    """Subword pieces for the ids ('▁' marks a word start), or the ids."""
    if spm_path and os.path.exists(spm_path):
        try:
            import sentencepiece as spm
            sp = spm.SentencePieceProcessor(model_file=spm_path)
            return [sp.id_to_piece(i) for i in ids]
        except ImportError:
            pass
    return [str(i) for i in ids]


LEVEL_COLOURS = ["#d62728", "#ff7f0e", "#2ca02c", "#1f77b4", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f"]


def level_name(level, L, tau):
    """'coarse (tau 0.1)' style label."""
    names = {3: ["coarse", "medium", "fine"], 2: ["coarse", "fine"]}.get(L)
    name = names[level] if names else "level %d" % level
    return "%s (τ=%g)" % (name, tau[level])


def draw_layer(ax, d, ly, src_lab, tgt_lab, np, mcolors):
    """One layer's map on axes ax."""
    L, tau = d["L"], d["tau"]
    lev = np.array(ly["levels"], dtype=int)            # [T][S]
    w = np.array(ly["weights"], dtype=float)           # [H][T][S]
    wm = w.mean(axis=0)                                # [T][S]
    T, S = lev.shape
    rgba = np.zeros((T, S, 4))
    peak = wm.max(axis=1, keepdims=True)
    peak[peak <= 0] = 1.0
    alpha = 0.12 + 0.88 * np.sqrt(wm / peak)           # per-row scale, visible floor
    for level in range(L):
        rgb = mcolors.to_rgb(LEVEL_COLOURS[level % len(LEVEL_COLOURS)])
        mask = lev == level
        rgba[mask, :3] = rgb
    if d.get("dense"):
        rgba[..., :3] = mcolors.to_rgb("#555555")
    rgba[..., 3] = alpha
    ax.imshow(rgba, aspect="auto", interpolation="nearest")
    dropped = (w > 0).sum(axis=0) == 0                 # no head kept the key
    ys, xs = np.nonzero(dropped)
    ax.scatter(xs, ys, s=4, c="black", marker=".", linewidths=0)
    ax.set_xticks(range(S))
    ax.set_xticklabels(src_lab, rotation=90, fontsize=7)
    ax.set_yticks(range(T))
    ax.set_yticklabels(tgt_lab, fontsize=7)
    ax.set_xlabel("source (English)")
    ax.set_ylabel("output (Spanish)")
    title = "decoder layer %d" % ly.get("layer", 0)
    if "density" in ly:
        title += " — density %.2f" % ly["density"]
    if not d.get("dense"):
        counts = [(lev == level).mean() for level in range(L)]
        title += "\nlevels " + "/".join("%.0f%%" % (100 * c) for c in counts)
    ax.set_title(title, fontsize=9)


def main():
    """Command-line entry point."""
    p = argparse.ArgumentParser(
        description="Render granularity maps (PNG) from `granattn inspect` "
                    "JSON.")
    p.add_argument("json", help="inspect.json written by granattn inspect")
    p.add_argument("--out", help="output directory (default: the JSON's)")
    p.add_argument("--spm", default=os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        "data", "spm", "spm.model"),
        help="SentencePiece model for token labels (default: "
             "data/spm/spm.model)")
    p.add_argument("--dpi", type=int, default=130)
    args = p.parse_args()
    d = load(args.json)
    out = args.out or os.path.dirname(os.path.abspath(args.json))
    os.makedirs(out, exist_ok=True)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.colors as mcolors
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch
        import numpy as np
    except ImportError as e:
        fail("matplotlib/numpy missing (%s); on Debian: apt-get install "
             "python3-matplotlib" % e)

    src_lab = labels(d["src_ids"], args.spm)
    tgt_lab = labels(d["tgt_ids"], args.spm)
    S, T = len(src_lab), len(tgt_lab)
    L, tau = d["L"], d["tau"]
    legend = [Patch(color=LEVEL_COLOURS[level % len(LEVEL_COLOURS)],
                    label=level_name(level, L, tau)) for level in range(L)]
    note = ("colour = level; opacity = weight (head mean, row-scaled);\n"
            "dot = dropped by every head")
    if d.get("dense"):
        legend, note = [], "dense attention: opacity = weight"
    cell = 0.22
    width = max(4.0, S * cell + 2.0)
    height = max(3.0, T * cell + 2.2)
    written = []
    for ly in d["layers"]:
        fig, ax = plt.subplots(figsize=(width, height))
        draw_layer(ax, d, ly, src_lab, tgt_lab, np, mcolors)
        if legend:
            ax.legend(handles=legend, loc="upper left", bbox_to_anchor=(1.01, 1),
                      fontsize=7, frameon=False)
        fig.text(0.01, 0.005, note, fontsize=6)
        fig.tight_layout(rect=(0, 0.035, 1, 1))
        path = os.path.join(out, "map-layer%d.png" % ly.get("layer", 0))
        fig.savefig(path, dpi=args.dpi)
        plt.close(fig)
        written.append(path)
    n = len(d["layers"])
    if n > 1:
        fig, axes = plt.subplots(1, n, figsize=(width * n, height),
                                 squeeze=False)
        for ax, ly in zip(axes[0], d["layers"]):
            draw_layer(ax, d, ly, src_lab, tgt_lab, np, mcolors)
        if legend:
            axes[0][-1].legend(handles=legend, loc="upper left",
                               bbox_to_anchor=(1.01, 1), fontsize=7,
                               frameon=False)
        fig.text(0.01, 0.005, note, fontsize=6)
        fig.tight_layout(rect=(0, 0.035, 1, 1))
        path = os.path.join(out, "map.png")
        fig.savefig(path, dpi=args.dpi)
        plt.close(fig)
        written.append(path)
    for path in written:
        print("wrote %s" % path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
