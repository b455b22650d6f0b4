// Test checkpoints for the converter, written with bitsmith's own safetensors
// writer, and independent scalar arithmetic to check converted elements
// against (plain C++ bit manipulation, not the codecs under test).
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "convert/checkpoint.h"
#include "convert/file_io.h"
#include "convert/safetensors.h"
#include "formats/dtype.h"

namespace bitsmith::test {

// ---------------------------------------------------------------------------
// Independent scalar arithmetic.

// e4m3fn (OCP FP8): 1 sign, 4 exponent (bias 7), 3 mantissa; S.1111.111 = NaN.
inline float E4M3ToFloat(uint8_t c) {
  const float sign = (c & 0x80) ? -1.0f : 1.0f;
  const int e = (c >> 3) & 0xF, m = c & 7;
  if (e == 0xF && m == 7) return std::nanf("");
  if (e == 0) return sign * std::ldexp(static_cast<float>(m), -9);  // m/8 * 2^-6
  return sign * std::ldexp(1.0f + m / 8.0f, e - 7);
}
// e5m2: 1 sign, 5 exponent (bias 15), 2 mantissa, IEEE-like.
inline float E5M2ToFloat(uint8_t c) {
  const float sign = (c & 0x80) ? -1.0f : 1.0f;
  const int e = (c >> 2) & 0x1F, m = c & 3;
  if (e == 0x1F) return m ? std::nanf("") : sign * INFINITY;
  if (e == 0) return sign * std::ldexp(static_cast<float>(m), -16);
  return sign * std::ldexp(1.0f + m / 4.0f, e - 15);
}
// f32 -> bf16, round to nearest even; NaN -> quiet NaN with the sign.
inline uint16_t F32ToBF16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  if (std::isnan(f)) return static_cast<uint16_t>((u >> 16) | 0x40);
  const uint32_t lsb = (u >> 16) & 1;
  return static_cast<uint16_t>((u + 0x7FFF + lsb) >> 16);
}
inline float BF16ToF32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

// splitmix64.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed) {}
  uint64_t Next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float Uniform() { return static_cast<float>(Next() >> 40) / 16777216.0f; }  // [0, 1)
  float Gauss() {  // Box-Muller, enough for test data
    const float u1 = std::max(Uniform(), 1e-7f), u2 = Uniform();
    return std::sqrt(-2.0f * std::log(u1)) * std::cos(6.2831853f * u2);
  }
};

// ---------------------------------------------------------------------------
// Tensors and files.

struct TestTensor {
  std::string name;
  std::string st_dtype;  // "F8_E4M3", "BF16", ...
  std::vector<uint64_t> shape;
  std::vector<uint8_t> bytes;
};

inline uint64_t Elements(const std::vector<uint64_t>& s) {
  uint64_t n = 1;
  for (uint64_t d : s) n *= d;
  return n;
}

