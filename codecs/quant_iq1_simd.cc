// SIMD split searches of the IQ1_S and IQ1_M quantizers (Highway, dynamic
// dispatch), byte-identical to the scalar oracles (codecs/quant_iq_iq1_ref.cc,
// ggml d99724f2): the drivers QuantizeIQ1{S,M}With (codecs/quant_iq1_search.h)
// do everything else (weights, sorting, grid snapping, scales) exactly as the
// oracle does, only step "exhaustive split search" is replaced.
//
// Bit-exactness: every candidate's sums are computed by one lane with exactly
// the oracle's float operations in the oracle's order (no FMA: -ffp-contract=off,
// no MulAdd), and the "first strict maximum" scan keeps the oracle's candidate
// order and comparison (`sumq2 > 0 && sumqx*sumqx > best_score*sumq2`, ordered
// compares = C's on NaN).
//
// IQ1_S (the 8 sub-blocks of a super-block, one per lane): every lane runs the
//   oracle's loop over (i1, i2) and both shifts with its own best (blended with
//   the acceptance mask), the sums closed forms of its prefix sums.
// IQ1_M (the 16 half-sub-blocks of a super-block, one per lane): every lane runs
//   the oracle's whole loop nest (level-0 prefix per i1, one more level-1 term per
//   i2, the level-2 suffix added to a copy), so the loop structure is shared and
//   each lane keeps its own best (blended with the acceptance mask). The per-value
//   terms (w*a)*x and (w*a)*a of the oracle's IQ1MSums::Add are formed once per
//   sorted value and level, in transposed (value-major, lane-minor) arrays.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "codecs/quant_iq1_simd.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cfloat>  // FLT_MAX
#include <cmath>   // HUGE_VALF
#include <cstdint>

#include <vector>

#include "codecs/iq_kernels.h"
#include "codecs/iq_lattice.h"
#include "codecs/quant_iq1_search.h"
#include "formats/blocks_iq.h"

#ifndef BITSMITH_QUANT_IQ1_SIMD_ONCE
#define BITSMITH_QUANT_IQ1_SIMD_ONCE
namespace bitsmith::iq {
namespace {

// The IQ1 neighbour lists with each grid index replaced by its level code
// (IQ1LevelCodes), at the same offsets as Lattice::neighbours, plus 16 entries of
// padding: a chunk of neighbours is one contiguous load instead of a gather.
struct IQ1NeighbourCodes {
  const uint16_t* base = nullptr;
  std::vector<int32_t> codes;
};
const IQ1NeighbourCodes& NeighbourCodes() {
  static const IQ1NeighbourCodes table = [] {
    const Lattice& lat = GetLattice(LatticeId::kIQ1S);
    const uint32_t* lc = IQ1LevelCodes();
    IQ1NeighbourCodes t;
    t.base = lat.neighbours.data();
    t.codes.assign(lat.neighbours.size() + 16, 0);
    for (size_t k = 0; k < lat.neighbours.size(); ++k)  // counts are < 2048 too; their codes are unused
      t.codes[k] = static_cast<int32_t>(lat.neighbours[k] < 2048 ? lc[lat.neighbours[k]] : 0);
    return t;
  }();
  return table;
}

}  // namespace
}  // namespace bitsmith::iq
#endif  // BITSMITH_QUANT_IQ1_SIMD_ONCE

HWY_BEFORE_NAMESPACE();
namespace bitsmith::iq::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::CappedTag<float, 16>;
using DI = hn::Rebind<int32_t, DF>;
using VF = hn::Vec<DF>;
using VI = hn::Vec<DI>;

// Levels with shift +delta / -delta (ggml's x_p / x_m).
constexpr float kP[3] = {-1 + kIQ1Delta, kIQ1Delta, 1 + kIQ1Delta};
constexpr float kM[3] = {-1 - kIQ1Delta, -kIQ1Delta, 1 - kIQ1Delta};

HWY_INLINE void ZeroUpperIQ1() {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  _mm256_zeroupper();
#endif
}

