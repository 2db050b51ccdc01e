#!/usr/bin/env bash
# tools/step-speed.sh — one training step (forward + backward + clipping + AdamW)
# of the C model (granattn-model-step) against the same model in float32
# PyTorch (tools/torch_step.py), side by side on the same batches and the same
# initial parameters, with the same thread count.
#
#   tools/step-speed.sh [--quick] [--build DIR] [--out DIR] [--config FILE]
#                       [--data DIR] [--rounds R] [--steps K] [--warmup W]
#                       [--threads "1 2"] [--set KEY=VALUE]...
#
# For each cross-attention variant (dense: --set dense=true; learned: the
# config's GPN) and each thread count, the two programs run INTERLEAVED,
# R rounds of  C, torch, C, torch, ...  (the machine is shared and noisy: a
# slow phase hits both sides, so the ratio from one run is what counts).  Each
# run takes the first W + K training batches of the config (the C program
# writes them, with its initial parameters, for torch), runs W warm-up steps
# and times K steps.  Per variant and thread count the table gives the median
# step time over all R * K timed steps of each side, their ratio, and tokens/s.
# With more than one thread PyTorch also runs a second time per round with
# OMP_WAIT_POLICY=PASSIVE (libgomp's spinning idle threads otherwise fight
# OpenBLAS's threads and any other load for the cores); the ratio is taken
# against the faster of the two PyTorch settings (--no-passive: default only).
#
# Output (--out, default results/xeon-2c/train-step-speed): one JSON per run
# ({variant}-t{T}-r{round}-{c,torch,torchpassive}.json), summary.json, machine.json and
# README.md with the table and the machine description.
#
# --summarize-only: no runs; rewrite summary.json / README.md from the JSON
# files already in --out (load averages and busy processes from its machine.json).
#
# --quick: configs/tiny.ini, dropout 0, 1 round of 1 warm-up + 2 steps, threads
# 1 and 2, output in a temporary directory (printed) unless --out is given;
# used by tests/test_step_speed.sh.
#
# Needs BUILD/model/granattn-model-step (default BUILD = build-step:
#   meson setup build-step -Dbuildtype=release -Dwerror=true && ninja -C build-step)
# and /usr/bin/python3 with torch and numpy.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

BUILD=build-step OUT="" CONFIG=configs/default.ini DATA=data/tok
ROUNDS=5 STEPS=5 WARMUP=1 THREADS="1 2" QUICK=0 PASSIVE=1 SUMMARIZE=0
SETS=()
while (($#)); do
    case "$1" in
        --quick) QUICK=1 ;;
        --no-passive) PASSIVE=0 ;;
        --summarize-only) SUMMARIZE=1 ;;
        --build) BUILD=${2:?--build needs a directory}; shift ;;
        --out) OUT=${2:?--out needs a directory}; shift ;;
        --config) CONFIG=${2:?--config needs a file}; shift ;;
        --data) DATA=${2:?--data needs a directory}; shift ;;
        --rounds) ROUNDS=${2:?--rounds needs a number}; shift ;;
        --steps) STEPS=${2:?--steps needs a number}; shift ;;
        --warmup) WARMUP=${2:?--warmup needs a number}; shift ;;
        --threads) THREADS=${2:?--threads needs a list}; shift ;;
        --set) SETS+=(--set "${2:?--set needs KEY=VALUE}"); shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "step-speed.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done
for v in ROUNDS STEPS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "step-speed.sh: --${v,,} must be a positive integer" >&2; exit 2; }
done
[[ $WARMUP =~ ^[0-9]+$ ]] || { echo "step-speed.sh: --warmup must be an integer >= 0" >&2; exit 2; }
for t in $THREADS; do
    [[ $t =~ ^[1-9][0-9]*$ ]] || { echo "step-speed.sh: --threads: '$t' is not a positive integer" >&2; exit 2; }
done
if ((QUICK)); then
    CONFIG=configs/tiny.ini ROUNDS=1 STEPS=2 WARMUP=1
    SETS+=(--set dropout=0)
    [[ -n $OUT ]] || OUT=$(mktemp -d "${TMPDIR:-/tmp}/step-speed.XXXXXX")
fi
[[ -n $OUT ]] || OUT=results/xeon-2c/train-step-speed

