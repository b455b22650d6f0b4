// SIMD sub-block search of the grid i-quants IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS and
// IQ3_S (Highway, dynamic dispatch), byte-identical to the scalar oracle
// QuantizeGridSubBlock<C> (codecs/iq_grid_search.h), which reproduces ggml
// d99724f2's quantize_row_iq2_{xxs,xs,s}_impl / quantize_row_iq3_{xxs,s}_impl.
//
// The oracle's time goes into 13-31 candidate scales x 2-8 groups, each group
// rounded and, when off the grid (most are), scanned against a neighbour list of
// 2-150 grid points with an 8- or 4-term sequential weighted sum. No float sum is
// reordered here; the work is put into lanes that each run the oracle's exact
// sequence of operations:
//   * rounding and map lookup: one candidate scale per lane (element-wise ops:
//     exact whatever the lane);
//   * neighbour scan: one neighbour per lane, each lane summing its 8 (4) terms
//     in ggml's order; the first strictly smaller distance wins, as in ggml's
//     `if (d2 < best_d2)` loop, i.e. the first lane holding the minimum;
//   * the candidates' sums sumqx, sumq2: one candidate per lane, each summing its
//     32 (16) terms in ggml's order; the winner is then chosen by the oracle's
//     sequential comparison over the candidates in ggml's order.
// The super-block part (weights, fp16 d, packing) is the oracle's own driver
// (Quantize<NAME>Blocks in codecs/quant_iq_grid_ref.cc), given this search.
// Built with -ffp-contract=off; no MulAdd anywhere (it would fuse the roundings).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "codecs/quant_iq_grid_simd.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/cache_control.h>  // hwy::Prefetch
#include <hwy/highway.h>

#include <cfloat>   // FLT_MAX
#include <cmath>    // sqrtf, HUGE_VALF
#include <cstdint>
#include <cstring>  // std::memcpy
#include <array>
#include <mutex>    // std::call_once
#include <vector>

#include "codecs/iq_grid_search.h"
#include "codecs/iq_kernels.h"
#include "codecs/iq_lattice.h"

#ifndef BITSMITH_CODECS_QUANT_IQ_GRID_SIMD_CODES_
#define BITSMITH_CODECS_QUANT_IQ_GRID_SIMD_CODES_
namespace bitsmith::iq {
// The neighbour lists with map indices instead of grid indices: laid out as
// Lattice::neighbours (list head h holds the count), entry h+1+j = the map index
// u = sum l_k << (bits*k) of neighbour j (NeighbourChunks::code of its grid index),
// so that a scan's result is u without another lookup. Built on first use from
// GetLattice / GetNeighbourChunks (thread-safe, cached; a few ms).
const std::vector<uint16_t>& GetNeighbourCodes(LatticeId id);
}  // namespace bitsmith::iq
#endif

HWY_BEFORE_NAMESPACE();
namespace bitsmith::iq::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

constexpr int kMaxCand = 32;  // candidate scales, padded (IQ3_XXS has 31)

