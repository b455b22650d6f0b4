// SIMD q2_k quantizer (Highway, dynamic dispatch), byte-identical to
// QuantizeBlockQ2K / QuantizeBlockQ2KImatrix in codecs/quant_k_ref.cc (ggml's
// quantize_row_q2_K_ref and quantize_row_q2_K_impl). One super-block per lane
// for the 16 sub-block searches and the make_qp_quants scale fits
// (codecs/quant_k-inl.h), natural layout for requantization.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "codecs/quant_k_q2.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "codecs/quant_k-inl.h"
#include "codecs/quant_k.h"

HWY_BEFORE_NAMESPACE();
namespace bitsmith::kquant::HWY_NAMESPACE {

template <bool kImatrix>
HWY_INLINE void QuantizeQ2KBatch(size_t valid, const float* HWY_RESTRICT x0,
    const int32_t* HWY_RESTRICT x_offsets, const float* HWY_RESTRICT imatrix,
    const int32_t* HWY_RESTRICT qw_offsets,
                                 BlockQ2K* HWY_RESTRICT y) {
  const DF d;
  const DI di;
  const size_t N = hn::Lanes(d);
  HWY_ALIGN float xt[kQK_K * kMaxN];
  HWY_ALIGN float qwt[kImatrix ? kQK_K * kMaxN : 1];
  HWY_ALIGN float wt[16 * kMaxN];
  HWY_ALIGN float scratch[16 * kMaxN];
  HWY_ALIGN float scales[16 * kMaxN], mins[16 * kMaxN], sw[16 * kMaxN];
  HWY_ALIGN float lev_iscale[16 * kMaxN], lev_min[16 * kMaxN];
  Transpose(x0, x_offsets, kQK_K, xt);
  // 1. Per sub-block search: make_qkx2_quants (weights |x|, mean absolute
  //    error) or, with an imatrix, make_qkx3_quants (weights qw * sqrt(sigma2 +
  //    x^2), sigma2 = mean x^2 of the super-block).
  VF sigma2 = hn::Zero(d);
  if constexpr (kImatrix) {
    Transpose(imatrix, qw_offsets, kQK_K, qwt);
    VF sumx2 = hn::Zero(d);
    for (int e = 0; e < kQK_K; ++e) {
      const VF x = hn::Load(d, xt + e * N);
      sumx2 = hn::Add(sumx2, hn::Mul(x, x));
    }
    sigma2 = hn::Div(sumx2, hn::Set(d, static_cast<float>(kQK_K)));
  }
  for (int j = 0; j < 16; ++j) {
    const float* HWY_RESTRICT xs = xt + 16 * j * N;
    MinMaxLanes fit;
    if constexpr (kImatrix) {
      VF sumw = hn::Zero(d);
      for (int l = 0; l < 16; ++l) {
        const VF x = hn::Load(d, xs + l * N);
        const VF w = hn::Mul(hn::Load(d, qwt + (16 * j + l) * N),
                             hn::Sqrt(hn::Add(sigma2, hn::Mul(x, x))));
        hn::Store(w, d, wt + l * N);
        sumw = hn::Add(sumw, w);
      }
      hn::Store(sumw, d, sw + j * N);
      fit = MinMaxFitLanes<true, false>(16, quant::ImatrixMinMaxSearch(3), xs, wt, scratch);
    } else {
      for (int l = 0; l < 16; ++l) hn::Store(hn::Abs(hn::Load(d, xs + l * N)), d, wt + l * N);
      fit = MinMaxFitLanes<false, true>(16, quant::kQ2KRefSearch, xs, wt, scratch);
    }
    hn::Store(fit.scale, d, scales + j * N);
    hn::Store(fit.the_min, d, mins + j * N);
    hn::Store(fit.lev_iscale, d, lev_iscale + j * N);
    hn::Store(fit.lev_min, d, lev_min + j * N);
  }
  // 2. 4-bit scales (low nibble) and mins (high nibble), d and dmin.
  HWY_ALIGN int32_t packed[16 * kMaxN];
  VF d_all, dmin_all;
  if constexpr (kImatrix) {
    VI ls[16], lm[16];
    d_all = QpFitLanes(16, 15, scales, sw, ls);
    dmin_all = QpFitLanes(16, 15, mins, sw, lm);
    for (int j = 0; j < 16; ++j)
      hn::Store(hn::Or(ls[j], hn::ShiftLeft<4>(lm[j])), di, packed + j * N);
  } else {
    VF max_scale = hn::Zero(d), max_min = hn::Zero(d);
    for (int j = 0; j < 16; ++j) {
      max_scale = KeepGreater(max_scale, hn::Load(d, scales + j * N));
      max_min = KeepGreater(max_min, hn::Load(d, mins + j * N));
    }
    const VF q4scale = hn::Set(d, 15.f);
    const MF has_scale = hn::Gt(max_scale, hn::Zero(d)), has_min = hn::Gt(max_min, hn::Zero(d));
    const VF iscale = hn::Div(q4scale, max_scale), imin = hn::Div(q4scale, max_min);
    for (int j = 0; j < 16; ++j) {
      // ggml: scales[j] = (uint8) l, then scales[j] |= (uint8)(m << 4), each only
      // when its maximum is positive.
      const VI l = hn::IfThenElseZero(hn::RebindMask(di, has_scale),
                                      NearestIntV(d, hn::Mul(iscale, hn::Load(d, scales + j * N))));
      const VI m = hn::IfThenElseZero(hn::RebindMask(di, has_min),
                                      NearestIntV(d, hn::Mul(imin, hn::Load(d, mins + j * N))));
      hn::Store(hn::Or(WrapU8(l), WrapU8(hn::ShiftLeft<4>(m))), di, packed + j * N);
    }
    d_all = hn::IfThenElseZero(has_scale, hn::Div(max_scale, q4scale));
    dmin_all = hn::IfThenElseZero(has_min, hn::Div(max_min, q4scale));
  }
  HWY_ALIGN uint16_t d_bits[kMaxN], dmin_bits[kMaxN];
  HWY_ALIGN float d_back[kMaxN], dmin_back[kMaxN];
  ToF16Lanes(d_all, d_bits, d_back);
  ToF16Lanes(dmin_all, dmin_bits, dmin_back);
  // 3.-4. Per block: requantize from the fp16 scales, pack.
  for (size_t b = 0; b < valid; ++b) {
    BlockQ2K& blk = y[b];
    const float* HWY_RESTRICT x = x0 + kQK_K * b;
    for (int j = 0; j < 16; ++j) blk.scales[j] = static_cast<uint8_t>(packed[j * N + b]);
    blk.d.set_bits(d_bits[b]);
    blk.dmin.set_bits(dmin_bits[b]);
    uint8_t L[kQK_K];
    for (int j = 0; j < 16; ++j) {
      const float dd = d_back[b] * static_cast<float>(UnpackQ2KScale(blk.scales[j]));
      if (dd == 0) {
        RegenerateMinMaxLevels(x + 16 * j, 16, lev_iscale[j * N + b], lev_min[j * N + b], 3,
                               L + 16 * j);
        continue;
      }
      const float dm = dmin_back[b] * static_cast<float>(UnpackQ2KMin(blk.scales[j]));
      RequantizeRun(x + 16 * j, 16, dd, dm, 0, 3, 0, true, L + 16 * j);
    }
    Pack2BitLevelsV(L, blk.qs);
  }
}

void QuantizeQ2KImpl(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const float* imatrix) {
  BlockQ2K* y = static_cast<BlockQ2K*>(dst);
  ForEachBatch(src, nrows, n_per_row, [&](int64_t b0, size_t valid, const float* x0, const int32_t* x_offs,
                                                const int32_t* qw_offs) {
    if (imatrix != nullptr) QuantizeQ2KBatch<true>(valid, x0, x_offs, imatrix, qw_offs, y + b0);
    else QuantizeQ2KBatch<false>(valid, x0, x_offs, nullptr, qw_offs, y + b0);
  });
  ZeroUpper();
}

}  // namespace bitsmith::kquant::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace bitsmith::kquant {
HWY_EXPORT(QuantizeQ2KImpl);
void QuantizeQ2KSimd(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const float* imatrix) {
  HWY_DYNAMIC_DISPATCH(QuantizeQ2KImpl)(src, dst, nrows, n_per_row, imatrix);
}
}  // namespace bitsmith::kquant
#endif  // HWY_ONCE