PY=/usr/bin/python3
BIN=$BUILD/model/granattn-model-step
[[ -x $BIN ]] || { echo "step-speed.sh: $BIN not built (meson setup $BUILD -Dbuildtype=release && ninja -C $BUILD)" >&2; exit 1; }
[[ -f $CONFIG ]] || { echo "step-speed.sh: no config $CONFIG" >&2; exit 1; }
[[ -f $DATA/train.bin ]] || { echo "step-speed.sh: no $DATA/train.bin (tools/prepare-data.sh)" >&2; exit 1; }
"$PY" -c 'import torch, numpy' 2>/dev/null || { echo "step-speed.sh: $PY cannot import torch/numpy (apt-get install python3-torch)" >&2; exit 3; }

mkdir -p "$OUT"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/step-speed-batches.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
OTHERS=$(ps -eo pcpu=,args= --sort=-pcpu | awk '$1 >= 30 && ++n <= 5 {pc=$1; $1=""; printf "%s%%%s\n", pc, $0}')

VARIANTS=(dense learned)
vset() { if [[ $1 == dense ]]; then echo "--set dense=true"; fi; }

echo "step-speed: $CONFIG ${SETS[*]:-} | rounds $ROUNDS x (warmup $WARMUP + $STEPS steps) | threads $THREADS | out $OUT"
((SUMMARIZE)) && ROUNDS_RUN=0 || ROUNDS_RUN=$ROUNDS
for ((r = 1; r <= ROUNDS_RUN; r++)); do
    for v in "${VARIANTS[@]}"; do
        for t in $THREADS; do
            base="$OUT/$v-t$t-r$r"
            bfile="$TMP/$v-t$t.bin"
            bopt=()
            [[ -f $bfile ]] || bopt=(--batches-out "$bfile")   # the same batches every round
            # shellcheck disable=SC2046
            "$BIN" --config "$CONFIG" "${SETS[@]}" $(vset "$v") --data "$DATA" --threads "$t" \
                --steps "$STEPS" --warmup "$WARMUP" "${bopt[@]}" --json "$base-c.json" 2>"$TMP/c.log" \
                | sed "s/^/[r$r $v t$t] /" || { cat "$TMP/c.log" >&2; exit 1; }
            "$PY" tools/torch_step.py --batches "$bfile" --threads "$t" --steps "$STEPS" \
                --warmup "$WARMUP" --json "$base-torch.json" --quiet 2>"$TMP/t.log" \
                | sed "s/^/[r$r $v t$t] /" || { cat "$TMP/t.log" >&2; exit 1; }
            if ((PASSIVE && t > 1)); then
                OMP_WAIT_POLICY=PASSIVE "$PY" tools/torch_step.py --batches "$bfile" --threads "$t" \
                    --steps "$STEPS" --warmup "$WARMUP" --json "$base-torchpassive.json" --quiet \
                    2>"$TMP/t.log" | sed "s/^/[r$r $v t$t OMP passive] /" || { cat "$TMP/t.log" >&2; exit 1; }
            fi
        done
    done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# machine description + summary table + README
CPU=$(lscpu | sed -n 's/^Model name: *//p' | sed -n 1p)
CCV=$(cc --version | sed -n 1p)
STEP_SPEED_SUMMARIZE=$SUMMARIZE "$PY" - "$OUT" "$CONFIG" "$ROUNDS" "$STEPS" "$WARMUP" "$THREADS" "$LOAD_START" "$LOAD_END" \
    "$CPU" "$CCV" "$QUICK" "$OTHERS" "${SETS[*]:-}" <<'PYEOF'
import glob, json, os, platform, statistics, sys
(out, config, rounds, steps, warmup, threads, load0, load1, cpu, ccv, quick, others,
 sets) = sys.argv[1:]
threads = [int(t) for t in threads.split()]
if os.environ.get("STEP_SPEED_SUMMARIZE") == "1":  # --summarize-only: keep the run's machine facts
    old = json.load(open(f"{out}/machine.json"))
    load0, load1 = old["load_average_start"], old["load_average_end"]
    others = "\n".join(old["other_busy_processes"])
