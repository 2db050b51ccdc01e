#!/usr/bin/python3
"""check.py — an independent PyTorch re-implementation of the granattn model,
compared with the C model on one batch (the dump written by dump.c).

    /usr/bin/python3 tools/torch_check/check.py DUMP [--rtol 1e-4] [--atol 1e-7]

Reads the dump (config, every parameter, the batch, the C loss / statistics /
gradients, the inference path's teacher-forced log-probabilities), rebuilds
the model from model/model.h's description in float64 PyTorch, and uses
autograd for the gradient of the training objective

    J = CE_sum / tokens + lambda * mean_{layers, pairs, heads} sum_l pi_l kappa_l

(the regulariser only with the GPN choosing levels and lambda > 0), where the
hard level choice enters the forward as the straight-through one-hot
y = onehot(argmax z) + pi - pi.detach() (SPEC §4): keep_i = sum_l y_l kappa_il
with kappa_il = [s_i - m >= theta_l] (no gradient into s through it).

Details matched to model/layers.c, forward.c, backward.c: sentences are packed
(no padding inside the model); x = E[tok] * sqrt(d) + sinusoidal position
(pe[p][2k] = sin(p / 10000^(2k/d)), pe[p][2k+1] = cos(...)); pre-LN with
eps = 1e-5 (biased variance); self-attention softmax(q k^T / sqrt(dh)) (causal
in the decoder); the GPN gets e = the final-LN encoder output (the memory),
x = the cross-attention sub-layer's layer-normed input h; levels shared by
the heads; seed mode c = sum_keep (p_i / Z_all) v_i, renorm mode
c = sum_keep (p_i / Z_kept) v_i; tied output projection; label smoothing
loss_r = -(1 - eps) lp[y] - (eps / V) sum_v lp[v]; theta = the C table
ga_theta_from_tau (float32 ln tau, -FLT_MAX for tau = 0).

Checks (each one prints a line; exit 1 on any failure):
  decisions  the argmax levels and keep sets recomputed in float64 give the
             C statistics exactly (level counts, sum of kept/N); the closest
             decision margins are printed (a margin below ~1e-5 would make a
             float32 / float64 disagreement legitimate, see --min-margin)
  loss       CE sum, NLL sum, expected density and the objective: rel 1e-5
  logp       the inference path (gm_decode_step, teacher forced) against
             log_softmax of the float64 logits: |diff| <= 1e-4 * max|lp|
  grads      every parameter tensor: max|g_c - g_t| <= rtol * max|g_t| + atol

Tolerances: C computes in float32 (unit roundoff 6e-8) with float or
double accumulations, through a few layers and sums of at most a few
thousand terms (the vocabulary softmax); the float64 reference is exact by
comparison.  Forward-value errors are then ~1e-6 relative; gradient errors
relative to the largest entry of the same tensor are ~1e-6 (measured ~1e-7
to 1e-6 on the tiny configs), so rtol = 1e-4 leaves a 100x margin while a
real bug (a missing term, a wrong scale, a transposed weight) gives errors
of order 1e-2..1.  atol covers tensors whose true gradient is exactly 0.
The GPN tensors get rtol 5e-4: their gradients are small (~1e-3 of the
others) and come out of cancellations (softmax backward
pi_l (dpi_l - sum_k pi_k dpi_k) with dpi_l equal for every level that keeps
the key; dot products v_i . dc of mixed sign), which amplify float32
rounding: the C model's relative error there is up to ~6e-5 on the tiny
configs, and the SAME PyTorch computation run in float32 differs from the
float64 one by the same amount (up to ~4e-5), so this is the float32 noise
floor, not a discrepancy.  Mutations checked while writing this (dropping
the straight-through term, seed formula in renorm mode, the regulariser
mean without the heads, relu scaled by 1.0001) fail with relative errors
of 1e-3 (the last) to 1 (the others).
"""

import argparse
import json
import math
import sys

import numpy as np

try:
    import torch
except ImportError:  # the test script checks first; keep a clear message here too
    print("check.py: PyTorch is not importable", file=sys.stderr)
    sys.exit(3)

torch.set_default_dtype(torch.float64)
DT = torch.float64


