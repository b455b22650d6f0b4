// ggml's "legacy" blocks (q4_0, q4_1, q5_0, q5_1, q8_0, q8_1), the non-linear
// 4-bit blocks (iq4_nl, iq4_xs) and the activation-side q8_k: byte layouts,
// value formulas and the bit packings, each written once as a named pack/unpack
// pair used by the quantizers, the dequantizers and the block inspector.
//
// Layouts after ggml/src/ggml-common.h (block_q4_0 ... block_q8_K). All fields
// are little-endian; fp16 scales are `PackedF16` (formats/blocks_k.h: two bytes,
// alignment 1), so every block may sit at any byte offset and blocks follow each
// other with no padding. Sizes are checked against formats/dtype.h.
//
// Products in the value formulas are float32 and evaluated in the order written
// (ggml's to_float). Every scale x level product is exact (an fp16 d has 11
// significant bits, a level at most 8); only the "+ m" of q4_1/q5_1 and q8_k's
// f32 d * q may round.
#pragma once

#include <cstdint>
#include <cstring>  // std::memcpy

#include "formats/blocks_k.h"  // PackedF16, kQK_K
#include "formats/dtype.h"

namespace bitsmith {

inline constexpr int kQK_Legacy = 32;  // elements per legacy / iq4_nl block (ggml QK4_0 ... QK8_1)

// ---------------------------------------------------------------------------
// The 4-bit nibble order shared by q4_0, q4_1, q5_0, q5_1 and iq4_nl (and, per
// 32-element sub-block, iq4_xs): element j < 16 is the low nibble of qs[j],
// element 16 + j the high nibble of qs[j].
//
//   qs[j] = 0bHHHH'LLLL   LLLL = level of element j, HHHH = level of element j+16
// ---------------------------------------------------------------------------
// ggml writes `qs[j] = xi0; qs[j] |= xi1 << 4` with 8-bit xi0/xi1: the low
// level's byte is kept whole and the high one is shifted (only values 0..15 occur
// in practice; the general form is kept so that packing reproduces ggml for any
// byte).
constexpr uint8_t PackNibblePair(uint8_t lo_level, uint8_t hi_level) {
  return static_cast<uint8_t>(lo_level | static_cast<uint8_t>(hi_level << 4));
}
// Packs 32 levels (each 0..15) into qs[16].
inline void PackNibbles32(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < 16; ++j) qs[j] = PackNibblePair(L[j], L[j + 16]);
}
// Level (0..15) of element j (0..31) of a 16-byte nibble array.
constexpr int UnpackNibble32(const uint8_t* qs, int j) {
  return j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4);
}

// ---------------------------------------------------------------------------
// The fifth bit of q5_0 / q5_1 levels: bit j of the little-endian u32 qh is bit 4
// of element j's level; the low four bits are nibbles as above.
//   level_j = UnpackNibble32(qs, j) | (((qh >> j) & 1) << 4)   (0..31)
// ---------------------------------------------------------------------------
// Packs bit 4 of 32 levels into qh (ggml: `qh |= ((xi & 0x10u) >> 4) << j`).
inline uint32_t PackQ5HighBits(const uint8_t* L) {
  uint32_t qh = 0;
  for (int j = 0; j < 32; ++j) qh |= static_cast<uint32_t>((L[j] & 0x10u) >> 4) << j;
  return qh;
}
// Packs 32 five-bit levels (only bits 0..4 of each are used, as in ggml) into
// qs[16] and qh.
inline void PackQ5Levels(const uint8_t* L, uint8_t* qs, uint8_t* qh_bytes) {
  for (int j = 0; j < 16; ++j)
    qs[j] = static_cast<uint8_t>((L[j] & 0x0F) | ((L[j + 16] & 0x0F) << 4));
  const uint32_t qh = PackQ5HighBits(L);
  for (int b = 0; b < 4; ++b) qh_bytes[b] = static_cast<uint8_t>(qh >> (8 * b));
}
constexpr uint32_t LoadQh(const uint8_t* qh_bytes) {
  return static_cast<uint32_t>(qh_bytes[0]) | static_cast<uint32_t>(qh_bytes[1]) << 8 |
         static_cast<uint32_t>(qh_bytes[2]) << 16 | static_cast<uint32_t>(qh_bytes[3]) << 24;
}
// Level (0..31) of element j.
constexpr int UnpackQ5Level(const uint8_t* qs, uint32_t qh, int j) {
  return UnpackNibble32(qs, j) | static_cast<int>(((qh >> j) & 1u) << 4);
}

// ---------------------------------------------------------------------------
// q4_0: 4.5 bpw (18 bytes / 32). y = (q - 8) * d, q in 0..15 (nibbles above).
// ---------------------------------------------------------------------------
struct BlockQ4_0 {
  PackedF16 d;
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_0) == GetDType(DType::kQ4_0).block_bytes);

// ---------------------------------------------------------------------------
// q4_1: 5.0 bpw (20 / 32). y = q * d + m, q in 0..15.
// ---------------------------------------------------------------------------
struct BlockQ4_1 {
  PackedF16 d;
  PackedF16 m;  // the block minimum (the value of level 0)
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ4_1) == 20 && sizeof(BlockQ4_1) == GetDType(DType::kQ4_1).block_bytes);

// ---------------------------------------------------------------------------
// q5_0: 5.5 bpw (22 / 32). y = (q - 16) * d, q in 0..31 (nibble + qh bit).
// ---------------------------------------------------------------------------
struct BlockQ5_0 {
  PackedF16 d;
  uint8_t qh[4];  // u32 LE: bit j = bit 4 of element j
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ5_0) == 22 && sizeof(BlockQ5_0) == GetDType(DType::kQ5_0).block_bytes);

