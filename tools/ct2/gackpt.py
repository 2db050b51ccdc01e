"""gackpt.py — reads a granattn checkpoint (model/checkpoint.h) in Python.

    import gackpt
    ck = gackpt.load("runs/default/best.ckpt")
    ck.model["d"], ck.tensors["dec0.cross.wq"].shape, ck.step

The same checks as gk_load, in the same order, each with its own message
naming the file (GackptError): file size, magic, version, endianness
marker, header CRC-32, total size, payload CRC-32, section table (inside the
payload, padding included, no duplicates), the CONFIG text, the parameter
count against the file and against the layout of the config, every weight
finite.  (The training state and the Adam moments are not needed here and
are not checked beyond the section table.)

The parameter layout is model/params.c's walk(): one float32 buffer, the
tensors in that order, no gaps — embedding, the encoder layers, the encoder
final layer norm, the decoder layers (GPN tensors included, also in a dense
model: they are allocated, just unused), the decoder final layer norm.
tests/test_ct2.sh compares this table with the C model's own (gm_tensor,
through tools/torch_check/dump.c) name by name.

Standard library + numpy only (no torch).  tools/torch_check/check.py reads
dump.c's output, not checkpoints, and imports torch at the top, so there is
no Python checkpoint reader to share with it.
"""

import struct
import zlib

import numpy as np

MAGIC = b"GACKPT\x00\x00"
VERSION = 1
ENDIAN_MARK = 0x01020304
HEADER = 64

# [model] keys of model/config_file.c and how to read them.
_INT_KEYS = ("vocab", "d", "H", "ff", "n_enc", "n_dec", "g", "L", "max_len", "fixed_level")
_BOOL_KEYS = ("dense", "gumbel")
_FLOAT_KEYS = ("lambda", "dropout", "label_smoothing", "gumbel_temp", "fixed_tau")
_LIST_KEYS = ("tau", "random_probs")
# gm_config_default / gcf_defaults: used when a key is absent from the text
_DEFAULTS = {"act": "relu", "dense": False, "gpn": "learned", "norm": "seed"}


class GackptError(Exception):
    """A checkpoint that cannot be read; str() is the message (names the file)."""


def _crc(b):
    return zlib.crc32(b) & 0xFFFFFFFF


def parse_config(text, name="<config>"):
    """The [model] section of a canonical config text as a dict of typed values
    (ints, bools, floats, float lists, lower-case strings)."""
    model = {}
    section = None
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise GackptError("%s: CONFIG line %d: bad section header %r" % (name, lineno, line))
            section = line[1:-1].strip()
            continue
        if "=" not in line:
            raise GackptError("%s: CONFIG line %d: expected key = value, got %r" % (name, lineno, line))
        key, val = (s.strip() for s in line.split("=", 1))
        if section != "model":
            continue
        try:
            if key in _INT_KEYS:
                model[key] = int(val)
            elif key in _BOOL_KEYS:
                v = val.lower()
                if v not in ("true", "false", "yes", "no", "1", "0"):
                    raise ValueError(val)
                model[key] = v in ("true", "yes", "1")
            elif key in _FLOAT_KEYS:
                model[key] = float(val)
            elif key in _LIST_KEYS:
                model[key] = [float(x) for x in val.split(",")]
            else:
                model[key] = val.lower()
        except ValueError:
            raise GackptError("%s: CONFIG line %d: %s = %r is not a valid value" % (name, lineno, key, val))
    for k, v in _DEFAULTS.items():
        model.setdefault(k, v)
    missing = [k for k in ("vocab", "d", "H", "ff", "n_enc", "n_dec", "g", "L", "max_len") if k not in model]
    if missing:
        raise GackptError("%s: CONFIG text lacks [model] key(s) %s" % (name, ", ".join(missing)))
    return model


def layout(m):
    """[(name, shape)] in buffer order, as model/params.c walk() lays them out.
    shape is (rows, cols) for matrices and (cols,) for vectors (rows = 1)."""
    d, ff, g, L, V = m["d"], m["ff"], m["g"], m["L"], m["vocab"]
    out = [("emb", (V, d))]
    for l in range(m["n_enc"]):
        p = "enc%d." % l
        out += [(p + "ln1.w", (d,)), (p + "ln1.b", (d,)),
                (p + "attn.wqkv", (3 * d, d)), (p + "attn.bqkv", (3 * d,)),
                (p + "attn.wo", (d, d)), (p + "attn.bo", (d,)),
                (p + "ln2.w", (d,)), (p + "ln2.b", (d,)),
                (p + "ffn.w1", (ff, d)), (p + "ffn.b1", (ff,)),
                (p + "ffn.w2", (d, ff)), (p + "ffn.b2", (d,))]
    out += [("enc.lnf.w", (d,)), ("enc.lnf.b", (d,))]
    for l in range(m["n_dec"]):
        p = "dec%d." % l
        out += [(p + "ln1.w", (d,)), (p + "ln1.b", (d,)),
                (p + "self.wqkv", (3 * d, d)), (p + "self.bqkv", (3 * d,)),
                (p + "self.wo", (d, d)), (p + "self.bo", (d,)),
                (p + "ln2.w", (d,)), (p + "ln2.b", (d,)),
                (p + "cross.wq", (d, d)), (p + "cross.bq", (d,)),
                (p + "cross.wkv", (2 * d, d)), (p + "cross.bkv", (2 * d,)),
                (p + "cross.wo", (d, d)), (p + "cross.bo", (d,)),
                (p + "gpn.U", (g, d)), (p + "gpn.b1", (g,)),
                (p + "gpn.W", (g, d)), (p + "gpn.W2", (L, g)), (p + "gpn.b2", (L,)),
                (p + "ln3.w", (d,)), (p + "ln3.b", (d,)),
                (p + "ffn.w1", (ff, d)), (p + "ffn.b1", (ff,)),
                (p + "ffn.w2", (d, ff)), (p + "ffn.b2", (d,))]
    out += [("dec.lnf.w", (d,)), ("dec.lnf.b", (d,))]
    return out


