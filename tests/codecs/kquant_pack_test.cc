// The k-quant bit packings of formats/blocks_k.h: every pack function against
// its unpacker over exhaustive or random values, layouts against the byte
// offsets of tests/data/blocks/README.md section 5, and the packed fields of a
// ggml block (first_block_hex of the shared vectors) decoded by hand.
#include <cstddef>
#include <random>

#include <catch2/catch.hpp>

#include "formats/blocks_k.h"

namespace bitsmith {
namespace {

TEST_CASE("k-quant block layouts match ggml-common.h offsets", "[kquant][pack]") {
  CHECK(offsetof(BlockQ2K, qs) == 16);
  CHECK(offsetof(BlockQ2K, d) == 80);
  CHECK(offsetof(BlockQ2K, dmin) == 82);
  CHECK(offsetof(BlockQ3K, qs) == 32);
  CHECK(offsetof(BlockQ3K, scales) == 96);
  CHECK(offsetof(BlockQ3K, d) == 108);
  CHECK(offsetof(BlockQ4K, scales) == 4);
  CHECK(offsetof(BlockQ4K, qs) == 16);
  CHECK(offsetof(BlockQ5K, qh) == 16);
  CHECK(offsetof(BlockQ5K, qs) == 48);
  CHECK(offsetof(BlockQ6K, qh) == 128);
  CHECK(offsetof(BlockQ6K, scales) == 192);
  CHECK(offsetof(BlockQ6K, d) == 208);
  CHECK(GetDType(DType::kQ3_K).bits_per_weight() == 3.4375);
  CHECK(GetDType(DType::kQ5_K).bits_per_weight() == 5.5);
}

TEST_CASE("6-bit scale+min packing (q4_k/q5_k) round-trips every value", "[kquant][pack]") {
  std::mt19937 rng(1);
  for (int trial = 0; trial < 2000; ++trial) {
    uint8_t ls[8], lm[8], packed[12];
    for (int j = 0; j < 8; ++j) {
      // Exhaustive in the first 64 trials for every position, random after.
      ls[j] = static_cast<uint8_t>(trial < 64 ? (trial + j) % 64 : rng() % 64);
      lm[j] = static_cast<uint8_t>(trial < 64 ? (63 - trial + 5 * j) % 64 : rng() % 64);
    }
    PackScaleMinK4(ls, lm, packed);
    for (int j = 0; j < 8; ++j) {
      const ScaleMin sm = UnpackScaleMinK4(packed, j);
      INFO("trial " << trial << " sub-block " << j);
      REQUIRE(sm.scale == ls[j]);
      REQUIRE(sm.min == lm[j]);
    }
  }
  // The layout itself: sub-block 5 (j >= 4) with scale 0b10'1101 and min 0b01'0110.
  uint8_t ls[8] = {}, lm[8] = {}, packed[12];
  ls[5] = 0b10'1101;  // = 45
  lm[5] = 0b01'0110;  // = 22
  PackScaleMinK4(ls, lm, packed);
  CHECK(packed[9] == 0b0110'1101);  // low nibbles: min << 4 | scale
  CHECK(packed[1] == 0b10'000000);  // top 2 bits of the scale in scales[j-4]
  CHECK(packed[5] == 0b01'000000);  // top 2 bits of the min in scales[j]
}

TEST_CASE("q3_k 6-bit signed scales round-trip", "[kquant][pack]") {
  for (int base = 0; base < 64; ++base) {
    int ls[16];
    for (int j = 0; j < 16; ++j) ls[j] = (base + 7 * j) % 64;
    uint8_t packed[12];
    PackQ3KScales(ls, packed);
    for (int j = 0; j < 16; ++j) REQUIRE(UnpackQ3KScale(packed, j) == ls[j] - 32);
  }
}

TEST_CASE("level packings round-trip (q2_k, q3_k, q4_k, q5_k, q6_k)", "[kquant][pack]") {
  std::mt19937 rng(2);
  for (int trial = 0; trial < 200; ++trial) {
    uint8_t L[kQK_K];
    // q2_k: 2-bit levels.
    for (uint8_t& l : L) l = static_cast<uint8_t>(rng() % 4);
    BlockQ2K b2{};
    Pack2BitLevels(L, b2.qs);
    for (int e = 0; e < kQK_K; ++e) REQUIRE(Unpack2BitLevel(b2.qs, e) == L[e]);
    // q3_k: levels 0..7 = q + 4.
    uint8_t L3[kQK_K];
    for (int e = 0; e < kQK_K; ++e) L[e] = L3[e] = static_cast<uint8_t>(rng() % 8);
    BlockQ3K b3{};
    PackQ3KHmask(L3, b3.hmask);
    Pack2BitLevels(L3, b3.qs);
    for (int e = 0; e < kQK_K; ++e) REQUIRE(UnpackQ3KLevel(b3, e) == L[e] - 4);
    // q4_k: nibbles.
    for (uint8_t& l : L) l = static_cast<uint8_t>(rng() % 16);
    BlockQ4K b4{};
    PackQ4KNibbles(L, b4.qs);
    for (int e = 0; e < kQK_K; ++e) REQUIRE(UnpackQ4KLevel(b4.qs, e) == L[e]);
    // q5_k: 5 bits.
    for (uint8_t& l : L) l = static_cast<uint8_t>(rng() % 32);
    BlockQ5K b5{};
    PackQ5KLevels(L, b5.qh, b5.qs);
    for (int e = 0; e < kQK_K; ++e) REQUIRE(UnpackQ5KLevel(b5, e) == L[e]);
    // q6_k: 6 bits = q + 32.
    for (uint8_t& l : L) l = static_cast<uint8_t>(rng() % 64);
    BlockQ6K b6{};
    PackQ6KLevels(L, b6.ql, b6.qh);
    for (int e = 0; e < kQK_K; ++e) REQUIRE(UnpackQ6KLevel(b6, e) == L[e] - 32);
  }
}

TEST_CASE("level packings put elements where the README says", "[kquant][pack]") {
  // One non-zero level at a time, checked against the byte/bit of section 5.
  for (int e = 0; e < kQK_K; ++e) {
    uint8_t L[kQK_K] = {};
    const int n = e / 128, j = (e % 128) / 32, h = (e % 32) / 16, l = e % 16;
    // q2_k: element 128n + 32j + 16h + l -> bits 2j.. of qs[32n + 16h + l].
    L[e] = 3;
    BlockQ2K b2{};
    Pack2BitLevels(L, b2.qs);
    for (int i = 0; i < 64; ++i) REQUIRE(b2.qs[i] == (i == 32 * n + 16 * h + l ? 3 << (2 * j) : 0));
    // q3_k: level 7 (q = 3) sets bit (4n + j) of hmask[16h + l] and low bits 3.
    uint8_t L3[kQK_K];
    for (int i = 0; i < kQK_K; ++i) L3[i] = i == e ? 7 : 0;
    BlockQ3K b3{};
    PackQ3KHmask(L3, b3.hmask);
    for (int i = 0; i < 32; ++i) REQUIRE(b3.hmask[i] == (i == 16 * h + l ? 1 << (4 * n + j) : 0));
    // q6_k: level 0b11'0101 of element 128n + 32k + l' (k = j, l' = e % 32).
    for (int i = 0; i < kQK_K; ++i) L[i] = i == e ? 0b11'0101 : 0;
    BlockQ6K b6{};
    PackQ6KLevels(L, b6.ql, b6.qh);
    const int lp = e % 32;
    const int ql_index = 64 * n + 32 * (j & 1) + lp;
    for (int i = 0; i < 128; ++i)
      REQUIRE(b6.ql[i] == (i == ql_index ? (j < 2 ? 0b0101 : 0b0101 << 4) : 0));
    for (int i = 0; i < 64; ++i) REQUIRE(b6.qh[i] == (i == 32 * n + lp ? 0b11 << (2 * j) : 0));
  }
}

TEST_CASE("q2_k scale/min nibbles and fp16 fields", "[kquant][pack]") {
  CHECK(PackQ2KScaleMin(0b1010, 0b0101) == 0b0101'1010);
  CHECK(UnpackQ2KScale(0b0101'1010) == 10);
  CHECK(UnpackQ2KMin(0b0101'1010) == 5);
  PackedF16 h{};
  h.set_f32(1.0f);
  CHECK(h.bits() == 0x3C00);
  CHECK(h.le[0] == 0x00);
  CHECK(h.le[1] == 0x3C);
  CHECK(h.f32() == 1.0f);
}

}  // namespace
}  // namespace bitsmith