// FP8 codes, never NaN (0x7F/0xFF) unless asked.
inline TestTensor Fp8Tensor(const std::string& name, std::vector<uint64_t> shape, uint64_t seed,
                            std::string st = "F8_E4M3") {
  Rng r(seed);
  TestTensor t{name, st, shape, {}};
  t.bytes.resize(Elements(shape));
  for (uint8_t& b : t.bytes) {
    do b = static_cast<uint8_t>(r.Next());
    while (st == "F8_E4M3" ? (b & 0x7F) == 0x7F : (b & 0x7C) == 0x7C);
  }
  return t;
}
// Positive f32 scales around 1e-3 (the DeepSeek range), stored as `st`.
inline TestTensor ScaleTensor(const std::string& name, std::vector<uint64_t> shape, uint64_t seed,
                              std::string st = "F32") {
  Rng r(seed);
  TestTensor t{name, st, shape, {}};
  const uint64_t n = Elements(shape);
  for (uint64_t i = 0; i < n; ++i) {
    const float v = std::ldexp(1.0f + r.Uniform(), -10 - static_cast<int>(r.Next() % 4));
    if (st == "F32") {
      uint8_t b[4];
      std::memcpy(b, &v, 4);
      t.bytes.insert(t.bytes.end(), b, b + 4);
    } else {  // BF16 (exact: built from bf16-representable values) or F16 via bf16 bits reinterpretation
      uint16_t h;
      if (st == "BF16") {
        h = F32ToBF16(v);
      } else {  // F16: exponent 15-bias encoding of 2^e * (1 + m/1024)
        const uint32_t u = std::bit_cast<uint32_t>(v);
        const int e = static_cast<int>((u >> 23) & 0xFF) - 127 + 15;
        h = static_cast<uint16_t>((e << 10) | ((u >> 13) & 0x3FF));
      }
      t.bytes.push_back(static_cast<uint8_t>(h));
      t.bytes.push_back(static_cast<uint8_t>(h >> 8));
    }
  }
  return t;
}
// Gaussian weights stored as BF16 or F32.
inline TestTensor FloatTensor(const std::string& name, std::vector<uint64_t> shape, uint64_t seed,
                              std::string st = "BF16", float sigma = 0.05f) {
  Rng r(seed);
  TestTensor t{name, st, shape, {}};
  const uint64_t n = Elements(shape);
  for (uint64_t i = 0; i < n; ++i) {
    const float v = sigma * r.Gauss();
    if (st == "F32") {
      uint8_t b[4];
      std::memcpy(b, &v, 4);
      t.bytes.insert(t.bytes.end(), b, b + 4);
    } else {
      const uint16_t h = F32ToBF16(v);
      t.bytes.push_back(static_cast<uint8_t>(h));
      t.bytes.push_back(static_cast<uint8_t>(h >> 8));
    }
  }
  return t;
}

// Writes one safetensors file with bitsmith's writer.
inline void WriteShard(const std::filesystem::path& path, const std::vector<TestTensor>& tensors,
                       bool metadata = true) {
  std::vector<SafetensorsTensorSpec> specs;
  for (const TestTensor& t : tensors) specs.push_back({t.name, t.st_dtype, t.shape});
  std::optional<std::vector<std::pair<std::string, std::string>>> meta;
  if (metadata) meta = std::vector<std::pair<std::string, std::string>>{{"format", "pt"}};
  auto plan = PlanSafetensors(path.string(), specs, meta);
  REQUIRE(plan.ok());
  auto out = BeginPlannedFile(*plan);
  REQUIRE(out.ok());
  for (size_t i = 0; i < tensors.size(); ++i) {
    REQUIRE(tensors[i].bytes.size() == plan->tensors[i].nbytes);
    REQUIRE(out->WriteAt(plan->tensors[i].offset, tensors[i].bytes).ok());
  }
  REQUIRE(out->Commit().ok());
}

