// k-quant edge cases (q2_k..q6_k, with and without imatrix): inputs the shared
// vectors do not cover, decided by the rules of tests/data/blocks/README.md
// section 4, built and checked by tests/support/edge_inputs.h. Each case is
// checked three ways:
//  1. the scalar reference against ggml itself (the dlopen'ed libggml-base.so
//     of bench/ggml_ref.h: ggml_quantize_chunk and to_float), byte for byte --
//     skipped with a WARN when the library is not installed;
//  2. the SIMD kernels against the reference on every compiled Highway target;
//  3. properties that need no oracle: all-zero input gives all-zero bytes,
//     power-of-two scaling of the input only shifts the fp16 scale exponents,
//     dequantized values stay finite and close for ordinary data.
// Failures name the type, path, case and first differing byte.
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "bench/ggml_ref.h"
#include "codecs/quant.h"
#include "codecs/quant_k.h"
#include "formats/blocks_k.h"
#include "support/edge_inputs.h"

namespace bitsmith {
namespace {

using kquant::KernelSet;
using test::FirstDiff;

constexpr int64_t kRow = 1024;  // 4 super-blocks per row

std::vector<test::EdgeCase> MakeEdgeCases() {
  test::EdgeCaseBuilder b(kRow, 20240601);
  b.AddZerosAndTiny({1e-8f, 1e-12f, 1e-20f, 1e-30f, 1e-38f, 1e-40f, 1e-45f});
  b.AddHugeAndConstants({1e4f, 1e10f, 1e18f, 1e30f}, {1.f, -1.f, 0.02f, -3.5f, 1000.f});
  b.AddSpikes();
  b.Add("negative spike", 1, [](int64_t i) { return i % 256 == 200 ? -7.f : 0.001f; });
  b.Add("very different sub-block scales", 2, [&](int64_t i) {
    return std::ldexp(b.Gauss(), static_cast<int>((i / 16) % 40) - 30);
  });
  b.Add("very different block scales", 2, [&](int64_t i) {
    return std::ldexp(b.Gauss(), static_cast<int>((i / 256) % 8) * 9 - 40);
  });
  b.Add("one zero block among normal ones", 1, [&](int64_t i) { return (i / 256) == 1 ? 0.f : b.Gauss(); });
  b.Add("zero sub-blocks", 2, [&](int64_t i) { return ((i / 16) % 3 == 0) ? 0.f : 0.02f * b.Gauss(); });
  b.AddSignPatterns();
  return b.Take();
}

std::vector<uint8_t> Quantize(const KernelSet& k, bool simd, const std::vector<float>& x,
                              const float* w) {
  return test::QuantizeWholeRows(simd ? k.quantize_simd : k.quantize_ref, k.type, kRow, x, w);
}

TEST_CASE("k-quant edge cases: reference = ggml, SIMD = reference", "[kquant][edge]") {
  const ggml::Library* lib = ggml::Library::Get();
  if (lib == nullptr) WARN("ggml not loadable, reference-vs-ggml checks skipped: " << ggml::Library::LoadError());
  const auto cases = MakeEdgeCases();
  const auto imatrices = test::EdgeImatrices(kRow, 7);
  int compared_with_ggml = 0;
  for (int t = 0; t < kquant::kNumKTypes; ++t)
    compared_with_ggml += test::CheckEdgeCases(kquant::Kernels(t).type, kRow, cases, imatrices,
                                               /*check_threads=*/false);
  if (lib != nullptr) CHECK(compared_with_ggml == kquant::kNumKTypes * 6 * static_cast<int>(cases.size()));
}

TEST_CASE("k-quant all-zero input gives all-zero blocks", "[kquant][edge]") {
  // README section 4: every K-quant stores all-zero bytes for an all-zero block.
  const std::vector<float> zeros(kRow * 2, 0.f);
  const std::vector<float> w(kRow, 1.f);
  for (int t = 0; t < kquant::kNumKTypes; ++t) {
    const KernelSet& k = kquant::Kernels(t);
    for (const float* wp : {static_cast<const float*>(nullptr), w.data()})
      for (bool simd : {false, true}) {
        const auto q = Quantize(k, simd, zeros, wp);
        INFO(GetDType(k.type).name << (wp ? " imatrix" : " plain") << (simd ? " simd" : " ref"));
        CHECK(std::all_of(q.begin(), q.end(), [](uint8_t b) { return b == 0; }));
      }
  }
}

// Multiplying the input by 2^e (no fp16 overflow/underflow of the scales)
// multiplies every float of ggml's searches by a power of two, which commutes
// exactly with their +, -, *, / and sqrt: the level and sub-scale bytes must be
// identical and the fp16 d/dmin must be the old ones times 2^e. A strong check
// of evaluation-order-independent bugs (wrong clamp, wrong packing) that needs
// no oracle.
// (sigma 0.32 keeps every fp16 scale normal: with N(0, 0.02) data q5_k's d is
// an fp16 subnormal, whose rounding is not scale-invariant.)
TEST_CASE("k-quant power-of-two scaling only shifts the fp16 scales", "[kquant][edge]") {
  std::mt19937 rng(99);
  std::normal_distribution<float> g(0.f, 0.32f);
  std::vector<float> x(kRow * 2), imat(kRow);
  for (float& v : x) v = g(rng);
  for (float& v : imat) v = std::exp(3 * g(rng));
  // Offsets of the fp16 fields within each block.
  const std::vector<std::vector<size_t>> half_fields = {{80, 82}, {108}, {0, 2}, {0, 2}, {208}};
  for (int t = 0; t < kquant::kNumKTypes; ++t) {
    const KernelSet& k = kquant::Kernels(t);
    const int bb = GetDType(k.type).block_bytes;
    for (const float* w : {static_cast<const float*>(nullptr), static_cast<const float*>(imat.data())})
      for (int e : {1, 3, 6}) {
        std::vector<float> xs(x);
        for (float& v : xs) v = std::ldexp(v, e);
        const auto q0 = Quantize(k, true, x, w), q1 = Quantize(k, true, xs, w);
        for (size_t i = 0; i < q0.size(); ++i) {
          const size_t in_block = i % static_cast<size_t>(bb);
          bool is_half = false;
          for (size_t off : half_fields[static_cast<size_t>(t)])
            if (in_block == off || in_block == off + 1) is_half = true;
          if (is_half) continue;
          INFO(GetDType(k.type).name << (w ? " imatrix" : " plain") << " e=" << e << " byte " << i);
          REQUIRE(q0[i] == q1[i]);
        }
        for (size_t blk = 0; blk < q0.size() / static_cast<size_t>(bb); ++blk)
          for (size_t off : half_fields[static_cast<size_t>(t)]) {
            const size_t p = blk * static_cast<size_t>(bb) + off;
            const float h0 = F16BitsToF32(static_cast<uint16_t>(q0[p] | (q0[p + 1] << 8)));
            const float h1 = F16BitsToF32(static_cast<uint16_t>(q1[p] | (q1[p + 1] << 8)));
            INFO(GetDType(k.type).name << " block " << blk << " field " << off << ": " << h0
                                       << " vs " << h1);
            REQUIRE(std::ldexp(h0, e) == h1);
          }
      }
  }
}

// The error a k-quant leaves on ordinary data: sqrt(sum e^2 / sum x^2) of
// N(0, 1) rows stays under a bound per type (ggml's own figures on the shared
// vectors are 0.30, 0.15, 0.072, 0.036, 0.018), and every value is finite.
TEST_CASE("k-quant round trip error is bounded", "[kquant][edge]") {
  const double bound[] = {0.35, 0.18, 0.085, 0.045, 0.022};
  std::mt19937 rng(5);
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> x(kRow * 8), imat(kRow);
  for (float& v : x) v = g(rng);
  for (float& v : imat) v = std::exp(g(rng));
  for (int t = 0; t < kquant::kNumKTypes; ++t) {
    const KernelSet& k = kquant::Kernels(t);
    for (const float* w : {static_cast<const float*>(nullptr), static_cast<const float*>(imat.data())}) {
      const auto q = Quantize(k, true, x, w);
      std::vector<float> y(x.size());
      k.dequantize_simd(q.data(), y.data(), static_cast<int64_t>(y.size()));
      double se = 0, sx = 0;
      for (size_t i = 0; i < x.size(); ++i) {
        REQUIRE(std::isfinite(y[i]));
        se += (double(y[i]) - x[i]) * (double(y[i]) - x[i]);
        sx += double(x[i]) * x[i];
      }
      INFO(GetDType(k.type).name << (w ? " imatrix" : " plain") << ": rel rmse " << std::sqrt(se / sx));
      CHECK(std::sqrt(se / sx) < bound[t]);
    }
  }
}

}  // namespace
}  // namespace bitsmith

