#!/usr/bin/python3
"""torch_step.py — one training step of the granattn model in float32 PyTorch,
timed on the same batches as the C model (granattn-model-step).

    /usr/bin/python3 tools/torch_step.py --batches FILE --threads T --json OUT
                     [--steps K] [--warmup W] [--openblas-coretype auto|none|NAME]

FILE is what `granattn-model-step --batches-out FILE` writes: the model config,
the optimiser settings and per-step learning rates, the INITIAL parameters of
the C model (so the first-step losses can be compared) and the W + K batches
(padded token ids).  K and W default to the C program's split of the file's
batches into (batches - 1) timed steps after 1 warm-up; when given, W + K must
not exceed the number of batches in the file.

Each step is what `granattn train` does per step, written as a normal
PyTorch training step:  optimizer.zero_grad(set_to_none=True); forward;
loss.backward(); clip_grad_norm_(clip); set the step's lr; AdamW.step()
(torch.optim.AdamW, foreach=True, weight decay only on the tensors the C
model decays).  The update is skipped when the gradient norm is not finite,
as the C trainer does.

The model (model/model.h; docs/SPEC.md §2–4 for the cross-attention) on padded
batches [B][S] / [B][T]: key-padding bias -inf on padded source keys, a causal
bias in decoder self-attention (padding is at the end, so padded target rows
never reach a real row); only the non-pad target rows go through the tied
vocabulary projection and the label-smoothed cross-entropy
(F.cross_entropy(label_smoothing=eps), which is -(1-eps) lp[y] - eps/V sum lp).
Pre-LN, eps 1e-5; x = E[tok] * sqrt(d) + sinusoidal position; dropout on the
embeddings and on every residual branch (train); FFN relu (or tanh-gelu).
GPN cross-attention with tensor ops (no Python loop over tokens):
  Pk = mem U^T + b1 [B][S][g];  r = h W^T [B][T][g];
  z = relu(Pk[:, None] + r[:, :, None]) W2^T + b2          [B][T][S][L]
  pi = softmax(z);  y = onehot(argmax z) + pi - pi.detach()   (straight-through)
  kappa_l = [s - max_row(s) >= theta_l]  (detached; theta from the C table)
  keep = sum_l y_l kappa_l  (shared by the heads);  a = softmax(s)
  seed: o = (keep * a) V;   renorm: o = (keep * p / sum keep * p) V
  objective = CE_sum / tokens + lambda * mean_{layers, pairs, heads} sum_l pi_l kappa_l
(the regulariser over real (target, source) pairs only).  dense = 1: softmax.

The model-building code of tools/torch_check/check.py is not imported: that
module switches torch's default dtype to float64 at import and works one
sentence at a time; this is the batched float32 version of the same math.

Threads: OMP_NUM_THREADS, MKL_NUM_THREADS and OPENBLAS_NUM_THREADS are set
to T before torch is imported, and torch.set_num_threads(T) (Debian's torch
calls OpenBLAS for float32 matrix products).  OPENBLAS_CORETYPE: OpenBLAS
0.3.21 picks its SSE3 (Prescott) kernels on this CPU model unless told;
--openblas-coretype auto (default, when the variable is not already set)
sets the widest the CPU has (SkylakeX with AVX-512, Haswell with AVX2).
"""

import argparse
import json
import math
import os
import re
import sys
import time


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="One training step of the granattn model in float32 PyTorch, "
                    "on the batches written by granattn-model-step --batches-out.")
    ap.add_argument("--batches", required=True, help="file from granattn-model-step --batches-out")
    ap.add_argument("--threads", type=int, required=True, help="intra-op threads (>= 1)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default: batches - warmup)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed warm-up steps (default 1)")
    ap.add_argument("--json", required=True, help="write the results here")
    ap.add_argument("--openblas-coretype", default="auto",
                    help="auto (default: the widest kernels the CPU has, unless "
                         "OPENBLAS_CORETYPE is set), none (leave it unset), or a name")
    ap.add_argument("--quiet", action="store_true", help="no per-step lines on stderr")
    a = ap.parse_args(argv)
    if a.threads < 1:
        ap.error("--threads must be >= 1")
    if a.steps is not None and a.steps < 1:
        ap.error("--steps must be >= 1")
    if a.warmup is not None and a.warmup < 0:
        ap.error("--warmup must be >= 0")
    return a


def setup_env(a):
    for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[v] = str(a.threads)
    ct = a.openblas_coretype
    if ct == "auto":
        if "OPENBLAS_CORETYPE" not in os.environ:
            fl = cpu_flags()
            if "avx512f" in fl:
                os.environ["OPENBLAS_CORETYPE"] = "SkylakeX"
            elif "avx2" in fl:
                os.environ["OPENBLAS_CORETYPE"] = "Haswell"
    elif ct == "none":
        os.environ.pop("OPENBLAS_CORETYPE", None)
    else:
        os.environ["OPENBLAS_CORETYPE"] = ct


