// Scalar reference codecs of IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS and IQ3_S.
//
// Reproduces ggml d99724f2 (ggml-quants.c): quantize_row_iq2_{xxs,xs,s}_impl,
// quantize_row_iq3_xxs_impl(256) and quantize_row_iq3_s_impl(32) behind
// ggml_quantize_chunk, and dequantize_row_* (to_float). The per-sub-block search is
// codecs/iq_grid_search.h; this file forms the weights, stores the sub-block
// results and the fp16 super-block scale. Layouts: formats/blocks_iq.h.
#include <cmath>    // sqrtf
#include <cstring>  // std::memset

#include "codecs/iq_grid_search.h"
#include "codecs/iq_kernels.h"
#include "formats/blocks_iq.h"
#include "formats/half.h"
#include "formats/iq_grids/iq2s_grid.h"
#include "formats/iq_grids/iq2xs_grid.h"
#include "formats/iq_grids/iq2xxs_grid.h"
#include "formats/iq_grids/iq3s_grid.h"
#include "formats/iq_grids/iq3xxs_grid.h"
#include "formats/iq_grids/ksigns_iq2xs.h"

namespace bitsmith::iq {
namespace {

constexpr int kQK = 256;

// sum of x^2 over the super-block, in order.
inline float SumSquares(const float* x) {
  float s = 0;
  for (int i = 0; i < kQK; ++i) s += x[i] * x[i];
  return s;
}

// Importance weights of one sub-block, by type:
//  IQ2_XXS, IQ2_XS:  qw * sqrtf(sigma2 + x^2), sigma2 = sum x^2 / 256 (imatrix required)
//  IQ2_S:            qw * sqrtf(sigma2 + x^2), or 0.25*sigma2 + x^2; sigma2 = 2 sum x^2 / 256
//  IQ3_XXS, IQ3_S:   qw * sqrtf(sigma2 + x^2), or x^2;               sigma2 = 2 sum x^2 / 256
enum class NoImatrixWeight : uint8_t { kSquare, kQuarterSigmaPlusSquare };
inline void SubBlockWeights(int n, const float* xb, const float* qw, float sigma2,
                            NoImatrixWeight fallback, float* weight) {
  if (qw != nullptr) {
    for (int i = 0; i < n; ++i) weight[i] = qw[i] * sqrtf(sigma2 + xb[i] * xb[i]);
  } else if (fallback == NoImatrixWeight::kSquare) {
    for (int i = 0; i < n; ++i) weight[i] = xb[i] * xb[i];
  } else {
    for (int i = 0; i < n; ++i) weight[i] = 0.25f * sigma2 + xb[i] * xb[i];
  }
}

// Sub-block scale index: l = nearest_int(0.5*(id*scale - 1)) clamped to 0..15, with
// id = 1/d from the fp32 d (before any fudge factor).
inline int ScaleIndex(float id, float scale) {
  const int l = NearestInt(0.5f * (id * scale - 1));
  return l < 0 ? 0 : l > 15 ? 15 : l;
}

// Rows of super-blocks: calls block(x, imatrix_of_block, y) for each.
template <typename Block, typename Fn>
void ForEachSuperBlock(const float* x, void* vy, int64_t nrows, int64_t n_per_row, const float* imatrix,
                       Fn&& block) {
  auto* y = static_cast<Block*>(vy);
  const int64_t nbl = n_per_row / kQK;
  for (int64_t r = 0; r < nrows; ++r)
    for (int64_t ibl = 0; ibl < nbl; ++ibl, x += kQK, ++y)
      block(x, imatrix != nullptr ? imatrix + kQK * ibl : nullptr, *y);
}

}  // namespace

// IQ2_XXS: 8 sub-blocks of 32; d = max_scale/31.
void QuantizeIQ2XXSBlocks(GridSubBlockFn search, const float* x, void* vy, int64_t nrows,
                        int64_t n_per_row, const float* imatrix) {
  const Lattice& lat = GetLattice(LatticeId::kIQ2XXS);
  ForEachSuperBlock<BlockIQ2XXS>(x, vy, nrows, n_per_row, imatrix, [&](const float* xbl, const float* qwb,
                                                                       BlockIQ2XXS& y) {
    IQ2XXSSubBlock q2[8] = {};
    float scales[8];
    float max_scale = 0;
    const float sigma2 = SumSquares(xbl) / kQK;
    for (int ib = 0; ib < 8; ++ib) {
      float weight[32];
      SubBlockWeights(32, xbl + 32 * ib, qwb ? qwb + 32 * ib : nullptr, sigma2, NoImatrixWeight::kSquare,
                      weight);
      GridSubBlock sb;
      search(lat, xbl + 32 * ib, weight, sb);
      scales[ib] = sb.scale;
      if (sb.zero) continue;
      q2[ib].grid_word = PackIQ2XXSGridWord(sb.grid);
      q2[ib].sign_word = PackIQ2XXSSignWord(sb.signs, 0);
      max_scale = MaxF(max_scale, sb.scale);
    }
    y.d = 0;
    if (!max_scale) {
      std::memset(y.qs, 0, sizeof(y.qs));
      return;
    }
    const float d = max_scale / 31;
    y.d = F32ToF16Bits(d);
    const float id = 1 / d;
    for (int ib = 0; ib < 8; ++ib) {
      q2[ib].sign_word |= static_cast<uint32_t>(ScaleIndex(id, scales[ib])) << 28;
      StoreIQ2XXSSubBlock(y, ib, q2[ib]);
    }
  });
}

// IQ2_XS: 16 sub-blocks of 16; d = max_scale/31; two 4-bit scales per byte.
void QuantizeIQ2XSBlocks(GridSubBlockFn search, const float* x, void* vy, int64_t nrows,
                        int64_t n_per_row, const float* imatrix) {
  const Lattice& lat = GetLattice(LatticeId::kIQ2XS);
  ForEachSuperBlock<BlockIQ2XS>(x, vy, nrows, n_per_row, imatrix, [&](const float* xbl, const float* qwb,
                                                                      BlockIQ2XS& y) {
    uint16_t q2[32] = {};
    float scales[16];
    float max_scale = 0;
    std::memset(y.scales, 0, sizeof(y.scales));
    const float sigma2 = SumSquares(xbl) / kQK;
    for (int ib = 0; ib < 16; ++ib) {
      float weight[16];
      SubBlockWeights(16, xbl + 16 * ib, qwb ? qwb + 16 * ib : nullptr, sigma2, NoImatrixWeight::kSquare,
                      weight);
      GridSubBlock sb;
      search(lat, xbl + 16 * ib, weight, sb);
      scales[ib] = sb.scale;
      if (sb.zero) continue;
      for (int k = 0; k < 2; ++k) q2[2 * ib + k] = PackIQ2XSGroup(sb.grid[k], sb.signs[k]);
      max_scale = MaxF(max_scale, sb.scale);
    }
    y.d = 0;
    if (!max_scale) {
      std::memset(y.qs, 0, sizeof(y.qs));
      return;
    }
    const float d = max_scale / 31;
    y.d = F32ToF16Bits(d);
    const float id = 1 / d;
    for (int ib = 0; ib < 16; ib += 2)
      y.scales[ib / 2] = PackNibbles(ScaleIndex(id, scales[ib]), ScaleIndex(id, scales[ib + 1]));
    std::memcpy(y.qs, q2, sizeof(y.qs));
  });
}

// IQ2_S: 16 sub-blocks of 16, 10-bit grid indices, 8 explicit sign bits;
// d = max_scale/31 * 0.9875. ggml zeroes the block first and writes sub-blocks
// into it directly, so a super-block whose scales are all 0 keeps what its
// sub-blocks wrote, with d = 0.
void QuantizeIQ2SBlocks(GridSubBlockFn search, const float* x, void* vy, int64_t nrows,
                        int64_t n_per_row, const float* imatrix) {
  const Lattice& lat = GetLattice(LatticeId::kIQ2S);
  ForEachSuperBlock<BlockIQ2S>(x, vy, nrows, n_per_row, imatrix, [&](const float* xbl, const float* qwb,
                                                                     BlockIQ2S& y) {
    std::memset(&y, 0, sizeof(y));
    float scales[16];
    float max_scale = 0;
    const float sigma2 = 2 * SumSquares(xbl) / kQK;
    for (int ib = 0; ib < 16; ++ib) {
      float weight[16];
      SubBlockWeights(16, xbl + 16 * ib, qwb ? qwb + 16 * ib : nullptr, sigma2,
                      NoImatrixWeight::kQuarterSigmaPlusSquare, weight);
      GridSubBlock sb;
      search(lat, xbl + 16 * ib, weight, sb);
      scales[ib] = sb.scale;
      if (sb.zero) continue;
      for (int k = 0; k < 2; ++k) {
        SetIQ2SGridIndex(y, 2 * ib + k, sb.grid[k]);
        y.signs[2 * ib + k] = sb.signs[k];
      }
      max_scale = MaxF(max_scale, sb.scale);
    }
    if (!max_scale) return;
    const float d = max_scale / 31;
    y.d = F32ToF16Bits(d * 0.9875f);
    const float id = 1 / d;
    for (int ib = 0; ib < 16; ib += 2)
      y.scales[ib / 2] = PackNibbles(ScaleIndex(id, scales[ib]), ScaleIndex(id, scales[ib + 1]));
  });
}

// IQ3_XXS: 8 sub-blocks of 32, groups of 4; d = max_scale/31 * 1.0125.
void QuantizeIQ3XXSBlocks(GridSubBlockFn search, const float* x, void* vy, int64_t nrows,
                        int64_t n_per_row, const float* imatrix) {
  const Lattice& lat = GetLattice(LatticeId::kIQ3XXS);
  ForEachSuperBlock<BlockIQ3XXS>(x, vy, nrows, n_per_row, imatrix, [&](const float* xbl, const float* qwb,
                                                                       BlockIQ3XXS& y) {
    uint8_t qs[64] = {};
    uint32_t sign_words[8] = {};
    float scales[8];
    float max_scale = 0;
    const float sigma2 = 2 * SumSquares(xbl) / kQK;
    for (int ib = 0; ib < 8; ++ib) {
      float weight[32];
      SubBlockWeights(32, xbl + 32 * ib, qwb ? qwb + 32 * ib : nullptr, sigma2, NoImatrixWeight::kSquare,
                      weight);
      GridSubBlock sb;
      search(lat, xbl + 32 * ib, weight, sb);
      scales[ib] = sb.scale;
      if (sb.zero) continue;
      for (int k = 0; k < 8; ++k) qs[8 * ib + k] = static_cast<uint8_t>(sb.grid[k]);
      sign_words[ib] = PackIQ2XXSSignWord(sb.signs, 0);
      max_scale = MaxF(max_scale, sb.scale);
    }
    y.d = 0;
    if (!max_scale) {
      std::memset(y.qs, 0, sizeof(y.qs));
      std::memset(y.scales_and_signs, 0, sizeof(y.scales_and_signs));
      return;
    }
    const float d = max_scale / 31;
    y.d = F32ToF16Bits(d * 1.0125f);
    const float id = 1 / d;
    std::memcpy(y.qs, qs, sizeof(qs));
    for (int ib = 0; ib < 8; ++ib)
      StoreIQ3XXSSignWord(y, ib, sign_words[ib] | static_cast<uint32_t>(ScaleIndex(id, scales[ib])) << 28);
  });
}

// IQ3_S: 8 sub-blocks of 32, 9-bit grid indices, 8 explicit sign bits;
// d = max_scale/31 * 1.033.
// ggml quirk reproduced: its qs and signs write pointers advance only after a
// sub-block that was not all-zero (the `continue` skips the increments), so after
// an all-zero sub-block the following sub-blocks' grid bytes and signs land one
// slot early, while qh and the scales are indexed by the sub-block itself.
void QuantizeIQ3SBlocks(GridSubBlockFn search, const float* x, void* vy, int64_t nrows,
                        int64_t n_per_row, const float* imatrix) {
  const Lattice& lat = GetLattice(LatticeId::kIQ3S);
  ForEachSuperBlock<BlockIQ3S>(x, vy, nrows, n_per_row, imatrix, [&](const float* xbl, const float* qwb,
                                                                     BlockIQ3S& y) {
    std::memset(&y, 0, sizeof(y));
    float scales[8];
    float max_scale = 0;
    int slot = 0;  // sub-blocks written so far (ggml's qs/signs pointer position)
    const float sigma2 = 2 * SumSquares(xbl) / kQK;
    for (int ib = 0; ib < 8; ++ib) {
      float weight[32];
      SubBlockWeights(32, xbl + 32 * ib, qwb ? qwb + 32 * ib : nullptr, sigma2, NoImatrixWeight::kSquare,
                      weight);
      GridSubBlock sb;
      search(lat, xbl + 32 * ib, weight, sb);
      scales[ib] = sb.scale;
      if (sb.zero) continue;
      for (int k = 0; k < 8; ++k) {
        y.qs[8 * slot + k] = static_cast<uint8_t>(sb.grid[k] & 255);
        y.qh[ib] = static_cast<uint8_t>(y.qh[ib] | ((sb.grid[k] >> 8) << k));
      }
      for (int k = 0; k < 4; ++k) y.signs[4 * slot + k] = sb.signs[k];
      ++slot;
      max_scale = MaxF(max_scale, sb.scale);
    }
    if (!max_scale) return;
    const float d = max_scale / 31;
    y.d = F32ToF16Bits(d * 1.033f);
    const float id = 1 / d;
    for (int ib = 0; ib < 8; ib += 2)
      y.scales[ib / 2] = PackNibbles(ScaleIndex(id, scales[ib]), ScaleIndex(id, scales[ib + 1]));
  });
}

// The oracles: the super-block drivers around the scalar sub-block search.
#define BITSMITH_IQ_GRID_REF(NAME, CONFIG)                                                   \
  void Quantize##NAME##Ref(const float* x, void* y, int64_t nrows, int64_t n_per_row,       \
                           const float* imatrix) {                                          \
    Quantize##NAME##Blocks(&QuantizeGridSubBlock<CONFIG>, x, y, nrows, n_per_row, imatrix); \
  }
