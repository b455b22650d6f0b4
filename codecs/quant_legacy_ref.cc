// Scalar references of the legacy block family: byte-identical to ggml's
// ggml_quantize_chunk (llama-quantize's call) and to_float, ggml-org/ggml
// ggml-quants.c (d99724f2 for the shared vectors; the 0.25.x release used by the
// differential test). These are the oracles the SIMD paths are tested against.
//
// Which ggml code runs (tests/data/blocks/README.md, section 4):
//   q4_0 q4_1 q5_0 q5_1  no imatrix: quantize_row_qX_Y_ref (one min/max pass);
//                        imatrix:    quantize_row_qX_Y_impl (make_qx_quants for
//                        q4_0/q5_0, make_qkx3_quants for q4_1/q5_1)
//   q8_0                 quantize_row_q8_0_ref (the imatrix is ignored)
//   q8_1                 quantize_row_q8_1_ref (ggml's chunk call has no q8_1)
//   iq4_nl / iq4_xs      quantize_row_iq4_nl_impl(block 32, super 32 / 256, ntry 7)
//   q8_k                 quantize_row_q8_K_ref (ggml's chunk call has no q8_k)
//
// Bit-exactness rules kept throughout:
//  * the same float operations in the same order and association as ggml
//    (compiled with -ffp-contract=off: no FMA);
//  * the three rounding rules: roundf (ties away from zero) for q8_0/q8_1;
//    truncation of x*id + 8.5 (+16.5) for q4_0/q5_0, so ties go up; truncation
//    of (x - min)*id + 0.5 for q4_1/q5_1; plus nearest_int (ties to even) for
//    q8_k and the iq4 sub-block scales;
//  * id = 1/d from the fp32 d, before d is rounded to fp16 for storage;
//  * float -> 8-bit conversions as x86 performs them (TruncToInt32X86, then the
//    low byte), which defines ggml's undefined conversions for degenerate blocks.
#include <cmath>    // std::fabs, std::round, std::sqrt
#include <cstring>  // std::memset

#include "codecs/quant_legacy.h"
#include "codecs/quant_search.h"  // quant::MakeQxQuants, MakeQkx3Quants, NearestInt
#include "formats/blocks_legacy.h"

