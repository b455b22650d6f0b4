// NVFP4: NVIDIA's 4-bit block format with two-level scaling.
//
// A tensor in NVFP4 is blocks of 16 E2M1 elements, each block with one e4m3fn
// scale s_b (formats/blocks_mx.h BlockNVFP4: the dtype row `nvfp4`, 9 bytes per
// block), PLUS one float32 scale s_t for the whole tensor. The per-row
// BlockCodec interface (codecs/quant.h) has no place for s_t, so nvfp4 has no
// BlockCodec (MxBlockCodec returns nullptr, QuantizeRows reports "no codec"):
// use the functions below, which take s_t explicitly.
//
// Semantics: NVIDIA TensorRT-Model-Optimizer's NVFP4QTensor (modelopt/torch/
// quantization/qtensor/nvfp4_tensor.py: get_weights_scaling_factor_2,
// get_weights_scaling_factor, quantize, _cast_fp4, dequantize), every step one
// float32 operation rounded to nearest even (no FMA):
//   1. Tensor scale  s_t = amax_tensor / 2688   (2688 = 6 * 448: the E2M1 max
//      times the E4M3 max; ModelOpt's `amax / (6.0 * 448.0)`).
//   2. Block scale   r = amax_b / f32(6 * s_t); r = 1 when r == 0 (ModelOpt:
//      "set all zero values in scale to 1.0"); s_b = e4m3fn(r), round to
//      nearest even, saturating at 448 (r <= 448 whenever s_t comes from step 1;
//      a caller's smaller s_t saturates instead of giving e4m3fn's NaN, as
//      ModelOpt 0.44 clamps to 448 before its cast).
//   3. Elements      q_i = e2m1(x_i / f32(s_b * s_t)), round to nearest even,
//      saturating at +-6 (bitsmith's element codec, codecs/element.h).
//   4. Dequantize    y_i = f32(E2M1(q_i) * f32(s_b * s_t)).
//   Packing: element 2j in the low nibble of qs[j], 2j+1 in the high nibble
//   (ModelOpt `(q[..., 1::2] << 4) | q[..., 0::2]`).
//
// bitsmith's decisions where ModelOpt is undefined or differs:
//   - s_t == 0 (an all-zero tensor, or amax_tensor < 2688 * 2^-150 so that the
//     division underflows): every block is written as scale 0x00 and element
//     codes 0, i.e. exact zeros. (ModelOpt would compute 0/0 = NaN scales.)
//   - f32(s_b * s_t) == 0 (s_b rounded to 0 because amax_b / (6 s_t) < 2^-10,
//     i.e. the block is below ~2.2e-6 of the tensor's amax, or the product
//     underflows): element codes 0, so the block dequantizes to zeros. ModelOpt
//     divides by zero there (codes of +-inf / NaN) and gets the same zeros after
//     multiplying by the zero scale.
//   - -0.0 gives the -0 code 0x8 (bitsmith's element codec keeps the sign);
//     ModelOpt's `(weight < 0)` sign bit gives 0x0. Same value.
//   - Non-finite values: the entry points reject them (kBadInput naming the row
//     and column) and require a finite s_t >= 0 to quantize, a finite s_t to
//     dequantize. The kernels are still defined on any input: a block holding
//     inf/NaN, or any block when s_t is not finite, gets the e4m3fn NaN scale
//     0x7F and element codes 0 (it dequantizes to NaN).
//
// How a file carries s_t: exactly as ModelOpt's Hugging Face export does
// (hf_quant_config.json / config.json quantization_config: "quant_algo":
// "NVFP4", "group_size": 16). Per quantized linear layer `L`:
//   L.weight          U8        [rows, cols/2]   the packed nibbles
//   L.weight_scale    F8_E4M3   [rows, cols/16]  the block scales s_b
//   L.weight_scale_2  F32       []               s_t
//   L.input_scale     F32       []               (activations; not used here)
// bitsmith's `nvfp4` dtype interleaves s_b with the nibbles (9-byte blocks); a
// converter moves the scale bytes in or out and keeps s_t as the separate F32
// scalar tensor `L.weight_scale_2` (GGUF has no nvfp4 type at ggml d99724f2; a
// GGUF writer would use the same companion-tensor convention).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "codecs/quant.h"  // Impl
#include "formats/error.h"

namespace bitsmith {

inline constexpr float kNvfp4ElementMax = 6.0f;    // E2M1 max
inline constexpr float kNvfp4ScaleMax = 448.0f;     // E4M3 (e4m3fn) max
inline constexpr float kNvfp4TensorScaleDivisor = 2688.0f;  // 6 * 448, exact
inline constexpr int kNvfp4BlockBytes = 9;

// ---------------------------------------------------------------------------
// Kernels (no validation; preconditions are only asserted). No allocation.
// ---------------------------------------------------------------------------

// Step 1: max |x_i| / 2688 (exact max, one f32 division). NaN if any x_i is NaN,
// +inf if any is +-inf. 0 for n == 0.
float Nvfp4TensorScaleRef(const float* x, size_t n);

// Quantizes nblocks blocks of 16 values into nblocks * 9 bytes (steps 2-3).
// kReference: the scalar oracle; kSimd: element conversion through the element
// codec's Highway kernels, byte-identical.
void QuantizeNvfp4Blocks(const float* x, uint8_t* dst, size_t nblocks, float tensor_scale,
                         Impl impl = Impl::kSimd);
// Dequantizes nblocks blocks (step 4). Any bytes are accepted.
void DequantizeNvfp4Blocks(const uint8_t* src, float* y, size_t nblocks, float tensor_scale,
                           Impl impl = Impl::kSimd);

// ---------------------------------------------------------------------------
// Entry points: validate once, then split whole blocks across `threads`
// (<= 0: all cores). Results never depend on the thread count.
// ---------------------------------------------------------------------------

// s_t of a whole tensor (step 1). kBadInput when a value is not finite (naming
// its index).
Result<float> ComputeNvfp4TensorScale(std::span<const float> x, int threads = 1);

// Quantizes rows of n_per_row values (a positive multiple of 16) with the given
// tensor scale (finite, >= 0; normally ComputeNvfp4TensorScale of the same
// tensor). dst must hold exactly src.size() / 16 * 9 bytes. Errors (kBadInput)
// name the row length and the needed multiple, the sizes, the first non-finite
// value's row and column, or the bad tensor scale.
Status QuantizeNvfp4(std::span<const float> src, std::span<uint8_t> dst, int64_t n_per_row,
                     float tensor_scale, Impl impl = Impl::kSimd, int threads = 1);

// Dequantizes whole blocks: dst.size() a multiple of 16, src.size() the matching
// number of bytes, tensor_scale finite.
Status DequantizeNvfp4(std::span<const uint8_t> src, std::span<float> dst, float tensor_scale,
                       Impl impl = Impl::kSimd, int threads = 1);

}  // namespace bitsmith
