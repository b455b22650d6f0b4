// Per-target SIMD kernels of the element codecs (codecs/element.h).
//
// Included once per Highway target by codecs/element.cc (foreach_target.h), hence
// the toggle guard instead of #pragma once (hwy/examples/skeleton-inl.h). Every
// kernel reproduces the scalar oracle of codecs/element.cc bit for bit; the
// rounding is done with integer operations only (no DemoteTo of floats, no FP
// rounding that MXCSR, FTZ or DAZ could change), so all targets agree.
//
// Lane conventions: a float is handled as its uint32 bit pattern `x`; `ax` is
// x without its sign; comparisons are signed on values < 2^31 (SSE4 has no
// unsigned 32-bit compares). Codes travel in 32-bit lanes during encoding and in
// 16-bit lanes (as bf16 bits) during decoding.

#if defined(BITSMITH_CODECS_ELEMENT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef BITSMITH_CODECS_ELEMENT_INL_H_
#undef BITSMITH_CODECS_ELEMENT_INL_H_
#else
#define BITSMITH_CODECS_ELEMENT_INL_H_
#endif

#include <cstddef>
#include <cstdint>
#include <cstring>  // std::memcpy (tails)

#include <hwy/highway.h>

#include "formats/element_format.h"
#include "formats/half.h"  // F32ToBF16Bits (constexpr subnormal tables)

