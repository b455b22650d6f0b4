// Block layouts of ggml's ternary, MXFP4 and grid i-quant types.
//
// One struct per type, byte-compatible with ggml's block_* structs (ggml-common.h
// at ggml-org/ggml d99724f2), each with its value formula, its bits per weight and
// a static_assert tying its size to the formats/dtype.h row. Every bit packing has
// a named pack/unpack pair below, used by the quantizers, the dequantizers and the
// inspector alike. All multi-byte fields are little-endian; `d` fields are raw
// IEEE fp16 bits (formats/half.h converts them). Layouts, value formulas and the
// traps are documented in tests/data/iquants/README.md, section 5.
//
// Notation in the comments: sgn(m, j) = -1 if bit j of byte m is set, else +1;
// ks[k] = kKSignsIQ2XS[k] = k | parity(k) << 7 (7 stored sign bits expand to 8 with
// an even number of minus signs); grid[j] = byte j of a grid row.
#pragma once

#include <bit>      // std::endian
#include <cstdint>
#include <cstring>  // std::memcpy

#include "formats/dtype.h"

namespace bitsmith {

static_assert(std::endian::native == std::endian::little,
              "block layouts are little-endian; a big-endian port needs byte swaps here");

// ---------------------------------------------------------------------------
// TQ1_0: ternary, base-3 packed. 256 values in 54 bytes = 1.6875 bpw.
//   y = (t - 1) * d, trit t in {0, 1, 2}.
//   Element 32n+m (n<5, m<32)       = trit n of qs[m]
//   Element 160+16n+m (n<5, m<16)   = trit n of qs[32+m]
//   Element 240+4n+j (n<4, j<4)     = trit n of qh[j]
// Trit n (n = 0 most significant) of byte b is ((uint8_t)(b * 3^n) * 3) >> 8: a
// byte holds the 5 trits as a base-3 fraction of 256 (PackTQ1Trits).
struct BlockTQ1_0 {
  uint8_t qs[48];  // 5 trits per byte
  uint8_t qh[4];   // 4 trits per byte (the 5th trit position is 0)
  uint16_t d;      // fp16 scale = amax of the block
};
static_assert(sizeof(BlockTQ1_0) == 54);

// Packs 5 trits (t[0] most significant, each 0..2) into a byte:
// q = sum t_k 3^(4-k), byte = ceil(q * 256 / 243). For qh, pass t[4] = 0.
constexpr uint8_t PackTQ1Trits(const int t[5]) {
  int q = 0;
  for (int k = 0; k < 5; ++k) q = q * 3 + t[k];
  return static_cast<uint8_t>((q * 256 + 242) / 243);
}
// Trit n (0..4) of a packed byte.
constexpr int UnpackTQ1Trit(uint8_t b, int n) {
  constexpr uint8_t kPow3[5] = {1, 3, 9, 27, 81};
  const uint8_t q = static_cast<uint8_t>(b * kPow3[n]);
  return (q * 3) >> 8;
}
namespace blocks_iq_detail {
constexpr bool TritsRoundTrip() {  // every 5-trit byte decodes back to its trits
  for (int q = 0; q < 243; ++q) {
    int t[5] = {q / 81, q / 27 % 3, q / 9 % 3, q / 3 % 3, q % 3};
    const uint8_t b = PackTQ1Trits(t);
    for (int n = 0; n < 5; ++n)
      if (UnpackTQ1Trit(b, n) != t[n]) return false;
  }
  return true;
}
}  // namespace blocks_iq_detail
static_assert(blocks_iq_detail::TritsRoundTrip());

// ---------------------------------------------------------------------------
// TQ2_0: ternary, 2 bits per value. 256 values in 66 bytes = 2.0625 bpw.
//   Element 128h+32l+m (h<2, l<4, m<32) = bits 2l..2l+1 of qs[32h+m]; y = (q - 1) * d.
struct BlockTQ2_0 {
  uint8_t qs[64];
  uint16_t d;  // fp16 scale = amax of the block
};
static_assert(sizeof(BlockTQ2_0) == 66);

constexpr int UnpackTQ2(uint8_t b, int l) { return (b >> (2 * l)) & 3; }

// ---------------------------------------------------------------------------
// MXFP4 (ggml's layout): 32 values in 17 bytes = 4.25 bpw.
//   y = kKValuesMXFP4[q] * 2^(e-128)   (kvalues are doubled E2M1 values, so this is
//   the OCP reading E2M1(q) * 2^(e-127)). Element j<16 = low nibble of qs[j],
//   element 16+j = high nibble of qs[j]. e = 255 means 2^127, not NaN.
struct BlockMXFP4 {
  uint8_t e;  // E8M0 shared exponent
  uint8_t qs[16];
};
static_assert(sizeof(BlockMXFP4) == 17);

// ggml's GGML_E8M0_TO_FP32_HALF: 2^(e-128) as a float. e = 0 and 1 are the f32
// subnormals 2^-128 (bits 0x00200000) and 2^-127 (0x00400000); e >= 2 is the
// normal float with exponent field e-1.
constexpr uint32_t E8M0HalfBits(uint8_t e) {
  return e < 2 ? (0x00200000u << e) : static_cast<uint32_t>(e - 1) << 23;
}
constexpr uint8_t PackNibbles(int lo, int hi) { return static_cast<uint8_t>(lo | (hi << 4)); }
constexpr int LowNibble(uint8_t b) { return b & 15; }
constexpr int HighNibble(uint8_t b) { return b >> 4; }

// ---------------------------------------------------------------------------
// IQ2_XXS: 256 values in 66 bytes = 2.0625 bpw. 8 sub-blocks of 32, 4 groups of 8.
//   Sub-block s is two u32 words at qs[4s]: grid_word (4 grid indices, 8 bits each)
//   and sign_word (4 x 7 sign bits, then a 4-bit scale in bits 28..31).
//   db = d * (0.5 + scale) * 0.25;  y[32s+8l+j] = db * kIQ2XXSGrid[idx_l][j] * sgn(ks[signs_l], j)
struct BlockIQ2XXS {
  uint16_t d;
  uint16_t qs[32];
};
static_assert(sizeof(BlockIQ2XXS) == 66);

struct IQ2XXSSubBlock {
  uint32_t grid_word;  // byte l = grid index of group l
  uint32_t sign_word;  // bits 7l..7l+6 = signs of group l; bits 28..31 = scale
};
inline IQ2XXSSubBlock LoadIQ2XXSSubBlock(const BlockIQ2XXS& b, int s) {
  IQ2XXSSubBlock r;
  std::memcpy(&r.grid_word, &b.qs[4 * s], 4);
  std::memcpy(&r.sign_word, &b.qs[4 * s + 2], 4);
  return r;
}
inline void StoreIQ2XXSSubBlock(BlockIQ2XXS& b, int s, IQ2XXSSubBlock v) {
  std::memcpy(&b.qs[4 * s], &v.grid_word, 4);
  std::memcpy(&b.qs[4 * s + 2], &v.sign_word, 4);
}
constexpr int IQ2XXSGridIndex(uint32_t grid_word, int l) { return (grid_word >> (8 * l)) & 255; }
constexpr int IQ2XXSSigns7(uint32_t sign_word, int l) { return (sign_word >> (7 * l)) & 127; }
constexpr int IQ2XXSScale(uint32_t sign_word) { return static_cast<int>(sign_word >> 28); }
constexpr uint32_t PackIQ2XXSGridWord(const int idx[4]) {
  return static_cast<uint32_t>(idx[0]) | static_cast<uint32_t>(idx[1]) << 8 |
         static_cast<uint32_t>(idx[2]) << 16 | static_cast<uint32_t>(idx[3]) << 24;
}
constexpr uint32_t PackIQ2XXSSignWord(const uint8_t signs7[4], int scale) {
  return static_cast<uint32_t>(signs7[0]) | static_cast<uint32_t>(signs7[1]) << 7 |
         static_cast<uint32_t>(signs7[2]) << 14 | static_cast<uint32_t>(signs7[3]) << 21 |
         static_cast<uint32_t>(scale) << 28;
}

// ---------------------------------------------------------------------------
// IQ2_XS: 256 values in 74 bytes = 2.3125 bpw. 16 sub-blocks of 16 (2 groups of 8).
//   qs[4s+l] (u16) = grid index (9 bits) | 7 sign bits << 9, for group l of the
//   32-value pair s. scales[s] = two 4-bit scales: low nibble for groups 0-1,
//   high for groups 2-3. db = d * (0.5 + scale) * 0.25;
//   y = db * kIQ2XSGrid[idx][j] * sgn(ks[signs], j)
struct BlockIQ2XS {
  uint16_t d;
  uint16_t qs[32];
  uint8_t scales[8];
};
static_assert(sizeof(BlockIQ2XS) == 74);

constexpr uint16_t PackIQ2XSGroup(int grid_index, int signs7) {
  return static_cast<uint16_t>(grid_index | (signs7 << 9));
}
constexpr int IQ2XSGridIndex(uint16_t q) { return q & 511; }
constexpr int IQ2XSSigns7(uint16_t q) { return q >> 9; }

// ---------------------------------------------------------------------------
// IQ2_S: 256 values in 82 bytes = 2.5625 bpw. 16 sub-blocks of 16 (2 groups of 8).
//   Group g (0..31): grid index = qs[g] | bits 2(g%4)..2(g%4)+1 of qh[g/4] as bits 8-9
//   (10 bits, table kIQ2SGrid); sign byte = signs[g] (8 explicit bits, no parity).
//   scales as IQ2_XS. y = db * kIQ2SGrid[idx][j] * sgn(signs[g], j)
struct BlockIQ2S {
  uint16_t d;
  uint8_t qs[32];     // low 8 bits of the grid indices
  uint8_t signs[32];  // ggml declares qs[64]; its second half holds the signs
  uint8_t qh[8];      // high 2 bits of the grid indices, 4 groups per byte
  uint8_t scales[8];
};
static_assert(sizeof(BlockIQ2S) == 82);

constexpr int IQ2SGridIndex(const BlockIQ2S& b, int g) {
  return b.qs[g] | ((b.qh[g / 4] << (8 - 2 * (g % 4))) & 0x300);
}
// Stores the 10-bit index of group g (qh must start zeroed for the block).
constexpr void SetIQ2SGridIndex(BlockIQ2S& b, int g, int idx) {
  b.qs[g] = static_cast<uint8_t>(idx & 255);
  b.qh[g / 4] = static_cast<uint8_t>(b.qh[g / 4] | ((idx >> 8) << (2 * (g % 4))));
}

// ---------------------------------------------------------------------------
// IQ3_XXS: 256 values in 98 bytes = 3.0625 bpw. 8 sub-blocks of 32, 8 groups of 4.
//   qs[8s+k] = grid index of group k (table kIQ3XXSGrid, 4 values each).
//   scales_and_signs[s] (u32) = 4 x 7 sign bits (one per 8 values) | scale << 28.
//   db = d * (0.5 + scale) * 0.5;
//   y[32s+8l+j] = db * grid(qs[8s+2l+j/4])[j%4] * sgn(ks[signs_l], j)
struct BlockIQ3XXS {
  uint16_t d;
  uint8_t qs[64];
  uint8_t scales_and_signs[32];  // u32 x 8
};
static_assert(sizeof(BlockIQ3XXS) == 98);

inline uint32_t LoadIQ3XXSSignWord(const BlockIQ3XXS& b, int s) {
  uint32_t w;
  std::memcpy(&w, &b.scales_and_signs[4 * s], 4);
  return w;
}
inline void StoreIQ3XXSSignWord(BlockIQ3XXS& b, int s, uint32_t w) {
  std::memcpy(&b.scales_and_signs[4 * s], &w, 4);
}
// The sign word has IQ2_XXS's layout: IQ2XXSSigns7 / IQ2XXSScale / PackIQ2XXSSignWord.

// ---------------------------------------------------------------------------
// IQ3_S: 256 values in 110 bytes = 3.4375 bpw. 8 sub-blocks of 32, 8 groups of 4.
//   Group g (0..63): grid index = qs[g] | bit (g%8) of qh[g/8] as bit 8 (9 bits,
//   table kIQ3SGrid). signs[4s+l] = 8 explicit sign bits of values 32s+8l..+7.
//   scales[s/2] nibble s%2 = 4-bit scale; db = d * (1 + 2*scale);
//   y = db * grid[j] * sgn(signs, j)
struct BlockIQ3S {
  uint16_t d;
  uint8_t qs[64];
  uint8_t qh[8];
  uint8_t signs[32];
  uint8_t scales[4];
};
static_assert(sizeof(BlockIQ3S) == 110);

constexpr int IQ3SGridIndex(const BlockIQ3S& b, int g) {
  return b.qs[g] | (((b.qh[g / 8] >> (g % 8)) & 1) << 8);
}
constexpr void SetIQ3SGridIndex(BlockIQ3S& b, int g, int idx) {
  b.qs[g] = static_cast<uint8_t>(idx & 255);
  b.qh[g / 8] = static_cast<uint8_t>(b.qh[g / 8] | ((idx >> 8) << (g % 8)));
}

// ---------------------------------------------------------------------------
// IQ1_S: 256 values in 50 bytes = 1.5625 bpw. 8 sub-blocks of 32, 4 groups of 8.
//   qh[s] (u16): bits 3l..3l+2 = high 3 bits of group l's 11-bit grid index,
//   bits 12..14 = 3-bit scale, bit 15 = delta sign. Grid index = qs[4s+l] | hi << 8.
//   dl = d * (2*scale + 1); delta = bit15 ? -0.125 : +0.125;
//   y = dl * (kIQ1SGrid[idx][j] + delta)   (grid bytes are int8 -1, 0, +1)
struct BlockIQ1S {
  uint16_t d;
  uint8_t qs[32];
  uint16_t qh[8];
};
static_assert(sizeof(BlockIQ1S) == 50);

inline constexpr float kIQ1Delta = 0.125f;  // IQ1S_DELTA = IQ1M_DELTA
constexpr int IQ1SGridIndex(const BlockIQ1S& b, int s, int l) {
  return b.qs[4 * s + l] | (((b.qh[s] >> (3 * l)) & 7) << 8);
}
constexpr int IQ1SScale(uint16_t qh) { return (qh >> 12) & 7; }
constexpr bool IQ1SDeltaNegative(uint16_t qh) { return (qh & 0x8000) != 0; }
// qh of a sub-block in two parts, as the quantizer fills it: the high index bits
// first, the scale and delta sign once the super-block scale is known.
constexpr uint16_t PackIQ1SQhIndices(const int idx[4]) {
  int h = 0;
  for (int l = 0; l < 4; ++l) h |= (idx[l] >> 8) << (3 * l);
  return static_cast<uint16_t>(h);
}
constexpr uint16_t PackIQ1SQhScale(int scale, bool delta_negative) {
  return static_cast<uint16_t>(scale << 12 | (delta_negative ? 0x8000 : 0));
}

// ---------------------------------------------------------------------------
// IQ1_M: 256 values in 56 bytes = 1.75 bpw. 16 half-sub-blocks of 16 (groups of 8).
//   No separate d: its fp16 bits are the top nibbles of sc[0..3] (sc[0] bits 12-15 =
//   d bits 0-3, ..., sc[3] = d bits 12-15). Below those, sc[s/2] holds for sub-block
//   s (32 values) two 3-bit scales at bits 6(s%2) (groups 0-1) and 6(s%2)+3 (2-3).
//   qh[h] (h = 2s, 2s+1, one per 16 values): bits 0-2 / 4-6 = high 3 bits of the
//   11-bit grid index of its first / second group; bits 3 / 7 = delta sign of it.
//   dl = d * (2*scale + 1); y = dl * (kIQ1SGrid[idx][j] + delta)
struct BlockIQ1M {
  uint8_t qs[32];
  uint8_t qh[16];
  uint16_t sc[4];  // ggml: uint8_t scales[8], read as 4 x u16
};
static_assert(sizeof(BlockIQ1M) == 56);

constexpr uint16_t IQ1MScaleBits(const BlockIQ1M& b) {
  return static_cast<uint16_t>((b.sc[0] >> 12) | ((b.sc[1] >> 8) & 0x00f0) |
                               ((b.sc[2] >> 4) & 0x0f00) | (b.sc[3] & 0xf000));
}
// ORs the fp16 bits of d into the top nibbles (the low 12 bits must hold the scales).
constexpr void SetIQ1MScaleBits(BlockIQ1M& b, uint16_t d) {
  b.sc[0] = static_cast<uint16_t>(b.sc[0] | ((d & 0x000f) << 12));
  b.sc[1] = static_cast<uint16_t>(b.sc[1] | ((d & 0x00f0) << 8));
  b.sc[2] = static_cast<uint16_t>(b.sc[2] | ((d & 0x0f00) << 4));
  b.sc[3] = static_cast<uint16_t>(b.sc[3] | (d & 0xf000));
}
// 3-bit scale of half h (0..15): sub-block s = h/2 uses bits 6(s%2) for h even and
// 6(s%2)+3 for h odd, of sc[s/2] (so sc[i] bits 3j..3j+2 = scale of half 4i+j).
constexpr int IQ1MScale(const BlockIQ1M& b, int h) { return (b.sc[h / 4] >> (3 * (h % 4))) & 7; }
// Grid index of group k (0..1) of half h, and its delta sign.
constexpr int IQ1MGridIndex(const BlockIQ1M& b, int h, int k) {
  return b.qs[2 * h + k] | ((b.qh[h] << (8 - 4 * k)) & 0x700);
}
constexpr bool IQ1MDeltaNegative(const BlockIQ1M& b, int h, int k) {
  return (b.qh[h] & (k == 0 ? 0x08 : 0x80)) != 0;
}

// ---------------------------------------------------------------------------
// Every struct above has its dtype row's size.
static_assert(sizeof(BlockTQ1_0) == GetDType(DType::kTQ1_0).block_bytes);
static_assert(sizeof(BlockTQ2_0) == GetDType(DType::kTQ2_0).block_bytes);
static_assert(sizeof(BlockMXFP4) == GetDType(DType::kMXFP4).block_bytes);
static_assert(sizeof(BlockIQ2XXS) == GetDType(DType::kIQ2_XXS).block_bytes);
static_assert(sizeof(BlockIQ2XS) == GetDType(DType::kIQ2_XS).block_bytes);
static_assert(sizeof(BlockIQ2S) == GetDType(DType::kIQ2_S).block_bytes);
static_assert(sizeof(BlockIQ3XXS) == GetDType(DType::kIQ3_XXS).block_bytes);
static_assert(sizeof(BlockIQ3S) == GetDType(DType::kIQ3_S).block_bytes);
static_assert(sizeof(BlockIQ1S) == GetDType(DType::kIQ1_S).block_bytes);
static_assert(sizeof(BlockIQ1M) == GetDType(DType::kIQ1_M).block_bytes);

}  // namespace bitsmith
