#!/usr/bin/python3
"""export.py — a granattn checkpoint as a CTranslate2 model (TransformerSpec).

    tools/ct2/export.py CKPT OUTDIR [--force] [--max-len N] [--quantization Q]

Writes OUTDIR/model.bin, config.json, shared_vocabulary.json (CTranslate2's
files) and granattn_export.json (where it came from, what was mapped).
Runs on the project venv .venv-ct2 (created with ctranslate2 4.8.5 on first
use, tools/ct2/ct2env.py).

Vocabulary: the token ids as strings, "0" .. "V-1", so that both engines
work on the same id sequences (pad "0", unk "1", bos "2", eos "3").  The
source must end with eos ("3"), as granattn's decoder appends it
(model/decode.c): the exported config does not add it (add_source_eos =
false) so that score_batch sees exactly the ids it is given.

Mapping (each detail checked against model/params.c, layers.c, forward.c,
inference.c; see README.md "CTranslate2 side by side"):
  pre-norm blocks, final layer norm on encoder and decoder  pre_norm=True
  layer norm eps 1e-5, biased variance, with bias           layer_norm_epsilon=1e-5
  FFN relu | gelu (tanh form)                               Activation.RELU | GELUTanh
  every linear has a bias; q|k|v stacked row-wise [3d][d];  linear[0] = wqkv (fused),
    cross-attention q [d][d] and k|v stacked [2d][d]          cross: linear[0] = wq,
                                                              linear[1] = wkv, linear[2] = wo
  heads: column blocks of dh inside q, k, v                 the same split
  scores / sqrt(dh)                                         CTranslate2's default
  embedding * sqrt(d) (float)                               scale_embeddings (sqrt(float d))
  one embedding matrix: source, target, output projection   the same array three times
    (no output bias)                                          (saved once: aliases)
  sinusoidal positions, pe[p][2k] = sin(p / 10000^(2k/d)),  CTranslate2's built-in table
    pe[p][2k+1] = cos(...), first position 0                  differs (sin|cos halves,
                                                              log-spaced over d/2-1, first
                                                              position 1): ours is stored
                                                              as position_encodings/encodings
                                                              (max_len rows)
  decoder starts from bos (2) at position 0                 decoder_start_token "2"

A sparse checkpoint (dense = false: learned GPN, gpn = fixed, random or topk)
exports as its DENSE model: the same weights with full softmax
cross-attention — CTranslate2 has no GPN, so the GPN tensors are dropped and
its translations are those of the dense computation, not of the sparse
model granattn runs.  The exporter says so on stderr and in
granattn_export.json ("attention": "dense (from a sparse ... model)").

Refused, with a message, exit 1: a file that is not a readable checkpoint;
n_enc = 0 (CTranslate2's encoder needs a layer); an activation other than
relu / gelu; d not a multiple of H; an OUTDIR that exists and is not empty
(without --force).  Exit 2: bad usage.
"""

import argparse
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import gackpt  # noqa: E402

PAD, UNK, BOS, EOS = 0, 1, 2, 3
LN_EPS = 1e-5  # model/layers.c gm_layernorm_forward


def fail(msg):
    print("export.py: error: %s" % msg, file=sys.stderr)
    sys.exit(1)