HWY_BEFORE_NAMESPACE();
namespace bitsmith {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Largest vector of any target, in bytes: tails are staged in buffers this big.
inline constexpr size_t kMaxVecBytes = HWY_MAX_BYTES;

// ---------------------------------------------------------------------------
// Shared integer rounding
// ---------------------------------------------------------------------------

// sig >> s rounded to nearest, ties to even, for sig < 2^24 and s in [1, 31]
// (lanes with other s must be clamped by the caller). The sum stays below 2^31:
//   r = (sig + (2^(s-1) - 1) + ((sig >> s) & 1)) >> s.
template <class DU>
HWY_INLINE hn::Vec<DU> RoundShiftRightEven(DU du, hn::Vec<DU> sig, hn::Vec<DU> s) {
  const auto one = hn::Set(du, 1u);
  const auto half_minus_1 = hn::Sub(hn::Shl(one, hn::Sub(s, one)), one);
  const auto lsb = hn::And(hn::Shr(sig, s), one);
  return hn::Shr(hn::Add(hn::Add(sig, half_minus_1), lsb), s);
}

// ---------------------------------------------------------------------------
// Encoding f32 -> codes (32-bit lanes)
// ---------------------------------------------------------------------------

// Per-call constants of an encoder that depend on the overflow mode. They are
// built once per call, outside the loop.
struct EncodeParams {
  uint32_t overflow_code;  // magnitude code for an overflowing value
  uint32_t bad_code;       // e8m0fnu only: code for zero / negative inputs
};

template <ElementFormatId kId>
constexpr EncodeParams MakeEncodeParams(bool saturate) {
  constexpr const ElementFormat& f = GetElementFormat(kId);
  EncodeParams p{};
  const uint32_t max_code = f.max_finite_code();
  if (f.kind == ElementKind::kInt || saturate || f.nonfinite == NonFinite::kFiniteOnly) {
    p.overflow_code = max_code;
  } else if (f.has_inf()) {
    p.overflow_code = *f.inf_code(false);  // sign is OR-ed in afterwards
  } else {
    p.overflow_code = *f.nan_code(false);  // e4m3fn 0x7F, fnuz 0x80, e8m0fnu 0xFF
  }
  p.bad_code = saturate ? 0x00u : 0xFFu;
  return p;
}

// Codes (in uint32 lanes) of the float formats for the float bits `x`.
// Steps (the scalar oracle EncodeFloatRef follows the same rules):
//  1. Normal results: round the f32 bit pattern at bit S = 23 - M (a carry out
//     of the mantissa correctly bumps the exponent) and rebias 127 -> bias.
//  2. Subnormal results (|x| below the format's smallest normal): shift the
//     24-bit significand right by S + (emin - e) with round-to-nearest-even.
//  3. Overflow (rounded magnitude above the max finite code): the mode's code.
//  4. Sign (not for the fnuz zero, which has no negative twin).
//  5. NaN inputs: the canonical NaN (rule 4/5 of element.h).
template <ElementFormatId kId, class DU>
HWY_INLINE hn::Vec<DU> EncodeFloatCodes(DU du, hn::Vec<DU> x, const EncodeParams& p) {
  constexpr const ElementFormat& f = GetElementFormat(kId);
  constexpr int M = f.mantissa_bits;
  constexpr int S = 23 - M;
  constexpr uint32_t kMaxCode = f.max_finite_code();
  const hn::RebindToSigned<DU> di;
  const auto ax = hn::And(x, hn::Set(du, 0x7FFFFFFFu));
  const auto ax_i = hn::BitCast(di, ax);
  const auto neg = hn::RebindMask(du, hn::Lt(hn::BitCast(di, x), hn::Zero(di)));

  hn::Vec<DU> mag;
  if constexpr (!f.has_subnormals) {
    // e8m0fnu: 2^(code-127). Normal f32: exponent field, +1 when the mantissa
    // is >= 0.5 (ties up, as ml_dtypes). f32 subnormals: 0x00 up to and
    // including 1.5 * 2^-127 (mantissa field 0x600000), 0x01 above.
    const auto e32 = hn::ShiftRight<23>(ax);
    const auto up = hn::And(hn::ShiftRight<22>(ax), hn::Set(du, 1u));
    const auto normal = hn::Add(e32, up);
    const auto sub_one = hn::RebindMask(du, hn::Gt(ax_i, hn::Set(di, 0x600000)));
    const auto sub = hn::IfThenElseZero(sub_one, hn::Set(du, 1u));
    const auto is_sub = hn::RebindMask(du, hn::Lt(ax_i, hn::Set(di, 0x800000)));
    mag = hn::IfThenElse(is_sub, sub, normal);
  } else {
    // 1. Normal path.
    const auto lsb = hn::And(hn::ShiftRight<S>(ax), hn::Set(du, 1u));
    const auto rounded =
        hn::ShiftRight<S>(hn::Add(hn::Add(ax, hn::Set(du, (1u << (S - 1)) - 1u)), lsb));
    mag = hn::Sub(rounded, hn::Set(du, static_cast<uint32_t>(127 - f.bias) << M));
    // 2. Subnormal path; not needed when the format's exponent range reaches
    //    down to f32's (bf16: f32 subnormals round like normals).
    constexpr int kEmin32 = 128 - f.bias;  // f32 exponent field of the format's min normal
    if constexpr (kEmin32 > 1) {
      const auto is_sub = hn::RebindMask(du, hn::Lt(ax_i, hn::Set(di, kEmin32 << 23)));
      // Zeros: the normal path gave a negative count; clamp it to 0.
      mag = hn::BitCast(du, hn::Max(hn::BitCast(di, mag), hn::Zero(di)));
      // Real weights rarely have non-zero subnormal results: skip the
      // variable shifts when no lane needs them.
      const auto is_zero = hn::RebindMask(du, hn::Eq(ax_i, hn::Zero(di)));
      if (!hn::AllFalse(du, hn::AndNot(is_zero, is_sub))) {
      const auto e32 = hn::Max(hn::ShiftRight<23>(ax_i), hn::Set(di, 1));
      // Significand with its implicit bit (none for f32 subnormals, e32 == 1 then).
      const auto sig = hn::Sub(ax, hn::BitCast(du, hn::ShiftLeft<23>(hn::Sub(e32, hn::Set(di, 1)))));
      // Shift S + (kEmin32 - e32), clamped to [1, 31] (>= 26 always rounds to 0).
      auto s = hn::Sub(hn::Set(di, S + kEmin32), e32);
      s = hn::Min(hn::Max(s, hn::Set(di, 1)), hn::Set(di, 31));
      const auto r = RoundShiftRightEven(du, sig, hn::BitCast(du, s));
      mag = hn::IfThenElse(is_sub, r, mag);
      }
    }
  }
  // 3. Overflow (inf inputs land here too: their rounded magnitude is huge).
  const auto over = hn::RebindMask(du, hn::Gt(hn::BitCast(di, mag), hn::Set(di, kMaxCode)));
  auto code = hn::IfThenElse(over, hn::Set(du, p.overflow_code), mag);
  // 4. Sign.
  if constexpr (f.is_signed) {
    const auto sign = hn::Set(du, f.sign_mask());
    if constexpr (f.has_negative_zero()) {
      code = hn::Or(code, hn::IfThenElseZero(neg, sign));
    } else {  // fnuz: -0 rounds to +0; the overflow code 0x80 already has the bit
      const auto nonzero = hn::RebindMask(du, hn::Ne(hn::BitCast(di, code), hn::Zero(di)));
      code = hn::Or(code, hn::IfThenElseZero(hn::And(neg, nonzero), sign));
    }
  } else {  // e8m0fnu: zero and negative inputs (incl. -0 and -inf)
    const auto bad = hn::Or(neg, hn::RebindMask(du, hn::Eq(ax_i, hn::Zero(di))));
    code = hn::IfThenElse(bad, hn::Set(du, p.bad_code), code);
  }
  // 5. NaN.
  const auto is_nan = hn::RebindMask(du, hn::Gt(ax_i, hn::Set(di, 0x7F800000)));
  hn::Vec<DU> nan;
  if constexpr (f.nonfinite == NonFinite::kFiniteOnly) {
    nan = hn::Zero(du);  // FP6/FP4: +0 (element.h rule 5)
  } else if constexpr (f.nonfinite == NonFinite::kNanNegZero || !f.is_signed) {
    nan = hn::Set(du, *f.nan_code(false));  // 0x80 (fnuz), 0xFF (e8m0fnu)
  } else {
    nan = hn::Or(hn::Set(du, *f.nan_code(false)), hn::IfThenElseZero(neg, hn::Set(du, f.sign_mask())));
  }
  return hn::IfThenElse(is_nan, nan, code);
}

// Codes of the integer formats: round to nearest even, saturate, NaN -> 0.
//  1. |x| < 2^23: the integer part is sig >> (150 - e32), rounded to even
//     (sig: the 24-bit significand, e32: the f32 exponent field, at least 1).
//     |x| >= 2^23 (and inf) saturate.
//  2. Apply the sign, clamp to [lowest, max], keep the low `bits` bits.
template <ElementFormatId kId, class DU>
HWY_INLINE hn::Vec<DU> EncodeIntCodes(DU du, hn::Vec<DU> x) {
  constexpr const ElementFormat& f = GetElementFormat(kId);
  const hn::RebindToSigned<DU> di;
  const auto ax = hn::And(x, hn::Set(du, 0x7FFFFFFFu));
  const auto ax_i = hn::BitCast(di, ax);
  // 1. Magnitude.
  const auto e32 = hn::Max(hn::ShiftRight<23>(ax_i), hn::Set(di, 1));
  const auto sig = hn::Sub(ax, hn::BitCast(du, hn::ShiftLeft<23>(hn::Sub(e32, hn::Set(di, 1)))));
  const auto s = hn::Min(hn::Max(hn::Sub(hn::Set(di, 150), e32), hn::Set(di, 1)), hn::Set(di, 31));
  auto r = hn::BitCast(di, RoundShiftRightEven(du, sig, hn::BitCast(du, s)));
  r = hn::IfThenElse(hn::Gt(ax_i, hn::Set(di, 0x4AFFFFFF)), hn::Set(di, 1 << 24), r);  // |x| >= 2^23
  // 2. Sign, range, NaN.
  const auto neg = hn::Lt(hn::BitCast(di, x), hn::Zero(di));
  auto v = hn::IfThenElse(neg, hn::Neg(r), r);
  v = hn::Min(hn::Max(v, hn::Set(di, static_cast<int32_t>(f.lowest()))),
              hn::Set(di, static_cast<int32_t>(f.max_finite())));
  v = hn::IfThenZeroElse(hn::Gt(ax_i, hn::Set(di, 0x7F800000)), v);
  return hn::And(hn::BitCast(du, v), hn::Set(du, f.code_mask()));
}

template <ElementFormatId kId, class DU>
HWY_INLINE hn::Vec<DU> EncodeCodes(DU du, hn::Vec<DU> x, const EncodeParams& p) {
  if constexpr (GetElementFormat(kId).kind == ElementKind::kInt) {
    (void)p;
    return EncodeIntCodes<kId>(du, x);
  } else {
    return EncodeFloatCodes<kId>(du, x, p);
  }
}

// ---------------------------------------------------------------------------
// Decoding codes -> bf16 / f32 bits
// ---------------------------------------------------------------------------

// bf16 bits of the subnormal codes k = 0 .. 2^M - 1 (value k * 2^(1-bias-M),
// exact in bf16), as the 16 bytes of a byte-shuffle table: entry k at bytes
// 2k (low) and 2k+1 (high).
template <ElementFormatId kId>
struct SubnormalTable {
  static constexpr const ElementFormat& f = GetElementFormat(kId);
  static_assert(f.mantissa_bits <= 3, "8 entries at most fit one 16-byte shuffle table");
  struct Bytes {
    uint8_t b[16];
  };
  static constexpr Bytes Make() {
    Bytes t{};
    for (uint32_t k = 0; k < (1u << f.mantissa_bits); ++k) {
      const uint16_t bits = F32ToBF16Bits(static_cast<float>(f.Value(k)));
      t.b[2 * k] = static_cast<uint8_t>(bits & 0xFF);
      t.b[2 * k + 1] = static_cast<uint8_t>(bits >> 8);
    }
    return t;
  }
  HWY_ALIGN static constexpr Bytes kBytes = Make();
};

// Signed compares of small non-negative lane values (no unsigned compares on SSE4).
template <class D>
HWY_INLINE auto LtSmall(D d, hn::Vec<D> a, hn::Vec<D> b) {
  const hn::RebindToSigned<D> di;
  return hn::RebindMask(d, hn::Lt(hn::BitCast(di, a), hn::BitCast(di, b)));
}

// bf16 bits of the codes of a float format of <= 8 bits, in 16- or 32-bit lanes.
// Exact: bf16 has f32's exponent range and 7 >= M mantissa bits. Steps:
//  1. e8m0fnu: 2^(c-127) is the bf16 exponent field c (c = 0 is the bf16
//     subnormal 2^-127 = 0x0040; 0xFF is NaN).
//  2. Normal codes: shift exponent+mantissa into place, rebias bias -> 127.
//  3. Subnormal codes (exponent field 0): look k = mantissa up in the 8-entry
//     table of SubnormalTable (a byte shuffle within each 128-bit block).
//  4. inf / NaN codes; 5. the sign bit moves from bit bits-1 to bit 15.
template <ElementFormatId kId, class D>
HWY_INLINE hn::Vec<D> Bf16FromCodes(D d, hn::Vec<D> c) {
  constexpr const ElementFormat& f = GetElementFormat(kId);
  constexpr int M = f.mantissa_bits;
  using T = hn::TFromD<D>;
  if constexpr (f.bits < 8) c = hn::And(c, hn::Set(d, static_cast<T>(f.code_mask())));
  // 1. e8m0fnu.
  if constexpr (!f.has_subnormals) {
    auto v = hn::ShiftLeft<7>(c);
    v = hn::IfThenElse(hn::Eq(c, hn::Zero(d)), hn::Set(d, T{0x0040}), v);
    return hn::IfThenElse(hn::Eq(c, hn::Set(d, T{0xFF})), hn::Set(d, T{0x7FC0}), v);
  } else {
    constexpr uint32_t kMagMask = f.code_mask() & ~f.sign_mask();
    const auto mag = hn::And(c, hn::Set(d, static_cast<T>(kMagMask)));
    // 2. Normal.
    auto v = hn::Add(hn::ShiftLeft<7 - M>(mag), hn::Set(d, static_cast<T>((127 - f.bias) << 7)));
    // 3. Subnormal. Byte indices of entry k: (2k, 2k+1) in the low 16 bits, and
    //    0x80 (-> zero byte) above them for 32-bit lanes.
    const auto is_sub = LtSmall(d, mag, hn::Set(d, static_cast<T>(1u << M)));
    const auto k = hn::IfThenElseZero(is_sub, mag);
#if HWY_TARGET == HWY_SCALAR
    // One lane: a plain table read (HWY_SCALAR has no byte shuffles).
    constexpr auto& tb = SubnormalTable<kId>::kBytes.b;
    const uint32_t kk = static_cast<uint32_t>(hn::GetLane(k));
    const auto sub = hn::Set(d, static_cast<T>(tb[2 * kk] | (tb[2 * kk + 1] << 8)));
#else
    auto idx = hn::Or(hn::Or(hn::ShiftLeft<1>(k), hn::ShiftLeft<9>(k)), hn::Set(d, T{0x0100}));
    if constexpr (sizeof(T) == 4) idx = hn::Or(idx, hn::Set(d, T{0x80800000u}));
    const hn::Repartition<uint8_t, D> d8;
    const auto table = hn::LoadDup128(d8, SubnormalTable<kId>::kBytes.b);
    const auto sub = hn::BitCast(d, hn::TableLookupBytesOr0(table, hn::BitCast(d8, idx)));
#endif
    v = hn::IfThenElse(is_sub, sub, v);
    // 4. Non-finite codes.
    if constexpr (f.nonfinite == NonFinite::kIeee) {
      const auto exp_mask = hn::Set(d, static_cast<T>(f.exponent_mask()));
      const auto special = hn::Not(LtSmall(d, mag, exp_mask));  // exponent all ones
      const auto inf_or_nan = hn::IfThenElse(hn::Eq(mag, exp_mask), hn::Set(d, T{0x7F80}),
                                             hn::Set(d, T{0x7FC0}));
      v = hn::IfThenElse(special, inf_or_nan, v);
    } else if constexpr (f.nonfinite == NonFinite::kNanAllOnes) {
      v = hn::IfThenElse(hn::Eq(mag, hn::Set(d, static_cast<T>(kMagMask))), hn::Set(d, T{0x7FC0}), v);
    } else if constexpr (f.nonfinite == NonFinite::kNanNegZero) {
      v = hn::IfThenElse(hn::Eq(c, hn::Set(d, static_cast<T>(f.sign_mask()))), hn::Set(d, T{0x7FC0}), v);
    }
    // 5. Sign.
    return hn::Or(v, hn::ShiftLeft<16 - f.bits>(hn::And(c, hn::Set(d, static_cast<T>(f.sign_mask())))));
  }
}

// f32 bits of integer codes (in 32-bit lanes): sign-extend, then convert (exact).
template <ElementFormatId kId, class DU>
HWY_INLINE hn::Vec<DU> F32FromIntCodes(DU du, hn::Vec<DU> c) {
  constexpr const ElementFormat& f = GetElementFormat(kId);
  const hn::RebindToSigned<DU> di;
  const hn::Rebind<float, DU> df;
  hn::Vec<decltype(di)> v;
  if constexpr (f.is_signed) {
    v = hn::ShiftRight<32 - f.bits>(hn::ShiftLeft<32 - f.bits>(hn::BitCast(di, c)));
  } else {
    v = hn::BitCast(di, hn::And(c, hn::Set(du, f.code_mask())));
  }
  return hn::BitCast(du, hn::ConvertTo(df, v));
}

// f16 bits (in 32-bit lanes) -> f32 bits, exact (formats/half.h F16BitsToF32):
// normal: shift + rebias; subnormal m * 2^-24: convert m exactly and subtract 24
// from the exponent field; inf/NaN: exponent all ones, payload kept, quieted.
template <class DU>
HWY_INLINE hn::Vec<DU> F32FromF16Bits(DU du, hn::Vec<DU> h) {
  const hn::RebindToSigned<DU> di;
  const hn::Rebind<float, DU> df;
  const auto sign = hn::ShiftLeft<16>(hn::And(h, hn::Set(du, 0x8000u)));
  const auto mag = hn::And(h, hn::Set(du, 0x7FFFu));
  const auto m = hn::And(h, hn::Set(du, 0x3FFu));
  auto v = hn::Add(hn::ShiftLeft<13>(mag), hn::Set(du, 112u << 23));
  const auto sub_bits =
      hn::Sub(hn::BitCast(du, hn::ConvertTo(df, hn::BitCast(di, m))), hn::Set(du, 24u << 23));
  const auto is_sub = LtSmall(du, mag, hn::Set(du, 0x400u));
  v = hn::IfThenElse(is_sub, hn::IfThenElseZero(hn::Ne(m, hn::Zero(du)), sub_bits), v);
  const auto special = hn::Not(LtSmall(du, mag, hn::Set(du, 0x7C00u)));
  const auto quiet = hn::IfThenElseZero(hn::Ne(m, hn::Zero(du)), hn::Set(du, 0x400000u));
  const auto inf_nan = hn::Or(hn::Or(hn::Set(du, 0x7F800000u), hn::ShiftLeft<13>(m)), quiet);
  v = hn::IfThenElse(special, inf_nan, v);
  return hn::Or(v, sign);
}

// ---------------------------------------------------------------------------
// Loops. Each processes whole units (one or two vectors), then stages the tail
// (< one unit) in zero-padded stack buffers and runs the same unit once more,
// so the tail is computed exactly like the body. Units are HWY_INLINE
// functions (not lambdas, which GCC leaves out of line) so that the constants
// they build are hoisted out of the loops.
// ---------------------------------------------------------------------------

// One vector of f32 -> codes of kId (uint8_t or uint16_t storage), optionally
// divided by `scale` first (one float32 division per value).
template <ElementFormatId kId, bool kDivide, typename TOut>
HWY_INLINE void EncodeUnit(const float* HWY_RESTRICT src, TOut* HWY_RESTRICT dst,
                           const EncodeParams& p, float scale) {
  const hn::ScalableTag<uint32_t> du;
  const hn::Rebind<float, decltype(du)> df;
  const hn::RebindToSigned<decltype(du)> di;
  const hn::Rebind<TOut, decltype(du)> dout;
  auto x = hn::LoadU(df, src);
  if constexpr (kDivide) x = hn::Div(x, hn::Set(df, scale));
  const auto codes = EncodeCodes<kId>(du, hn::BitCast(du, x), p);
  hn::StoreU(hn::DemoteTo(dout, hn::BitCast(di, codes)), dout, dst);
}

template <ElementFormatId kId, bool kDivide, typename TOut>
HWY_NOINLINE void EncodeLoop(const float* HWY_RESTRICT in, TOut* HWY_RESTRICT out, size_t n,
                             EncodeParams p, float scale) {
  const size_t N = hn::Lanes(hn::ScalableTag<uint32_t>());
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    EncodeUnit<kId, kDivide>(in + i, out + i, p, scale);
    EncodeUnit<kId, kDivide>(in + i + N, out + i + N, p, scale);
  }
  for (; i + N <= n; i += N) EncodeUnit<kId, kDivide>(in + i, out + i, p, scale);
  if (i < n) {
    HWY_ALIGN float buf[kMaxVecBytes / sizeof(float)] = {};
    HWY_ALIGN TOut obuf[kMaxVecBytes / sizeof(float)];
    std::memcpy(buf, in + i, (n - i) * sizeof(float));
    EncodeUnit<kId, kDivide>(buf, obuf, p, scale);
    std::memcpy(out + i, obuf, (n - i) * sizeof(TOut));
  }
}

