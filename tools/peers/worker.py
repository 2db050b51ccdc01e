#!/usr/bin/env python3
"""worker.py — one attention peer at one thread count, driven by tools/peers/run.py.

Runs on the peers' venv interpreter (.venv-peers, tools/peers/setup.sh) with the
thread environment and CPU affinity already set by run.py (OMP_NUM_THREADS,
MKL_NUM_THREADS, OMP_WAIT_POLICY=PASSIVE, OMP_PLACES/OMP_PROC_BIND, the
process's CPU mask), so a runtime that reads them at import time sees them.

Work: granattn's decode step, dense fp32: Q [H,T,dh], K and V [H,N,dh],
C [H,T,dh] = softmax(Q K^T / sqrt(dh)) V for every head (T = 1: granattn-bench's
attend, T = 32: attend_block). Variants per peer:
  torch     sdpa (torch.nn.functional.scaled_dot_product_attention),
            matmul (matmul - softmax - matmul)
  ort       matmul (ONNX MatMul/Transpose/Mul/Softmax graph, optimised by ORT),
            mha (com.microsoft MultiHeadAttention: query [1,T,H*dh], key/value
            [1,H,N,dh]), attention (ONNX Attention, opset 23, [1,H,*,dh])
            com.microsoft Attention is not a variant: it projects Q, K and V
            from its input itself and copies the cache into `present` each call
  openvino  matmul (MatMul graph), sdpa (ScaledDotProductAttention op);
            INFERENCE_PRECISION_HINT f32 (the CPU plugin's default is bf16 on
            CPUs with AVX-512 BF16 / AMX)
  ggml      flash, mulmat: the C driver tools/peers/ggml_attn (built by setup.sh)
Cold cache: NSETS K/V sets, set s = each head's rows rotated by
(s * 7919 mod N), as granattn-bench --cache=cold builds them; calls rotate.

Protocol: one JSON object per line on stdin, one reply line on stdout
(libraries' own output is redirected to stderr):
  {"cmd": "info"}   -> {"ok", "peer", "versions", "variants", "simd", "settings"}
  {"cmd": "load", "dir", "N", "H", "T", "dh", "nsets"}
                    -> {"ok", "variants": {name: {"ok", "why"?}}}; each working
                       variant's output on set 0 and set NSETS-1 is written to
                       DIR/out-<peer>-<variant>-<set>.f32 ([H,T,dh] fp32)
  {"cmd": "time", "variant", "min_time", "start", "chunks"}
                    -> {"ok", "us", "mean_us", "median_call_us", "calls"}: see
                       timed_loop (us: the median of CHUNKS window means)
  {"cmd": "drop"}, {"cmd": "quit"}
Usage: worker.py --peer torch|ort|openvino|ggml --threads T [--ggml PATH]
"""

import argparse
import json
import os
import sys
import time
import traceback

PEERS = ("torch", "ort", "openvino", "ggml")


def rotated(x, s):
    """Set s of an [H,N,dh] array: each head's rows rotated by s*7919 mod N."""
    import numpy as np
    N = x.shape[1]
    rot = (s * 7919) % N
    return np.ascontiguousarray(np.roll(x, -rot, axis=1)) if rot else x


def load_inputs(d, N, H, T, dh, nsets):
    import numpy as np
    q = np.fromfile(os.path.join(d, "q.f32"), dtype=np.float32)
    k = np.fromfile(os.path.join(d, "k.f32"), dtype=np.float32)
    v = np.fromfile(os.path.join(d, "v.f32"), dtype=np.float32)
    if q.size != H * T * dh or k.size != H * N * dh or v.size != H * N * dh:
        raise ValueError(f"input sizes in {d} do not match N {N} H {H} T {T} dh {dh}")
    q = q.reshape(H, T, dh)
    k = k.reshape(H, N, dh)
    v = v.reshape(H, N, dh)
    ks = [k] + [rotated(k, s) for s in range(1, nsets)]
    vs = [v] + [rotated(v, s) for s in range(1, nsets)]
    return q, ks, vs