// ggml's iq2_find_best_neighbour / iq3_find_best_neighbour (the oracle's
// FindBestNeighbour) with one neighbour per lane of df. `chunks` is u's list in
// NeighbourChunks layout. Steps:
//  1. Per lane: d2 = 0; d2 += waux_i * diff_i * diff_i for i = 0..kDim-1 in order,
//     diff_i = scale * q_i - x_i: the oracle's sequence, lane by lane.
//  2. ggml keeps the first d2 strictly below the best so far (NaN never is): of
//     the lanes below the running best, the smallest value wins, the first lane
//     holding it on ties (Lt is an ordered compare, false on NaN, as C's `<`).
//  3. No distance below FLT_MAX (inf/NaN only): ggml asserts; the oracle takes the
//     first neighbour.
template <int kDim, int kLevels, class DF>
HWY_INLINE int ScanList(DF df, const uint16_t* nb, const int8_t* chunks, const float* xval,
                        const float* waux, float scale) {
  const hn::RebindToSigned<DF> di;
  const hn::Rebind<int8_t, DF> d8;
  const int count = nb[0];
  const int N = static_cast<int>(hn::Lanes(df));
  constexpr int kC = NeighbourChunks::kChunk;
  const auto vscale = hn::Set(df, scale);
  // 1'. When a vector holds all kLevels levels, the terms are tabulated once per
  //     scan: lane l of term[i] = waux_i * diff * diff with diff = scale*(2l+1) - x_i,
  //     the very operations step 1 applies to a neighbour with level l at
  //     coordinate i, so a table lookup by level gives the same float.
  const bool table = N >= kLevels;
  decltype(hn::Zero(df)) term[kDim];
  if (table) {
    const auto sq = hn::Mul(vscale, hn::ConvertTo(df, hn::Add(hn::ShiftLeft<1>(hn::Iota(di, 0)), hn::Set(di, 1))));
    for (int i = 0; i < kDim; ++i) {
      const auto diff = hn::Sub(sq, hn::Set(df, xval[i]));
      term[i] = hn::Mul(hn::Mul(hn::Set(df, waux[i]), diff), diff);
    }
  }
  float best_d2 = FLT_MAX;
  int best = -1;
  const int stride = count + 1;  // row length in NeighbourChunks
  for (int base = 0; base < count; base += kC) {
    for (int sub = 0; sub < kC && base + sub < count; sub += N) {
      // 1.
      auto d2 = hn::Zero(df);
      if (table) {
        for (int i = 0; i < kDim; ++i) {
          const auto pos = hn::PromoteTo(di, hn::LoadU(d8, chunks + stride * i + base + sub));  // 2l+1
          d2 = hn::Add(d2, hn::TableLookupLanes(term[i], hn::IndicesFromVec(df, hn::ShiftRight<1>(pos))));
        }
      } else {
        for (int i = 0; i < kDim; ++i) {
          const auto q = hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(d8, chunks + stride * i + base + sub)));
          const auto diff = hn::Sub(hn::Mul(vscale, q), hn::Set(df, xval[i]));
          d2 = hn::Add(d2, hn::Mul(hn::Mul(hn::Set(df, waux[i]), diff), diff));
        }
      }
      // 2.
      const int left = count - base - sub;
      const auto better = hn::And(hn::FirstN(df, static_cast<size_t>(left < N ? left : N)),
                                  hn::Lt(d2, hn::Set(df, best_d2)));
      if (hn::AllFalse(df, better)) continue;
      const auto cand = hn::IfThenElse(better, d2, hn::Set(df, HUGE_VALF));
      const float m = hn::GetLane(hn::MinOfLanes(df, cand));
      const intptr_t lane = hn::FindFirstTrue(df, hn::Eq(cand, hn::Set(df, m)));
      best_d2 = m;
      best = nb[1 + base + sub + static_cast<int>(lane)];
    }
  }
  return best >= 0 ? best : nb[1];  // 3.
}

