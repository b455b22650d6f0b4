// Element codecs: float32 <-> every element format of formats/element_format.h.
//
// Each conversion has a plain scalar reference (the oracle, `*Ref` or
// Impl::kReference) and a Highway SIMD path with dynamic dispatch
// (codecs/element.cc, per-target code in codecs/element-inl.h) that equals the
// reference bit for bit on every input, at every length and alignment, on every
// compiled target (AVX-512, AVX2, SSE4, EMU128). The SIMD path rounds with
// integer operations only, so it never depends on MXCSR, FTZ/DAZ or Highway's
// DemoteTo (STYLE.md rule 3).
//
// Semantics: ml_dtypes' conversion (tests/data/float/README.md), bit for bit.
//  1. Round to nearest, ties to even, on the exact float32 value. float32
//     subnormal inputs are used exactly (no DAZ/FTZ).
//  2. A value overflows when its ROUNDED magnitude exceeds the largest finite
//     value (e4m3fn: 464 ties down to 448, anything above 464 overflows).
//  3. Overflow::kNonSaturating (the default, what ml_dtypes does):
//       e4m3fn -> NaN 0x7F/0xFF (sign kept);  e5m2, f16, bf16 -> +-inf;
//       e4m3fnuz, e5m2fnuz, e4m3b11fnuz -> 0x80 (their only NaN);
//       e8m0fnu -> 0xFF (NaN), and so do zero and every negative input.
//     Overflow::kSaturate (the OCP OFP8 v1.0 "SAT" mode): finite overflow AND
//     +-inf inputs -> +-max finite; e8m0fnu: zero and negative inputs -> 0x00
//     (its smallest value, 2^-127). NaN stays NaN in both modes.
//  4. NaN inputs: the format's canonical NaN with the input's sign where the
//     format is signed: e4m3fn 0x7F/0xFF, e5m2 0x7E/0xFE, fnuz 0x80, e8m0fnu
//     0xFF, bf16 0x7FC0/0xFFC0, f16 0x7E00/0xFE00 (payload dropped).
//  5. FP6/FP4 (e3m2fn, e2m3fn, e2m1fn) have no inf and no NaN: overflow and
//     +-inf always give +-max (both modes), and a NaN input gives the +0 code
//     0x00 whatever its sign (bitsmith's choice: a NaN carries no magnitude, and
//     zero is the value that disturbs a dot product least; ml_dtypes happens to
//     give the -0 code for +NaN, which bitsmith does not copy).
//  6. e8m0fnu (unsigned powers of two 2^(c-127), no zero), as ml_dtypes does:
//     a normal float32 m * 2^e (1 <= m < 2) gives 2^e when m < 1.5 and 2^(e+1)
//     when m >= 1.5 (ties round UP: with no mantissa bit kept, ml_dtypes'
//     round-to-nearest-even sees the implicit leading 1 as the kept bit).
//     float32 subnormals: x <= 1.5 * 2^-127 -> 0x00 (2^-127), larger -> 0x01
//     (2^-126): the nearer of the two, the tie going to the even code 0x00. This
//     departs from ml_dtypes (which rounds all of (2^-127, 2^-126) up) exactly as
//     the reference tables do.
//  7. Integers (int8, uint8, int4, uint4): round to nearest, ties to even, then
//     saturate to the format's range ([-128,127], [0,255], [-8,7], [0,15]);
//     NaN -> 0; +-inf saturate. Both overflow modes behave the same. 4-bit codes
//     are stored one per byte in the low nibble (int4 in two's complement).
//  8. Decoding: every code has an exact float32 value. NaN codes decode to the
//     quiet NaN 0x7FC00000 / 0xFFC00000 with the code's sign (the fnuz NaN 0x80
//     gives 0xFFC00000). f16 and bf16 NaNs keep their payload (quieted for f16;
//     bf16 -> f32 is a plain shift). Codes of < 8 bits ignore the unused high bits
//     of their byte.
//
// Storage: formats of <= 8 bits use one byte per code (FP6/FP4/int4 in the low
// bits), f16 and bf16 one little-endian uint16_t, f32 its IEEE bits.
//
// The kernels below (raw pointers) only assert their preconditions; the
// span-based entry points (Encode, Decode, Convert, ...) validate sizes and
// formats once and split the work across threads. Results never depend on the
// thread count. No function allocates on the heap except where stated.
#pragma once

#include <bit>  // std::bit_cast
#include <cstddef>
#include <cstdint>
#include <span>