def timed_loop(call, nsets, min_time, start, chunks):
    """The timing rule shared with ggml_attn.c (and matched by run.py's
    granattn-bench call): a warm-up (>= 2 calls, >= min_time/5 s), then CHUNKS
    windows of >= 1 call and >= min_time/CHUNKS s each, sets rotating from
    START. Returns (median of the windows' mean per call, mean over all calls,
    median per call, calls), times in us."""
    it = start
    t0 = time.perf_counter()
    w = 0
    while w < 2 or time.perf_counter() - t0 < min_time / 5:
        call(it % nsets)
        it += 1
        w += 1
    times, means = [], []
    begin = last = time.perf_counter()
    for _ in range(chunks):
        c0, n0 = last, len(times)
        while len(times) == n0 or last - c0 < min_time / chunks:
            call(it % nsets)
            it += 1
            t = time.perf_counter()
            times.append(t - last)
            last = t
        means.append((last - c0) / (len(times) - n0))
    return (median(means) * 1e6, (last - begin) / len(times) * 1e6, median(times) * 1e6,
            len(times))


def median(values):
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


# ---------------------------------------------------------------- PyTorch

def failure(e):
    """A variant's failure reason: exception type and its first line."""
    return f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300]}"


class GraphPeer:
    """Peers whose variants are built per shape into self.runs[variant] =
    (call, ...) (ONNX Runtime, OpenVINO)."""

    def call(self, variant):
        return self.runs[variant][0]

    def drop(self):
        self.runs = {}


class TorchPeer:
    name = "torch"

    def __init__(self, threads):
        import torch
        self.torch = torch
        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass
        self.threads = threads
        self.prob = None

    def info(self):
        t = self.torch
        return {"versions": {"torch": t.__version__},
                "simd": {"cpu_capability": t.backends.cpu.get_cpu_capability(),
                         "mkldnn": bool(t.backends.mkldnn.is_available()),
                         "blas": next((w.split("=", 1)[1].rstrip(",") for w in
                                       t.__config__.show().split() if w.startswith("BLAS_INFO=")),
                                      "")},
                "settings": {"num_threads": t.get_num_threads(),
                             "num_interop_threads": t.get_num_interop_threads()},
                "variants": ["sdpa", "matmul"]}

    def load(self, q, ks, vs, dh):
        t = self.torch
        F = t.nn.functional
        scale = 1.0 / dh ** 0.5
        tq = t.from_numpy(q)
        tk = [t.from_numpy(k) for k in ks]
        tv = [t.from_numpy(v) for v in vs]
        fns = {
            "sdpa": lambda s: F.scaled_dot_product_attention(tq, tk[s], tv[s]),
            "matmul": lambda s: t.matmul(t.softmax(t.matmul(tq, tk[s].transpose(-1, -2)) * scale,
                                                   dim=-1), tv[s]),
        }
        self.prob = fns
        return {name: self._wrap(fn) for name, fn in fns.items()}

    def _wrap(self, fn):
        def run(s):
            with self.torch.inference_mode():
                return fn(s).numpy()
        return run

    def call(self, variant):
        fn = self.prob[variant]
        inf = self.torch.inference_mode

        def c(s):
            with inf():
                fn(s)
        return c

    def drop(self):
        self.prob = None


# ---------------------------------------------------------------- ONNX Runtime

