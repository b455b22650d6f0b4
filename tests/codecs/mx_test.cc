// OCP MX v1.0 block codecs (mxfp8_e4m3, mxfp8_e5m2, mxfp6_e3m2, mxfp6_e2m3,
// mxint8, mxfp4_ocp): layouts, the scale rule, element rounding, special values,
// the error bound, SIMD = scalar, thread independence.
//
// The oracle here is independent of the codec: scales from std::frexp on the
// double value of amax, element codes by searching every code of the format for
// the nearest value (ElementFormat::Value, the table formula) to the EXACT
// quotient x / 2^shared_exp computed in double, ties to the even code,
// saturation by construction (the search only sees finite codes). No expected
// byte in this file was produced by the codec under test; the literal worked
// examples were derived by hand (the derivation is in each comment).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <hwy/targets.h>  // hwy::SupportedAndGeneratedTargets, SetSupportedTargetsForTest

#include "codecs/quant.h"
#include "formats/blocks_mx.h"
#include "formats/dtype.h"
#include "formats/element_format.h"
#include "support/dump.h"

namespace bitsmith {
namespace {

using test::Bits;
using test::FromBits;

constexpr DType kMxTypes[] = {DType::kMXFP8_E4M3, DType::kMXFP8_E5M2, DType::kMXFP6_E3M2,
                              DType::kMXFP6_E2M3, DType::kMXINT8,     DType::kMXFP4_OCP};

std::string Hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", v);
  return buf;
}

// ---------------------------------------------------------------------------
// The oracle.
// ---------------------------------------------------------------------------

// E8M0 code by the spec's formula, via frexp (amax = f * 2^k, f in [0.5, 1):
// floor(log2(amax)) = k - 1).
int OracleScaleCode(double amax, int emax) {
  if (!std::isfinite(amax)) return 0xFF;
  if (amax == 0) return 0;
  int k = 0;
  std::frexp(amax, &k);
  return std::max(k - 1 - emax, -127) + 127;
}

// The code of the element format nearest to v (round to nearest, ties to the
// even code, saturating); MXINT8 works on the integer grid q (value q * 2^-6,
// here v is already multiplied by 64) with |q| <= 127.
uint32_t OracleElementCode(const MxLayout& l, double v) {
  const ElementFormat& f = GetElementFormat(l.element);
  const bool neg = std::signbit(v);
  const double a = std::fabs(v);
  if (l.fraction_bits != 0) {  // integer grid, symmetric saturation
    double q = std::nearbyint(a);  // default rounding mode: nearest even
    q = std::min(q, 127.0);
    const int s = neg ? -static_cast<int>(q) : static_cast<int>(q);
    return static_cast<uint32_t>(static_cast<uint8_t>(static_cast<int8_t>(s)));
  }
  uint32_t best = 0;
  double best_d = std::numeric_limits<double>::infinity();
  for (uint32_t c = 0; c <= f.code_mask() >> 1; ++c) {  // sign bit clear
    const ValueClass k = f.Classify(c);
    if (k == ValueClass::kNaN || k == ValueClass::kInfinity) continue;
    const double d = std::fabs(f.Value(c) - a);
    if (d < best_d || (d == best_d && (c & 1) == 0)) {
      best_d = d;
      best = c;
    }
  }
  return best | (neg ? f.sign_mask() : 0);
}

// Oracle for one block: the scale code and the element codes.
struct OracleBlock {
  int scale;
  uint8_t codes[kMxBlockElems];
};
OracleBlock Oracle(const MxLayout& l, const float* x) {
  OracleBlock o{};
  double amax = 0;
  for (int i = 0; i < kMxBlockElems; ++i) {
    if (std::isnan(x[i])) amax = std::numeric_limits<double>::quiet_NaN();
    if (!std::isnan(amax)) amax = std::max(amax, std::fabs(static_cast<double>(x[i])));
  }
  o.scale = OracleScaleCode(amax, l.emax_elem);
  for (int i = 0; i < kMxBlockElems; ++i) {
    if (o.scale == 0xFF) {
      o.codes[i] = 0;
      continue;
    }
    const double v = std::ldexp(static_cast<double>(x[i]), -(o.scale - 127) + l.fraction_bits);
    o.codes[i] = static_cast<uint8_t>(OracleElementCode(l, v));
  }
  return o;
}

// The value a (code, scale) pair must dequantize to: the exact product rounded
// once to float32 (double holds it exactly).
float OracleDequant(const MxLayout& l, uint8_t code, int scale) {
  if (scale == 0xFF) return FromBits(0x7FC00000u);
  const double p = GetElementFormat(l.element).Value(code);
  return static_cast<float>(std::ldexp(p, scale - 127 - l.fraction_bits));
}

std::vector<uint8_t> Quantize(DType t, const std::vector<float>& x, int64_t n_per_row, Impl impl,
                              int threads = 1) {
  std::vector<uint8_t> out(x.size() / GetDType(t).block_elems * GetDType(t).block_bytes);
  const Status s = QuantizeRows(t, x, out, n_per_row, nullptr, impl, threads);
  REQUIRE(s.ok());
  return out;
}
std::vector<float> Dequantize(DType t, const std::vector<uint8_t>& q, Impl impl, int threads = 1) {
  std::vector<float> y(q.size() / GetDType(t).block_bytes * GetDType(t).block_elems);
  const Status s = DequantizeRows(t, q, y, impl, threads);
  REQUIRE(s.ok());
  return y;
}

// Checks quantize (both impls) and dequantize (both impls) of whole blocks
// against the oracle; returns the number of mismatches (and reports the first).
int CheckAgainstOracle(DType t, const std::vector<float>& x, const std::string& what) {
  const MxLayout l = *GetMxLayout(t);
  const int bb = GetDType(t).block_bytes;
  int bad = 0;
  for (Impl impl : {Impl::kReference, Impl::kSimd}) {
    const std::vector<uint8_t> q = Quantize(t, x, kMxBlockElems, impl);
    const std::vector<float> y = Dequantize(t, q, impl);
    for (size_t b = 0; b < x.size() / kMxBlockElems; ++b) {
      const float* xb = x.data() + b * kMxBlockElems;
      const OracleBlock o = Oracle(l, xb);
      const uint8_t* blk = q.data() + b * bb;
      uint8_t codes[kMxBlockElems];
      UnpackMxElements(l.element_bits, blk + 1, kMxBlockElems, codes);
      if (blk[0] != o.scale) {
        if (bad++ == 0)
          FAIL_CHECK(GetDType(t).name << " " << what << (impl == Impl::kSimd ? " simd" : " ref")
                                      << ": block " << b << " scale " << int(blk[0])
                                      << ", oracle " << o.scale);
        continue;
      }
      for (int i = 0; i < kMxBlockElems; ++i) {
        const float want_y = OracleDequant(l, o.codes[i], o.scale);
        const float got_y = y[b * kMxBlockElems + i];
        if (codes[i] != o.codes[i] || Bits(got_y) != Bits(want_y)) {
          if (bad++ == 0)
            FAIL_CHECK(GetDType(t).name
                       << " " << what << (impl == Impl::kSimd ? " simd" : " ref") << ": block " << b
                       << " element " << i << " x=" << xb[i] << " (" << Hex(Bits(xb[i]))
                       << ") scale " << o.scale << ": code " << int(codes[i]) << " oracle "
                       << int(o.codes[i]) << ", y=" << got_y << " (" << Hex(Bits(got_y))
                       << ") oracle " << want_y);
        }
      }
    }
  }
  return bad;
}

// Diverse test blocks: each block gets its own magnitude (log-uniform over the
// whole float32 range) and distribution; some with spikes, ties, zeros,
// subnormals.
std::vector<float> DiverseBlocks(size_t nblocks, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::normal_distribution<double> g(0, 1);
  std::vector<float> x(nblocks * kMxBlockElems);
  for (size_t b = 0; b < nblocks; ++b) {
    float* xb = x.data() + b * kMxBlockElems;
    const int kind = static_cast<int>(rng() % 8);
    const double mag = std::ldexp(1.0, static_cast<int>(rng() % 290) - 160);  // 2^-160 .. 2^129
    for (int i = 0; i < kMxBlockElems; ++i) {
      double v = 0;
      switch (kind) {
        case 0: v = g(rng) * mag; break;
        case 1: v = (u(rng) * 2 - 1) * mag; break;
        case 2: v = (i == static_cast<int>(rng() % 32)) ? 1000 * mag : g(rng) * mag * 1e-3; break;
        case 3: v = mag * (1 + std::floor(u(rng) * 64) / 64.0) * ((rng() & 1) ? -1 : 1); break;
        case 4: v = (rng() % 3 == 0) ? 0.0 : g(rng) * mag; break;
        case 5: v = std::ldexp(static_cast<double>(rng() % 1024), static_cast<int>(rng() % 40) - 20) * mag; break;
        case 6: v = g(rng) * std::ldexp(1.0, static_cast<int>(rng() % 60) - 30) * mag; break;
        default: v = (rng() & 1) ? mag : -mag * 0.5; break;
      }
      float f = static_cast<float>(v);  // may overflow to inf: clamp to the max
      if (std::isinf(f)) f = std::copysign(std::numeric_limits<float>::max(), f);
      xb[i] = f;
    }
  }
  return x;
}

// ---------------------------------------------------------------------------
// Layouts and packing.
// ---------------------------------------------------------------------------

TEST_CASE("mx: layouts match the dtype table", "[mx]") {
  for (DType t : kMxTypes) {
    INFO(GetDType(t).name);
    const MxLayout l = *GetMxLayout(t);
    CHECK(GetDType(t).block_elems == kMxBlockElems);
    CHECK(GetDType(t).block_bytes == 1 + MxPayloadBytes(l));
  }
  CHECK_FALSE(GetMxLayout(DType::kNVFP4).has_value());
  CHECK_FALSE(GetMxLayout(DType::kMXFP4).has_value());  // ggml's layout is another type
  // emax_elem against literal maxima (OCP MX v1.0 tables): 2^emax <= max < 2^(emax+1).
  CHECK(GetElementFormat(ElementFormatId::kE4M3FN).max_finite() == 448.0);
  CHECK(GetElementFormat(ElementFormatId::kE5M2).max_finite() == 57344.0);
  CHECK(GetElementFormat(ElementFormatId::kE3M2FN).max_finite() == 28.0);
  CHECK(GetElementFormat(ElementFormatId::kE2M3FN).max_finite() == 7.5);
  CHECK(GetElementFormat(ElementFormatId::kE2M1FN).max_finite() == 6.0);
  for (DType t : kMxTypes) {
    const MxLayout l = *GetMxLayout(t);
    const double mx = l.fraction_bits ? 127.0 / 64 : GetElementFormat(l.element).max_finite();
    CHECK(std::ldexp(1.0, l.emax_elem) <= mx);
    CHECK(mx < std::ldexp(1.0, l.emax_elem + 1));
  }
}

// Writes `bits`-wide codes into an LSB-first bit stream, one bit at a time:
// the definition the packers must follow.
std::vector<uint8_t> BitStream(const std::vector<uint8_t>& codes, int bits) {
  std::vector<uint8_t> out(codes.size() * bits / 8, 0);
  for (size_t i = 0; i < codes.size(); ++i)
    for (int k = 0; k < bits; ++k)
      if ((codes[i] >> k) & 1) {
        const size_t pos = i * bits + k;
        out[pos / 8] |= static_cast<uint8_t>(1u << (pos % 8));
      }
  return out;
}

TEST_CASE("mx: FP6 and FP4 packing is the LSB-first bit stream", "[mx]") {
  std::mt19937_64 rng(11);
  for (int bits : {4, 6, 8}) {
    INFO("bits " << bits);
    // Every value at every position of a block, other positions random.
    for (int pos = 0; pos < kMxBlockElems; ++pos) {
      for (int v = 0; v < (1 << bits); ++v) {
        std::vector<uint8_t> codes(kMxBlockElems);
        for (auto& c : codes) c = static_cast<uint8_t>(rng() & ((1u << bits) - 1));
        codes[pos] = static_cast<uint8_t>(v);
        const std::vector<uint8_t> want = BitStream(codes, bits);
        std::vector<uint8_t> got(want.size());
        PackMxElements(bits, codes.data(), kMxBlockElems, got.data());
        REQUIRE(got == want);
        uint8_t back[kMxBlockElems];
        UnpackMxElements(bits, got.data(), kMxBlockElems, back);
        REQUIRE(std::equal(codes.begin(), codes.end(), back));
      }
    }
  }
  // Higher bits of an input code are ignored by the packers.
  const uint8_t c[4] = {0xFF, 0xC0, 0x40, 0x80}, want[3] = {0x3F, 0x00, 0x00};
  uint8_t o[3];
  PackFP6x4(c, o);
  CHECK(std::equal(o, o + 3, want));
  CHECK(PackFP4x2(0xF1, 0xE2) == 0x21);
}

// ---------------------------------------------------------------------------
// The scale rule.
// ---------------------------------------------------------------------------

TEST_CASE("mx: shared exponent is floor(log2(amax)) - emax, exactly, clamped to E8M0", "[mx]") {
  std::vector<float> amaxes = {0.0f,
                               std::numeric_limits<float>::denorm_min(),
                               FromBits(0x00400000u),  // 2^-127
                               FromBits(0x007FFFFFu),  // largest subnormal
                               std::numeric_limits<float>::min(),
                               1e-40f, 1e-38f, 1e38f, 1.0f, 6.0f, 7.5f, 28.0f, 448.0f, 57344.0f,
                               std::numeric_limits<float>::max()};
  for (int k = -126; k <= 127; ++k) {
    amaxes.push_back(std::ldexp(1.0f, k));                  // exactly 2^k
    amaxes.push_back(std::ldexp(0x1.fffffep0f, k));         // just below 2^(k+1)
    if (k > -126) amaxes.push_back(std::nextafter(std::ldexp(1.0f, k), 0.0f));  // just below 2^k
  }
  std::mt19937 rng(5);
  for (int i = 0; i < 20000; ++i) amaxes.push_back(FromBits(rng() & 0x7F7FFFFFu));
  for (DType t : kMxTypes) {
    const MxLayout l = *GetMxLayout(t);
    for (float a : amaxes) {
      INFO(GetDType(t).name << " amax " << a << " (" << Hex(Bits(a)) << ")");
      REQUIRE(MxScaleCodeForAmax(Bits(a), l.emax_elem) == OracleScaleCode(a, l.emax_elem));
    }
    CHECK(MxScaleCodeForAmax(0x7F800000u, l.emax_elem) == 0xFF);  // inf
    CHECK(MxScaleCodeForAmax(0x7FC00000u, l.emax_elem) == 0xFF);  // NaN
  }
  // log2f would get these wrong: 0x1.fffffep+k rounds up to k+1 in float log2.
  CHECK(MxScaleCodeForAmax(Bits(0x1.fffffep0f), 8) == 127 - 8);
  CHECK(MxScaleCodeForAmax(Bits(0x1.fffffep-1f), 2) == 127 - 1 - 2);
}

TEST_CASE("mx: E8M0 value formula", "[mx]") {
  for (int e = 0; e < 255; ++e) {
    INFO("e " << e);
    CHECK(static_cast<double>(FromBits(E8M0ToF32Bits(static_cast<uint8_t>(e)))) ==
          std::ldexp(1.0, e - 127));
    CHECK(GetElementFormat(ElementFormatId::kE8M0FNU).Value(static_cast<uint32_t>(e)) ==
          std::ldexp(1.0, e - 127));
  }
  CHECK(std::isnan(FromBits(E8M0ToF32Bits(0xFF))));
  for (int k = -149; k <= 127; ++k) CHECK(static_cast<double>(FromBits(Pow2F32Bits(k))) == std::ldexp(1.0, k));
}

// ---------------------------------------------------------------------------
// Worked examples (hand-derived codes).
// ---------------------------------------------------------------------------

struct Example {
  DType t;
  std::vector<float> x;           // padded with zeros to 32
  int scale;                      // expected E8M0 code
  std::vector<uint8_t> codes;     // expected codes of the first x.size() elements
};

TEST_CASE("mx: worked examples", "[mx]") {
  const std::vector<Example> examples = {
      // MXFP8 E4M3, amax 1.0: floor(log2 1) - 8 = -8 -> code 119, X = 2^-8.
      //   1.0 -> 256 = 2^8: field 8+7 = 15, m 0 -> 0b0'1111'000
      //  -0.5 -> -128 = 2^7: field 14 -> 0b1'1110'000
      //   2^-10 * 1.0625 -> 0.265625 = 2^-2 * 1.0625: m = 0.5 ulp, tie -> even 0 -> 0b0'0101'000
      //   2^-10 * 1.1875 -> 0.296875 = 2^-2 * 1.1875: m = 1.5 ulp, tie -> even 2 -> 0b0'0101'010
      //   2^-18 -> 2^-10: half the min subnormal 2^-9, tie -> even 0 -> 0b0'0000'000
      //   2^-17 -> 2^-9: min subnormal -> 0b0'0000'001
      {DType::kMXFP8_E4M3,
       {1.0f, -0.5f, 0x1.1p-10f, 0x1.3p-10f, 0x1p-18f, 0x1p-17f},
       119,
       {0b0'1111'000, 0b1'1110'000, 0b0'0101'000, 0b0'0101'010, 0b0'0000'000, 0b0'0000'001}},
      // MXFP8 E4M3, amax 0x1.fffffep0 (just below 2): floor log2 = 0 -> code 119 (not 120);
      // 0x1.fffffep0 * 256 = 511.99997 > 448 -> saturates to 448 = 0b0'1111'110.
      {DType::kMXFP8_E4M3, {0x1.fffffep0f}, 119, {0b0'1111'110}},
      // MXFP8 E5M2, amax 60000: floor log2 = 15, -15 -> code 127; 60000 > 57344 saturates
      // to 0b0'11110'11 (the non-saturating conversion would give inf 0b0'11111'00).
      {DType::kMXFP8_E5M2, {60000.0f, -1.0f}, 127, {0b0'11110'11, 0b1'01111'00}},
      // MXFP6 E3M2, amax 30: floor log2 = 4, -4 -> code 127; 30 -> 28 = 0b0'111'11;
      // 0.0625 = 2^-4 -> min subnormal 0b0'000'01; -0.09375 = -1.5 * 2^-4: tie between
      // 1 and 2 (x 2^-4) -> even 2 -> 0b1'000'10.
      {DType::kMXFP6_E3M2, {30.0f, 0.0625f, -0.09375f}, 127, {0b0'111'11, 0b0'000'01, 0b1'000'10}},
      // MXFP6 E2M3, amax 7.5: floor log2 = 2, -2 -> code 127; 7.5 = 0b0'11'111;
      // -0.125 = min subnormal -> 0b1'00'001.
      {DType::kMXFP6_E2M3, {7.5f, -0.125f}, 127, {0b0'11'111, 0b1'00'001}},
      // MXFP4 (OCP), amax 3.0001: floor log2 = 1, -2 -> code 126, X = 1/2:
      //   3.0001 -> 6.0002 > 6: clamped to 6 = 0b0'11'1 (the §6.3 clamp)
      //   1.25 -> 2.5: tie between 2 (0b0'10'0) and 3 (0b0'10'1) -> even 0b0'10'0
      //  -0.125 -> -0.25: tie between 0 and 0.5 -> even 0, sign kept -> 0b1'00'0
      //   0.75 -> 1.5 = 0b0'01'1
      {DType::kMXFP4_OCP, {3.0001f, 1.25f, -0.125f, 0.75f}, 126,
       {0b0'11'1, 0b0'10'0, 0b1'00'0, 0b0'01'1}},
      // MXFP4 (OCP), amax 7: floor log2 = 2, -2 -> code 127; 7 -> clamped to 6.
      {DType::kMXFP4_OCP, {7.0f, -7.0f}, 127, {0b0'11'1, 0b1'11'1}},
      // MXINT8, amax 1.5: floor log2 = 0, -0 -> code 127; q = x * 64:
      //   1.5 -> 96 (0x60); -1.5 -> -96 (0xA0); 1/128 -> 0.5: tie -> 0; 3/128 -> 1.5 -> 2.
      {DType::kMXINT8, {1.5f, -1.5f, 0x1p-7f, 0x3p-7f}, 127, {0x60, 0xA0, 0x00, 0x02}},
      // MXINT8, amax 1.999: 1.999 * 64 = 127.94 -> clamped to 127 (0x7F); -1.999 ->
      // -127 (0x81), not -128: saturation is symmetric.
      {DType::kMXINT8, {1.999f, -1.999f}, 127, {0x7F, 0x81}},
  };
  for (const Example& ex : examples) {
    INFO(GetDType(ex.t).name << " x[0] = " << ex.x[0]);
    std::vector<float> x(kMxBlockElems, 0.0f);
    std::copy(ex.x.begin(), ex.x.end(), x.begin());
    const MxLayout l = *GetMxLayout(ex.t);
    for (Impl impl : {Impl::kReference, Impl::kSimd}) {
      const std::vector<uint8_t> q = Quantize(ex.t, x, kMxBlockElems, impl);
      CHECK(int(q[0]) == ex.scale);
      uint8_t codes[kMxBlockElems];
      UnpackMxElements(l.element_bits, q.data() + 1, kMxBlockElems, codes);
      for (size_t i = 0; i < ex.codes.size(); ++i) {
        INFO("element " << i);
        CHECK(int(codes[i]) == int(ex.codes[i]));
      }
    }
  }
  // The packed bytes of an MXFP6 E2M3 block: codes 0x1F, 0x21, 0, 0 ->
  // w = 0x1F | 0x21 << 6 = 0x85F -> bytes 5F 08 00.
  std::vector<float> x(kMxBlockElems, 0.0f);
  x[0] = 7.5f;
  x[1] = -0.125f;
  const std::vector<uint8_t> q = Quantize(DType::kMXFP6_E2M3, x, kMxBlockElems, Impl::kReference);
  CHECK(q[1] == 0x5F);
  CHECK(q[2] == 0x08);
  CHECK(q[3] == 0x00);
}

// ---------------------------------------------------------------------------
// Against the oracle, and the error bound.
// ---------------------------------------------------------------------------

TEST_CASE("mx: codes, scales and dequantized values equal the exact oracle", "[mx]") {
  const std::vector<float> x = DiverseBlocks(3000, 99);
  for (DType t : kMxTypes) {
    INFO(GetDType(t).name);
    CHECK(CheckAgainstOracle(t, x, "diverse") == 0);
  }
}

// Half an element ULP at the block's scale, for |v| (element domain) below the
// format's max; beyond it the saturation error |v| - max.
double AllowedError(const MxLayout& l, double v_abs, int scale) {
  const double x_scale = std::ldexp(1.0, scale - 127);
  if (l.fraction_bits != 0) {
    const double mx = 127.0 / 64;
    return (v_abs > mx ? v_abs - mx : 0.0) * x_scale + std::ldexp(1.0, -7) * x_scale;
  }
  const ElementFormat& f = GetElementFormat(l.element);
  const double mx = f.max_finite();
  if (v_abs > mx) return (v_abs - mx) * x_scale;
  const int emin = 1 - f.bias;
  int k = 0;
  std::frexp(std::max(v_abs, std::ldexp(1.0, emin)), &k);  // binade 2^(k-1)
  const double ulp = std::ldexp(1.0, k - 1 - f.mantissa_bits);
  return 0.5 * ulp * x_scale;
}

TEST_CASE("mx: |dequantize(quantize(x)) - x| <= half an element ULP at the block scale", "[mx]") {
  std::mt19937_64 rng(123);
  std::normal_distribution<float> g(0, 1);
  for (DType t : kMxTypes) {
    const MxLayout l = *GetMxLayout(t);
    // Blocks of N(0, s^2) with s log-uniform in [2^-60, 2^60], plus spikes.
    std::vector<float> x(kMxBlockElems * 4000);
    for (size_t b = 0; b < x.size() / kMxBlockElems; ++b) {
      const float s = std::ldexp(1.0f, static_cast<int>(rng() % 121) - 60);
      for (int i = 0; i < kMxBlockElems; ++i) x[b * kMxBlockElems + i] = g(rng) * s;
      if (b % 7 == 0) x[b * kMxBlockElems + rng() % 32] = 50 * s;
    }
    const std::vector<uint8_t> q = Quantize(t, x, 1280, Impl::kSimd);
    const std::vector<float> y = Dequantize(t, q, Impl::kSimd);
    int bad = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const int scale = q[(i / kMxBlockElems) * GetDType(t).block_bytes];
      const double v_abs = std::fabs(std::ldexp(static_cast<double>(x[i]), 127 - scale));
      const double err = std::fabs(static_cast<double>(y[i]) - x[i]);
      if (err > AllowedError(l, v_abs, scale) && bad++ == 0)
        FAIL_CHECK(GetDType(t).name << " at " << i << " / " << x.size() << ": x=" << x[i]
                                    << " y=" << y[i] << " err " << err << " > "
                                    << AllowedError(l, v_abs, scale));
    }
    CHECK(bad == 0);
    // Saturation happens only in the top binade: the error exceeds half an ULP
    // only for |v| > max (checked above), and there is some saturation in e2m1.
  }
}

