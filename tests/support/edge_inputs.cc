// Shared edge-case inputs and checks of the block-codec edge tests: see
// support/edge_inputs.h.
#include "support/edge_inputs.h"

#include <algorithm>  // std::all_of
#include <cmath>
#include <cstring>  // std::memcmp
#include <utility>  // std::move

#include <catch2/catch.hpp>
#include <hwy/targets.h>  // SupportedAndGeneratedTargets, SetSupportedTargetsForTest

#include "bench/ggml_ref.h"

namespace bitsmith::test {

void EdgeCaseBuilder::Add(std::string name, int rows, const std::function<float(int64_t)>& f) {
  EdgeCase c{std::move(name), std::vector<float>(static_cast<size_t>(rows * row_))};
  for (size_t i = 0; i < c.x.size(); ++i) c.x[i] = f(static_cast<int64_t>(i));
  cases_.push_back(std::move(c));
}

void EdgeCaseBuilder::AddZerosAndTiny(std::initializer_list<float> tiny_scales) {
  Add("zeros", 2, [](int64_t) { return 0.f; });
  Add("negative zeros", 1, [](int64_t) { return -0.f; });
  for (float s : tiny_scales) Add("tiny gaussian " + std::to_string(s), 1, [&, s](int64_t) { return s * Gauss(); });
  Add("tiny constant 1e-8", 1, [](int64_t) { return 1e-8f; });
}

void EdgeCaseBuilder::AddHugeAndConstants(std::initializer_list<float> huge_scales,
                                          std::initializer_list<float> constants) {
  for (float s : huge_scales) Add("huge gaussian " + std::to_string(s), 1, [&, s](int64_t) { return s * Gauss(); });
  Add("max float", 1, [](int64_t i) { return i % 3 == 0 ? 3.4e38f : -1.7e38f; });
  for (float c : constants) Add("constant " + std::to_string(c), 1, [c](int64_t) { return c; });
  Add("exact ties (halves)", 2, [](int64_t i) { return 0.5f * static_cast<float>((i * 7) % 31 - 15); });
  Add("small integers", 2, [](int64_t i) { return static_cast<float>((i * 5) % 9 - 4); });
}

void EdgeCaseBuilder::AddSpikes() {
  Add("single spike", 2, [](int64_t i) { return i % 700 == 3 ? 1000.f : 0.f; });
  Add("spike in noise", 2, [&](int64_t i) { return i % 333 == 7 ? -50.f : 0.01f * Gauss(); });
}

void EdgeCaseBuilder::AddSignPatterns() {
  Add("all positive", 1, [&](int64_t) { return std::fabs(0.02f * Gauss()) + 0.001f; });
  Add("all negative", 1, [&](int64_t) { return -std::fabs(0.02f * Gauss()) - 0.001f; });
  Add("alternating signs", 1, [](int64_t i) { return i % 2 ? 0.3f : -0.3f; });
  Add("subnormal mix", 1, [&](int64_t i) { return i % 5 == 0 ? 1e-42f : 1e-3f * Gauss(); });
  Add("two levels", 1, [](int64_t i) { return (i % 16) < 8 ? 0.1f : 0.2f; });
}

std::vector<std::vector<float>> EdgeImatrices(int64_t row, uint32_t seed) {
  const size_t n = static_cast<size_t>(row);
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<std::vector<float>> w;
  w.emplace_back(n);
  for (float& v : w.back()) v = std::exp(g(rng));  // what llama-quantize passes
  w.emplace_back(n, 1.f);                             // uniform
  w.emplace_back(n);
  for (size_t i = 0; i < n; ++i) w.back()[i] = i % 3 == 0 ? 0.f : std::exp(2 * g(rng));  // zeros
  w.emplace_back(n, 0.f);                                                                // all zero
  w.emplace_back(n);
  for (size_t i = 0; i < n; ++i) w.back()[i] = i % 97 == 0 ? 1e12f : 1e-6f;  // extreme
  return w;
}

int64_t FirstDiff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return static_cast<int64_t>(i);
  return a.size() == b.size() ? -1 : static_cast<int64_t>(a.size());
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

std::vector<uint8_t> QuantizeWholeRows(BlockCodec::QuantizeFn quantize, DType t, int64_t row,
                                       const std::vector<float>& x, const float* imatrix) {
  const int64_t nrows = static_cast<int64_t>(x.size()) / row;
  std::vector<uint8_t> q(static_cast<size_t>(*RowBytes(t, static_cast<uint64_t>(row)) * nrows), 0xCD);
  quantize(x.data(), q.data(), nrows, row, imatrix);
  return q;
}

int CheckEdgeCases(DType t, int64_t row, const std::vector<EdgeCase>& cases,
                   const std::vector<std::vector<float>>& imatrices, bool check_threads) {
  const ggml::Library* lib = ggml::Library::Get();
  const BlockCodec* k = GetBlockCodec(t);
  const DTypeInfo& info = GetDType(t);
  if (k == nullptr) FAIL("no block codec for " << info.name);
  // ggml's activation types have a row quantizer only, which takes no imatrix.
  const bool activation = t == DType::kQ8_1 || t == DType::kQ8_K;
  int compared_with_ggml = 0;
  for (const EdgeCase& c : cases) {
    for (int wi = -1; wi < static_cast<int>(imatrices.size()); ++wi) {
      if (activation && wi >= 0) continue;
      const float* w = wi < 0 ? nullptr : imatrices[static_cast<size_t>(wi)].data();
      const std::string where = std::string(info.name) + " / " + c.name + " / " +
                                (wi < 0 ? "plain" : "imatrix " + std::to_string(wi));
      const std::vector<uint8_t> ref = QuantizeWholeRows(k->quantize_ref, t, row, c.x, w);
      std::vector<float> y(c.x.size());
      k->dequantize_ref(ref.data(), y.data(), static_cast<int64_t>(y.size()));
      // 1. Against ggml.
      if (lib != nullptr) {
        // ggml's quantize_row_q8_K_ref skips an all-zero block after writing d and
        // qs, leaving its bsums unwritten (whatever the buffer held); bitsmith
        // writes zeros there, so ggml's buffer starts zeroed for q8_k.
        std::vector<uint8_t> gq(ref.size(), t == DType::kQ8_K ? 0x00 : 0xCD);
        if (activation) {
          REQUIRE(lib->FromFloatRef(info.ggml_type, c.x.data(), gq.data(), static_cast<int64_t>(c.x.size())));
        } else {
          REQUIRE(lib->QuantizeChunk(info.ggml_type, c.x.data(), gq.data(), 0,
                                     static_cast<int64_t>(c.x.size()) / row, row, w) == gq.size());
        }
        const int64_t diff = FirstDiff(ref, gq);
        INFO(where << ": reference vs ggml, first differing byte " << diff << " (block "
                   << diff / info.block_bytes << ", byte " << diff % info.block_bytes << ")");
        CHECK(diff == -1);
        if (lib->HasToFloat(info.ggml_type)) {  // q8_1 has no to_float in ggml
          std::vector<float> gy(c.x.size());
          REQUIRE(lib->ToFloat(info.ggml_type, ref.data(), gy.data(), static_cast<int64_t>(gy.size())));
          CHECK(SameBits(y, gy));
        }
        ++compared_with_ggml;
      }
      // 2. SIMD on every target.
      for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
        hwy::SetSupportedTargetsForTest(target);
        const int64_t diff = FirstDiff(QuantizeWholeRows(k->quantize, t, row, c.x, w), ref);
        INFO(where << ": SIMD " << hwy::TargetName(target) << " vs reference, first differing byte " << diff);
        CHECK(diff == -1);
        std::vector<float> ys(c.x.size());
        k->dequantize(ref.data(), ys.data(), static_cast<int64_t>(ys.size()));
        CHECK(SameBits(y, ys));
      }
      hwy::SetSupportedTargetsForTest(0);
      // 3. Thread counts, through the validating entry points (finite inputs only).
      if (check_threads && std::all_of(c.x.begin(), c.x.end(), [](float v) { return std::isfinite(v); })) {
        for (int threads : {2, 3, 0}) {
          std::vector<uint8_t> q(ref.size());
          REQUIRE(QuantizeRows(t, c.x, q, row, w, Impl::kSimd, threads).ok());
          INFO(where << ": QuantizeRows with " << threads << " threads, first differing byte "
                     << FirstDiff(q, ref));
          CHECK(q == ref);
          std::vector<float> yt(c.x.size());
          REQUIRE(DequantizeRows(t, ref, yt, Impl::kSimd, threads).ok());
          CHECK(SameBits(y, yt));
        }
      }
    }
  }
  return compared_with_ggml;
}

}  // namespace bitsmith::test