// ---------------------------------------------------------------------------
// IQ1_S: one sub-block per lane (the 8 of a super-block). The oracle's sums:
//   sumqx = (sumx[i1]-sumx[0])*x[0] + (sumx[i2]-sumx[i1])*x[1] + (sumx[32]-sumx[i2])*x[2]
//   sumq2 = (sumw[i1]-sumw[0])*x[0]*x[0] + (sumw[i2]-sumw[i1])*x[1]*x[1] + (sumw[32]-sumw[i2])*x[2]*x[2]
// evaluated left to right; the first terms depend on i1 only and the third on i2
// only, so they are formed once per sub-block, per shift.
using D8 = hn::CappedTag<float, 8>;
using V8 = hn::Vec<D8>;

void SearchIQ1SImpl(const IQ1SSub* HWY_RESTRICT subs, IQ1Split* HWY_RESTRICT out) {
  const D8 df;
  const hn::Rebind<int32_t, D8> di;
  const int N = static_cast<int>(hn::Lanes(df));
  alignas(32) float sx[33][8], sw[33][8], maxs[8];
  alignas(32) float ax[2][33][8], aw[2][33][8], ex[2][33][8], ew[2][33][8];  // [shift +, -]
  alignas(32) float scale_out[8];
  alignas(32) int32_t i1_out[8], i2_out[8], s_out[8];
  for (int g = 0; g < 8; g += N) {
    // Transposed prefix sums (inactive lanes: zeros, results not read).
    for (int l = 0; l < N; ++l) {
      const IQ1SSub& sub = subs[g + l];
      maxs[l] = sub.max;
      for (int j = 0; j <= 32; ++j) {
        sx[j][l] = sub.active ? sub.sumx[j] : 0.0f;
        sw[j][l] = sub.active ? sub.sumw[j] : 0.0f;
      }
    }
    const V8 x0 = hn::Load(df, sx[0]), w0 = hn::Load(df, sw[0]);
    const V8 x32 = hn::Load(df, sx[32]), w32 = hn::Load(df, sw[32]);
    for (int j = 0; j <= 32; ++j) {
      const V8 vx = hn::Load(df, sx[j]), vw = hn::Load(df, sw[j]);
      for (int s = 0; s < 2; ++s) {
        const float* lv = s == 0 ? kP : kM;
        const V8 l0 = hn::Set(df, lv[0]), l2 = hn::Set(df, lv[2]);
        hn::Store(hn::Mul(hn::Sub(vx, x0), l0), df, ax[s][j]);
        hn::Store(hn::Mul(hn::Mul(hn::Sub(vw, w0), l0), l0), df, aw[s][j]);
        hn::Store(hn::Mul(hn::Sub(x32, vx), l2), df, ex[s][j]);
        hn::Store(hn::Mul(hn::Mul(hn::Sub(w32, vw), l2), l2), df, ew[s][j]);
      }
    }
    const V8 zero = hn::Zero(df);
    const V8 l1[2] = {hn::Set(df, kP[1]), hn::Set(df, kM[1])};
    V8 best = hn::Set(df, -FLT_MAX), scale = hn::Load(df, maxs);
    auto bi1 = hn::Set(di, -1), bi2 = hn::Set(di, -1), bs = hn::Set(di, 0);
    for (int i1 = 0; i1 <= 32; ++i1) {
      const V8 xi1 = hn::Load(df, sx[i1]), wi1 = hn::Load(df, sw[i1]);
      for (int i2 = i1; i2 <= 32; ++i2) {
        const V8 dx = hn::Sub(hn::Load(df, sx[i2]), xi1), dw = hn::Sub(hn::Load(df, sw[i2]), wi1);
        for (int s = 0; s < 2; ++s) {
          const V8 qx = hn::Add(hn::Add(hn::Load(df, ax[s][i1]), hn::Mul(dx, l1[s])), hn::Load(df, ex[s][i2]));
          const V8 q2 = hn::Add(hn::Add(hn::Load(df, aw[s][i1]), hn::Mul(hn::Mul(dw, l1[s]), l1[s])),
                                hn::Load(df, ew[s][i2]));
          const auto pass = hn::And(hn::Gt(q2, zero), hn::Gt(hn::Mul(qx, qx), hn::Mul(best, q2)));
          if (hn::AllFalse(df, pass)) continue;
          const V8 ns = hn::Div(qx, q2);
          scale = hn::IfThenElse(pass, ns, scale);
          best = hn::IfThenElse(pass, hn::Mul(ns, qx), best);
          const auto ipass = hn::RebindMask(di, pass);
          bi1 = hn::IfThenElse(ipass, hn::Set(di, i1), bi1);
          bi2 = hn::IfThenElse(ipass, hn::Set(di, i2), bi2);
          bs = hn::IfThenElse(ipass, hn::Set(di, s == 0 ? 1 : -1), bs);
        }
      }
    }
    hn::Store(scale, df, scale_out);
    hn::Store(bi1, di, i1_out);
    hn::Store(bi2, di, i2_out);
    hn::Store(bs, di, s_out);
    for (int l = 0; l < N; ++l)
      if (subs[g + l].active) out[g + l] = IQ1Split{scale_out[l], i1_out[l], i2_out[l], s_out[l]};
  }
  ZeroUpperIQ1();
}

