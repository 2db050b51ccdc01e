#!/usr/bin/python3
"""make_seeds.py — writes the seed corpora of the fuzz targets (fuzz/corpus/).

    fuzz/make_seeds.py            # (re)writes fuzz/corpus/{config,checkpoint,tokens,api}

Each seed starts with the harness's mode byte(s) (see the fuzz_*.c headers).
(The corpus directories also hold inputs merged from longer fuzzing runs,
named by their SHA-1; this script does not touch those.)
The seeds are small valid inputs plus a few near-misses, so that the fuzzer
starts deep in each parser; they are committed, and this script documents
how they were made.  Deterministic: running it twice gives the same files.
"""
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


CANON = """[model]
vocab = 8000
d = 32
H = 2
ff = 64
n_enc = 1
n_dec = 1
act = relu
g = 8
L = 3
tau = 0.100000001, 0.00999999978, 0
norm = seed
dense = false
lambda = 0.00999999978
dropout = 0.100000001
label_smoothing = 0.100000001
gumbel = false
gumbel_temp = 1
max_len = 64
gpn = learned
fixed_level = 0
fixed_tau = -1
random_probs = 0.333333343, 0.333333343, 0.333333343

[train]
seed = 1
batch_tokens = 512
lr = 0.00300000003
min_lr = 0
warmup = 10
schedule = invsqrt
total_steps = 20000
beta1 = 0.899999976
beta2 = 0.980000019
eps = 9.99999972e-10
weight_decay = 0
clip = 1
max_steps = 40
max_epochs = 0
max_minutes = 0
log_every = 10
eval_every = 20
ckpt_every = 10
patience = 0
threads = 1
place = none
data_dir = data/tok
train_split = train
dev_split = dev
dev_max_sents = 64
"""


def config_seeds():
    for name in sorted(os.listdir(os.path.join(ROOT, "configs"))):
        if name.endswith(".ini"):
            with open(os.path.join(ROOT, "configs", name), "rb") as f:
                put("config", "file-" + name, b"\x00" + f.read())
    put("config", "file-canonical", b"\x00" + CANON.encode())
    put("config", "file-bom", b"\x00\xef\xbb\xbf[model]\nd = 64\n; c\n")
    sets = [b"lr=1e-3", b"model.lambda=0.05", b"train.data_dir=/tmp/x",
            b"place=list:0,1,2", b"tau=0.2, 0.1, 0", b"gpn=random",
            b"random_probs=0.3,0.3,0.4", b"schedule=cosine", b"total_steps=100",
            b"seed=18446744073709551615", b"max_minutes=1.5", b"dense=yes"]
    put("config", "set-many", b"\x01" + b"\x00".join(sets))
    put("config", "set-one", b"\x01dev_split=dev2")
    put("config", "set-topk", b"\x01" + b"\x00".join([b"gpn=topk", b"topk_frac=0.25", b"topk_k=3",
                                                    b"norm=renorm"]))


def crc(b):
    return zlib.crc32(b) & 0xFFFFFFFF


STATE = struct.Struct("<qqq4Qqdqqdqqdq5q")  # gk_state, 168 bytes


def checkpoint(config, n_params, state, adam=True, extra=()):
    secs = [(b"CONFIG", config.encode() + b"\x00"), (b"STATE", state),
            (b"PARAMS", struct.pack("<%df" % n_params,
                                    *[0.01 * (i - 3) for i in range(n_params)]))]
    if adam:
        secs.append((b"ADAM_M", struct.pack("<%df" % n_params, *[1e-3] * n_params)))
        secs.append((b"ADAM_V", struct.pack("<%df" % n_params, *[1e-6] * n_params)))
    secs.extend(extra)
    payload = b""
    for tag, data in secs:
        payload += tag.ljust(8, b"\x00") + struct.pack("<Q", len(data)) + data
        payload += b"\x00" * (-len(data) % 8)
    step = struct.unpack_from("<q", state, 0)[0]
    h = bytearray(64)
    h[0:8] = b"GACKPT\x00\x00"
    struct.pack_into("<IIQIIQQ", h, 8, 1, 0x01020304, len(payload), crc(payload),
                     len(secs), n_params, step)
    struct.pack_into("<I", h, 60, crc(bytes(h[:60])))
    return bytes(h) + payload


