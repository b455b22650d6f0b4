// NVFP4 (codecs/nvfp4.h): ModelOpt's two-level scaling, checked against an
// independent oracle (double arithmetic rounded once to float32 at each step of
// the formula -- exact, since double holds every product and rounds every
// quotient innocuously -- and the e4m3fn / e2m1fn codes found by searching every
// code of the format table for the nearest value, ties to even), worked examples
// derived by hand, round trips, special values, the error bound, SIMD = scalar,
// thread independence and the error messages.
#include "codecs/nvfp4.h"

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

#include "formats/blocks_mx.h"
#include "formats/dtype.h"
#include "formats/element_format.h"
#include "support/dump.h"

namespace bitsmith {
namespace {

using test::Bits;

constexpr int kB = kNvfp4BlockElems;

// Nearest finite code of `id` to v (ties to the even code, saturating), with v's sign.
uint32_t NearestCode(ElementFormatId id, double v) {
  const ElementFormat& f = GetElementFormat(id);
  const double a = std::min(std::fabs(v), f.max_finite());  // saturation (inf included)
  uint32_t best = 0;
  double best_d = std::numeric_limits<double>::infinity();
  for (uint32_t c = 0; c <= f.code_mask() >> 1; ++c) {
    const ValueClass k = f.Classify(c);
    if (k == ValueClass::kNaN || k == ValueClass::kInfinity) continue;
    const double d = std::fabs(f.Value(c) - a);
    if (d < best_d || (d == best_d && (c & 1) == 0)) {
      best_d = d;
      best = c;
    }
  }
  return best | (std::signbit(v) ? f.sign_mask() : 0);
}

double E4M3(uint32_t c) { return GetElementFormat(ElementFormatId::kE4M3FN).Value(c); }
double E2M1(uint32_t c) { return GetElementFormat(ElementFormatId::kE2M1FN).Value(c); }

float OracleTensorScale(const std::vector<float>& x) {
  double amax = 0;
  for (float v : x) amax = std::max(amax, std::fabs(static_cast<double>(v)));
  return static_cast<float>(amax / 2688.0);
}

struct OracleBlock {
  uint8_t scale;
  uint8_t q[kB];
  float y[kB];
};
OracleBlock Oracle(const float* x, float st) {
  OracleBlock o{};
  if (st == 0.0f) {
    o.scale = 0;
    for (int i = 0; i < kB; ++i) o.y[i] = static_cast<float>(E2M1(0) * 0.0);
    return o;
  }
  double amax = 0;
  for (int i = 0; i < kB; ++i) amax = std::max(amax, std::fabs(static_cast<double>(x[i])));
  const float six_st = static_cast<float>(6.0 * st);
  float r = static_cast<float>(amax / six_st);
  if (r == 0.0f) r = 1.0f;
  o.scale = static_cast<uint8_t>(NearestCode(ElementFormatId::kE4M3FN, r));
  const float p = static_cast<float>(E4M3(o.scale) * st);
  for (int i = 0; i < kB; ++i) {
    if (p == 0.0f) {
      o.q[i] = 0;
    } else {
      const float t = static_cast<float>(static_cast<double>(x[i]) / p);
      o.q[i] = static_cast<uint8_t>(NearestCode(ElementFormatId::kE2M1FN, t));
    }
    o.y[i] = static_cast<float>(E2M1(o.q[i]) * p);
  }
  return o;
}

std::vector<uint8_t> Quantize(const std::vector<float>& x, float st, Impl impl, int64_t n_per_row = kB,
                              int threads = 1) {
  std::vector<uint8_t> q(x.size() / kB * kNvfp4BlockBytes);
  const Status s = QuantizeNvfp4(x, q, n_per_row, st, impl, threads);
  REQUIRE(s.ok());
  return q;
}
std::vector<float> Dequantize(const std::vector<uint8_t>& q, float st, Impl impl, int threads = 1) {
  std::vector<float> y(q.size() / kNvfp4BlockBytes * kB);
  const Status s = DequantizeNvfp4(q, y, st, impl, threads);
  REQUIRE(s.ok());
  return y;
}

int CheckAgainstOracle(const std::vector<float>& x, float st, const std::string& what) {
  int bad = 0;
  for (Impl impl : {Impl::kReference, Impl::kSimd}) {
    const std::vector<uint8_t> q = Quantize(x, st, impl);
    const std::vector<float> y = Dequantize(q, st, impl);
    for (size_t b = 0; b < x.size() / kB; ++b) {
      const OracleBlock o = Oracle(x.data() + b * kB, st);
      const uint8_t* blk = q.data() + b * kNvfp4BlockBytes;
      for (int i = 0; i < kB; ++i) {
        const uint8_t code = i % 2 ? FP4High(blk[1 + i / 2]) : FP4Low(blk[1 + i / 2]);
        const float yi = y[b * kB + i];
        if (blk[0] != o.scale || code != o.q[i] || Bits(yi) != Bits(o.y[i])) {
          if (bad++ == 0)
            FAIL_CHECK(what << (impl == Impl::kSimd ? " simd" : " ref") << " s_t=" << st
                            << ": block " << b << " element " << i << " x=" << x[b * kB + i]
                            << ": scale " << int(blk[0]) << " (oracle " << int(o.scale)
                            << "), code " << int(code) << " (oracle " << int(o.q[i]) << "), y="
                            << yi << " (oracle " << o.y[i] << ")");
        }
      }
    }
  }
  return bad;
}

std::vector<float> Gaussian(size_t n, uint64_t seed, float sigma) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0, sigma);
  std::vector<float> v(n);
  for (float& f : v) f = g(rng);
  return v;
}