namespace bitsmith {
namespace {

// Random rows (random row length, scale over 2^-40..2^40, outliers, zero runs,
// constant stretches, random imatrix or none) through the reference, the SIMD
// kernels and ggml; `iterations` per type.
void RandomDifferential(int iterations, uint32_t seed) {
  const ggml::Library* lib = ggml::Library::Get();
  if (lib == nullptr) {
    WARN("ggml not loadable, random differential skipped: " << ggml::Library::LoadError());
    return;
  }
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.f, 1.f);
  for (int t = 0; t < kquant::kNumKTypes; ++t) {
    const KernelSet& k = kquant::Kernels(t);
    const DTypeInfo& info = GetDType(k.type);
    for (int it = 0; it < iterations; ++it) {
      const int64_t npr = 256 * (1 + static_cast<int64_t>(rng() % 6));
      const int64_t nrows = 1 + static_cast<int64_t>(rng() % 4);
      const float scale = std::ldexp(1.f, static_cast<int>(rng() % 81) - 40);
      std::vector<float> x(static_cast<size_t>(npr * nrows));
      float run_value = 0;
      int run_left = 0;
      for (float& v : x) {
        const uint32_t r = rng() % 1000;
        if (run_left > 0) {
          --run_left;
          v = run_value;
          continue;
        }
        v = scale * g(rng);
        if (r < 10) v *= 100;                                  // outlier
        else if (r < 14) { run_left = 1 + rng() % 40; run_value = r < 12 ? 0.f : v; }  // run
      }
      std::vector<float> w(static_cast<size_t>(npr));
      for (float& v : w) v = std::exp(2 * g(rng)) * (rng() % 10 == 0 ? 0.f : 1.f);
      const float* wp = rng() % 2 ? w.data() : nullptr;
      std::vector<uint8_t> ref(static_cast<size_t>(*RowBytes(k.type, npr) * nrows)), gq(ref.size()),
          sq(ref.size());
      k.quantize_ref(x.data(), ref.data(), nrows, npr, wp);
      k.quantize_simd(x.data(), sq.data(), nrows, npr, wp);
      REQUIRE(lib->QuantizeChunk(info.ggml_type, x.data(), gq.data(), 0, nrows, npr, wp) == gq.size());
      const int64_t diff = FirstDiff(ref, gq);
      INFO(info.name << " iteration " << it << " rows " << nrows << " x " << npr << " scale " << scale
                     << (wp ? " imatrix" : " plain") << ": first byte differing from ggml " << diff
                     << ", from SIMD " << FirstDiff(ref, sq));
      REQUIRE(diff == -1);
      REQUIRE(sq == ref);
    }
  }
}

TEST_CASE("k-quant random rows: reference = SIMD = ggml", "[kquant][edge]") {
  RandomDifferential(60, 31337);
}

TEST_CASE("k-quant random rows, long: reference = SIMD = ggml", "[.][long]") {
  RandomDifferential(3000, 271828);
}

}  // namespace
}  // namespace bitsmith
