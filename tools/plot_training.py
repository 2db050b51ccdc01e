#!/usr/bin/python3
"""plot_training.py — training curves of `granattn train` runs (their log.tsv).

Usage: tools/plot_training.py OUT.png RUN.log.tsv [RUN.log.tsv ...]
Plots, per run, the training NLL (smoothed over 50 steps), the dev NLL at each
evaluation, and the mean cross-attention density against the step.
"""
import argparse
import csv
import os

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_log(path):
    """Returns (train rows, dev rows) of a log.tsv as lists of dicts of floats."""
    train, dev = [], []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row.get("dev_nll"):
                dev.append({"step": float(row["step"]), "dev_nll": float(row["dev_nll"])})
            elif row.get("nll"):
                train.append({k: float(v) for k, v in row.items() if v not in ("", None)})
    return train, dev


def smooth(xs, w=50):
    out, acc = [], 0.0
    for i, x in enumerate(xs):
        acc += x
        if i >= w:
            acc -= xs[i - w]
        out.append(acc / min(i + 1, w))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", help="output PNG")
    ap.add_argument("logs", nargs="+", help="log.tsv files (the run name is the file name)")
    args = ap.parse_args()
    fig, ax = plt.subplots(1, 2, figsize=(13, 4.5))
    lowest = 7.0  # the loss axis ends just below the lowest smoothed/dev NLL
    for path in args.logs:
        name = os.path.basename(path).replace(".log.tsv", "")
        train, dev = read_log(path)
        if not train:
            continue
        steps = [r["step"] for r in train]
        nll = smooth([r["nll"] for r in train])
        lowest = min([lowest] + nll + [d["dev_nll"] for d in dev])
        line, = ax[0].plot(steps, nll, lw=1, label=f"{name} train")
        if dev:
            ax[0].plot([d["step"] for d in dev], [d["dev_nll"] for d in dev], "o--",
                       color=line.get_color(), ms=3, lw=1, label=f"{name} dev")
        if "density" in train[0]:
            ax[1].plot(steps, smooth([r["density"] for r in train]), lw=1, label=name)
    ax[0].set(xlabel="step", ylabel="NLL per target token", ylim=(min(2.5, lowest - 0.2), 7), title="loss")
    ax[1].set(xlabel="step", ylabel="mean cross-attention density", ylim=(0, 1.05),
              title="density (kept / N)")
    for a in ax:
        a.grid(alpha=0.3)
        a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