class Checkpoint:
    """config_text (str), model (dict, the [model] section), step (int),
    params (float32 [n_params]), tensors (name -> view of params, shaped)."""

    def __init__(self, path, config_text, model, step, params):
        self.path = path
        self.config_text = config_text
        self.model = model
        self.step = step
        self.params = params
        self.tensors = {}
        off = 0
        for name, shape in layout(model):
            n = int(np.prod(shape))
            self.tensors[name] = params[off:off + n].reshape(shape)
            off += n


def load(path):
    """Reads and verifies a checkpoint; GackptError with a message otherwise."""
    blob, sections = read_sections(path)
    step = struct.unpack_from("<Q", blob, 40)[0]
    nparams = struct.unpack_from("<Q", blob, 32)[0]
    return _model(path, dict(sections), nparams, step)


def read_sections(path):
    """The verified container (header, both CRCs, section table): (the file's
    bytes, [(tag, bytes)] in file order); GackptError with a message."""
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except IsADirectoryError:
        raise GackptError("%s: is a directory, not a checkpoint file" % path)
    except OSError as e:
        raise GackptError("cannot read %s: %s" % (path, e.strerror or e))
    if len(blob) < HEADER:
        raise GackptError("%s: not a granattn checkpoint (%d bytes, shorter than the %d-byte header)"
                          % (path, len(blob), HEADER))
    if blob[:8] != MAGIC:
        raise GackptError("%s: not a granattn checkpoint (bad magic %r)" % (path, blob[:8]))
    version, endian, payload, pcrc, nsec, nparams, step = struct.unpack_from("<IIQIIQQ", blob, 8)
    if endian != ENDIAN_MARK:
        raise GackptError("%s: checkpoint written on a machine of the other byte order "
                          "(or corrupt header)" % path)
    if struct.unpack_from("<I", blob, 60)[0] != _crc(blob[:60]):
        raise GackptError("%s: corrupt checkpoint header (checksum mismatch)" % path)
    if version != VERSION:
        raise GackptError("%s: checkpoint format version %d; this reader reads version %d"
                          % (path, version, VERSION))
    if HEADER + payload != len(blob):
        raise GackptError("%s: file has %d bytes but the header says %d (truncated or trailing data)"
                          % (path, len(blob), HEADER + payload))
    body = memoryview(blob)[HEADER:]
    if _crc(body) != pcrc:
        raise GackptError("%s: corrupt checkpoint (payload checksum mismatch)" % path)
    sections = {}
    off = 0
    for i in range(nsec):
        if off + 16 > payload:
            raise GackptError("%s: section %d header outside the payload" % (path, i))
        tag = bytes(body[off:off + 8]).rstrip(b"\x00").decode("ascii", "replace")
        size = struct.unpack_from("<Q", body, off + 8)[0]
        start = off + 16
        end = start + size + (-size % 8)
        if end > payload:
            raise GackptError("%s: section %s (%d bytes) runs past the payload" % (path, tag, size))
        if tag in sections:
            raise GackptError("%s: duplicate section %s" % (path, tag))
        sections[tag] = body[start:start + size]
        off = end
    if off != payload:
        raise GackptError("%s: %d bytes after the last section" % (path, payload - off))
    for need in ("CONFIG", "PARAMS"):
        if need not in sections:
            raise GackptError("%s: no %s section" % (path, need))
    return blob, [(t, bytes(b)) for t, b in sections.items()]


def _model(path, sections, nparams, step):
    cfg = bytes(sections["CONFIG"])
    if not cfg.endswith(b"\x00"):
        raise GackptError("%s: CONFIG section is not NUL-terminated" % path)
    try:
        text = cfg[:-1].decode("utf-8")
    except UnicodeDecodeError:
        raise GackptError("%s: CONFIG section is not UTF-8 text" % path)
    model = parse_config(text, path)
    if len(sections["PARAMS"]) != 4 * nparams:
        raise GackptError("%s: PARAMS has %d bytes, the header says %d parameters"
                          % (path, len(sections["PARAMS"]), nparams))
    expect = sum(int(np.prod(s)) for _, s in layout(model))
    if expect != nparams:
        raise GackptError("%s: %d parameters, but its config (d=%d, ff=%d, layers %d+%d, vocab %d) "
                          "needs %d" % (path, nparams, model["d"], model["ff"], model["n_enc"],
                                        model["n_dec"], model["vocab"], expect))
    params = np.frombuffer(sections["PARAMS"], dtype="<f4").astype(np.float32)
    if not np.isfinite(params).all():
        raise GackptError("%s: %d non-finite weight(s)" % (path, int((~np.isfinite(params)).sum())))
    return Checkpoint(path, text, model, step, params)