#include "codecs/quant.h"  // Impl
#include "formats/element_format.h"
#include "formats/error.h"

namespace bitsmith {

// What happens to values beyond the largest finite magnitude (see rule 3 above).
enum class Overflow : uint8_t {
  kNonSaturating,  // ml_dtypes' default: NaN / inf / the NaN code
  kSaturate,       // OCP SAT: finite overflow and +-inf -> +-max
};

// Bytes of one stored code: 4 (f32), 2 (f16, bf16) or 1 (everything else).
constexpr size_t ElementBytes(ElementFormatId f) {
  const int bits = GetElementFormat(f).bits;
  return bits > 16 ? 4 : bits > 8 ? 2 : 1;
}

// ---------------------------------------------------------------------------
// Scalar oracle, one value at a time (plain C++, no SIMD).
// ---------------------------------------------------------------------------

// The code of float32 `x` in format `to` (rules 1-7). For f32 it returns x's bits.
uint32_t EncodeF32Ref(ElementFormatId to, float x, Overflow overflow = Overflow::kNonSaturating);
// The float32 bits of `code` in format `from` (rule 8). Bits above the format's
// width are ignored.
uint32_t DecodeToF32BitsRef(ElementFormatId from, uint32_t code);
inline float DecodeToF32Ref(ElementFormatId from, uint32_t code) {
  return std::bit_cast<float>(DecodeToF32BitsRef(from, code));
}

// ---------------------------------------------------------------------------
// Array kernels. `impl` picks the SIMD path (default) or the scalar oracle.
// Preconditions (asserted in debug builds only): `in` and `out` hold n values
// of the formats' storage sizes and do not overlap. No heap allocation.
// ---------------------------------------------------------------------------

// f32 -> any element format (out: n codes of ElementBytes(to) bytes each).
void EncodeF32(ElementFormatId to, const float* in, void* out, size_t n, Overflow overflow,
               Impl impl = Impl::kSimd);
// Any element format -> f32.
void DecodeToF32(ElementFormatId from, const void* in, float* out, size_t n,
                 Impl impl = Impl::kSimd);
// Any element format -> bf16 bits. Exact for every format of <= 8 bits and for
// bf16; f16 and f32 sources are rounded to nearest even (NaN -> 0x7FC0/0xFFC0).
void DecodeToBF16(ElementFormatId from, const void* in, uint16_t* out, size_t n,
                  Impl impl = Impl::kSimd);

// Typed kernels (the names say source, destination and operation; SIMD path).
void EncodeF32ToE4M3FN(const float* in, uint8_t* out, size_t n, Overflow overflow);
void EncodeF32ToE5M2(const float* in, uint8_t* out, size_t n, Overflow overflow);
void EncodeF32ToBF16(const float* in, uint16_t* out, size_t n,
                     Overflow overflow = Overflow::kNonSaturating);
void EncodeF32ToF16(const float* in, uint16_t* out, size_t n,
                    Overflow overflow = Overflow::kNonSaturating);
void DecodeE4M3FNToBF16(const uint8_t* in, uint16_t* out, size_t n);
void DecodeE4M3FNToF32(const uint8_t* in, float* out, size_t n);
void DecodeE5M2ToBF16(const uint8_t* in, uint16_t* out, size_t n);
void DecodeE5M2ToF32(const uint8_t* in, float* out, size_t n);
void DecodeBF16ToF32(const uint16_t* in, float* out, size_t n);  // exact (a shift)
void DecodeF16ToF32(const uint16_t* in, float* out, size_t n);   // exact

// ---------------------------------------------------------------------------
// Kernels for block-scaled FP8 checkpoints (DeepSeek-V3/R1 style: e4m3fn
// weights with one f32 scale per 128x128 tile). One call handles one segment
// that shares a scale. `from`/`to` may be any format of <= 8 bits (e4m3fn and
// e5m2 in practice); `scale` must be finite and non-zero.
// ---------------------------------------------------------------------------

// DeepSeek's fp8_cast_bf16 / weight_dequant: y = f32(decode(code)) * scale as ONE
// float32 multiply (round to nearest even), then y -> bf16 rounded to nearest
// even: two roundings, in that order. NaN codes stay NaN (0x7FC0/0xFFC0 with
// the code's sign).
void DecodeScaledToBF16(ElementFormatId from, const uint8_t* in, float scale, uint16_t* out,
                        size_t n, Impl impl = Impl::kSimd);
// The same, y kept as f32 (one rounding).
void DecodeScaledToF32(ElementFormatId from, const uint8_t* in, float scale, float* out, size_t n,
                       Impl impl = Impl::kSimd);
// The same, y rounded to f16 (nearest even; overflow -> +-inf; NaN -> 0x7E00/0xFE00).
void DecodeScaledToF16(ElementFormatId from, const uint8_t* in, float scale, uint16_t* out,
                       size_t n, Impl impl = Impl::kSimd);

// DeepSeek's act_quant / weight quantization of one segment:
// code = encode(f32(w / scale)) with a float32 DIVISION (not a multiply by the
// reciprocal, which rounds differently), then the usual encoding (saturating by
// default, as FP8 checkpoints want). `to` may be any format except f32 and the
// 16-bit ones (1-byte codes).
void EncodeDividedF32(ElementFormatId to, const float* in, float scale, uint8_t* out, size_t n,
                      Overflow overflow = Overflow::kSaturate, Impl impl = Impl::kSimd);

// max |x| over in[0, n): exact. NaN-propagating: returns a quiet NaN
// (0x7FC00000) as soon as any input is NaN; 0 for n == 0; +inf if an input is
// +-inf (and none is NaN). -0 counts as 0.
float MaxAbs(const float* in, size_t n, Impl impl = Impl::kSimd);

// ---------------------------------------------------------------------------
// Entry points: validate, then split across `threads` (<= 0: all cores).
// Errors (kBadInput / kBadUsage) name the format and the sizes found/expected.
// ---------------------------------------------------------------------------

// in: f32 values; out: in.size() * ElementBytes(to) bytes.
Status Encode(ElementFormatId to, std::span<const float> in, std::span<uint8_t> out_bytes,
              Overflow overflow = Overflow::kNonSaturating, Impl impl = Impl::kSimd,
              int threads = 1);
// in: codes of `from` (a whole number of them); out: one f32 per code.
Status Decode(ElementFormatId from, std::span<const uint8_t> in_bytes, std::span<float> out,
              Impl impl = Impl::kSimd, int threads = 1);
// Any element format -> any element format through the exact f32 value
// (from == to is a plain copy):
// decode (exact) then encode (one rounding). Fast paths: f32 source (plain
// encode), f32 target (plain decode), bf16 target from <= 8-bit formats
// (direct table-free decode). Buffer sizes must match the element counts.
// Uses a 16 KiB stack buffer per thread for the f32 intermediate.
Status Convert(ElementFormatId from, ElementFormatId to, std::span<const uint8_t> in_bytes,
               std::span<uint8_t> out_bytes, Overflow overflow = Overflow::kNonSaturating,
               Impl impl = Impl::kSimd, int threads = 1);

// ---------------------------------------------------------------------------
// Symmetric absmax INT8 quantization with f32 scales (the layout of INT8
// weight files: int8 codes plus one scale per row and per block of columns).
//
// `in` is rows x cols, row-major. Each row is cut into blocks of `block`
// columns (the last one may be shorter; block >= cols means one scale per row).
// For each block:  amax  = max |x|               (exact)
//                  scale = amax / 127            (one f32 division, RNE)
//                  code  = RNE(x / scale)        (f32 division, ties to even,
//                                                 saturated to [-127, 127])
//                  scale = 0 and codes 0 when the scale is 0 (amax == 0,
//                  or amax so tiny that amax / 127 underflows).
// -128 is never produced. Dequantization: x' = code * scale (one f32 multiply).
// scales: rows * ceil(cols / block) floats, row-major. Non-finite inputs are
// rejected (kBadInput, naming row and column).
// ---------------------------------------------------------------------------
Status QuantizeInt8Absmax(std::span<const float> in, int64_t rows, int64_t cols, int64_t block,
                          std::span<int8_t> codes, std::span<float> scales,
                          Impl impl = Impl::kSimd, int threads = 1);
Status DequantizeInt8Absmax(std::span<const int8_t> codes, std::span<const float> scales,
                            int64_t rows, int64_t cols, int64_t block, std::span<float> out,
                            Impl impl = Impl::kSimd, int threads = 1);
// Number of scales QuantizeInt8Absmax writes.
constexpr uint64_t Int8AbsmaxScaleCount(int64_t rows, int64_t cols, int64_t block) {
  return block <= 0 ? 0
                    : static_cast<uint64_t>(rows) *
                          static_cast<uint64_t>((cols + block - 1) / block);
}

}  // namespace bitsmith