inline void WriteText(const std::filesystem::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

// A sharded checkpoint: shards (file name -> tensors), index, config.json and
// tokenizer files.
inline void WriteCheckpoint(const std::filesystem::path& dir,
                            const std::vector<std::pair<std::string, std::vector<TestTensor>>>& shards,
                            const nlohmann::ordered_json& config) {
  std::filesystem::create_directories(dir);
  nlohmann::ordered_json wm = nlohmann::ordered_json::object();
  uint64_t total = 0;
  for (const auto& [file, tensors] : shards) {
    WriteShard(dir / file, tensors);
    for (const TestTensor& t : tensors) {
      wm[t.name] = file;
      total += t.bytes.size();
    }
  }
  nlohmann::ordered_json index = {{"metadata", {{"total_size", total}}}, {"weight_map", wm}};
  WriteText(dir / "model.safetensors.index.json", index.dump(2));
  if (!config.is_null()) WriteText(dir / "config.json", config.dump(2));
  WriteText(dir / "tokenizer.json", "{\"version\": \"1.0\", \"model\": {\"type\": \"BPE\"}}\n");
  WriteText(dir / "generation_config.json", "{\"temperature\": 0.6}\n");
}

inline nlohmann::ordered_json DeepSeekConfig(int bm = 128, int bn = 128) {
  return {{"architectures", {"DeepseekV3ForCausalLM"}},
          {"model_type", "deepseek_v3"},
          {"hidden_size", 96},
          {"torch_dtype", "bfloat16"},
          {"quantization_config",
           {{"activation_scheme", "dynamic"}, {"fmt", "e4m3"}, {"quant_method", "fp8"}, {"weight_block_size", {bm, bn}}}}};
}

// The standard two-shard DeepSeek-layout fixture: ragged shapes, a weight whose
// scale lives in the other shard, F32/BF16/F16 scales, BF16 and F32
// pass-through tensors.
inline std::vector<std::pair<std::string, std::vector<TestTensor>>> DeepSeekShards() {
  const std::string L = "model.layers.0.";
  std::vector<TestTensor> s1 = {
      FloatTensor("model.embed_tokens.weight", {64, 96}, 1),
      Fp8Tensor(L + "self_attn.q_a_proj.weight", {200, 300}, 2),            // ragged both ways
      ScaleTensor(L + "self_attn.q_a_proj.weight_scale_inv", {2, 3}, 3),
      FloatTensor(L + "input_layernorm.weight", {96}, 4),
      Fp8Tensor(L + "mlp.gate_proj.weight", {256, 128}, 5),                 // scale in shard 2
      FloatTensor(L + "mlp.gate.e_score_correction_bias", {8}, 6, "F32"),  // stays F32
      Fp8Tensor(L + "mlp.experts.0.down_proj.weight", {130, 129}, 7),
      ScaleTensor(L + "mlp.experts.0.down_proj.weight_scale_inv", {2, 2}, 8, "BF16"),
  };
  std::vector<TestTensor> s2 = {
      ScaleTensor(L + "mlp.gate_proj.weight_scale_inv", {2, 1}, 9),
      Fp8Tensor(L + "mlp.up_proj.weight", {100, 40}, 10),  // smaller than one block
      ScaleTensor(L + "mlp.up_proj.weight_scale_inv", {1, 1}, 11, "F16"),
      FloatTensor("lm_head.weight", {64, 96}, 12),
      FloatTensor("model.norm.weight", {96}, 13, "F32"),
  };
  return {{"model-00001-of-00002.safetensors", s1}, {"model-00002-of-00002.safetensors", s2}};
}

// f16 bits -> f32 (exact).
inline float F16ToF32(uint16_t h) {
  const float sign = (h & 0x8000) ? -1.0f : 1.0f;
  const int e = (h >> 10) & 0x1F, m = h & 0x3FF;
  if (e == 0x1F) return m ? std::nanf("") : sign * INFINITY;
  if (e == 0) return sign * std::ldexp(static_cast<float>(m), -24);
  return sign * std::ldexp(1.0f + m / 1024.0f, e - 15);
}

// Value i of a scale tensor (F32, BF16 or F16), widened.
inline float ScaleValue(const TestTensor& t, uint64_t i) {
  if (t.st_dtype == "F32") {
    float v;
    std::memcpy(&v, t.bytes.data() + 4 * i, 4);
    return v;
  }
  const uint16_t h = static_cast<uint16_t>(t.bytes[2 * i] | (t.bytes[2 * i + 1] << 8));
  return t.st_dtype == "BF16" ? BF16ToF32(h) : F16ToF32(h);
}

// A tensor's bytes and descriptor in a converted checkpoint.
struct ReadTensor {
  TensorInfo info;
  std::vector<uint8_t> bytes;
};
inline ReadTensor ReadConverted(const Checkpoint& ck, const std::string& name) {
  const TensorInfo* t = ck.Find(name);
  if (!t) FAIL("tensor '" << name << "' not in " << ck.path);
  auto f = InputFile::Open(t->file);
  REQUIRE(f.ok());
  auto b = f->ReadRange(t->offset, t->nbytes);
  REQUIRE(b.ok());
  return {*t, std::move(*b)};
}

inline const TestTensor& FindTest(const std::vector<std::pair<std::string, std::vector<TestTensor>>>& shards,
                                  const std::string& name) {
  for (const auto& [f, ts] : shards)
    for (const TestTensor& t : ts)
      if (t.name == name) return t;
  FAIL("no test tensor " << name);
  throw 0;
}

}  // namespace bitsmith::test