// One unit of f32 decoding: 2 * Lanes(f32) one-byte codes -> two f32 vectors.
// Float formats go through bf16 bits in 16-bit lanes (twice the lanes per
// instruction), integers through 32-bit lanes.
template <ElementFormatId kId, class DF>
HWY_INLINE void DecodeUnit(DF df, const uint8_t* HWY_RESTRICT src, hn::Vec<DF>& lo,
                           hn::Vec<DF>& hi) {
  const hn::RebindToUnsigned<DF> du;
  if constexpr (GetElementFormat(kId).kind == ElementKind::kInt) {
    const hn::Rebind<uint8_t, decltype(du)> d8;
    const size_t N = hn::Lanes(du);
    lo = hn::BitCast(df, F32FromIntCodes<kId>(du, hn::PromoteTo(du, hn::LoadU(d8, src))));
    hi = hn::BitCast(df, F32FromIntCodes<kId>(du, hn::PromoteTo(du, hn::LoadU(d8, src + N))));
  } else {
#if HWY_TARGET == HWY_SCALAR
    // One lane: no half vectors; decode in 32-bit lanes.
    const hn::Rebind<uint8_t, decltype(du)> d8;
    lo = hn::BitCast(df, hn::ShiftLeft<16>(Bf16FromCodes<kId>(du, hn::PromoteTo(du, hn::LoadU(d8, src)))));
    hi = hn::BitCast(df, hn::ShiftLeft<16>(Bf16FromCodes<kId>(du, hn::PromoteTo(du, hn::LoadU(d8, src + 1)))));
#else
    const hn::Repartition<uint16_t, decltype(du)> d16;
    const hn::Rebind<uint8_t, decltype(d16)> d8;
    const hn::Half<decltype(d16)> dh16;
    const auto v = Bf16FromCodes<kId>(d16, hn::PromoteTo(d16, hn::LoadU(d8, src)));
    lo = hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(du, hn::LowerHalf(dh16, v))));
    hi = hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(du, hn::UpperHalf(dh16, v))));