// ---------------------------------------------------------------------------
// IQ1_M: one half-sub-block per lane.

// The oracle's IQ1MSums (codes k = 0..3) for a vector of lanes.
struct SumsV {
  VF qx[4], q2[4];
};

// Terms of one sorted value at one level, per code: qx += (w*a)*x, q2 += (w*a)*a
// with a = p, (first ? p : m), (first ? m : p), m for k = 0..3.
struct TermsV {
  alignas(64) float qx[4][16], q2[4][16];
};

HWY_INLINE void AddTerms(SumsV& s, const TermsV& t) {
  const DF df;
  for (int k = 0; k < 4; ++k) {
    s.qx[k] = hn::Add(s.qx[k], hn::Load(df, t.qx[k]));
    s.q2[k] = hn::Add(s.q2[k], hn::Load(df, t.q2[k]));
  }
}

void SearchIQ1MImpl(const IQ1MHalf* HWY_RESTRICT halves, IQ1Split* HWY_RESTRICT out) {
  const DF df;
  const DI di;
  const int N = static_cast<int>(hn::Lanes(df));
  TermsV terms[3][16];  // [level][sorted position]
  alignas(64) float ws[16][16], xs[16][16], maxs[16];
  alignas(64) int32_t first[16][16];
  alignas(64) float scale_out[16];
  alignas(64) int32_t i1_out[16], i2_out[16], k_out[16];
  for (int g = 0; g < 16; g += N) {
    // 1. Sorted weights and values, transposed (inactive lanes: zeros).
    for (int l = 0; l < N; ++l) {
      const IQ1MHalf& h = halves[g + l];
      maxs[l] = h.max;
      for (int j = 0; j < 16; ++j) {
        const int i = h.active ? h.idx[j] : 0;
        ws[j][l] = h.active ? h.weight[i] : 0.0f;
        xs[j][l] = h.active ? h.xb[i] : 0.0f;
        first[j][l] = i < 8 ? -1 : 0;
      }
    }
    // 2. Terms per sorted position and level, as IQ1MSums::Add forms them.
    for (int j = 0; j < 16; ++j) {
      const VF w = hn::Load(df, ws[j]), x = hn::Load(df, xs[j]);
      const auto fm = hn::RebindMask(df, hn::MaskFromVec(hn::Load(di, first[j])));
      for (int lev = 0; lev < 3; ++lev) {
        const VF p = hn::Set(df, kP[lev]), m = hn::Set(df, kM[lev]);
        const VF wp = hn::Mul(w, p), wm = hn::Mul(w, m);
        const VF tp = hn::Mul(wp, x), tm = hn::Mul(wm, x);
        const VF qp = hn::Mul(wp, p), qm = hn::Mul(wm, m);
        TermsV& t = terms[lev][j];
        hn::Store(tp, df, t.qx[0]);
        hn::Store(hn::IfThenElse(fm, tp, tm), df, t.qx[1]);
        hn::Store(hn::IfThenElse(fm, tm, tp), df, t.qx[2]);
        hn::Store(tm, df, t.qx[3]);
        hn::Store(qp, df, t.q2[0]);
        hn::Store(hn::IfThenElse(fm, qp, qm), df, t.q2[1]);
        hn::Store(hn::IfThenElse(fm, qm, qp), df, t.q2[2]);
        hn::Store(qm, df, t.q2[3]);
      }
    }
    // 3. The oracle's loop nest, every lane its own best.
    const VF zero = hn::Zero(df);
    VF best = hn::Set(df, -FLT_MAX), scale = hn::Load(df, maxs);
    VI bi1 = hn::Set(di, -1), bi2 = hn::Set(di, -1), bk = hn::Set(di, -1);
    SumsV level0;
    for (int k = 0; k < 4; ++k) level0.qx[k] = zero, level0.q2[k] = zero;
    for (int i1 = 0; i1 <= 16; ++i1) {
      if (i1 > 0) AddTerms(level0, terms[0][i1 - 1]);
      SumsV head = level0;
      for (int i2 = i1; i2 <= 16; ++i2) {
        if (i2 > i1) AddTerms(head, terms[1][i2 - 1]);
        SumsV all = head;
        for (int j = i2; j < 16; ++j) AddTerms(all, terms[2][j]);
        for (int k = 0; k < 4; ++k) {
          const VF qx = all.qx[k], q2 = all.q2[k];
          const auto pass = hn::And(hn::Gt(q2, zero), hn::Gt(hn::Mul(qx, qx), hn::Mul(best, q2)));
          if (hn::AllFalse(df, pass)) continue;
          const VF s = hn::Div(qx, q2);
          scale = hn::IfThenElse(pass, s, scale);
          best = hn::IfThenElse(pass, hn::Mul(s, qx), best);
          const auto ipass = hn::RebindMask(di, pass);
          bi1 = hn::IfThenElse(ipass, hn::Set(di, i1), bi1);
          bi2 = hn::IfThenElse(ipass, hn::Set(di, i2), bi2);
          bk = hn::IfThenElse(ipass, hn::Set(di, k), bk);
        }
      }
    }
    hn::Store(scale, df, scale_out);
    hn::Store(bi1, di, i1_out);
    hn::Store(bi2, di, i2_out);
    hn::Store(bk, di, k_out);
    for (int l = 0; l < N; ++l)
      if (halves[g + l].active) out[g + l] = IQ1Split{scale_out[l], i1_out[l], i2_out[l], k_out[l]};
  }
  ZeroUpperIQ1();
}