def load_dump(path):
    with open(path, "rb") as f:
        header = f.readline()
        data = f.read()
    meta = json.loads(header)
    arrays = {}
    for name, a in meta["arrays"].items():
        dt = {"f32": np.float32, "i32": np.int32, "u8": np.uint8}[a["dtype"]]
        arrays[name] = np.frombuffer(data, dtype=dt, count=a["count"], offset=a["offset"])
    return meta, arrays


def f32(x):
    """x rounded to float32, as a float64 value (constants the C code computes in float)."""
    return float(np.float32(x))


class Model:
    def __init__(self, meta, arrays):
        self.c = meta["config"]
        self.meta = meta
        c = self.c
        self.d, self.H, self.V = c["d"], c["H"], c["vocab"]
        self.dh = self.d // self.H
        self.L = c["L"]
        self.theta = [float(t) for t in arrays["theta8"][: self.L]]
        self.params = {}
        p = arrays["params"]
        for t in meta["tensors"]:
            n = t["rows"] * t["cols"]
            v = torch.tensor(p[t["offset"]: t["offset"] + n].astype(np.float64))
            v = v.reshape(t["rows"], t["cols"]) if t["rows"] > 1 else v.reshape(t["cols"])
            self.params[t["name"]] = v.requires_grad_(True)
        # position table in double, rounded to float (as gm_posenc_table stores it)
        ml, d = c["max_len"], self.d
        pe = np.zeros((ml, d), dtype=np.float32)
        for pos in range(ml):
            for k in range(0, d, 2):
                freq = math.pow(10000.0, -k / d)
                pe[pos, k] = math.sin(pos * freq)
                if k + 1 < d:
                    pe[pos, k + 1] = math.cos(pos * freq)
        self.pe = torch.tensor(pe.astype(np.float64))
        self.emb_scale = f32(math.sqrt(d))
        self.gpn = not c["dense"] and c["level_source"] == "gpn"
        self.rand_levels = arrays.get("rand_levels")
        self.rand_pairs = 0    # pairs of the batch (set by main)
        self.rand_off = 0      # pair offset of the current sentence
        # statistics recomputed here, compared with the C ones
        self.level_count = [0] * self.L
        self.density_sum = 0.0
        self.exp_density = None      # differentiable sum over (layer, t, i, head)
        self.exp_density_count = 0
        self.margins = []            # (margin, what)

    def P(self, name):
        return self.params[name]

    @staticmethod
    def ln(x, w, b):
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + 1e-5) * w + b

    def act(self, x):
        if self.c["act"] == "gelu":
            return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
        return torch.relu(x)

    def embed(self, tok):
        pos = torch.arange(len(tok))
        return self.P("emb")[tok] * self.emb_scale + self.pe[pos]

    def mha(self, x, wqkv, bqkv, wo, bo, causal):
        d, H, dh = self.d, self.H, self.dh
        n = x.shape[0]
        qkv = x @ wqkv.T + bqkv
        q, k, v = qkv[:, :d], qkv[:, d:2 * d], qkv[:, 2 * d:]
        q = q.reshape(n, H, dh).transpose(0, 1)
        k = k.reshape(n, H, dh).transpose(0, 1)
        v = v.reshape(n, H, dh).transpose(0, 1)
        s = q @ k.transpose(1, 2) / math.sqrt(dh)
        if causal:
            mask = torch.triu(torch.ones(n, n, dtype=torch.bool), 1)
            s = s.masked_fill(mask, float("-inf"))
        a = torch.softmax(s, -1)
        o = (a @ v).transpose(0, 1).reshape(n, d)
        return o @ wo.T + bo

    def ffn(self, x, pre):
        h = self.act(x @ self.P(pre + "ffn.w1").T + self.P(pre + "ffn.b1"))
        return h @ self.P(pre + "ffn.w2").T + self.P(pre + "ffn.b2")

    def cross(self, l, h, mem):
        pre = f"dec{l}."
        d, H, dh, L = self.d, self.H, self.dh, self.L
        T, N = h.shape[0], mem.shape[0]
        q = h @ self.P(pre + "cross.wq").T + self.P(pre + "cross.bq")
        kv = mem @ self.P(pre + "cross.wkv").T + self.P(pre + "cross.bkv")
        q = q.reshape(T, H, dh).transpose(0, 1)                  # [H][T][dh]
        k = kv[:, :d].reshape(N, H, dh).transpose(0, 1)          # [H][N][dh]
        v = kv[:, d:].reshape(N, H, dh).transpose(0, 1)
        s = q @ k.transpose(1, 2) * f32(1.0 / math.sqrt(dh))      # [H][T][N]
        if self.c["dense"]:
            o = torch.softmax(s, -1) @ v
            self.density_sum += H * T
        else:
            if self.gpn:
                # GPN (SPEC §3)
                Pk = mem @ self.P(pre + "gpn.U").T + self.P(pre + "gpn.b1")   # [N][g]
                r = h @ self.P(pre + "gpn.W").T                               # [T][g]
                u = torch.relu(Pk[None, :, :] + r[:, None, :])                 # [T][N][g]
                z = u @ self.P(pre + "gpn.W2").T + self.P(pre + "gpn.b2")     # [T][N][L]
                pi = torch.softmax(z, -1)
                lev = torch.argmax(z, -1)                                     # first max on ties
                if L > 1:
                    top2 = torch.topk(z.detach(), 2, -1).values
                    gap = (top2[..., 0] - top2[..., 1]).min().item()
                    self.margins.append((gap, f"dec{l} GPN argmax gap"))
                y = torch.nn.functional.one_hot(lev, L).to(DT)
                y = y + pi - pi.detach()                                      # straight-through
            else:
                # random baseline: the C levels (gm_random_levels), pi = level_probs
                off = l * self.rand_pairs + self.rand_off
                lev = torch.tensor(self.rand_levels[off: off + T * N].astype(np.int64)).reshape(T, N)
                pi = torch.tensor([f32(v) for v in self.c["level_probs"][:L]]).expand(T, N, L)
                y = torch.nn.functional.one_hot(lev, L).to(DT)
            for lv in range(L):
                self.level_count[lv] += int((lev == lv).sum())
            m = s.detach().max(-1, keepdim=True).values
            delta = s.detach() - m                                        # [H][T][N]
            theta = torch.tensor(self.theta)
            kappa = (delta[..., None] >= theta).to(DT)                   # [H][T][N][L]
            finite = [t for t in self.theta if t > -1e38]
            if finite:
                gap = min((delta - t).abs().min().item() for t in finite)
                self.margins.append((gap, f"dec{l} keep threshold gap"))
            keep = (y[None] * kappa).sum(-1)                              # [H][T][N]
            p = torch.exp(s - m)
            if self.c["mode"] == "seed":
                a = p / p.sum(-1, keepdim=True)
                o = (keep * a) @ v
            else:
                w = keep * p
                o = (w / w.sum(-1, keepdim=True)) @ v
            hard = (y.detach()[None] * kappa).sum(-1)
            self.density_sum += float((hard.sum(-1) / N).sum())
            e = (pi[None] * kappa).sum()
            self.exp_density = e if self.exp_density is None else self.exp_density + e
            self.exp_density_count += H * T * N
        o = o.transpose(0, 1).reshape(T, d)
        return o @ self.P(pre + "cross.wo").T + self.P(pre + "cross.bo")

    def sentence(self, src, tin):
        c = self.c
        x = self.embed(src)
        for l in range(c["n_enc"]):
            pre = f"enc{l}."
            x = x + self.mha(self.ln(x, self.P(pre + "ln1.w"), self.P(pre + "ln1.b")),
                             self.P(pre + "attn.wqkv"), self.P(pre + "attn.bqkv"),
                             self.P(pre + "attn.wo"), self.P(pre + "attn.bo"), False)
            x = x + self.ffn(self.ln(x, self.P(pre + "ln2.w"), self.P(pre + "ln2.b")), pre)
        mem = self.ln(x, self.P("enc.lnf.w"), self.P("enc.lnf.b"))
        x = self.embed(tin)
        for l in range(c["n_dec"]):
            pre = f"dec{l}."
            x = x + self.mha(self.ln(x, self.P(pre + "ln1.w"), self.P(pre + "ln1.b")),
                             self.P(pre + "self.wqkv"), self.P(pre + "self.bqkv"),
                             self.P(pre + "self.wo"), self.P(pre + "self.bo"), True)
            h = self.ln(x, self.P(pre + "ln2.w"), self.P(pre + "ln2.b"))
            x = x + self.cross(l, h, mem)
            x = x + self.ffn(self.ln(x, self.P(pre + "ln3.w"), self.P(pre + "ln3.b")), pre)
        x = self.ln(x, self.P("dec.lnf.w"), self.P("dec.lnf.b"))
        return x @ self.P("emb").T                                          # logits [T][V]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dump")
    ap.add_argument("--rtol", type=float, default=1e-4)
    ap.add_argument("--gpn-rtol", type=float, default=5e-4,
                    help="rtol for the GPN tensors (*.gpn.*): see the top comment")
    ap.add_argument("--atol", type=float, default=1e-9)
    ap.add_argument("--loss-rtol", type=float, default=1e-5)
    ap.add_argument("--logp-rtol", type=float, default=1e-4)
    ap.add_argument("--min-margin", type=float, default=1e-5,
                    help="decision margins below this are reported as ambiguous")
    ap.add_argument("--verbose", action="store_true", help="one line per tensor")
    args = ap.parse_args()

    meta, arrays = load_dump(args.dump)
    c, st = meta["config"], meta["stats"]
    torch.manual_seed(0)
    mdl = Model(meta, arrays)
    B, S, T = meta["batch"]["B"], meta["batch"]["S"], meta["batch"]["T"]
    src = arrays["src"].reshape(B, S)
    tin = arrays["tgt_in"].reshape(B, T)
    tout = arrays["tgt_out"].reshape(B, T)

    eps, V = f32(c["label_smoothing"]), c["vocab"]
    ce_sum = 0.0
    nll_sum = 0.0
    tokens = 0
    logps = []
    lens = []
    for b in range(B):
        Tb = int(np.argmax(tout[b] == 0)) if (tout[b] == 0).any() else T
        Sb = int(np.argmax(src[b] == 0)) if (src[b] == 0).any() else S
        lens.append((Sb, Tb))
    mdl.rand_pairs = sum(Sb * Tb for Sb, Tb in lens)
    for b in range(B):
        Tb = int(np.argmax(tout[b] == 0)) if (tout[b] == 0).any() else T
        if Tb == 0:
            continue
        Sb = int(np.argmax(src[b] == 0)) if (src[b] == 0).any() else S
        logits = mdl.sentence(torch.tensor(src[b, :Sb].astype(np.int64)),
                              torch.tensor(tin[b, :Tb].astype(np.int64)))
        lp = torch.log_softmax(logits, -1)
        y = torch.tensor(tout[b, :Tb].astype(np.int64))
        lpy = lp.gather(1, y[:, None])[:, 0]
        loss = -(1.0 - eps) * lpy - (eps / V) * lp.sum(-1)
        ce_sum = ce_sum + loss.sum()
        nll_sum += float(-lpy.sum())
        tokens += Tb
        logps.append(lp.detach())
        mdl.rand_off += Sb * Tb
    objective = ce_sum / tokens
    reg_on = mdl.gpn and c["lambda"] > 0
    if reg_on:
        objective = objective + f32(c["lambda"]) * mdl.exp_density / mdl.exp_density_count
    objective.backward()

    fails = 0

    def report(ok, what):
        nonlocal fails
        fails += 0 if ok else 1
        print(f"{'ok  ' if ok else 'FAIL'} {what}")

    def rel(a, b):
        return abs(a - b) / max(abs(b), 1e-30)

    # decisions
    if mdl.margins:
        gap, where = min(mdl.margins)
        amb = " (AMBIGUOUS: float32 may decide differently)" if gap < args.min_margin else ""
        print(f"info smallest decision margin {gap:.3g} ({where}){amb}")
    sparse = not c["dense"]
    if sparse:
        report(mdl.level_count == [int(v) for v in st["level_count"]],
               f"levels: torch {mdl.level_count} vs C {[int(v) for v in st['level_count']]}")
    report(abs(mdl.density_sum - st["density_sum"]) <= 1e-9 * max(1.0, st["density_sum"]),
           f"density sum (kept/N over rows): torch {mdl.density_sum:.9g} vs C {st['density_sum']:.9g}")
    report(tokens == st["tokens"], f"tokens: torch {tokens} vs C {st['tokens']}")

    # loss
    d_ce = rel(float(ce_sum), st["loss_sum"])
    report(d_ce <= args.loss_rtol, f"CE sum: torch {float(ce_sum):.10g} vs C {st['loss_sum']:.10g} (rel {d_ce:.2e})")
    d_nll = rel(nll_sum, st["nll_sum"])
    report(d_nll <= args.loss_rtol, f"NLL sum: torch {nll_sum:.10g} vs C {st['nll_sum']:.10g} (rel {d_nll:.2e})")
    if sparse:
        e_t = float(mdl.exp_density)
        d_e = rel(e_t, st["exp_density_sum"])
        report(d_e <= args.loss_rtol and mdl.exp_density_count == st["exp_density_count"],
               f"expected density: torch {e_t:.10g}/{mdl.exp_density_count} vs C "
               f"{st['exp_density_sum']:.10g}/{st['exp_density_count']:.0f} (rel {d_e:.2e})")
    d_obj = rel(float(objective), meta["objective"])
    report(d_obj <= args.loss_rtol,
           f"objective: torch {float(objective):.10g} vs C {meta['objective']:.10g} (rel {d_obj:.2e})")

    # inference log-probabilities
    lp_t = torch.cat(logps)
    lp_c = torch.tensor(arrays["logp"].astype(np.float64)).reshape(lp_t.shape)
    err = float((lp_c - lp_t).abs().max())
    scale = float(lp_t.abs().max())
    report(err <= args.logp_rtol * scale,
           f"decode log-probs [{lp_t.shape[0]}x{lp_t.shape[1]}]: max|diff| {err:.3g} "
           f"(tol {args.logp_rtol:g} * max|lp| {scale:.3g})")
    dsc = meta["decode_stats"]
    if sparse:
        report([int(v) for v in dsc["level_count"]] == mdl.level_count,
               f"decode levels: C {[int(v) for v in dsc['level_count']]} vs torch {mdl.level_count}")

    # gradients
    g_c_all = arrays["grads"]
    worst = (0.0, "", 0.0, 0.0)
    nbad = 0
    gmax_all = 0.0
    for t in meta["tensors"]:
        n = t["rows"] * t["cols"]
        gc = torch.tensor(g_c_all[t["offset"]: t["offset"] + n].astype(np.float64))
        p = mdl.params[t["name"]]
        gt = p.grad.reshape(-1) if p.grad is not None else torch.zeros(n)
        err = float((gc - gt).abs().max())
        gmax = float(gt.abs().max())
        gmax_all = max(gmax_all, gmax)
        rtol = args.gpn_rtol if ".gpn." in t["name"] else args.rtol
        ok = err <= rtol * gmax + args.atol
        r = err / (gmax + args.atol / rtol) * (args.rtol / rtol)  # in units of the default rtol
        if r >= worst[0]:
            worst = (r, t["name"], err, gmax)
        if not ok:
            nbad += 1
        if args.verbose or not ok:
            print(f"{'    ' if ok else 'FAIL'} grad {t['name']:<22} max|g_t| {gmax:.3e} "
                  f"max|diff| {err:.3e} (rel {err / max(gmax, 1e-30):.2e})")
    fails += nbad
    print(f"{'ok  ' if nbad == 0 else 'FAIL'} gradients: {len(meta['tensors']) - nbad}/"
          f"{len(meta['tensors'])} tensors within rtol {args.rtol:g} (GPN {args.gpn_rtol:g}) "
          f"* max|g_t| + {args.atol:g}; worst {worst[1]} (max|diff| {worst[2]:.3e}, "
          f"max|g_t| {worst[3]:.3e}, rel {worst[2] / max(worst[3], 1e-30):.2e})")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
