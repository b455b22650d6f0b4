// Scalar reference k-quant codecs: literal reproductions of ggml's
// quantize_row_qN_K_ref (no imatrix), quantize_row_qN_K_impl (imatrix) and
// dequantize_row_qN_K from ggml/src/ggml-quants.c (ggml-org/ggml d99724f2).
// These are the oracles the SIMD kernels and the tests compare against; they
// favour being obviously equal to ggml over speed.
//
// Shape shared by q2_k..q5_k (steps named in each function):
//  1. per sub-block: a scale search (quant_search.h) giving levels, a scale and
//     (q2/q4/q5) a min;
//  2. per super-block: the sub-block scales (and mins) quantized to 4/6/8 bits
//     against one fp16 d (and dmin);
//  3. requantization: levels recomputed from the *fp16-rounded* d * sc (and
//     dmin * m); a sub-block whose d * sc is 0 keeps the levels of step 1;
//  4. bit packing (formats/blocks_k.h).
#include <cmath>
#include <cstring>

#include "codecs/quant_k.h"
#include "codecs/quant_search.h"
#include "formats/blocks_k.h"

namespace bitsmith::kquant {
namespace {

using quant::NearestInt;

inline int Clamp(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// --------------------------------------------------------------------------
// q2_k
// --------------------------------------------------------------------------

// quantize_row_q2_K_ref, one super-block.
void QuantizeBlockQ2K(const float* x, BlockQ2K* y) {
  uint8_t L[kQK_K], Laux[16];
  float weights[16], mins[16], scales[16];
  constexpr float q4scale = 15.f;
  // 1. make_qkx2_quants per sub-block, weights |x|, mean absolute error.
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 16; ++j) {
    for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
    scales[j] = quant::MakeQkx2Quants(16, x + 16 * j, weights, L + 16 * j, &mins[j], Laux,
                                      quant::kQ2KRefSearch);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  // 2. 4-bit scales and mins against d = max_scale/15, dmin = max_min/15.
  if (max_scale > 0) {
    const float iscale = q4scale / max_scale;
    for (int j = 0; j < 16; ++j) y->scales[j] = static_cast<uint8_t>(NearestInt(iscale * scales[j]));
    y->d.set_f32(max_scale / q4scale);
  } else {
    for (int j = 0; j < 16; ++j) y->scales[j] = 0;
    y->d.set_f32(0.f);
  }
  if (max_min > 0) {
    const float iscale = q4scale / max_min;
    for (int j = 0; j < 16; ++j)
      y->scales[j] = PackQ2KScaleMin(y->scales[j], NearestInt(iscale * mins[j]));
    y->dmin.set_f32(max_min / q4scale);
  } else {
    y->dmin.set_f32(0.f);
  }
  // 3. Requantize from the fp16 scales.
  for (int j = 0; j < 16; ++j) {
    const float d = y->d.f32() * static_cast<float>(UnpackQ2KScale(y->scales[j]));
    if (d == 0) continue;
    const float dm = y->dmin.f32() * static_cast<float>(UnpackQ2KMin(y->scales[j]));
    for (int ii = 0; ii < 16; ++ii)
      L[16 * j + ii] = static_cast<uint8_t>(Clamp(NearestInt((x[16 * j + ii] + dm) / d), 0, 3));
  }
  Pack2BitLevels(L, y->qs);  // 4.
}

// quantize_row_q2_K_impl, one super-block; qw = the block's 256 importance weights.
void QuantizeBlockQ2KImatrix(const float* x, const float* qw, BlockQ2K* y) {
  uint8_t L[kQK_K], Laux[16], Ls[16], Lm[16];
  float mins[16], scales[16], sw[16], weight[16];
  // 1. Weights qw * sqrt(sigma2 + x^2), sigma2 = mean x^2 of the super-block;
  //    make_qkx3_quants per sub-block.
  float sumx2 = 0;
  for (int j = 0; j < kQK_K; ++j) sumx2 += x[j] * x[j];
  const float sigma2 = sumx2 / kQK_K;
  for (int j = 0; j < 16; ++j) {
    for (int l = 0; l < 16; ++l)
      weight[l] = qw[16 * j + l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
    sw[j] = 0;
    for (int l = 0; l < 16; ++l) sw[j] += weight[l];
    scales[j] = quant::MakeQkx3Quants(16, x + 16 * j, weight, L + 16 * j, &mins[j], Laux,
                                      quant::ImatrixMinMaxSearch(3));
  }
  // 2. 4-bit scales and mins by make_qp_quants, weighted by the sub-block weight sums.
  float dm = quant::MakeQpQuants(16, 15, scales, Ls, sw);
  float mm = quant::MakeQpQuants(16, 15, mins, Lm, sw);
  y->d.set_f32(dm);
  y->dmin.set_f32(mm);
  dm = y->d.f32();
  mm = y->dmin.f32();
  for (int j = 0; j < 16; ++j) y->scales[j] = PackQ2KScaleMin(Ls[j], Lm[j]);
  // 3. Requantize.
  for (int j = 0; j < 16; ++j) {
    const float d = dm * static_cast<float>(UnpackQ2KScale(y->scales[j]));
    if (d == 0) continue;
    const float m = mm * static_cast<float>(UnpackQ2KMin(y->scales[j]));
    for (int ii = 0; ii < 16; ++ii)
      L[16 * j + ii] = static_cast<uint8_t>(Clamp(NearestInt((x[16 * j + ii] + m) / d), 0, 3));
  }
  Pack2BitLevels(L, y->qs);  // 4.
}

// --------------------------------------------------------------------------
// q3_k
// --------------------------------------------------------------------------

// Steps 3-4 shared by both q3_k paths: requantize from the fp16 d and the packed
// scales, then split the levels into hmask and 2-bit qs. `L` holds the search
// levels (0..7, or 0 for an all-zero sub-block).
void FinishQ3K(const float* x, int8_t* L, BlockQ3K* y) {
  for (int j = 0; j < 16; ++j) {
    const float d = y->d.f32() * static_cast<float>(UnpackQ3KScale(y->scales, j));
    if (d == 0) continue;
    for (int ii = 0; ii < 16; ++ii)
      L[16 * j + ii] = static_cast<int8_t>(Clamp(NearestInt(x[16 * j + ii] / d), -4, 3) + 4);
  }
  uint8_t U[kQK_K];
  for (int e = 0; e < kQK_K; ++e) U[e] = static_cast<uint8_t>(L[e]);
  PackQ3KHmask(U, y->hmask);
  Pack2BitLevels(U, y->qs);
}

// quantize_row_q3_K_ref, one super-block.
void QuantizeBlockQ3K(const float* x, BlockQ3K* y) {
  int8_t L[kQK_K];
  float scales[16];
  // 1. make_q3_quants (coordinate descent, w = x^2) per sub-block; keep the
  //    scale of largest magnitude, with its sign.
  float max_scale = 0, amax = 0;
  for (int j = 0; j < 16; ++j) {
    scales[j] = quant::MakeQ3Quants(16, 4, x + 16 * j, L + 16 * j, true);
    const float scale = std::fabs(scales[j]);
    if (scale > amax) { amax = scale; max_scale = scales[j]; }
  }
  // 2. 6-bit signed scales against d = 1/iscale = -max_scale/32.
  if (max_scale != 0) {
    const float iscale = -32.f / max_scale;
    int ls[16];
    for (int j = 0; j < 16; ++j) {
      const int8_t l = static_cast<int8_t>(NearestInt(iscale * scales[j]));
      ls[j] = Clamp(l, -32, 31) + 32;
    }
    PackQ3KScales(ls, y->scales);
    y->d.set_f32(1 / iscale);
  } else {
    std::memset(y->scales, 0, sizeof y->scales);
    y->d.set_f32(0.f);
  }
  FinishQ3K(x, L, y);  // 3.-4.
}

// quantize_row_q3_K_impl, one super-block.
void QuantizeBlockQ3KImatrix(const float* x, const float* qw, BlockQ3K* y) {
  int8_t L[kQK_K], Ls[16];
  float scales[16], weight[16], sw[16];
  // 1. Weights qw * sqrt(sigma2 + x^2), sigma2 = 2 * mean x^2; make_qx_quants.
  float sumx2 = 0;
  for (int j = 0; j < kQK_K; ++j) sumx2 += x[j] * x[j];
  const float sigma2 = 2 * sumx2 / kQK_K;
  for (int j = 0; j < 16; ++j) {
    for (int l = 0; l < 16; ++l)
      weight[l] = qw[16 * j + l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
    float sumw = 0;
    for (int l = 0; l < 16; ++l) sumw += weight[l];
    sw[j] = sumw;
    scales[j] = quant::MakeQxQuants(16, x + 16 * j, L + 16 * j, {.nmax = 4}, weight);
  }
  // 2. The 16 scales themselves by make_qx_quants (nmax 32, weights sw).
  const float d_block = quant::MakeQxQuants(16, scales, Ls, {.nmax = 32}, sw);
  int ls[16];
  for (int j = 0; j < 16; ++j) ls[j] = Ls[j];
  PackQ3KScales(ls, y->scales);
  y->d.set_f32(d_block);
  FinishQ3K(x, L, y);  // 3.-4.
}

// --------------------------------------------------------------------------
// q4_k and q5_k (same search and scale packing; 4 or 5 bits per level)
// --------------------------------------------------------------------------

// Step 3 of q4_k/q5_k: requantize to 0..nmax from fp16 d*sc and dmin*m.
void RequantizeK4(const float* x, const uint8_t* packed_scales, float d_all, float dmin_all,
                  int nmax, uint8_t* L) {
  for (int j = 0; j < 8; ++j) {
    const ScaleMin sm = UnpackScaleMinK4(packed_scales, j);
    const float d = d_all * static_cast<float>(sm.scale);
    if (d == 0) continue;
    const float dm = dmin_all * static_cast<float>(sm.min);
    for (int ii = 0; ii < 32; ++ii)
      L[32 * j + ii] = static_cast<uint8_t>(Clamp(NearestInt((x[32 * j + ii] + dm) / d), 0, nmax));
  }
}

// quantize_row_q4_K_ref / quantize_row_q5_K_ref (nmax 15 / 31), one super-block.
// Writes d, dmin, the packed scales and the levels L (packing is per type).
void SearchK4Ref(const float* x, int nmax, PackedF16* d_out, PackedF16* dmin_out,
                 uint8_t* packed_scales, uint8_t* L) {
  const quant::MinMaxSearch& search = nmax == 15 ? quant::kQ4KRefSearch : quant::kQ5KRefSearch;
  uint8_t Laux[32];
  float weights[32], mins[8], scales[8];
  // 1. make_qkx2_quants per sub-block with weights av_x + |x|, av_x = rms of the sub-block.
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
    scales[j] = quant::MakeQkx2Quants(32, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, search);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  // 2. 6-bit scales and mins against max/63 (uint8 truncation, then capped at 63).
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  uint8_t ls[8], lm[8];
  for (int j = 0; j < 8; ++j) {
    const uint8_t s = static_cast<uint8_t>(NearestInt(inv_scale * scales[j]));
    const uint8_t m = static_cast<uint8_t>(NearestInt(inv_min * mins[j]));
    ls[j] = s < 63 ? s : 63;
    lm[j] = m < 63 ? m : 63;
  }
  PackScaleMinK4(ls, lm, packed_scales);
  d_out->set_f32(max_scale / 63.f);
  dmin_out->set_f32(max_min / 63.f);
  RequantizeK4(x, packed_scales, d_out->f32(), dmin_out->f32(), nmax, L);  // 3.
}

// quantize_row_q4_K_impl / quantize_row_q5_K_impl (imatrix), one super-block.
void SearchK4Imatrix(const float* x, const float* qw, int nmax, PackedF16* d_out,
                     PackedF16* dmin_out, uint8_t* packed_scales, uint8_t* L) {
  uint8_t Laux[32], Ls[8], Lm[8];
  float weights[32], sw[8], mins[8], scales[8];
  // 1. Weights qw * sqrt(sigma2 + x^2), sigma2 = 2 * mean x^2; make_qkx3_quants.
  float sum_x2 = 0;
  for (int l = 0; l < kQK_K; ++l) sum_x2 += x[l] * x[l];
  const float sigma2 = 2 * sum_x2 / kQK_K;
  for (int j = 0; j < 8; ++j) {
    for (int l = 0; l < 32; ++l)
      weights[l] = qw[32 * j + l] * std::sqrt(sigma2 + x[32 * j + l] * x[32 * j + l]);
    float sumw = 0;
    for (int l = 0; l < 32; ++l) sumw += weights[l];
    sw[j] = sumw;
    scales[j] = quant::MakeQkx3Quants(32, x + 32 * j, weights, L + 32 * j, &mins[j], Laux,
                                      quant::ImatrixMinMaxSearch(nmax));
  }
  // 2. 6-bit scales and mins by make_qp_quants (q5_k also caps them at 63).
  const float d_block = quant::MakeQpQuants(8, 63, scales, Ls, sw);
  const float m_block = quant::MakeQpQuants(8, 63, mins, Lm, sw);
  if (nmax == 31)
    for (int j = 0; j < 8; ++j) {
      Ls[j] = Ls[j] < 63 ? Ls[j] : 63;
      Lm[j] = Lm[j] < 63 ? Lm[j] : 63;
    }
  PackScaleMinK4(Ls, Lm, packed_scales);
  d_out->set_f32(d_block);
  dmin_out->set_f32(m_block);
  RequantizeK4(x, packed_scales, d_out->f32(), dmin_out->f32(), nmax, L);  // 3.
}

// --------------------------------------------------------------------------
// q6_k
// --------------------------------------------------------------------------

// quantize_row_q6_K_ref (qw == nullptr) / quantize_row_q6_K_impl (qw = the raw
// importance weights: ggml passes them to make_qx_quants unchanged), one block.
void QuantizeBlockQ6K(const float* x, const float* qw, BlockQ6K* y) {
  int8_t L[kQK_K];
  float scales[16];
  // 1. make_qx_quants per sub-block (nmax 32, w = x^2 or qw); keep the scale of
  //    largest magnitude with its sign.
  float max_scale = 0, max_abs_scale = 0;
  for (int ib = 0; ib < 16; ++ib) {
    const float scale = quant::MakeQxQuants(16, x + 16 * ib, L + 16 * ib, {.nmax = 32},
                                            qw != nullptr ? qw + 16 * ib : nullptr);
    scales[ib] = scale;
    const float abs_scale = std::fabs(scale);
    if (abs_scale > max_abs_scale) { max_abs_scale = abs_scale; max_scale = scale; }
  }
  if (max_abs_scale < quant::kGroupMaxEps) {  // all zero: an all-zero block
    std::memset(y, 0, sizeof *y);
    y->d.set_f32(0.f);
    return;
  }
  // 2. int8 scales against d = 1/iscale = -max_scale/128 (capped at 127).
  const float iscale = -128.f / max_scale;
  y->d.set_f32(1 / iscale);
  for (int ib = 0; ib < 16; ++ib) {
    const int s = NearestInt(iscale * scales[ib]);
    y->scales[ib] = static_cast<int8_t>(s < 127 ? s : 127);
  }
  // 3. Requantize from fp16 d * sc.
  for (int j = 0; j < 16; ++j) {
    const float d = y->d.f32() * static_cast<float>(y->scales[j]);
    if (d == 0) continue;
    for (int ii = 0; ii < 16; ++ii)
      L[16 * j + ii] = static_cast<int8_t>(Clamp(NearestInt(x[16 * j + ii] / d), -32, 31) + 32);
  }
  uint8_t U[kQK_K];  // 4.
  for (int e = 0; e < kQK_K; ++e) U[e] = static_cast<uint8_t>(L[e]);
  PackQ6KLevels(U, y->ql, y->qh);
}

// Runs `block(x, qw, y)` over every super-block of the chunk; qw is the
// imatrix slice of that block's columns (or nullptr).
template <typename Block, typename Fn>
void ForEachBlock(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                  const float* imatrix, Fn block) {
  Block* y = static_cast<Block*>(dst);
  const int64_t nb = n_per_row / kQK_K;
  for (int64_t r = 0; r < nrows; ++r)
    for (int64_t i = 0; i < nb; ++i, src += kQK_K, ++y)
      block(src, imatrix != nullptr ? imatrix + kQK_K * i : nullptr, y);
}

}  // namespace

// --------------------------------------------------------------------------
// Public quantizers
// --------------------------------------------------------------------------

void QuantizeQ2KRef(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                    const float* imatrix) {
  ForEachBlock<BlockQ2K>(src, dst, nrows, n_per_row, imatrix,
                         [](const float* x, const float* qw, BlockQ2K* y) {
                           if (qw != nullptr) QuantizeBlockQ2KImatrix(x, qw, y);
                           else QuantizeBlockQ2K(x, y);
                         });
}

void QuantizeQ3KRef(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                    const float* imatrix) {
  ForEachBlock<BlockQ3K>(src, dst, nrows, n_per_row, imatrix,
                         [](const float* x, const float* qw, BlockQ3K* y) {
                           if (qw != nullptr) QuantizeBlockQ3KImatrix(x, qw, y);
                           else QuantizeBlockQ3K(x, y);
                         });
}

void QuantizeQ4KRef(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                    const float* imatrix) {
  ForEachBlock<BlockQ4K>(src, dst, nrows, n_per_row, imatrix,
                         [](const float* x, const float* qw, BlockQ4K* y) {
                           uint8_t L[kQK_K];
                           if (qw != nullptr) SearchK4Imatrix(x, qw, 15, &y->d, &y->dmin, y->scales, L);
                           else SearchK4Ref(x, 15, &y->d, &y->dmin, y->scales, L);
                           PackQ4KNibbles(L, y->qs);  // 4.
                         });
}

void QuantizeQ5KRef(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                    const float* imatrix) {
  ForEachBlock<BlockQ5K>(src, dst, nrows, n_per_row, imatrix,
                         [](const float* x, const float* qw, BlockQ5K* y) {
                           uint8_t L[kQK_K];
                           if (qw != nullptr) SearchK4Imatrix(x, qw, 31, &y->d, &y->dmin, y->scales, L);
                           else SearchK4Ref(x, 31, &y->d, &y->dmin, y->scales, L);
                           PackQ5KLevels(L, y->qh, y->qs);  // 4.
                         });
}

void QuantizeQ6KRef(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                    const float* imatrix) {
  ForEachBlock<BlockQ6K>(src, dst, nrows, n_per_row, imatrix,
                         [](const float* x, const float* qw, BlockQ6K* y) {
                           QuantizeBlockQ6K(x, qw, y);
                         });
}

// --------------------------------------------------------------------------
// Public dequantizers (dequantize_row_qN_K; element formulas in blocks_k.h)
// --------------------------------------------------------------------------

void DequantizeQ2KRef(const void* src, float* y, int64_t n) {
  const BlockQ2K* b = static_cast<const BlockQ2K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i, ++b) {
    const float d = b->d.f32(), min = b->dmin.f32();
    for (int e = 0; e < kQK_K; ++e) {
      const uint8_t sc = b->scales[e / 16];
      const float dl = d * static_cast<float>(UnpackQ2KScale(sc));
      const float ml = min * static_cast<float>(UnpackQ2KMin(sc));
      *y++ = dl * static_cast<float>(Unpack2BitLevel(b->qs, e)) - ml;
    }
  }
}

void DequantizeQ3KRef(const void* src, float* y, int64_t n) {
  const BlockQ3K* b = static_cast<const BlockQ3K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i, ++b) {
    const float d_all = b->d.f32();
    for (int e = 0; e < kQK_K; ++e) {
      const float dl = d_all * static_cast<float>(UnpackQ3KScale(b->scales, e / 16));
      *y++ = dl * static_cast<float>(UnpackQ3KLevel(*b, e));
    }
  }
}

void DequantizeQ4KRef(const void* src, float* y, int64_t n) {
  const BlockQ4K* b = static_cast<const BlockQ4K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i, ++b) {
    const float d = b->d.f32(), min = b->dmin.f32();
    for (int e = 0; e < kQK_K; ++e) {
      const ScaleMin sm = UnpackScaleMinK4(b->scales, e / 32);
      const float d1 = d * static_cast<float>(sm.scale), m1 = min * static_cast<float>(sm.min);
      *y++ = d1 * static_cast<float>(UnpackQ4KLevel(b->qs, e)) - m1;
    }
  }
}

void DequantizeQ5KRef(const void* src, float* y, int64_t n) {
  const BlockQ5K* b = static_cast<const BlockQ5K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i, ++b) {
    const float d = b->d.f32(), min = b->dmin.f32();
    for (int e = 0; e < kQK_K; ++e) {
      const ScaleMin sm = UnpackScaleMinK4(b->scales, e / 32);
      const float d1 = d * static_cast<float>(sm.scale), m1 = min * static_cast<float>(sm.min);
      *y++ = d1 * static_cast<float>(UnpackQ5KLevel(*b, e)) - m1;
    }
  }
}

void DequantizeQ6KRef(const void* src, float* y, int64_t n) {
  const BlockQ6K* b = static_cast<const BlockQ6K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i, ++b) {
    const float d = b->d.f32();
    for (int e = 0; e < kQK_K; ++e)
      *y++ = d * static_cast<float>(b->scales[e / 16]) * static_cast<float>(UnpackQ6KLevel(*b, e));
  }
}

}  // namespace bitsmith::kquant
