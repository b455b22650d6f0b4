#!/usr/bin/env python3
"""Rebuilds ../shared/models/realmix-dev/model.safetensors from the weights it
was made of, for the bundled FP8 sample (samples/realmix-dev-fp8).

Why: the realmix-dev file found in ../shared (23 F32 tensors, Llama/DeepSeek
names) does not hold what its README says. lm_head and the three norms are
runs of real weights, but the 18 projection matrices read as random floats
(exponent bytes uniform over 0..255, ~0.4% NaN, magnitudes up to 2.6e38):
their bytes are the PaddleOCR PP-OCRv4 weights' bytes (ppocr-v4/det then
rec, tensors in header order, then RWKV and Silero -- as the README says)
taken at a 1-byte offset, and partly other data; embed_tokens is real for its
first 57,600 values only. bitsmith rightly refuses to make FP8 of NaN weights.

What this does: for every tensor of realmix-dev (same names, shapes, order),
finds where its first 32 bytes occur in that concatenation and writes the
contiguous run of real (aligned) float32 weights that starts at that place.
Intact tensors come out byte-identical. Standard library only.

usage: realmix_repair.py SHARED_MODELS_DIR OUT.safetensors
"""
import json, math, struct, sys
from array import array


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        out = []
        for name, v in header.items():
            if name == "__metadata__":
                continue
            assert v["dtype"] == "F32", (path, name, v["dtype"])
            f.seek(base + v["data_offsets"][0])
            a = array("f")
            a.frombytes(f.read(v["data_offsets"][1] - v["data_offsets"][0]))
            out.append((name, v["shape"], a))
        return header.get("__metadata__", {}), out


def main():
    models, out_path = sys.argv[1], sys.argv[2]
    _, mix = load(f"{models}/realmix-dev/model.safetensors")
    pool = array("f")
    for part in ("ppocr-v4/det", "ppocr-v4/rec", "tiny-rwkv-5v2-730K/model", "tiny-rwkv-7v0-834K/model",
                 "silero-vad-16k/model"):
        for _, _, a in load(f"{models}/{part}.safetensors")[1]:
            pool.extend(a)
    pool_bytes = pool.tobytes()
    tensors, intact = [], 0
    for name, shape, a in mix:
        at = pool_bytes.find(a[:8].tobytes())
        if at < 0:
            sys.exit(f"{name}: its first values are not in the source weights; cannot repair")
        start = at // 4
        run = pool[start:start + len(a)]
        if len(run) != len(a):
            sys.exit(f"{name}: the run starting at value {start} is too short")
        bad = sum(1 for x in run if not math.isfinite(x))
        if bad:
            sys.exit(f"{name}: the repaired run holds {bad} non-finite values")
        same = run.tobytes() == a.tobytes()
        intact += same
        print(f"  {name:52} {str(shape):12} real values [{start}, {start + len(a)})"
              f"{'  (unchanged)' if same else '  (rebuilt; byte offset %d)' % (at % 4)}")
        tensors.append((name, shape, run))
    header, off = {"__metadata__": {
        "format": "pt",
        "source": "realmix-dev layout; values = contiguous runs of PaddleOCR PP-OCRv4 det+rec (Apache-2.0) then RWKV (MIT) weights, "
                  "rebuilt by tools/realmix_repair.py"}}, 0
    for name, shape, a in tensors:
        n = len(a) * 4
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(out_path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for _, _, a in tensors:
            f.write(a.tobytes())
    print(f"{out_path}: {len(tensors)} tensors, {intact} unchanged, {len(tensors) - intact} rebuilt")


if __name__ == "__main__":
    main()