// ScanList with the minimum found by one reduction per list, not per vector:
//  1. The same per-lane sums as ScanList's step 1. With at least 2*kLevels lanes
//     the terms are tabulated by coordinate value k (lane k: waux_i * diff * diff,
//     diff = scale*k - x_i) and looked up with the coordinate 2l+1 itself: for odd
//     k the oracle's operations on q = 2l+1 (even lanes are never a coordinate).
//  2. ggml's first strict minimum below FLT_MAX, as an unsigned minimum: every d2
//     is +0, positive, +inf or NaN (a sum from +0 of waux*diff*diff with waux =
//     sqrt(w) >= 0, -0 or NaN; +0 + -0 = +0, so never -0), and on such floats the
//     unsigned order of the bits is the numeric order, with every NaN above +inf.
//     Lanes past the list get the largest key; the minimum key m belongs to the
//     smallest d2, the first list position holding it is ggml's pick (equal bits
//     = equal floats here), and m >= bits(FLT_MAX) means no d2 below FLT_MAX: the
//     first neighbour, as in ScanList's step 3 (so a list of one gives its point).
//     A list that fits one vector needs no branch; longer ones keep their keys
//     (up to kMaxKeys) and look for m vector by vector, in list order.
constexpr int kMaxKeys = 256;
template <int kDim, int kLevels, class DF, class V>
HWY_INLINE int ScanKeys(DF df, const uint16_t* list, const int8_t* chunks, const V* xv, const V* wv,
                        float scale) {
  const hn::RebindToSigned<DF> di;
  const hn::RebindToUnsigned<DF> du;
  const hn::Rebind<int8_t, DF> d8;
  constexpr int N = static_cast<int>(hn::MaxLanes(df));
  constexpr bool kByCoord = N >= 2 * kLevels, kByLevel = !kByCoord && N >= kLevels;
  const int count = list[0];
  const int stride = count + 1;  // row length in NeighbourChunks
  const auto vscale = hn::Set(df, scale);
  // 1.
  decltype(hn::Zero(df)) term[kDim];
  if constexpr (kByCoord || kByLevel) {
    const auto k = kByCoord ? hn::Iota(di, 0) : hn::Add(hn::ShiftLeft<1>(hn::Iota(di, 0)), hn::Set(di, 1));
    const auto sq = hn::Mul(vscale, hn::ConvertTo(df, k));
    for (int i = 0; i < kDim; ++i) {
      const auto diff = hn::Sub(sq, xv[i]);
      term[i] = hn::Mul(hn::Mul(wv[i], diff), diff);
    }
  }
  auto keys = [&](int at) {
    auto d2 = hn::Zero(df);
    for (int i = 0; i < kDim; ++i) {
      const auto pos = hn::PromoteTo(di, hn::LoadU(d8, chunks + stride * i + at));  // 2l+1
      if constexpr (kByCoord) {
        d2 = hn::Add(d2, hn::TableLookupLanes(term[i], hn::IndicesFromVec(df, pos)));
      } else if constexpr (kByLevel) {
        d2 = hn::Add(d2, hn::TableLookupLanes(term[i], hn::IndicesFromVec(df, hn::ShiftRight<1>(pos))));
      } else {
        const auto diff = hn::Sub(hn::Mul(vscale, hn::ConvertTo(df, pos)), xv[i]);
        d2 = hn::Add(d2, hn::Mul(hn::Mul(wv[i], diff), diff));
      }
    }
    const int left = count - at;
    return hn::IfThenElse(hn::FirstN(du, static_cast<size_t>(left < N ? left : N)), hn::BitCast(du, d2),
                          hn::Set(du, 0xFFFFFFFFu));
  };
  constexpr uint32_t kFltMaxBits = 0x7F7FFFFFu;
  // 2.
  if (count <= N) {
    const auto key = keys(0);
    const auto m = hn::MinOfLanes(du, key);
    const intptr_t lane = hn::FindFirstTrue(du, hn::Eq(key, m));
    return hn::GetLane(m) < kFltMaxBits ? list[1 + lane] : list[1];
  }
  HWY_ALIGN uint32_t kbuf[kMaxKeys + N];
  auto kmin = hn::Set(du, 0xFFFFFFFFu);
  for (int at = 0; at < count; at += N) {
    const auto key = keys(at);
    hn::Store(key, du, kbuf + at);
    kmin = hn::Min(kmin, key);
  }
  const auto m = hn::MinOfLanes(du, kmin);
  if (hn::GetLane(m) >= kFltMaxBits) return list[1];
  for (int at = 0;; at += N) {
    const intptr_t lane = hn::FindFirstTrue(du, hn::Eq(hn::Load(du, kbuf + at), m));
    if (lane >= 0) return list[1 + at + lane];
  }
}

// The map index u of the best neighbour, from u's list in grid indices (nb) and in
// map indices (codes, GetNeighbourCodes). Lists of up to kMaxKeys points (all, in
// ggml's lattices) take ScanKeys on `codes`, returning u directly. xv/wv: the
// group's x_i and waux_i broadcast (a caller scanning one group at several scales
// forms them once).
template <int kDim, int kLevels, class V>
HWY_INLINE int BestNeighbour(const uint16_t* nb, const uint16_t* codes, const int32_t* grid_code,
                             const int8_t* chunks, const float* xval, const float* waux, const V* xv,
                             const V* wv, float scale) {
  const hn::ScalableTag<float> df;
  if (codes[0] <= kMaxKeys) return ScanKeys<kDim, kLevels>(df, codes, chunks, xv, wv, scale);
  return grid_code[ScanList<kDim, kLevels>(df, nb, chunks, xval, waux, scale)];
}