// ---------------------------------------------------------------------------
// Round trips: every representable value times every scale comes back exactly.
// ---------------------------------------------------------------------------

TEST_CASE("mx: every representable element value at every scale round-trips", "[mx]") {
  for (DType t : kMxTypes) {
    const MxLayout l = *GetMxLayout(t);
    const ElementFormat& f = GetElementFormat(l.element);
    // Codes to round-trip: all finite ones; MXINT8 without -128 (saturation is
    // symmetric, so -2 is never produced).
    std::vector<uint32_t> codes;
    for (uint32_t c = 0; c <= f.code_mask(); ++c) {
      const ValueClass k = f.Classify(c);
      if (k == ValueClass::kNaN || k == ValueClass::kInfinity) continue;
      if (l.fraction_bits != 0 && c == 0x80) continue;
      codes.push_back(c);
    }
    // The code holding the largest magnitude pins the scale (2^emax <= max < 2^(emax+1)).
    const uint32_t max_code = l.fraction_bits ? 0x7F : f.max_finite_code();
    int bad = 0;
    size_t blocks = 0;
    for (int e = 0; e < 255; ++e) {
      const int mult_exp = e - 127 - l.fraction_bits;
      // Build blocks: element 0 = max, the others a window of the code list.
      for (size_t c0 = 0; c0 < codes.size(); c0 += kMxBlockElems - 1) {
        std::vector<float> x(kMxBlockElems);
        std::vector<uint32_t> want(kMxBlockElems);
        bool exact = true;
        for (int i = 0; i < kMxBlockElems; ++i) {
          const uint32_t c = i == 0 ? max_code : codes[(c0 + i - 1) % codes.size()];
          const double v = std::ldexp(f.Value(c), mult_exp);
          const float fv = static_cast<float>(v);
          if (static_cast<double>(fv) != v || std::isinf(fv)) exact = false;  // not a float32
          x[i] = fv;
          want[i] = c;
        }
        if (!exact) continue;
        ++blocks;
        for (Impl impl : {Impl::kReference, Impl::kSimd}) {
          const std::vector<uint8_t> q = Quantize(t, x, kMxBlockElems, impl);
          const std::vector<float> y = Dequantize(t, q, impl);
          uint8_t got[kMxBlockElems];
          UnpackMxElements(l.element_bits, q.data() + 1, kMxBlockElems, got);
          for (int i = 0; i < kMxBlockElems; ++i) {
            if (q[0] != e || got[i] != want[i] || Bits(y[i]) != Bits(x[i])) {
              if (bad++ == 0)
                FAIL_CHECK(GetDType(t).name << " scale " << e << " element " << i << " code "
                                            << want[i] << " x=" << x[i] << ": got scale "
                                            << int(q[0]) << " code " << int(got[i]) << " y="
                                            << y[i]);
            }
          }
        }
      }
    }
    INFO(GetDType(t).name << ": " << blocks << " blocks");
    CHECK(bad == 0);
    CHECK(blocks > 100);
  }
}

