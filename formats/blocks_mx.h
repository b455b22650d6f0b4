// Block layouts of the OCP Microscaling (MX v1.0) types and NVIDIA NVFP4.
//
// Specifications:
//  - OCP Microscaling Formats (MX) Specification v1.0 (Sep 2023), §5.2 Table 1:
//    MXFP8 (E5M2 / E4M3), MXFP6 (E3M2 / E2M3), MXFP4 (E2M1), MXINT8 (INT8), each
//    a block of k = 32 elements sharing one E8M0 scale X (§5.4.1: 2^(e-127),
//    e = 0xFF is the only NaN, no zero, no inf). Value of element i: X * P_i.
//    §6.3 (scale rule, implemented by MxSharedExp below): X = the largest power of
//    two <= max|V_i|, divided by the largest power of two of the element format
//    (2^emax_elem); P_i = V_i / X quantized to the element format, normal numbers
//    beyond its max clamped to +-max with the sign kept.
//  - NVFP4: 16 E2M1 elements sharing one E4M3 (e4m3fn) scale, and one float32
//    scale per tensor (NVIDIA TensorRT-Model-Optimizer, modelopt/torch/
//    quantization/qtensor/nvfp4_tensor.py; arXiv 2509.25149 Appendix B). The
//    tensor scale is not part of the block: codecs/nvfp4.h takes it separately.
//
// Memory layout. The MX spec defines the element encodings and the block
// abstraction, not a byte layout: it says nothing about where the scale goes or
// how 6- and 4-bit elements are packed. bitsmith stores each block as the scale
// byte followed by the 32 elements in order, packed as a contiguous LSB-first
// bit stream (element i in bits [w*i, w*i + w) of the little-endian stream):
//   - FP8, INT8: one byte per element;
//   - FP6: 4 elements in 3 bytes, the 24-bit little-endian word
//     c0 | c1 << 6 | c2 << 12 | c3 << 18 (ONNX 1.23 FLOAT6E2M3/FLOAT6E3M2
//     "Packing and Unpacking": "a contiguous LSB-first bit stream"; Modular's
//     pack_fp6_x4 is the same);
//   - FP4: 2 elements per byte, element 2j in the low nibble of byte j, 2j+1 in
//     the high nibble (ONNX FLOAT4E2M1, PyTorch float4_e2m1fn_x2, ModelOpt's NVFP4
//     packing `(q[1::2] << 4) | q[0::2]`).
// ggml's `mxfp4` (formats/blocks_iq.h) is a different layout (element j and j+16
// share byte j) with ggml's own rounding: it is a separate type, not this one.
//
// Element codes are those of formats/element_format.h (e4m3fn, e5m2, e3m2fn,
// e2m3fn, e2m1fn, int8). MXINT8's element is an 8-bit two's complement integer
// read as a 1.6 fixed-point number (value q * 2^-6, range [-2, 127/64]).
#pragma once

#include <bit>  // std::endian
#include <cstdint>
#include <optional>

#include "formats/dtype.h"
#include "formats/element_format.h"

