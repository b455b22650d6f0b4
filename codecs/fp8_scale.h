// Fused kernel for block-scaled FP8 checkpoints (DeepSeek-V3/R1 layout): one
// row of codes with one scale per `bn` columns, decoded, multiplied and rounded
// in one pass, the NaN-code check folded in.
//
// The result equals, element for element, DecodeScaledToBF16 / ToF16 / ToF32
// (codecs/element.h) called on each bn-column segment with its scale -- i.e.
// DeepSeek's fp8_cast_bf16: y = f32(decode(code)) * scale as ONE float32
// multiply (RNE), then y rounded to the target (RNE): two roundings. It only
// saves the per-segment calls and the separate scan for NaN codes.
#pragma once

#include <cstddef>
#include <cstdint>

#include "codecs/element.h"

namespace bitsmith {

enum class ScaledTarget : uint8_t { kF32, kBF16, kF16 };

// out[j] = target(f32(decode(in[j])) * scales[j / bn]) for j < n; `out` holds
// n f32 (kF32) or n uint16 (kBF16, kF16) values. `from`: e4m3fn or e5m2.
// Precondition: bn >= 1 and every scale used (scales[0 .. ceil(n / bn)) ) is
// finite and non-zero (callers treat other scales separately, as the
// segment kernels require).
// Returns true when some code in[j] is non-finite for `from` (e4m3fn: 0x7F /
// 0xFF; e5m2: 0x7C-0x7F / 0xFC-0xFF, the infinities included) -- exactly
// when FindNonFiniteFp8 (convert/fp8.h) would find one.
bool DecodeScaledRow(ElementFormatId from, const uint8_t* in, size_t n, const float* scales, size_t bn,
                     ScaledTarget to, void* out, Impl impl = Impl::kSimd);

}  // namespace bitsmith