BITSMITH_IQ_GRID_REF(IQ2XXS, kIQ2XXSGridConfig)
BITSMITH_IQ_GRID_REF(IQ2XS, kIQ2XSGridConfig)
BITSMITH_IQ_GRID_REF(IQ2S, kIQ2SGridConfig)
BITSMITH_IQ_GRID_REF(IQ3XXS, kIQ3XXSGridConfig)
BITSMITH_IQ_GRID_REF(IQ3S, kIQ3SGridConfig)
#undef BITSMITH_IQ_GRID_REF

// ---------------------------------------------------------------------------
// Dequantization. Every product is exact in fp32 (README section 5), and the
// sign is applied as ggml does, by multiplying with -1.f or 1.f last (which keeps
// a NaN d's sign, unlike a sign-bit flip).
namespace {
inline float SignOf(uint8_t signs, int j) { return (signs >> j) & 1 ? -1.f : 1.f; }
inline const uint8_t* GridBytes(const uint64_t* grid, int idx) {
  return reinterpret_cast<const uint8_t*>(grid + idx);
}
inline const uint8_t* GridBytes(const uint32_t* grid, int idx) {
  return reinterpret_cast<const uint8_t*>(grid + idx);
}
}  // namespace

void DequantizeIQ2XXSRef(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const BlockIQ2XXS*>(vx);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = F16BitsToF32(x[i].d);
    for (int s = 0; s < 8; ++s) {
      const IQ2XXSSubBlock sb = LoadIQ2XXSSubBlock(x[i], s);
      const float db = d * (0.5f + IQ2XXSScale(sb.sign_word)) * 0.25f;
      for (int l = 0; l < 4; ++l, y += 8) {
        const uint8_t* grid = GridBytes(iq_grids::kIQ2XXSGrid, IQ2XXSGridIndex(sb.grid_word, l));
        const uint8_t signs = iq_grids::kKSignsIQ2XS[IQ2XXSSigns7(sb.sign_word, l)];
        for (int j = 0; j < 8; ++j) y[j] = db * grid[j] * SignOf(signs, j);
      }
    }
  }
}

