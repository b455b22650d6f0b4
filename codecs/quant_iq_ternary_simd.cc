// SIMD paths of TQ1_0, TQ2_0 (quantize and dequantize) and ggml's MXFP4 (quantize),
// byte- and bit-identical to the scalar oracles of codecs/quant_iq_ternary_ref.cc
// (ggml d99724f2, tests/data/iquants/README.md sections 4-5). Highway, dynamic
// dispatch; every value is handled by integer or element-wise float operations,
// so each lane performs exactly the oracle's operations for its value.
//
// TQ1_0 dequantize: trit n of a byte b is ((b * 3^n) mod 256 * 3) >> 8. In int32
//   lanes the running product is advanced one trit at a time: p = 3q, trit = p >> 8,
//   q = p & 255 (q starts at b), then y = float(trit - 1) * d as the oracle.
// TQ2_0 dequantize: y = float(((b >> 2l) & 3) - 1) * d.
// Ternary quantize: the block maximum of |x| (the maximum of a set does not
//   depend on the order for non-NaN values; blocks with a NaN take the oracle, as
//   do blocks whose id = 1/d is not finite), then lroundf(x * id) + 1, which for
//   |x * id| <= 1 (or NaN) is 2 when x*id >= 0.5, 0 when x*id <= -0.5, else 1
//   (ties away from zero, NaN -> lroundf's LONG_MIN -> 0 -> 1). TQ1_0 packs 5
//   trits with q = t0*81 + ... + t4 and byte = (256q + 242) / 243, the division
//   done as a multiply-shift checked for all 243 q at compile time.
// MXFP4 quantize: amax as the oracle (`amax < |x|`, NaN never wins), the exponent
//   from libm's log2f except where floorf(log2f(amax)) is provably the binary
//   exponent (see MXFP4FastExponent), then per value the nearest of the 8
//   non-negative kvalues to |x| (err = |kv*d - |x||, first strict minimum) and the
//   mirrored index for x < 0. Equal to the oracle's 16-way search: for x >= 0 a
//   negative kvalue's error fl(v*d + x) is never below fl(|v*d - x|) (rounding is
//   monotonic), so it never wins a strict comparison; for x < 0 the same holds
//   mirrored, with index 8 (-0) tying index 0 and losing to it.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "codecs/quant_iq_ternary_simd.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cstdint>
#include <cstring>  // std::memcpy

#include "codecs/iq_kernels.h"
#include "formats/blocks_iq.h"
#include "formats/half.h"
#include "formats/iq_grids/kvalues_mxfp4.h"

#ifndef BITSMITH_QUANT_IQ_TERNARY_SIMD_ONCE
#define BITSMITH_QUANT_IQ_TERNARY_SIMD_ONCE
namespace bitsmith::iq {
namespace {

// floor(v / 243) = (v * kDiv243Mul) >> kDiv243Shift for every v = 256q + 242, q < 243.
constexpr int32_t kDiv243Mul = 17261, kDiv243Shift = 22;
constexpr bool Div243Exact() {
  for (int q = 0; q < 243; ++q) {
    const int32_t v = q * 256 + 242;
    if ((v * kDiv243Mul) >> kDiv243Shift != v / 243) return false;
  }
  return true;
}
static_assert(Div243Exact());

// MXFP4's exponent byte. For a normal amax = m * 2^k with mantissa bits in
// [1, 0x7F0000), log2(amax) = k + log2(m) lies in (k, k + 0.989); libm's log2f
// (error below one ulp, i.e. far below 0.01 for |result| <= 128) cannot round it
// to k + 1 or below k, so floorf(log2f(amax)) = k. Elsewhere (exact powers of two,
// mantissas near 2 where log2f rounds up, subnormals, 0, inf) the oracle's own
// function decides. Test: every exponent's boundary mantissas, and a [long]
// exhaustive run over all positive floats.
inline uint8_t MXFP4FastExponent(float amax) {
  uint32_t b;
  std::memcpy(&b, &amax, 4);
  const uint32_t e = b >> 23, m = b & 0x7FFFFFu;  // amax >= 0: no sign bit
  if (e >= 1 && e <= 254 && m >= 1 && m < 0x7F0000u)
    return static_cast<uint8_t>(static_cast<int32_t>(e) - 127 - 2 + 127);
  return MXFP4ExponentRef(amax);
}

}  // namespace
}  // namespace bitsmith::iq
#endif  // BITSMITH_QUANT_IQ_TERNARY_SIMD_ONCE

HWY_BEFORE_NAMESPACE();
namespace bitsmith::iq::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::CappedTag<float, 16>;  // N <= 16 divides every run of 16 or 32 values
using DF4 = hn::CappedTag<float, 4>;  // the 4-byte qh part of TQ1_0