#endif
  }
}

// What a decoding loop stores: f32, or the f32 rounded to bf16 / f16.
enum class ScaledOut { kF32, kBF16, kF16 };

template <ScaledOut kOut, class DF>
HWY_INLINE void StoreDecoded(DF df, hn::Vec<DF> y, void* HWY_RESTRICT dst, size_t j) {
  if constexpr (kOut == ScaledOut::kF32) {
    hn::StoreU(y, df, static_cast<float*>(dst) + j);
  } else {
    const hn::RebindToUnsigned<DF> du;
    const hn::RebindToSigned<DF> di;
    const hn::Rebind<uint16_t, DF> d16;
    constexpr ElementFormatId kTo =
        kOut == ScaledOut::kBF16 ? ElementFormatId::kBF16 : ElementFormatId::kF16;
    constexpr EncodeParams kP = MakeEncodeParams<kTo>(false);
    const auto codes = EncodeFloatCodes<kTo>(du, hn::BitCast(du, y), kP);
    hn::StoreU(hn::DemoteTo(d16, hn::BitCast(di, codes)), d16, static_cast<uint16_t*>(dst) + j);
  }
}

template <ElementFormatId kId, ScaledOut kOut, bool kScaled>
HWY_INLINE void DecodeF32Unit(const uint8_t* HWY_RESTRICT src, float scale, void* HWY_RESTRICT dst,
                              size_t j) {
  const hn::ScalableTag<float> df;
  hn::Vec<decltype(df)> lo, hi;
  DecodeUnit<kId>(df, src, lo, hi);
  if constexpr (kScaled) {  // y = f32(code) * scale: one multiply, rounded to nearest even
    lo = hn::Mul(lo, hn::Set(df, scale));
    hi = hn::Mul(hi, hn::Set(df, scale));
  }
  StoreDecoded<kOut>(df, lo, dst, j);
  StoreDecoded<kOut>(df, hi, dst, j + hn::Lanes(df));
}

