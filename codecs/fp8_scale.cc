// Fused block-scaled FP8 row kernel (codecs/fp8_scale.h): scalar reference,
// Highway kernels, dispatch. Layout after hwy/examples/skeleton.cc. BF16 rows
// (the DeepSeek fp8_cast_bf16 job) take the fast path below; F32 / F16 rows,
// rows with a NaN / inf code and blocks with a non-finite scale take the
// general path, codecs/element-inl.h's DecodeF32Unit, the very unit the
// segment kernels (DecodeScaledToBF16, ...) run. Both equal the scalar
// reference bit for bit (tests/codecs/fp8_scale_test.cc, every target).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "codecs/fp8_scale.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <cmath>    // std::isfinite
#include <cstring>  // std::memcpy
#include <hwy/highway.h>

#include "codecs/element-inl.h"

HWY_BEFORE_NAMESPACE();
namespace bitsmith {
namespace HWY_NAMESPACE {

// One row: per scale block, whole units of 2 * Lanes(f32) codes, then the
// block's tail staged in zero-padded buffers and run through the same unit.
template <ElementFormatId kId, ScaledOut kOut>
HWY_NOINLINE void ScaledRowLoop(const uint8_t* HWY_RESTRICT in, size_t n, const float* HWY_RESTRICT scales,
                                size_t bn, void* HWY_RESTRICT out) {
  const size_t N2 = 2 * hn::Lanes(hn::ScalableTag<float>());
  constexpr size_t kOutBytes = kOut == ScaledOut::kF32 ? 4 : 2;
  for (size_t j0 = 0, b = 0; j0 < n; j0 += bn, ++b) {
    const size_t len = n - j0 < bn ? n - j0 : bn;
    const float s = scales[b];
    size_t i = 0;
    // 1. y = f32(code) * s (one multiply, RNE), rounded to the target.
    for (; i + N2 <= len; i += N2) DecodeF32Unit<kId, kOut, true>(in + j0 + i, s, out, j0 + i);
    if (i < len) {
      HWY_ALIGN uint8_t buf[2 * kMaxVecBytes / sizeof(float)] = {};
      HWY_ALIGN uint8_t obuf[2 * kMaxVecBytes];
      std::memcpy(buf, in + j0 + i, len - i);
      DecodeF32Unit<kId, kOut, true>(buf, s, obuf, 0);
      std::memcpy(static_cast<uint8_t*>(out) + (j0 + i) * kOutBytes, obuf, (len - i) * kOutBytes);
    }
  }
}

// 2. max over j of (code & 0x7F): the non-finite codes are the top of that
//    range (>= 0x7F for e4m3fn, >= 0x7C for e5m2). The codes are still in L1.
HWY_INLINE uint8_t MaxMagnitudeCode(const uint8_t* HWY_RESTRICT in, size_t n) {
  const hn::ScalableTag<uint8_t> d8;
  const size_t N = hn::Lanes(d8);
  const auto mask = hn::Set(d8, uint8_t{0x7F});
  auto m = hn::Zero(d8);
  size_t i = 0;
  for (; i + N <= n; i += N) m = hn::Max(m, hn::And(hn::LoadU(d8, in + i), mask));
  if (i < n) {
    HWY_ALIGN uint8_t buf[kMaxVecBytes] = {};
    std::memcpy(buf, in + i, n - i);
    m = hn::Max(m, hn::And(hn::Load(d8, buf), mask));
  }
  HWY_ALIGN uint8_t lanes[kMaxVecBytes];
  hn::Store(m, d8, lanes);
  uint8_t r = 0;
  for (size_t k = 0; k < N; ++k) r = lanes[k] > r ? lanes[k] : r;
  return r;
}

// ---------------------------------------------------------------------------
// The BF16 fast path: finite codes (the row has no NaN / inf code) and a
// finite block scale -- every element of a real checkpoint.
//
// The value is y = f32(decode(code)) * scale (one f32 multiply, RNE), then
// bf16(y) by round-to-nearest-even on its bit pattern (formats/half.h
// F32ToBF16Bits): the scalar oracle's two roundings, in the same order. y is
// never NaN here (finite code times finite scale; 0 * inf cannot occur), so
// the oracle's NaN branch is never taken and the rounding is one integer add:
//   bf16(y) = (bits(y) + 0x7FFF + ((bits(y) >> 16) & 1)) >> 16,
// which is also right for y = +-inf (0x7F80'0000 -> 0x7F80) and for an f32
// that overflows bf16 (carries into the exponent, giving inf).
//
// Steps per unit of Lanes(u8) codes:
//  1. Permute the codes' 64-bit quarters so that the per-128-bit-block
//     InterleaveLower/Upper of step 3 come out in memory order.
//  2. Decode to the two bytes of the bf16 bits (exact: bf16 has f32's
//     exponent range and 7 >= M mantissa bits), in 8-bit lanes with 16-entry
//     byte tables (TableLookupBytes), on the code's fields
//     c = s | e (E bits) | m (M bits), bias B:
//       normal (e > 0): bf16 = s<<15 | (e + 127 - B)<<7 | m<<(7-M). 127 - B is
//         even (120, 112), so the high byte is s<<7 | (e>>1) + (127-B)/2 --
//         a table on e>>1 -- and the low byte (e&1)<<7 | m<<(7-M) depends on
//         the code's low nibble only (E + M = 7 and M <= 3);
//       subnormal (e = 0): the bf16 bits of m * 2^(1-B-M), a table on m.
//  3. Interleave low and high bytes into 16-bit lanes: bf16 bits in order.
//  4. Each 16-bit vector as two f32 vectors without any shuffle: its even
//     lanes shifted into the upper halves, its odd lanes masked in place.
//  5. Multiply by the scale, round as above, and put the two halves back
//     (the odd results are already in the upper 16 bits): OddEven.
// ---------------------------------------------------------------------------
#if HWY_TARGET != HWY_SCALAR && !HWY_HAVE_SCALABLE

// The four 16-byte tables of step 2 for format kId (one 128-bit block each).
template <ElementFormatId kId>
struct Bf16ByteTables {
  static constexpr const ElementFormat& f = GetElementFormat(kId);
  static constexpr int M = f.mantissa_bits;
  static constexpr int E = f.exponent_bits;
  static_assert(E + M == 7 && M <= 3 && E - 1 <= 4 && (127 - f.bias) % 2 == 0,
                "an 8-bit float format whose bf16 bytes split on nibbles");
  struct Bytes {
    uint8_t normal_lo[16];  // by the low nibble c & 0xF
    uint8_t normal_hi[16];  // by e >> 1 (sign not included)
    uint8_t sub_lo[16];     // by the low nibble (= m when e = 0)
    uint8_t sub_hi[16];
  };
  static constexpr Bytes Make() {
    Bytes t{};
    for (uint32_t i = 0; i < 16; ++i) {
      const uint32_t e0 = (i >> M) & 1, m = i & ((1u << M) - 1);
      t.normal_lo[i] = static_cast<uint8_t>((e0 << 7) | (m << (7 - M)));
      t.normal_hi[i] = static_cast<uint8_t>(i + (127 - f.bias) / 2);  // i < 2^(E-1) used
      const uint16_t sub = F32ToBF16Bits(static_cast<float>(f.Value(m)));  // exact
      t.sub_lo[i] = static_cast<uint8_t>(sub & 0xFF);
      t.sub_hi[i] = static_cast<uint8_t>(sub >> 8);
    }
    return t;
  }
  HWY_ALIGN static constexpr Bytes kBytes = Make();
};

// Step 1's permutation: quarter i of the result is half i % 2 of block i / 2
// of the output order, i.e. input quarter (i % 2) * (N64 / 2) + i / 2
// (the identity for 128-bit vectors).
template <class D64>
HWY_INLINE auto QuarterPermutation(D64 d64) {
  const size_t n64 = hn::Lanes(d64);
  HWY_ALIGN int64_t idx[kMaxVecBytes / sizeof(int64_t) + 2] = {};
  for (size_t i = 0; i < n64; ++i) idx[i] = static_cast<int64_t>((i % 2) * (n64 / 2) + i / 2);
  return hn::SetTableIndices(d64, idx);
}

// The loop's constants (step 1's permutation, step 2's tables), built once
// per row in the row loop and passed to the unit, so they stay in registers.
template <class D8, class Perm>
struct FastBf16Consts {
  Perm perm;
  hn::Vec<D8> normal_lo, normal_hi, sub_lo, sub_hi;
};

// bf16 rounding (RNE) of non-NaN f32 bits, result in the upper 16 bits.
template <class DU>
HWY_INLINE hn::Vec<DU> RoundToBf16Upper(DU du, hn::Vec<DU> x) {
  return hn::Add(hn::Add(x, hn::Set(du, 0x7FFFu)), hn::And(hn::ShiftRight<16>(x), hn::Set(du, 1u)));
}

// Steps 4-5 for one 16-bit vector of bf16 bits.
template <class D16, class DF>
HWY_INLINE hn::Vec<D16> ScaleRoundBf16(D16 d16, DF df, hn::Vec<D16> bits, hn::Vec<DF> scale) {
  const hn::RebindToUnsigned<DF> du;
  const auto w = hn::BitCast(du, bits);
  const auto even = hn::Mul(hn::BitCast(df, hn::ShiftLeft<16>(w)), scale);
  const auto odd = hn::Mul(hn::BitCast(df, hn::And(w, hn::Set(du, 0xFFFF0000u))), scale);
  return hn::OddEven(hn::BitCast(d16, RoundToBf16Upper(du, hn::BitCast(du, odd))),
                     hn::BitCast(d16, hn::ShiftRight<16>(RoundToBf16Upper(du, hn::BitCast(du, even)))));
}

// Steps 1-5 for Lanes(u8) codes at src -> bf16 at dst.
template <ElementFormatId kId, class D8, class Perm>
HWY_INLINE void FastBf16Unit(D8 d8, const FastBf16Consts<D8, Perm>& k, const uint8_t* HWY_RESTRICT src,
                             hn::Vec<hn::Repartition<float, D8>> scale, uint16_t* HWY_RESTRICT dst,
                             hn::Vec<D8>& max_mag) {
  constexpr int M = Bf16ByteTables<kId>::M;
  constexpr int E = Bf16ByteTables<kId>::E;
  const hn::Repartition<uint64_t, D8> d64;
  const hn::Repartition<uint16_t, decltype(d8)> d16;
  const hn::Repartition<float, decltype(d8)> df;
  // 1. Memory order -> block order.
  auto c = hn::LoadU(d8, src);
  if (hn::Lanes(d8) > 16) c = hn::BitCast(d8, hn::TableLookupLanes(hn::BitCast(d64, c), k.perm));
  max_mag = hn::Max(max_mag, hn::And(c, hn::Set(d8, uint8_t{0x7F})));  // for the NaN-code check
  // 2. The two bytes of the bf16 bits.
  const auto nib = hn::And(c, hn::Set(d8, uint8_t{0x0F}));
  const auto is_sub = hn::Eq(hn::And(c, hn::Set(d8, static_cast<uint8_t>(0x7F & ~((1u << M) - 1)))), hn::Zero(d8));
  const auto e_hi = hn::And(hn::ShiftRight<M + 1>(c), hn::Set(d8, static_cast<uint8_t>((1u << (E - 1)) - 1)));
  const auto lo = hn::IfThenElse(is_sub, hn::TableLookupBytes(k.sub_lo, nib), hn::TableLookupBytes(k.normal_lo, nib));
  const auto hi = hn::Or(hn::IfThenElse(is_sub, hn::TableLookupBytes(k.sub_hi, nib), hn::TableLookupBytes(k.normal_hi, e_hi)),
                         hn::And(c, hn::Set(d8, uint8_t{0x80})));
  // 3. bf16 bits in memory order; 4-5. scaled and rounded.
  const auto b0 = hn::BitCast(d16, hn::InterleaveLower(d8, lo, hi));
  const auto b1 = hn::BitCast(d16, hn::InterleaveUpper(d8, lo, hi));
  hn::StoreU(ScaleRoundBf16(d16, df, b0, scale), d16, dst);
  hn::StoreU(ScaleRoundBf16(d16, df, b1, scale), d16, dst + hn::Lanes(d16));
}

// One row through the fast path; blocks with a non-finite scale go through
// the general unit (their products may be NaN). Returns the row's largest
// code & 0x7F (the NaN-code check of the general path, folded into the loop:
// a row with a non-finite code must be redone by the general path).
template <ElementFormatId kId>
HWY_NOINLINE uint8_t FastBf16RowLoop(const uint8_t* HWY_RESTRICT in, size_t n, const float* HWY_RESTRICT scales,
                                     size_t bn, uint16_t* HWY_RESTRICT out) {
  using T = Bf16ByteTables<kId>;
  using D8 = hn::ScalableTag<uint8_t>;
  const D8 d8;
  const hn::Repartition<float, D8> df;
  const hn::Repartition<uint64_t, D8> d64;
  const FastBf16Consts<D8, decltype(QuarterPermutation(d64))> k{
      QuarterPermutation(d64), hn::LoadDup128(d8, T::kBytes.normal_lo), hn::LoadDup128(d8, T::kBytes.normal_hi),
      hn::LoadDup128(d8, T::kBytes.sub_lo), hn::LoadDup128(d8, T::kBytes.sub_hi)};
  const size_t N = hn::Lanes(d8);
  auto max_mag = hn::Zero(d8);
  uint8_t max_other = 0;  // of the blocks the general unit did
  for (size_t j0 = 0, b = 0; j0 < n; j0 += bn, ++b) {
    const size_t len = n - j0 < bn ? n - j0 : bn;
    const float s = scales[b];
    if (!std::isfinite(s)) {  // inf or NaN: products may be NaN
      ScaledRowLoop<kId, ScaledOut::kBF16>(in + j0, len, &s, len, out + j0);
      const uint8_t m = MaxMagnitudeCode(in + j0, len);
      max_other = m > max_other ? m : max_other;
      continue;
    }
    const auto vs = hn::Set(df, s);
    size_t i = 0;
    for (; i + N <= len; i += N) FastBf16Unit<kId>(d8, k, in + j0 + i, vs, out + j0 + i, max_mag);
    if (i < len) {  // the block's tail, staged (zero codes decode to +0)
      HWY_ALIGN uint8_t buf[kMaxVecBytes] = {};
      HWY_ALIGN uint16_t obuf[kMaxVecBytes];
      std::memcpy(buf, in + j0 + i, len - i);
      FastBf16Unit<kId>(d8, k, buf, vs, obuf, max_mag);
      std::memcpy(out + j0 + i, obuf, (len - i) * sizeof(uint16_t));
    }
  }
  HWY_ALIGN uint8_t lanes[kMaxVecBytes];
  hn::Store(max_mag, d8, lanes);
  for (size_t i = 0; i < N; ++i) max_other = lanes[i] > max_other ? lanes[i] : max_other;
  return max_other;
}
#endif  // fast path

// BF16 rows: the fast path; a row with a non-finite code (a corrupt
// checkpoint, or --allow-nonfinite) is redone by the general path. Returns
// whether the row has a non-finite code (max of code & 0x7F >= threshold).
template <ElementFormatId kId>
HWY_INLINE bool BF16Row(const uint8_t* in, size_t n, const float* scales, size_t bn, uint8_t threshold, void* out) {
#if HWY_TARGET != HWY_SCALAR && !HWY_HAVE_SCALABLE
  if (FastBf16RowLoop<kId>(in, n, scales, bn, static_cast<uint16_t*>(out)) < threshold) return false;
  ScaledRowLoop<kId, ScaledOut::kBF16>(in, n, scales, bn, out);
  return true;
#else
  ScaledRowLoop<kId, ScaledOut::kBF16>(in, n, scales, bn, out);
  return MaxMagnitudeCode(in, n) >= threshold;
#endif
}

inline bool DecodeScaledRowSimd(int fmt, const uint8_t* in, size_t n, const float* scales, size_t bn, int to,
                                void* out) {
  bool nonfinite = false;
  switch (static_cast<ElementFormatId>(fmt)) {
#define BITSMITH_CASE(F, kThreshold)                                                                   \
  case ElementFormatId::F:                                                                            \
    if (to == 1) {                                                                                    \
      nonfinite = BF16Row<ElementFormatId::F>(in, n, scales, bn, (kThreshold), out);                  \
      break;                                                                                          \
    }                                                                                                 \
    if (to == 0) ScaledRowLoop<ElementFormatId::F, ScaledOut::kF32>(in, n, scales, bn, out);          \
    else ScaledRowLoop<ElementFormatId::F, ScaledOut::kF16>(in, n, scales, bn, out);                  \
    nonfinite = MaxMagnitudeCode(in, n) >= (kThreshold);                                              \
    break;
    BITSMITH_CASE(kE4M3FN, 0x7F)
    BITSMITH_CASE(kE5M2, 0x7C)
#undef BITSMITH_CASE
    default:
      break;
  }
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  _mm256_zeroupper();  // as the element kernels (element-inl.h ZeroUpperElem)
#endif
  return nonfinite;
}

}  // namespace HWY_NAMESPACE
}  // namespace bitsmith
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <cassert>

