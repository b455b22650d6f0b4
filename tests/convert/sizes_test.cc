// The size rules (convert/sizes.h): which type a tensor gets, what it weighs,
// FP8 block scales and scale companions, checked against hand-computed numbers.
#include <catch2/catch.hpp>

#include "convert/checkpoint.h"
#include "convert/sizes.h"
#include "support/deepseek_fixture.h"
#include "support/test_data.h"

namespace bitsmith {
namespace {

TensorInfo T(std::string name, std::optional<DType> dt, std::vector<uint64_t> shape) {
  TensorInfo t;
  t.name = std::move(name);
  t.dtype = dt;
  t.raw_dtype = dt ? std::string(GetDType(*dt).name) : "F4";
  t.shape = std::move(shape);
  uint64_t n = 1;
  for (uint64_t d : t.shape) n *= d;
  t.nbytes = dt ? n / GetDType(*dt).block_elems * GetDType(*dt).block_bytes : n / 2;
  return t;
}

TEST_CASE("ResolveTargetType: block types and llama.cpp's fallback chain", "[convert][sizes]") {
  struct Row {
    DType wanted;
    uint64_t row;
    DType used;
  };
  // Rows of 4096 take every type; 64 fits 32-blocks; 6625 fits nothing but f16.
  const Row rows[] = {
      {DType::kQ4_K, 4096, DType::kQ4_K},   {DType::kQ4_K, 64, DType::kQ5_0},     {DType::kQ5_K, 64, DType::kQ5_1},
      {DType::kQ6_K, 64, DType::kQ8_0},     {DType::kQ2_K, 64, DType::kIQ4_NL},   {DType::kQ3_K, 96, DType::kIQ4_NL},
      {DType::kIQ4_XS, 64, DType::kIQ4_NL}, {DType::kIQ2_XXS, 64, DType::kIQ4_NL}, {DType::kIQ1_M, 64, DType::kIQ4_NL},
      {DType::kTQ1_0, 64, DType::kQ4_0},    {DType::kQ4_K, 6625, DType::kF16},    {DType::kQ6_K, 100, DType::kF16},
      {DType::kQ8_0, 64, DType::kQ8_0},     {DType::kQ8_0, 33, DType::kF16},      {DType::kIQ4_NL, 48, DType::kF16},
  };
  for (const Row& r : rows) {
    INFO(GetDType(r.wanted).name << " row " << r.row);
    const TensorInfo t = T("w", DType::kBF16, {8, r.row});
    const ResolvedType got = ResolveTargetType(t, r.wanted);
    CHECK(got.used == r.used);
    CHECK(got.fell_back() == (r.used != r.wanted));
    CHECK(!got.passthrough);
    if (got.fell_back()) {
      CHECK_THAT(got.fallback_reason, Catch::Contains("row length " + std::to_string(r.row)));
      CHECK_THAT(got.fallback_reason, Catch::EndsWith(std::string(GetDType(r.used).name)));
    }
  }
  CHECK(ResolveTargetType(T("w", DType::kF32, {10, 6625}), DType::kQ4_K).fallback_reason ==
        "row length 6625 is not a multiple of 256 (q4_k) nor of 32 (q5_0): f16");
  // A tensor already in the fallback type is copied, not re-encoded.
  const ResolvedType same = ResolveTargetType(T("w", DType::kQ5_0, {8, 64}), DType::kQ4_K);
  CHECK(same.used == DType::kQ5_0);
  CHECK(same.passthrough);
}

TEST_CASE("ResolveTargetType: rank, integer and unknown rules", "[convert][sizes]") {
  // 1-D tensors become f32 for block types (kept, not a fallback).
  ResolvedType r = ResolveTargetType(T("norm", DType::kBF16, {4096}), DType::kQ4_K);
  CHECK(r.used == DType::kF32);
  CHECK(r.choice == TypeChoice::kKeptRank);
  CHECK(!r.fell_back());
  CHECK(!r.passthrough);
  CHECK(ResolveTargetType(T("norm", DType::kF32, {4096}), DType::kQ4_K).passthrough);
  // [1, 64] is 1-D to ggml (ggml_n_dims), [64, 1] is not.
  CHECK(EffectiveRank({1, 64}) == 1);
  CHECK(EffectiveRank({64, 1}) == 2);
  CHECK(EffectiveRank({}) == 1);
  CHECK(EffectiveRank({1, 1, 8, 8}) == 2);
  CHECK(ResolveTargetType(T("v", DType::kF32, {1, 256}), DType::kQ4_K).choice == TypeChoice::kKeptRank);
  // FP8 targets: matrices only; 1-D keeps its type.
  r = ResolveTargetType(T("norm", DType::kBF16, {4096}), DType::kE4M3FN);
  CHECK(r.used == DType::kBF16);
  CHECK(r.passthrough);
  CHECK(r.choice == TypeChoice::kKeptRank);
  CHECK(ResolveTargetType(T("w", DType::kBF16, {300, 200}), DType::kE4M3FN).used == DType::kE4M3FN);
  // Wide floats take every float tensor, 1-D included, block types too.
  CHECK(ResolveTargetType(T("n", DType::kF32, {7}), DType::kBF16).used == DType::kBF16);
  CHECK(ResolveTargetType(T("q", DType::kQ4_K, {2, 256}), DType::kF16).used == DType::kF16);
  // Integers, and types bitsmith does not know, pass through.
  r = ResolveTargetType(T("pos", DType::kI64, {10}), DType::kBF16);
  CHECK(r.passthrough);
  CHECK(r.used == DType::kI64);
  CHECK(r.choice == TypeChoice::kKeptType);
  r = ResolveTargetType(T("f4", std::nullopt, {4, 4}), DType::kQ4_K);
  CHECK(r.passthrough);
  CHECK(r.choice == TypeChoice::kKeptType);
  CHECK_THAT(r.fallback_reason, Catch::Contains("F4"));
  // Same type: unchanged, no reason.
  r = ResolveTargetType(T("w", DType::kBF16, {4, 4}), DType::kBF16);
  CHECK(r.passthrough);
  CHECK(r.choice == TypeChoice::kWanted);
  CHECK(r.fallback_reason.empty());
}

TEST_CASE("PlannedBytes counts block scales and FP8 scale tensors", "[convert][sizes]") {
  const TensorInfo w = T("w", DType::kF32, {4096, 4096});
  CHECK(PlannedBytes(w, ResolveTargetType(w, DType::kQ4_K)) == 4096ull * 4096 / 256 * 144);
  CHECK(PlannedBytes(w, ResolveTargetType(w, DType::kQ8_0)) == 4096ull * 4096 / 32 * 34);
  CHECK(PlannedBytes(w, ResolveTargetType(w, DType::kIQ4_XS)) == 4096ull * 4096 / 256 * 136);
  CHECK(PlannedBytes(w, ResolveTargetType(w, DType::kBF16)) == 4096ull * 4096 * 2);
  // DeepSeek-style FP8: codes + ceil(r/128) x ceil(c/128) f32 scales.
  const TensorInfo ragged = T("w", DType::kBF16, {300, 200});
  const ResolvedType fp8 = ResolveTargetType(ragged, DType::kE4M3FN);
  CHECK(PlannedBytes(ragged, fp8) == 300 * 200 + 3 * 2 * 4);
  CHECK(PlannedBytes(ragged, fp8, Fp8Blocking::None()) == 300 * 200);
  CHECK(PlannedBytes(ragged, fp8, Fp8Blocking{64, 64}) == 300 * 200 + 5 * 4 * 4);
  CHECK(Fp8ScaleBytes({2, 300, 200}, {}) == 2 * 3 * 2 * 4);
  CHECK(Fp8ScaleBytes({7168, 2048}, {}) == 56 * 16 * 4);
  CHECK(Fp8ScaleBytes({300}, {}) == 0);
  // 1-D tensors in a block type: f32.
  const TensorInfo norm = T("n", DType::kBF16, {4096});
  CHECK(PlannedBytes(norm, ResolveTargetType(norm, DType::kQ4_K)) == 4096 * 4);
}

TEST_CASE("PlanModelSize: FP8 scale companions are kept or dropped with their weight", "[convert][sizes]") {
  const std::vector<TensorInfo> ts = {T("l.w", DType::kE4M3FN, {256, 300}), T("l.w_scale_inv", DType::kF32, {2, 3}),
                                      T("l.norm", DType::kBF16, {256}), T("l.v.weight", DType::kE5M2, {128, 128}),
                                      T("l.v.weight_scale", DType::kBF16, {1, 1}), T("orphan_scale_inv", DType::kF32, {2})};
  CHECK(ScaleCompanionOf(ts, 1) == 0);
  CHECK(ScaleCompanionOf(ts, 4) == 3);
  CHECK(ScaleCompanionOf(ts, 5) == -1);
  CHECK(ScaleCompanionOf(ts, 0) == -1);

  // bf16: weights dequantized (scales dropped), the norm kept, the orphan cast.
  ModelSize m = PlanModelSize(ts, DType::kBF16);
  CHECK(m.tensors[1].dropped);
  CHECK(m.tensors[1].type.choice == TypeChoice::kDropped);
  CHECK(m.tensors[4].dropped);
  CHECK(m.bytes == 256 * 300 * 2 + 256 * 2 + 128 * 128 * 2 + 2 * 2);
  CHECK(m.fallbacks == 0);
  // e4m3fn: the e4m3fn weight and its scale stay; the e5m2 one is re-encoded
  // with new 128x128 scales and its old scale dropped.
  m = PlanModelSize(ts, DType::kE4M3FN);
  CHECK(!m.tensors[1].dropped);
  CHECK(m.tensors[4].dropped);
  CHECK(m.bytes == 256 * 300 + 24 + 256 * 2 + (128 * 128 + 4) + 8);
  CHECK(m.kept == 2);  // the norm and the 1-D orphan keep their types
  // q8_0: row 300 does not fit 32 -> f16; the 1-D norm -> f32.
  m = PlanModelSize(ts, DType::kQ8_0);
  CHECK(m.tensors[0].type.used == DType::kF16);
  CHECK(m.fallbacks == 1);
  CHECK(m.bytes == 256 * 300 * 2 + 256 * 4 + 128 * 128 / 32 * 34 + 2 * 4);
}

TEST_CASE("the size table lists the issue's formats in order", "[convert][sizes]") {
  std::vector<std::string> names;
  for (DType t : SizeTableTargets()) names.emplace_back(GetDType(t).name);
  CHECK(names == std::vector<std::string>{"bf16", "f16", "e4m3fn", "q8_0", "q6_k", "q5_k", "q4_k", "q3_k", "q2_k",
                                          "iq4_xs"});
}

TEST_CASE("a DeepSeek-V3-shaped checkpoint: 163 shards open, sizes add up", "[convert][sizes][checkpoint]") {
  test::TempDir tmp;
  const auto summary = test::MakeDeepSeekV3Sparse(tmp.path());
  auto ck = OpenCheckpoint(tmp.path().string());
  REQUIRE(ck.ok());
  CHECK(ck->warnings.empty());
  CHECK(ck->files.size() == static_cast<size_t>(summary.shards));
  CHECK(ck->tensors.size() == summary.tensors);
  CHECK(ck->tensor_bytes() == summary.total_bytes);
  REQUIRE(ck->extra_files.size() >= 1);
  // In bf16 every weight takes 2 bytes and every scale disappears.
  const ModelSize bf16 = PlanModelSize(ck->tensors, DType::kBF16);
  CHECK(bf16.bytes == 2 * summary.weight_params);
  // In e4m3fn (128x128), with DeepSeek's own choice of FP8 tensors (the ones
  // already FP8; the rest kept), the checkpoint weighs what it weighs.
  const KeepRule deepseek = [](const TensorInfo& t, DType) -> std::optional<std::string> {
    if (t.dtype == DType::kE4M3FN) return std::nullopt;
    return "not FP8 in DeepSeek's checkpoint";
  };
  const ModelSize fp8 = PlanModelSize(ck->tensors, DType::kE4M3FN, {}, deepseek);
  CHECK(fp8.bytes == summary.total_bytes);
  CHECK(fp8.fallbacks == 0);
  // The pure rule also makes the BF16 matrices (embeddings, lm_head, gates) FP8.
  CHECK(PlanModelSize(ck->tensors, DType::kE4M3FN).bytes < summary.total_bytes);
}

}  // namespace
}  // namespace bitsmith