// Codes of kId (one byte each) -> f32, or (f32 * scale) rounded to kOut.
template <ElementFormatId kId, ScaledOut kOut, bool kScaled>
HWY_NOINLINE void DecodeF32Loop(const uint8_t* HWY_RESTRICT in, float scale, void* HWY_RESTRICT out,
                                size_t n) {
  const size_t N = hn::Lanes(hn::ScalableTag<float>());
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) DecodeF32Unit<kId, kOut, kScaled>(in + i, scale, out, i);
  if (i < n) {
    constexpr size_t kOutBytes = kOut == ScaledOut::kF32 ? 4 : 2;
    HWY_ALIGN uint8_t buf[2 * kMaxVecBytes / sizeof(float)] = {};
    HWY_ALIGN uint8_t obuf[2 * kMaxVecBytes];
    std::memcpy(buf, in + i, n - i);
    DecodeF32Unit<kId, kOut, kScaled>(buf, scale, obuf, 0);
    std::memcpy(static_cast<uint8_t*>(out) + i * kOutBytes, obuf, (n - i) * kOutBytes);
  }
}

// Float codes of <= 8 bits -> bf16 bits (the FP8 -> BF16 hot path: 16-bit lanes).
template <ElementFormatId kId>
HWY_INLINE void DecodeBF16Unit(const uint8_t* HWY_RESTRICT src, uint16_t* HWY_RESTRICT dst) {
  const hn::ScalableTag<uint16_t> d16;
  const hn::Rebind<uint8_t, decltype(d16)> d8;
  hn::StoreU(Bf16FromCodes<kId>(d16, hn::PromoteTo(d16, hn::LoadU(d8, src))), d16, dst);
}

