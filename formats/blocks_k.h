// ggml's k-quant super-blocks (q2_k, q3_k, q4_k, q5_k, q6_k): byte layouts,
// value formulas and the bit packings, each written once as a named pack/unpack
// pair used by the quantizers, the dequantizers and the block inspector.
//
// Layouts after ggml/src/ggml-common.h (block_q2_K ... block_q6_K), QK_K = 256.
// All fields are little-endian; `PackedF16` is an IEEE binary16 stored as two
// bytes, so every struct has alignment 1 and may sit at any byte offset (blocks
// follow each other with no padding in a row). Sizes are checked against the
// storage-type table (formats/dtype.h).
//
// Notation below: element e of the 256 is e = 128n + 32j + 16h + l etc.; "lo"
// and "hi" are the low and high nibbles of a byte; products are float32 and are
// evaluated in the order written (that is what ggml's dequantizers do; every
// scale x level product is exact, only the final "- min" and q6_k's second
// product may round).
#pragma once

#include <cstdint>

#include "formats/dtype.h"
#include "formats/half.h"

namespace bitsmith {

inline constexpr int kQK_K = 256;  // elements per k-quant super-block (ggml QK_K)

// An fp16 scale stored as two little-endian bytes (ggml_half).
struct PackedF16 {
  uint8_t le[2];
  constexpr uint16_t bits() const { return static_cast<uint16_t>(le[0] | (le[1] << 8)); }
  constexpr void set_bits(uint16_t b) {
    le[0] = static_cast<uint8_t>(b);
    le[1] = static_cast<uint8_t>(b >> 8);
  }
  // ggml_fp16_to_fp32 (exact) and ggml_fp32_to_fp16 (round to nearest even).
  constexpr float f32() const { return F16BitsToF32(bits()); }
  constexpr void set_f32(float f) { set_bits(F32ToF16Bits(f)); }
};
static_assert(sizeof(PackedF16) == 2 && alignof(PackedF16) == 1);

// ---------------------------------------------------------------------------
// q2_k: 2.625 bpw. 16 sub-blocks of 16, each with a 4-bit scale and a 4-bit min.
//   y = (d * (scales[i] & 15)) * q - dmin * (scales[i] >> 4),   q in 0..3
// Element 128n + 32j + 16h + l (n<2, j<4, h<2, l<16) is bits 2j..2j+1 of
// qs[32n + 16h + l] and belongs to sub-block i = 8n + 2j + h.
// ---------------------------------------------------------------------------
struct BlockQ2K {
  uint8_t scales[16];  // sub-block i: scale in the low nibble, min in the high nibble
  uint8_t qs[64];      // 2-bit levels, see Pack2BitLevels
  PackedF16 d;         // super-block scale of the scales
  PackedF16 dmin;      // super-block scale of the mins
};
static_assert(sizeof(BlockQ2K) == 84 && sizeof(BlockQ2K) == GetDType(DType::kQ2_K).block_bytes);

// ---------------------------------------------------------------------------
// q3_k: 3.4375 bpw. 16 sub-blocks of 16 with signed 6-bit scales (stored +32).
//   y = (d * (s_i - 32)) * q,   q = low2 - (high bit ? 0 : 4) in -4..3
// Element 128n + 32j + 16h + l: low 2 bits as q2_k (bits 2j.. of qs[32n+16h+l]),
// high bit = bit (4n + j) of hmask[16h + l]; sub-block i = 8n + 2j + h.
// ---------------------------------------------------------------------------
struct BlockQ3K {
  uint8_t hmask[32];   // high bit of each level, see PackQ3KHmask
  uint8_t qs[64];      // low 2 bits, see Pack2BitLevels
  uint8_t scales[12];  // 16 x 6-bit scales, see PackQ3KScales
  PackedF16 d;
};
static_assert(sizeof(BlockQ3K) == 110 && sizeof(BlockQ3K) == GetDType(DType::kQ3_K).block_bytes);

// ---------------------------------------------------------------------------
// q4_k: 4.5 bpw. 8 sub-blocks of 32, each with a 6-bit scale and a 6-bit min.
//   y = (d * sc_i) * q - (dmin * m_i),   q in 0..15
// Element 64g + l (l<32) = lo(qs[32g + l]) in sub-block 2g; element 64g + 32 + l
// = hi(qs[32g + l]) in sub-block 2g + 1.
// ---------------------------------------------------------------------------
struct BlockQ4K {
  PackedF16 d;
  PackedF16 dmin;
  uint8_t scales[12];  // 8 x (6-bit scale, 6-bit min), see PackScaleMinK4
  uint8_t qs[128];     // nibbles
};
static_assert(sizeof(BlockQ4K) == 144 && sizeof(BlockQ4K) == GetDType(DType::kQ4_K).block_bytes);

// ---------------------------------------------------------------------------
// q5_k: 5.5 bpw. As q4_k with a fifth bit per level, q in 0..31:
// bit 4 of element 64g + 32h + l = bit (2g + h) of qh[l] (see PackQ5KHighBits).
// ---------------------------------------------------------------------------
struct BlockQ5K {
  PackedF16 d;
  PackedF16 dmin;
  uint8_t scales[12];  // as q4_k
  uint8_t qh[32];      // fifth bits
  uint8_t qs[128];     // low nibbles, as q4_k
};
static_assert(sizeof(BlockQ5K) == 176 && sizeof(BlockQ5K) == GetDType(DType::kQ5_K).block_bytes);

// ---------------------------------------------------------------------------
// q6_k: 6.5625 bpw. 16 sub-blocks of 16 with int8 scales.
//   y = (d * sc_i) * q,   q = (low4 | high2 << 4) - 32 in -32..31
// Element 128n + 32k + l (k<4, l<32): low 4 bits = lo(ql[64n + l]) (k=0),
// lo(ql[64n + 32 + l]) (k=1), hi(ql[64n + l]) (k=2), hi(ql[64n + 32 + l]) (k=3);
// high 2 bits = bits 2k..2k+1 of qh[32n + l]; sub-block i = 8n + 2k + l/16.
// ---------------------------------------------------------------------------
struct BlockQ6K {
  uint8_t ql[128];    // low 4 bits
  uint8_t qh[64];     // high 2 bits
  int8_t scales[16];  // signed sub-block scales
  PackedF16 d;
};
static_assert(sizeof(BlockQ6K) == 210 && sizeof(BlockQ6K) == GetDType(DType::kQ6_K).block_bytes);

// ===========================================================================
// Bit packings. Each pack function performs ggml's operations in ggml's order
// (including its uint8 truncations), so that even out-of-range inputs, which
// only pathological scale searches produce, give ggml's bytes.
// ===========================================================================

// --- 2-bit levels (q2_k levels, q3_k low bits) --------------------------------
// qs[32n + l] holds elements 128n + l, +32, +64, +96 in bits 0-1, 2-3, 4-5, 6-7.
// `L` are 256 levels in 0..3.
inline void Pack2BitLevels(const uint8_t* L, uint8_t* qs) {
  for (int n = 0; n < 2; ++n)
    for (int l = 0; l < 32; ++l) {
      const uint8_t* e = L + 128 * n + l;
      qs[32 * n + l] = static_cast<uint8_t>(e[0] | (e[32] << 2) | (e[64] << 4) | (e[96] << 6));
    }
}
// Level (0..3) of element e.
constexpr int Unpack2BitLevel(const uint8_t* qs, int e) {
  return (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
}

// --- q2_k scale/min nibbles -----------------------------------------------------
// ggml writes `scales[j] = l` then `scales[j] |= m << 4` (both truncated to a
// byte): scale in the low nibble, min in the high nibble.
constexpr uint8_t PackQ2KScaleMin(int scale, int min) {
  return static_cast<uint8_t>(static_cast<uint8_t>(scale) | static_cast<uint8_t>(min << 4));
}
constexpr int UnpackQ2KScale(uint8_t packed) { return packed & 0xF; }
constexpr int UnpackQ2KMin(uint8_t packed) { return packed >> 4; }

// --- q3_k 6-bit signed scales ----------------------------------------------------
// Scale i (stored s_i = scale + 32 in 0..63): low nibble in scales[i] (i < 8,
// bits 0-3) or scales[i-8] (bits 4-7); high 2 bits in scales[8 + i%4] at bit
// 2*(i/4). `ls` are the 16 stored values s_i (0..63).
inline void PackQ3KScales(const int* ls, uint8_t* scales) {
  for (int k = 0; k < 12; ++k) scales[k] = 0;
  for (int j = 0; j < 16; ++j) {
    int l = ls[j];
    if (j < 8)
      scales[j] = static_cast<uint8_t>(l & 0xF);
    else
      scales[j - 8] = static_cast<uint8_t>(scales[j - 8] | ((l & 0xF) << 4));
    l >>= 4;
    scales[j % 4 + 8] = static_cast<uint8_t>(scales[j % 4 + 8] | (l << (2 * (j / 4))));
  }
}
// The signed scale s_i - 32 of sub-block i (ggml's int8 arithmetic).
constexpr int UnpackQ3KScale(const uint8_t* scales, int i) {
  const int low = i < 8 ? scales[i] & 0xF : scales[i - 8] >> 4;
  const int high = (scales[8 + i % 4] >> (2 * (i / 4))) & 3;
  return static_cast<int8_t>((low | (high << 4)) - 32);
}

// --- q3_k high bits ----------------------------------------------------------------
// Levels L (0..7, i.e. q + 4): bit 2 of element e goes to bit e/32 of
// hmask[e % 32] and is removed from L, leaving the low 2 bits for Pack2BitLevels.
// (ggml: `if (L[e] > 3) { hmask[..] |= bit; L[e] -= 4; }`; written branch-free,
// the bit being (L > 3) = bit 2 of L for L in 0..7.)
inline void PackQ3KHmask(uint8_t* L, uint8_t* hmask) {
  for (int m = 0; m < 32; ++m) {
    unsigned h = 0;
    for (int k = 0; k < 8; ++k) {
      const unsigned high = L[32 * k + m] > 3 ? 1u : 0u;
      h |= high << k;
      L[32 * k + m] = static_cast<uint8_t>(L[32 * k + m] - 4 * high);
    }
    hmask[m] = static_cast<uint8_t>(h);
  }
}
// The signed level q in -4..3 of element e.
constexpr int UnpackQ3KLevel(const BlockQ3K& b, int e) {
  const int high = (b.hmask[e % 32] >> (e / 32)) & 1;
  return Unpack2BitLevel(b.qs, e) - (high ? 0 : 4);
}

// --- q4_k / q5_k 6-bit scale + min ------------------------------------------------
// 12 bytes for 8 (scale, min) pairs of 6 bits:
//   j < 4:  scales[j] bits 0-5 = sc_j,  scales[j+4] bits 0-5 = m_j;
//   j >= 4: scales[j+4] = sc_j & 15 | (m_j & 15) << 4, and the top 2 bits of
//           sc_j / m_j are bits 6-7 of scales[j-4] / scales[j].
// ggml writes this inline in each k-quantizer; unpacking is get_scale_min_k4.
inline void PackScaleMinK4(const uint8_t* ls, const uint8_t* lm, uint8_t* scales) {
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      scales[j] = ls[j];
      scales[j + 4] = lm[j];
    } else {
      scales[j + 4] = static_cast<uint8_t>((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
      scales[j - 4] = static_cast<uint8_t>(scales[j - 4] | ((ls[j] >> 4) << 6));
      scales[j] = static_cast<uint8_t>(scales[j] | ((lm[j] >> 4) << 6));
    }
  }
}
struct ScaleMin {
  uint8_t scale, min;
};
constexpr ScaleMin UnpackScaleMinK4(const uint8_t* scales, int j) {
  if (j < 4) return {static_cast<uint8_t>(scales[j] & 63), static_cast<uint8_t>(scales[j + 4] & 63)};
  return {static_cast<uint8_t>((scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4)),
          static_cast<uint8_t>((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4))};
}

// --- q4_k nibbles --------------------------------------------------------------------
// qs[32g + l] = L[64g + l] | L[64g + 32 + l] << 4 (levels 0..15).
inline void PackQ4KNibbles(const uint8_t* L, uint8_t* qs) {
  for (int g = 0; g < 4; ++g)
    for (int l = 0; l < 32; ++l)
      qs[32 * g + l] = static_cast<uint8_t>(L[64 * g + l] | (L[64 * g + 32 + l] << 4));
}
constexpr int UnpackQ4KLevel(const uint8_t* qs, int e) {
  const uint8_t b = qs[32 * (e / 64) + e % 32];
  return (e % 64) < 32 ? b & 0xF : b >> 4;
}

// --- q5_k: nibbles + fifth bits -------------------------------------------------------
// Levels 0..31: low nibbles as q4_k; bit 4 of element 64g + 32h + l is bit
// (2g + h) of qh[l].
// (ggml: `if (l > 15) { l -= 16; qh[j] |= bit; }`; written branch-free, the bit
// being (l > 15) = bit 4 of l for l in 0..31.)
inline void PackQ5KLevels(const uint8_t* L, uint8_t* qh, uint8_t* qs) {
  for (int l = 0; l < 32; ++l) qh[l] = 0;
  for (int g = 0; g < 4; ++g)
    for (int l = 0; l < 32; ++l) {
      const unsigned l1 = L[64 * g + l], l2 = L[64 * g + 32 + l];
      const unsigned h1 = l1 > 15 ? 1u : 0u, h2 = l2 > 15 ? 1u : 0u;
      qh[l] = static_cast<uint8_t>(qh[l] | (h1 << (2 * g)) | (h2 << (2 * g + 1)));
      qs[32 * g + l] = static_cast<uint8_t>((l1 - 16 * h1) | ((l2 - 16 * h2) << 4));
    }
}
constexpr int UnpackQ5KLevel(const BlockQ5K& b, int e) {
  const int high = (b.qh[e % 32] >> (e / 32)) & 1;
  return UnpackQ4KLevel(b.qs, e) | (high << 4);
}

// --- q6_k: 4 low bits in ql, 2 high bits in qh -----------------------------------------
// Levels L = q + 32 in 0..63. For n < 2, l < 32:
//   ql[64n + l]      = lo4(L[128n + l])      | lo4(L[128n + 64 + l]) << 4
//   ql[64n + 32 + l] = lo4(L[128n + 32 + l]) | lo4(L[128n + 96 + l]) << 4
//   qh[32n + l]      = hi2 of L[128n + l], +32, +64, +96 at bits 0, 2, 4, 6.
inline void PackQ6KLevels(const uint8_t* L, uint8_t* ql, uint8_t* qh) {
  for (int n = 0; n < 2; ++n)
    for (int l = 0; l < 32; ++l) {
      const uint8_t* e = L + 128 * n + l;
      ql[64 * n + l] = static_cast<uint8_t>((e[0] & 0xF) | ((e[64] & 0xF) << 4));
      ql[64 * n + 32 + l] = static_cast<uint8_t>((e[32] & 0xF) | ((e[96] & 0xF) << 4));
      qh[32 * n + l] = static_cast<uint8_t>((e[0] >> 4) | ((e[32] >> 4) << 2) | ((e[64] >> 4) << 4) |
                                            ((e[96] >> 4) << 6));
    }
}
// The signed level q in -32..31 of element e.
constexpr int UnpackQ6KLevel(const BlockQ6K& b, int e) {
  const int n = e / 128, k = (e % 128) / 32, l = e % 32;
  const uint8_t low_byte = b.ql[64 * n + 32 * (k & 1) + l];
  const int low = k < 2 ? low_byte & 0xF : low_byte >> 4;
  const int high = (b.qh[32 * n + l] >> (2 * k)) & 3;
  return (low | (high << 4)) - 32;
}

// Sub-block of element e: 16-element sub-blocks (q2_k, q3_k, q6_k) are e / 16,
// 32-element ones (q4_k, q5_k) e / 32 -- the layouts above keep sub-blocks
// contiguous in element order.

}  // namespace bitsmith
