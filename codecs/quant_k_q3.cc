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

// quant::MakeQ3Quants(16, nmax = 4, x, L, do_rmse = true) on every lane. xt: 16
// rows of N; writes the final levels (l + 4, or 0 for an all-zero group) as
// floats to lt (16 rows of N) and returns the scale.
HWY_INLINE VF Q3FitLanes(const float* HWY_RESTRICT xt, float* HWY_RESTRICT lt) {
  constexpr int n = 16, nmax = 4;
  const DF d;
  const size_t N = hn::Lanes(d);
  const VF zero = hn::Zero(d);
  // 1. max = the element of largest |x|.
  VF amax = zero, max = zero;
  for (int i = 0; i < n; ++i) {
    const VF x = hn::Load(d, xt + i * N);
    const VF ax = hn::Abs(x);
    const MF gt = hn::Gt(ax, amax);
    amax = hn::IfThenElse(gt, ax, amax);
    max = hn::IfThenElse(gt, x, max);
  }
  const MF all_zero = hn::Lt(amax, hn::Set(d, quant::kGroupMaxEps));
  // 2.-3. Levels for iscale = -nmax/max, sums with w = x*x (ggml: (w*x)*l, (w*l)*l).
  const VF iscale = hn::Div(hn::Set(d, static_cast<float>(-nmax)), max);
  VF L[n];
  VF sumlx = zero, suml2 = zero;
  for (int i = 0; i < n; ++i) {
    const VF x = hn::Load(d, xt + i * N);
    L[i] = NearestClampF(d, hn::Mul(iscale, x), -nmax, nmax - 1);
    const VF w = hn::Mul(x, x);
    sumlx = hn::Add(sumlx, hn::Mul(hn::Mul(w, x), L[i]));
    suml2 = hn::Add(suml2, hn::Mul(hn::Mul(w, L[i]), L[i]));
  }
  // 4. Coordinate descent, up to 5 passes (a lane without changes in a pass is
  //    at a fixed point: further passes leave it unchanged).
  for (int itry = 0; itry < 5; ++itry) {
    MF changed = hn::FirstN(d, 0);
    for (int i = 0; i < n; ++i) {
      const VF x = hn::Load(d, xt + i * N);
      const VF w = hn::Mul(x, x);
      const VF wx = hn::Mul(w, x);
      VF slx = hn::Sub(sumlx, hn::Mul(wx, L[i]));
      VF sl2 = hn::Sub(suml2, hn::Mul(hn::Mul(w, L[i]), L[i]));
      const MF ok = hn::Gt(slx, zero);
      const VF new_l = NearestClampF(d, hn::Div(hn::Mul(x, sl2), slx), -nmax, nmax - 1);
      const MF differs = hn::Ne(new_l, L[i]);
      slx = hn::Add(slx, hn::Mul(wx, new_l));
      sl2 = hn::Add(sl2, hn::Mul(hn::Mul(w, new_l), new_l));
      const MF take = hn::And(
          hn::And(hn::And(ok, differs), hn::Gt(sl2, zero)),
          hn::Gt(hn::Mul(hn::Mul(slx, slx), suml2), hn::Mul(hn::Mul(sumlx, sumlx), sl2)));
      L[i] = hn::IfThenElse(take, new_l, L[i]);
      sumlx = hn::IfThenElse(take, slx, sumlx);
      suml2 = hn::IfThenElse(take, sl2, suml2);
      changed = hn::Or(changed, take);
    }
    if (hn::AllFalse(d, changed)) break;
  }
  // 5. Levels + nmax (all-zero groups: 0), scale.
  for (int i = 0; i < n; ++i)
    hn::Store(hn::IfThenZeroElse(all_zero, hn::Add(L[i], hn::Set(d, static_cast<float>(nmax)))), d,
              lt + i * N);
  const VF scale = hn::IfThenElseZero(hn::Gt(suml2, zero), hn::Div(sumlx, suml2));
  return hn::IfThenZeroElse(all_zero, scale);
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
    // 1. make_q3_quants per sub-block; keep the scale of largest magnitude.
    VF max_scale = hn::Zero(d), amax = hn::Zero(d);
    for (int j = 0; j < 16; ++j) {
      const VF s = Q3FitLanes(xt + 16 * j * N, lt + 16 * j * N);
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