template <ElementFormatId kId>
HWY_NOINLINE void DecodeBF16Loop(const uint8_t* HWY_RESTRICT in, uint16_t* HWY_RESTRICT out,
                                 size_t n) {
  const size_t N = hn::Lanes(hn::ScalableTag<uint16_t>());
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    DecodeBF16Unit<kId>(in + i, out + i);
    DecodeBF16Unit<kId>(in + i + N, out + i + N);
  }
  for (; i + N <= n; i += N) DecodeBF16Unit<kId>(in + i, out + i);
  if (i < n) {
    HWY_ALIGN uint8_t buf[kMaxVecBytes / sizeof(uint16_t)] = {};
    HWY_ALIGN uint16_t obuf[kMaxVecBytes / sizeof(uint16_t)];
    std::memcpy(buf, in + i, n - i);
    DecodeBF16Unit<kId>(buf, obuf);
    std::memcpy(out + i, obuf, (n - i) * sizeof(uint16_t));
  }
}

// 16-bit sources (bf16 or f16 bits) -> f32, or -> bf16 (f16 source, rounded).
enum class Half16 { kBF16, kF16 };

template <Half16 kFrom, bool kToBF16>
HWY_INLINE void Decode16Unit(const uint16_t* HWY_RESTRICT src, void* HWY_RESTRICT dst, size_t j) {
  const hn::ScalableTag<uint32_t> du;
  const hn::RebindToSigned<decltype(du)> di;
  const hn::Rebind<uint16_t, decltype(du)> d16;
  const auto h = hn::PromoteTo(du, hn::LoadU(d16, src));
  hn::Vec<decltype(du)> f;
  if constexpr (kFrom == Half16::kBF16) {
    f = hn::ShiftLeft<16>(h);
  } else {
    f = F32FromF16Bits(du, h);
  }
  if constexpr (kToBF16) {
    constexpr EncodeParams kP = MakeEncodeParams<ElementFormatId::kBF16>(false);
    const auto codes = EncodeFloatCodes<ElementFormatId::kBF16>(du, f, kP);
    hn::StoreU(hn::DemoteTo(d16, hn::BitCast(di, codes)), d16, static_cast<uint16_t*>(dst) + j);
  } else {
    hn::StoreU(f, du, static_cast<uint32_t*>(dst) + j);
  }
}