// Every exported kernel ends with vzeroupper (as codecs/quant_iq_simd.cc).
HWY_INLINE void ZeroUpperTernary() {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  _mm256_zeroupper();
#endif
}

// ---------------------------------------------------------------------------
// Dequantize.

// y[t*cnt + m] = float(trit t of b[m] - 1) * d for t < ntrits, m < cnt (cnt a
// multiple of Lanes(D)).
template <class D>
HWY_INLINE void TritsToFloats(D df, const uint8_t* HWY_RESTRICT b, int cnt, int ntrits, float d,
                              float* HWY_RESTRICT y) {
  const hn::Rebind<int32_t, D> di;
  const hn::Rebind<uint8_t, D> du8;
  const int N = static_cast<int>(hn::Lanes(df));
  const auto vd = hn::Set(df, d);
  const auto one = hn::Set(di, 1), low8 = hn::Set(di, 255);
  for (int m = 0; m < cnt; m += N) {
    auto q = hn::PromoteTo(di, hn::LoadU(du8, b + m));
    for (int t = 0; t < ntrits; ++t) {
      const auto p = hn::Add(hn::ShiftLeft<1>(q), q);  // 3q < 768
      const auto trit = hn::ShiftRight<8>(p);
      q = hn::And(p, low8);
      // ggml: (float)(trit - 1) * d
      hn::StoreU(hn::Mul(hn::ConvertTo(df, hn::Sub(trit, one)), vd), df, y + t * cnt + m);
    }
  }
}

void DequantizeTQ1_0Impl(const void* vx, float* HWY_RESTRICT y, int64_t n) {
  const auto* x = static_cast<const BlockTQ1_0*>(vx);
  for (int64_t i = 0; i < n / 256; ++i, y += 256) {
    const float d = F16BitsToF32(x[i].d);
    TritsToFloats(DF(), x[i].qs, 32, 5, d, y);         // elements 32n+m
    TritsToFloats(DF(), x[i].qs + 32, 16, 5, d, y + 160);  // 160+16n+m
    TritsToFloats(DF4(), x[i].qh, 4, 4, d, y + 240);   // 240+4n+j
  }
  ZeroUpperTernary();
}

void DequantizeTQ2_0Impl(const void* vx, float* HWY_RESTRICT y, int64_t n) {
  const auto* x = static_cast<const BlockTQ2_0*>(vx);
  const DF df;
  const hn::Rebind<int32_t, DF> di;
  const hn::Rebind<uint8_t, DF> du8;
  const int N = static_cast<int>(hn::Lanes(df));
  const auto one = hn::Set(di, 1), three = hn::Set(di, 3);
  for (int64_t i = 0; i < n / 256; ++i, y += 256) {
    const auto vd = hn::Set(df, F16BitsToF32(x[i].d));
    for (int h = 0; h < 2; ++h)
      for (int m = 0; m < 32; m += N) {
        auto q = hn::PromoteTo(di, hn::LoadU(du8, x[i].qs + 32 * h + m));
        for (int l = 0; l < 4; ++l, q = hn::ShiftRight<2>(q))
          hn::StoreU(hn::Mul(hn::ConvertTo(df, hn::Sub(hn::And(q, three), one)), vd), df,
                     y + 128 * h + 32 * l + m);
      }
  }
  ZeroUpperTernary();
}

// ---------------------------------------------------------------------------
// Quantize.

// Trits lroundf(x * id) + 1 of N values (id finite, |x * id| <= 1 or NaN).
template <class D>
HWY_INLINE hn::Vec<hn::Rebind<int32_t, D>> Trits(D df, const float* HWY_RESTRICT x, hn::Vec<D> vid) {
  const hn::Rebind<int32_t, D> di;
  const auto v = hn::Mul(hn::LoadU(df, x), vid);
  const auto up = hn::VecFromMask(di, hn::RebindMask(di, hn::Ge(v, hn::Set(df, 0.5f))));     // -1 where 2
  const auto down = hn::VecFromMask(di, hn::RebindMask(di, hn::Le(v, hn::Set(df, -0.5f))));  // -1 where 0
  return hn::Add(hn::Sub(hn::Set(di, 1), up), down);
}

// Block maximum of |x| over 256 values; false if a value is NaN (the oracle's
// MAX chain then depends on the order: the block takes the oracle).
HWY_INLINE bool TernaryAmax(const float* HWY_RESTRICT x, float* amax) {
  const DF df;
  const int N = static_cast<int>(hn::Lanes(df));
  auto m = hn::Zero(df);
  auto nan = hn::Zero(df);
  for (int j = 0; j < 256; j += N) {
    const auto v = hn::LoadU(df, x + j);
    nan = hn::Or(nan, hn::VecFromMask(df, hn::IsNaN(v)));
    m = hn::Max(m, hn::Abs(v));
  }
  if (!hn::AllFalse(df, hn::MaskFromVec(nan))) return false;
  *amax = hn::GetLane(hn::MaxOfLanes(df, m));
  return true;
}