// ---------------------------------------------------------------------------
// Special values.
// ---------------------------------------------------------------------------

TEST_CASE("mx: special blocks", "[mx]") {
  auto block = [](std::initializer_list<float> head, float fill = 0.0f) {
    std::vector<float> x(kMxBlockElems, fill);
    std::copy(head.begin(), head.end(), x.begin());
    return x;
  };
  const float tiny = 1e-40f;  // float32 subnormal
  std::vector<std::pair<std::string, std::vector<float>>> cases = {
      {"all +0", block({}, 0.0f)},
      {"all -0", block({}, -0.0f)},
      {"mixed zeros", block({0.0f, -0.0f, 0.0f, -0.0f})},
      {"amax exactly 2^k", block({4.0f, -1.0f, 0.5f, 3.0f, -2.0f, 0.001f})},
      {"amax just below 2^k", block({0x1.fffffep1f, 1.0f, -0x1.fffffep1f, 0x1.fffffep-3f})},
      {"amax just above 2^k", block({0x1.000002p2f, 1.0f, -3.0f})},
      {"huge 1e38", block({1e38f, -3e37f, 1.0f, 1e30f, -1e38f})},
      {"max float", block({std::numeric_limits<float>::max(), -1e38f, 1.0f})},
      {"tiny 1e-40 (scale clamps to 2^-127)", block({tiny, -tiny / 3, tiny / 7, 1e-45f})},
      {"denorm_min", block({std::numeric_limits<float>::denorm_min(), -0.0f})},
      {"2^-126..2^-127", block({0x1p-126f, 0x1p-127f, -0x1.8p-127f, 0x1p-140f})},
      {"mixed sign", block({-5.0f, 5.0f, -2.5f, 2.5f, -1.25f, 1.25f, -0.625f, 0.625f})},
      {"single spike", block({0.0f, 0.0f, 1e6f, 1e-3f, -1e-3f}, 1e-4f)},
      {"constant", block({}, 0.3f)},
      {"constant negative", block({}, -1234.5f)},
  };
  // Element-domain values that land in float32's subnormal range: amax near 2^127
  // (shared_exp up to 127) with elements down to 2^-149.
  cases.push_back({"subnormal quotients",
                   block({0x1.8p127f, 0x1p-149f, -0x3p-149f, 0x1p-126f, -0x1.8p-130f, 1.0f, -1e-30f})});
  // MXINT8 scale 2^127 (inv = 2^-127 is a float32 subnormal) and a subnormal quotient.
  cases.push_back({"scale 2^127", block({0x1.fffffep127f, -0x1p127f, 0x1p100f, 0x1p-149f})});
  for (DType t : kMxTypes) {
    for (const auto& [name, x] : cases) {
      INFO(GetDType(t).name << ": " << name);
      CHECK(CheckAgainstOracle(t, x, name) == 0);
    }
  }
  // Zeros: scale 0x00 (2^-127) and zero codes with the sign of each input.
  for (DType t : kMxTypes) {
    const MxLayout l = *GetMxLayout(t);
    const std::vector<float> x = block({0.0f, -0.0f});
    const std::vector<uint8_t> q = Quantize(t, x, kMxBlockElems, Impl::kReference);
    CHECK(q[0] == 0x00);
    uint8_t codes[kMxBlockElems];
    UnpackMxElements(l.element_bits, q.data() + 1, kMxBlockElems, codes);
    CHECK(codes[0] == 0);
    CHECK(codes[1] == (l.fraction_bits ? 0u : GetElementFormat(l.element).sign_mask()));
    const std::vector<float> y = Dequantize(t, q, Impl::kReference);
    CHECK(Bits(y[0]) == 0u);
  }
}