template <Half16 kFrom, bool kToBF16>
HWY_NOINLINE void Decode16Loop(const uint16_t* HWY_RESTRICT in, void* HWY_RESTRICT out, size_t n) {
  const size_t N = hn::Lanes(hn::ScalableTag<uint32_t>());
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    Decode16Unit<kFrom, kToBF16>(in + i, out, i);
    Decode16Unit<kFrom, kToBF16>(in + i + N, out, i + N);
  }
  for (; i + N <= n; i += N) Decode16Unit<kFrom, kToBF16>(in + i, out, i);
  if (i < n) {
    HWY_ALIGN uint16_t buf[kMaxVecBytes / sizeof(uint32_t)] = {};
    HWY_ALIGN uint32_t obuf[kMaxVecBytes / sizeof(uint32_t)];
    std::memcpy(buf, in + i, (n - i) * sizeof(uint16_t));
    Decode16Unit<kFrom, kToBF16>(buf, obuf, 0);
    const size_t out_bytes = kToBF16 ? 2 : 4;
    std::memcpy(static_cast<uint8_t*>(out) + i * out_bytes, obuf, (n - i) * out_bytes);
  }
}

// max over i of |in[i]| as float bits (non-negative int32 order = float order;
// NaN bit patterns are above inf's 0x7F800000).
// inline: codecs/fp8_scale.cc includes this header too (one definition per target).
inline HWY_NOINLINE uint32_t MaxAbsBitsLoop(const float* HWY_RESTRICT in, size_t n) {
  const hn::ScalableTag<int32_t> di;
  const hn::Rebind<float, decltype(di)> df;
  const size_t N = hn::Lanes(di);
  const auto abs_mask = hn::Set(di, 0x7FFFFFFF);
  auto m0 = hn::Zero(di), m1 = hn::Zero(di);
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    m0 = hn::Max(m0, hn::And(hn::BitCast(di, hn::LoadU(df, in + i)), abs_mask));
    m1 = hn::Max(m1, hn::And(hn::BitCast(di, hn::LoadU(df, in + i + N)), abs_mask));
  }
  for (; i + N <= n; i += N) m0 = hn::Max(m0, hn::And(hn::BitCast(di, hn::LoadU(df, in + i)), abs_mask));
  if (i < n) {
    HWY_ALIGN float buf[kMaxVecBytes / sizeof(float)] = {};
    std::memcpy(buf, in + i, (n - i) * sizeof(float));
    m1 = hn::Max(m1, hn::And(hn::BitCast(di, hn::Load(df, buf)), abs_mask));
  }
  return static_cast<uint32_t>(hn::GetLane(hn::MaxOfLanes(di, hn::Max(m0, m1))));
}

// ---------------------------------------------------------------------------
// Per-target entry points (exported with HWY_EXPORT in element.cc). `fmt` is an
// ElementFormatId; the switch picks the template instantiation.
// ---------------------------------------------------------------------------

#define BITSMITH_ELEMENT_SMALL_FORMATS(X)                                                   \
  X(kE4M3FN) X(kE5M2) X(kE4M3FNUZ) X(kE5M2FNUZ) X(kE4M3B11FNUZ) X(kE8M0FNU) X(kE3M2FN) \
  X(kE2M3FN) X(kE2M1FN) X(kInt8) X(kUint8) X(kInt4) X(kUint4)
#define BITSMITH_ELEMENT_SMALL_FLOATS(X)                                                    \
  X(kE4M3FN) X(kE5M2) X(kE4M3FNUZ) X(kE5M2FNUZ) X(kE4M3B11FNUZ) X(kE8M0FNU) X(kE3M2FN) \
  X(kE2M3FN) X(kE2M1FN)

// f32 -> any format except f32 (handled by the caller).
inline void EncodeF32Body(int fmt, const float* in, void* out, size_t n, bool saturate) {
  switch (static_cast<ElementFormatId>(fmt)) {
#define BITSMITH_CASE(F)                                                                \
  case ElementFormatId::F:                                                              \
    return EncodeLoop<ElementFormatId::F, false>(in, static_cast<uint8_t*>(out), n,      \
                                                 MakeEncodeParams<ElementFormatId::F>(saturate), 1.0f);
    BITSMITH_ELEMENT_SMALL_FORMATS(BITSMITH_CASE)
#undef BITSMITH_CASE
    case ElementFormatId::kBF16:
      return EncodeLoop<ElementFormatId::kBF16, false>(
          in, static_cast<uint16_t*>(out), n, MakeEncodeParams<ElementFormatId::kBF16>(saturate), 1.0f);
    case ElementFormatId::kF16:
      return EncodeLoop<ElementFormatId::kF16, false>(
          in, static_cast<uint16_t*>(out), n, MakeEncodeParams<ElementFormatId::kF16>(saturate), 1.0f);
    default:
      return;
  }
}

inline void EncodeDividedBody(int fmt, const float* in, float scale, uint8_t* out, size_t n,
                              bool saturate) {
  switch (static_cast<ElementFormatId>(fmt)) {
#define BITSMITH_CASE(F)                                                     \
  case ElementFormatId::F:                                                   \
    return EncodeLoop<ElementFormatId::F, true>(in, out, n,                  \
                                                MakeEncodeParams<ElementFormatId::F>(saturate), scale);
    BITSMITH_ELEMENT_SMALL_FORMATS(BITSMITH_CASE)
#undef BITSMITH_CASE
    default:
      return;
  }
}