def load_batches(path, np):
    with open(path, "rb") as f:
        header = f.readline()
        data = f.read()
    try:
        meta = json.loads(header)
    except ValueError:
        raise SystemExit(f"torch_step.py: {path}: not a granattn-model-step batches file")
    if meta.get("format") != "granattn-model-step-batches/1":
        raise SystemExit(f"torch_step.py: {path}: unknown format {meta.get('format')!r}")
    arrs = meta["arrays"]
    params = np.frombuffer(data, np.float32, arrs["params"]["count"], arrs["params"]["offset"])
    theta8 = np.frombuffer(data, np.float32, arrs["theta8"]["count"], arrs["theta8"]["offset"])
    batches = []
    for b in meta["batches"]:
        B, S, T = b["B"], b["S"], b["T"]
        src = np.frombuffer(data, np.int32, B * S, b["src"]).reshape(B, S)
        tin = np.frombuffer(data, np.int32, B * T, b["tgt_in"]).reshape(B, T)
        tout = np.frombuffer(data, np.int32, B * T, b["tgt_out"]).reshape(B, T)
        batches.append((src, tin, tout))
    return meta, params, theta8, batches


def main(argv):
    a = parse_args(argv)
    setup_env(a)
    import numpy as np
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        print("torch_step.py: PyTorch is not importable", file=sys.stderr)
        return 3
    torch.set_num_threads(a.threads)

    meta, params_np, theta8, batches_np = load_batches(a.batches, np)
    c = meta["config"]
    if c["gumbel"] or (not c["dense"] and c["level_source"] != "gpn"):
        print("torch_step.py: only dense or GPN-chosen levels without Gumbel noise are "
              "implemented (config has gumbel = %d, level_source = %s)"
              % (c["gumbel"], c["level_source"]), file=sys.stderr)
        return 2
    nb = len(batches_np)
    warmup = a.warmup if a.warmup is not None else min(1, nb - 1)
    steps = a.steps if a.steps is not None else nb - warmup
    if steps < 1 or warmup + steps > nb:
        print(f"torch_step.py: {a.batches} holds {nb} batches; warmup {warmup} + steps "
              f"{steps} do not fit", file=sys.stderr)
        return 2

    d, H, V, L = c["d"], c["H"], c["vocab"], c["L"]
    dh = d // H
    dense = bool(c["dense"])
    seed_mode = c["mode"] == "seed"
    p_drop = float(c["dropout"])
    eps_ls = float(np.float32(c["label_smoothing"]))
    lam = float(np.float32(c["lambda"]))
    reg_on = not dense and lam > 0
    theta = [float(t) for t in theta8[:L]]
    emb_scale = float(np.float32(math.sqrt(d)))
    cross_scale = float(np.float32(1.0 / math.sqrt(dh)))
    self_scale = 1.0 / math.sqrt(dh)
    gelu = c["act"] == "gelu"

    # parameters: one nn.Parameter per C tensor, initialised from the C model
    P = {}
    decay, no_decay = [], []
    for t in meta["tensors"]:
        n = t["rows"] * t["cols"]
        v = torch.from_numpy(params_np[t["offset"]: t["offset"] + n].copy())
        v = v.reshape(t["rows"], t["cols"]) if t["rows"] > 1 else v.reshape(t["cols"])
        p = torch.nn.Parameter(v)
        P[t["name"]] = p
        (decay if t["decay"] else no_decay).append(p)

    # sinusoidal positions (double, rounded to float, as the C table)
    ml = c["max_len"]
    pos = np.arange(ml, dtype=np.float64)[:, None]
    k = np.arange(0, d, 2, dtype=np.float64)
    ang = pos * np.power(10000.0, -k / d)[None, :]
    pe = np.zeros((ml, d), dtype=np.float32)
    pe[:, 0::2] = np.sin(ang)
    pe[:, 1::2] = np.cos(ang)[:, : d // 2]
    pe = torch.from_numpy(pe)

    def ln(x, name):
        return F.layer_norm(x, (d,), P[name + ".w"], P[name + ".b"], 1e-5)

    def drop(x, train):
        return F.dropout(x, p_drop, True) if train and p_drop > 0 else x

    def mha(x, pre, bias):
        B, n, _ = x.shape
        qkv = F.linear(x, P[pre + ".wqkv"], P[pre + ".bqkv"]).view(B, n, 3, H, dh)
        q, k_, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)              # [B][H][n][dh]
        s = torch.matmul(q, k_.transpose(-1, -2)) * self_scale + bias
        o = torch.matmul(torch.softmax(s, -1), v)
        return F.linear(o.transpose(1, 2).reshape(B, n, d), P[pre + ".wo"], P[pre + ".bo"])

    def ffn(x, pre):
        h = F.linear(x, P[pre + "ffn.w1"], P[pre + "ffn.b1"])
        h = F.gelu(h, approximate="tanh") if gelu else torch.relu(h)
        return F.linear(h, P[pre + "ffn.w2"], P[pre + "ffn.b2"])

    def cross(l, h, mem, key_bias, tgt_valid, acc):
        pre = f"dec{l}."
        B, T, _ = h.shape
        S = mem.shape[1]
        q = F.linear(h, P[pre + "cross.wq"], P[pre + "cross.bq"]).view(B, T, H, dh).transpose(1, 2)
        kv = F.linear(mem, P[pre + "cross.wkv"], P[pre + "cross.bkv"]).view(B, S, 2, H, dh)
        k_, v = kv.permute(2, 0, 3, 1, 4).unbind(0)                  # [B][H][S][dh]
        s = torch.matmul(q, k_.transpose(-1, -2)) * cross_scale + key_bias   # [B][H][T][S]
        if dense:
            o = torch.matmul(torch.softmax(s, -1), v)
        else:
            Pk = F.linear(mem, P[pre + "gpn.U"], P[pre + "gpn.b1"])        # [B][S][g]
            r = F.linear(h, P[pre + "gpn.W"])                              # [B][T][g]
            u = torch.relu(Pk[:, None, :, :] + r[:, :, None, :])           # [B][T][S][g]
            z = F.linear(u, P[pre + "gpn.W2"], P[pre + "gpn.b2"])          # [B][T][S][L]
            pi = torch.softmax(z, -1)
            lev = z.detach().argmax(-1)
            y = F.one_hot(lev, L).to(z.dtype) + (pi - pi.detach())      # straight-through
            sd = s.detach()
            m = sd.amax(-1, keepdim=True)
            delta = sd - m                                             # -inf on padded keys
            kappa = torch.stack([delta >= th for th in theta], -1).to(z.dtype)  # [B][H][T][S][L]
            keep = (y[:, None] * kappa).sum(-1)                        # [B][H][T][S]
            if seed_mode:
                o = torch.matmul(keep * torch.softmax(s, -1), v)
            else:
                w = keep * torch.exp(s - m)
                o = torch.matmul(w / w.sum(-1, keepdim=True), v)
            if reg_on:
                e = (pi[:, None] * kappa).sum(-1) * tgt_valid[:, None, :, None]
                acc["exp_density"] = acc["exp_density"] + e.sum()
            with torch.no_grad():
                hard = (F.one_hot(lev, L).to(z.dtype)[:, None] * kappa).sum(-1).sum(-1)  # [B][H][T]
                acc["density"] += float(((hard / acc["S_len"][:, None, None])
                                         * tgt_valid[:, None, :]).sum())
        return F.linear(o.transpose(1, 2).reshape(B, T, d), P[pre + "cross.wo"], P[pre + "cross.bo"])

    def forward(bt, train):
        src, tin, tout, src_valid, tgt_valid, S_len, pairs, valid_rows = bt
        B, S = src.shape
        T = tin.shape[1]
        key_bias = torch.zeros(B, 1, 1, S).masked_fill(~src_valid[:, None, None, :], float("-inf"))
        causal = torch.full((T, T), float("-inf")).triu(1)
        acc = {"exp_density": 0.0, "density": 0.0, "S_len": S_len}
        E = P["emb"]
        x = drop(F.embedding(src, E) * emb_scale + pe[:S], train)
        for l in range(c["n_enc"]):
            pre = f"enc{l}."
            x = x + drop(mha(ln(x, pre + "ln1"), pre + "attn", key_bias), train)
            x = x + drop(ffn(ln(x, pre + "ln2"), pre), train)
        mem = ln(x, "enc.lnf")
        x = drop(F.embedding(tin, E) * emb_scale + pe[:T], train)
        tv = tgt_valid.to(x.dtype)
        for l in range(c["n_dec"]):
            pre = f"dec{l}."
            x = x + drop(mha(ln(x, pre + "ln1"), pre + "self", causal), train)
            hh = ln(x, pre + "ln2")
            x = x + drop(cross(l, hh, mem, key_bias, tv, acc), train)
            x = x + drop(ffn(ln(x, pre + "ln3"), pre), train)
        xr = ln(x, "dec.lnf")[valid_rows]                                  # real target rows
        logits = F.linear(xr, E)                                           # tied output
        ce = F.cross_entropy(logits, tout[valid_rows], label_smoothing=eps_ls, reduction="sum")
        tokens = xr.shape[0]
        obj = ce / tokens
        if reg_on:
            obj = obj + lam * acc["exp_density"] / (H * pairs * c["n_dec"])
        dens = acc["density"] / (H * tokens * c["n_dec"]) if not dense else 1.0
        return obj, float(ce) / tokens, tokens, dens

    # batches -> tensors (before timing, like the C side's batch copies)
    bts = []
    for src, tin, tout in batches_np:
        src_t = torch.from_numpy(src.astype(np.int64))
        tin_t = torch.from_numpy(tin.astype(np.int64))
        tout_t = torch.from_numpy(tout.astype(np.int64))
        # a sentence is its ids up to the first 0
        src_valid = torch.cumprod((src_t != 0).to(torch.int64), 1).bool()
        tgt_valid = torch.cumprod((tout_t != 0).to(torch.int64), 1).bool()
        S_len = src_valid.sum(1).to(torch.float32)
        pairs = int((src_valid.sum(1) * tgt_valid.sum(1)).sum())
        bts.append((src_t, tin_t, tout_t, src_valid, tgt_valid, S_len, pairs, tgt_valid))

    o = meta["optim"]
    groups = [{"params": decay, "weight_decay": float(o["weight_decay"])},
              {"params": no_decay, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=float(o["lr"]), betas=(float(o["beta1"]), float(o["beta2"])),
                            eps=float(o["eps"]), foreach=True)
    all_params = decay + no_decay
    lrs = meta["lr"]

    sec, loss, objv, gnorm, toks, dens_l = [], [], [], [], [], []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        obj, l_ce, tokens, dens = forward(bts[i], True)
        obj.backward()
        gn = float(torch.nn.utils.clip_grad_norm_(all_params, float(o["clip"])))
        for g in opt.param_groups:
            g["lr"] = float(lrs[i])
        if math.isfinite(gn):
            opt.step()
        dt = time.perf_counter() - t0
        sec.append(dt)
        loss.append(l_ce)
        objv.append(float(obj))
        gnorm.append(gn)
        toks.append(tokens)
        dens_l.append(dens)
        if not a.quiet:
            print(f"{'warmup' if i < warmup else 'timed '} step {i + 1}/{warmup + steps}: "
                  f"{1e3 * dt:.1f} ms, {tokens} tgt tokens, loss {l_ce:.6f}", file=sys.stderr)

    timed = sec[warmup:]
    srt = sorted(timed)
    n = len(srt)
    median = srt[n // 2] if n % 2 else 0.5 * (srt[n // 2 - 1] + srt[n // 2])
    ttok = sum(toks[warmup:])
    tsrc = sum(b["src_tokens"] for b in meta["batches"][warmup: warmup + steps])
    cfg_show = torch.__config__.show()
    blas_info = re.findall(r"\b(BLAS_INFO=[^,\s]*|LAPACK_INFO=[^,\s]*|USE_MKLDNN=\w+|"
                           r"USE_OPENMP=\w+|CPU capability usage: \w+)", cfg_show)
    try:  # the BLAS libraries actually mapped into this process
        with open("/proc/self/maps") as f:
            libs = sorted({ln_.split()[-1] for ln_ in f
                           if re.search(r"lib(open)?blas|libmkl|libdnnl|libgomp", ln_)})
    except OSError:
        libs = []
    out = {
        "impl": "torch",
        "torch_version": torch.__version__,
        "dtype": "float32",
        "batches_file": a.batches,
        "cross_attention": "dense" if dense else "learned",
        "threads": torch.get_num_threads(),
        "env": {v: os.environ.get(v) for v in
                ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE",
                 "OMP_WAIT_POLICY")},
        "torch_config": blas_info,
        "blas_libraries": libs,
        "params": int(sum(p.numel() for p in all_params)),
        "warmup": warmup,
        "steps": steps,
        "model": c,
        "step_seconds": [round(s, 6) for s in sec],
        "tgt_tokens": toks,
        "src_tokens": [b["src_tokens"] for b in meta["batches"][: warmup + steps]],
        "batch_shapes": [[b["B"], b["S"], b["T"]] for b in meta["batches"][: warmup + steps]],
        "loss": loss,
        "objective": objv,
        "gnorm": gnorm,
        "density": dens_l,
        "median_step_seconds": median,
        "mean_step_seconds": sum(timed) / n,
        "tgt_tokens_per_second": ttok / sum(timed),
        "src_tgt_tokens_per_second": (ttok + tsrc) / sum(timed),
    }
    with open(a.json, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
    print(f"torch: {steps} timed steps, median {1e3 * median:.1f} ms/step, "
          f"{ttok / sum(timed):.0f} tgt tok/s (threads {torch.get_num_threads()}, "
          f"{'dense' if dense else 'sparse'})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
