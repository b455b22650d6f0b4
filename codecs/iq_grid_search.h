// The sub-block search shared by ggml's IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS and IQ3_S
// quantizers (internal to codecs/), written once as a template over a constant
// configuration so that each type compiles to straight code.
//
// Reproduces quantize_row_iq2_{xxs,xs,s}_impl and quantize_row_iq3_{xxs,s}_impl of
// ggml d99724f2 (ggml-quants.c) for one sub-block (the values sharing one 4-bit
// scale), keeping ggml's evaluation order (no FMA: -ffp-contract=off) and its
// quirks, which are listed where they occur. The super-block part (weights, the
// fp16 d, packing) is in codecs/quant_iq_grid_ref.cc.
#pragma once

#include <cfloat>   // FLT_MAX
#include <cmath>    // sqrtf
#include <cstdint>
#include <cstring>  // std::memcpy

#include "codecs/iq_kernels.h"
#include "codecs/iq_lattice.h"

namespace bitsmith::iq {

// How the first scale of the search is found.
enum class InitialScale : uint8_t {
  kQpQuants,    // IQ2_XXS: make_qp_quants(n, kMaxQ+1) over |x|; id = (...) / (3 * scale)
  kMaxOverTop,  // the others: scale = max / (2*kMaxQ - 1); id = (...) / max
};
// How the winning levels are refined after the scale search.
enum class Refine : uint8_t {
  kAllGroups,              // IQ2_XXS: re-round every group with the best scale
  kOffGridGroups,          // IQ2_XS, IQ2_S, IQ3_XXS: only groups whose rounding was off the grid
  kAllIfAnyOffGridNoInit,  // IQ3_S: every group, if any was off the grid (flags start false)
};

struct GridSearchConfig {
  LatticeId lattice;
  int n;         // values per sub-block: 32 (IQ2_XXS, IQ3_*) or 16 (IQ2_XS, IQ2_S)
  int gdim;      // values per grid group: 8 (IQ2) or 4 (IQ3)
  int kmaxq;     // lattice levels 0..kmaxq-1: 3 (IQ2) or 8 (IQ3)
  int is_lo, is_hi;
  float is_step;  // id = (2*kmaxq - 1 + is*is_step) / denominator, is = is_lo..is_hi
  bool parity;    // 7 sign bits per 8 values: flip the smallest w*x^2 when odd
  InitialScale init;
  Refine refine;
  float eps;        // a sub-block with max |x| < eps is all-zero ...
  bool exact_zero;  // ... or, for IQ3_S, only max == 0 (ggml tests `!max`)
};

// The five search configurations (ggml d99724f2's constants, per quantizer).
inline constexpr GridSearchConfig kIQ2XXSGridConfig{LatticeId::kIQ2XXS, 32, 8, 3, -6, 6, 0.1f, true,
                                                   InitialScale::kQpQuants, Refine::kAllGroups, 1e-15f,
                                                   false};
inline constexpr GridSearchConfig kIQ2XSGridConfig{LatticeId::kIQ2XS, 16, 8, 3, -9, 9, 0.1f, true,
                                                  InitialScale::kMaxOverTop, Refine::kOffGridGroups,
                                                  1e-15f, false};
inline constexpr GridSearchConfig kIQ2SGridConfig{LatticeId::kIQ2S, 16, 8, 3, -9, 9, 0.1f, false,
                                                 InitialScale::kMaxOverTop, Refine::kOffGridGroups, 1e-8f,
                                                 false};
inline constexpr GridSearchConfig kIQ3XXSGridConfig{LatticeId::kIQ3XXS, 32, 4, 8, -15, 15, 0.2f, true,
                                                   InitialScale::kMaxOverTop, Refine::kOffGridGroups,
                                                   1e-8f, false};
inline constexpr GridSearchConfig kIQ3SGridConfig{LatticeId::kIQ3S, 32, 4, 8, -9, 9, 0.2f, false,
                                                 InitialScale::kMaxOverTop,
                                                 Refine::kAllIfAnyOffGridNoInit, 0.0f, true};

// Result of one sub-block.
struct GridSubBlock {
  bool zero = false;    // ggml's early `continue`: nothing written for this sub-block
  float scale = 0;      // >= 0
  int grid[8] = {};     // grid index per group (n / gdim groups)
  uint8_t signs[4] = {};  // per 8 values: 7 bits (parity types) or 8 bits
};

// ggml's make_qp_quants(n, nmax, x, L, w): the best positive scale for levels
// 0..nmax of x >= 0 (IQ2_XXS's starting point). L is uint8_t as in ggml: a negative
// level (possible: IQ2_XXS passes |x| with one sign flipped back for parity) wraps
// to 255 when stored and is read back as such, which is reproduced.
inline float MakeQpQuants(int n, int nmax, const float* x, uint8_t* L, const float* w) {
  float max = 0;
  for (int i = 0; i < n; ++i) max = MaxF(max, x[i]);
  if (max < 1e-15f) {  // GROUP_MAX_EPS
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.f;
  }
  // 1. Round with nmax/max, then try 8 neighbouring inverse scales.
  float iscale = nmax / max;
  for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(NearestInt(iscale * x[i]));
  const float scale = 1 / iscale;
  float best_mse = 0;
  for (int i = 0; i < n; ++i) {
    const float diff = x[i] - scale * L[i];
    best_mse += w[i] * diff * diff;
  }
  for (int is = -4; is <= 4; ++is) {
    if (is == 0) continue;
    const float iscale_is = (0.1f * is + nmax) / max;
    const float scale_is = 1 / iscale_is;
    float mse = 0;
    for (int i = 0; i < n; ++i) {
      int l = NearestInt(iscale_is * x[i]);
      l = l < nmax ? l : nmax;
      const float diff = x[i] - scale_is * l;
      mse += w[i] * diff * diff;
    }
    if (mse < best_mse) best_mse = mse, iscale = iscale_is;
  }
  // 2. Levels and weighted sums at the best inverse scale.
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = NearestInt(iscale * x[i]);
    l = l < nmax ? l : nmax;
    L[i] = static_cast<uint8_t>(l);
    sumlx += w[i] * x[i] * l;
    suml2 += w[i] * l * l;
  }
  // 3. Up to 5 passes of coordinate descent on sumlx^2 / suml2.
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      float slx = sumlx - w[i] * x[i] * L[i];
      float sl2 = suml2 - w[i] * L[i] * L[i];
      if (slx > 0 && sl2 > 0) {
        int new_l = NearestInt(x[i] * sl2 / slx);
        new_l = new_l < nmax ? new_l : nmax;
        if (new_l != L[i]) {
          slx += w[i] * x[i] * new_l;
          sl2 += w[i] * new_l * new_l;
          if (slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<uint8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (!n_changed) break;
  }
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// ggml's iq2_find_best_neighbour / iq3_find_best_neighbour: among the neighbour
// list {count, indices...}, the grid point minimising sum waux*(scale*pos - x)^2,
// first minimum wins. ggml asserts when no distance is < FLT_MAX (all inf/NaN,
// which needs |x| around 1e12 or more); we take the first neighbour there.
template <int kDim>
inline int FindBestNeighbour(const uint16_t* nb, const int8_t* pos, const float* xval,
                             const float* waux, float scale) {
  const int count = nb[0];
  float best_d2 = FLT_MAX;
  int best = -1;
  for (int j = 1; j <= count; ++j) {
    const int8_t* pg = pos + kDim * nb[j];
    float d2 = 0;
    for (int i = 0; i < kDim; ++i) {
      const float q = pg[i];
      const float diff = scale * q - xval[i];
      d2 += waux[i] * diff * diff;
    }
    if (d2 < best_d2) best_d2 = d2, best = nb[j];
  }
  return best >= 0 ? best : nb[1];
}

// Level vector of one group -> map index u = sum L_i << (bits*i).
template <int kDim, int kBits>
inline uint32_t LevelIndex(const int8_t* L) {
  uint32_t u = 0;
  for (int i = 0; i < kDim; ++i) u |= static_cast<uint32_t>(L[i]) << (kBits * i);
  return u;
}

// Rounds one group at inverse scale id: l = nearest_int(0.5*(id*x - 1)) clamped to
// 0..kmaxq-1; if that level vector is off the grid, replaces it by the best
// neighbour at `scale`. Writes the levels to L, returns the grid index and whether
// the rounding was on the grid.
template <const GridSearchConfig& C>
inline int RoundGroup(const Lattice& lat, const float* xval, const float* waux, float id, float scale,
                      int8_t* L, bool* on_grid) {
  constexpr int kBits = C.gdim == 8 ? 2 : 3;
  for (int i = 0; i < C.gdim; ++i) {
    const int l = NearestInt(0.5f * (id * xval[i] - 1));
    L[i] = static_cast<int8_t>(l < 0 ? 0 : l > C.kmaxq - 1 ? C.kmaxq - 1 : l);
  }
  const uint32_t u = LevelIndex<C.gdim, kBits>(L);
  int gi = lat.map[u];
  *on_grid = gi >= 0;
  if (gi < 0) {
    gi = FindBestNeighbour<C.gdim>(lat.NeighboursOf(u), lat.pos.data(), xval, waux, scale);
    for (int i = 0; i < C.gdim; ++i) L[i] = static_cast<int8_t>((lat.pos[C.gdim * gi + i] - 1) / 2);
  }
  return gi;
}

// Steps 1-3 before the scale search, shared by QuantizeGridSubBlock (the oracle)
// and the SIMD search (codecs/quant_iq_grid_simd.cc): xval = |x| and the sign bits
// per 8 values (parity types: an odd number of minus signs flips the value with the
// smallest w*x^2), L zeroed, the all-zero test, then the first scale and the
// denominator of the candidates' inverse scales. Returns false (out.zero set) for an
// all-zero sub-block. The weights' square roots are the caller's (step 1's waux).
template <const GridSearchConfig& C>
inline bool GridSubBlockStart(const float* xb, const float* weight, float* xval, int8_t* L, GridSubBlock& out,
                              float& scale, float& denom) {
  constexpr int n = C.n, ns = C.n / 8;
  for (int k = 0; k < ns; ++k) {
    int nflip = 0;
    uint8_t s = 0;
    for (int i = 0; i < 8; ++i) {
      if (xb[8 * k + i] >= 0) {
        xval[8 * k + i] = xb[8 * k + i];
      } else {
        xval[8 * k + i] = -xb[8 * k + i];
        ++nflip;
        s = static_cast<uint8_t>(s | (1 << i));
      }
    }
    if (C.parity && nflip % 2) {
      int imin = 0;
      float min = weight[8 * k] * xb[8 * k] * xb[8 * k];
      for (int i = 1; i < 8; ++i) {
        const float ax = weight[8 * k + i] * xb[8 * k + i] * xb[8 * k + i];
        if (ax < min) min = ax, imin = i;
      }
      xval[8 * k + imin] = -xval[8 * k + imin];
      s = static_cast<uint8_t>(s ^ (1 << imin));
    }
    out.signs[k] = C.parity ? static_cast<uint8_t>(s & 127) : s;
  }

  // 2. All-zero test.
  float max = xval[0];
  for (int i = 1; i < n; ++i) max = MaxF(max, xval[i]);
  for (int i = 0; i < n; ++i) L[i] = 0;
  if (C.exact_zero ? !max : max < C.eps) {
    out.zero = true;
    return false;
  }

  // 3. The first scale.
  if constexpr (C.init == InitialScale::kQpQuants) {
    uint8_t Lqp[n];
    scale = MakeQpQuants(n, C.kmaxq + 1, xval, Lqp, weight);
    const float eff_max = scale * C.kmaxq;
    if (eff_max <= 0) {
      out.zero = true;
      return false;
    }
    denom = eff_max;
  } else {
    scale = max / (2 * C.kmaxq - 1);
    denom = max;
  }
  return true;
}

// Quantizes one sub-block of C.n values xb with weights `weight` (already formed by
// the caller with the type's formula). Steps (ggml's order):
//  1. waux = sqrt(weight); xval = |x| with the sign bits per 8 values; for parity
//     types an odd number of minus signs flips the value with the smallest w*x^2.
//  2. max of xval; below the threshold the sub-block is all-zero.
//  3. Scale search: for each is, round every group (off-grid -> best neighbour),
//     score sumqx^2/sumq2 (cross-multiplied, strict >), keep the best levels.
//  4. Refinement with the best scale (see Refine), then scale = sumqx/sumq2.
//  5. A negative scale (possible only in degenerate weightings) flips the signs.
template <const GridSearchConfig& C>
inline void QuantizeGridSubBlock(const Lattice& lat, const float* xb, const float* weight,
                                 GridSubBlock& out) {
  constexpr int n = C.n, ng = C.n / C.gdim, ns = C.n / 8;
  constexpr int kBits = C.gdim == 8 ? 2 : 3;
  float xval[n], waux[n];
  int8_t L[n], Laux[n];
  bool on_grid[ng], on_grid_aux[ng];
  out = GridSubBlock{};

  // 1. Weights' square roots, magnitudes and signs; 2. all-zero test; 3. first scale.
  for (int i = 0; i < n; ++i) waux[i] = sqrtf(weight[i]);
  float scale, denom;
  if (!GridSubBlockStart<C>(xb, weight, xval, L, out, scale, denom)) return;
  const bool on_grid_init = C.refine != Refine::kAllIfAnyOffGridNoInit;
  for (int k = 0; k < ng; ++k) on_grid[k] = on_grid_init;
  float best = 0;
  for (int is = C.is_lo; is <= C.is_hi; ++is) {
    const float id = (2 * C.kmaxq - 1 + is * C.is_step) / denom;
    const float this_scale = 1 / id;
    for (int k = 0; k < ng; ++k)
      RoundGroup<C>(lat, xval + C.gdim * k, waux + C.gdim * k, id, this_scale, Laux + C.gdim * k,
                    &on_grid_aux[k]);
    float sumqx = 0, sumq2 = 0;
    for (int i = 0; i < n; ++i) {
      const float w = weight[i];
      const float q = 2 * Laux[i] + 1;
      sumqx += w * xval[i] * q;
      sumq2 += w * q * q;
    }
    if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
      scale = sumqx / sumq2;
      best = scale * sumqx;
      std::memcpy(L, Laux, n);
      for (int k = 0; k < ng; ++k) on_grid[k] = on_grid_aux[k];
    }
  }

  // 4. Refinement at the best scale.
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
      bool unused;
      RoundGroup<C>(lat, xval + C.gdim * k, waux + C.gdim * k, id, scale, L + C.gdim * k, &unused);
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

  // 5. Sign flip for a negative scale (ggml: "should never happen").
  if (scale < 0) {
    scale = -scale;
    for (int k = 0; k < ns; ++k)
      out.signs[k] = C.parity ? static_cast<uint8_t>(~out.signs[k] & 127)
                              : static_cast<uint8_t>(~out.signs[k]);
  }
  for (int k = 0; k < ng; ++k) {
    const int gi = lat.map[LevelIndex<C.gdim, kBits>(L + C.gdim * k)];
    out.grid[k] = gi >= 0 ? gi : 0;  // always on the grid: L holds grid points only
  }
  out.scale = scale;
}

// One sub-block search: the oracle's QuantizeGridSubBlock<C> below, or its SIMD
// twin (codecs/quant_iq_grid_simd.cc), which must give the same GridSubBlock.
using GridSubBlockFn = void (*)(const Lattice& lat, const float* xb, const float* weight,
                                GridSubBlock& out);

// The super-block drivers (codecs/quant_iq_grid_ref.cc: weights, fp16 d, packing)
// around a sub-block search; Quantize<NAME>Ref passes the oracle's search.
#define BITSMITH_IQ_GRID_BLOCKS(NAME)                                                          \
  void Quantize##NAME##Blocks(GridSubBlockFn search, const float* x, void* y, int64_t nrows, \
                              int64_t n_per_row, const float* imatrix);
BITSMITH_IQ_GRID_BLOCKS(IQ2XXS)
BITSMITH_IQ_GRID_BLOCKS(IQ2XS)
BITSMITH_IQ_GRID_BLOCKS(IQ2S)
BITSMITH_IQ_GRID_BLOCKS(IQ3XXS)
BITSMITH_IQ_GRID_BLOCKS(IQ3S)
#undef BITSMITH_IQ_GRID_BLOCKS

// The SIMD quantizers (codecs/quant_iq_grid_simd.cc): the same drivers around the
// Highway sub-block search; byte-identical to Quantize<NAME>Ref on every target.
#define BITSMITH_IQ_GRID_SIMD(NAME)                                                      \
  void Quantize##NAME##GridSimd(const float* x, void* y, int64_t nrows, int64_t n_per_row, \
                                const float* imatrix);
BITSMITH_IQ_GRID_SIMD(IQ2XXS)
BITSMITH_IQ_GRID_SIMD(IQ2XS)
BITSMITH_IQ_GRID_SIMD(IQ2S)
BITSMITH_IQ_GRID_SIMD(IQ3XXS)
BITSMITH_IQ_GRID_SIMD(IQ3S)
#undef BITSMITH_IQ_GRID_SIMD

}  // namespace bitsmith::iq