TEST_CASE("mx: subnormal element-domain values round to signed zero", "[mx]") {
  // x / 2^shared_exp below 2^-126 is rounded once to a float32 subnormal before
  // the element encoder sees it; the exact quotient is far below every element
  // format's first decision point, so the code must be the zero of x's sign.
  for (DType t : kMxTypes) {
    const MxLayout l = *GetMxLayout(t);
    std::vector<float> x(kMxBlockElems, 0.0f);
    x[0] = 0x1.fp127f;
    for (int i = 1; i < kMxBlockElems; ++i)
      x[i] = (i % 2 ? 1.0f : -1.0f) * FromBits(static_cast<uint32_t>(i * 0x1F3u + 1));  // subnormals
    for (Impl impl : {Impl::kReference, Impl::kSimd}) {
      const std::vector<uint8_t> q = Quantize(t, x, kMxBlockElems, impl);
      uint8_t codes[kMxBlockElems];
      UnpackMxElements(l.element_bits, q.data() + 1, kMxBlockElems, codes);
      for (int i = 1; i < kMxBlockElems; ++i) {
        INFO(GetDType(t).name << " element " << i << " x=" << x[i]);
        const uint32_t zero = (x[i] < 0 && !l.fraction_bits) ? GetElementFormat(l.element).sign_mask() : 0;
        CHECK(codes[i] == zero);
      }
    }
  }
}