class OrtPeer(GraphPeer):
    name = "ort"

    def __init__(self, threads):
        import onnxruntime as ort
        self.ort = ort
        self.threads = threads
        self.runs = {}

    def info(self):
        import onnx
        return {"versions": {"onnxruntime": self.ort.__version__, "onnx": onnx.__version__},
                "simd": {"providers": self.ort.get_available_providers(),
                         "note": "MLAS picks its kernels by CPUID at run time"},
                "settings": {"intra_op_num_threads": self.threads, "inter_op_num_threads": 1,
                             "execution_mode": "sequential",
                             "graph_optimization_level": "ORT_ENABLE_ALL",
                             "allow_spinning": "default (on)"},
                "variants": ["matmul", "mha", "attention"],
                "not_variants": {"ms-attention": "com.microsoft Attention projects Q, K and V "
                                 "from its input X with its own weights and copies past K/V into "
                                 "`present` each call: not the same work as attending over a "
                                 "given K/V"}}

    def _session(self, model):
        ort = self.ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        return ort.InferenceSession(model.SerializeToString(), so,
                                    providers=["CPUExecutionProvider"])

    def _model(self, variant, N, H, T, dh):
        import numpy as np
        from onnx import TensorProto, helper, numpy_helper
        f = TensorProto.FLOAT
        if variant == "matmul":
            ins = [helper.make_tensor_value_info("q", f, [H, T, dh]),
                   helper.make_tensor_value_info("k", f, [H, N, dh]),
                   helper.make_tensor_value_info("v", f, [H, N, dh])]
            out = helper.make_tensor_value_info("c", f, [H, T, dh])
            scale = numpy_helper.from_array(np.array(1.0 / dh ** 0.5, dtype=np.float32), "scale")
            nodes = [helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
                     helper.make_node("MatMul", ["q", "kt"], ["s"]),
                     helper.make_node("Mul", ["s", "scale"], ["ss"]),
                     helper.make_node("Softmax", ["ss"], ["a"], axis=-1),
                     helper.make_node("MatMul", ["a", "v"], ["c"])]
            graph = helper.make_graph(nodes, "attn", ins, [out], initializer=[scale])
            opsets = [helper.make_opsetid("", 23)]
        elif variant == "mha":
            ins = [helper.make_tensor_value_info("q", f, [1, T, H * dh]),
                   helper.make_tensor_value_info("k", f, [1, H, N, dh]),
                   helper.make_tensor_value_info("v", f, [1, H, N, dh])]
            out = helper.make_tensor_value_info("c", f, [1, T, H * dh])
            nodes = [helper.make_node("MultiHeadAttention", ["q", "k", "v"], ["c"],
                                      domain="com.microsoft", num_heads=H)]
            graph = helper.make_graph(nodes, "attn", ins, [out])
            opsets = [helper.make_opsetid("", 23), helper.make_opsetid("com.microsoft", 1)]
        else:  # attention: ONNX Attention (opset 23), 4-D inputs
            ins = [helper.make_tensor_value_info("q", f, [1, H, T, dh]),
                   helper.make_tensor_value_info("k", f, [1, H, N, dh]),
                   helper.make_tensor_value_info("v", f, [1, H, N, dh])]
            out = helper.make_tensor_value_info("c", f, [1, H, T, dh])
            nodes = [helper.make_node("Attention", ["q", "k", "v"], ["c"])]
            graph = helper.make_graph(nodes, "attn", ins, [out])
            opsets = [helper.make_opsetid("", 23)]
        return helper.make_model(graph, opset_imports=opsets)

    def load(self, q, ks, vs, dh):
        H, T, _ = q.shape
        N = ks[0].shape[1]
        ort = self.ort
        qs = {"matmul": q, "mha": q.transpose(1, 0, 2).reshape(1, T, H * dh).copy(),
              "attention": q[None]}
        outs, fails = {}, {}
        for variant in ("matmul", "mha", "attention"):
            try:
                sess = self._session(self._model(variant, N, H, T, dh))
                lead = (lambda a: a) if variant == "matmul" else (lambda a: a[None])
                qv = ort.OrtValue.ortvalue_from_numpy(qs[variant])
                kvals = [(ort.OrtValue.ortvalue_from_numpy(lead(k)),
                          ort.OrtValue.ortvalue_from_numpy(lead(v))) for k, v in zip(ks, vs)]
                bindings = []
                for kv in kvals:
                    b = sess.io_binding()
                    b.bind_ortvalue_input("q", qv)
                    b.bind_ortvalue_input("k", kv[0])
                    b.bind_ortvalue_input("v", kv[1])
                    b.bind_output("c", "cpu")
                    bindings.append(b)
                run = sess.run_with_iobinding
                self.runs[variant] = (lambda s, run=run, bs=bindings: run(bs[s]), bindings,
                                      kvals, qv, sess)

                def output(s, variant=variant, bindings=bindings, run=run):
                    run(bindings[s])
                    c = bindings[s].copy_outputs_to_cpu()[0]
                    if variant == "mha":
                        c = c.reshape(T, H, dh).transpose(1, 0, 2)
                    return c.reshape(H, T, dh)
                outs[variant] = output
            except Exception as e:  # noqa: BLE001 — the reason is reported
                fails[variant] = failure(e)
        return outs, fails



# ---------------------------------------------------------------- OpenVINO

