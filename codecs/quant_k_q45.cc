// SIMD q4_k and q5_k quantizers (Highway, dynamic dispatch), byte-identical to
// the scalar references SearchK4Ref / SearchK4Imatrix in codecs/quant_k_ref.cc
// (ggml's quantize_row_q{4,5}_K_ref and _impl). One super-block per lane for
// the searches (see codecs/quant_k-inl.h), natural layout for requantization.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "codecs/quant_k_q45.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "codecs/quant_k-inl.h"
#include "codecs/quant_k.h"

HWY_BEFORE_NAMESPACE();
namespace bitsmith::kquant::HWY_NAMESPACE {

// One batch of q4_k (kNmax 15) or q5_k (kNmax 31) super-blocks.
template <int kNmax, bool kImatrix, class Block>
HWY_INLINE void QuantizeK45Batch(size_t valid, const float* HWY_RESTRICT x0,
    const int32_t* HWY_RESTRICT x_offsets, const float* HWY_RESTRICT imatrix,
    const int32_t* HWY_RESTRICT qw_offsets,
                                 Block* HWY_RESTRICT y) {
  const DF d;
  const DI di;
  const size_t N = hn::Lanes(d);
  const quant::MinMaxSearch search =
      kImatrix ? quant::ImatrixMinMaxSearch(kNmax)
               : (kNmax == 15 ? quant::kQ4KRefSearch : quant::kQ5KRefSearch);
  HWY_ALIGN float xt[kQK_K * kMaxN];
  HWY_ALIGN float qwt[kImatrix ? kQK_K * kMaxN : 1];
  HWY_ALIGN float wt[32 * kMaxN];
  HWY_ALIGN float scratch[32 * kMaxN];
  HWY_ALIGN float scales[8 * kMaxN], mins[8 * kMaxN], sw[8 * kMaxN];
  HWY_ALIGN float lev_iscale[8 * kMaxN], lev_min[8 * kMaxN];
  Transpose(x0, x_offsets, kQK_K, xt);
  // Step 1: weights and the per-sub-block search.
  VF sigma2 = hn::Zero(d);
  if constexpr (kImatrix) {
    Transpose(imatrix, qw_offsets, kQK_K, qwt);
    VF sum_x2 = hn::Zero(d);
    for (int e = 0; e < kQK_K; ++e) {
      const VF x = hn::Load(d, xt + e * N);
      sum_x2 = hn::Add(sum_x2, hn::Mul(x, x));
    }
    sigma2 = hn::Div(hn::Mul(hn::Set(d, 2.f), sum_x2), hn::Set(d, static_cast<float>(kQK_K)));
  }
  for (int j = 0; j < 8; ++j) {
    const float* HWY_RESTRICT xs = xt + 32 * j * N;
    if constexpr (kImatrix) {
      // weights = qw * sqrt(sigma2 + x^2); sw = their sum.
      VF sumw = hn::Zero(d);
      for (int l = 0; l < 32; ++l) {
        const VF x = hn::Load(d, xs + l * N);
        const VF w = hn::Mul(hn::Load(d, qwt + (32 * j + l) * N),
                             hn::Sqrt(hn::Add(sigma2, hn::Mul(x, x))));
        hn::Store(w, d, wt + l * N);
        sumw = hn::Add(sumw, w);
      }
      hn::Store(sumw, d, sw + j * N);
    } else {
      // weights = av_x + |x|, av_x = sqrt(sum x^2 / 32).
      VF sum_x2 = hn::Zero(d);
      for (int l = 0; l < 32; ++l) {
        const VF x = hn::Load(d, xs + l * N);
        sum_x2 = hn::Add(sum_x2, hn::Mul(x, x));
      }
      const VF av_x = hn::Sqrt(hn::Div(sum_x2, hn::Set(d, 32.f)));
      for (int l = 0; l < 32; ++l)
        hn::Store(hn::Add(av_x, hn::Abs(hn::Load(d, xs + l * N))), d, wt + l * N);
    }
    const MinMaxLanes fit = MinMaxFitLanes<kImatrix, false>(32, search, xs, wt, scratch);
    hn::Store(fit.scale, d, scales + j * N);
    hn::Store(fit.the_min, d, mins + j * N);
    hn::Store(fit.lev_iscale, d, lev_iscale + j * N);
    hn::Store(fit.lev_min, d, lev_min + j * N);
  }
  // Step 2: 6-bit scales and mins, d and dmin (still one block per lane).
  VI ls[8], lm[8];
  VF d_all, dmin_all;
  if constexpr (kImatrix) {
    d_all = QpFitLanes(8, 63, scales, sw, ls);
    dmin_all = QpFitLanes(8, 63, mins, sw, lm);
    if constexpr (kNmax == 31) {
      for (int j = 0; j < 8; ++j) {
        ls[j] = hn::Min(ls[j], hn::Set(di, 63));
        lm[j] = hn::Min(lm[j], hn::Set(di, 63));
      }
    }
  } else {
    VF max_scale = hn::Zero(d), max_min = hn::Zero(d);
    for (int j = 0; j < 8; ++j) {
      max_scale = KeepGreater(max_scale, hn::Load(d, scales + j * N));
      max_min = KeepGreater(max_min, hn::Load(d, mins + j * N));
    }
    const VF c63 = hn::Set(d, 63.f);
    const VF inv_scale = hn::IfThenElseZero(hn::Gt(max_scale, hn::Zero(d)), hn::Div(c63, max_scale));
    const VF inv_min = hn::IfThenElseZero(hn::Gt(max_min, hn::Zero(d)), hn::Div(c63, max_min));
    for (int j = 0; j < 8; ++j) {
      ls[j] = hn::Min(WrapU8(NearestIntV(d, hn::Mul(inv_scale, hn::Load(d, scales + j * N)))),
                      hn::Set(di, 63));
      lm[j] = hn::Min(WrapU8(NearestIntV(d, hn::Mul(inv_min, hn::Load(d, mins + j * N)))),
                      hn::Set(di, 63));
    }
    d_all = hn::Div(max_scale, c63);
    dmin_all = hn::Div(max_min, c63);
  }
  HWY_ALIGN uint16_t d_bits[kMaxN], dmin_bits[kMaxN];
  HWY_ALIGN float d_back[kMaxN], dmin_back[kMaxN];
  ToF16Lanes(d_all, d_bits, d_back);
  ToF16Lanes(dmin_all, dmin_bits, dmin_back);
  HWY_ALIGN int32_t ls_lanes[8 * kMaxN], lm_lanes[8 * kMaxN];
  for (int j = 0; j < 8; ++j) {
    hn::Store(ls[j], di, ls_lanes + j * N);
    hn::Store(lm[j], di, lm_lanes + j * N);
  }
  // Steps 3-4 per block: pack the scales, requantize from the fp16 scales, pack levels.
  for (size_t b = 0; b < valid; ++b) {
    Block& blk = y[b];
    const float* HWY_RESTRICT x = x0 + kQK_K * b;
    uint8_t ls8[8], lm8[8], L[kQK_K];
    for (int j = 0; j < 8; ++j) {
      ls8[j] = static_cast<uint8_t>(ls_lanes[j * N + b]);
      lm8[j] = static_cast<uint8_t>(lm_lanes[j * N + b]);
    }
    PackScaleMinK4(ls8, lm8, blk.scales);
    blk.d.set_bits(d_bits[b]);
    blk.dmin.set_bits(dmin_bits[b]);
    for (int j = 0; j < 8; ++j) {
      const ScaleMin sm = UnpackScaleMinK4(blk.scales, j);
      const float dd = d_back[b] * static_cast<float>(sm.scale);
      if (dd == 0) {
        RegenerateMinMaxLevels(x + 32 * j, 32, lev_iscale[j * N + b], lev_min[j * N + b], kNmax,
                               L + 32 * j);
        continue;
      }
      const float dm = dmin_back[b] * static_cast<float>(sm.min);
      RequantizeRun(x + 32 * j, 32, dd, dm, 0, kNmax, 0, true, L + 32 * j);
    }
    if constexpr (kNmax == 15) PackQ4KNibblesV(L, blk.qs);
    else PackQ5KLevelsV(L, blk.qh, blk.qs);
  }
}

template <int kNmax, class Block>
void QuantizeK45(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                 const float* imatrix) {
  Block* y = static_cast<Block*>(dst);
  ForEachBatch(src, nrows, n_per_row, [&](int64_t b0, size_t valid, const float* x0, const int32_t* x_offs,
                                                const int32_t* qw_offs) {
    if (imatrix != nullptr)
      QuantizeK45Batch<kNmax, true>(valid, x0, x_offs, imatrix, qw_offs, y + b0);
    else
      QuantizeK45Batch<kNmax, false>(valid, x0, x_offs, nullptr, qw_offs, y + b0);
  });
  ZeroUpper();
}

void QuantizeQ4KImpl(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const float* imatrix) {
  QuantizeK45<15, BlockQ4K>(src, dst, nrows, n_per_row, imatrix);
}
void QuantizeQ5KImpl(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const float* imatrix) {
  QuantizeK45<31, BlockQ5K>(src, dst, nrows, n_per_row, imatrix);
}

}  // namespace bitsmith::kquant::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace bitsmith::kquant {
HWY_EXPORT(QuantizeQ4KImpl);
HWY_EXPORT(QuantizeQ5KImpl);
void QuantizeQ4KSimd(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const float* imatrix) {
  HWY_DYNAMIC_DISPATCH(QuantizeQ4KImpl)(src, dst, nrows, n_per_row, imatrix);
}
void QuantizeQ5KSimd(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const float* imatrix) {
  HWY_DYNAMIC_DISPATCH(QuantizeQ5KImpl)(src, dst, nrows, n_per_row, imatrix);
}
}  // namespace bitsmith::kquant
#endif  // HWY_ONCE