void DequantizeIQ2XSRef(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const BlockIQ2XS*>(vx);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = F16BitsToF32(x[i].d);
    for (int s = 0; s < 8; ++s) {
      const float db[2] = {d * (0.5f + LowNibble(x[i].scales[s])) * 0.25f,
                           d * (0.5f + HighNibble(x[i].scales[s])) * 0.25f};
      for (int l = 0; l < 4; ++l, y += 8) {
        const uint16_t q = x[i].qs[4 * s + l];
        const uint8_t* grid = GridBytes(iq_grids::kIQ2XSGrid, IQ2XSGridIndex(q));
        const uint8_t signs = iq_grids::kKSignsIQ2XS[IQ2XSSigns7(q)];
        for (int j = 0; j < 8; ++j) y[j] = db[l / 2] * grid[j] * SignOf(signs, j);
      }
    }
  }
}

void DequantizeIQ2SRef(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const BlockIQ2S*>(vx);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = F16BitsToF32(x[i].d);
    for (int s = 0; s < 8; ++s) {
      const float db[2] = {d * (0.5f + LowNibble(x[i].scales[s])) * 0.25f,
                           d * (0.5f + HighNibble(x[i].scales[s])) * 0.25f};
      for (int l = 0; l < 4; ++l, y += 8) {
        const int g = 4 * s + l;
        const uint8_t* grid = GridBytes(iq_grids::kIQ2SGrid, IQ2SGridIndex(x[i], g));
        for (int j = 0; j < 8; ++j) y[j] = db[l / 2] * grid[j] * SignOf(x[i].signs[g], j);
      }
    }
  }
}

