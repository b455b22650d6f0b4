#!/usr/bin/env python3
"""Writes a synthetic DeepSeek-V3-layout FP8 checkpoint for bench/convert_bench.sh.

Usage: convert_synth.py OUT_DIR [LAYERS] [BIG_TENSOR_MIB]

Per layer: attention projections with DeepSeek-V3's shapes (q_a 1536x7168,
q_b 24576x1536, kv_a_proj_with_mqa 576x7168 -- 4.5 blocks of 128 rows, a
ragged edge --, kv_b 32768x512, o_proj 7168x16384), three routed experts
(gate/up 2048x7168, down 7168x2048), one ragged projection (1000x7100), BF16
norms and an F32 e_score_correction_bias; plus one FP8 tensor of
BIG_TENSOR_MIB MiB (default 1024: the "1 GiB tensor" of the memory goal).
FP8 codes are random bytes with the NaN codes 0x7F/0xFF replaced by
0x7E/0xFE; each "<name>_scale_inv" is F32 [ceil(rows/128), ceil(cols/128)]
with values near 1e-3 (DeepSeek's range). Two shards, an index, config.json
with quantization_config. Standard library only.
"""
import json, os, struct, sys

NO_NAN = bytes.maketrans(b"\x7f\xff", b"\x7e\xfe")


def fp8(rows, cols):
    return ("F8_E4M3", [rows, cols], rows * cols)


def shapes(layers, big_mib):
    t = []
    if big_mib > 0:
        cols = 16384
        rows = big_mib * 1024 * 1024 // cols
        t.append(("model.layers.0.mlp.shared_big.weight", fp8(rows, cols)))
    for l in range(layers):
        p = f"model.layers.{l}."
        t += [
            (p + "input_layernorm.weight", ("BF16", [7168], 7168 * 2)),
            (p + "self_attn.q_a_proj.weight", fp8(1536, 7168)),
            (p + "self_attn.q_a_layernorm.weight", ("BF16", [1536], 1536 * 2)),
            (p + "self_attn.q_b_proj.weight", fp8(24576, 1536)),
            (p + "self_attn.kv_a_proj_with_mqa.weight", fp8(576, 7168)),
            (p + "self_attn.kv_a_layernorm.weight", ("BF16", [512], 512 * 2)),
            (p + "self_attn.kv_b_proj.weight", fp8(32768, 512)),
            (p + "self_attn.o_proj.weight", fp8(7168, 16384)),
            (p + "mlp.gate.weight", ("BF16", [256, 7168], 256 * 7168 * 2)),
            (p + "mlp.gate.e_score_correction_bias", ("F32", [256], 256 * 4)),
            (p + "mlp.ragged_proj.weight", fp8(1000, 7100)),
        ]
        for e in range(3):
            q = p + f"mlp.experts.{e}."
            t += [(q + "gate_proj.weight", fp8(2048, 7168)), (q + "up_proj.weight", fp8(2048, 7168)),
                  (q + "down_proj.weight", fp8(7168, 2048))]
    out = []
    for name, (dt, shape, nbytes) in t:
        out.append((name, dt, shape, nbytes))
        if dt == "F8_E4M3":
            g = [(shape[0] + 127) // 128, (shape[1] + 127) // 128]
            out.append((name + "_scale_inv", "F32", g, g[0] * g[1] * 4))
    return out


def payload(dt, nbytes, seed):
    if dt == "F8_E4M3":
        return None  # streamed
    if dt == "F32" and nbytes % 4 == 0:
        import random
        r = random.Random(seed)
        return b"".join(struct.pack("<f", (1.0 + r.random()) * 2.0 ** -(10 + r.randrange(4)))
                        for _ in range(nbytes // 4))
    return bytes([0x80, 0x3F]) * (nbytes // 2)  # BF16 1.0


def write_shard(path, tensors, seed):
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for name, dt, shape, n in tensors:
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for i, (name, dt, shape, n) in enumerate(tensors):
            p = payload(dt, n, seed + i)
            if p is not None:
                f.write(p)
                continue
            left = n
            while left:
                k = min(left, 64 << 20)
                f.write(os.urandom(k).translate(NO_NAN))
                left -= k


def main():
    out = sys.argv[1]
    layers = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    big = int(sys.argv[3]) if len(sys.argv) > 3 else 1024
    os.makedirs(out, exist_ok=True)
    ts = shapes(layers, big)
    # Two shards of about equal size; a weight and its scale may straddle the cut
    # (a scale in the other shard, as in the real checkpoint).
    total = sum(t[3] for t in ts)
    cut, acc = len(ts), 0
    for i, t in enumerate(ts):
        acc += t[3]
        if acc >= total // 2:
            cut = i + 1
            break
    shards = [ts[:cut], ts[cut:]]
    wm = {}
    for k, s in enumerate(shards):
        name = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        write_shard(os.path.join(out, name), s, 1000 * k)
        for t in s:
            wm[t[0]] = name
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": wm}, f, indent=2)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump({"architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "hidden_size": 7168,
                   "torch_dtype": "bfloat16",
                   "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                                           "weight_block_size": [128, 128]}}, f, indent=2)
    print(f"{out}: {len(ts)} tensors, {total} bytes in {len(shards)} shards")


if __name__ == "__main__":
    main()
