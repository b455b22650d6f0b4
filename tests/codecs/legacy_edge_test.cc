// Legacy block edge cases (q4_0 q4_1 q5_0 q5_1 q8_0 q8_1 iq4_nl iq4_xs q8_k,
// with and without imatrix): the inputs of kquant_edge_test.cc (zeros, tiny
// values whose fp16 scales underflow, huge values, constant rows, exact ties,
// spikes, very different block scales, odd imatrices), which the shared vectors
// do not cover. Each case is checked three ways:
//  1. the scalar reference against ggml itself (dlopen'ed libggml-base.so,
//     bench/ggml_ref.h): ggml_quantize_chunk, or the row quantizer
//     quantize_row_q8_1_ref / quantize_row_q8_K_ref for the activation types,
//     and to_float -- skipped with a WARN when the library is not installed;
//  2. the SIMD kernels against the reference on every compiled Highway target,
//     quantize and dequantize;
//  3. QuantizeRows / DequantizeRows give the same bytes for 1, 2, 3 threads and
//     all cores.
// Failures name the type, path, case and first differing byte.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <hwy/targets.h>

#include "bench/ggml_ref.h"
#include "codecs/quant.h"
#include "formats/dtype.h"

namespace bitsmith {
namespace {

constexpr int64_t kRow = 512;  // 16 blocks of 32, 2 of 256

const DType kTypes[] = {DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ8_0,
                        DType::kQ8_1, DType::kIQ4_NL, DType::kIQ4_XS, DType::kQ8_K};

struct EdgeCase {
  std::string name;
  std::vector<float> x;  // whole rows of kRow
};

std::vector<EdgeCase> MakeEdgeCases() {
  std::vector<EdgeCase> cases;
  std::mt19937 rng(20240602);
  std::normal_distribution<float> g(0.f, 1.f);
  auto add = [&](std::string name, int rows, const std::function<float(int64_t)>& f) {
    EdgeCase c{std::move(name), std::vector<float>(static_cast<size_t>(rows * kRow))};
    for (size_t i = 0; i < c.x.size(); ++i) c.x[i] = f(static_cast<int64_t>(i));
    cases.push_back(std::move(c));
  };
  add("zeros", 2, [](int64_t) { return 0.f; });
  add("negative zeros", 1, [](int64_t) { return -0.f; });
  for (float s : {1e-5f, 1e-8f, 1e-12f, 1e-20f, 1e-30f, 1e-38f, 1e-40f, 1e-45f})
    add("tiny gaussian " + std::to_string(s), 1, [&, s](int64_t) { return s * g(rng); });
  add("tiny constant 1e-8", 1, [](int64_t) { return 1e-8f; });
  add("fp16 subnormal scale boundary", 1, [](int64_t i) { return std::ldexp(1.f, -14 - static_cast<int>(i % 13)) * 7.f; });
  for (float s : {1e4f, 6.5e4f * 8, 1e10f, 1e18f, 1e30f})
    add("huge gaussian " + std::to_string(s), 1, [&, s](int64_t) { return s * g(rng); });
  add("max float", 1, [](int64_t i) { return i % 3 == 0 ? 3.4e38f : -1.7e38f; });
  for (float c : {1.f, -1.f, 0.02f, -3.5f, 1000.f, 65504.f * 8})
    add("constant " + std::to_string(c), 1, [c](int64_t) { return c; });
  add("exact ties (halves)", 2, [](int64_t i) { return 0.5f * static_cast<float>((i * 7) % 31 - 15); });
  add("small integers", 2, [](int64_t i) { return static_cast<float>((i * 5) % 9 - 4); });
  add("levels -8..7", 1, [](int64_t i) { return static_cast<float>(i % 16 - 8); });
  add("single spike", 2, [](int64_t i) { return i % 700 == 3 ? 1000.f : 0.f; });
  add("spike in noise", 2, [&](int64_t i) { return i % 333 == 7 ? -50.f : 0.01f * g(rng); });
  add("negative spike", 1, [](int64_t i) { return i % 32 == 20 ? -7.f : 0.001f; });
  add("positive spike equal to |min|", 1, [](int64_t i) { return i % 32 == 0 ? 8.f : (i % 32 == 1 ? -8.f : 0.5f); });
  add("very different block scales", 2, [&](int64_t i) {
    return std::ldexp(g(rng), static_cast<int>((i / 32) % 40) - 30);
  });
  add("one zero block among normal ones", 1, [&](int64_t i) { return (i / 32) == 1 ? 0.f : g(rng); });
  add("all positive", 1, [&](int64_t) { return std::fabs(0.02f * g(rng)) + 0.001f; });
  add("all negative", 1, [&](int64_t) { return -std::fabs(0.02f * g(rng)) - 0.001f; });
  add("alternating signs", 1, [](int64_t i) { return i % 2 ? 0.3f : -0.3f; });
  add("subnormal mix", 1, [&](int64_t i) { return i % 5 == 0 ? 1e-42f : 1e-3f * g(rng); });
  add("two levels", 1, [](int64_t i) { return (i % 16) < 8 ? 0.1f : 0.2f; });
  return cases;
}

std::vector<std::vector<float>> MakeImatrices() {
  std::mt19937 rng(8);
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<std::vector<float>> w;
  w.emplace_back(kRow);
  for (float& v : w.back()) v = std::exp(g(rng));  // what llama-quantize passes
  w.emplace_back(kRow, 1.f);                          // uniform
  w.emplace_back(kRow);
  for (size_t i = 0; i < kRow; ++i) w.back()[i] = i % 3 == 0 ? 0.f : std::exp(2 * g(rng));  // zeros
  w.emplace_back(kRow, 0.f);                                                                // all zero
  w.emplace_back(kRow);
  for (size_t i = 0; i < kRow; ++i) w.back()[i] = i % 97 == 0 ? 1e12f : 1e-6f;  // extreme
  return w;
}

int64_t FirstDiff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return static_cast<int64_t>(i);
  return a.size() == b.size() ? -1 : static_cast<int64_t>(a.size());
}

std::vector<uint8_t> Quantize(const BlockCodec& k, bool simd, DType t, const std::vector<float>& x,
                              const float* w) {
  const int64_t nrows = static_cast<int64_t>(x.size()) / kRow;
  std::vector<uint8_t> q(static_cast<size_t>(*RowBytes(t, kRow) * nrows), 0xCD);
  (simd ? k.quantize : k.quantize_ref)(x.data(), q.data(), nrows, kRow, w);
  return q;
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST_CASE("legacy edge cases: reference = ggml, SIMD = reference, threads agree", "[legacy][edge]") {
  const ggml::Library* lib = ggml::Library::Get();
  if (lib == nullptr) WARN("ggml not loadable, reference-vs-ggml checks skipped: " << ggml::Library::LoadError());
  const auto cases = MakeEdgeCases();
  const auto imatrices = MakeImatrices();
  int compared_with_ggml = 0, expected_ggml = 0;
  for (DType t : kTypes) {
    const BlockCodec* k = GetBlockCodec(t);
    REQUIRE(k != nullptr);
    const DTypeInfo& info = GetDType(t);
    // ggml's activation types have a row quantizer only, which takes no imatrix.
    const bool activation = t == DType::kQ8_1 || t == DType::kQ8_K;
    for (const EdgeCase& c : cases) {
      for (int wi = -1; wi < static_cast<int>(imatrices.size()); ++wi) {
        if (activation && wi >= 0) continue;
        const float* w = wi < 0 ? nullptr : imatrices[static_cast<size_t>(wi)].data();
        const std::string where = std::string(info.name) + " / " + c.name + " / " +
                                  (wi < 0 ? "plain" : "imatrix " + std::to_string(wi));
        const std::vector<uint8_t> ref = Quantize(*k, false, t, c.x, w);
        std::vector<float> y(c.x.size());
        k->dequantize_ref(ref.data(), y.data(), static_cast<int64_t>(y.size()));
        // 1. Against ggml.
        if (lib != nullptr) {
          ++expected_ggml;
          // ggml's quantize_row_q8_K_ref skips an all-zero block after writing d and
          // qs, leaving its bsums unwritten (whatever the buffer held); bitsmith
          // writes zeros there, so ggml's buffer starts zeroed for q8_k.
          std::vector<uint8_t> gq(ref.size(), t == DType::kQ8_K ? 0x00 : 0xCD);
          if (activation) {
            REQUIRE(lib->FromFloatRef(info.ggml_type, c.x.data(), gq.data(), static_cast<int64_t>(c.x.size())));
          } else {
            REQUIRE(lib->QuantizeChunk(info.ggml_type, c.x.data(), gq.data(), 0,
                                       static_cast<int64_t>(c.x.size()) / kRow, kRow, w) == gq.size());
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
          const int64_t diff = FirstDiff(Quantize(*k, true, t, c.x, w), ref);
          INFO(where << ": SIMD " << hwy::TargetName(target) << " vs reference, first differing byte " << diff);
          CHECK(diff == -1);
          std::vector<float> ys(c.x.size());
          k->dequantize(ref.data(), ys.data(), static_cast<int64_t>(ys.size()));
          CHECK(SameBits(y, ys));
        }
        hwy::SetSupportedTargetsForTest(0);
        // 3. Thread counts, through the validating entry points (finite inputs only).
        if (std::all_of(c.x.begin(), c.x.end(), [](float v) { return std::isfinite(v); })) {
          for (int threads : {2, 3, 0}) {
            std::vector<uint8_t> q(ref.size());
            REQUIRE(QuantizeRows(t, c.x, q, kRow, w, Impl::kSimd, threads).ok());
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
  }
  CHECK(compared_with_ggml == expected_ggml);
}

// README section 4: an all-zero block is stored as all-zero bytes (d = 0,
// levels at the zero point) -- except the q*_0/iq4 types, whose zero level is
// not code 0: those must still dequantize to exact zeros.
TEST_CASE("legacy all-zero input dequantizes to zeros", "[legacy][edge]") {
  const std::vector<float> zeros(kRow * 2, 0.f);
  const std::vector<float> w(kRow, 1.f);
  for (DType t : kTypes) {
    const BlockCodec* k = GetBlockCodec(t);
    for (const float* wp : {static_cast<const float*>(nullptr), w.data()})
      for (bool simd : {false, true}) {
        const auto q = Quantize(*k, simd, t, zeros, wp);
        std::vector<float> y(zeros.size(), 1.f);
        k->dequantize_ref(q.data(), y.data(), static_cast<int64_t>(y.size()));
        INFO(GetDType(t).name << (wp ? " imatrix" : " plain") << (simd ? " simd" : " ref"));
        CHECK(std::all_of(y.begin(), y.end(), [](float v) { return v == 0.f; }));
      }
  }
}

}  // namespace
}  // namespace bitsmith
