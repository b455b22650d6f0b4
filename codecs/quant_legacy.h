// Kernels of the legacy block family (q4_0 q4_1 q5_0 q5_1 q8_0 q8_1, iq4_nl,
// iq4_xs, q8_k): the scalar references (codecs/quant_legacy_ref.cc, the oracles,
// byte-identical to ggml) and the Highway SIMD paths (codecs/quant_legacy_simd.cc,
// byte-identical to the references). Layouts: formats/blocks_legacy.h.
//
// These are the kernels behind LegacyBlockCodec (codecs/quant.h); use
// QuantizeRows / DequantizeRows, which validate their arguments. Preconditions
// (asserted only): n_per_row is a multiple of the block size, inputs and
// importance weights are finite, buffers hold whole rows. None allocates; the
// largest stack use is iq4_xs's 256-byte level buffer.
#pragma once

#include <cstdint>
#include <limits>

#include "formats/blocks_legacy.h"  // kIq4NlValues

namespace bitsmith::legacy {

// x86's float -> int32 truncation (cvttss2si / cvttps2dq), which is what ggml's
// `(int8_t)x`, `(uint8_t)x` and float-to-int8 assignments compile to on x86-64:
// round toward zero; NaN and values outside [-2^31, 2^31) give INT32_MIN (the
// "integer indefinite"). ggml then keeps the low byte. C++ leaves such
// conversions undefined, so bitsmith spells them out; only degenerate blocks
// (a scale whose inverse overflows) ever reach the out-of-range case.
inline int32_t TruncToInt32X86(float x) {
  if (!(x >= -2147483648.0f && x < 2147483648.0f)) return std::numeric_limits<int32_t>::min();
  return static_cast<int32_t>(x);
}

// ggml's best_index_int8(16, kvalues_iq4nl, x): the index of the nearest table value;
// below the first / above the last clamp; an exact tie picks the upper index.
// NaN falls through to the last index, as in ggml. Shared by the iq4_nl / iq4_xs
// reference and the scalar steps of their SIMD paths.
inline int BestIndexIq4(float x) {
  const int8_t* val = kIq4NlValues;
  if (x <= val[0]) return 0;
  if (x >= val[15]) return 15;
  int ml = 0, mu = 15;
  while (mu - ml > 1) {
    const int mav = (ml + mu) / 2;
    if (x < val[mav]) mu = mav;
    else ml = mav;
  }
  return x - val[mu - 1] < val[mu] - x ? mu - 1 : mu;
}

// Signatures of BlockCodec::QuantizeFn / DequantizeFn.
#define BITSMITH_LEGACY_KERNELS(Name)                                                     \
  void Quantize##Name##Ref(const float* src, void* dst, int64_t nrows, int64_t n_per_row, \
                           const float* imatrix);                                        \
  void Dequantize##Name##Ref(const void* src, float* dst, int64_t n);                    \
  void Quantize##Name##Simd(const float* src, void* dst, int64_t nrows, int64_t n_per_row, \
                            const float* imatrix);                                       \
  void Dequantize##Name##Simd(const void* src, float* dst, int64_t n);

BITSMITH_LEGACY_KERNELS(Q4_0)
BITSMITH_LEGACY_KERNELS(Q4_1)
BITSMITH_LEGACY_KERNELS(Q5_0)
BITSMITH_LEGACY_KERNELS(Q5_1)
BITSMITH_LEGACY_KERNELS(Q8_0)
BITSMITH_LEGACY_KERNELS(Q8_1)
BITSMITH_LEGACY_KERNELS(Iq4Nl)
BITSMITH_LEGACY_KERNELS(Iq4Xs)
BITSMITH_LEGACY_KERNELS(Q8K)
#undef BITSMITH_LEGACY_KERNELS

}  // namespace bitsmith::legacy
