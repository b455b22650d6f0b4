// SIMD q6_k quantizer (Highway, dynamic dispatch), byte-identical to
// QuantizeBlockQ6K in codecs/quant_k_ref.cc (ggml's quantize_row_q6_K_ref and
// quantize_row_q6_K_impl). One super-block per lane for the 16 make_qx_quants
// searches (codecs/quant_k-inl.h), natural layout for requantization.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "codecs/quant_k_q6.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "codecs/quant_k-inl.h"
#include "codecs/quant_k.h"

HWY_BEFORE_NAMESPACE();
namespace bitsmith::kquant::HWY_NAMESPACE {

template <bool kImatrix>
HWY_INLINE void QuantizeQ6KBatch(size_t valid, const float* HWY_RESTRICT x0,
    const int32_t* HWY_RESTRICT x_offsets, const float* HWY_RESTRICT imatrix,
    const int32_t* HWY_RESTRICT qw_offsets,
                                 BlockQ6K* HWY_RESTRICT y) {
  const DF d;
  const DI di;
  const size_t N = hn::Lanes(d);
  HWY_ALIGN float xt[kQK_K * kMaxN];
  HWY_ALIGN float qwt[kImatrix ? kQK_K * kMaxN : 1];
  HWY_ALIGN float scratch[2 * 16 * kMaxN];
  HWY_ALIGN float scales[16 * kMaxN], lev_iscale[16 * kMaxN];
  Transpose(x0, x_offsets, kQK_K, xt);
  if constexpr (kImatrix) Transpose(imatrix, qw_offsets, kQK_K, qwt);
  // 1. make_qx_quants (nmax 32; w = x^2, or the raw importance weights) per
  //    sub-block; keep the scale of largest magnitude, with its sign.
  VF max_scale = hn::Zero(d), max_abs_scale = hn::Zero(d);
  for (int ib = 0; ib < 16; ++ib) {
    const QxLanes fit = QxFitLanes(16, 32, xt + 16 * ib * N, kImatrix ? qwt + 16 * ib * N : nullptr,
                                   scratch);
    hn::Store(fit.scale, d, scales + ib * N);
    hn::Store(fit.lev_iscale, d, lev_iscale + ib * N);
    const VF abs_scale = hn::Abs(fit.scale);
    const MF gt = hn::Gt(abs_scale, max_abs_scale);
    max_abs_scale = hn::IfThenElse(gt, abs_scale, max_abs_scale);
    max_scale = hn::IfThenElse(gt, fit.scale, max_scale);
  }
  HWY_ALIGN float zero_block[kMaxN];
  hn::Store(hn::IfThenElseZero(hn::Lt(max_abs_scale, hn::Set(d, quant::kGroupMaxEps)), hn::Set(d, 1.f)),
            d, zero_block);
  // 2. int8 scales against d = 1/iscale, iscale = -128/max_scale.
  const VF iscale = hn::Div(hn::Set(d, -128.f), max_scale);
  HWY_ALIGN uint16_t d_bits[kMaxN];
  HWY_ALIGN float d_back[kMaxN];
  ToF16Lanes(hn::Div(hn::Set(d, 1.f), iscale), d_bits, d_back);
  HWY_ALIGN int32_t sc_lanes[16 * kMaxN];
  for (int ib = 0; ib < 16; ++ib)
    hn::Store(hn::Min(NearestIntV(d, hn::Mul(iscale, hn::Load(d, scales + ib * N))), hn::Set(di, 127)),
              di, sc_lanes + ib * N);
  // 3.-4. Per block: requantize from fp16 d * sc, pack.
  for (size_t b = 0; b < valid; ++b) {
    BlockQ6K& blk = y[b];
    if (zero_block[b] != 0) {  // ggml: memset 0, d = fp16(0)
      std::memset(&blk, 0, sizeof blk);
      blk.d.set_f32(0.f);
      continue;
    }
    const float* HWY_RESTRICT x = x0 + kQK_K * b;
    blk.d.set_bits(d_bits[b]);
    for (int ib = 0; ib < 16; ++ib) blk.scales[ib] = static_cast<int8_t>(sc_lanes[ib * N + b]);
    uint8_t L[kQK_K];
    for (int j = 0; j < 16; ++j) {
      const float dd = d_back[b] * static_cast<float>(blk.scales[j]);
      if (dd == 0) {
        RegenerateQxLevels(x + 16 * j, 16, lev_iscale[j * N + b], 32, L + 16 * j);
        continue;
      }
      RequantizeRun(x + 16 * j, 16, dd, 0.f, -32, 31, 32, false, L + 16 * j);
    }
    PackQ6KLevelsV(L, blk.ql, blk.qh);
  }
}

void QuantizeQ6KImpl(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const float* imatrix) {
  BlockQ6K* y = static_cast<BlockQ6K*>(dst);
  ForEachBatch(src, nrows, n_per_row, [&](int64_t b0, size_t valid, const float* x0, const int32_t* x_offs,
                                                const int32_t* qw_offs) {
    if (imatrix != nullptr) QuantizeQ6KBatch<true>(valid, x0, x_offs, imatrix, qw_offs, y + b0);
    else QuantizeQ6KBatch<false>(valid, x0, x_offs, nullptr, qw_offs, y + b0);
  });
  ZeroUpper();
}

}  // namespace bitsmith::kquant::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace bitsmith::kquant {
HWY_EXPORT(QuantizeQ6KImpl);
void QuantizeQ6KSimd(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const float* imatrix) {
  HWY_DYNAMIC_DISPATCH(QuantizeQ6KImpl)(src, dst, nrows, n_per_row, imatrix);
}
}  // namespace bitsmith::kquant
#endif  // HWY_ONCE