// <= 8-bit formats, bf16 and f16 -> f32 (f32 itself is a copy, done by the caller).
inline void DecodeToF32Body(int fmt, const void* in, float* out, size_t n) {
  switch (static_cast<ElementFormatId>(fmt)) {
#define BITSMITH_CASE(F)                                                                      \
  case ElementFormatId::F:                                                                    \
    return DecodeF32Loop<ElementFormatId::F, ScaledOut::kF32, false>(static_cast<const uint8_t*>(in), \
                                                                    1.0f, out, n);
    BITSMITH_ELEMENT_SMALL_FORMATS(BITSMITH_CASE)
#undef BITSMITH_CASE
    case ElementFormatId::kBF16:
      return Decode16Loop<Half16::kBF16, false>(static_cast<const uint16_t*>(in), out, n);
    case ElementFormatId::kF16:
      return Decode16Loop<Half16::kF16, false>(static_cast<const uint16_t*>(in), out, n);
    default:
      return;
  }
}

// <= 8-bit formats and f16 -> bf16 (bf16 itself is a copy, f32 an encode).
inline void DecodeToBF16Body(int fmt, const void* in, uint16_t* out, size_t n) {
  switch (static_cast<ElementFormatId>(fmt)) {
#define BITSMITH_CASE(F)                                                                   \
  case ElementFormatId::F:                                                                 \
    return DecodeBF16Loop<ElementFormatId::F>(static_cast<const uint8_t*>(in), out, n);
    BITSMITH_ELEMENT_SMALL_FLOATS(BITSMITH_CASE)
#undef BITSMITH_CASE
#define BITSMITH_CASE(F)                                                                      \
  case ElementFormatId::F:                                                                    \
    return DecodeF32Loop<ElementFormatId::F, ScaledOut::kBF16, false>(static_cast<const uint8_t*>(in), \
                                                                     1.0f, out, n);
    BITSMITH_CASE(kInt8) BITSMITH_CASE(kUint8) BITSMITH_CASE(kInt4) BITSMITH_CASE(kUint4)
#undef BITSMITH_CASE
    case ElementFormatId::kF16:
      return Decode16Loop<Half16::kF16, true>(static_cast<const uint16_t*>(in), out, n);
    default:
      return;
  }
}

// <= 8-bit formats: y = f32(code) * scale, stored as f32, bf16 or f16.
inline void DecodeScaledBody(int fmt, const uint8_t* in, float scale, void* out, size_t n, int kind) {
  switch (static_cast<ElementFormatId>(fmt)) {
#define BITSMITH_CASE(F)                                                                    \
  case ElementFormatId::F:                                                                  \
    if (kind == 0) return DecodeF32Loop<ElementFormatId::F, ScaledOut::kF32, true>(in, scale, out, n);  \
    if (kind == 1) return DecodeF32Loop<ElementFormatId::F, ScaledOut::kBF16, true>(in, scale, out, n); \
    return DecodeF32Loop<ElementFormatId::F, ScaledOut::kF16, true>(in, scale, out, n);
    BITSMITH_ELEMENT_SMALL_FORMATS(BITSMITH_CASE)
#undef BITSMITH_CASE
    default:
      return;
  }
}

// The exported kernels end with vzeroupper (as the quantizers do, see
// codecs/quant_k-inl.h ZeroUpper): GCC emits none under Highway's target
// pragmas, and legacy-SSE code running afterwards -- bitsmith's own
// baseline-compiled scalar code, or a library such as ggml -- would otherwise
// pay the dirty-upper-state penalty on every instruction.
HWY_INLINE void ZeroUpperElem() {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  _mm256_zeroupper();
#endif
}

inline void EncodeF32Simd(int fmt, const float* in, void* out, size_t n, bool saturate) {
  EncodeF32Body(fmt, in, out, n, saturate);
  ZeroUpperElem();
}
inline void EncodeDividedSimd(int fmt, const float* in, float scale, uint8_t* out, size_t n, bool saturate) {
  EncodeDividedBody(fmt, in, scale, out, n, saturate);
  ZeroUpperElem();
}
inline uint32_t MaxAbsBitsSimd(const float* in, size_t n) {
  const uint32_t r = MaxAbsBitsLoop(in, n);
  ZeroUpperElem();
  return r;
}
inline void DecodeToF32Simd(int fmt, const void* in, float* out, size_t n) {
  DecodeToF32Body(fmt, in, out, n);
  ZeroUpperElem();
}

inline void DecodeToBF16Simd(int fmt, const void* in, uint16_t* out, size_t n) {
  DecodeToBF16Body(fmt, in, out, n);
  ZeroUpperElem();
}

inline void DecodeScaledSimd(int fmt, const uint8_t* in, float scale, void* out, size_t n, int kind) {
  DecodeScaledBody(fmt, in, scale, out, n, kind);
  ZeroUpperElem();
}

}  // namespace HWY_NAMESPACE
}  // namespace bitsmith
HWY_AFTER_NAMESPACE();

#endif  // BITSMITH_CODECS_ELEMENT_INL_H_
