// Fused block-scaled FP8 row kernel (codecs/fp8_scale.h): scalar reference,
// Highway kernel, dispatch. Layout after hwy/examples/skeleton.cc; the
// per-element work is codecs/element-inl.h's DecodeF32Unit, the very unit the
// segment kernels (DecodeScaledToBF16, ...) run, so both agree bit for bit.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "codecs/fp8_scale.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
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

inline bool DecodeScaledRowSimd(int fmt, const uint8_t* in, size_t n, const float* scales, size_t bn, int to,
                                void* out) {
  bool nonfinite = false;
  switch (static_cast<ElementFormatId>(fmt)) {
#define BITSMITH_CASE(F, kThreshold)                                                                   \
  case ElementFormatId::F:                                                                            \
    if (to == 0) ScaledRowLoop<ElementFormatId::F, ScaledOut::kF32>(in, n, scales, bn, out);          \
    else if (to == 1) ScaledRowLoop<ElementFormatId::F, ScaledOut::kBF16>(in, n, scales, bn, out);    \
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