// A tensor with per-block magnitudes spread over many binades (outlier blocks,
// near-zero blocks whose e4m3 scale underflows, zero blocks, spikes, ties).
std::vector<float> Diverse(size_t nblocks, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0, 1);
  std::vector<float> x(nblocks * kB);
  for (size_t b = 0; b < nblocks; ++b) {
    const double mag = std::ldexp(1.0, static_cast<int>(rng() % 40) - 30);
    const int kind = static_cast<int>(rng() % 6);
    for (int i = 0; i < kB; ++i) {
      double v = g(rng) * mag;
      if (kind == 1) v = 0;
      if (kind == 2 && i == 3) v = 300 * mag;
      if (kind == 3) v = std::ldexp(static_cast<double>(static_cast<int>(rng() % 25) - 12), -4) * mag;
      if (kind == 4) v = (rng() & 1) ? -0.0 : mag;
      x[b * kB + i] = static_cast<float>(v);
    }
  }
  return x;
}

// ---------------------------------------------------------------------------

TEST_CASE("nvfp4: worked examples", "[nvfp4]") {
  // Tensor amax 2688 -> s_t = 2688 / 2688 = 1 exactly.
  std::vector<float> x(5 * kB, 0.0f);
  // Block 0, amax 6: r = 6 / 6 = 1 -> e4m3fn 1.0 = 0b0'0111'000 (0x38); p = 1.
  //   6 -> 0b0'11'1; -3 -> 0b1'10'1; 1.25 -> tie 1.0/1.5 -> even 1.0 = 0b0'01'0;
  //   0.25 -> tie 0/0.5 -> even 0. Bytes: 38 D7 02 00 ...
  x[0] = 6.0f, x[1] = -3.0f, x[2] = 1.25f, x[3] = 0.25f;
  // Block 1, amax 2688 (the tensor max): r = 2688 / 6 = 448 -> 0b0'1111'110 (0x7E);
  //   p = 448; 2688 / 448 = 6 -> 0b0'11'1; -224 / 448 = -0.5 -> 0b1'00'1.
  x[kB] = 2688.0f, x[kB + 1] = -224.0f;
  // Block 2: all zeros -> r = 0 -> 1.0 (0x38), codes 0.
  // Block 3, amax 0.001: r = 1.67e-4 < 2^-10 (half of e4m3fn's 2^-9) -> scale code 0,
  //   p = 0 -> codes 0, dequantized zeros.
  x[3 * kB] = 0.001f, x[3 * kB + 1] = -0.0005f;
  // Block 4, amax 5: r = 5/6 = 0.8333 = 1.6667 * 2^-1 -> mantissa 5.33/8 -> 5:
  //   0b0'0110'101 (0x35) = 0.8125; p = 0.8125: 5 / p = 6.15 -> saturates to 6 (0b0'11'1);
  //   -2 / p = -2.46 -> -2 (0b1'10'0).
  x[4 * kB] = 5.0f, x[4 * kB + 1] = -2.0f;
  for (Impl impl : {Impl::kReference, Impl::kSimd}) {
    const Result<float> st = ComputeNvfp4TensorScale(x);
    REQUIRE(st.ok());
    CHECK(*st == 1.0f);
    const std::vector<uint8_t> q = Quantize(x, *st, impl);
    const uint8_t want0[9] = {0x38, 0xD7, 0x02, 0, 0, 0, 0, 0, 0};
    const uint8_t want1[9] = {0x7E, 0x97, 0, 0, 0, 0, 0, 0, 0};
    const uint8_t want2[9] = {0x38, 0, 0, 0, 0, 0, 0, 0, 0};
    const uint8_t want3[9] = {0x00, 0, 0, 0, 0, 0, 0, 0, 0};
    const uint8_t want4[9] = {0x35, 0xC7, 0, 0, 0, 0, 0, 0, 0};
    CHECK(std::equal(want0, want0 + 9, q.begin()));
    CHECK(std::equal(want1, want1 + 9, q.begin() + 9));
    CHECK(std::equal(want2, want2 + 9, q.begin() + 18));
    CHECK(std::equal(want3, want3 + 9, q.begin() + 27));
    CHECK(std::equal(want4, want4 + 9, q.begin() + 36));
    const std::vector<float> y = Dequantize(q, *st, impl);
    CHECK(y[0] == 6.0f);
    CHECK(y[1] == -3.0f);
    CHECK(y[2] == 1.0f);
    CHECK(y[kB] == 2688.0f);
    CHECK(y[kB + 1] == -224.0f);
    CHECK(y[3 * kB] == 0.0f);
    CHECK(y[4 * kB] == 4.875f);   // 6 * 0.8125
    CHECK(y[4 * kB + 1] == -1.625f);
  }
  CHECK(kNvfp4TensorScaleDivisor == kNvfp4ElementMax * kNvfp4ScaleMax);
}