// A group's x_i and waux_i, broadcast.
template <int kDim, class DF, class V>
HWY_INLINE void BroadcastGroup(DF df, const float* xval, const float* waux, V* xv, V* wv) {
  for (int i = 0; i < kDim; ++i) xv[i] = hn::Set(df, xval[i]), wv[i] = hn::Set(df, waux[i]);
}

// Calls f(d, v) for the vectors of candidate lanes v.. covering 0..kCand-1: full
// vectors, then the rest in a vector of 4 or 8 lanes when that suffices (IQ2_XS,
// IQ2_S, IQ3_S have 19 candidates: 16 + 4 lanes on 16-lane targets, not 32).
template <int kCand, class DF, class F>
HWY_INLINE void ForCandidateVectors(DF df, F&& f) {
  constexpr int N = static_cast<int>(hn::MaxLanes(df));
  constexpr int kFull = kCand / N * N, kRest = kCand - kFull;
  for (int v = 0; v < kFull; v += N) f(df, v);
  if constexpr (kRest > 0 && kRest <= 4 && N > 4) {
    f(hn::CappedTag<float, 4>(), kFull);
  } else if constexpr (kRest > 0 && kRest <= 8 && N > 8) {
    f(hn::CappedTag<float, 8>(), kFull);
  } else if constexpr (kRest > 0) {
    f(df, kFull);
  }
}

// The oracle's RoundGroup with the vector scan: one group at inverse scale id;
// an off-grid rounding takes the best neighbour's levels (the digits of its u).
template <const GridSearchConfig& C>
HWY_INLINE void RoundGroupOne(const Lattice& lat, const NeighbourChunks& nc, const uint16_t* codes,
                              const float* xval, const float* waux, float id, float scale, int8_t* L) {
  constexpr int kBits = C.gdim == 8 ? 2 : 3;
  for (int i = 0; i < C.gdim; ++i) {
    const int l = NearestInt(0.5f * (id * xval[i] - 1));
    L[i] = static_cast<int8_t>(l < 0 ? 0 : l > C.kmaxq - 1 ? C.kmaxq - 1 : l);
  }
  const uint32_t u = LevelIndex<C.gdim, kBits>(L);
  const int gi = lat.map[u];
  if (gi < 0) {
    const int head = -(gi + 1);
    const hn::ScalableTag<float> df;
    decltype(hn::Zero(df)) xv[C.gdim], wv[C.gdim];
    BroadcastGroup<C.gdim>(df, xval, waux, xv, wv);
    const int code = BestNeighbour<C.gdim, C.kmaxq>(lat.neighbours.data() + head, codes + head, nc.code.data(),
                                                    nc.coord.data() + C.gdim * head, xval, waux, xv, wv, scale);
    for (int i = 0; i < C.gdim; ++i) L[i] = static_cast<int8_t>((code >> (kBits * i)) & ((1 << kBits) - 1));
  }
}