def checkpoint_seeds():
    st = STATE.pack(40, 0, 3, 1, 2, 3, 4, 40, 5.5, 20, 0, 1.25, 1000, 1, 5.6,
                    0, 0, 0, 0, 0, 0)
    put("checkpoint", "valid-last", b"\x00" + checkpoint(CANON, 8, st))
    put("checkpoint", "valid-weights", b"\x00" + checkpoint("[model]\nd = 32\n", 5, st,
                                                             adam=False))
    put("checkpoint", "valid-extra-section",
        b"\x00" + checkpoint(CANON, 3, st, extra=[(b"NOTES", b"odd")]))
    put("checkpoint", "fixcrc-last", b"\x03" + checkpoint(CANON, 8, st))
    put("checkpoint", "fixcrc-odd", b"\x03" + checkpoint("[train]\nlr = 1\n", 2, st)[:-3])


def tokens(pairs, vocab=8000, version=2):
    body = b""
    for src, tgt in pairs:
        body += struct.pack("<H%dH" % len(src), len(src), *src)
        body += struct.pack("<H%dH" % len(tgt), len(tgt), *tgt)
    head = struct.pack("<4sIII", b"GATK", version, len(pairs), vocab)
    if version == 1:
        return head + body
    return head + struct.pack("<I", crc(head + body)) + body


def token_seeds():
    pairs = [([10 + i, 11, 12 + i], [110 + i, 111]) for i in range(6)]
    pairs += [([], [5]), ([7] * 20, [8] * 3)]
    put("tokens", "v2", b"\x00\x04" + tokens(pairs))
    put("tokens", "v2-fixcrc-maxlen8", b"\x03\x01" + tokens(pairs))
    put("tokens", "v2-shuffle", b"\x09\x00" + tokens(pairs))
    put("tokens", "v1", b"\x00\x02" + tokens(pairs, version=1))
    put("tokens", "v1-small-vocab", b"\x04\x00" + tokens([([4, 5], [6])], vocab=7,
                                                          version=1))


def api_seeds():
    def seed(name, isa, H, dh, g, L, mode, flags, N, T, ldp, taus, floats):
        b = name.encode().ljust(16, b"\x00")
        b += bytes([isa & 0xFF, H + 1, dh + 2, g + 2, L + 1, mode + 1, flags,
                    N + 2, T + 1, ldp - N + 1])
        b += struct.pack("<8f", *(taus + [0.0] * (8 - len(taus))))
        b += struct.pack("<%df" % len(floats), *floats)
        return b
    fl = [0.5, -1.0, 0.25, 2.0, -0.75, 1.5, 0.0, -2.0]
    put("api", "sparse", seed("scalar", 0, 2, 4, 3, 3, 0, 2, 6, 2, 6,
                              [0.1, 0.01, 0.0], fl))
    put("api", "dense", seed("avx2", 1, 2, 8, 1, 1, 1, 1, 9, 3, 9, [0.0], fl))
    put("api", "renorm", seed("compact", 2, 1, 3, 4, 2, 1, 0, 5, 1, 7, [0.3, 0.3], fl))
    put("api", "empty", seed("none", 0, 1, 1, 1, 1, 0, 0, 0, 1, 0, [0.5], fl))


if __name__ == "__main__":
    config_seeds()
    checkpoint_seeds()
    token_seeds()
    api_seeds()
    for t in sorted(os.listdir(OUT)):
        print("%s: %d seeds" % (t, len(os.listdir(os.path.join(OUT, t)))))