TEST_CASE("mx: non-finite input", "[mx]") {
  for (DType t : kMxTypes) {
    INFO(GetDType(t).name);
    const BlockCodec* codec = GetBlockCodec(t);
    REQUIRE(codec != nullptr);
    CHECK_FALSE(codec->uses_imatrix);
    // The entry point refuses it, naming row and column.
    std::vector<float> x(2 * 64, 1.0f);
    x[64 + 5] = std::numeric_limits<float>::quiet_NaN();
    std::vector<uint8_t> q(x.size() / 32 * GetDType(t).block_bytes);
    const Status s = QuantizeRows(t, x, q, 64);
    REQUIRE_FALSE(s.ok());
    CHECK_THAT(s.error().message, Catch::Contains("row 1, column 5"));
    // The kernels are defined anyway: NaN scale, zero codes, NaN values.
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                      -std::numeric_limits<float>::infinity()}) {
      std::vector<float> xb(kMxBlockElems, 1.0f);
      xb[3] = bad;
      for (auto fn : {codec->quantize_ref, codec->quantize}) {
        std::vector<uint8_t> qb(GetDType(t).block_bytes, 0xAA);
        fn(xb.data(), qb.data(), 1, kMxBlockElems, nullptr);
        CHECK(qb[0] == 0xFF);
        CHECK(std::all_of(qb.begin() + 1, qb.end(), [](uint8_t b) { return b == 0; }));
        for (auto dq : {codec->dequantize_ref, codec->dequantize}) {
          std::vector<float> y(kMxBlockElems);
          dq(qb.data(), y.data(), kMxBlockElems);
          CHECK(std::all_of(y.begin(), y.end(), [](float v) { return Bits(v) == 0x7FC00000u; }));
        }
      }
    }
  }
}