// ---------------------------------------------------------------------------
// Sorting: the stable ascending order of n (16 or 32) finite values is the
// permutation by rank: rank(i) = #{j : x[j] < x[i]} + #{j < i : x[j] == x[i]}
// (-0 == +0, as std::stable_sort with `<` treats them), so idx[rank(i)] = i.
// Counted per lane i over the values j in order: j < i adds x[j] <= x[i], j > i
// adds x[j] < x[i] (j == i adds nothing).
void SortIQ1Impl(const float* HWY_RESTRICT xb, int n, int* HWY_RESTRICT idx) {
  const DF df;
  const DI di;
  const int N = static_cast<int>(hn::Lanes(df));
  alignas(64) int32_t rank[32];
  for (int c = 0; c < n; c += N) {
    const VF v = hn::LoadU(df, xb + c);
    const VI lane = hn::Iota(di, 0);
    VI cnt = hn::Zero(di);
    for (int j = 0; j < n; ++j) {
      const VF xj = hn::Set(df, xb[j]);
      hn::Mask<DF> m;
      if (j < c) {
        m = hn::Le(xj, v);
      } else if (j >= c + N) {
        m = hn::Lt(xj, v);
      } else {  // lanes l > j - c have j < i
        const auto before = hn::RebindMask(df, hn::Gt(lane, hn::Set(di, j - c)));
        m = hn::Or(hn::Lt(xj, v), hn::And(hn::Le(xj, v), before));
      }
      cnt = hn::Sub(cnt, hn::VecFromMask(di, hn::RebindMask(di, m)));
    }
    hn::Store(cnt, di, rank + c);
  }
  for (int i = 0; i < n; ++i) idx[rank[i]] = i;
  ZeroUpperIQ1();
}