rows, runs = [], {}
for v in ("dense", "learned"):
    for t in threads:
        c_sec, t_sec, c_tok, t_tok, per_round = [], [], 0, 0, []
        tp_sec, tp_tok = [], 0
        first = None
        for r in range(1, int(rounds) + 1):
            c = json.load(open(f"{out}/{v}-t{t}-r{r}-c.json"))
            p = json.load(open(f"{out}/{v}-t{t}-r{r}-torch.json"))
            w = c["warmup"]
            c_sec += c["step_seconds"][w:]
            t_sec += p["step_seconds"][w:]
            c_tok += sum(c["tgt_tokens"][w:])
            t_tok += sum(p["tgt_tokens"][w:])
            best_t = statistics.median(p["step_seconds"][w:])
            pp = f"{out}/{v}-t{t}-r{r}-torchpassive.json"
            if os.path.exists(pp):
                q = json.load(open(pp))
                tp_sec += q["step_seconds"][w:]
                tp_tok += sum(q["tgt_tokens"][w:])
                best_t = min(best_t, statistics.median(q["step_seconds"][w:]))
            per_round.append(best_t / statistics.median(c["step_seconds"][w:]))
            if first is None:
                first = (c, p)
        cm, tm = statistics.median(c_sec), statistics.median(t_sec)
        tpm = statistics.median(tp_sec) if tp_sec else None
        tbest = min(tm, tpm) if tpm else tm
        c0, p0 = first
        rows.append({
            "cross_attention": v, "threads": t,
            "c_ms_median": 1e3 * cm, "torch_ms_median": 1e3 * tm,
            "torch_passive_ms_median": 1e3 * tpm if tpm else None,
            "ratio_torch_over_c": tbest / cm,
            "ratio_per_round": per_round,
            "c_tgt_tok_per_s": c_tok / sum(c_sec),
            "torch_tgt_tok_per_s": max(t_tok / sum(t_sec), tp_tok / sum(tp_sec) if tp_sec else 0),
            "tgt_tokens_per_step": c_tok / len(c_sec),
            "c_steps": len(c_sec), "torch_steps": len(t_sec),
            "first_step_loss_c": c0["loss"][0], "first_step_loss_torch": p0["loss"][0],
            "density_c": c0["density"][0], "density_torch": p0["density"][0],
        })
        runs[f"{v}-t{t}"] = {"c": c0, "torch": p0}
any_c, any_t = next(iter(runs.values()))["c"], next(iter(runs.values()))["torch"]
machine = {
    "cpu": cpu, "nproc": os.cpu_count(), "kernel": platform.release(),
    "load_average_start": load0, "load_average_end": load1,
    "other_busy_processes": [l for l in others.splitlines() if l.strip()],
    "c_compiler": ccv, "c_kernels": any_c["kernels"],
    "torch_version": any_t["torch_version"], "torch_config": any_t["torch_config"],
    "torch_blas_libraries": any_t["blas_libraries"], "torch_env": any_t["env"],
}
json.dump(machine, open(f"{out}/machine.json", "w"), indent=2)
json.dump({"config": config, "sets": sets, "rounds": int(rounds), "steps": int(steps),
           "warmup": int(warmup), "rows": rows}, open(f"{out}/summary.json", "w"), indent=2)

m = any_c["model"]
lines = []
A = lines.append
A("# One training step: C model vs the same model in PyTorch\n")
A(f"`tools/step-speed.sh{' --quick' if quick == '1' else ''}` — config `{config}`"
  f"{' with ' + sets if sets else ''} (d {m['d']}, H {m['H']}, ff {m['ff']}, layers "
  f"{m['n_enc']}+{m['n_dec']}, vocab {m['vocab']}, {any_c['params']} parameters, batch_tokens "
  f"{any_c['batch_tokens']}, dropout {m['dropout']:g}), {rounds} interleaved rounds "
  f"(C, torch, C, torch, ...) of {warmup} warm-up + {steps} timed steps on the first "
  f"{int(warmup) + int(steps)} training batches; both sides start from the same parameters "
  "(the C model's initialisation) and see the same batches.\n")
A("A step = zero grads, forward + backward over the batch, global-norm clipping (1.0), AdamW "
  "(C: what `granattn train` does per step — `gm_forward_backward` on the thread pool, `go_clip`, "
  "`go_step`; PyTorch: float32 autograd on padded batches, `clip_grad_norm_`, "
  "`torch.optim.AdamW(foreach=True)`). Medians over all timed steps of all rounds; ratio = "
  "PyTorch ms / C ms (> 1: C faster), against the faster PyTorch setting; PyTorch tok/s is "
  "that setting's. \"passive\": the same PyTorch run with OMP_WAIT_POLICY=PASSIVE (only with "
  "more than one thread; with one thread there are no OpenMP worker threads). Tokens = target "
  "tokens (the loss's tokens).\n")
A("| cross-attention | threads | C ms/step (median) | PyTorch ms/step (median) | "
  "PyTorch passive ms/step | ratio PyTorch/C | per-round ratios | C tgt tok/s | PyTorch tgt tok/s |")