class OpenvinoPeer(GraphPeer):
    name = "openvino"

    def __init__(self, threads):
        import openvino as ov
        self.ov = ov
        self.core = ov.Core()
        self.threads = threads
        self.config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads,
                       "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
                       "ENABLE_CPU_PINNING": True}
        self.runs = {}
        self.compiled_props = {}

    def info(self):
        c = self.core
        return {"versions": {"openvino": self.ov.__version__},
                "simd": {"device": c.get_property("CPU", "FULL_DEVICE_NAME"),
                         "capabilities": list(c.get_property("CPU", "OPTIMIZATION_CAPABILITIES")),
                         "default_precision": str(c.get_property("CPU", "INFERENCE_PRECISION_HINT"))},
                "settings": dict({k: str(v) for k, v in self.config.items()},
                                 compiled=self.compiled_props),
                "variants": ["matmul", "sdpa"]}

    def _model(self, variant, N, H, T, dh):
        import numpy as np
        ov = self.ov
        try:
            import openvino.opset13 as ops
        except ImportError:
            import openvino.runtime.opset13 as ops
        q = ops.parameter([H, T, dh], ov.Type.f32, name="q")
        k = ops.parameter([H, N, dh], ov.Type.f32, name="k")
        v = ops.parameter([H, N, dh], ov.Type.f32, name="v")
        if variant == "matmul":
            s = ops.matmul(q, k, False, True)
            s = ops.multiply(s, ops.constant(np.float32(1.0 / dh ** 0.5)))
            c = ops.matmul(ops.softmax(s, -1), v, False, False)
        else:
            c = ops.scaled_dot_product_attention(q, k, v, causal=False)
        return ov.Model([c], [q, k, v], "attn")

    def load(self, q, ks, vs, dh):
        H, T, _ = q.shape
        N = ks[0].shape[1]
        ov = self.ov
        outs, fails = {}, {}
        for variant in ("matmul", "sdpa"):
            try:
                cm = self.core.compile_model(self._model(variant, N, H, T, dh), "CPU", self.config)
                self.compiled_props = {p: str(cm.get_property(p)) for p in
                                       ("INFERENCE_PRECISION_HINT", "INFERENCE_NUM_THREADS",
                                        "NUM_STREAMS", "ENABLE_CPU_PINNING")}
                prec = self.compiled_props["INFERENCE_PRECISION_HINT"].lower()
                if "f32" not in prec and "float32" not in prec:
                    raise RuntimeError("compiled with precision "
                                       f"{self.compiled_props['INFERENCE_PRECISION_HINT']}, not f32")
                req = cm.create_infer_request()
                tq = ov.Tensor(q, shared_memory=True)
                tkv = [(ov.Tensor(k, shared_memory=True), ov.Tensor(v, shared_memory=True))
                       for k, v in zip(ks, vs)]
                req.set_input_tensor(0, tq)
                req.set_input_tensor(1, tkv[0][0])
                req.set_input_tensor(2, tkv[0][1])
                state = {"set": 0}

                def call(s, req=req, tkv=tkv, state=state):
                    if s != state["set"]:
                        req.set_input_tensor(1, tkv[s][0])
                        req.set_input_tensor(2, tkv[s][1])
                        state["set"] = s
                    req.infer()
                self.runs[variant] = (call, req, tkv, tq)

                def output(s, call=call, req=req):
                    call(s)
                    return req.get_output_tensor(0).data.copy().reshape(H, T, dh)
                outs[variant] = output
            except Exception as e:  # noqa: BLE001
                fails[variant] = failure(e)
        return outs, fails



# ---------------------------------------------------------------- ggml (C driver)