namespace bitsmith::legacy {

namespace {

constexpr int kQK = kQK_Legacy;

// ggml's `MIN(nmax, (int8_t)(v))` as an int (the int8 conversion keeps the low
// byte of the x86 truncation).
inline int MinInt8Trunc(int nmax, float v) {
  const int q = static_cast<int8_t>(TruncToInt32X86(v));
  return q < nmax ? q : nmax;
}

// sigma2 of the imatrix paths: sum of x^2 over the whole row, sequentially,
// divided by the row length (ggml: `sum_x2/n_per_row`, int64 -> float).
inline float RowSigma2(const float* x, int64_t n_per_row) {
  float sum_x2 = 0;
  for (int64_t j = 0; j < n_per_row; ++j) sum_x2 += x[j] * x[j];
  return sum_x2 / static_cast<float>(n_per_row);
}

// weight[j] = qw[j] * sqrtf(sigma2 + x[j]^2), the legacy imatrix weighting.
inline void LegacyWeights(const float* xb, const float* qw, float sigma2, float* weight) {
  for (int j = 0; j < kQK; ++j) weight[j] = qw[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
}

// The element of largest |x| with its sign, first one on ties (ggml:
// `if (amax < fabsf(v)) { amax = fabsf(v); max = v; }`); +0 when all are zero.
inline float SignedAbsMax(const float* x, int n) {
  float amax = 0, max = 0;
  for (int j = 0; j < n; ++j) {
    const float v = x[j];
    if (amax < std::fabs(v)) {
      amax = std::fabs(v);
      max = v;
    }
  }
  return max;
}

// Block minimum and maximum as ggml's q4_1/q5_1 refs find them: start from
// +-FLT_MAX, replace on strict < / >, so the first of equal values (+0 / -0) wins.
inline void MinMax(const float* x, float* min_out, float* max_out) {
  float min = 3.40282347e+38f, max = -3.40282347e+38f;
  for (int j = 0; j < kQK; ++j) {
    const float v = x[j];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  *min_out = min;
  *max_out = max;
}

// --- q4_0 / q5_0 plain (quantize_row_q4_0_ref / q5_0_ref) ------------------
// 1. max = SignedAbsMax; d = max / -nmax (so the largest |x| maps to level 0:
//    the grid is asymmetric, -nmax..nmax-1, and the extreme takes the -nmax side).
// 2. id = d ? 1/d : 0 from the fp32 d; d stored as fp16.
// 3. level = MIN(2*nmax-1, (int8_t)(x*id + nmax + 0.5)): truncation, ties up.
template <int kNmax>
inline void SymmetricLevels(const float* x, PackedF16* d_out, uint8_t* L) {
  const float max = SignedAbsMax(x, kQK);
  const float d = max / static_cast<float>(-kNmax);
  const float id = d != 0 ? 1.0f / d : 0.0f;
  d_out->set_f32(d);
  constexpr float kBias = static_cast<float>(kNmax) + 0.5f;  // 8.5f / 16.5f
  for (int j = 0; j < kQK; ++j)
    L[j] = static_cast<uint8_t>(MinInt8Trunc(2 * kNmax - 1, x[j] * id + kBias));
}

// --- q4_1 / q5_1 plain (quantize_row_q4_1_ref / q5_1_ref) ------------------
// 1. min, max of the block; d = (max - min)/nmax; id = d ? 1/d : 0.
// 2. d and m = min stored as fp16.
// 3. level = (x - min)*id + 0.5 truncated: q4_1 caps it with MIN(15, (int8_t)..),
//    q5_1 takes (uint8_t) with no cap (ggml; the packing keeps 5 bits).
template <int kNmax>
inline void AffineLevels(const float* x, PackedF16* d_out, PackedF16* m_out, uint8_t* L) {
  float min, max;
  MinMax(x, &min, &max);
  const float d = (max - min) / static_cast<float>(kNmax);
  const float id = d != 0 ? 1.0f / d : 0.0f;
  d_out->set_f32(d);
  m_out->set_f32(min);
  for (int j = 0; j < kQK; ++j) {
    const float v = (x[j] - min) * id + 0.5f;
    if constexpr (kNmax == 15) L[j] = static_cast<uint8_t>(MinInt8Trunc(15, v));
    else L[j] = static_cast<uint8_t>(TruncToInt32X86(v));
  }
}

// --- q8_0 / q8_1 (quantize_row_q8_0_ref / q8_1_ref) ------------------------
// amax = MAX over |x|; d = amax/127; id = d ? 1/d : 0; qs = roundf(x*id).
inline float Q8Levels(const float* x, int8_t* qs) {
  float amax = 0;
  for (int j = 0; j < kQK; ++j) {
    const float a = std::fabs(x[j]);
    amax = amax > a ? amax : a;  // ggml's MAX macro
  }
  const float d = amax / 127.0f;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  for (int j = 0; j < kQK; ++j)
    qs[j] = static_cast<int8_t>(TruncToInt32X86(std::round(x[j] * id)));  // roundf: ties away
  return d;
}

// ggml's quantize_row_iq4_nl_impl with ntry = 7 (the ggml_quantize_chunk path;
// from_float_ref uses ntry = -1 and is a different algorithm). One super-block of
// `super_size` (32: iq4_nl, 256: iq4_xs) in sub-blocks of 32. Writes the fp16 d,
// the nibbles and, for iq4_xs, the packed 6-bit scales. Steps:
//  1. sigma2 = 2 * sum x^2 / super_size; weights qw*sqrt(sigma2 + x^2) with an
//     imatrix, x^2 without.
//  2. Per sub-block: max = signed abs max (first on ties); amax < 1e-15: scale 0.
//     Else levels for d = max/127 (-max/values[0]), fit d = sumqx/sumq2 (0 when
//     sumq2 == 0: ggml >= 2025; older ggml divided 0/0, unreachable without a
//     zero weight), then 15 trial inverse scales (itry - 127)/max, itry = -7..7,
//     kept when sumqx^2 > best*sumq2.
//  3. iq4_xs: d = -max_scale/32 (max_scale = the sub-block scale of largest |.|),
//     sub-block scale l = clamp(nearest_int(scale/d), -32, 31), levels recomputed
//     for d*l. iq4_nl: d = the block's scale, levels recomputed for 1/d.
//  4. Nibbles packed per 32 elements.
constexpr int kIq4Ntry = 7;

void Iq4NlImpl(int super_size, const float* x, const float* qw, PackedF16* dh, uint8_t* q4,
               uint8_t* scales_h, uint8_t* scales_l) {
  constexpr int kBlock = 32;
  const int8_t* values = kIq4NlValues;
  float scales[kQK_K / kBlock];
  float weight[kBlock];
  uint8_t L[kQK_K];
  float sigma2 = 0;  // 1.
  for (int j = 0; j < super_size; ++j) sigma2 += x[j] * x[j];
  sigma2 *= 2.f / static_cast<float>(super_size);
  std::memset(q4, 0, static_cast<size_t>(super_size / 2));
  dh->set_f32(0.f);
  float max_scale = 0, amax_scale = 0;
  const int nsub = super_size / kBlock;
  for (int ib = 0; ib < nsub; ++ib) {  // 2.
    const float* xb = x + ib * kBlock;
    uint8_t* Lb = L + ib * kBlock;
    if (qw != nullptr) {
      const float* qwb = qw + ib * kBlock;
      for (int j = 0; j < kBlock; ++j) weight[j] = qwb[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
    } else {
      for (int j = 0; j < kBlock; ++j) weight[j] = xb[j] * xb[j];
    }
    float amax = 0, max = 0;
    for (int j = 0; j < kBlock; ++j) {
      const float ax = std::fabs(xb[j]);
      if (ax > amax) {
        amax = ax;
        max = xb[j];
      }
    }
    if (amax < quant::kGroupMaxEps) {
      scales[ib] = 0;
      continue;
    }
    float d = -max / static_cast<float>(values[0]);
    float id = 1 / d;
    float sumqx = 0, sumq2 = 0;
    for (int j = 0; j < kBlock; ++j) {
      const int l = BestIndexIq4(id * xb[j]);
      Lb[j] = static_cast<uint8_t>(l);
      const float q = values[l];
      const float w = weight[j];
      sumqx += w * q * xb[j];
      sumq2 += w * q * q;
    }
    d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
    float best = d * sumqx;
    for (int itry = -kIq4Ntry; itry <= kIq4Ntry; ++itry) {
      id = static_cast<float>(itry + values[0]) / max;
      sumqx = sumq2 = 0;
      for (int j = 0; j < kBlock; ++j) {
        const float q = values[BestIndexIq4(id * xb[j])];
        const float w = weight[j];
        sumqx += w * q * xb[j];
        sumq2 += w * q * q;
      }
      if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
        d = sumqx / sumq2;
        best = d * sumqx;
      }
    }
    scales[ib] = d;
    const float abs_d = std::fabs(d);
    if (abs_d > amax_scale) {
      amax_scale = abs_d;
      max_scale = d;
    }
  }
  if (nsub > 1) {  // 3. iq4_xs
    const float d = -max_scale / 32;
    dh->set_f32(d);
    const float id = d != 0 ? 1 / d : 0.f;
    uint8_t ls[kQK_K / kBlock];
    for (int ib = 0; ib < nsub; ++ib) {
      int l = quant::NearestInt(id * scales[ib]);
      l = l < -32 ? -32 : (l > 31 ? 31 : l);
      const float dl = d * static_cast<float>(l);
      const float idl = dl != 0 ? 1 / dl : 0.f;
      uint8_t* Lb = L + ib * kBlock;
      const float* xb = x + ib * kBlock;
      for (int j = 0; j < kBlock; ++j) Lb[j] = static_cast<uint8_t>(BestIndexIq4(idl * xb[j]));
      ls[ib] = static_cast<uint8_t>(l + 32);
    }
    PackIq4XsScales(ls, scales_h, scales_l);
  } else {  // 3. iq4_nl
    dh->set_f32(scales[0]);
    const float id = scales[0] != 0 ? 1 / scales[0] : 0;
    for (int j = 0; j < super_size; ++j) L[j] = static_cast<uint8_t>(BestIndexIq4(id * x[j]));
  }
  for (int i = 0; i < super_size / 32; ++i) PackNibbles32(L + 32 * i, q4 + 16 * i);  // 4.
}

}  // namespace

// ===========================================================================
// Quantizers. The plain paths treat nrows * n_per_row values as one run of
// blocks (ggml does the same); the imatrix paths work row by row (sigma2 is a
// row statistic and the imatrix is per column).
// ===========================================================================

void QuantizeQ4_0Ref(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const float* imatrix) {
  auto* y = static_cast<BlockQ4_0*>(dst);
  const int64_t nb = n_per_row / kQK;
  uint8_t L[kQK];
  if (imatrix == nullptr) {
    for (int64_t i = 0; i < nrows * nb; ++i) {
      SymmetricLevels<8>(src + i * kQK, &y[i].d, L);
      PackNibbles32(L, y[i].qs);
    }
    return;
  }
  // quantize_row_q4_0_impl: make_qx_quants(32, nmax 8, rmse_type 1, weights).
  float weight[kQK];
  int8_t Ls[kQK];
  for (int64_t r = 0; r < nrows; ++r) {
    const float* x = src + r * n_per_row;
    const float sigma2 = RowSigma2(x, n_per_row);
    for (int64_t ib = 0; ib < nb; ++ib) {
      const float* xb = x + ib * kQK;
      LegacyWeights(xb, imatrix + ib * kQK, sigma2, weight);
      const float d = quant::MakeQxQuants(kQK, xb, Ls, {.nmax = 8}, weight);
      BlockQ4_0& b = y[r * nb + ib];
      b.d.set_f32(d);
      for (int j = 0; j < 16; ++j)
        b.qs[j] = static_cast<uint8_t>(Ls[j] | (Ls[j + 16] << 4));
    }
  }
}

void QuantizeQ5_0Ref(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const float* imatrix) {
  auto* y = static_cast<BlockQ5_0*>(dst);
  const int64_t nb = n_per_row / kQK;
  uint8_t L[kQK];
  if (imatrix == nullptr) {
    for (int64_t i = 0; i < nrows * nb; ++i) {
      SymmetricLevels<16>(src + i * kQK, &y[i].d, L);
      PackQ5Levels(L, y[i].qs, y[i].qh);
    }
    return;
  }
  // quantize_row_q5_0_impl: make_qx_quants(32, nmax 16, rmse_type 1, weights).
  float weight[kQK];
  int8_t Ls[kQK];
  for (int64_t r = 0; r < nrows; ++r) {
    const float* x = src + r * n_per_row;
    const float sigma2 = RowSigma2(x, n_per_row);
    for (int64_t ib = 0; ib < nb; ++ib) {
      const float* xb = x + ib * kQK;
      LegacyWeights(xb, imatrix + ib * kQK, sigma2, weight);
      const float d = quant::MakeQxQuants(kQK, xb, Ls, {.nmax = 16}, weight);
      BlockQ5_0& b = y[r * nb + ib];
      b.d.set_f32(d);
      for (int j = 0; j < kQK; ++j) L[j] = static_cast<uint8_t>(Ls[j]);
      PackQ5Levels(L, b.qs, b.qh);
    }
  }
}

// q4_1 / q5_1 with an imatrix: make_qkx3_quants(32, nmax, weights, rmin -0.9,
// rdelta 0.05, nstep 36, use_mad false); m = fp16(-the_min).
template <int kNmax, typename Block>
void AffineImatrix(const float* src, Block* y, int64_t nrows, int64_t n_per_row,
                   const float* imatrix) {
  const int64_t nb = n_per_row / kQK;
  float weight[kQK];
  uint8_t L[kQK], Laux[kQK];
  for (int64_t r = 0; r < nrows; ++r) {
    const float* x = src + r * n_per_row;
    const float sigma2 = RowSigma2(x, n_per_row);
    for (int64_t ib = 0; ib < nb; ++ib) {
      const float* xb = x + ib * kQK;
      LegacyWeights(xb, imatrix + ib * kQK, sigma2, weight);
      float the_min;
      const float d = quant::MakeQkx3Quants(kQK, xb, weight, L, &the_min, Laux,
                                            quant::ImatrixMinMaxSearch(kNmax));
      Block& b = y[r * nb + ib];
      b.d.set_f32(d);
      b.m.set_f32(-the_min);
      if constexpr (kNmax == 15) PackNibbles32(L, b.qs);
      else PackQ5Levels(L, b.qs, b.qh);
    }
  }
}

void QuantizeQ4_1Ref(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const float* imatrix) {
  auto* y = static_cast<BlockQ4_1*>(dst);
  if (imatrix != nullptr) return AffineImatrix<15>(src, y, nrows, n_per_row, imatrix);
  uint8_t L[kQK];
  for (int64_t i = 0; i < nrows * (n_per_row / kQK); ++i) {
    AffineLevels<15>(src + i * kQK, &y[i].d, &y[i].m, L);
    PackNibbles32(L, y[i].qs);
  }
}

void QuantizeQ5_1Ref(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const float* imatrix) {
  auto* y = static_cast<BlockQ5_1*>(dst);
  if (imatrix != nullptr) return AffineImatrix<31>(src, y, nrows, n_per_row, imatrix);
  uint8_t L[kQK];
  for (int64_t i = 0; i < nrows * (n_per_row / kQK); ++i) {
    AffineLevels<31>(src + i * kQK, &y[i].d, &y[i].m, L);
    PackQ5Levels(L, y[i].qs, y[i].qh);
  }
}

void QuantizeQ8_0Ref(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const float*) {
  auto* y = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < nrows * (n_per_row / kQK); ++i)
    y[i].d.set_f32(Q8Levels(src + i * kQK, y[i].qs));
}

// quantize_row_q8_1_ref: as q8_0, plus s = fp16(sum * d) with an int sum of the
// levels (ggml sums them in pairs j, j+16; integer addition, any order).
void QuantizeQ8_1Ref(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                     const float*) {
  auto* y = static_cast<BlockQ8_1*>(dst);
  for (int64_t i = 0; i < nrows * (n_per_row / kQK); ++i) {
    const float d = Q8Levels(src + i * kQK, y[i].qs);
    int sum = 0;
    for (int j = 0; j < kQK; ++j) sum += y[i].qs[j];
    y[i].d.set_f32(d);
    y[i].s.set_f32(static_cast<float>(sum) * d);
  }
}

void QuantizeIq4NlRef(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                      const float* imatrix) {
  auto* y = static_cast<BlockIq4Nl*>(dst);
  const int64_t nb = n_per_row / kQK;
  for (int64_t r = 0; r < nrows; ++r)
    for (int64_t ib = 0; ib < nb; ++ib)
      Iq4NlImpl(kQK, src + r * n_per_row + ib * kQK, imatrix ? imatrix + ib * kQK : nullptr,
                &y[r * nb + ib].d, y[r * nb + ib].qs, nullptr, nullptr);
}

void QuantizeIq4XsRef(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                      const float* imatrix) {
  auto* y = static_cast<BlockIq4Xs*>(dst);
  const int64_t nb = n_per_row / kQK_K;
  for (int64_t r = 0; r < nrows; ++r)
    for (int64_t ib = 0; ib < nb; ++ib) {
      BlockIq4Xs& b = y[r * nb + ib];
      Iq4NlImpl(kQK_K, src + r * n_per_row + ib * kQK_K,
                imatrix ? imatrix + ib * kQK_K : nullptr, &b.d, b.qs, b.scales_h, b.scales_l);
    }
}

// quantize_row_q8_K_ref: max = signed abs max (first on ties); all zero: d = 0,
// qs = 0 and (unlike ggml, which leaves them unwritten) bsums = 0. Else
// iscale = -127/max, qs = MIN(127, nearest_int(iscale*x)) stored as int8,
// bsums = int16 sums of 16, d = 1/iscale (fp32: d has the opposite sign of max).
void QuantizeQ8KRef(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                    const float*) {
  auto* y = static_cast<BlockQ8K*>(dst);
  for (int64_t i = 0; i < nrows * (n_per_row / kQK_K); ++i) {
    const float* x = src + i * kQK_K;
    BlockQ8K& b = y[i];
    float max = 0, amax = 0;
    for (int j = 0; j < kQK_K; ++j) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    if (amax == 0) {
      std::memset(&b, 0, sizeof b);
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < kQK_K; ++j) {
      const int v = quant::NearestInt(iscale * x[j]);
      b.qs[j] = static_cast<int8_t>(v < 127 ? v : 127);
    }
    for (int k = 0; k < kQK_K / 16; ++k) {
      int sum = 0;
      for (int ii = 0; ii < 16; ++ii) sum += b.qs[16 * k + ii];
      StoreQ8KBsum(b.bsums, k, static_cast<int16_t>(sum));
    }
    StoreF32LE(b.d, 1 / iscale);
  }
}

// ===========================================================================
// Dequantizers (ggml's dequantize_row_*; q8_1 has none in ggml: y = qs * d).
// Level conversions are exact; the products are the only roundings.
// ===========================================================================

void DequantizeQ4_0Ref(const void* src, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ4_0*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = x[i].d.f32();
    for (int j = 0; j < kQK; ++j)
      y[i * kQK + j] = static_cast<float>(UnpackNibble32(x[i].qs, j) - 8) * d;
  }
}

// p + m for q4_1 / q5_1 (p = float(q) * d), with the NaN that x86's addss
// returns when both are NaN -- its first operand, p -- made explicit. Which
// NaN an addition propagates is not fixed by C++: compilers treat + as
// commutative and may swap the operands (clang did in the SIMD kernel, gcc did
// not), so the result's sign and payload depended on the compiler. ggml's
// dequantize_row_q4_1 (gcc, x*d + m) returns p: so does this, everywhere.
inline float AffineLevel(float p, float m) { return std::isnan(p) ? p : p + m; }

void DequantizeQ4_1Ref(const void* src, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ4_1*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = x[i].d.f32(), m = x[i].m.f32();
    for (int j = 0; j < kQK; ++j)
      y[i * kQK + j] = AffineLevel(static_cast<float>(UnpackNibble32(x[i].qs, j)) * d, m);
  }
}