TEST_CASE("mx: row length must be a multiple of 32", "[mx]") {
  std::vector<float> x(96, 1.0f);
  std::vector<uint8_t> q(3 * 33);
  const Status s = QuantizeRows(DType::kMXFP8_E4M3, x, q, 48);
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.error().message, Catch::Contains("multiple of 32"));
  CHECK(GetBlockCodec(DType::kNVFP4) == nullptr);  // per-tensor scale: codecs/nvfp4.h
}

// ---------------------------------------------------------------------------
// SIMD = scalar on every compiled target; thread independence.
// ---------------------------------------------------------------------------

TEST_CASE("mx: SIMD path equals the reference on every target", "[mx]") {
  std::mt19937_64 rng(77);
  const std::vector<float> pool = DiverseBlocks(300, 4242);
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    INFO("target " << hwy::TargetName(target));
    for (DType t : kMxTypes) {
      INFO(GetDType(t).name);
      const int bb = GetDType(t).block_bytes;
      for (size_t nblocks : {1, 2, 3, 7, 16, 63, 64, 65, 130, 257}) {
        for (size_t offset : {0, 1, 3}) {  // misaligned starts (floats)
          std::vector<float> x(nblocks * kMxBlockElems);
          for (size_t i = 0; i < x.size(); ++i) x[i] = pool[(i + offset * 97) % pool.size()];
          std::vector<float> buf(x.size() + offset);
          std::copy(x.begin(), x.end(), buf.begin() + offset);
          std::span<const float> src(buf.data() + offset, x.size());
          std::vector<uint8_t> qr(nblocks * bb), qs(nblocks * bb);
          REQUIRE(QuantizeRows(t, src, qr, kMxBlockElems, nullptr, Impl::kReference).ok());
          REQUIRE(QuantizeRows(t, src, qs, kMxBlockElems, nullptr, Impl::kSimd).ok());
          INFO(nblocks << " blocks, offset " << offset);
          REQUIRE(qr == qs);
          // Dequantize arbitrary bytes (NaN scales, NaN/inf element codes included).
          std::vector<uint8_t> rnd(nblocks * bb);
          for (auto& b : rnd) b = static_cast<uint8_t>(rng());
          for (size_t b = 0; b < nblocks; b += 5) rnd[b * bb] = 0xFF;
          std::vector<float> yr(x.size()), ys(x.size());
          REQUIRE(DequantizeRows(t, rnd, yr, Impl::kReference).ok());
          REQUIRE(DequantizeRows(t, rnd, ys, Impl::kSimd).ok());
          for (size_t i = 0; i < yr.size(); ++i) {
            INFO("at " << i << " / " << yr.size() << " block byte " << int(rnd[i / 32 * bb]));
            REQUIRE(Bits(yr[i]) == Bits(ys[i]));
          }
        }
      }
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST_CASE("mx: bytes do not depend on the thread count", "[mx]") {
  const std::vector<float> x = DiverseBlocks(2048, 31);
  for (DType t : kMxTypes) {
    INFO(GetDType(t).name);
    const std::vector<uint8_t> q1 = Quantize(t, x, 1024, Impl::kSimd, 1);
    const std::vector<uint8_t> q3 = Quantize(t, x, 1024, Impl::kSimd, 3);
    CHECK(q1 == q3);
    const std::vector<float> y1 = Dequantize(t, q1, Impl::kSimd, 1);
    const std::vector<float> y3 = Dequantize(t, q1, Impl::kSimd, 3);
    CHECK(std::memcmp(y1.data(), y3.data(), y1.size() * sizeof(float)) == 0);
  }
}

}  // namespace
}  // namespace bitsmith