#include "codecs/fp8_scale.h"
#include "formats/half.h"

namespace bitsmith {

HWY_EXPORT(DecodeScaledRowSimd);

bool DecodeScaledRow(ElementFormatId from, const uint8_t* in, size_t n, const float* scales, size_t bn,
                     ScaledTarget to, void* out, Impl impl) {
  if (n == 0) return false;
  assert(from == ElementFormatId::kE4M3FN || from == ElementFormatId::kE5M2);
  assert(bn >= 1);
  if (impl == Impl::kSimd)
    return HWY_DYNAMIC_DISPATCH(DecodeScaledRowSimd)(static_cast<int>(from), in, n, scales, bn,
                                                     static_cast<int>(to), out);
  // The scalar reference: the segment composition, element by element.
  const uint8_t threshold = from == ElementFormatId::kE4M3FN ? 0x7F : 0x7C;
  bool nonfinite = false;
  for (size_t j = 0; j < n; ++j) {
    const float y = DecodeToF32Ref(from, in[j]) * scales[j / bn];  // one f32 multiply
    switch (to) {
      case ScaledTarget::kF32: static_cast<float*>(out)[j] = y; break;
      case ScaledTarget::kBF16: static_cast<uint16_t*>(out)[j] = F32ToBF16Bits(y); break;
      case ScaledTarget::kF16: static_cast<uint16_t*>(out)[j] = F32ToF16Bits(y); break;
    }
    nonfinite |= (in[j] & 0x7F) >= threshold;
  }
  return nonfinite;
}

}  // namespace bitsmith
#endif  // HWY_ONCE