TEST_CASE("nvfp4: bytes and values equal the oracle", "[nvfp4]") {
  const std::vector<float> x = Diverse(4000, 1);
  const float st = OracleTensorScale(x);
  const Result<float> got = ComputeNvfp4TensorScale(x);
  REQUIRE(got.ok());
  REQUIRE(Bits(*got) == Bits(st));
  CHECK(Bits(Nvfp4TensorScaleRef(x.data(), x.size())) == Bits(st));
  CHECK(CheckAgainstOracle(x, st, "diverse") == 0);
  // Caller-supplied tensor scales: smaller (block scales saturate at 448, elements at 6),
  // larger (more blocks underflow), tiny and huge.
  for (float s : {st * 0.01f, st * 0.37f, st * 3.0f, st * 1000.0f, 1e-30f, 1e-40f, 1e30f, 1.0f})
    CHECK(CheckAgainstOracle(x, s, "supplied scale") == 0);
  // Realistic weights.
  const std::vector<float> w = Gaussian(16 * 4096, 7, 0.02f);
  CHECK(CheckAgainstOracle(w, OracleTensorScale(w), "gaussian") == 0);
}

TEST_CASE("nvfp4: block scales and elements at rounding ties follow ModelOpt's evaluation order",
          "[nvfp4]") {
  // Block amaxes within a few float32 ulps of amax = m * f32(6 * s_t) for every
  // e4m3fn midpoint m: here r = amax / f32(6 s_t) decides the tie, and any other
  // evaluation order ((amax / 6) / s_t, amax * (1 / (6 s_t)), ...) lands on the
  // other side for some of them. Then elements at E2M1 midpoints times p.
  std::mt19937_64 rng(17);
  std::uniform_real_distribution<float> u(0.5f, 1.0f);
  const ElementFormat& e4 = GetElementFormat(ElementFormatId::kE4M3FN);
  for (int trial = 0; trial < 40; ++trial) {
    const float st = std::ldexp(u(rng), static_cast<int>(rng() % 40) - 30);
    const float six_st = static_cast<float>(6.0 * st);
    std::vector<float> t;
    for (uint32_t c = 0; c < 0x7E; ++c) {
      const double mid = (e4.Value(c) + e4.Value(c + 1)) / 2;
      float a = static_cast<float>(mid * six_st);
      for (int k = 0; k < 3; ++k) a = std::nextafter(a, 0.0f);
      for (int k = 0; k < 7; ++k, a = std::nextafter(a, 1e30f)) {
        // Block: amax a, then values at E2M1 midpoints of the p the oracle will pick.
        const float r = static_cast<float>(static_cast<double>(a) / six_st);
        const float p = static_cast<float>(E4M3(NearestCode(ElementFormatId::kE4M3FN, r)) * st);
        t.push_back(a);
        for (double m : {0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, -0.25, -0.75, -1.25, -1.75, -2.5, -3.5, -5.0, 7.0})
          t.push_back(static_cast<float>(m * p));
      }
    }
    INFO("s_t " << st);
    CHECK(CheckAgainstOracle(t, st, "ties") == 0);
  }
}

