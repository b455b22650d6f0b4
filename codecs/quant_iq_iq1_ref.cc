// Scalar reference codecs of IQ1_S and IQ1_M.
//
// Reproduces ggml d99724f2 (ggml-quants.c): quantize_row_iq1_s_impl and
// quantize_row_iq1_m_impl behind ggml_quantize_chunk, and dequantize_row_iq1_{s,m}.
// Both quantizers search, for each group of values sharing a scale, the two
// boundaries that split the values (sorted ascending) into levels -1, 0, +1 with a
// shift of +-delta, maximising sumqx^2/sumq2; then snap each group of 8 to the
// IQ1 grid (kgrid_1bit_2048) through the neighbour lists.
//
// Two ggml details decide bytes here:
//  * ggml sorts (value, index) pairs with qsort and a comparator on the value
//    only. glibc's qsort is a stable merge sort for these sizes, so equal values
//    keep index order: we use std::stable_sort (README section 6).
//  * All-zero sub-blocks get shift +1 (IQ1_S) or 0 (IQ1_M), as in d99724f2
//    (older llama.cpp left them unset).
#include <algorithm>  // std::stable_sort
#include <cfloat>     // FLT_MAX
#include <cmath>      // fabsf, sqrtf
#include <cstring>    // std::memset
#include <vector>

#include "codecs/iq_kernels.h"
#include "codecs/quant_iq1_search.h"
#include "codecs/iq_lattice.h"
#include "formats/blocks_iq.h"
#include "formats/half.h"
#include "formats/iq_grids/iq1s_grid.h"

