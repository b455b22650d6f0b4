// SIMD = scalar for the vectorised TQ1_0 / TQ2_0 / MXFP4 quantizers and
// dequantizers (codecs/quant_iq_ternary_simd.cc) and the IQ1_S / IQ1_M split
// searches (codecs/quant_iq1_simd.cc), on every compiled Highway target, calling
// the kernels directly (so inputs QuantizeRows refuses, NaN and inf, reach the
// ternary/MXFP4 kernels too). Inputs: gaussian rows of several scales, odd row
// counts, zeros, constants, spikes, exact ternary ties (x = amax/2), tiny
// (subnormal) and huge values (IQ1 sums that overflow to inf), zero importance
// weights, every MXFP4 exponent with the mantissas around the fast-exponent
// boundary, and random blocks (every fp16 d) for the dequantizers.
// The oracles themselves are checked against ggml by iquant_edge_test.cc and
// ggml_diff_test.cc; here the point is that the SIMD paths equal them.
#include <hwy/targets.h>  // hwy::SupportedAndGeneratedTargets, SetSupportedTargetsForTest

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "codecs/iq_kernels.h"
#include "formats/dtype.h"
#include "support/dump.h"

namespace bitsmith {
namespace {

using QuantFn = void (*)(const float*, void*, int64_t, int64_t, const float*);
using DequantFn = void (*)(const void*, float*, int64_t);

struct Kernels {
  const char* name;
  DType type;
  QuantFn qref, qsimd;
  DequantFn dref, dsimd;
  bool finite_only;   // IQ1: inputs QuantizeRows lets through only
  bool needs_imatrix;
};
const Kernels kKernels[] = {
    {"tq1_0", DType::kTQ1_0, iq::QuantizeTQ1_0Ref, iq::QuantizeTQ1_0Simd, iq::DequantizeTQ1_0Ref,
     iq::DequantizeTQ1_0Simd, false, false},
    {"tq2_0", DType::kTQ2_0, iq::QuantizeTQ2_0Ref, iq::QuantizeTQ2_0Simd, iq::DequantizeTQ2_0Ref,
     iq::DequantizeTQ2_0Simd, false, false},
    {"mxfp4", DType::kMXFP4, iq::QuantizeMXFP4Ref, iq::QuantizeMXFP4Simd, iq::DequantizeMXFP4Ref,
     iq::DequantizeMXFP4Simd, false, false},
    {"iq1_s", DType::kIQ1_S, iq::QuantizeIQ1SRef, iq::QuantizeIQ1SSimd, iq::DequantizeIQ1SRef,
     iq::DequantizeIQ1SSimd, true, true},
    {"iq1_m", DType::kIQ1_M, iq::QuantizeIQ1MRef, iq::QuantizeIQ1MSimd, iq::DequantizeIQ1MRef,
     iq::DequantizeIQ1MSimd, true, false},
};

using test::Bits;  // tests/support/dump.h
using test::Floats;
using test::FromBits;
using test::Hex;

struct Input {
  std::string name;
  int64_t n_per_row;
  std::vector<float> x;
  bool finite = true;
};

std::vector<float> Gauss(std::mt19937& rng, size_t n, float sigma) {
  std::normal_distribution<float> g(0.f, sigma);
  std::vector<float> v(n);
  for (auto& f : v) f = g(rng);
  return v;
}

std::vector<Input> Inputs() {
  std::mt19937 rng(2026);
  std::vector<Input> in;
  for (float sigma : {0.02f, 1.0f, 3e-3f})
    for (int64_t rows : {1, 3, 5}) in.push_back({fmt::format("gauss {} x{}", sigma, rows), 512, Gauss(rng, 512 * rows, sigma)});
  in.push_back({"zeros", 256, std::vector<float>(768, 0.0f)});
  in.push_back({"negative zeros", 256, std::vector<float>(256, -0.0f)});
  in.push_back({"constant", 256, std::vector<float>(512, 0.75f)});
  in.push_back({"constant negative", 256, std::vector<float>(256, -3.5f)});
  {
    auto x = Gauss(rng, 768, 0.01f);
    x[7] = 40.f, x[300] = -55.f, x[700] = 1e4f;
    in.push_back({"spikes", 256, x});
  }
  {  // ternary ties: values at exactly +-amax/2 and amax
    std::vector<float> x(512);
    for (size_t i = 0; i < x.size(); ++i) x[i] = (i % 5 == 0 ? 2.0f : i % 5 == 1 ? -1.0f : i % 5 == 2 ? 1.0f : 0.5f) * (i % 2 ? 1 : -1);
    in.push_back({"ties", 256, x});
  }
  {  // a few distinct values (IQ1: many equal sums, sort ties)
    std::vector<float> x(1024);
    for (auto& f : x) f = static_cast<float>(static_cast<int>(rng() % 5) - 2) * 0.25f;
    in.push_back({"few levels", 256, x});
  }
  {
    auto x = Gauss(rng, 512, 1.0f);
    for (auto& f : x) f *= 1e-39f;  // subnormal
    in.push_back({"subnormal", 256, x});
  }
  {
    auto x = Gauss(rng, 512, 1.0f);
    for (auto& f : x) f *= 1e-20f;
    in.push_back({"tiny", 256, x});
  }
  {
    auto x = Gauss(rng, 512, 1.0f);
    for (auto& f : x) f *= 1e25f;  // x^2 and the weighted sums overflow
    in.push_back({"huge", 256, x});
  }
  {
    auto x = Gauss(rng, 512, 1.0f);
    for (auto& f : x) f *= 3e38f / 4;
    in.push_back({"near FLT_MAX", 256, x});
  }
  {  // blocks of very different scales
    auto x = Gauss(rng, 2048, 1.0f);
    for (size_t i = 0; i < x.size(); ++i) x[i] *= std::ldexp(1.0f, static_cast<int>(i / 32 % 40) - 20);
    in.push_back({"mixed scales", 1024, x});
  }
  {  // some zero sub-blocks
    auto x = Gauss(rng, 512, 0.05f);
    for (int i = 32; i < 64; ++i) x[i] = 0;
    for (int i = 300; i < 316; ++i) x[i] = 1e-9f;
    in.push_back({"zero sub-blocks", 256, x});
  }
  // Non-finite (ternary / MXFP4 kernels only).
  {
    auto x = Gauss(rng, 512, 1.0f);
    x[3] = std::numeric_limits<float>::quiet_NaN();
    x[260] = std::numeric_limits<float>::infinity();
    x[400] = -std::numeric_limits<float>::infinity();
    x[33] = -std::numeric_limits<float>::quiet_NaN();
    in.push_back({"nan inf", 256, x, false});
  }
  return in;
}

std::vector<std::pair<std::string, std::vector<float>>> Imatrices(int64_t n, bool required) {
  std::vector<std::pair<std::string, std::vector<float>>> out;
  if (!required) out.push_back({"none", {}});
  std::mt19937 rng(9);
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> w(static_cast<size_t>(n));
  for (auto& v : w) v = std::exp(g(rng));
  out.push_back({"exp-normal", w});
  std::vector<float> z = w;
  for (size_t i = 0; i < z.size(); i += 3) z[i] = 0;
  out.push_back({"with zeros", z});
  out.push_back({"ones", std::vector<float>(static_cast<size_t>(n), 1.0f)});
  return out;
}

// Quantizes with the oracle and with the SIMD kernel on every target; FAILs with
// the block, its input and both encodings on the first difference.
void CheckQuantize(const Kernels& k, const Input& in, const std::string& wname, const std::vector<float>& w) {
  const DTypeInfo& info = GetDType(k.type);
  if (in.n_per_row % info.block_elems) return;
  const int64_t nrows = static_cast<int64_t>(in.x.size()) / in.n_per_row;
  const size_t bb = info.block_bytes, be = info.block_elems;
  const size_t nbytes = in.x.size() / be * bb;
  const float* imatrix = w.empty() ? nullptr : w.data();
  std::vector<uint8_t> ref(nbytes, 0xAB);
  k.qref(in.x.data(), ref.data(), nrows, in.n_per_row, imatrix);
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    std::vector<uint8_t> q(nbytes, 0x5C);
    k.qsimd(in.x.data(), q.data(), nrows, in.n_per_row, imatrix);
    for (size_t i = 0; i < nbytes; ++i)
      if (q[i] != ref[i]) {
        const size_t blk = i / bb;
        hwy::SetSupportedTargetsForTest(0);
        FAIL(k.name << " on " << in.name << " (imatrix " << wname << "): SIMD (" << hwy::TargetName(target)
                    << ") differs from scalar at byte " << i << " (block " << blk << ")\n  input: "
                    << Floats(in.x.data() + blk * be, be) << "\n  scalar: " << Hex(ref.data() + blk * bb, bb)
                    << "\n  simd:   " << Hex(q.data() + blk * bb, bb));
      }
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST_CASE("iquant SIMD quantizers: tq1_0 tq2_0 mxfp4 iq1_s iq1_m equal the scalar oracles", "[iquant]") {
  int runs = 0;
  for (const Input& in : Inputs())
    for (const Kernels& k : kKernels) {
      if (k.finite_only && !in.finite) continue;
      for (const auto& [wname, w] : Imatrices(in.n_per_row, k.needs_imatrix)) {
        if (k.type != DType::kIQ1_S && k.type != DType::kIQ1_M && !w.empty()) continue;  // ignored
        CheckQuantize(k, in, wname, w);
        ++runs;
      }
    }
  CHECK(runs > 100);
}

TEST_CASE("iquant SIMD quantizers: many random IQ1 rows (sigma, imatrix) equal the oracles", "[iquant]") {
  std::mt19937 rng(17);
  std::uniform_real_distribution<float> ls(-8.f, 4.f);
  for (int rep = 0; rep < 6; ++rep) {
    const Input in{fmt::format("random rows {}", rep), 1024, Gauss(rng, 1024 * 3, std::exp2(ls(rng)))};
    for (const Kernels& k : kKernels)
      for (const auto& [wname, w] : Imatrices(in.n_per_row, k.needs_imatrix)) CheckQuantize(k, in, wname, w);
  }
}

TEST_CASE("iquant SIMD MXFP4: every exponent, mantissas around the fast-exponent boundary", "[iquant]") {
  // Block j: amax = 2^(e-127) * (1 + m/2^23) for the biased exponent e and one
  // mantissa; the other values spread below it (so every nibble occurs).
  const uint32_t kMant[] = {0, 1, 2, 0x400000, 0x7EFFFF, 0x7F0000, 0x7F0001, 0x7FFFFE, 0x7FFFFF};
  std::vector<float> x;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (uint32_t e = 0; e <= 254; ++e)
    for (uint32_t m : kMant) {
      const float amax = FromBits(e << 23 | m);
      for (int j = 0; j < 32; ++j) x.push_back(j == 5 ? (e % 2 ? -amax : amax) : amax * u(rng));
    }
  const Input in{"mxfp4 exponents", 32, x};
  CheckQuantize(kKernels[2], in, "none", {});
}

TEST_CASE("iquant SIMD dequantizers: tq1_0 tq2_0 random blocks, every fp16 scale", "[iquant]") {
  std::mt19937 rng(11);
  for (int ki = 0; ki < 2; ++ki) {
    const Kernels& k = kKernels[ki];
    const DTypeInfo& info = GetDType(k.type);
    const size_t nblocks = 65536 + 3;  // every fp16 d bit pattern, odd count
    std::vector<uint8_t> blocks(nblocks * info.block_bytes);
    for (auto& b : blocks) b = static_cast<uint8_t>(rng());
    for (size_t i = 0; i < nblocks; ++i) {  // d is the last 2 bytes of both layouts
      const uint16_t d = static_cast<uint16_t>(i);
      std::memcpy(blocks.data() + (i + 1) * info.block_bytes - 2, &d, 2);
    }
    const size_t n = nblocks * info.block_elems;
    std::vector<float> y1(n), y2(n);
    k.dref(blocks.data(), y1.data(), static_cast<int64_t>(n));
    for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
      hwy::SetSupportedTargetsForTest(target);
      std::fill(y2.begin(), y2.end(), 1234.5f);
      k.dsimd(blocks.data(), y2.data(), static_cast<int64_t>(n));
      for (size_t i = 0; i < n; ++i)
        if (Bits(y1[i]) != Bits(y2[i])) {
          hwy::SetSupportedTargetsForTest(0);
          FAIL(k.name << " dequantize, target " << hwy::TargetName(target) << ", element " << i << " (block "
                      << i / info.block_elems << "): simd 0x" << std::hex << Bits(y2[i]) << " scalar 0x"
                      << Bits(y1[i]));
        }
    }
    hwy::SetSupportedTargetsForTest(0);
  }
}

// The fast MXFP4 exponent (codecs/quant_iq_ternary_simd.cc) takes floor(log2f(a))
// to be a's binary exponent k when a is normal with mantissa bits in
// [1, 0x7F0000). Checked here for every such float against the libm in use.
TEST_CASE("iquant MXFP4: floorf(log2f(a)) is the binary exponent away from powers of two (all floats)", "[.][long]") {
  uint64_t checked = 0;
  for (uint32_t e = 1; e <= 254; ++e)
    for (uint32_t m = 1; m < 0x7F0000u; ++m) {
      const float a = FromBits(e << 23 | m);
      if (floorf(log2f(a)) != static_cast<float>(static_cast<int>(e) - 127))
        FAIL("log2f(" << fmt::format("{:a}", a) << ") = " << fmt::format("{:a}", log2f(a)));
      ++checked;
    }
  CHECK(checked == 254ull * (0x7F0000u - 1));
}

}  // namespace
}  // namespace bitsmith