def posenc_table(max_len, d):
    """model/layers.c gm_posenc_table: double precision, rounded to float."""
    import numpy as np
    pe = np.zeros((max_len, d), dtype=np.float64)
    pos = np.arange(max_len, dtype=np.float64)[:, None]
    k = np.arange(0, d, 2, dtype=np.float64)
    freq = np.power(10000.0, -k / d)
    pe[:, 0::2] = np.sin(pos * freq)
    pe[:, 1::2] = np.cos(pos * freq)[:, : d // 2]
    return pe.astype(np.float32)


def check_supported(m, path):
    """Refuses what the TransformerSpec cannot express; returns notes."""
    notes = []
    if m["act"] not in ("relu", "gelu"):
        fail("%s: act = %s: only relu and gelu are exported" % (path, m["act"]))
    if m["d"] % m["H"] != 0:
        fail("%s: d = %d is not a multiple of H = %d" % (path, m["d"], m["H"]))
    if m["d"] % 2 != 0:
        fail("%s: d = %d is odd (the position table is laid out in sin/cos pairs)"
             % (path, m["d"]))
    if m["n_enc"] < 1:
        fail("%s: n_enc = %d: CTranslate2's Transformer encoder needs at least one layer"
             % (path, m["n_enc"]))
    if m["n_dec"] < 1:
        fail("%s: n_dec = %d: no decoder layer" % (path, m["n_dec"]))
    if not m["dense"]:
        gpn = m.get("gpn", "learned")
        notes.append("sparse model (gpn = %s, L = %d, norm = %s) exported as its DENSE model: "
                     "CTranslate2 has no GPN; the GPN tensors are dropped and cross-attention "
                     "is the full softmax over the same weights, so CTranslate2 translates "
                     "with the dense computation, not the sparse one granattn runs"
                     % (gpn, m["L"], m.get("norm", "seed")))
    return notes


def build_spec(ck, max_len):
    import ctranslate2
    from ctranslate2.specs import common_spec, transformer_spec
    m, t = ck.model, ck.tensors
    act = {"relu": common_spec.Activation.RELU,
           "gelu": common_spec.Activation.GELUTanh}[m["act"]]
    spec = transformer_spec.TransformerSpec.from_config(
        (m["n_enc"], m["n_dec"]), m["H"], pre_norm=True, no_final_norm=False, activation=act)
    cfg = spec.config
    cfg.unk_token = str(UNK)
    cfg.bos_token = str(BOS)
    cfg.eos_token = str(EOS)
    cfg.decoder_start_token = str(BOS)
    cfg.add_source_bos = False
    cfg.add_source_eos = False
    cfg.layer_norm_epsilon = LN_EPS

    emb = t["emb"]
    pe = posenc_table(max_len, m["d"])

    def ln(dst, pre):
        dst.gamma = t[pre + ".w"]
        dst.beta = t[pre + ".b"]

    def lin(dst, w, b):
        dst.weight = t[w]
        dst.bias = t[b]

    enc = spec.encoder
    enc.embeddings[0].weight = emb
    enc.scale_embeddings = True
    enc.position_encodings.encodings = pe
    for l, layer in enumerate(enc.layer):
        p = "enc%d." % l
        ln(layer.self_attention.layer_norm, p + "ln1")
        lin(layer.self_attention.linear[0], p + "attn.wqkv", p + "attn.bqkv")
        lin(layer.self_attention.linear[1], p + "attn.wo", p + "attn.bo")
        ln(layer.ffn.layer_norm, p + "ln2")
        lin(layer.ffn.linear_0, p + "ffn.w1", p + "ffn.b1")
        lin(layer.ffn.linear_1, p + "ffn.w2", p + "ffn.b2")
    ln(enc.layer_norm, "enc.lnf")

    dec = spec.decoder
    dec.embeddings.weight = emb
    dec.scale_embeddings = True
    dec.position_encodings.encodings = pe
    for l, layer in enumerate(dec.layer):
        p = "dec%d." % l
        ln(layer.self_attention.layer_norm, p + "ln1")
        lin(layer.self_attention.linear[0], p + "self.wqkv", p + "self.bqkv")
        lin(layer.self_attention.linear[1], p + "self.wo", p + "self.bo")
        ln(layer.attention.layer_norm, p + "ln2")
        lin(layer.attention.linear[0], p + "cross.wq", p + "cross.bq")
        lin(layer.attention.linear[1], p + "cross.wkv", p + "cross.bkv")
        lin(layer.attention.linear[2], p + "cross.wo", p + "cross.bo")
        ln(layer.ffn.layer_norm, p + "ln3")
        lin(layer.ffn.linear_0, p + "ffn.w1", p + "ffn.b1")
        lin(layer.ffn.linear_1, p + "ffn.w2", p + "ffn.b2")
    ln(dec.layer_norm, "dec.lnf")
    dec.projection.weight = emb  # tied, no bias

    vocab = [str(i) for i in range(m["vocab"])]
    spec.register_source_vocabulary(vocab)
    spec.register_target_vocabulary(vocab)
    return spec, ctranslate2.__version__


def main():
    p = argparse.ArgumentParser(
        prog="tools/ct2/export.py",
        description="Export a granattn checkpoint as a CTranslate2 Transformer model "
                    "(vocabulary: the token ids as strings; sparse models export as their "
                    "dense model).",
        epilog="See the top of this file and README.md ('CTranslate2 side by side') for the "
               "architecture mapping.")
    p.add_argument("ckpt", help="granattn checkpoint (best.ckpt / last.ckpt)")
    p.add_argument("outdir", help="CTranslate2 model directory to write")
    p.add_argument("--force", action="store_true",
                   help="replace OUTDIR if it exists and is not empty")
    p.add_argument("--max-len", type=int, metavar="N",
                   help="rows of the position table (default: the model's max_len; larger "
                        "as granattn's --max-len: sinusoidal positions extend)")
    p.add_argument("--quantization", metavar="Q",
                   help="CTranslate2 weight type (int8, int8_float32, int16, float16, ...; "
                        "default: float32 as trained)")
    args = p.parse_args()

    # checkpoint first: its errors need no venv
    try:
        ck = gackpt.load(args.ckpt)
    except gackpt.GackptError as e:
        fail(str(e))
    m = ck.model
    notes = check_supported(m, args.ckpt)
    max_len = args.max_len if args.max_len is not None else m["max_len"]
    if max_len < 2 or max_len > 65535:
        fail("--max-len %d outside [2, 65535]" % max_len)
    if os.path.exists(args.outdir):
        if not os.path.isdir(args.outdir):
            fail("%s exists and is not a directory" % args.outdir)
        if os.listdir(args.outdir) and not args.force:
            fail("%s exists and is not empty (--force replaces it)" % args.outdir)

    import ct2env
    ct2env.ensure()  # may re-execute this script on .venv-ct2/bin/python3

    spec, ct2_version = build_spec(ck, max_len)
    try:
        spec.validate()
        spec.optimize(quantization=args.quantization)
    except ValueError as e:
        fail("CTranslate2 rejected the specification: %s" % e)
    if os.path.isdir(args.outdir) and args.force:
        shutil.rmtree(args.outdir)
    os.makedirs(args.outdir, exist_ok=True)
    spec.save(args.outdir)
    meta = {
        "source_checkpoint": os.path.abspath(args.ckpt),
        "step": ck.step,
        "ctranslate2": ct2_version,
        "attention": "dense" if m["dense"] else
                     "dense (from a sparse gpn = %s model; GPN dropped)" % m.get("gpn", "learned"),
        "notes": notes,
        "vocabulary": "token ids as strings: pad 0, unk 1, bos 2, eos 3",
        "source_eos": "not added by the model: append \"3\" to every source (granattn does)",
        "position_table_rows": max_len,
        "quantization": args.quantization or "float32",
        "model": m,
        "config_text": ck.config_text,
    }
    with open(os.path.join(args.outdir, "granattn_export.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    for n in notes:
        print("export.py: note: %s" % n, file=sys.stderr)
    print("export.py: %s (step %d, d=%d H=%d ff=%d layers %d+%d, vocab %d, %s) -> %s"
          % (args.ckpt, ck.step, m["d"], m["H"], m["ff"], m["n_enc"], m["n_dec"], m["vocab"],
             meta["attention"], args.outdir), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