void DequantizeIQ3XXSRef(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const BlockIQ3XXS*>(vx);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = F16BitsToF32(x[i].d);
    for (int s = 0; s < 8; ++s) {
      const uint32_t w = LoadIQ3XXSSignWord(x[i], s);
      const float db = d * (0.5f + IQ2XXSScale(w)) * 0.5f;
      for (int l = 0; l < 4; ++l, y += 8) {
        const uint8_t signs = iq_grids::kKSignsIQ2XS[IQ2XXSSigns7(w, l)];
        const uint8_t* g1 = GridBytes(iq_grids::kIQ3XXSGrid, x[i].qs[8 * s + 2 * l]);
        const uint8_t* g2 = GridBytes(iq_grids::kIQ3XXSGrid, x[i].qs[8 * s + 2 * l + 1]);
        for (int j = 0; j < 4; ++j) {
          y[j] = db * g1[j] * SignOf(signs, j);
          y[j + 4] = db * g2[j] * SignOf(signs, j + 4);
        }
      }
    }
  }
}

void DequantizeIQ3SRef(const void* vx, float* y, int64_t n) {
  const auto* x = static_cast<const BlockIQ3S*>(vx);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = F16BitsToF32(x[i].d);
    for (int s = 0; s < 8; ++s) {
      const int sc = s % 2 == 0 ? LowNibble(x[i].scales[s / 2]) : HighNibble(x[i].scales[s / 2]);
      const float db = d * (1 + 2 * sc);
      for (int l = 0; l < 4; ++l, y += 8) {
        const uint8_t signs = x[i].signs[4 * s + l];
        const uint8_t* g1 = GridBytes(iq_grids::kIQ3SGrid, IQ3SGridIndex(x[i], 8 * s + 2 * l));
        const uint8_t* g2 = GridBytes(iq_grids::kIQ3SGrid, IQ3SGridIndex(x[i], 8 * s + 2 * l + 1));
        for (int j = 0; j < 4; ++j) {
          y[j] = db * g1[j] * SignOf(signs, j);
          y[j + 4] = db * g2[j] * SignOf(signs, j + 4);
        }
      }
    }
  }
}

}  // namespace bitsmith::iq