// One sub-block; same steps (and results) as the oracle QuantizeGridSubBlock<C>,
// step 3 restructured into lanes of candidate scales.
template <const GridSearchConfig& C>
void SearchSubBlock(const Lattice& lat, const float* xb, const float* weight, GridSubBlock& out) {
  constexpr int n = C.n, ng = C.n / C.gdim, ns = C.n / 8;
  constexpr int kBits = C.gdim == 8 ? 2 : 3;
  constexpr int kCand = C.is_hi - C.is_lo + 1;
  static_assert(kCand <= kMaxCand, "candidate scales do not fit");
  const NeighbourChunks& nc = GetNeighbourChunks(C.lattice);
  const uint16_t* codes = GetNeighbourCodes(C.lattice).data();
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const int N = static_cast<int>(hn::Lanes(df));
  float xval[n], waux[n];
  int8_t L[n];
  bool on_grid[ng];
  out = GridSubBlock{};

  // 1. Weights' square roots (IEEE sqrt, correctly rounded in both forms),
  //    magnitudes and signs (the oracle's step 1).
  int i0 = 0;
  for (; i0 + N <= n; i0 += N) hn::StoreU(hn::Sqrt(hn::LoadU(df, weight + i0)), df, waux + i0);
  for (; i0 < n; ++i0) waux[i0] = sqrtf(weight[i0]);
  // 2.-3. Signs and magnitudes, the all-zero test and the first scale: the oracle's code.
  float scale, denom;
  if (!GridSubBlockStart<C>(xb, weight, xval, L, out, scale, denom)) return;

  // 3a. The candidates' inverse scales and scales, ggml's expressions; the padding
  //     lanes repeat the last candidate (computed, never chosen).
  //     In lanes: float(is) * is_step, + float(2*kmaxq - 1), / denom, then 1 / id:
  //     the scalar expressions' IEEE operations (int operands converted first).
  HWY_ALIGN float cid[kMaxCand];
  HWY_ALIGN float cscale[kMaxCand];
  for (int v = 0; v < kMaxCand; v += N) {
    const auto is = hn::Min(hn::Iota(di, C.is_lo + v), hn::Set(di, C.is_hi));
    const auto id = hn::Div(hn::Add(hn::Set(df, static_cast<float>(2 * C.kmaxq - 1)),
                                    hn::Mul(hn::ConvertTo(df, is), hn::Set(df, C.is_step))),
                            hn::Set(df, denom));
    hn::Store(id, df, cid + v);
    hn::Store(hn::Div(hn::Set(df, 1.0f), id), df, cscale + v);
  }

  // 3b. Levels l = clamp(nearest_int(0.5*(id*x - 1))) of every value for every
  //     candidate (lane = candidate), packed per group into the map index u, and
  //     u's map entry (>= 0: on the grid). Element-wise, so exact.
  HWY_ALIGN int32_t uidx[ng][kMaxCand];
  HWY_ALIGN int32_t gidx[ng][kMaxCand];
  //     Candidate lanes 0..kCand-1 only, in the vectors of ForCandidateVectors,
  //     which 3c and 3d use too (3e reads lanes < kCand).
  ForCandidateVectors<kCand>(df, [&](auto dc, int v) {
    const hn::RebindToSigned<decltype(dc)> dci;
    const auto half = hn::Set(dc, 0.5f), one = hn::Set(dc, 1.0f), magic = hn::Set(dc, 12582912.f);
    const auto mant = hn::Set(dci, 0x007fffff), bias = hn::Set(dci, 0x00400000);
    const auto lmax = hn::Set(dci, C.kmaxq - 1);
    const auto id = hn::Load(dc, cid + v);
    for (int g = 0; g < ng; ++g) {
      auto u = hn::Zero(dci);
      for (int k = 0; k < C.gdim; ++k) {
        const int i = C.gdim * g + k;
        const auto t = hn::Mul(half, hn::Sub(hn::Mul(id, hn::Set(dc, xval[i])), one));
        // ggml's nearest_int: the low mantissa bits of t + 1.5*2^23.
        auto l = hn::Sub(hn::And(hn::BitCast(dci, hn::Add(t, magic)), mant), bias);
        l = hn::Min(hn::Max(l, hn::Zero(dci)), lmax);
        u = hn::Or(u, hn::ShiftLeftSame(l, kBits * k));
      }
      hn::Store(u, dci, uidx[g] + v);
      hn::Store(hn::GatherIndex(dci, lat.map.data(), u), dci, gidx[g] + v);
    }
  });

  // 3c. Off-grid groups: the best neighbour at the candidate's scale replaces the
  //     rounding (ggml's find_best_neighbour; its levels become the group's, kept
  //     as its map index). The (group, candidate) pairs to scan are listed first,
  //     so that each list's coordinates can be prefetched a few scans ahead.
  int32_t work[kMaxCand * ng + 64];  // CompressStore may write a whole vector past the end
  size_t nwork = 0;
  for (int g = 0; g < ng; ++g)
    ForCandidateVectors<kCand>(df, [&](auto dc, int v) {
      const hn::RebindToSigned<decltype(dc)> dci;
      const auto off = hn::And(hn::Lt(hn::Load(dci, gidx[g] + v), hn::Zero(dci)),
                               hn::FirstN(dci, static_cast<size_t>(kCand - v)));
      nwork += hn::CompressStore(hn::Iota(dci, g * kMaxCand + v), off, dci, work + nwork);
    });
  auto head_of = [&](int32_t item) { return -(gidx[item / kMaxCand][item % kMaxCand] + 1); };
  auto nb_of = [&](int32_t item) { return lat.neighbours.data() + head_of(item); };
  auto codes_of = [&](int32_t item) { return codes + head_of(item); };
  auto chunks_of = [&](int32_t item) { return nc.coord.data() + C.gdim * head_of(item); };
  // The lists' headers and coordinates are prefetched 8 scans ahead.
  const size_t nw = nwork;
  for (size_t j = 0; j < nw && j < 8; ++j) hwy::Prefetch(chunks_of(work[j])), hwy::Prefetch(codes_of(work[j]));
  decltype(hn::Zero(df)) xv[C.gdim], wv[C.gdim];  // group g_now's x_i, waux_i broadcast
  int g_now = -1;
  for (size_t j = 0; j < nw; ++j) {
    if (j + 8 < nw) hwy::Prefetch(chunks_of(work[j + 8])), hwy::Prefetch(codes_of(work[j + 8]));
    const int g = work[j] / kMaxCand, c = work[j] % kMaxCand;
    if (g != g_now) BroadcastGroup<C.gdim>(df, xval + C.gdim * g, waux + C.gdim * g, xv, wv), g_now = g;
    uidx[g][c] = BestNeighbour<C.gdim, C.kmaxq>(nb_of(work[j]), codes_of(work[j]), nc.code.data(),
                                                chunks_of(work[j]), xval + C.gdim * g, waux + C.gdim * g, xv, wv,
                                                cscale[c]);
  }

  // 3d. Per candidate (lane): sumqx += w*x*q and sumq2 += w*q*q over i in order,
  //     q = 2l+1 (ggml's int expression, then converted).
  HWY_ALIGN float sqx[kMaxCand];
  HWY_ALIGN float sq2[kMaxCand];
  ForCandidateVectors<kCand>(df, [&](auto dc, int v) {
    const hn::RebindToSigned<decltype(dc)> dci;
    const auto lmask = hn::Set(dci, (1 << kBits) - 1);
    auto sumqx = hn::Zero(dc), sumq2 = hn::Zero(dc);
    for (int g = 0; g < ng; ++g) {
      const auto u = hn::Load(dci, uidx[g] + v);
      for (int k = 0; k < C.gdim; ++k) {
        const int i = C.gdim * g + k;
        const float w = weight[i];
        const auto l = hn::And(hn::ShiftRightSame(u, kBits * k), lmask);
        const auto q = hn::ConvertTo(dc, hn::Add(hn::Add(l, l), hn::Set(dci, 1)));
        sumqx = hn::Add(sumqx, hn::Mul(hn::Set(dc, w * xval[i]), q));
        sumq2 = hn::Add(sumq2, hn::Mul(hn::Mul(hn::Set(dc, w), q), q));
      }
    }
    hn::Store(sumqx, dc, sqx + v);
    hn::Store(sumq2, dc, sq2 + v);
  });

  // 3e. ggml's selection, in candidate order: sumqx^2/sumq2 > best (cross-multiplied,
  //     strict), keeping that candidate's levels and on-grid flags.
  float best = 0;
  int best_c = -1;
  for (int c = 0; c < kCand; ++c) {
    const float sumqx = sqx[c], sumq2 = sq2[c];
    if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
      scale = sumqx / sumq2;
      best = scale * sumqx;
      best_c = c;
    }
  }
  if (best_c >= 0) {
    for (int g = 0; g < ng; ++g) {
      for (int k = 0; k < C.gdim; ++k)
        L[C.gdim * g + k] = static_cast<int8_t>((uidx[g][best_c] >> (kBits * k)) & ((1 << kBits) - 1));
      on_grid[g] = gidx[g][best_c] >= 0;
    }
  } else {
    for (int g = 0; g < ng; ++g) on_grid[g] = C.refine != Refine::kAllIfAnyOffGridNoInit;
  }

  // 4. Refinement at the best scale (the oracle's step 4).
  bool refine;
  if constexpr (C.refine == Refine::kAllGroups) {
    refine = scale > 0;
  } else {
    int n_not_on_grid = 0;
    for (int k = 0; k < ng; ++k) n_not_on_grid += !on_grid[k];
    refine = n_not_on_grid > 0 && scale > 0;
  }
  if (refine) {
    const float id = 1 / scale;
    for (int k = 0; k < ng; ++k) {
      if (C.refine == Refine::kOffGridGroups && on_grid[k]) continue;
      RoundGroupOne<C>(lat, nc, codes, xval + C.gdim * k, waux + C.gdim * k, id, scale, L + C.gdim * k);
    }
    float sumqx = 0, sumq2 = 0;
    for (int i = 0; i < n; ++i) {
      const float w = weight[i];
      const float q = 2 * L[i] + 1;
      sumqx += w * xval[i] * q;
      sumq2 += w * q * q;
    }
    if (sumq2 > 0) scale = sumqx / sumq2;
  }

  // 5. Sign flip for a negative scale (ggml: "should never happen"), grid indices.
  if (scale < 0) {
    scale = -scale;
    for (int k = 0; k < ns; ++k)
      out.signs[k] = C.parity ? static_cast<uint8_t>(~out.signs[k] & 127)
                              : static_cast<uint8_t>(~out.signs[k]);
  }
  for (int k = 0; k < ng; ++k) {
    const int gi = lat.map[LevelIndex<C.gdim, kBits>(L + C.gdim * k)];
    out.grid[k] = gi >= 0 ? gi : 0;
  }
  out.scale = scale;
}