namespace bitsmith::iq {
namespace {

constexpr int kQK = 256;
constexpr float kXp[3] = {-1 + kIQ1Delta, kIQ1Delta, 1 + kIQ1Delta};   // levels with shift +delta
constexpr float kXm[3] = {-1 - kIQ1Delta, -kIQ1Delta, 1 - kIQ1Delta};  // levels with shift -delta

inline float SumSquares(const float* x) {
  float s = 0;
  for (int i = 0; i < kQK; ++i) s += x[i] * x[i];
  return s;
}


inline uint32_t LevelIndex8(const int8_t* L) {
  uint32_t u = 0;
  for (int j = 0; j < 8; ++j) u |= static_cast<uint32_t>(L[j]) << (2 * j);
  return u;
}

}  // namespace

// IQ1_S. Per super-block of 256: sigma2 = 2 sum x^2 / 256. Per sub-block of 32:
//  1. w = qw * sqrtf(sigma2 + x^2); max |x| < 1e-12 -> all-zero (scale 0, shift +1).
//  2. Sort; prefix sums sumx[j] = sum w*x, sumw[j] = sum w over the sorted values.
//  3. For every split i1 <= i2 (levels -1 | 0 | +1) and shift +delta then -delta:
//     sumqx = sum over the 3 ranges of (range sum) * level, sumq2 likewise with
//     level^2; keep the first strict maximum of sumqx^2/sumq2 (cross-multiplied).
//  4. Levels 0/1/2 from the split; a negative scale mirrors them and the shift.
//  5. Snap each group of 8 to the grid (off-grid -> best neighbour at `scale`);
//     if any group moved, recompute scale = sumqx/sumq2 (when both > 0).
// Then d = max_scale/15, stored as fp16(d*1.125); scale index nearest_int(0.5*(id*s-1))
// clamped to 0..7, bit 3 set for shift -delta, in qh bits 12..15.
// Stable ascending order of xb by value: idx[j] = index of the j-th smallest.
void SortIQ1Ref(const float* xb, int n, int* idx) {
  for (int j = 0; j < n; ++j) idx[j] = j;
  std::stable_sort(idx, idx + n, [xb](int a, int b) { return xb[a] < xb[b]; });
}

// ggml's iq1_find_best_neighbour2, its first loop: the neighbour minimising
// sum w*(scale*xx[l] - x)^2, first strict minimum below FLT_MAX; -1 when every
// distance is inf or NaN (w*diff^2 overflows: |x|^3 * imatrix weight beyond
// ~2^128, e.g. |x| >= 2^43 with weights ~1).
int NeighbourIQ1Scan(const uint16_t* nb, const float* xval, const float* weight, float scale, const float* xx) {
  const Lattice& lat = GetLattice(LatticeId::kIQ1S);
  const int count = nb[0];
  float best_score = FLT_MAX;
  int best = -1;
  for (int j = 1; j <= count; ++j) {
    const int8_t* pg = lat.pos.data() + 8 * nb[j];
    float d2 = 0;
    for (int i = 0; i < 8; ++i) {
      const float q = xx[(pg[i] - 1) / 2];
      const float w = weight[i];
      const float diff = scale * q - xval[i];
      d2 += w * diff * diff;
    }
    if (d2 < best_score) best_score = d2, best = nb[j];
  }
  return best;
}

// When the scan finds nothing, ggml scans the whole grid with d2 = sum_j w[j] *
// (scale*q_j - xval[i])^2 for grid point i: xval[i], not xval[j], reads up to 2040
// floats past the group's 8 values (undefined behaviour; the bytes depend on the
// memory after the group: the next values of the row, or past its end; fuzz
// finding ggml_diff_iq1s_huge_and_subnormal, fuzz/open_findings/README.md). We do
// not reproduce that read: bitsmith takes the first neighbour, the grid point
// nearest to the levels (lists are sorted by distance, then index). The SIMD
// path does the same; the differential tests skip exactly these blocks.
int NeighbourIQ1Ref(const uint16_t* nb, const float* xval, const float* weight, float scale, const float* xx) {
  const int best = NeighbourIQ1Scan(nb, xval, weight, scale, xx);
  return best >= 0 ? best : nb[1];
}

const uint32_t* IQ1LevelCodes() {
  static const std::vector<uint32_t> codes = [] {
    const Lattice& lat = GetLattice(LatticeId::kIQ1S);
    std::vector<uint32_t> c(2048);
    for (int g = 0; g < 2048; ++g)
      for (int i = 0; i < 8; ++i) c[g] |= static_cast<uint32_t>(lat.Level(g, i)) << (2 * i);
    return c;
  }();
  return codes.data();
}

namespace {
IQ1Split SearchIQ1SOne(const float* sumx, const float* sumw, float max) {
  float best_score = -FLT_MAX, scale = max;
  int besti1 = -1, besti2 = -1, best_shift = 0;
  for (int i1 = 0; i1 <= 32; ++i1) {
    for (int i2 = i1; i2 <= 32; ++i2) {
      float sumqx = (sumx[i1] - sumx[0]) * kXp[0] + (sumx[i2] - sumx[i1]) * kXp[1] +
                    (sumx[32] - sumx[i2]) * kXp[2];
      float sumq2 = (sumw[i1] - sumw[0]) * kXp[0] * kXp[0] + (sumw[i2] - sumw[i1]) * kXp[1] * kXp[1] +
                    (sumw[32] - sumw[i2]) * kXp[2] * kXp[2];
      if (sumq2 > 0 && sumqx * sumqx > best_score * sumq2) {
        scale = sumqx / sumq2;
        best_score = scale * sumqx;
        besti1 = i1, besti2 = i2, best_shift = 1;
      }
      sumqx = (sumx[i1] - sumx[0]) * kXm[0] + (sumx[i2] - sumx[i1]) * kXm[1] +
              (sumx[32] - sumx[i2]) * kXm[2];
      sumq2 = (sumw[i1] - sumw[0]) * kXm[0] * kXm[0] + (sumw[i2] - sumw[i1]) * kXm[1] * kXm[1] +
              (sumw[32] - sumw[i2]) * kXm[2] * kXm[2];
      if (sumq2 > 0 && sumqx * sumqx > best_score * sumq2) {
        scale = sumqx / sumq2;
        best_score = scale * sumqx;
        besti1 = i1, besti2 = i2, best_shift = -1;
      }
    }
  }
  return IQ1Split{scale, besti1, besti2, best_shift};
}
}  // namespace

void SearchIQ1SRef(const IQ1SSub* subs, IQ1Split* out) {
  for (int ib = 0; ib < 8; ++ib)
    if (subs[ib].active) out[ib] = SearchIQ1SOne(subs[ib].sumx, subs[ib].sumw, subs[ib].max);
}

namespace {
void SearchIQ1MPrefix(const IQ1MHalf* halves, IQ1Split* out);
const IQ1Hooks kRefHooks{SortIQ1Ref, NeighbourIQ1Ref, SearchIQ1SRef, SearchIQ1MRef};
const IQ1Hooks k28706Hooks{SortIQ1Ref, NeighbourIQ1Ref, SearchIQ1SRef, SearchIQ1MPrefix};
}  // namespace

void QuantizeIQ1SRef(const float* x, void* vy, int64_t nrows, int64_t n_per_row, const float* imatrix) {
  QuantizeIQ1SWith(kRefHooks, x, vy, nrows, n_per_row, imatrix);
}

void QuantizeIQ1SWith(const IQ1Hooks& hooks, const float* x, void* vy, int64_t nrows, int64_t n_per_row,
                      const float* imatrix) {
  const Lattice& lat = GetLattice(LatticeId::kIQ1S);
  auto* y = static_cast<BlockIQ1S*>(vy);
  const int64_t nbl = n_per_row / kQK;
  IQ1SSub subs[8];
  IQ1Split splits[8];
  float weights[8][32];
  int idxs[8][32];
  for (int64_t r = 0; r < nrows; ++r) {
    for (int64_t ibl = 0; ibl < nbl; ++ibl, x += kQK, ++y) {
      std::memset(y, 0, sizeof(*y));
      const float* qwb = imatrix + kQK * ibl;
      float scales[8];
      int shifts[8];
      float max_scale = 0;
      const float sigma2 = 2 * SumSquares(x) / kQK;
      // 1.-2. Weights, maxima, sorted prefix sums of the 8 sub-blocks (independent).
      for (int ib = 0; ib < 8; ++ib) {
        const float* xb = x + 32 * ib;
        const float* qw = qwb + 32 * ib;
        float* weight = weights[ib];
        IQ1SSub& sub = subs[ib];
        for (int i = 0; i < 32; ++i) weight[i] = qw[i] * sqrtf(sigma2 + xb[i] * xb[i]);
        float max = fabsf(xb[0]);
        for (int i = 1; i < 32; ++i) max = MaxF(max, fabsf(xb[i]));
        sub.max = max;
        sub.active = !(max < 1e-12f);  // GROUP_MAX_EPS_IQ1_S
        splits[ib] = IQ1Split{};
        if (!sub.active) continue;
        int* idx = idxs[ib];
        hooks.sort(xb, 32, idx);
        sub.sumx[0] = sub.sumw[0] = 0;
        for (int j = 0; j < 32; ++j) {
          const int i = idx[j];
          sub.sumx[j + 1] = sub.sumx[j] + weight[i] * xb[i];
          sub.sumw[j + 1] = sub.sumw[j] + weight[i];
        }
      }
      // 3. Exhaustive split search.
      hooks.search_s(subs, splits);
      for (int ib = 0; ib < 8; ++ib) {
        const float* xb = x + 32 * ib;
        const float* weight = weights[ib];
        const int* idx = idxs[ib];
        scales[ib] = 0;
        shifts[ib] = 1;
        if (!subs[ib].active) continue;
        const IQ1Split split = splits[ib];
        float scale = split.scale;
        int besti1 = split.i1, besti2 = split.i2, best_shift = split.shift;
        if (besti1 < 0 || besti2 < 0 || best_shift == 0) continue;
        // 4. Levels.
        int8_t L[32];
        for (int j = 0; j < besti1; ++j) L[idx[j]] = 0;
        for (int j = besti1; j < besti2; ++j) L[idx[j]] = 1;
        for (int j = besti2; j < 32; ++j) L[idx[j]] = 2;
        if (scale < 0) {
          for (int j = 0; j < 32; ++j) L[j] = static_cast<int8_t>(2 - L[j]);
          scale = -scale;
          best_shift = -best_shift;
        }
        // 5. Snap to the grid.
        const float* xx = best_shift == 1 ? kXp : kXm;
        bool all_on_grid = true;
        int index[4];
        for (int k = 0; k < 4; ++k) {
          const uint32_t u = LevelIndex8(L + 8 * k);
          int gi = lat.map[u];
          if (gi < 0) {
            all_on_grid = false;
            gi = hooks.neighbour(lat.NeighboursOf(u), xb + 8 * k, weight + 8 * k, scale, xx);
            for (int i = 0; i < 8; ++i) L[8 * k + i] = static_cast<int8_t>(lat.Level(gi, i));
          }
          index[k] = gi;
        }
        if (!all_on_grid) {
          float sumqx = 0, sumq2 = 0;
          for (int k = 0; k < 4; ++k)
            for (int j = 0; j < 8; ++j) {
              const float w = weight[8 * k + j];
              const float q = xx[lat.Level(index[k], j)];
              sumqx += w * q * xb[8 * k + j];
              sumq2 += w * q * q;
            }
          if (sumqx > 0 && sumq2 > 0) scale = sumqx / sumq2;
        }
        for (int k = 0; k < 4; ++k) y->qs[4 * ib + k] = static_cast<uint8_t>(index[k] & 255);
        y->qh[ib] = PackIQ1SQhIndices(index);
        scales[ib] = scale;
        shifts[ib] = best_shift;
        max_scale = MaxF(max_scale, scale);
      }
      if (!max_scale) continue;
      const float d = max_scale / 15;
      y->d = F32ToF16Bits(d * 1.125f);
      const float id = 1 / d;
      for (int ib = 0; ib < 8; ++ib) {
        int l = NearestInt(0.5f * (id * scales[ib] - 1));
        l = l < 0 ? 0 : l > 7 ? 7 : l;
        y->qh[ib] = static_cast<uint16_t>(y->qh[ib] | PackIQ1SQhScale(l, shifts[ib] == -1));
      }
    }
  }
}

// IQ1_M. Per super-block: sigma2 = 2 sum x^2 / 256; per half-sub-block of 16 values:
//  1. w = qw * sqrtf(sigma2 + x^2), or x^2 without imatrix; max |x| < 1e-7 ->
//     all-zero (scale 0, shift code 0).
//  2. Sort, then for every split i1 <= i2 accumulate, over the sorted values in
//     order, the four sums for the shift codes k (0: +,+  1: +,-  2: -,+  3: -,-;
//     first sign for the values of the first 8, second for the last 8), and keep the
//     first strict maximum of sumqx^2/sumq2 over (i1, i2, k).
//  3. Levels, mirror on negative scale (k -> 3-k), snap both groups of 8 to the grid;
//     recompute the scale if a group moved.
// Then with d = max_scale/15: 3-bit scale indices, shift bits 0x08/0x80 in qh, and
// the final d = sumqx/sumq2 over the whole super-block with the quantized scales,
// stored as fp16(d*1.1125) in the top nibbles of sc[0..3].
// Step 2 is the search passed to QuantizeIQ1MWith: SearchIQ1MRef = d99724f2 (the
// product, the reference vectors), SearchIQ1MPrefix = llama.cpp since PR #28706
// (see IQ1MPrefix; test-only, to compare with the npm ggml).
namespace {

// Split search of one IQ1_M half-sub-block as d99724f2 writes it: for every split
// (i1, i2), the four sums (shift codes k) accumulated over the sorted values j =
// 0..15 in order, each term (w*q)*x and (w*q)*q with level 0 / 1 / 2 for j < i1 /
// < i2 / else. A candidate's running sums after the values j < i2 do not depend on
// the rest, so they are kept (exactly the same float operations in the same
// order, only not repeated): per i1 the level-0 prefix, per i2 one more level-1
// term, then the level-2 suffix is added to a copy.
struct IQ1MSums {
  float qx[4] = {0, 0, 0, 0}, q2[4] = {0, 0, 0, 0};
  // Adds sorted value i (its index in the sub-block) at level lev.
  void Add(const float* xb, const float* weight, int i, int lev) {
    const float p = kXp[lev], m = kXm[lev];
    // First-half values take shift sign 1 for k = 0,1; second-half values for k = 0,2.
    const float a = p, b = i < 8 ? p : m, c = i < 8 ? m : p;
    qx[0] += weight[i] * a * xb[i];
    qx[1] += weight[i] * b * xb[i];
    qx[2] += weight[i] * c * xb[i];
    qx[3] += weight[i] * m * xb[i];
    q2[0] += weight[i] * a * a;
    q2[1] += weight[i] * b * b;
    q2[2] += weight[i] * c * c;
    q2[3] += weight[i] * m * m;
  }
};

// Prefix sums of one IQ1_M half-sub-block as llama.cpp computes them since PR
// #28706 (Sep 2026, "IQ1_M build prefix sums once per block"), which the npm ggml
// of the differential tests (@node-llama-cpp/linux-x64 3.22.1) contains: per half
// h of the 16 values, px[h][j] = sum of w*x and pw[h][j] = sum of w over the first
// j sorted values that lie in half h. Because v0 - v1 = v1 - v2 = -1 for both
// level sets, a split's sum collapses to T*v2 - px[i1] - px[i2]; the q^2 sum to
// W*v2*v2 + pw[i1]*(v0^2 - v1^2) + pw[i2]*(v1^2 - v2^2). Mathematically the same
// sums as above, rounded differently, so a few blocks (ties, overflow to inf)
// come out different.
struct IQ1MPrefix {
  float px[2][17], pw[2][17];
  float txs[2], tws[2];
  IQ1MPrefix() = default;
  IQ1MPrefix(const float* xb, const float* weight, const int* idx) {
    px[0][0] = px[1][0] = pw[0][0] = pw[1][0] = 0;
    for (int j = 0; j < 16; ++j) {
      const int i = idx[j];
      const int h = i < 8 ? 0 : 1;
      px[h][j + 1] = px[h][j] + weight[i] * xb[i];
      px[1 - h][j + 1] = px[1 - h][j];
      pw[h][j + 1] = pw[h][j] + weight[i];
      pw[1 - h][j + 1] = pw[1 - h][j];
    }
    for (int h = 0; h < 2; ++h) txs[h] = px[h][16], tws[h] = pw[h][16];
  }
  void Sums(int i1, int i2, float sumqx[4], float sumq2[4]) const {
    constexpr float p2 = kXp[2], m2 = kXm[2];
    constexpr float cp1 = kXp[0] * kXp[0] - kXp[1] * kXp[1], cp2 = kXp[1] * kXp[1] - kXp[2] * kXp[2];
    constexpr float cm1 = kXm[0] * kXm[0] - kXm[1] * kXm[1], cm2 = kXm[1] * kXm[1] - kXm[2] * kXm[2];
    float qx_p[2], qx_m[2], q2_p[2], q2_m[2];
    for (int h = 0; h < 2; ++h) {
      const float sx = px[h][i1] + px[h][i2];
      qx_p[h] = txs[h] * p2 - sx;
      qx_m[h] = txs[h] * m2 - sx;
      q2_p[h] = tws[h] * p2 * p2 + pw[h][i1] * cp1 + pw[h][i2] * cp2;
      q2_m[h] = tws[h] * m2 * m2 + pw[h][i1] * cm1 + pw[h][i2] * cm2;
    }
    sumqx[0] = qx_p[0] + qx_p[1];
    sumqx[1] = qx_p[0] + qx_m[1];
    sumqx[2] = qx_m[0] + qx_p[1];
    sumqx[3] = qx_m[0] + qx_m[1];
    sumq2[0] = q2_p[0] + q2_p[1];
    sumq2[1] = q2_p[0] + q2_m[1];
    sumq2[2] = q2_m[0] + q2_p[1];
    sumq2[3] = q2_m[0] + q2_m[1];
  }
};

// Keeps the first strict maximum of sumqx^2/sumq2 over the four codes k of one
// candidate (i1, i2), after the candidates before it.
struct IQ1MBest {
  float best_score = -FLT_MAX;
  IQ1Split split;
  void Consider(int i1, int i2, const float* sumqx, const float* sumq2) {
    for (int k = 0; k < 4; ++k) {
      if (sumq2[k] > 0 && sumqx[k] * sumqx[k] > best_score * sumq2[k]) {
        split.scale = sumqx[k] / sumq2[k];
        best_score = split.scale * sumqx[k];
        split.i1 = i1, split.i2 = i2, split.shift = k;
      }
    }
  }
};

// The llama.cpp #28706 search (prefix sums), for QuantizeIQ1MLlamaCpp28706Ref.
void SearchIQ1MPrefix(const IQ1MHalf* halves, IQ1Split* out) {
  for (int ib = 0; ib < 16; ++ib) {
    const IQ1MHalf& h = halves[ib];
    if (!h.active) continue;
    IQ1MBest best;
    best.split.scale = h.max;
    const IQ1MPrefix prefix(h.xb, h.weight, h.idx);
    for (int i1 = 0; i1 <= 16; ++i1)
      for (int i2 = i1; i2 <= 16; ++i2) {
        float sumqx[4], sumq2[4];
        prefix.Sums(i1, i2, sumqx, sumq2);
        best.Consider(i1, i2, sumqx, sumq2);
      }
    out[ib] = best.split;
  }
}

}  // namespace

void SearchIQ1MLlamaCpp28706(const IQ1MHalf* halves, IQ1Split* out) { SearchIQ1MPrefix(halves, out); }

// The d99724f2 search: for every split the four sums accumulated over the sorted
// values in order (IQ1MSums: level-0 prefix per i1, one more level-1 term per i2,
// the level-2 suffix added to a copy).
void SearchIQ1MRef(const IQ1MHalf* halves, IQ1Split* out) {
  for (int ib = 0; ib < 16; ++ib) {
    const IQ1MHalf& h = halves[ib];
    if (!h.active) continue;
    IQ1MBest best;
    best.split.scale = h.max;
    IQ1MSums level0;  // values j < i1 at level 0
    for (int i1 = 0; i1 <= 16; ++i1) {
      if (i1 > 0) level0.Add(h.xb, h.weight, h.idx[i1 - 1], 0);
      IQ1MSums head = level0;  // + values i1 <= j < i2 at level 1
      for (int i2 = i1; i2 <= 16; ++i2) {
        if (i2 > i1) head.Add(h.xb, h.weight, h.idx[i2 - 1], 1);
        IQ1MSums all = head;
        for (int j = i2; j < 16; ++j) all.Add(h.xb, h.weight, h.idx[j], 2);
        best.Consider(i1, i2, all.qx, all.q2);
      }
    }
    out[ib] = best.split;
  }
}

void QuantizeIQ1MWith(const IQ1Hooks& hooks, const float* x, void* vy, int64_t nrows, int64_t n_per_row,
                      const float* imatrix) {
  const Lattice& lat = GetLattice(LatticeId::kIQ1S);
  auto* y = static_cast<BlockIQ1M*>(vy);
  const int64_t nbl = n_per_row / kQK;
  constexpr uint8_t kShiftMasks[4] = {0x00, 0x80, 0x08, 0x88};
  IQ1MHalf halves[16];
  IQ1Split splits[16];
  for (int64_t r = 0; r < nrows; ++r) {
    for (int64_t ibl = 0; ibl < nbl; ++ibl, x += kQK, ++y) {
      std::memset(y, 0, sizeof(*y));
      const float* qwb = imatrix != nullptr ? imatrix + kQK * ibl : nullptr;
      float scales[16];
      int shifts[16];
      float max_scale = 0;
      const float sigma2 = 2 * SumSquares(x) / kQK;
      auto weights_of = [&](int ib, float* weight) {
        const float* xb = x + 16 * ib;
        if (qwb != nullptr) {
          for (int i = 0; i < 16; ++i) weight[i] = qwb[16 * ib + i] * sqrtf(sigma2 + xb[i] * xb[i]);
        } else {
          for (int i = 0; i < 16; ++i) weight[i] = xb[i] * xb[i];
        }
      };
      // 1. Weights, maxima and sorted orders of the 16 halves (independent).
      for (int ib = 0; ib < 16; ++ib) {
        IQ1MHalf& h = halves[ib];
        h.xb = x + 16 * ib;
        weights_of(ib, h.weight);
        float max = fabsf(h.xb[0]);
        for (int i = 1; i < 16; ++i) max = MaxF(max, fabsf(h.xb[i]));
        h.max = max;
        h.active = !(max < 1e-7f);  // GROUP_MAX_EPS_IQ1_M
        if (h.active) hooks.sort(h.xb, 16, h.idx);
        splits[ib] = IQ1Split{};
      }
      // 2. Split search.
      hooks.search_m(halves, splits);
      for (int ib = 0; ib < 16; ++ib) {
        const IQ1MHalf& h = halves[ib];
        const float* xb = h.xb;
        const float* weight = h.weight;
        const int* idx = h.idx;
        scales[ib] = 0;
        shifts[ib] = 0;
        if (!h.active) continue;
        float scale = splits[ib].scale;
        int besti1 = splits[ib].i1, besti2 = splits[ib].i2, best_k = splits[ib].shift;
        if (besti1 < 0 || besti2 < 0 || best_k < 0) continue;
        // 3. Levels, mirror, snap to the grid.
        int8_t L[16];
        for (int j = 0; j < besti1; ++j) L[idx[j]] = 0;
        for (int j = besti1; j < besti2; ++j) L[idx[j]] = 1;
        for (int j = besti2; j < 16; ++j) L[idx[j]] = 2;
        if (scale < 0) {
          for (int j = 0; j < 16; ++j) L[j] = static_cast<int8_t>(2 - L[j]);
          scale = -scale;
          best_k = 3 - best_k;
        }
        const float* xxs[2] = {best_k < 2 ? kXp : kXm, best_k % 2 == 0 ? kXp : kXm};
        bool all_on_grid = true;
        int index[2];
        for (int k = 0; k < 2; ++k) {
          const uint32_t u = LevelIndex8(L + 8 * k);
          int gi = lat.map[u];
          if (gi < 0) {
            all_on_grid = false;
            gi = hooks.neighbour(lat.NeighboursOf(u), xb + 8 * k, weight + 8 * k, scale, xxs[k]);
            for (int i = 0; i < 8; ++i) L[8 * k + i] = static_cast<int8_t>(lat.Level(gi, i));
          }
          index[k] = gi;
        }
        if (!all_on_grid) {
          float sumqx_f = 0, sumq2_f = 0;
          for (int k = 0; k < 2; ++k)
            for (int j = 0; j < 8; ++j) {
              const float w = weight[8 * k + j];
              const float q = xxs[k][lat.Level(index[k], j)];
              sumqx_f += w * q * xb[8 * k + j];
              sumq2_f += w * q * q;
            }
          if (sumqx_f > 0 && sumq2_f > 0) scale = sumqx_f / sumq2_f;
        }
        y->qs[2 * ib] = static_cast<uint8_t>(index[0] & 255);
        y->qs[2 * ib + 1] = static_cast<uint8_t>(index[1] & 255);
        y->qh[ib] = static_cast<uint8_t>((index[0] >> 8) | ((index[1] >> 8) << 4));
        scales[ib] = scale;
        shifts[ib] = best_k;
        max_scale = MaxF(max_scale, scale);
      }
      if (!max_scale) continue;
      float d = max_scale / 15;
      const float id = 1 / d;
      float sumqx_f = 0, sumq2_f = 0;
      for (int ib = 0; ib < 16; ++ib) {
        int l = NearestInt(0.5f * (id * scales[ib] - 1));
        l = l < 0 ? 0 : l > 7 ? 7 : l;
        y->sc[ib / 4] = static_cast<uint16_t>(y->sc[ib / 4] | (l << (3 * (ib % 4))));
        y->qh[ib] = static_cast<uint8_t>(y->qh[ib] | kShiftMasks[shifts[ib]]);
        const float* xb = x + 16 * ib;
        const float* weight = halves[ib].weight;
        for (int k = 0; k < 2; ++k) {
          const float* xx = k == 0 ? (shifts[ib] < 2 ? kXp : kXm) : (shifts[ib] % 2 == 0 ? kXp : kXm);
          const int gi = IQ1MGridIndex(*y, ib, k);
          for (int j = 0; j < 8; ++j) {
            const float w = weight[8 * k + j];
            const float q = xx[lat.Level(gi, j)] * (2 * l + 1);
            sumqx_f += w * q * xb[8 * k + j];
            sumq2_f += w * q * q;
          }
        }
      }
      if (sumq2_f > 0) d = sumqx_f / sumq2_f;
      SetIQ1MScaleBits(*y, F32ToF16Bits(d * 1.1125f));
    }
  }
}

void QuantizeIQ1MRef(const float* x, void* vy, int64_t nrows, int64_t n_per_row, const float* imatrix) {
  QuantizeIQ1MWith(kRefHooks, x, vy, nrows, n_per_row, imatrix);
}

void QuantizeIQ1MLlamaCpp28706Ref(const float* x, void* vy, int64_t nrows, int64_t n_per_row,
                                  const float* imatrix) {
  QuantizeIQ1MWith(k28706Hooks, x, vy, nrows, n_per_row, imatrix);
}

// ---------------------------------------------------------------------------
// Dequantization: y = dl * (grid + delta), exact in fp32.
void DequantizeIQ1SRef(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const BlockIQ1S*>(vx);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = F16BitsToF32(x[i].d);
    for (int s = 0; s < 8; ++s) {
      const uint16_t h = x[i].qh[s];
      const float dl = d * (2 * IQ1SScale(h) + 1);
      const float delta = IQ1SDeltaNegative(h) ? -kIQ1Delta : kIQ1Delta;
      for (int l = 0; l < 4; ++l, y += 8) {
        const auto* grid = reinterpret_cast<const int8_t*>(iq_grids::kIQ1SGrid + IQ1SGridIndex(x[i], s, l));
        for (int j = 0; j < 8; ++j) y[j] = dl * (grid[j] + delta);
      }
    }
  }
}

void DequantizeIQ1MRef(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const BlockIQ1M*>(vx);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = F16BitsToF32(IQ1MScaleBits(x[i]));
    for (int h = 0; h < 16; ++h) {
      const float dl = d * (2 * IQ1MScale(x[i], h) + 1);
      for (int k = 0; k < 2; ++k, y += 8) {
        const float delta = IQ1MDeltaNegative(x[i], h, k) ? -kIQ1Delta : kIQ1Delta;
        const auto* grid = reinterpret_cast<const int8_t*>(iq_grids::kIQ1SGrid + IQ1MGridIndex(x[i], h, k));
        for (int j = 0; j < 8; ++j) y[j] = dl * (grid[j] + delta);
      }
    }
  }
}

}  // namespace bitsmith::iq