TEST_CASE("nvfp4: every E2M1 value at many block and tensor scales round-trips", "[nvfp4]") {
  int bad = 0, blocks = 0;
  for (int k : {-100, -20, -1, 0, 3, 20, 90}) {
    const float st = std::ldexp(1.0f, k);
    for (uint32_t sb_code = 1; sb_code <= 0x7E; ++sb_code) {
      // Element 0 = 6 * s_b * s_t pins r = s_b exactly; the others run over all 16 codes.
      const double sb = E4M3(sb_code);
      std::vector<float> x(kB);
      std::vector<uint8_t> want(kB);
      bool exact = true;
      for (int i = 0; i < kB; ++i) {
        const uint8_t c = i == 0 ? 0b0'11'1 : static_cast<uint8_t>((i * 7) & 15);
        const double v = E2M1(c) * sb * st;
        x[i] = static_cast<float>(v);
        want[i] = c;
        if (static_cast<double>(x[i]) != v || std::isinf(x[i])) exact = false;
      }
      if (!exact) continue;
      ++blocks;
      for (Impl impl : {Impl::kReference, Impl::kSimd}) {
        const std::vector<uint8_t> q = Quantize(x, st, impl);
        const std::vector<float> y = Dequantize(q, st, impl);
        for (int i = 0; i < kB; ++i) {
          const uint8_t code = i % 2 ? FP4High(q[1 + i / 2]) : FP4Low(q[1 + i / 2]);
          if (q[0] != sb_code || code != want[i] || Bits(y[i]) != Bits(x[i])) {
            if (bad++ == 0)
              FAIL_CHECK("s_t 2^" << k << " s_b code " << sb_code << " element " << i << " x="
                                  << x[i] << ": scale " << int(q[0]) << " code " << int(code)
                                  << " y=" << y[i]);
          }
        }
      }
    }
  }
  CHECK(bad == 0);
  CHECK(blocks > 700);
}

TEST_CASE("nvfp4: |dequantize(quantize(x)) - x| stays within the format's bound", "[nvfp4]") {
  std::vector<float> x = Diverse(3000, 5);
  const std::vector<float> g = Gaussian(3000 * kB, 6, 1.0f);
  x.insert(x.end(), g.begin(), g.end());
  const float st = *ComputeNvfp4TensorScale(x);
  const std::vector<uint8_t> q = Quantize(x, st, Impl::kSimd, 2 * kB);
  const std::vector<float> y = Dequantize(q, st, Impl::kSimd);
  int bad = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const uint8_t sb = q[i / kB * kNvfp4BlockBytes];
    const double p = static_cast<double>(static_cast<float>(E4M3(sb) * st));
    const double ax = std::fabs(static_cast<double>(x[i]));
    double allowed;
    if (p == 0) {
      // Scale underflow: the block is below 2^-10 * 6 * s_t.
      allowed = std::ldexp(1.0, -10) * 6 * st;
    } else {
      const double t = ax / p;
      const double half_ulp = t < 2 ? 0.25 : t < 4 ? 0.5 : 1.0;  // E2M1 steps 0.5, 1, 2
      allowed = (t > 6 ? t - 6 : half_ulp) * p;
    }
    allowed += std::ldexp(ax + std::fabs(y[i]), -22);  // the two float32 roundings
    const double err = std::fabs(static_cast<double>(y[i]) - x[i]);
    if (err > allowed && bad++ == 0)
      FAIL_CHECK("at " << i << " / " << x.size() << ": x=" << x[i] << " y=" << y[i] << " err "
                       << err << " > " << allowed);
  }
  CHECK(bad == 0);
}

