// SIMD k-quant dequantizers (Highway, dynamic dispatch), bit-identical to
// DequantizeQ{2..6}KRef in codecs/quant_k_ref.cc (ggml's dequantize_row_qN_K).
//
// Dequantization is element-wise, so it is vectorised inside a block: for
// each sub-block the scalar factors ggml computes once (d * sc, dmin * m) are
// computed the same way in scalar code and broadcast; each element is then
// (factor * float(level)) - min_factor, the same two float operations in the
// same order (layouts and formulas: formats/blocks_k.h). Levels are unpacked
// with integer ops on bytes promoted to int32 lanes. Any byte pattern is valid
// input (NaN/inf fp16 scales propagate exactly as in ggml).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "codecs/quant_k_dequant.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "codecs/quant_k-inl.h"
#include "codecs/quant_k.h"

HWY_BEFORE_NAMESPACE();
namespace bitsmith::kquant::HWY_NAMESPACE {

using DU8N = hn::Rebind<uint8_t, DI>;  // N bytes, promoted to N int32 lanes

// N consecutive bytes as int32 lanes.
HWY_INLINE VI LoadBytes(const uint8_t* HWY_RESTRICT p) {
  return hn::PromoteTo(DI(), hn::LoadU(DU8N(), p));
}

// y = factor * float(q) - offset, stored (the order of ggml's expressions).
HWY_INLINE void StoreAffine(VI q, VF factor, VF offset, float* HWY_RESTRICT y) {
  const DF d;
  hn::StoreU(hn::Sub(hn::Mul(factor, hn::ConvertTo(d, q)), offset), d, y);
}
HWY_INLINE void StoreScaled(VI q, VF factor, float* HWY_RESTRICT y) {
  const DF d;
  hn::StoreU(hn::Mul(factor, hn::ConvertTo(d, q)), d, y);
}

// q2_k: element 128n + 32j + 16h + l = bits 2j.. of qs[32n + 16h + l], sub-block
// 8n + 2j + h: y = (d * (sc & 15)) * q - dmin * (sc >> 4).
void DequantizeQ2KImpl(const void* src, float* HWY_RESTRICT y, int64_t n) {
  const DF d;
  const DI di;
  const int N = static_cast<int>(hn::Lanes(d));
  const BlockQ2K* blocks = static_cast<const BlockQ2K*>(src);
  const VI three = hn::Set(di, 3);
  for (int64_t i = 0; i < n / kQK_K; ++i, y += kQK_K) {
    const BlockQ2K& b = blocks[i];
    const float dall = b.d.f32(), dmin = b.dmin.f32();
    for (int s = 0; s < 16; ++s) {  // sub-block s = 8n + 2j + h
      const int nn = s / 8, j = (s % 8) / 2, h = s % 2;
      const uint8_t sc = b.scales[s];
      const VF dl = hn::Set(d, dall * static_cast<float>(UnpackQ2KScale(sc)));
      const VF ml = hn::Set(d, dmin * static_cast<float>(UnpackQ2KMin(sc)));
      const uint8_t* q = b.qs + 32 * nn + 16 * h;
      for (int l = 0; l < 16; l += N) {
        const VI v = hn::And(hn::ShiftRightSame(LoadBytes(q + l), 2 * j), three);
        StoreAffine(v, dl, ml, y + 16 * s + l);
      }
    }
  }
  ZeroUpper();
}

// q3_k: y = (d * (s_i - 32)) * q, q = low2 - (high bit ? 0 : 4).
void DequantizeQ3KImpl(const void* src, float* HWY_RESTRICT y, int64_t n) {
  const DF d;
  const DI di;
  const int N = static_cast<int>(hn::Lanes(d));
  const BlockQ3K* blocks = static_cast<const BlockQ3K*>(src);
  const VI three = hn::Set(di, 3), one = hn::Set(di, 1), four = hn::Set(di, 4);
  for (int64_t i = 0; i < n / kQK_K; ++i, y += kQK_K) {
    const BlockQ3K& b = blocks[i];
    const float dall = b.d.f32();
    for (int s = 0; s < 16; ++s) {
      const int nn = s / 8, j = (s % 8) / 2, h = s % 2;
      const VF dl = hn::Set(d, dall * static_cast<float>(UnpackQ3KScale(b.scales, s)));
      const uint8_t* q = b.qs + 32 * nn + 16 * h;
      const uint8_t* hm = b.hmask + 16 * h;
      for (int l = 0; l < 16; l += N) {
        const VI low = hn::And(hn::ShiftRightSame(LoadBytes(q + l), 2 * j), three);
        const VI high = hn::And(hn::ShiftRightSame(LoadBytes(hm + l), 4 * nn + j), one);
        // high ? low : low - 4  ==  low - 4 + 4 * high
        const VI v = hn::Add(hn::Sub(low, four), hn::ShiftLeft<2>(high));
        StoreScaled(v, dl, y + 16 * s + l);
      }
    }
  }
  ZeroUpper();
}

// q4_k / q5_k: sub-block 2g (elements 64g + l) = low nibbles of qs[32g + l],
// sub-block 2g + 1 = high nibbles; q5_k adds bit (2g + h) of qh[l] as bit 4.
// y = (d * sc) * q - (dmin * m).
template <bool kQ5>
HWY_INLINE void DequantizeK45(const uint8_t* HWY_RESTRICT scales, float dall, float dmin,
                              const uint8_t* HWY_RESTRICT qs, const uint8_t* HWY_RESTRICT qh,
                              float* HWY_RESTRICT y) {
  const DF d;
  const DI di;
  const int N = static_cast<int>(hn::Lanes(d));
  const VI low_mask = hn::Set(di, 15), one = hn::Set(di, 1);
  for (int g = 0; g < 4; ++g) {
    const ScaleMin s1 = UnpackScaleMinK4(scales, 2 * g), s2 = UnpackScaleMinK4(scales, 2 * g + 1);
    const VF d1 = hn::Set(d, dall * static_cast<float>(s1.scale));
    const VF m1 = hn::Set(d, dmin * static_cast<float>(s1.min));
    const VF d2 = hn::Set(d, dall * static_cast<float>(s2.scale));
    const VF m2 = hn::Set(d, dmin * static_cast<float>(s2.min));
    for (int l = 0; l < 32; l += N) {
      const VI bytes = LoadBytes(qs + 32 * g + l);
      VI lo = hn::And(bytes, low_mask), hi = hn::ShiftRight<4>(bytes);
      if constexpr (kQ5) {
        const VI h = LoadBytes(qh + l);
        lo = hn::Or(lo, hn::ShiftLeft<4>(hn::And(hn::ShiftRightSame(h, 2 * g), one)));
        hi = hn::Or(hi, hn::ShiftLeft<4>(hn::And(hn::ShiftRightSame(h, 2 * g + 1), one)));
      }
      StoreAffine(lo, d1, m1, y + 64 * g + l);
      StoreAffine(hi, d2, m2, y + 64 * g + 32 + l);
    }
  }
}

void DequantizeQ4KImpl(const void* src, float* HWY_RESTRICT y, int64_t n) {
  const BlockQ4K* blocks = static_cast<const BlockQ4K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i, y += kQK_K) {
    const BlockQ4K& b = blocks[i];
    DequantizeK45<false>(b.scales, b.d.f32(), b.dmin.f32(), b.qs, nullptr, y);
  }
  ZeroUpper();
}