// Scale of a ternary block: d = amax, id = 1/d (0 for d = 0). False when the
// block must take the oracle (NaN input, or id = inf for a tiny amax).
HWY_INLINE bool TernaryScale(const float* HWY_RESTRICT x, float* d, float* id) {
  float amax;
  if (!TernaryAmax(x, &amax)) return false;
  *d = amax;
  *id = amax != 0.0f ? 1.0f / amax : 0.0f;
  return *id - *id == 0.0f;  // finite
}

void QuantizeTQ1_0Impl(const float* HWY_RESTRICT x, void* vy, int64_t nrows, int64_t n_per_row,
                       const float* imatrix) {
  auto* y = static_cast<BlockTQ1_0*>(vy);
  const DF df;
  const DF4 df4;
  const hn::Rebind<int32_t, DF> di;
  const hn::Rebind<int32_t, DF4> di4;
  const int N = static_cast<int>(hn::Lanes(df));
  const int N4 = static_cast<int>(hn::Lanes(df4));
  const int64_t nb = nrows * n_per_row / 256;
  // byte = (256q + 242) / 243 with q = ((((t0*3 + t1)*3 + t2)*3 + t3)*3 + t4.
  auto pack = [](auto dit, auto q) {
    const auto v = hn::Add(hn::ShiftLeft<8>(q), hn::Set(dit, 242));
    return hn::ShiftRight<kDiv243Shift>(hn::Mul(v, hn::Set(dit, kDiv243Mul)));
  };
  auto times3 = [](auto q) { return hn::Add(hn::ShiftLeft<1>(q), q); };
  for (int64_t i = 0; i < nb; ++i, x += 256) {
    float d, id;
    if (!TernaryScale(x, &d, &id)) {
      QuantizeTQ1_0Ref(x, y + i, 1, 256, imatrix);
      continue;
    }
    y[i].d = F32ToF16Bits(d);
    const auto vid = hn::Set(df, id);
    // qs[m] (m < 32): trits of x[m + 32n]; qs[32 + m] (m < 16): of x[160 + m + 16n].
    for (int part = 0; part < 2; ++part) {
      const int cnt = part == 0 ? 32 : 16, base = part == 0 ? 0 : 160;
      for (int m = 0; m < cnt; m += N) {
        auto q = Trits(df, x + base + m, vid);
        for (int t = 1; t < 5; ++t) q = hn::Add(times3(q), Trits(df, x + base + m + cnt * t, vid));
        hn::StoreU(hn::DemoteTo(hn::Rebind<uint8_t, DF>(), pack(di, q)), hn::Rebind<uint8_t, DF>(),
                   y[i].qs + (part == 0 ? 0 : 32) + m);
      }
    }
    // qh[j] (j < 4): trits of x[240 + j + 4n], n < 4, then a 0 trit.
    const auto vid4 = hn::Set(df4, id);
    for (int j = 0; j < 4; j += N4) {
      auto q = Trits(df4, x + 240 + j, vid4);
      for (int t = 1; t < 4; ++t) q = hn::Add(times3(q), Trits(df4, x + 240 + j + 4 * t, vid4));
      q = times3(q);
      hn::StoreU(hn::DemoteTo(hn::Rebind<uint8_t, DF4>(), pack(di4, q)), hn::Rebind<uint8_t, DF4>(),
                 y[i].qh + j);
    }
  }
  ZeroUpperTernary();
}

void QuantizeTQ2_0Impl(const float* HWY_RESTRICT x, void* vy, int64_t nrows, int64_t n_per_row,
                       const float* imatrix) {
  auto* y = static_cast<BlockTQ2_0*>(vy);
  const DF df;
  const hn::Rebind<int32_t, DF> di;
  const hn::Rebind<uint8_t, DF> du8;
  const int N = static_cast<int>(hn::Lanes(df));
  const int64_t nb = nrows * n_per_row / 256;
  for (int64_t i = 0; i < nb; ++i, x += 256) {
    float d, id;
    if (!TernaryScale(x, &d, &id)) {
      QuantizeTQ2_0Ref(x, y + i, 1, 256, imatrix);
      continue;
    }
    y[i].d = F32ToF16Bits(d);
    const auto vid = hn::Set(df, id);
    // qs[32h + m]: bits 2l..2l+1 = trit of x[128h + 32l + m].
    for (int h = 0; h < 2; ++h)
      for (int m = 0; m < 32; m += N) {
        const float* p = x + 128 * h + m;
        auto q = Trits(df, p, vid);
        q = hn::Or(q, hn::ShiftLeft<2>(Trits(df, p + 32, vid)));
        q = hn::Or(q, hn::ShiftLeft<4>(Trits(df, p + 64, vid)));
        q = hn::Or(q, hn::ShiftLeft<6>(Trits(df, p + 96, vid)));
        hn::StoreU(hn::DemoteTo(du8, q), du8, y[i].qs + 32 * h + m);
      }
  }
  (void)di;
  ZeroUpperTernary();
}