GridSubBlockFn IQ2XXSSearch() { return &SearchSubBlock<kIQ2XXSGridConfig>; }
GridSubBlockFn IQ2XSSearch() { return &SearchSubBlock<kIQ2XSGridConfig>; }
GridSubBlockFn IQ2SSearch() { return &SearchSubBlock<kIQ2SGridConfig>; }
GridSubBlockFn IQ3XXSSearch() { return &SearchSubBlock<kIQ3XXSGridConfig>; }
GridSubBlockFn IQ3SSearch() { return &SearchSubBlock<kIQ3SGridConfig>; }

}  // namespace bitsmith::iq::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace bitsmith::iq {

const std::vector<uint16_t>& GetNeighbourCodes(LatticeId id) {
  static std::array<std::once_flag, kNumLattices> once;
  static std::array<std::vector<uint16_t>, kNumLattices> codes;
  const int k = static_cast<int>(id);
  std::call_once(once[k], [&] {
    const Lattice& lat = GetLattice(id);
    const NeighbourChunks& nc = GetNeighbourChunks(id);
    std::vector<uint16_t>& out = codes[k];
    out = lat.neighbours;  // counts stay; entries are replaced below
    for (size_t u = 0; u < lat.map.size(); ++u) {
      if (lat.map[u] >= 0 || lat.map[u] == INT32_MIN) continue;
      const size_t h = static_cast<size_t>(-(lat.map[u] + 1));
      for (int j = 1; j <= lat.neighbours[h]; ++j)
        out[h + j] = static_cast<uint16_t>(nc.code[lat.neighbours[h + j]]);
    }
  });
  return codes[k];
}

HWY_EXPORT(IQ2XXSSearch);
HWY_EXPORT(IQ2XSSearch);
HWY_EXPORT(IQ2SSearch);
HWY_EXPORT(IQ3XXSSearch);
HWY_EXPORT(IQ3SSearch);

// The search is picked once per call (per chunk of rows), for the current target.
#define BITSMITH_IQ_GRID_SIMD(NAME)                                                          \
  void Quantize##NAME##GridSimd(const float* x, void* y, int64_t nrows, int64_t n_per_row, \
                                const float* imatrix) {                                    \
    Quantize##NAME##Blocks(HWY_DYNAMIC_DISPATCH(NAME##Search)(), x, y, nrows, n_per_row,   \
                           imatrix);                                                       \
  }
BITSMITH_IQ_GRID_SIMD(IQ2XXS)
BITSMITH_IQ_GRID_SIMD(IQ2XS)
BITSMITH_IQ_GRID_SIMD(IQ2S)
BITSMITH_IQ_GRID_SIMD(IQ3XXS)
BITSMITH_IQ_GRID_SIMD(IQ3S)
#undef BITSMITH_IQ_GRID_SIMD

}  // namespace bitsmith::iq
#endif  // HWY_ONCE