void DequantizeQ5KImpl(const void* src, float* HWY_RESTRICT y, int64_t n) {
  const BlockQ5K* blocks = static_cast<const BlockQ5K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i, y += kQK_K) {
    const BlockQ5K& b = blocks[i];
    DequantizeK45<true>(b.scales, b.d.f32(), b.dmin.f32(), b.qs, b.qh, y);
  }
  ZeroUpper();
}

// q6_k: element 128n + 32k + l: low 4 bits from ql[64n + 32(k&1) + l] (low
// nibble for k < 2), high 2 bits = bits 2k.. of qh[32n + l]; q = value - 32,
// y = (d * sc) * q with sc = scales[8n + 2k + l/16].
void DequantizeQ6KImpl(const void* src, float* HWY_RESTRICT y, int64_t n) {
  const DF d;
  const DI di;
  const int N = static_cast<int>(hn::Lanes(d));
  const BlockQ6K* blocks = static_cast<const BlockQ6K*>(src);
  const VI low_mask = hn::Set(di, 15), three = hn::Set(di, 3), bias = hn::Set(di, 32);
  for (int64_t i = 0; i < n / kQK_K; ++i, y += kQK_K) {
    const BlockQ6K& b = blocks[i];
    const float dall = b.d.f32();
    for (int s = 0; s < 16; ++s) {  // sub-block s = 8n + 2k + l/16
      const int nn = s / 8, k = (s % 8) / 2, half = s % 2;
      const VF dl = hn::Set(d, dall * static_cast<float>(b.scales[s]));
      const uint8_t* ql = b.ql + 64 * nn + 32 * (k & 1) + 16 * half;
      const uint8_t* qh = b.qh + 32 * nn + 16 * half;
      for (int l = 0; l < 16; l += N) {
        const VI lb = LoadBytes(ql + l);
        const VI low = k < 2 ? hn::And(lb, low_mask) : hn::ShiftRight<4>(lb);
        const VI high = hn::And(hn::ShiftRightSame(LoadBytes(qh + l), 2 * k), three);
        StoreScaled(hn::Sub(hn::Or(low, hn::ShiftLeft<4>(high)), bias), dl, y + 16 * s + l);
      }
    }
  }
  ZeroUpper();
}

}  // namespace bitsmith::kquant::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace bitsmith::kquant {
HWY_EXPORT(DequantizeQ2KImpl);
HWY_EXPORT(DequantizeQ3KImpl);
HWY_EXPORT(DequantizeQ4KImpl);
HWY_EXPORT(DequantizeQ5KImpl);
HWY_EXPORT(DequantizeQ6KImpl);
void DequantizeQ2KSimd(const void* src, float* dst, int64_t n) {
  HWY_DYNAMIC_DISPATCH(DequantizeQ2KImpl)(src, dst, n);
}
void DequantizeQ3KSimd(const void* src, float* dst, int64_t n) {
  HWY_DYNAMIC_DISPATCH(DequantizeQ3KImpl)(src, dst, n);
}
void DequantizeQ4KSimd(const void* src, float* dst, int64_t n) {
  HWY_DYNAMIC_DISPATCH(DequantizeQ4KImpl)(src, dst, n);
}
void DequantizeQ5KSimd(const void* src, float* dst, int64_t n) {
  HWY_DYNAMIC_DISPATCH(DequantizeQ5KImpl)(src, dst, n);
}
void DequantizeQ6KSimd(const void* src, float* dst, int64_t n) {
  HWY_DYNAMIC_DISPATCH(DequantizeQ6KImpl)(src, dst, n);
}
}  // namespace bitsmith::kquant
#endif  // HWY_ONCE
