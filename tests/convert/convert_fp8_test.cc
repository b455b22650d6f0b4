// convert: FP8 -> BF16/F16/F32 exactly as DeepSeek's fp8_cast_bf16, checked
// element by element against independent scalar arithmetic; index, config,
// pass-through and error rules; BF16/F32 -> block-scaled FP8.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "codecs/element.h"
#include "convert/checkpoint.h"
#include "convert/convert.h"
#include "convert/fp8.h"
#include "convert/tensor_plan.h"
#include "convert_fixture.h"
#include "support/deepseek_fixture.h"
#include "support/test_data.h"

namespace bitsmith {
namespace {

namespace fs = std::filesystem;
using test::TestTensor;
using Shards = std::vector<std::pair<std::string, std::vector<TestTensor>>>;

Result<ConvertReport> Convert(const ConvertOptions& o, int threads = 2, bool resume = false, bool force = false,
                              ConversionPlan* plan_out = nullptr) {
  BITSMITH_ASSIGN_OR_RETURN(ConversionPlan plan, BuildConversionPlan(o));
  RunControl c;
  c.threads = threads;
  c.resume = resume;
  c.force = force;
  auto r = RunConversion(plan, c);
  if (plan_out) *plan_out = std::move(plan);
  return r;
}

ConvertOptions ToType(const fs::path& in, const fs::path& out, DType t) {
  ConvertOptions o;
  o.input = in.string();
  o.output = out.string();
  o.to = t;
  return o;
}

std::string Slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Every element of a dequantized weight against
//   target(f32(decode(code)) * scale[i / bm][j / bn]).
void CheckDequantized(const Shards& shards, const Checkpoint& out, const std::string& name, DType to,
                      uint64_t bm = 128, uint64_t bn = 128) {
  const TestTensor& w = test::FindTest(shards, name);
  const TestTensor& s = test::FindTest(shards, name + "_scale_inv");
  const test::ReadTensor got = test::ReadConverted(out, name);
  REQUIRE(got.info.dtype == to);
  REQUIRE(got.info.shape == w.shape);
  const uint64_t rows = w.shape[0], cols = w.shape[1], gcols = (cols + bn - 1) / bn;
  uint64_t checked = 0;
  for (uint64_t i = 0; i < rows; ++i)
    for (uint64_t j = 0; j < cols; ++j) {
      const uint8_t code = w.bytes[i * cols + j];
      const float scale = test::ScaleValue(s, (i / bm) * gcols + j / bn);
      const float y = (w.st_dtype == "F8_E4M3" ? test::E4M3ToFloat(code) : test::E5M2ToFloat(code)) * scale;
      const uint64_t k = i * cols + j;
      if (to == DType::kBF16) {
        const uint16_t want = test::F32ToBF16(y);
        const uint16_t have = static_cast<uint16_t>(got.bytes[2 * k] | (got.bytes[2 * k + 1] << 8));
        if (want != have)
          FAIL(name << " at (" << i << ", " << j << ") code 0x" << std::hex << int(code) << " scale " << scale
                    << ": want 0x" << want << " got 0x" << have);
      } else if (to == DType::kF32) {
        float have;
        std::memcpy(&have, got.bytes.data() + 4 * k, 4);
        if (std::bit_cast<uint32_t>(have) != std::bit_cast<uint32_t>(y))
          FAIL(name << " at (" << i << ", " << j << "): want " << y << " got " << have);
      } else {
        // f16: the product rounded by the reference encoder (the product itself is independent).
        const uint16_t want = static_cast<uint16_t>(EncodeF32Ref(ElementFormatId::kF16, y));
        const uint16_t have = static_cast<uint16_t>(got.bytes[2 * k] | (got.bytes[2 * k + 1] << 8));
        if (want != have) FAIL(name << " at (" << i << ", " << j << "): want " << want << " got " << have);
      }
      ++checked;
    }
  CHECK(checked == rows * cols);
}

TEST_CASE("FindNonFiniteFp8: the first code the element codec decodes to NaN or inf", "[convert][fp8]") {
  // The oracle is the scalar element codec (checked against ml_dtypes' tables):
  // every code of both formats, at every position of a 150-byte buffer of finite
  // codes (both sides of the 64-byte block boundary and the scalar tail).
  for (const DType fmt : {DType::kE4M3FN, DType::kE5M2}) {
    const ElementFormatId ef = *GetDType(fmt).element;
    for (int code = 0; code < 256; ++code) {
      const bool finite = std::isfinite(DecodeToF32Ref(ef, static_cast<uint32_t>(code)));
      for (const size_t pos : {size_t{0}, size_t{1}, size_t{63}, size_t{64}, size_t{127}, size_t{128}, size_t{149}}) {
        std::vector<uint8_t> buf(150, 0x38);  // 1.0 in e4m3fn, 0.5 in e5m2: finite
        buf[pos] = static_cast<uint8_t>(code);
        INFO(GetDType(fmt).name << " code 0x" << std::hex << code << std::dec << " at " << pos);
        CHECK(FindNonFiniteFp8(fmt, buf.data(), buf.size()) == (finite ? buf.size() : pos));
      }
    }
  }
}

TEST_CASE("convert: DeepSeek FP8 -> BF16, every element, index and config rules", "[convert][fp8]") {
  test::TempDir tmp;
  const Shards shards = test::DeepSeekShards();
  test::WriteCheckpoint(tmp / "in", shards, test::DeepSeekConfig());
  ConversionPlan plan;
  auto rep = Convert(ToType(tmp / "in", tmp / "out", DType::kBF16), 2, false, false, &plan);
  REQUIRE(rep.ok());
  auto out = OpenCheckpoint((tmp / "out").string());
  REQUIRE(out.ok());

  // 1. Every FP8 weight, every element (ragged edges, cross-shard scale, BF16 and F16 scales).
  for (const char* w : {"model.layers.0.self_attn.q_a_proj.weight", "model.layers.0.mlp.gate_proj.weight",
                        "model.layers.0.mlp.experts.0.down_proj.weight", "model.layers.0.mlp.up_proj.weight"})
    CheckDequantized(shards, *out, w, DType::kBF16);

  // 2. Pass-through tensors byte for byte, in their dtype (the F32 bias stays F32).
  for (const char* n : {"model.embed_tokens.weight", "model.layers.0.input_layernorm.weight",
                        "model.layers.0.mlp.gate.e_score_correction_bias", "lm_head.weight", "model.norm.weight"}) {
    const TestTensor& t = test::FindTest(shards, n);
    const auto got = test::ReadConverted(*out, n);
    CHECK(got.info.raw_dtype == t.st_dtype);
    CHECK(got.bytes == t.bytes);
  }

  // 3. Scales gone; one output shard per input shard with the same basename.
  for (const TensorInfo& t : out->tensors) CHECK(t.name.find("_scale_inv") == std::string::npos);
  REQUIRE(out->files.size() == 2);
  CHECK(fs::path(out->files[0]).filename() == "model-00001-of-00002.safetensors");
  CHECK(fs::path(out->files[1]).filename() == "model-00002-of-00002.safetensors");
  CHECK(out->Find("model.layers.0.mlp.gate_proj.weight")->file_index == 0);  // with its weight's shard

  // 4. Index: total_size = tensor bytes, no entry for removed tensors.
  auto index = nlohmann::json::parse(Slurp(tmp / "out" / "model.safetensors.index.json"));
  CHECK(index["metadata"]["total_size"] == out->tensor_bytes());
  CHECK(index["weight_map"].size() == out->tensors.size());
  for (auto& [k, v] : index["weight_map"].items()) CHECK(k.find("scale") == std::string::npos);

  // 5. config.json without quantization_config, everything else kept; other files copied.
  auto cfg = nlohmann::ordered_json::parse(Slurp(tmp / "out" / "config.json"));
  auto want = test::DeepSeekConfig();
  want.erase("quantization_config");
  CHECK(cfg == want);
  CHECK(Slurp(tmp / "out" / "tokenizer.json") == Slurp(tmp / "in" / "tokenizer.json"));
  CHECK(Slurp(tmp / "out" / "generation_config.json") == Slurp(tmp / "in" / "generation_config.json"));
  CHECK(!fs::exists(tmp / "out" / ".bitsmith-partial"));

  // 6. The plan's sizes are the real ones (what --dry-run prints).
  uint64_t on_disk = 0;
  for (const std::string& f : out->files) on_disk += fs::file_size(f);
  CHECK(plan.file_bytes_out == on_disk);
  CHECK(plan.bytes_out == out->tensor_bytes());
  for (const TensorPlan& tp : plan.tensors) CHECK(out->Find(tp.name)->nbytes == tp.bytes_out);
  CHECK(plan.fp8.layout.kind == Fp8LayoutKind::kBlockScaled);
  CHECK(plan.dropped.size() == 4);
}

TEST_CASE("convert: FP8 -> F32 and F16, non-128 block size from config", "[convert][fp8]") {
  test::TempDir tmp;
  // 64x32 blocks: the scale shapes must follow weight_block_size.
  const std::string L = "model.layers.0.";
  Shards shards = {{"model.safetensors",
                    {test::Fp8Tensor(L + "o_proj.weight", {100, 70}, 21),
                     test::ScaleTensor(L + "o_proj.weight_scale_inv", {2, 3}, 22),
                     test::Fp8Tensor(L + "k_proj.weight", {64, 33}, 23, "F8_E5M2"),
                     test::ScaleTensor(L + "k_proj.weight_scale_inv", {1, 2}, 24)}}};
  test::WriteCheckpoint(tmp / "in", shards, test::DeepSeekConfig(64, 32));
  for (DType to : {DType::kF32, DType::kF16}) {
    const fs::path out_dir = tmp / std::string(GetDType(to).name);
    REQUIRE(Convert(ToType(tmp / "in", out_dir, to)).ok());
    auto out = OpenCheckpoint(out_dir.string());
    REQUIRE(out.ok());
    CheckDequantized(shards, *out, L + "o_proj.weight", to, 64, 32);
    CheckDequantized(shards, *out, L + "k_proj.weight", to, 64, 32);
  }
}

// Found by the convert fuzz target: a lone .safetensors file has no config.json,
// so FP8 block scales other than 128x128 written into one could not be read
// back (verify failed on convert's own output). Refused, naming the tensors.
TEST_CASE("convert: FP8 block scales other than 128x128 are refused for a single .safetensors output",
          "[convert][fp8]") {
  test::TempDir tmp;
  const std::string L = "model.layers.0.";
  Shards shards = {{"model.safetensors", {test::Fp8Tensor(L + "o_proj.weight", {100, 70}, 21),
                                          test::ScaleTensor(L + "o_proj.weight_scale_inv", {2, 3}, 22)}}};
  test::WriteCheckpoint(tmp / "in64", shards, test::DeepSeekConfig(64, 32));
  ConvertOptions copy;  // no --to: a copy keeps the 64x32 scales
  copy.input = (tmp / "in64").string();
  copy.output = (tmp / "copy.safetensors").string();
  auto r = Convert(copy);
  REQUIRE(!r.ok());
  CHECK(r.error().kind == ErrorKind::kBadUsage);
  CHECK_THAT(r.error().message, Catch::Contains("o_proj.weight (64x32)") && Catch::Contains("into a directory") &&
                                    !Catch::Contains("--block"));
  CHECK(!fs::exists(tmp / "copy.safetensors"));
  copy.output = (tmp / "copy").string();  // a directory records it in config.json
  REQUIRE(Convert(copy).ok());
  auto v = VerifyConversion({copy.input, copy.output, "", false, false, 1});
  REQUIRE(v.ok());
  CHECK(v->ok());

  test::WriteCheckpoint(tmp / "f32", {{"model.safetensors", {test::FloatTensor(L + "q_proj.weight", {64, 64}, 3, "F32")}}},
                        nlohmann::ordered_json{});
  ConvertOptions q = ToType(tmp / "f32", tmp / "q.safetensors", DType::kE4M3FN);
  q.block = {32, 32};
  r = Convert(q);
  REQUIRE(!r.ok());
  CHECK_THAT(r.error().message, Catch::Contains("q_proj.weight (32x32)") && Catch::Contains("--block 128x128"));
  CHECK(!fs::exists(tmp / "q.safetensors"));
  q.block = {};  // 128x128: what a reader without config.json assumes
  REQUIRE(Convert(q).ok());
  v = VerifyConversion({q.input, q.output, "", false, false, 1});
  REQUIRE(v.ok());
  CHECK(v->ok());
}

TEST_CASE("convert: output bytes do not depend on the thread count", "[convert][fp8]") {
  test::TempDir tmp;
  test::WriteCheckpoint(tmp / "in", test::DeepSeekShards(), test::DeepSeekConfig());
  REQUIRE(Convert(ToType(tmp / "in", tmp / "t1", DType::kBF16), 1).ok());
  REQUIRE(Convert(ToType(tmp / "in", tmp / "t3", DType::kBF16), 3).ok());
  for (const auto& e : fs::directory_iterator(tmp / "t1"))
    CHECK(Slurp(e.path()) == Slurp(tmp / "t3" / e.path().filename()));
}

TEST_CASE("convert: FP8 without scale, orphan scales, bad scales", "[convert][fp8]") {
  test::TempDir tmp;
  const std::string W = "model.layers.0.mlp.down_proj.weight";
  auto base = [&](std::vector<TestTensor> extra) {
    std::vector<TestTensor> t = {test::Fp8Tensor(W, {130, 129}, 31), test::FloatTensor("model.norm.weight", {8}, 32)};
    for (auto& e : extra) t.push_back(std::move(e));
    return Shards{{"model.safetensors", t}};
  };
  SECTION("missing scale: an error naming the tensor; keep and cast") {
    test::WriteCheckpoint(tmp / "in", base({}), test::DeepSeekConfig());
    auto plan = BuildConversionPlan(ToType(tmp / "in", tmp / "out", DType::kBF16));
    REQUIRE(!plan.ok());
    CHECK_THAT(plan.error().message, Catch::Contains(W));
    CHECK_THAT(plan.error().message, Catch::Contains("--unscaled"));
    ConvertOptions keep = ToType(tmp / "in", tmp / "keep", DType::kBF16);
    keep.unscaled = UnscaledFp8::kKeep;
    REQUIRE(Convert(keep).ok());
    auto out = OpenCheckpoint((tmp / "keep").string());
    CHECK(test::ReadConverted(*out, W).bytes == test::FindTest(base({}), W).bytes);
    ConvertOptions cast = ToType(tmp / "in", tmp / "cast", DType::kBF16);
    cast.unscaled = UnscaledFp8::kCast;
    REQUIRE(Convert(cast).ok());
    out = OpenCheckpoint((tmp / "cast").string());
    const auto got = test::ReadConverted(*out, W);
    const TestTensor& w = test::FindTest(base({}), W);
    for (size_t k = 0; k < w.bytes.size(); ++k)
      REQUIRE(static_cast<uint16_t>(got.bytes[2 * k] | (got.bytes[2 * k + 1] << 8)) ==
              test::F32ToBF16(test::E4M3ToFloat(w.bytes[k])));
  }
  SECTION("orphan scale: dropped with a warning") {
    auto s = base({test::ScaleTensor(W + "_scale_inv", {2, 2}, 33),
                   test::ScaleTensor("model.layers.0.ghost.weight_scale_inv", {1, 1}, 34)});
    test::WriteCheckpoint(tmp / "in", s, test::DeepSeekConfig());
    auto plan = BuildConversionPlan(ToType(tmp / "in", tmp / "out", DType::kBF16));
    REQUIRE(plan.ok());
    bool warned = false;
    for (const std::string& w : plan->warnings) warned |= w.find("ghost.weight_scale_inv") != std::string::npos;
    CHECK(warned);
    RunControl c;
    REQUIRE(RunConversion(*plan, c).ok());
    auto out = OpenCheckpoint((tmp / "out").string());
    CHECK(out->Find("model.layers.0.ghost.weight_scale_inv") == nullptr);
  }
  SECTION("only orphan scales: nothing to convert, an error, nothing written") {
    // Found by the convert fuzz target (fuzz/corpus/convert/regression_only_orphan_scales):
    // every tensor dropped left an output without tensors.
    Shards s = {{"model.safetensors", {test::ScaleTensor("model.layers.0.ghost.weight_scale_inv", {1, 1}, 36)}}};
    test::WriteCheckpoint(tmp / "in", s, test::DeepSeekConfig());
    auto plan = BuildConversionPlan(ToType(tmp / "in", tmp / "out", DType::kBF16));
    REQUIRE(!plan.ok());
    CHECK(plan.error().kind == ErrorKind::kBadInput);
    CHECK_THAT(plan.error().message, Catch::Contains("nothing to convert") && Catch::Contains("orphan"));
    CHECK(!Convert(ToType(tmp / "in", tmp / "out", DType::kBF16)).ok());
    CHECK(!fs::exists(tmp / "out"));
  }
  SECTION("scale shape: an error naming both tensors") {
    test::WriteCheckpoint(tmp / "in", base({test::ScaleTensor(W + "_scale_inv", {2, 1}, 35)}),
                          test::DeepSeekConfig());
    auto plan = BuildConversionPlan(ToType(tmp / "in", tmp / "out", DType::kBF16));
    REQUIRE(!plan.ok());
    CHECK_THAT(plan.error().message, Catch::Contains(W + "_scale_inv") && Catch::Contains(W + "'") &&
                                         Catch::Contains("[2, 2]"));
  }
  SECTION("scale dtype other than F32/BF16/F16") {
    TestTensor s{W + "_scale_inv", "F64", {2, 2}, std::vector<uint8_t>(32, 0)};
    test::WriteCheckpoint(tmp / "in", base({s}), test::DeepSeekConfig());
    auto plan = BuildConversionPlan(ToType(tmp / "in", tmp / "out", DType::kBF16));
    REQUIRE(!plan.ok());
    CHECK_THAT(plan.error().message, Catch::Contains("F64") && Catch::Contains(W));
  }
  SECTION("NaN/inf/negative scales and NaN codes: errors unless --allow-nonfinite") {
    for (float bad : {std::nanf(""), INFINITY, -0.5f}) {
      TestTensor s = test::ScaleTensor(W + "_scale_inv", {2, 2}, 36);
      std::memcpy(s.bytes.data() + 8, &bad, 4);
      fs::remove_all(tmp / "in");
      test::WriteCheckpoint(tmp / "in", base({s}), test::DeepSeekConfig());
      auto plan = BuildConversionPlan(ToType(tmp / "in", tmp / "out", DType::kBF16));
      REQUIRE(plan.ok());
      RunControl c;
      auto r = RunConversion(*plan, c);
      REQUIRE(!r.ok());
      CHECK_THAT(r.error().message, Catch::Contains(W + "_scale_inv") && Catch::Contains("index 2"));
      CHECK(!fs::exists(tmp / "out"));  // nothing left behind
      ConvertOptions o = ToType(tmp / "in", tmp / "out", DType::kBF16);
      o.allow_nonfinite = true;
      REQUIRE(Convert(o).ok());
      fs::remove_all(tmp / "out");
    }
    auto s = base({test::ScaleTensor(W + "_scale_inv", {2, 2}, 37)});
    s[0].second[0].bytes[129 * 5 + 7] = 0xFF;  // NaN code at row 5, column 7
    fs::remove_all(tmp / "in");
    test::WriteCheckpoint(tmp / "in", s, test::DeepSeekConfig());
    auto r = Convert(ToType(tmp / "in", tmp / "out", DType::kBF16));
    REQUIRE(!r.ok());
    CHECK_THAT(r.error().message, Catch::Contains(W) && Catch::Contains("row 5, column 7"));
  }
}

TEST_CASE("convert: compressed-tensors per-tensor and per-channel weight_scale", "[convert][fp8]") {
  test::TempDir tmp;
  const std::string A = "model.layers.0.self_attn.q_proj.weight", B = "model.layers.0.mlp.up_proj.weight";
  Shards s = {{"model.safetensors",
               {test::Fp8Tensor(A, {40, 70}, 41), test::ScaleTensor(A + "_scale", {1}, 42),
                test::Fp8Tensor(B, {50, 33}, 43), test::ScaleTensor(B + "_scale", {50, 1}, 44, "BF16"),
                test::ScaleTensor("model.layers.0.self_attn.q_proj.input_scale", {1}, 45)}}};
  nlohmann::ordered_json cfg = {{"quantization_config", {{"quant_method", "compressed-tensors"}}}};
  test::WriteCheckpoint(tmp / "in", s, cfg);
  ConversionPlan plan;
  REQUIRE(Convert(ToType(tmp / "in", tmp / "out", DType::kBF16), 2, false, false, &plan).ok());
  CHECK(plan.fp8.layout.kind == Fp8LayoutKind::kCompressedTensors);
  auto out = OpenCheckpoint((tmp / "out").string());
  REQUIRE(out.ok());
  CHECK(out->tensors.size() == 2);  // scales and the activation scale dropped
  for (const std::string& n : {A, B}) {
    const TestTensor& w = test::FindTest(s, n);
    const TestTensor& sc = test::FindTest(s, n + "_scale");
    const auto got = test::ReadConverted(*out, n);
    const uint64_t cols = w.shape[1];
    for (uint64_t k = 0; k < w.bytes.size(); ++k) {
      const float scale = test::ScaleValue(sc, n == A ? 0 : k / cols);
      REQUIRE(static_cast<uint16_t>(got.bytes[2 * k] | (got.bytes[2 * k + 1] << 8)) ==
              test::F32ToBF16(test::E4M3ToFloat(w.bytes[k]) * scale));
    }
  }
  CHECK(!nlohmann::json::parse(Slurp(tmp / "out" / "config.json")).contains("quantization_config"));
}

// Independent FP8 quantization of one block-scaled weight: amax/448 (f32
// division), codes = reference encode of f32(w / scale), saturating.
void CheckQuantized(const TestTensor& src, const Checkpoint& out, const std::string& name, uint64_t bm, uint64_t bn) {
  const uint64_t rows = src.shape[0], cols = src.shape[1];
  std::vector<float> w(rows * cols);
  for (uint64_t k = 0; k < w.size(); ++k) {
    if (src.st_dtype == "F32") std::memcpy(&w[k], src.bytes.data() + 4 * k, 4);
    else w[k] = test::BF16ToF32(static_cast<uint16_t>(src.bytes[2 * k] | (src.bytes[2 * k + 1] << 8)));
  }
  const auto codes = test::ReadConverted(out, name);
  const auto scales = test::ReadConverted(out, name + "_scale_inv");
  REQUIRE(codes.info.dtype == DType::kE4M3FN);
  REQUIRE(scales.info.dtype == DType::kF32);
  const uint64_t gr = (rows + bm - 1) / bm, gc = (cols + bn - 1) / bn;
  REQUIRE(scales.info.shape == std::vector<uint64_t>{gr, gc});
  for (uint64_t bi = 0; bi < gr; ++bi)
    for (uint64_t bj = 0; bj < gc; ++bj) {
      float amax = 0;
      for (uint64_t i = bi * bm; i < std::min(rows, (bi + 1) * bm); ++i)
        for (uint64_t j = bj * bn; j < std::min(cols, (bj + 1) * bn); ++j) amax = std::max(amax, std::fabs(w[i * cols + j]));
      const float scale = amax == 0 ? 1.0f : amax / 448.0f;
      float have;
      std::memcpy(&have, scales.bytes.data() + 4 * (bi * gc + bj), 4);
      REQUIRE(have == scale);
      for (uint64_t i = bi * bm; i < std::min(rows, (bi + 1) * bm); ++i)
        for (uint64_t j = bj * bn; j < std::min(cols, (bj + 1) * bn); ++j) {
          const float q = w[i * cols + j] / scale;
          const uint8_t want = static_cast<uint8_t>(EncodeF32Ref(ElementFormatId::kE4M3FN, q, Overflow::kSaturate));
          if (codes.bytes[i * cols + j] != want)
            FAIL(name << " (" << i << ", " << j << ") w=" << w[i * cols + j] << " scale=" << scale);
        }
    }
}

TEST_CASE("convert: BF16/F32 -> block-scaled e4m3fn (and back)", "[convert][fp8]") {
  test::TempDir tmp;
  const std::string L = "model.layers.0.";
  TestTensor zero = test::FloatTensor(L + "mlp.down_proj.weight", {130, 260}, 51, "F32");
  std::fill(zero.bytes.begin(), zero.bytes.begin() + 4 * 260 * 128, 0);  // first block row all zero
  Shards s = {{"model.safetensors",
               {test::FloatTensor("model.embed_tokens.weight", {32, 64}, 50), zero,
                test::FloatTensor(L + "self_attn.q_proj.weight", {200, 64}, 52),
                test::FloatTensor(L + "input_layernorm.weight", {64}, 53),
                test::FloatTensor(L + "mlp.gate.weight", {8, 64}, 54), test::FloatTensor("lm_head.weight", {32, 64}, 55)}}};
  test::WriteCheckpoint(tmp / "in", s, nlohmann::ordered_json{{"model_type", "llama"}});
  ConversionPlan plan;
  REQUIRE(Convert(ToType(tmp / "in", tmp / "fp8", DType::kE4M3FN), 2, false, false, &plan).ok());
  auto out = OpenCheckpoint((tmp / "fp8").string());
  REQUIRE(out.ok());
  CheckQuantized(zero, *out, L + "mlp.down_proj.weight", 128, 128);
  CheckQuantized(test::FindTest(s, L + "self_attn.q_proj.weight"), *out, L + "self_attn.q_proj.weight", 128, 128);
  // The all-zero block: scale 1, zero codes.
  float first;
  std::memcpy(&first, test::ReadConverted(*out, L + "mlp.down_proj.weight_scale_inv").bytes.data(), 4);
  CHECK(first == 1.0f);
  // Embeddings, norms, router gate, lm_head stay as they were.
  for (const char* n : {"model.embed_tokens.weight", "model.layers.0.input_layernorm.weight",
                        "model.layers.0.mlp.gate.weight", "lm_head.weight"})
    CHECK(test::ReadConverted(*out, n).bytes == test::FindTest(s, n).bytes);
  auto cfg = nlohmann::json::parse(Slurp(tmp / "fp8" / "config.json"));
  CHECK(cfg["model_type"] == "llama");
  CHECK(cfg["quantization_config"]["weight_block_size"] == nlohmann::json({128, 128}));
  CHECK(cfg["quantization_config"]["quant_method"] == "fp8");
  uint64_t on_disk = fs::file_size(out->files[0]);
  CHECK(plan.file_bytes_out == on_disk);

  // And back to BF16: the DeepSeek path reads what we wrote.
  REQUIRE(Convert(ToType(tmp / "fp8", tmp / "bf16", DType::kBF16)).ok());
  auto back = OpenCheckpoint((tmp / "bf16").string());
  REQUIRE(back.ok());
  CHECK(back->Find(L + "mlp.down_proj.weight")->dtype == DType::kBF16);
  CHECK(back->Find(L + "mlp.down_proj.weight_scale_inv") == nullptr);

  // A recipe overrides the default rule; NaN weights are refused.
  ConvertOptions o = ToType(tmp / "in", tmp / "rule", DType::kE4M3FN);
  auto rule = ParseRecipeRule("lm_head=e4m3fn", "--tensor-type");
  REQUIRE(rule.ok());
  o.rules.push_back(*rule);
  REQUIRE(Convert(o).ok());
  CHECK(OpenCheckpoint((tmp / "rule").string())->Find("lm_head.weight")->dtype == DType::kE4M3FN);
  TestTensor nan = test::FloatTensor(L + "self_attn.o_proj.weight", {4, 4}, 56, "F32");
  const float qnan = std::nanf("");
  std::memcpy(nan.bytes.data() + 4 * 6, &qnan, 4);
  test::WriteCheckpoint(tmp / "nanin", {{"model.safetensors", {nan}}}, nlohmann::ordered_json{});
  auto r = Convert(ToType(tmp / "nanin", tmp / "nanout", DType::kE4M3FN));
  REQUIRE(!r.ok());
  CHECK_THAT(r.error().message, Catch::Contains("row 1, column 2"));
}

TEST_CASE("convert: --cast-all, single-file output, resharding", "[convert][fp8]") {
  test::TempDir tmp;
  const Shards shards = test::DeepSeekShards();
  test::WriteCheckpoint(tmp / "in", shards, test::DeepSeekConfig());
  ConvertOptions o = ToType(tmp / "in", tmp / "one.safetensors", DType::kBF16);
  o.cast_all = true;
  REQUIRE(Convert(o).ok());
  auto out = OpenCheckpoint((tmp / "one.safetensors").string());
  REQUIRE(out.ok());
  for (const TensorInfo& t : out->tensors) CHECK(t.dtype == DType::kBF16);
  const TestTensor& bias = test::FindTest(shards, "model.layers.0.mlp.gate.e_score_correction_bias");
  const auto got = test::ReadConverted(*out, bias.name);
  for (size_t k = 0; k < 8; ++k) {
    float v;
    std::memcpy(&v, bias.bytes.data() + 4 * k, 4);
    CHECK(static_cast<uint16_t>(got.bytes[2 * k] | (got.bytes[2 * k + 1] << 8)) == test::F32ToBF16(v));
  }
  // Resharding a copy at a small size.
  ConvertOptions re;
  re.input = (tmp / "in").string();
  re.output = (tmp / "re").string();
  re.max_shard_size = 60000;
  ConversionPlan plan;
  REQUIRE(Convert(re, 2, false, false, &plan).ok());
  auto r = OpenCheckpoint((tmp / "re").string());
  REQUIRE(r.ok());
  CHECK(r->files.size() > 2);
  // Each weight shares a shard with its scale.
  for (const TensorInfo& t : r->tensors)
    if (t.name.size() > 10 && t.name.substr(t.name.size() - 10) == "_scale_inv")
      CHECK(r->Find(t.name.substr(0, t.name.size() - 10))->file == t.file);
}

TEST_CASE("convert: --dry-run of the DeepSeek-V3 sparse fixture (headers only)", "[convert][fp8]") {
  test::TempDir tmp;
  test::DeepSeekFixtureOptions fo;
  const test::DeepSeekFixtureSummary sum = test::MakeDeepSeekV3Sparse(tmp / "ds", fo);
  const auto t0 = std::chrono::steady_clock::now();
  auto plan = BuildConversionPlan(ToType(tmp / "ds", tmp / "out", DType::kBF16));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE(plan.ok());
  // Every FP8 weight doubles, every scale goes, the rest stays.
  uint64_t fp8 = 0, scales = 0, other = 0;
  for (const TensorInfo& t : plan->input.tensors) {
    if (t.dtype == DType::kE4M3FN) fp8 += t.nbytes;
    else if (t.name.find("_scale_inv") != std::string::npos) scales += t.nbytes;
    else other += t.nbytes;
  }
  CHECK(plan->bytes_in == sum.total_bytes);
  CHECK(plan->bytes_out == 2 * fp8 + other);
  CHECK(plan->files.size() == static_cast<size_t>(sum.shards));
  CHECK(plan->dropped.size() == sum.tensors - plan->tensors.size());
  WARN("DeepSeek-V3 fixture: " << sum.tensors << " tensors, " << sum.total_bytes << " bytes in, bf16 tensor data "
                               << plan->bytes_out << " bytes, files " << plan->file_bytes_out << " bytes, planned in "
                               << secs << " s");
}

}  // namespace
}  // namespace bitsmith
