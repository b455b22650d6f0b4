// Kernels of the ternary, MXFP4 and grid i-quant block codecs (internal to codecs/;
// the public entry points are QuantizeRows / DequantizeRows in codecs/quant.h).
//
// Every *Ref function is the scalar oracle: it reproduces ggml d99724f2
// (ggml_quantize_chunk, to_float) byte for byte, keeping ggml's evaluation order
// (the tree is built with -ffp-contract=off). The SIMD functions (Highway, dynamic
// dispatch) must equal them byte for byte on every target.
//
// Quantize signature: nrows rows of n_per_row floats (a multiple of the block size),
// `imatrix` = n_per_row importance weights used for every row, or nullptr.
// Dequantize signature: n values (a multiple of the block size) from their blocks.
#pragma once

#include <cstdint>

namespace bitsmith::iq {

#define BITSMITH_IQ_KERNELS_NO_SIMD_QUANTIZE(NAME)                                          \
  void Quantize##NAME##Ref(const float* x, void* y, int64_t nrows, int64_t n_per_row,       \
                           const float* imatrix);                                           \
  void Dequantize##NAME##Ref(const void* x, float* y, int64_t n);                           \
  void Dequantize##NAME##Simd(const void* x, float* y, int64_t n);
#define BITSMITH_IQ_KERNELS(NAME)                                                           \
  BITSMITH_IQ_KERNELS_NO_SIMD_QUANTIZE(NAME)                                                \
  void Quantize##NAME##Simd(const float* x, void* y, int64_t nrows, int64_t n_per_row,      \
                            const float* imatrix);

BITSMITH_IQ_KERNELS(TQ1_0)
BITSMITH_IQ_KERNELS(TQ2_0)
BITSMITH_IQ_KERNELS(MXFP4)
// The five lattice-search types' SIMD quantizers are Quantize<NAME>GridSimd
// (codecs/iq_grid_search.h, codecs/quant_iq_grid_simd.cc).
BITSMITH_IQ_KERNELS_NO_SIMD_QUANTIZE(IQ2XXS)
BITSMITH_IQ_KERNELS_NO_SIMD_QUANTIZE(IQ2XS)
BITSMITH_IQ_KERNELS_NO_SIMD_QUANTIZE(IQ2S)
BITSMITH_IQ_KERNELS_NO_SIMD_QUANTIZE(IQ3XXS)
BITSMITH_IQ_KERNELS_NO_SIMD_QUANTIZE(IQ3S)
BITSMITH_IQ_KERNELS(IQ1S)
BITSMITH_IQ_KERNELS(IQ1M)

#undef BITSMITH_IQ_KERNELS
#undef BITSMITH_IQ_KERNELS_NO_SIMD_QUANTIZE

// IQ1_M as llama.cpp quantizes it since PR #28706 (Sep 2026): the split search
// scores candidates from per-half prefix sums, which rounds differently from
// d99724f2 in rare blocks (ties, sums that overflow to inf). Not a product path:
// the differential tests use it to check the npm ggml (which has that change)
// byte for byte, while QuantizeIQ1MRef (d99724f2) is checked against the
// reference vectors.
void QuantizeIQ1MLlamaCpp28706Ref(const float* x, void* y, int64_t nrows, int64_t n_per_row,
                                  const float* imatrix);

// MXFP4's exponent byte of a block maximum, as d99724f2 computes it (libm's
// log2f; codecs/quant_iq_ternary_ref.cc): shared by the oracle and the SIMD path.
uint8_t MXFP4ExponentRef(float amax);

// ggml's nearest_int: round to nearest, ties to even, by adding 1.5 * 2^23 and
// reading the low mantissa bits. Exact for |f| <= 2^22; outside that (and for
// NaN/inf) it returns what ggml's release build returns, which the quantizers then
// clamp, so it is reproduced bit for bit rather than replaced by lrintf.
inline int NearestInt(float f) {
  const float v = f + 12582912.f;
  int32_t i;
  __builtin_memcpy(&i, &v, sizeof(i));
  return (i & 0x007fffff) - 0x00400000;
}

// ggml's MAX(a, b) macro: ((a) > (b) ? (a) : (b)) (the order matters for -0.0).
inline float MaxF(float a, float b) { return a > b ? a : b; }

}  // namespace bitsmith::iq
