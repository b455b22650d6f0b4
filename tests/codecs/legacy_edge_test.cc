// Legacy block edge cases (q4_0 q4_1 q5_0 q5_1 q8_0 q8_1 iq4_nl iq4_xs q8_k,
// with and without imatrix): the inputs of kquant_edge_test.cc (zeros, tiny
// values whose fp16 scales underflow, huge values, constant rows, exact ties,
// spikes, very different block scales, odd imatrices), which the shared vectors
// do not cover, built and checked by tests/support/edge_inputs.h. Each case is
// checked three ways:
//  1. the scalar reference against ggml itself (dlopen'ed libggml-base.so,
//     bench/ggml_ref.h): ggml_quantize_chunk, or the row quantizer
//     quantize_row_q8_1_ref / quantize_row_q8_K_ref for the activation types,
//     and to_float -- skipped with a WARN when the library is not installed;
//  2. the SIMD kernels against the reference on every compiled Highway target,
//     quantize and dequantize;
//  3. QuantizeRows / DequantizeRows give the same bytes for 1, 2, 3 threads and
//     all cores.
// Failures name the type, path, case and first differing byte.
#include <hwy/targets.h>  // SupportedAndGeneratedTargets, SetSupportedTargetsForTest

#include <algorithm>
#include <bit>
#include <cstring>
#include <cmath>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "bench/ggml_ref.h"
#include "codecs/quant.h"
#include "formats/dtype.h"
#include "support/edge_inputs.h"

namespace bitsmith {
namespace {

constexpr int64_t kRow = 512;  // 16 blocks of 32, 2 of 256

const DType kTypes[] = {DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ8_0,
                        DType::kQ8_1, DType::kIQ4_NL, DType::kIQ4_XS, DType::kQ8_K};

std::vector<test::EdgeCase> MakeEdgeCases() {
  test::EdgeCaseBuilder b(kRow, 20240602);
  b.AddZerosAndTiny({1e-5f, 1e-8f, 1e-12f, 1e-20f, 1e-30f, 1e-38f, 1e-40f, 1e-45f});
  b.Add("fp16 subnormal scale boundary", 1, [](int64_t i) { return std::ldexp(1.f, -14 - static_cast<int>(i % 13)) * 7.f; });
  b.AddHugeAndConstants({1e4f, 6.5e4f * 8, 1e10f, 1e18f, 1e30f}, {1.f, -1.f, 0.02f, -3.5f, 1000.f, 65504.f * 8});
  b.Add("levels -8..7", 1, [](int64_t i) { return static_cast<float>(i % 16 - 8); });
  b.AddSpikes();
  b.Add("negative spike", 1, [](int64_t i) { return i % 32 == 20 ? -7.f : 0.001f; });
  b.Add("positive spike equal to |min|", 1, [](int64_t i) { return i % 32 == 0 ? 8.f : (i % 32 == 1 ? -8.f : 0.5f); });
  b.Add("very different block scales", 2, [&](int64_t i) {
    return std::ldexp(b.Gauss(), static_cast<int>((i / 32) % 40) - 30);
  });
  b.Add("one zero block among normal ones", 1, [&](int64_t i) { return (i / 32) == 1 ? 0.f : b.Gauss(); });
  b.AddSignPatterns();
  return b.Take();
}

std::vector<uint8_t> Quantize(const BlockCodec& k, bool simd, DType t, const std::vector<float>& x,
                              const float* w) {
  return test::QuantizeWholeRows(simd ? k.quantize : k.quantize_ref, t, kRow, x, w);
}

TEST_CASE("legacy edge cases: reference = ggml, SIMD = reference, threads agree", "[legacy][edge]") {
  const ggml::Library* lib = ggml::Library::Get();
  if (lib == nullptr) WARN("ggml not loadable, reference-vs-ggml checks skipped: " << ggml::Library::LoadError());
  const auto cases = MakeEdgeCases();
  const auto imatrices = test::EdgeImatrices(kRow, 8);
  int compared_with_ggml = 0, expected_ggml = 0;
  for (DType t : kTypes) {
    REQUIRE(GetBlockCodec(t) != nullptr);
    // ggml's activation types are compared plain only (no imatrix).
    const bool activation = t == DType::kQ8_1 || t == DType::kQ8_K;
    if (lib != nullptr)
      expected_ggml += static_cast<int>(cases.size()) * (activation ? 1 : 1 + static_cast<int>(imatrices.size()));
    compared_with_ggml += test::CheckEdgeCases(t, kRow, cases, imatrices, /*check_threads=*/true);
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

namespace bitsmith {
namespace {

// q4_1 / q5_1 blocks whose d and m are both NaN (or d finite, m NaN): y = q*d + m
// has two NaN operands, and which one an addition propagates is the compiler's
// choice (it may commute +). bitsmith fixes it to what x86's addss returns for
// ggml's `x*d + m`, the product's NaN (a convert fuzz finding: clang's SIMD
// kernel returned m's NaN where its scalar reference returned the product's).
// Expected values by bit arithmetic: a NaN operand comes out quieted (bit 22).
TEST_CASE("legacy q4_1 and q5_1 dequantize: a NaN product wins over a NaN m", "[legacy][edge]") {
  auto f16_to_f32_nan = [](uint16_t h) {  // a NaN half, widened: sign, payload << 13, quiet
    return (static_cast<uint32_t>(h & 0x8000) << 16) | 0x7F800000u | (static_cast<uint32_t>(h & 0x3FF) << 13) |
           0x00400000u;
  };
  const uint16_t nans[] = {0x7E00, 0xFE00, 0x7C01, 0xFFFF, 0x7EFF, 0xFD55};
  const ggml::Library* lib = ggml::Library::Get();
  for (DType t : {DType::kQ4_1, DType::kQ5_1}) {
    const DTypeInfo& info = GetDType(t);
    for (uint16_t dh : {uint16_t{0x3C00}, nans[0], nans[1], nans[2], nans[3], nans[4], nans[5]})
      for (uint16_t mh : nans) {
        INFO(info.name << " d=" << std::hex << dh << " m=" << mh);
        std::vector<uint8_t> blk(static_cast<size_t>(info.block_bytes));
        for (size_t i = 0; i < blk.size(); ++i) blk[i] = static_cast<uint8_t>(i * 37 + 11);
        std::memcpy(blk.data(), &dh, 2);
        std::memcpy(blk.data() + 2, &mh, 2);
        const uint32_t want = dh == 0x3C00 ? f16_to_f32_nan(mh) : f16_to_f32_nan(dh);
        std::vector<float> ref(32), simd(32), g(32);
        REQUIRE(DequantizeRows(t, blk, ref, Impl::kReference, 1).ok());
        for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
          hwy::SetSupportedTargetsForTest(target);
          REQUIRE(DequantizeRows(t, blk, simd, Impl::kSimd, 1).ok());
          for (int j = 0; j < 32; ++j) {
            INFO(hwy::TargetName(target) << " element " << j);
            CHECK(std::bit_cast<uint32_t>(ref[static_cast<size_t>(j)]) == want);
            CHECK(std::bit_cast<uint32_t>(simd[static_cast<size_t>(j)]) == want);
          }
        }
        hwy::SetSupportedTargetsForTest(0);
        if (lib != nullptr) {
          lib->ToFloat(info.ggml_type, blk.data(), g.data(), 32);
          for (int j = 0; j < 32; ++j) CHECK(std::bit_cast<uint32_t>(g[static_cast<size_t>(j)]) == want);
        }
      }
  }
}

}  // namespace
}  // namespace bitsmith
