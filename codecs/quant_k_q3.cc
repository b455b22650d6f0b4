// SIMD q3_k quantizer (Highway, dynamic dispatch), byte-identical to
// QuantizeBlockQ3K / QuantizeBlockQ3KImatrix in codecs/quant_k_ref.cc (ggml's
// quantize_row_q3_K_ref and quantize_row_q3_K_impl). One super-block per lane
// (codecs/quant_k-inl.h): make_q3_quants' coordinate descent, or
// make_qx_quants for the sub-blocks and then for the 16 scales, run lane-wise;
// requantization in the natural layout.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "codecs/quant_k_q3.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "codecs/quant_k-inl.h"
#include "codecs/quant_k.h"

HWY_BEFORE_NAMESPACE();
namespace bitsmith::kquant::HWY_NAMESPACE {

// quant::MakeQ3Quants(16, nmax = 4, x, L, do_rmse = true), one sub-block per
// lane, in two phases so that lanes do not wait for each other:
//  * Q3Start runs steps 1-3 and the first descent pass on every lane;
//  * ~80% of sub-blocks change nothing in that pass and are final (a pass
//    without changes is a fixed point); the others are collected, packed N to
//    a vector, and Q3Descend runs their remaining passes (at most 4).
// State of one group: levels L (16 rows of N floats, l in -4..3), sumlx, suml2.
constexpr int kQ3N = 16, kQ3Nmax = 4;

// One descent pass (step 4 of MakeQ3Quants) over the 16 elements; returns the
// lanes that changed a level. x: 16 rows of N.
// wt, wxt: w = x*x and w*x per element (computed once, identical values).
HWY_INLINE MF Q3Pass(const float* HWY_RESTRICT xt, const float* HWY_RESTRICT wt,
                     const float* HWY_RESTRICT wxt, VF* HWY_RESTRICT L, VF& sumlx, VF& suml2) {
  const DF d;
  const size_t N = hn::Lanes(d);
  const VF zero = hn::Zero(d);
  MF changed = hn::FirstN(d, 0);
  for (int i = 0; i < kQ3N; ++i) {
    const VF x = hn::Load(d, xt + i * N);
    const VF w = hn::Load(d, wt + i * N);
    const VF wx = hn::Load(d, wxt + i * N);
    // Drop element i from the sums (ggml: sumlx - w*x*L, suml2 - w*L*L).
    VF slx = hn::Sub(sumlx, hn::Mul(wx, L[i]));
    VF sl2 = hn::Sub(suml2, hn::Mul(hn::Mul(w, L[i]), L[i]));
    const VF new_l = NearestClampF(d, hn::Div(hn::Mul(x, sl2), slx), -kQ3Nmax, kQ3Nmax - 1);
    const MF candidate = hn::And(hn::Gt(slx, zero), hn::Ne(new_l, L[i]));
    // Most element steps change nothing in any lane: skip the evaluation then.
    if (hn::AllFalse(d, candidate)) continue;
    slx = hn::Add(slx, hn::Mul(wx, new_l));
    sl2 = hn::Add(sl2, hn::Mul(hn::Mul(w, new_l), new_l));
    // Keep new_l when it raises slx^2/sl2 (ggml: slx*slx*suml2 > sumlx*sumlx*sl2).
    const MF take = hn::And(
        hn::And(candidate, hn::Gt(sl2, zero)),
        hn::Gt(hn::Mul(hn::Mul(slx, slx), suml2), hn::Mul(hn::Mul(sumlx, sumlx), sl2)));
    L[i] = hn::IfThenElse(take, new_l, L[i]);
    sumlx = hn::IfThenElse(take, slx, sumlx);
    suml2 = hn::IfThenElse(take, sl2, suml2);
    changed = hn::Or(changed, take);
  }
  return changed;
}

// w = x*x and w*x for 16 rows of N.
HWY_INLINE void Q3Weights(const float* HWY_RESTRICT xt, float* HWY_RESTRICT wt,
                          float* HWY_RESTRICT wxt) {
  const DF d;
  const size_t N = hn::Lanes(d);
  for (int i = 0; i < kQ3N; ++i) {
    const VF x = hn::Load(d, xt + i * N);
    const VF w = hn::Mul(x, x);
    hn::Store(w, d, wt + i * N);
    hn::Store(hn::Mul(w, x), d, wxt + i * N);
  }
}

// Steps 1-3 and the first pass. Writes L to lt (16 rows of N) and returns the
// lanes that changed in the first pass; *all_zero: groups below kGroupMaxEps.
HWY_INLINE MF Q3Start(const float* HWY_RESTRICT xt, float* HWY_RESTRICT lt, VF& sumlx, VF& suml2,
                      MF& all_zero) {
  const DF d;
  const size_t N = hn::Lanes(d);
  const VF zero = hn::Zero(d);
  // 1. max = the element of largest |x|.
  VF amax = zero, max = zero;
  for (int i = 0; i < kQ3N; ++i) {
    const VF x = hn::Load(d, xt + i * N);
    const VF ax = hn::Abs(x);
    const MF gt = hn::Gt(ax, amax);
    amax = hn::IfThenElse(gt, ax, amax);
    max = hn::IfThenElse(gt, x, max);
  }
  all_zero = hn::Lt(amax, hn::Set(d, quant::kGroupMaxEps));
  // 2.-3. Levels for iscale = -nmax/max, sums with w = x*x ((w*x)*l, (w*l)*l).
  const VF iscale = hn::Div(hn::Set(d, static_cast<float>(-kQ3Nmax)), max);
  HWY_ALIGN float wt[kQ3N * kMaxN], wxt[kQ3N * kMaxN];
  Q3Weights(xt, wt, wxt);
  VF L[kQ3N];
  sumlx = zero;
  suml2 = zero;
  for (int i = 0; i < kQ3N; ++i) {
    const VF x = hn::Load(d, xt + i * N);
    L[i] = NearestClampF(d, hn::Mul(iscale, x), -kQ3Nmax, kQ3Nmax - 1);
    const VF w = hn::Load(d, wt + i * N);
    sumlx = hn::Add(sumlx, hn::Mul(hn::Load(d, wxt + i * N), L[i]));
    suml2 = hn::Add(suml2, hn::Mul(hn::Mul(w, L[i]), L[i]));
  }
  const MF changed = Q3Pass(xt, wt, wxt, L, sumlx, suml2);
  for (int i = 0; i < kQ3N; ++i) hn::Store(L[i], d, lt + i * N);
  return changed;
}

// Passes 2..5 for the groups at `items` (index j * N + b: sub-block j, lane b of
// the batch) whose first pass changed something; updates lt, sumlx, suml2.
HWY_INLINE void Q3Descend(const int32_t* HWY_RESTRICT items, size_t count,
                          const float* HWY_RESTRICT xt, float* HWY_RESTRICT lt,
                          float* HWY_RESTRICT sumlx_all, float* HWY_RESTRICT suml2_all) {
  const DF d;
  const size_t N = hn::Lanes(d);
  HWY_ALIGN float xg[kQ3N * kMaxN], lg[kQ3N * kMaxN], sx[kMaxN], s2[kMaxN];
  for (size_t first = 0; first < count; first += N) {
    // Gather up to N groups (padding repeats the last one: same result twice).
    int32_t item[kMaxN];
    for (size_t q = 0; q < N; ++q) item[q] = items[first + q < count ? first + q : count - 1];
    for (size_t q = 0; q < N; ++q) {
      const int32_t j = item[q] / static_cast<int32_t>(N), b = item[q] % static_cast<int32_t>(N);
      for (int i = 0; i < kQ3N; ++i) {
        xg[i * N + q] = xt[(kQ3N * j + i) * N + b];
        lg[i * N + q] = lt[(kQ3N * j + i) * N + b];
      }
      sx[q] = sumlx_all[item[q]];
      s2[q] = suml2_all[item[q]];
    }
    VF L[kQ3N];
    for (int i = 0; i < kQ3N; ++i) L[i] = hn::Load(d, lg + i * N);
    VF sumlx = hn::Load(d, sx), suml2 = hn::Load(d, s2);
    HWY_ALIGN float wg[kQ3N * kMaxN], wxg[kQ3N * kMaxN];
    Q3Weights(xg, wg, wxg);
    for (int itry = 1; itry < 5; ++itry)
      if (hn::AllFalse(d, Q3Pass(xg, wg, wxg, L, sumlx, suml2))) break;
    for (int i = 0; i < kQ3N; ++i) hn::Store(L[i], d, lg + i * N);
    hn::Store(sumlx, d, sx);
    hn::Store(suml2, d, s2);
    for (size_t q = 0; q < N; ++q) {
      const int32_t j = item[q] / static_cast<int32_t>(N), b = item[q] % static_cast<int32_t>(N);
      for (int i = 0; i < kQ3N; ++i) lt[(kQ3N * j + i) * N + b] = lg[i * N + q];
      sumlx_all[item[q]] = sx[q];
      suml2_all[item[q]] = s2[q];
    }
  }
}

template <bool kImatrix>
HWY_INLINE void QuantizeQ3KBatch(size_t valid, const float* HWY_RESTRICT x0,
    const int32_t* HWY_RESTRICT x_offsets, const float* HWY_RESTRICT imatrix,
    const int32_t* HWY_RESTRICT qw_offsets,
                                 BlockQ3K* HWY_RESTRICT y) {
  const DF d;
  const DI di;
  const size_t N = hn::Lanes(d);
  HWY_ALIGN float xt[kQK_K * kMaxN];
  HWY_ALIGN float qwt[kImatrix ? kQK_K * kMaxN : 1];
  HWY_ALIGN float wt[16 * kMaxN];
  HWY_ALIGN float scratch[2 * 16 * kMaxN];
  HWY_ALIGN float scales[16 * kMaxN], sw[16 * kMaxN];
  // Search levels for sub-blocks whose requantization is skipped: the levels
  // themselves (plain path) or the Qx inverse scale that regenerates them.
  HWY_ALIGN float lt[kImatrix ? 1 : kQK_K * kMaxN];
  HWY_ALIGN float lev_iscale[16 * kMaxN];
  HWY_ALIGN int32_t ls_lanes[16 * kMaxN];
  Transpose(x0, x_offsets, kQK_K, xt);
  VF d_all;
  if constexpr (kImatrix) {
    // 1. Weights qw * sqrt(sigma2 + x^2), sigma2 = 2 * mean x^2; make_qx_quants(nmax 4).
    Transpose(imatrix, qw_offsets, kQK_K, qwt);
    VF sumx2 = hn::Zero(d);
    for (int e = 0; e < kQK_K; ++e) {
      const VF x = hn::Load(d, xt + e * N);
      sumx2 = hn::Add(sumx2, hn::Mul(x, x));
    }
    const VF sigma2 =
        hn::Div(hn::Mul(hn::Set(d, 2.f), sumx2), hn::Set(d, static_cast<float>(kQK_K)));
    for (int j = 0; j < 16; ++j) {
      const float* HWY_RESTRICT xs = xt + 16 * j * N;
      VF sumw = hn::Zero(d);
      for (int l = 0; l < 16; ++l) {
        const VF x = hn::Load(d, xs + l * N);
        const VF w = hn::Mul(hn::Load(d, qwt + (16 * j + l) * N),
                             hn::Sqrt(hn::Add(sigma2, hn::Mul(x, x))));
        hn::Store(w, d, wt + l * N);
        sumw = hn::Add(sumw, w);
      }
      hn::Store(sumw, d, sw + j * N);
      const QxLanes fit = QxFitLanes(16, 4, xs, wt, scratch);
      hn::Store(fit.scale, d, scales + j * N);
      hn::Store(fit.lev_iscale, d, lev_iscale + j * N);
    }
    // 2. The 16 scales by make_qx_quants(nmax 32, weights sw): levels 0..63.
    const QxLanes block = QxFitLanes(16, 32, scales, sw, scratch);
    for (int j = 0; j < 16; ++j)
      hn::Store(QxLevelsV(hn::Load(d, scales + j * N), block.lev_iscale, 32), di, ls_lanes + j * N);
    d_all = block.scale;
  } else {
    // 1. make_q3_quants per sub-block (two phases, see Q3Start), then step 5:
    //    levels + 4 (0 for all-zero groups) and the scale; keep the scale of
    //    largest magnitude.
    HWY_ALIGN float sumlx_all[16 * kMaxN], suml2_all[16 * kMaxN], zero_all[16 * kMaxN];
    HWY_ALIGN int32_t pending[16 * kMaxN];
    size_t npending = 0;
    for (int j = 0; j < 16; ++j) {
      VF sumlx, suml2;
      MF all_zero;
      const MF changed = Q3Start(xt + 16 * j * N, lt + 16 * j * N, sumlx, suml2, all_zero);
      hn::Store(sumlx, d, sumlx_all + j * N);
      hn::Store(suml2, d, suml2_all + j * N);
      hn::Store(hn::IfThenElseZero(all_zero, hn::Set(d, 1.f)), d, zero_all + j * N);
      if (!hn::AllFalse(d, changed)) {
        HWY_ALIGN float ch[kMaxN];
        hn::Store(hn::IfThenElseZero(changed, hn::Set(d, 1.f)), d, ch);
        for (size_t b = 0; b < N; ++b)
          if (ch[b] != 0) pending[npending++] = static_cast<int32_t>(j * N + b);
      }
    }
    if (npending != 0) Q3Descend(pending, npending, xt, lt, sumlx_all, suml2_all);
    VF max_scale = hn::Zero(d), amax = hn::Zero(d);
    const VF zero = hn::Zero(d);
    for (int j = 0; j < 16; ++j) {
      const MF all_zero = hn::Ne(hn::Load(d, zero_all + j * N), zero);
      for (int i = 0; i < 16; ++i) {
        float* row = lt + (16 * j + i) * N;
        hn::Store(hn::IfThenZeroElse(all_zero, hn::Add(hn::Load(d, row), hn::Set(d, 4.f))), d, row);
      }
      const VF sumlx = hn::Load(d, sumlx_all + j * N), suml2 = hn::Load(d, suml2_all + j * N);
      const VF s = hn::IfThenZeroElse(all_zero, hn::IfThenElseZero(hn::Gt(suml2, zero),
                                                                    hn::Div(sumlx, suml2)));
      hn::Store(s, d, scales + j * N);
      const VF as = hn::Abs(s);
      const MF gt = hn::Gt(as, amax);
      amax = hn::IfThenElse(gt, as, amax);
      max_scale = hn::IfThenElse(gt, s, max_scale);
    }
    // 2. 6-bit signed scales against d = 1/iscale, iscale = -32/max_scale;
    //    ggml keeps int8(nearest(...)), clamps to [-32, 31], stores +32.
    const MF nonzero = hn::Ne(max_scale, hn::Zero(d));
    const VF iscale = hn::Div(hn::Set(d, -32.f), max_scale);
    for (int j = 0; j < 16; ++j) {
      const VI l = WrapI8(NearestIntV(d, hn::Mul(iscale, hn::Load(d, scales + j * N))));
      const VI s = hn::Add(ClampI(l, -32, 31), hn::Set(di, 32));
      // A block whose scales are all 0 stores zero scale bytes and d = 0; the
      // 6-bit fields then read 0, i.e. a scale of -32 times d = 0.
      hn::Store(hn::IfThenElseZero(hn::RebindMask(di, nonzero), s), di, ls_lanes + j * N);
    }
    d_all = hn::IfThenElseZero(nonzero, hn::Div(hn::Set(d, 1.f), iscale));
  }
  HWY_ALIGN uint16_t d_bits[kMaxN];
  HWY_ALIGN float d_back[kMaxN];
  ToF16Lanes(d_all, d_bits, d_back);
  // 3.-4. Per block: pack the scales, requantize from fp16 d * sc, pack levels.
  for (size_t b = 0; b < valid; ++b) {
    BlockQ3K& blk = y[b];
    const float* HWY_RESTRICT x = x0 + kQK_K * b;
    int ls[16];
    for (int j = 0; j < 16; ++j) ls[j] = ls_lanes[j * N + b];
    PackQ3KScales(ls, blk.scales);
    blk.d.set_bits(d_bits[b]);
    uint8_t L[kQK_K];
    for (int j = 0; j < 16; ++j) {
      const float dd = d_back[b] * static_cast<float>(UnpackQ3KScale(blk.scales, j));
      if (dd == 0) {
        if constexpr (kImatrix) {
          RegenerateQxLevels(x + 16 * j, 16, lev_iscale[j * N + b], 4, L + 16 * j);
        } else {
          for (int i = 0; i < 16; ++i)
            L[16 * j + i] = static_cast<uint8_t>(lt[(16 * j + i) * N + b]);
        }
        continue;
      }
      RequantizeRun(x + 16 * j, 16, dd, 0.f, -4, 3, 4, false, L + 16 * j);
    }
    PackQ3KV(L, blk.hmask, blk.qs);
  }
}

void QuantizeQ3KImpl(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const float* imatrix) {
  BlockQ3K* y = static_cast<BlockQ3K*>(dst);
  ForEachBatch(src, nrows, n_per_row, [&](int64_t b0, size_t valid, const float* x0, const int32_t* x_offs,
                                                const int32_t* qw_offs) {
    if (imatrix != nullptr) QuantizeQ3KBatch<true>(valid, x0, x_offs, imatrix, qw_offs, y + b0);
    else QuantizeQ3KBatch<false>(valid, x0, x_offs, nullptr, qw_offs, y + b0);
  });
  ZeroUpper();
}

}  // namespace bitsmith::kquant::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace bitsmith::kquant {
HWY_EXPORT(QuantizeQ3KImpl);
void QuantizeQ3KSimd(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const float* imatrix) {
  HWY_DYNAMIC_DISPATCH(QuantizeQ3KImpl)(src, dst, nrows, n_per_row, imatrix);
}
}  // namespace bitsmith::kquant
#endif  // HWY_ONCE