void QuantizeMXFP4Impl(const float* HWY_RESTRICT x, void* vy, int64_t nrows, int64_t n_per_row,
                       const float*) {
  auto* y = static_cast<BlockMXFP4*>(vy);
  const DF df;
  const hn::Rebind<int32_t, DF> di;
  const hn::Rebind<uint8_t, DF> du8;
  const int N = static_cast<int>(hn::Lanes(df));
  const int64_t nb = nrows * n_per_row / 32;
  // Nibble index of N values: the nearest non-negative kvalue to |x| (first
  // strict minimum of |kv*d - |x||), +8 for x < 0 unless it is 0.
  auto nibbles = [&](const float* p, const float* kd) {
    const auto v = hn::LoadU(df, p);
    const auto a = hn::Abs(v);
    auto best_err = hn::Abs(hn::Sub(hn::Set(df, kd[0]), a));
    auto best = hn::Zero(di);
    for (int q = 1; q < 8; ++q) {
      const auto err = hn::Abs(hn::Sub(hn::Set(df, kd[q]), a));
      const auto lt = hn::Lt(err, best_err);
      best_err = hn::IfThenElse(lt, err, best_err);
      best = hn::IfThenElse(hn::RebindMask(di, lt), hn::Set(di, q), best);
    }
    const auto neg = hn::And(hn::RebindMask(di, hn::Lt(v, hn::Zero(df))), hn::Ne(best, hn::Zero(di)));
    return hn::IfThenElse(neg, hn::Add(best, hn::Set(di, 8)), best);
  };
  for (int64_t i = 0; i < nb; ++i, x += 32) {
    // 1. amax: `if (amax < |x|) amax = |x|` per lane (a lane never holds NaN),
    //    then the maximum of the lanes.
    auto vmax = hn::Zero(df);
    for (int j = 0; j < 32; j += N) {
      const auto a = hn::Abs(hn::LoadU(df, x + j));
      vmax = hn::IfThenElse(hn::Lt(vmax, a), a, vmax);
    }
    const float amax = hn::GetLane(hn::MaxOfLanes(df, vmax));
    // 2.-3. Exponent and d = 2^(e-128).
    const uint8_t e = MXFP4FastExponent(amax);
    const float d = F32FromBits(E8M0HalfBits(e));
    y[i].e = e;
    float kd[8];
    for (int q = 0; q < 8; ++q) kd[q] = iq_grids::kKValuesMXFP4[q] * d;  // ggml: kvalues[q] * d
    // 4. qs[j] = nibble(x[j]) | nibble(x[16 + j]) << 4.
    for (int j = 0; j < 16; j += N) {
      const auto q = hn::Or(nibbles(x + j, kd), hn::ShiftLeft<4>(nibbles(x + 16 + j, kd)));
      hn::StoreU(hn::DemoteTo(du8, q), du8, y[i].qs + j);
    }
  }
  ZeroUpperTernary();
}

}  // namespace bitsmith::iq::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace bitsmith::iq {

HWY_EXPORT(DequantizeTQ1_0Impl);
HWY_EXPORT(DequantizeTQ2_0Impl);
HWY_EXPORT(QuantizeTQ1_0Impl);
HWY_EXPORT(QuantizeTQ2_0Impl);
HWY_EXPORT(QuantizeMXFP4Impl);

void DequantizeTQ1_0Simd(const void* x, float* y, int64_t n) { HWY_DYNAMIC_DISPATCH(DequantizeTQ1_0Impl)(x, y, n); }
void DequantizeTQ2_0Simd(const void* x, float* y, int64_t n) { HWY_DYNAMIC_DISPATCH(DequantizeTQ2_0Impl)(x, y, n); }
void QuantizeTQ1_0Simd(const float* x, void* y, int64_t nr, int64_t n, const float* w) {
  HWY_DYNAMIC_DISPATCH(QuantizeTQ1_0Impl)(x, y, nr, n, w);
}
void QuantizeTQ2_0Simd(const float* x, void* y, int64_t nr, int64_t n, const float* w) {
  HWY_DYNAMIC_DISPATCH(QuantizeTQ2_0Impl)(x, y, nr, n, w);
}
void QuantizeMXFP4Simd(const float* x, void* y, int64_t nr, int64_t n, const float* w) {
  HWY_DYNAMIC_DISPATCH(QuantizeMXFP4Impl)(x, y, nr, n, w);
}

}  // namespace bitsmith::iq
#endif  // HWY_ONCE