// ---------------------------------------------------------------------------
// Neighbour search: one neighbour per lane, its 8 levels from the level codes of
// the list (NeighbourCodes), d2 accumulated over i = 0..7 in order exactly as the
// oracle: diff = scale*q - x[i]; d2 += (w[i]*diff)*diff. The oracle keeps the
// first strict minimum below FLT_MAX; each lane keeps its own (strict <, from
// FLT_MAX, so NaN and values >= FLT_MAX never enter) with its list position, and
// the answer is the smallest position among the lanes holding the overall minimum.
int NeighbourIQ1Impl(const uint16_t* HWY_RESTRICT nb, const float* HWY_RESTRICT xval,
                     const float* HWY_RESTRICT weight, float scale, const float* HWY_RESTRICT xx) {
  const DF df;
  const DI di;
  const int N = static_cast<int>(hn::Lanes(df));
  const IQ1NeighbourCodes& table = NeighbourCodes();
  const int32_t* codes = table.codes.data() + (nb - table.base) + 1;
  const int count = nb[0];
  // scale*q for the three levels (the oracle's product scale * q).
  alignas(64) float sq[16] = {scale * xx[0], scale * xx[1], scale * xx[2]};
  VF vx[8], vw[8];
  for (int i = 0; i < 8; ++i) vx[i] = hn::Set(df, xval[i]), vw[i] = hn::Set(df, weight[i]);
#if HWY_TARGET == HWY_SCALAR
  const VI one = hn::Set(di, 1);
  const VF q0 = hn::Set(df, sq[0]), q1 = hn::Set(df, sq[1]), q2 = hn::Set(df, sq[2]);
#else
  const VF table_q = hn::Load(df, sq);  // N >= 4
#endif
  const VI three = hn::Set(di, 3);
  const VF inf = hn::Set(df, HUGE_VALF);
  VF best = hn::Set(df, FLT_MAX);
  VI best_pos = hn::Set(di, 0);
  for (int c = 0; c < count; c += N) {
    VI code = hn::LoadU(di, codes + c);
    VF d2 = hn::Zero(df);
    for (int i = 0; i < 8; ++i, code = hn::ShiftRight<2>(code)) {
      const VI lev = hn::And(code, three);
#if HWY_TARGET == HWY_SCALAR
      const VF q = hn::IfThenElse(hn::RebindMask(df, hn::Eq(lev, hn::Zero(di))), q0,
                                  hn::IfThenElse(hn::RebindMask(df, hn::Eq(lev, one)), q1, q2));
#else
      const VF q = hn::TableLookupLanes(table_q, hn::IndicesFromVec(df, lev));
#endif
      const VF diff = hn::Sub(q, vx[i]);
      d2 = hn::Add(d2, hn::Mul(hn::Mul(vw[i], diff), diff));
    }
    if (count - c < N) d2 = hn::IfThenElse(hn::FirstN(df, static_cast<size_t>(count - c)), d2, inf);
    const auto lt = hn::Lt(d2, best);
    best = hn::IfThenElse(lt, d2, best);
    best_pos = hn::IfThenElse(hn::RebindMask(di, lt), hn::Iota(di, c), best_pos);
  }
  const VF m = hn::MinOfLanes(df, best);
  int result = nb[1];  // none below FLT_MAX: bitsmith's definition (NeighbourIQ1Ref)
  if (hn::GetLane(m) < FLT_MAX) {
    const VI pos = hn::IfThenElse(hn::RebindMask(di, hn::Eq(best, m)), best_pos, hn::Set(di, 1 << 30));
    result = nb[1 + hn::GetLane(hn::MinOfLanes(di, pos))];
  }
  ZeroUpperIQ1();
  return result;
}

}  // namespace bitsmith::iq::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace bitsmith::iq {

HWY_EXPORT(SearchIQ1SImpl);
HWY_EXPORT(SearchIQ1MImpl);
HWY_EXPORT(SortIQ1Impl);
HWY_EXPORT(NeighbourIQ1Impl);

namespace {
const IQ1Hooks kSimdHooks{
    [](const float* xb, int n, int* idx) { HWY_DYNAMIC_DISPATCH(SortIQ1Impl)(xb, n, idx); },
    [](const uint16_t* nb, const float* xval, const float* weight, float scale, const float* xx) {
      return HWY_DYNAMIC_DISPATCH(NeighbourIQ1Impl)(nb, xval, weight, scale, xx);
    },
    [](const IQ1SSub* subs, IQ1Split* o) { HWY_DYNAMIC_DISPATCH(SearchIQ1SImpl)(subs, o); },
    [](const IQ1MHalf* h, IQ1Split* o) { HWY_DYNAMIC_DISPATCH(SearchIQ1MImpl)(h, o); }};
}  // namespace

void QuantizeIQ1SSimd(const float* x, void* y, int64_t nr, int64_t n, const float* w) {
  QuantizeIQ1SWith(kSimdHooks, x, y, nr, n, w);
}
void QuantizeIQ1MSimd(const float* x, void* y, int64_t nr, int64_t n, const float* w) {
  QuantizeIQ1MWith(kSimdHooks, x, y, nr, n, w);
}

}  // namespace bitsmith::iq
#endif  // HWY_ONCE
