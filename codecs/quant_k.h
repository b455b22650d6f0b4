// k-quant codecs (q2_k, q3_k, q4_k, q5_k, q6_k): the per-type kernels behind
// KQuantBlockCodec (codecs/quant.h), exposed for tests and benchmarks.
//
// Every kernel follows the BlockCodec contract: quantize `nrows` rows of
// `n_per_row` floats (a multiple of 256) into back-to-back blocks; `imatrix`
// (n_per_row importance weights, used for every row) selects ggml's
// quantize_row_qN_K_impl path, nullptr its quantize_row_qN_K_ref path, exactly
// as ggml_quantize_chunk does. Dequantize n values (a multiple of 256) as ggml's
// dequantize_row_qN_K. Inputs are assumed finite (checked by QuantizeRows).
//
// *Ref: scalar oracles, literal reproductions of ggml (codecs/quant_k_ref.cc).
// *Simd: Highway dynamic dispatch (codecs/quant_k_simd.cc), byte-identical to
// the oracles on every target; they allocate nothing and use < 64 KiB of stack.
#pragma once

#include <cstdint>

#include "formats/dtype.h"

namespace bitsmith::kquant {

using QuantizeFn = void (*)(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                            const float* imatrix);
using DequantizeFn = void (*)(const void* src, float* dst, int64_t n);

// Kernels of one k-quant type (index: KTypeIndex).
struct KernelSet {
  DType type;
  QuantizeFn quantize_ref, quantize_simd;
  DequantizeFn dequantize_ref, dequantize_simd;
};

// q2_k, q3_k, q4_k, q5_k, q6_k in that order.
inline constexpr int kNumKTypes = 5;
const KernelSet& Kernels(int k);
// The kernel set of `t`, or nullptr when t is not a k-quant.
const KernelSet* KernelsFor(DType t);

// Scalar references.
void QuantizeQ2KRef(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* imatrix);
void QuantizeQ3KRef(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* imatrix);
void QuantizeQ4KRef(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* imatrix);
void QuantizeQ5KRef(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* imatrix);
void QuantizeQ6KRef(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* imatrix);
void DequantizeQ2KRef(const void* src, float* dst, int64_t n);
void DequantizeQ3KRef(const void* src, float* dst, int64_t n);
void DequantizeQ4KRef(const void* src, float* dst, int64_t n);
void DequantizeQ5KRef(const void* src, float* dst, int64_t n);
void DequantizeQ6KRef(const void* src, float* dst, int64_t n);

// SIMD (dynamic dispatch to the best compiled target).
void QuantizeQ2KSimd(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* imatrix);
void QuantizeQ3KSimd(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* imatrix);
void QuantizeQ4KSimd(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* imatrix);
void QuantizeQ5KSimd(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* imatrix);
void QuantizeQ6KSimd(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* imatrix);
void DequantizeQ2KSimd(const void* src, float* dst, int64_t n);
void DequantizeQ3KSimd(const void* src, float* dst, int64_t n);
void DequantizeQ4KSimd(const void* src, float* dst, int64_t n);
void DequantizeQ5KSimd(const void* src, float* dst, int64_t n);
void DequantizeQ6KSimd(const void* src, float* dst, int64_t n);

}  // namespace bitsmith::kquant
