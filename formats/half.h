// Scalar f32 <-> f16 / bf16 conversions, bit-exact, constexpr.
//
// These are the scalar definitions every other layer uses: the block formats'
// fp16 scales (ggml_fp32_to_fp16: round to nearest even, which equals x86
// vcvtps2ph for every non-NaN float), bf16 weights (round to nearest even, as
// ml_dtypes and PyTorch's .to(torch.bfloat16) do), and the oracle the SIMD codecs
// are tested against.
#pragma once

#include <bit>      // std::bit_cast
#include <cstdint>

namespace bitsmith {

constexpr uint32_t F32Bits(float f) { return std::bit_cast<uint32_t>(f); }
constexpr float F32FromBits(uint32_t u) { return std::bit_cast<float>(u); }

// f32 -> f16, round to nearest, ties to even, f32 subnormals used exactly.
// Overflow (|x| >= 65520, the midpoint above 65504) gives +-inf.
// NaN gives 0x7E00 with the input's sign (ggml's software routine; ml_dtypes
// also yields a quiet NaN). Steps:
//  1. NaN / overflow / inf.
//  2. Results in the f16 subnormal range (|x| < 2^-14): the value in units of
//     2^-24, shifted out of the 24-bit f32 significand and rounded RNE.
//  3. Normal results: rebias the exponent (127 -> 15), drop 13 mantissa bits RNE;
//     a carry out of the mantissa correctly bumps the exponent.
constexpr uint16_t F32ToF16Bits(float f) {
  const uint32_t x = F32Bits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7FFFFFFFu;
  if (ax > 0x7F800000u) return sign | 0x7E00u;                  // 1. NaN
  if (ax >= 0x477FF000u) return sign | 0x7C00u;                 //    >= 65520 -> inf
  if (ax < 0x38800000u) {                                       // 2. < 2^-14
    const uint32_t e = ax >> 23;
    if (e < 102) return sign;  // < 2^-25: rounds to +-0 (2^-25 itself is a tie to 0)
    const uint32_t m = (ax & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126 - e;  // 14..24
    uint32_t r = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return static_cast<uint16_t>(sign | r);
  }
  uint32_t h = ((ax >> 13) - (112u << 10));                     // 3. rebias
  const uint32_t rem = ax & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

// f16 -> f32, exact. NaN keeps its sign and payload (quieted).
constexpr float F16BitsToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1Fu;
  uint32_t m = h & 0x3FFu;
  if (e == 0x1F) return F32FromBits(sign | 0x7F800000u | (m << 13) | (m ? 0x400000u : 0u));
  if (e == 0) {
    if (m == 0) return F32FromBits(sign);
    // Subnormal: normalise. value = m * 2^-24.
    int shift = 0;
    while (!(m & 0x400u)) m <<= 1, ++shift;
    return F32FromBits(sign | ((113u - shift) << 23) | ((m & 0x3FFu) << 13));
  }
  return F32FromBits(sign | ((e + 112u) << 23) | (m << 13));
}

// f32 -> bf16, round to nearest even; NaN -> 0x7FC0 / 0xFFC0 (sign kept, payload
// dropped, as ml_dtypes does); overflow rounds to inf naturally.
constexpr uint16_t F32ToBF16Bits(float f) {
  const uint32_t x = F32Bits(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>(((x >> 16) & 0x8000u) | 0x7FC0u);
  return static_cast<uint16_t>((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

constexpr float BF16BitsToF32(uint16_t b) { return F32FromBits(static_cast<uint32_t>(b) << 16); }

static_assert(F32ToF16Bits(65504.0f) == 0x7BFF);
static_assert(F32ToF16Bits(65519.0f) == 0x7BFF);
static_assert(F32ToF16Bits(65520.0f) == 0x7C00);
static_assert(F32ToF16Bits(5.9604645e-08f) == 0x0001);  // 2^-24, the smallest subnormal
static_assert(F32ToF16Bits(-0.0f) == 0x8000);
static_assert(F16BitsToF32(0x3C00) == 1.0f);
static_assert(F32ToBF16Bits(1.00390625f) == 0x3F80);  // tie 1 + 2^-8 -> even (1.0)
static_assert(F32ToBF16Bits(1.01171875f) == 0x3F82);  // tie 1 + 3*2^-8 -> even (up)

}  // namespace bitsmith