void DequantizeQ5_0Ref(const void* src, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ5_0*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = x[i].d.f32();
    const uint32_t qh = LoadQh(x[i].qh);
    for (int j = 0; j < kQK; ++j)
      y[i * kQK + j] = static_cast<float>(UnpackQ5Level(x[i].qs, qh, j) - 16) * d;
  }
}

void DequantizeQ5_1Ref(const void* src, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ5_1*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = x[i].d.f32(), m = x[i].m.f32();
    const uint32_t qh = LoadQh(x[i].qh);
    for (int j = 0; j < kQK; ++j)
      y[i * kQK + j] = AffineLevel(static_cast<float>(UnpackQ5Level(x[i].qs, qh, j)) * d, m);
  }
}

void DequantizeQ8_0Ref(const void* src, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ8_0*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = x[i].d.f32();
    for (int j = 0; j < kQK; ++j) y[i * kQK + j] = static_cast<float>(x[i].qs[j]) * d;
  }
}

void DequantizeQ8_1Ref(const void* src, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ8_1*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = x[i].d.f32();
    for (int j = 0; j < kQK; ++j) y[i * kQK + j] = static_cast<float>(x[i].qs[j]) * d;
  }
}

void DequantizeIq4NlRef(const void* src, float* y, int64_t n) {
  const auto* x = static_cast<const BlockIq4Nl*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = x[i].d.f32();
    for (int j = 0; j < kQK; ++j)
      y[i * kQK + j] = d * static_cast<float>(kIq4NlValues[UnpackNibble32(x[i].qs, j)]);
  }
}

void DequantizeIq4XsRef(const void* src, float* y, int64_t n) {
  const auto* x = static_cast<const BlockIq4Xs*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = x[i].d.f32();
    for (int ib = 0; ib < 8; ++ib) {
      const int ls = UnpackIq4XsScale(x[i].scales_h, x[i].scales_l, ib);
      const float dl = d * static_cast<float>(ls - 32);
      for (int j = 0; j < 32; ++j)
        y[i * kQK_K + 32 * ib + j] =
            dl * static_cast<float>(kIq4NlValues[UnpackNibble32(x[i].qs + 16 * ib, j)]);
    }
  }
}

void DequantizeQ8KRef(const void* src, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ8K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = LoadF32LE(x[i].d);
    for (int j = 0; j < kQK_K; ++j) y[i * kQK_K + j] = d * static_cast<float>(x[i].qs[j]);
  }
}

}  // namespace bitsmith::legacy