// ---------------------------------------------------------------------------
// q5_1: 6.0 bpw (24 / 32). y = q * d + m, q in 0..31.
// ---------------------------------------------------------------------------
struct BlockQ5_1 {
  PackedF16 d;
  PackedF16 m;
  uint8_t qh[4];
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ5_1) == 24 && sizeof(BlockQ5_1) == GetDType(DType::kQ5_1).block_bytes);

// ---------------------------------------------------------------------------
// q8_0: 8.5 bpw (34 / 32). y = qs[j] * d, qs int8 in -127..127 (ggml writes
// -128 only for degenerate inputs, never from finite data with a finite scale).
// ---------------------------------------------------------------------------
struct BlockQ8_0 {
  PackedF16 d;
  int8_t qs[32];
};
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_0) == GetDType(DType::kQ8_0).block_bytes);

// ---------------------------------------------------------------------------
// q8_1: 9.0 bpw (36 / 32), the activation side of q4_1/q5_1 dot products.
// y = qs[j] * d; s = fp16(d * sum(qs)) is a precomputed sum, not part of y.
// ---------------------------------------------------------------------------
struct BlockQ8_1 {
  PackedF16 d;
  PackedF16 s;  // d * sum of the 32 levels, rounded to fp16
  int8_t qs[32];
};
static_assert(sizeof(BlockQ8_1) == 36 && sizeof(BlockQ8_1) == GetDType(DType::kQ8_1).block_bytes);

// ---------------------------------------------------------------------------
// iq4_nl: 4.5 bpw (18 / 32). y = d * kIq4NlValues[q], q in 0..15 (nibbles above).
// ---------------------------------------------------------------------------
// ggml's kvalues_iq4nl (ggml-common.h): a non-linear 4-bit grid, ascending.
inline constexpr int8_t kIq4NlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};
struct BlockIq4Nl {
  PackedF16 d;
  uint8_t qs[16];
};
static_assert(sizeof(BlockIq4Nl) == 18 && sizeof(BlockIq4Nl) == GetDType(DType::kIQ4_NL).block_bytes);

// ---------------------------------------------------------------------------
// iq4_xs: 4.25 bpw (136 / 256). 8 sub-blocks of 32, each with a 6-bit scale
// ls_i (stored + 32):
//   y = (d * (ls_i - 32)) * kIq4NlValues[q]
// In sub-block i, lo(qs[16i + j]) is element 32i + j and hi(qs[16i + j]) is
// element 32i + 16 + j (the 32-element nibble order above, per sub-block).
// Scale packing: low 4 bits of ls_i in nibble i%2 of scales_l[i/2]; high 2 bits
// in bits 2i..2i+1 of the u16 scales_h.
// ---------------------------------------------------------------------------
struct BlockIq4Xs {
  PackedF16 d;
  uint8_t scales_h[2];  // u16 LE: 8 x 2 high bits
  uint8_t scales_l[4];  // 8 x 4 low bits
  uint8_t qs[128];
};
static_assert(sizeof(BlockIq4Xs) == 136 && sizeof(BlockIq4Xs) == GetDType(DType::kIQ4_XS).block_bytes);

// Packs 8 six-bit stored scales (ls_i + 32, each 0..63).
inline void PackIq4XsScales(const uint8_t* ls, uint8_t* scales_h, uint8_t* scales_l) {
  uint16_t h = 0;
  for (int i = 0; i < 8; ++i) {
    h = static_cast<uint16_t>(h | ((ls[i] >> 4) & 3) << (2 * i));
    if (i % 2 == 0) scales_l[i / 2] = ls[i] & 0x0F;
    else scales_l[i / 2] = static_cast<uint8_t>(scales_l[i / 2] | (ls[i] & 0x0F) << 4);
  }
  scales_h[0] = static_cast<uint8_t>(h);
  scales_h[1] = static_cast<uint8_t>(h >> 8);
}
// Stored scale (0..63, subtract 32 for the signed multiplier) of sub-block i.
constexpr int UnpackIq4XsScale(const uint8_t* scales_h, const uint8_t* scales_l, int i) {
  const int h = scales_h[0] | scales_h[1] << 8;
  return ((scales_l[i / 2] >> (4 * (i % 2))) & 0x0F) | (((h >> (2 * i)) & 3) << 4);
}

// ---------------------------------------------------------------------------
// q8_k: 9.125 bpw (292 / 256), the activation side of the k-quant dot products.
// y = d * qs[j] with a float32 d (one rounded product); bsums[k] = sum of
// qs[16k .. 16k+15] (a precomputed sum, not part of y).
// ---------------------------------------------------------------------------
struct BlockQ8K {
  uint8_t d[4];        // float32 LE
  int8_t qs[256];
  uint8_t bsums[32];   // 16 x int16 LE
};
static_assert(sizeof(BlockQ8K) == 292 && sizeof(BlockQ8K) == GetDType(DType::kQ8_K).block_bytes);

inline float LoadF32LE(const uint8_t* p) {
  float f;
  std::memcpy(&f, p, 4);  // little-endian host (x86-64, aarch64)
  return f;
}
inline void StoreF32LE(uint8_t* p, float f) { std::memcpy(p, &f, 4); }
inline int16_t LoadQ8KBsum(const uint8_t* bsums, int k) {
  return static_cast<int16_t>(bsums[2 * k] | bsums[2 * k + 1] << 8);
}
inline void StoreQ8KBsum(uint8_t* bsums, int k, int16_t v) {
  bsums[2 * k] = static_cast<uint8_t>(v);
  bsums[2 * k + 1] = static_cast<uint8_t>(static_cast<uint16_t>(v) >> 8);
}

}  // namespace bitsmith