namespace bitsmith {

static_assert(std::endian::native == std::endian::little,
              "block layouts are little-endian; a big-endian port needs byte swaps here");

inline constexpr int kMxBlockElems = 32;     // OCP MX v1.0 §5.2: k = 32 for every concrete format
inline constexpr int kNvfp4BlockElems = 16;  // NVFP4: 16 elements per E4M3 scale

// ---------------------------------------------------------------------------
// E8M0 scale (OCP MX v1.0 §5.4.1): unsigned, bias 127, code e means 2^(e-127)
// for e in [0, 254]; 0xFF is NaN. There is no zero: the smallest scale is 2^-127.
// ---------------------------------------------------------------------------
inline constexpr int kE8M0Bias = 127;
inline constexpr int kMxMinSharedExp = -127;  // code 0x00
inline constexpr int kMxMaxSharedExp = 127;   // code 0xFE
inline constexpr uint8_t kE8M0NaN = 0b1111'1111;

// float32 bits of the scale 2^(e-127); NaN (0x7FC00000) for 0xFF. Code 0 is the
// float32 subnormal 2^-127 (bits 0x00400000); codes >= 1 are normal floats with
// exponent field e.
constexpr uint32_t E8M0ToF32Bits(uint8_t e) {
  if (e == kE8M0NaN) return 0x7FC00000u;
  return e == 0 ? 0x00400000u : static_cast<uint32_t>(e) << 23;
}
static_assert(E8M0ToF32Bits(127) == 0x3F800000u);  // 2^0 = 1.0f
static_assert(E8M0ToF32Bits(0b1111'1110) == 0x7F000000u);  // 2^127

// float32 bits of the power of two 2^k, for k in [-149, 127] (subnormals below
// -126). Every MX scale and every scale * 2^-6 (MXINT8) is in this range.
constexpr uint32_t Pow2F32Bits(int k) {
  return k >= -126 ? static_cast<uint32_t>(k + 127) << 23 : 1u << (k + 149);
}
static_assert(Pow2F32Bits(0) == 0x3F800000u && Pow2F32Bits(-127) == 0x00400000u &&
              Pow2F32Bits(-149) == 1u && Pow2F32Bits(127) == 0x7F000000u);

// ---------------------------------------------------------------------------
// The MX scale rule (OCP MX v1.0 §6.3), computed exactly from float32 bits (no
// log2f): shared_exp = floor(log2(amax)) - emax_elem, clamped to E8M0's range.
//
//   1. `amax_bits` are the bits of max|V_i| (sign cleared). Exponent field 0xFF
//      (inf or NaN somewhere in the block): the scale is NaN (0xFF), as the
//      spec's reference code does for an overflowing exponent.
//   2. A normal amax = 1.m * 2^(f-127) has floor(log2(amax)) = f - 127, exactly.
//   3. Zero and float32 subnormals (f = 0) have floor(log2) <= -127; since
//      emax_elem >= 0 the result is below E8M0's range anyway.
//   4. Clamp below to -127 (code 0x00, the smallest scale): blocks of tiny values
//      (or all zeros) get X = 2^-127 and elements V_i / 2^-127. The upper end
//      needs no clamp: floor(log2(amax)) <= 127 for finite float32 and
//      emax_elem >= 0.
// Returns the E8M0 code (shared_exp + 127), or 0xFF.
// ---------------------------------------------------------------------------
constexpr uint8_t MxScaleCodeForAmax(uint32_t amax_bits, int emax_elem) {
  const int field = static_cast<int>((amax_bits >> 23) & 0xFF);
  if (field == 0xFF) return kE8M0NaN;                     // step 1
  if (field == 0) return 0;                               // step 3 (clamped)
  const int shared_exp = field - 127 - emax_elem;         // step 2
  return static_cast<uint8_t>((shared_exp < kMxMinSharedExp ? kMxMinSharedExp : shared_exp) +
                              kE8M0Bias);                 // step 4
}
// Literal checks: amax 1.0 with E4M3 (emax 8) -> 2^-8 (code 119); amax 6.0 with
// E2M1 (emax 2) -> 2^0 (code 127); amax 2^-126 with E5M2 (emax 15) -> clamped.
static_assert(MxScaleCodeForAmax(0x3F800000u, 8) == 119);
static_assert(MxScaleCodeForAmax(0x40C00000u, 2) == 127);
static_assert(MxScaleCodeForAmax(0x00800000u, 15) == 0);
static_assert(MxScaleCodeForAmax(0x7F7FFFFFu, 0) == 254);  // max float, MXINT8 -> 2^127
static_assert(MxScaleCodeForAmax(0x7F800000u, 8) == kE8M0NaN);

// ---------------------------------------------------------------------------
// The MX types: which element format, its emax_elem, its width.
// ---------------------------------------------------------------------------
struct MxLayout {
  DType type;
  ElementFormatId element;
  int emax_elem;     // exponent of the largest power of two of the element format
  int element_bits;  // 8, 6 or 4
  int fraction_bits; // MXINT8: 6 (value = q * 2^-6); float elements: 0
};

namespace blocks_mx_detail {
// emax_elem of a float element format: the unbiased exponent of its largest
// finite value (e4m3fn 448 = 1.75 * 2^8 -> 8; e5m2 57344 -> 15; e3m2fn 28 -> 4;
// e2m3fn 7.5 -> 2; e2m1fn 6 -> 2).
constexpr int FloatEmax(ElementFormatId id) {
  const ElementFormat& f = GetElementFormat(id);
  return static_cast<int>((f.max_finite_code() & f.exponent_mask()) >> f.mantissa_bits) - f.bias;
}
constexpr MxLayout Float(DType t, ElementFormatId e) {
  return {t, e, FloatEmax(e), GetElementFormat(e).bits, 0};
}
}  // namespace blocks_mx_detail

// nullopt for types that are not MX (nvfp4 included: its scale is not E8M0).
constexpr std::optional<MxLayout> GetMxLayout(DType t) {
  using blocks_mx_detail::Float;
  using E = ElementFormatId;
  switch (t) {
    case DType::kMXFP8_E4M3: return Float(t, E::kE4M3FN);
    case DType::kMXFP8_E5M2: return Float(t, E::kE5M2);
    case DType::kMXFP6_E3M2: return Float(t, E::kE3M2FN);
    case DType::kMXFP6_E2M3: return Float(t, E::kE2M3FN);
    case DType::kMXFP4_OCP: return Float(t, E::kE2M1FN);
    // INT8 read as 1.6 fixed point (MX v1.0's INT8 element, implicit scale 2^-6):
    // its largest power of two is 1 = 2^0.
    case DType::kMXINT8: return MxLayout{t, E::kInt8, 0, 8, 6};
    default: return std::nullopt;
  }
}
static_assert(GetMxLayout(DType::kMXFP8_E4M3)->emax_elem == 8);
static_assert(GetMxLayout(DType::kMXFP8_E5M2)->emax_elem == 15);
static_assert(GetMxLayout(DType::kMXFP6_E3M2)->emax_elem == 4);
static_assert(GetMxLayout(DType::kMXFP6_E2M3)->emax_elem == 2);
static_assert(GetMxLayout(DType::kMXFP4_OCP)->emax_elem == 2);
static_assert(GetMxLayout(DType::kMXINT8)->emax_elem == 0);

// Bytes of the packed elements of one MX block (32 * bits / 8).
constexpr int MxPayloadBytes(const MxLayout& l) { return kMxBlockElems * l.element_bits / 8; }

// ---------------------------------------------------------------------------
// Block structs. Value formula for all MX blocks: y_i = X * P_i with
// X = 2^(e-127) (NaN when e = 0xFF) and P_i the element value of code i
// (MXINT8: P_i = q_i * 2^-6).
// ---------------------------------------------------------------------------

// MXFP8 (E4M3 or E5M2): 32 values in 33 bytes = 8.25 bpw. qs[i] = code of element i.
struct BlockMXFP8 {
  uint8_t e;  // E8M0 scale
  uint8_t qs[32];
};
static_assert(sizeof(BlockMXFP8) == 33);
static_assert(sizeof(BlockMXFP8) == GetDType(DType::kMXFP8_E4M3).block_bytes);
static_assert(sizeof(BlockMXFP8) == GetDType(DType::kMXFP8_E5M2).block_bytes);

// MXFP6 (E3M2 or E2M3): 32 values in 25 bytes = 6.25 bpw. Elements 4g..4g+3 are
// the 3 bytes qs[3g..3g+2] (PackFP6x4 below).
struct BlockMXFP6 {
  uint8_t e;
  uint8_t qs[24];
};
static_assert(sizeof(BlockMXFP6) == 25);
static_assert(sizeof(BlockMXFP6) == GetDType(DType::kMXFP6_E3M2).block_bytes);
static_assert(sizeof(BlockMXFP6) == GetDType(DType::kMXFP6_E2M3).block_bytes);

// MXINT8: 32 values in 33 bytes = 8.25 bpw. y_i = 2^(e-127) * qs[i] * 2^-6.
struct BlockMXINT8 {
  uint8_t e;
  int8_t qs[32];
};
static_assert(sizeof(BlockMXINT8) == 33);
static_assert(sizeof(BlockMXINT8) == GetDType(DType::kMXINT8).block_bytes);

// MXFP4 (OCP layout, E2M1): 32 values in 17 bytes = 4.25 bpw. Element 2j = low
// nibble of qs[j], element 2j+1 = high nibble.
struct BlockMXFP4OCP {
  uint8_t e;
  uint8_t qs[16];
};
static_assert(sizeof(BlockMXFP4OCP) == 17);
static_assert(sizeof(BlockMXFP4OCP) == GetDType(DType::kMXFP4_OCP).block_bytes);

// NVFP4: 16 values in 9 bytes = 4.5 bpw (plus one f32 per tensor).
//   y_i = E2M1(q_i) * f32(E4M3(d) * s_t), s_t the tensor scale (codecs/nvfp4.h).
// Element 2j = low nibble of qs[j], element 2j+1 = high nibble.
struct BlockNVFP4 {
  uint8_t d;  // e4m3fn block scale code
  uint8_t qs[8];
};
static_assert(sizeof(BlockNVFP4) == 9);
static_assert(sizeof(BlockNVFP4) == GetDType(DType::kNVFP4).block_bytes);

// ---------------------------------------------------------------------------
// Packing helpers (every bit packing once, used by quantizer, dequantizer and
// inspector alike).
// ---------------------------------------------------------------------------

// FP6: 4 codes (low 6 bits each; higher bits ignored) -> 3 bytes, LSB first:
//   out[0] = c0      | c1 << 6        bits  0..7  of w = c0 | c1<<6 | c2<<12 | c3<<18
//   out[1] = c1 >> 2 | c2 << 4        bits  8..15
//   out[2] = c2 >> 4 | c3 << 2        bits 16..23
constexpr void PackFP6x4(const uint8_t c[4], uint8_t out[3]) {
  const uint32_t w = (c[0] & 0x3Fu) | (c[1] & 0x3Fu) << 6 | (c[2] & 0x3Fu) << 12 |
                     (c[3] & 0x3Fu) << 18;
  out[0] = static_cast<uint8_t>(w);
  out[1] = static_cast<uint8_t>(w >> 8);
  out[2] = static_cast<uint8_t>(w >> 16);
}
// The inverse: 3 bytes -> 4 codes (0..63).
constexpr void UnpackFP6x4(const uint8_t in[3], uint8_t c[4]) {
  const uint32_t w = in[0] | static_cast<uint32_t>(in[1]) << 8 | static_cast<uint32_t>(in[2]) << 16;
  for (int k = 0; k < 4; ++k) c[k] = static_cast<uint8_t>((w >> (6 * k)) & 0x3F);
}
namespace blocks_mx_detail {
constexpr bool FP6Examples() {
  // 0b000001 then three zeros -> 01 00 00; c3 = 0b111111 alone -> 00 00 FC.
  uint8_t a[4] = {1, 0, 0, 0}, b[4] = {0, 0, 0, 0x3F}, o[3] = {};
  PackFP6x4(a, o);
  if (o[0] != 0x01 || o[1] != 0 || o[2] != 0) return false;
  PackFP6x4(b, o);
  if (o[0] != 0 || o[1] != 0 || o[2] != 0xFC) return false;
  // c1 = 0b100111 straddles bytes 0 and 1: bits 6..11 -> o0 = 0b11'000000, o1 = 0b1001.
  uint8_t c[4] = {0, 0b100111, 0, 0};
  PackFP6x4(c, o);
  return o[0] == 0b1100'0000 && o[1] == 0b0000'1001 && o[2] == 0;
}
}  // namespace blocks_mx_detail
static_assert(blocks_mx_detail::FP6Examples());

// FP4: two codes (low 4 bits each) -> one byte, `lo` in bits 0..3.
constexpr uint8_t PackFP4x2(uint8_t lo, uint8_t hi) {
  return static_cast<uint8_t>((lo & 0xF) | (hi & 0xF) << 4);
}
constexpr uint8_t FP4Low(uint8_t b) { return b & 0xF; }
constexpr uint8_t FP4High(uint8_t b) { return b >> 4; }
static_assert(PackFP4x2(0b0111, 0b1001) == 0b1001'0111);  // +6 low, -0.5 high

// Packs n codes (one per byte) of `bits` = 8, 6 or 4 into the bit stream above
// (n a multiple of 4), and the inverse. out/in hold n * bits / 8 bytes.
constexpr void PackMxElements(int bits, const uint8_t* codes, int n, uint8_t* out) {
  if (bits == 8) {
    for (int i = 0; i < n; ++i) out[i] = codes[i];
  } else if (bits == 6) {
    for (int g = 0; g < n / 4; ++g) PackFP6x4(codes + 4 * g, out + 3 * g);
  } else {
    for (int j = 0; j < n / 2; ++j) out[j] = PackFP4x2(codes[2 * j], codes[2 * j + 1]);
  }
}
constexpr void UnpackMxElements(int bits, const uint8_t* in, int n, uint8_t* codes) {
  if (bits == 8) {
    for (int i = 0; i < n; ++i) codes[i] = in[i];
  } else if (bits == 6) {
    for (int g = 0; g < n / 4; ++g) UnpackFP6x4(in + 3 * g, codes + 4 * g);
  } else {
    for (int j = 0; j < n / 2; ++j) {
      codes[2 * j] = FP4Low(in[j]);
      codes[2 * j + 1] = FP4High(in[j]);
    }
  }
}

}  // namespace bitsmith