A("|---|---:|---:|---:|---:|---:|---|---:|---:|")
for r in rows:
    A(f"| {r['cross_attention']} | {r['threads']} | {r['c_ms_median']:.1f} | "
      f"{r['torch_ms_median']:.1f} | "
      + (f"{r['torch_passive_ms_median']:.1f}" if r['torch_passive_ms_median'] else "–")
      + f" | **{r['ratio_torch_over_c']:.2f}** | "
      f"{', '.join(f'{x:.2f}' for x in r['ratio_per_round'])} | {r['c_tgt_tok_per_s']:.0f} | "
      f"{r['torch_tgt_tok_per_s']:.0f} |")
A(f"\nAbout {rows[0]['tgt_tokens_per_step']:.0f} target tokens per timed step. First-step "
  "training loss " + ("(dropout on, so the two sides' dropout masks differ: equal only in "
  "expectation) " if m["dropout"] > 0 else "(dropout 0: the same function on both sides) ") +
  "and hard density of the kept cross-attention weights: " +
  "; ".join(f"{r['cross_attention']} t{r['threads']}: C {r['first_step_loss_c']:.4f} / torch "
            f"{r['first_step_loss_torch']:.4f}, density {r['density_c']:.3f} / "
            f"{r['density_torch']:.3f}" for r in rows) + ".\n")
A("## Machine\n")
A(f"* CPU: {cpu} ({machine['nproc']} logical CPUs), Linux {machine['kernel']}; C: {ccv}, "
  f"kernels `{any_c['kernels']}`, meson release build (`-O3`).")
A(f"* PyTorch {any_t['torch_version']} (Debian python3-torch), float32; "
  f"{', '.join(any_t['torch_config'])}. Its float32 matrix products go to **OpenBLAS** "
  f"(libraries mapped: {', '.join(os.path.basename(x) for x in any_t['blas_libraries'])}); no MKL. "
  f"Environment of the PyTorch runs: " +
  ", ".join(f"{k}={'T' if k.endswith('_THREADS') else v}" for k, v in any_t["env"].items()
            if v is not None) + " (T = the run's thread count; OMP_WAIT_POLICY=PASSIVE in the "
  "\"passive\" runs).")
A("* OPENBLAS_CORETYPE is relevant here: OpenBLAS 0.3.21 does not recognise this CPU model and "
  "falls back to its SSE3 (Prescott) kernels, about 4x slower for these matrix shapes; "
  "`tools/torch_step.py` sets it to the widest the CPU has (SkylakeX with AVX-512) unless it is "
  "already set, so PyTorch gets its fast kernels.")
A(f"* Load average (1/5/15 min) at start {load0}, at end {load1}. Other busy processes at start: " +
  ("; ".join(f"`{l.strip()}`" for l in machine["other_busy_processes"]) or "none") + ".")
ntrain = sum("granattn train" in l for l in machine["other_busy_processes"])
if machine["other_busy_processes"]:
    nother = len(machine["other_busy_processes"]) - ntrain
    who = " and ".join(x for x in (
        f"{ntrain} `granattn train` run{'s' if ntrain != 1 else ''}" if ntrain else "",
        f"{nother} other process{'es' if nother != 1 else ''}" if nother else "") if x)
    A(f"\nThe machine was shared during the measurement ({who} kept the cores busy, see the load "
      "average), so absolute times are inflated and vary from round to round; interleaving C and "
      "PyTorch runs exposes both to the same conditions, which is why the ratio from this one "
      "interleaved run is the number that counts. Two-thread runs in particular compete with "
      "those processes for the cores.\n")
if any(r["torch_passive_ms_median"] for r in rows):
    A("With more than one thread, PyTorch's default OpenMP setting (idle worker threads spin "
      "before sleeping) collapses on this oversubscribed machine: the spinning libgomp workers "
      "take the cores from OpenBLAS's own threads and from the other processes. "
      "OMP_WAIT_POLICY=PASSIVE removes most of that, so the ratio is taken against it. "
      "On the C side, the 2-thread pool gains little over 1 thread for the same reason (the "
      "cores are already busy).\n")
A("Files: `{variant}-t{threads}-r{round}-{c,torch,torchpassive}.json` (per-step seconds, tokens, loss, "
  "gradient norm, density), `summary.json`, `machine.json`.")
open(f"{out}/README.md", "w").write("\n".join(lines) + "\n")
print("\n".join(l for l in lines if l.startswith("|")))
PYEOF
echo "step-speed: wrote $OUT/README.md"