class GgmlPeer:
    name = "ggml"

    def __init__(self, threads, exe):
        import subprocess
        if not exe or not os.access(exe, os.X_OK):
            raise RuntimeError(f"ggml driver {exe} not built (tools/peers/setup.sh --only ggml)")
        self.proc = subprocess.Popen([exe, "--threads", str(threads)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
        self.threads = threads
        self.info_line = self._cmd("info")
        self.dir = None

    def _cmd(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline().strip()
        if not reply:
            raise RuntimeError(f"ggml_attn exited (status {self.proc.poll()}) on '{line}'")
        if not reply.startswith("ok"):
            raise RuntimeError(f"ggml_attn: {reply}")
        return reply[2:].strip()

    def info(self):
        kv = dict(p.split("=", 1) for p in self.info_line.split())
        return {"versions": {"ggml": f"{kv.get('version')} ({kv.get('commit')})"},
                "simd": {k: kv[k] for k in kv if k not in ("version", "commit", "threads")},
                "settings": {"threads": kv.get("threads"), "build": "CMake, CPU backend, "
                             "GGML_NATIVE=ON, OpenMP, GGML_LLAMAFILE=ON", "kv_type": "f32",
                             "mulmat_v_layout": "transposed [H,dh,N] (llama.cpp without flash attention)"},
                "variants": ["flash", "mulmat"]}

    def load_dir(self, d, N, H, T, dh, nsets):
        import numpy as np
        self._cmd(f"load {d} {N} {H} {T} {dh} {nsets}")
        self.dir = d
        outs = {}
        for variant in ("flash", "mulmat"):
            def output(s, variant=variant):
                path = os.path.join(d, f"tmp-ggml-{variant}.f32")
                self._cmd(f"run {variant} {s} {path}")
                c = np.fromfile(path, dtype=np.float32).reshape(H, T, dh)
                os.unlink(path)
                return c
            outs[variant] = output
        return outs, {}

    def time(self, variant, min_time, start, chunks):
        us, mean, med, calls = self._cmd(f"time {variant} {min_time} {start} {chunks}").split()
        return float(us), float(mean), float(med), int(calls)

    def drop(self):
        if self.dir:
            self._cmd("drop")
            self.dir = None

    def close(self):
        try:
            self._cmd("quit")
        except Exception:  # noqa: BLE001
            pass
        self.proc.wait(timeout=10)


# ---------------------------------------------------------------- server

def main(argv):
    p = argparse.ArgumentParser(description="One attention peer at one thread count, driven "
                                "by tools/peers/run.py over a JSON-lines protocol on stdin/stdout.")
    p.add_argument("--peer", required=True, choices=PEERS)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--ggml", metavar="PATH", help="the ggml_attn driver (peer ggml)")
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error("--threads must be >= 1")

    # The protocol owns the real stdout; everything else printed goes to stderr.
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def reply(obj):
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    try:
        if args.peer == "torch":
            peer = TorchPeer(args.threads)
        elif args.peer == "ort":
            peer = OrtPeer(args.threads)
        elif args.peer == "openvino":
            peer = OpenvinoPeer(args.threads)
        else:
            peer = GgmlPeer(args.threads, args.ggml)
    except Exception as e:  # noqa: BLE001
        reply({"ok": False, "why": f"{args.peer} unavailable: {type(e).__name__}: {e}"})
        return 3
    reply({"ok": True, "ready": args.peer})
    nsets = 1
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            msg = json.loads(line)
            cmd = msg.get("cmd")
            if cmd == "quit":
                reply({"ok": True})
                break
            if cmd == "info":
                out = dict(peer.info(), ok=True, peer=args.peer,
                           affinity=sorted(os.sched_getaffinity(0)),
                           env={k: os.environ.get(k) for k in (
                               "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                               "OMP_WAIT_POLICY", "OMP_PLACES", "OMP_PROC_BIND")})
                reply(out)
            elif cmd == "load":
                import numpy as np
                peer.drop()
                d, N, H, T, dh = msg["dir"], msg["N"], msg["H"], msg["T"], msg["dh"]
                nsets = msg["nsets"]
                if args.peer == "ggml":
                    outs, fails = peer.load_dir(d, N, H, T, dh, nsets)
                else:
                    q, ks, vs = load_inputs(d, N, H, T, dh, nsets)
                    res = peer.load(q, ks, vs, dh)
                    outs, fails = res if isinstance(res, tuple) else (res, {})
                status = {v: {"ok": False, "why": w} for v, w in fails.items()}
                for v, output in outs.items():
                    try:
                        for s in sorted({0, nsets - 1}):
                            c = np.ascontiguousarray(output(s), dtype=np.float32)
                            c.tofile(os.path.join(d, f"out-{args.peer}-{v}-{s}.f32"))
                        status[v] = {"ok": True}
                    except Exception as e:  # noqa: BLE001
                        status[v] = {"ok": False, "why": f"{type(e).__name__}: "
                                     f"{str(e).strip().splitlines()[0][:300]}"}
                reply({"ok": True, "variants": status})
            elif cmd == "time":
                v, min_time, start = msg["variant"], float(msg["min_time"]), int(msg["start"])
                chunks = max(1, int(msg.get("chunks", 5)))
                if args.peer == "ggml":
                    us, mean, med, calls = peer.time(v, min_time, start, chunks)
                else:
                    us, mean, med, calls = timed_loop(peer.call(v), nsets, min_time, start, chunks)
                reply({"ok": True, "us": us, "mean_us": mean, "median_call_us": med,
                       "calls": calls})
            elif cmd == "drop":
                peer.drop()
                reply({"ok": True})
            else:
                reply({"ok": False, "why": f"unknown command {cmd!r}"})
        except Exception as e:  # noqa: BLE001
            traceback.print_exc(file=sys.stderr)
            reply({"ok": False, "why": f"{type(e).__name__}: {e}"})
    if isinstance(peer, GgmlPeer):
        peer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