TEST_CASE("nvfp4: special values", "[nvfp4]") {
  // An all-zero tensor: s_t = 0 -> zero blocks.
  std::vector<float> z(4 * kB, 0.0f);
  z[5] = -0.0f;
  const Result<float> st0 = ComputeNvfp4TensorScale(z);
  REQUIRE(st0.ok());
  CHECK(*st0 == 0.0f);
  for (Impl impl : {Impl::kReference, Impl::kSimd}) {
    const std::vector<uint8_t> q = Quantize(z, 0.0f, impl);
    CHECK(std::all_of(q.begin(), q.end(), [](uint8_t b) { return b == 0; }));
    const std::vector<float> y = Dequantize(q, 0.0f, impl);
    CHECK(std::all_of(y.begin(), y.end(), [](float v) { return Bits(v) == 0; }));
  }
  // A tensor so tiny that amax / 2688 underflows to 0.
  std::vector<float> tiny(kB, 0.0f);
  tiny[0] = std::numeric_limits<float>::denorm_min();
  CHECK(*ComputeNvfp4TensorScale(tiny) == 0.0f);
  CHECK(CheckAgainstOracle(tiny, 0.0f, "tiny") == 0);
  // -0.0 keeps its sign: code 0b1'00'0 (ModelOpt writes 0b0'00'0; same value).
  std::vector<float> x(kB, 0.0f);
  x[0] = 1.0f;
  x[1] = -0.0f;
  x[2] = -0.01f;  // rounds to zero, sign kept
  const std::vector<uint8_t> q = Quantize(x, *ComputeNvfp4TensorScale(x), Impl::kReference);
  CHECK(FP4High(q[1]) == 0b1'00'0);
  CHECK(FP4Low(q[2]) == 0b1'00'0);
  // Huge and tiny magnitudes, max float, subnormals.
  const std::vector<std::vector<float>> tensors = {
      {1e38f, -3e37f, 1.0f, 1e30f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
      {std::numeric_limits<float>::max(), -1.0f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1e-45f},
      {1e-40f, -3e-41f, 1e-45f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
      {1e-30f, -2e-30f, 3e-31f, 1e-38f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7e-31f},
  };
  for (const auto& t : tensors) {
    INFO("tensor x[0] = " << t[0]);
    CHECK(CheckAgainstOracle(t, OracleTensorScale(t), "special") == 0);
  }
}

TEST_CASE("nvfp4: non-finite values and bad arguments", "[nvfp4]") {
  std::vector<float> x(4 * kB, 1.0f);
  x[2 * kB + 7] = std::numeric_limits<float>::infinity();
  const Result<float> st = ComputeNvfp4TensorScale(x);
  REQUIRE_FALSE(st.ok());
  CHECK_THAT(st.error().message, Catch::Contains("value 39"));
  std::vector<uint8_t> q(4 * kNvfp4BlockBytes);
  Status s = QuantizeNvfp4(x, q, 32, 1.0f);
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.error().message, Catch::Contains("row 1, column 7"));
  x[2 * kB + 7] = 1.0f;
  s = QuantizeNvfp4(x, q, 24, 1.0f);
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.error().message, Catch::Contains("multiple of 16"));
  for (float bad : {-1.0f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    s = QuantizeNvfp4(x, q, 32, bad);
    REQUIRE_FALSE(s.ok());
    CHECK_THAT(s.error().message, Catch::Contains("tensor scale"));
  }
  std::vector<uint8_t> small(3);
  CHECK_FALSE(QuantizeNvfp4(x, small, 32, 1.0f).ok());
  std::vector<float> y(4 * kB);
  CHECK_FALSE(DequantizeNvfp4(q, y, std::numeric_limits<float>::quiet_NaN()).ok());
  CHECK_FALSE(DequantizeNvfp4(small, y, 1.0f).ok());
  // nvfp4 has no per-row BlockCodec (the tensor scale does not fit it).
  CHECK(GetBlockCodec(DType::kNVFP4) == nullptr);
  // The kernels are defined on anything: a NaN/inf block gets the e4m3fn NaN scale 0x7F
  // and zero codes (dequantizes to NaN); a non-finite s_t does that to every block.
  for (Impl impl : {Impl::kReference, Impl::kSimd}) {
    std::vector<float> xb(2 * kB, 6.0f);  // with s_t = 1: r = 1, exact
    xb[3] = std::numeric_limits<float>::quiet_NaN();
    std::vector<uint8_t> qb(2 * kNvfp4BlockBytes, 0xAA);
    QuantizeNvfp4Blocks(xb.data(), qb.data(), 2, 1.0f, impl);
    CHECK(qb[0] == 0x7F);
    CHECK(std::all_of(qb.begin() + 1, qb.begin() + 9, [](uint8_t b) { return b == 0; }));
    CHECK(qb[9] != 0x7F);
    std::vector<float> yb(2 * kB);
    DequantizeNvfp4Blocks(qb.data(), yb.data(), 2, 1.0f, impl);
    CHECK(std::isnan(yb[0]));
    CHECK(yb[kB] == 6.0f);
    QuantizeNvfp4Blocks(xb.data() + kB, qb.data(), 1, std::numeric_limits<float>::infinity(), impl);
    CHECK(qb[0] == 0x7F);
  }
  CHECK(Nvfp4TensorScaleRef(x.data(), 0) == 0.0f);
  std::vector<float> nan_t(kB, 1.0f);
  nan_t[9] = -std::numeric_limits<float>::quiet_NaN();
  CHECK(std::isnan(Nvfp4TensorScaleRef(nan_t.data(), nan_t.size())));
}

TEST_CASE("nvfp4: SIMD path equals the reference on every target", "[nvfp4]") {
  std::mt19937_64 rng(9);
  const std::vector<float> pool = Diverse(400, 77);
  const float st = OracleTensorScale(pool);
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    INFO("target " << hwy::TargetName(target));
    for (size_t nblocks : {1, 2, 3, 7, 16, 127, 128, 129, 300}) {
      for (size_t offset : {0, 1, 3}) {
        std::vector<float> buf(nblocks * kB + offset);
        for (size_t i = 0; i < nblocks * kB; ++i) buf[offset + i] = pool[(i * 13 + offset) % pool.size()];
        std::span<const float> src(buf.data() + offset, nblocks * kB);
        std::vector<uint8_t> qr(nblocks * kNvfp4BlockBytes), qs(qr.size());
        REQUIRE(QuantizeNvfp4(src, qr, kB, st, Impl::kReference).ok());
        REQUIRE(QuantizeNvfp4(src, qs, kB, st, Impl::kSimd).ok());
        INFO(nblocks << " blocks, offset " << offset);
        REQUIRE(qr == qs);
        std::vector<uint8_t> rnd(qr.size());
        for (auto& b : rnd) b = static_cast<uint8_t>(rng());
        std::vector<float> yr(nblocks * kB), ys(nblocks * kB);
        REQUIRE(DequantizeNvfp4(rnd, yr, st, Impl::kReference).ok());
        REQUIRE(DequantizeNvfp4(rnd, ys, st, Impl::kSimd).ok());
        for (size_t i = 0; i < yr.size(); ++i) {
          INFO("at " << i << " / " << yr.size());
          REQUIRE(Bits(yr[i]) == Bits(ys[i]));
        }
      }
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST_CASE("nvfp4: results do not depend on the thread count", "[nvfp4]") {
  const std::vector<float> x = Diverse(1 << 14, 3);
  const Result<float> s1 = ComputeNvfp4TensorScale(x, 1), s3 = ComputeNvfp4TensorScale(x, 3);
  REQUIRE((s1.ok() && s3.ok()));
  CHECK(Bits(*s1) == Bits(*s3));
  const std::vector<uint8_t> q1 = Quantize(x, *s1, Impl::kSimd, 1024, 1);
  const std::vector<uint8_t> q3 = Quantize(x, *s1, Impl::kSimd, 1024, 3);
  CHECK(q1 == q3);
  const std::vector<float> y1 = Dequantize(q1, *s1, Impl::kSimd, 1), y3 = Dequantize(q1, *s1, Impl::kSimd, 3);
  CHECK(std::memcmp(y1.data(), y3.data(), y1.size() * sizeof(float)) == 0);
}

}  // namespace
}  // namespace bitsmith
