// SIMD paths of the i-quant family (Highway, dynamic dispatch), byte- and
// bit-identical to the scalar oracles (codecs/iq_kernels.h).
//
// Dequantizers (MXFP4 and the grid types): ggml's to_float computes, per value,
//   grid types: y = db * grid[j] * (sign ? -1 : 1)      (IQ2_*, IQ3_*)
//               y = dl * (grid[j] + delta)              (IQ1_*)
//   MXFP4:      y = kvalues[q] * d
// Every product there is exact in fp32 (tests/data/iquants/README.md section 5:
// fp16 d has 11 significant bits, the sub-scale <= 5 bits, grid values <= 6 bits),
// so db * (-g) equals (db * g) * -1 bit for bit, -0.0 and inf included. Not for
// a NaN d (fp16 NaN in random bytes): the compiler turns ggml's `* -1.f` into a
// sign flip, which db * (-g) does not do, so such blocks take the scalar oracle. Grid values are never 0 (odd lattice levels), so a
// negated grid byte never needs a borrow: the signed bytes of a group of 8 are
// formed with one 64-bit operation, (g ^ m) + (m & 0x01..01), m = 0xFF in the
// bytes whose sign bit is set. Then 32 (or 16) int8 values per sub-block are
// promoted to int32 lanes, converted and multiplied by the broadcast db in
// vectors of up to 16 floats. The scalar factors (db, dl) are computed exactly as
// the oracles compute them.
//
// Quantizers: TQ1_0/TQ2_0/MXFP4 in codecs/quant_iq_ternary_simd.cc (with the
// ternary dequantizers), IQ1_S/IQ1_M in codecs/quant_iq1_simd.cc, IQ2_*/IQ3_* in
// codecs/quant_iq_grid_simd.cc.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "codecs/quant_iq_simd.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cstdint>
#include <cstring>  // std::memcpy

#include "codecs/iq_kernels.h"
#include "formats/blocks_iq.h"
#include "formats/half.h"
#include "formats/iq_grids/iq1s_grid.h"
#include "formats/iq_grids/iq2s_grid.h"
#include "formats/iq_grids/iq2xs_grid.h"
#include "formats/iq_grids/iq2xxs_grid.h"
#include "formats/iq_grids/iq3s_grid.h"
#include "formats/iq_grids/iq3xxs_grid.h"
#include "formats/iq_grids/ksigns_iq2xs.h"
#include "formats/iq_grids/kvalues_mxfp4.h"

#ifndef BITSMITH_QUANT_IQ_SIMD_ONCE
#define BITSMITH_QUANT_IQ_SIMD_ONCE
namespace bitsmith::iq {
namespace {

// Byte j of kByteMask[b] is 0xFF when bit j of b is set.
struct ByteMasks {
  uint64_t m[256];
  constexpr ByteMasks() : m() {
    for (int b = 0; b < 256; ++b) {
      uint64_t v = 0;
      for (int j = 0; j < 8; ++j)
        if ((b >> j) & 1) v |= uint64_t{0xFF} << (8 * j);
      m[b] = v;
    }
  }
};
inline constexpr ByteMasks kByteMask{};

// The 8 grid bytes g (all in 1..127) with the bytes selected by mask m negated,
// as int8 (two's complement): ~g + 1 never carries out of a byte since g != 0.
inline uint64_t SignedBytes(uint64_t g, uint64_t m) { return (g ^ m) + (m & 0x0101010101010101ull); }
inline uint64_t SignedGroup(uint64_t g, uint8_t sign_byte) { return SignedBytes(g, kByteMask.m[sign_byte]); }
inline uint64_t Grid2x4(uint32_t lo, uint32_t hi) { return lo | (static_cast<uint64_t>(hi) << 32); }

}  // namespace
}  // namespace bitsmith::iq
#endif  // BITSMITH_QUANT_IQ_SIMD_ONCE

HWY_BEFORE_NAMESPACE();
namespace bitsmith::iq::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::CappedTag<float, 16>;  // N <= 16 divides every run of 16 or 32 values
using DI = hn::Rebind<int32_t, DF>;
using DI8 = hn::Rebind<int8_t, DF>;
using VF = hn::Vec<DF>;

// Every exported kernel ends with vzeroupper (as codecs/quant_k-inl.h ZeroUpper):
// GCC emits none under Highway's target attributes, and baseline SSE code running
// afterwards (ggml, libc) would pay the dirty-upper-state penalty.
HWY_INLINE void ZeroUpperIQ() {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  _mm256_zeroupper();
#endif
}

// y[0..n) = factor * float(the int8 bytes of q[0..n/8)) (n = 16 or 32).
// kPairInRegisters (16 lanes only): two 8-byte groups are put together in
// registers instead of being loaded back from q as 16 bytes. When the groups
// were written by two 8-byte scalar stores, such a load is not store-forwarded
// (AMD Zen 4 stalls on every one: IQ2_XXS dequantization ran at ggml's speed,
// 1.0x, instead of 4.8x). The IQ3 layouts keep the load: GCC writes their
// groups with vector stores, which forward, and pairing in registers measured
// 10-20% slower there.
template <bool kPairInRegisters, class D>
HWY_INLINE void StoreScaledGroups(D df, const uint64_t* q, int n, float factor, float* HWY_RESTRICT y) {
  const hn::Rebind<int32_t, D> di;
  const hn::Rebind<int8_t, D> d8;
  const auto vf = hn::Set(df, factor);
#if HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128
  if constexpr (kPairInRegisters && hn::MaxLanes(D()) == 16) {
    const hn::Repartition<uint64_t, decltype(d8)> d64;  // the 16 int8 lanes as 2 x u64
    for (int j = 0; j < n / 8; j += 2) {
      const auto pair = hn::InterleaveLower(d64, hn::Set(d64, q[j]), hn::Set(d64, q[j + 1]));
      hn::StoreU(hn::Mul(vf, hn::ConvertTo(df, hn::PromoteTo(di, hn::BitCast(d8, pair)))), df, y + 8 * j);
    }
    return;
  }
#endif
  const auto* bytes = reinterpret_cast<const int8_t*>(q);
  const int N = static_cast<int>(hn::Lanes(df));
  for (int j = 0; j < n; j += N)
    hn::StoreU(hn::Mul(vf, hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(d8, bytes + j)))), df, y + j);
}

// y[0..8) = dl * (float(q[0..8)) + delta), 8 at a time (IQ1: delta per group of 8).
HWY_INLINE void StoreIQ1Group(const int8_t* HWY_RESTRICT q, float dl, float delta, float* HWY_RESTRICT y) {
  using D8F = hn::CappedTag<float, 8>;
  const D8F df;
  const hn::Rebind<int32_t, D8F> di;
  const hn::Rebind<int8_t, D8F> d8;
  const int N = static_cast<int>(hn::Lanes(df));
  const auto vdl = hn::Set(df, dl), vdelta = hn::Set(df, delta);
  for (int j = 0; j < 8; j += N)
    hn::StoreU(hn::Mul(vdl, hn::Add(hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(d8, q + j))), vdelta)), df, y + j);
}

void DequantizeMXFP4Impl(const void* vx, float* HWY_RESTRICT y, int64_t n) {
  const auto* x = static_cast<const BlockMXFP4*>(vx);
#if HWY_TARGET == HWY_SCALAR
  for (int64_t i = 0; i < n / 32; ++i, y += 32) {
    const float d = F32FromBits(E8M0HalfBits(x[i].e));
    for (int j = 0; j < 16; ++j) {
      y[j] = iq_grids::kKValuesMXFP4[LowNibble(x[i].qs[j])] * d;
      y[16 + j] = iq_grids::kKValuesMXFP4[HighNibble(x[i].qs[j])] * d;
    }
  }
#else
  // 16 nibble codes -> int8 values with one byte shuffle per half.
  const hn::Full128<uint8_t> d8;
  const hn::Full128<uint16_t> d16;
  const auto table = hn::LoadU(d8, reinterpret_cast<const uint8_t*>(iq_grids::kKValuesMXFP4));
  const auto low4 = hn::Set(d8, 0x0F);
  const DF df;
  const DI di;
  const int N = static_cast<int>(hn::Lanes(df));
  alignas(16) int8_t v[32];
  for (int64_t i = 0; i < n / 32; ++i, y += 32) {
    const VF d = hn::Set(df, F32FromBits(E8M0HalfBits(x[i].e)));
    const auto q = hn::LoadU(d8, x[i].qs);
    const auto lo = hn::And(q, low4);
    const auto hi = hn::And(hn::BitCast(d8, hn::ShiftRight<4>(hn::BitCast(d16, q))), low4);
    hn::Store(hn::TableLookupBytes(table, lo), d8, reinterpret_cast<uint8_t*>(v));
    hn::Store(hn::TableLookupBytes(table, hi), d8, reinterpret_cast<uint8_t*>(v + 16));
    // ggml: kvalues[q] * d (value first).
    for (int j = 0; j < 32; j += N)
      hn::StoreU(hn::Mul(hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(DI8(), v + j))), d), df, y + j);
  }
#endif
  ZeroUpperIQ();
}

// The grid types' dequantizers share one loop: per super-block of 256 the fp16
// d (a NaN d takes the scalar oracle, see the top), then runs of kRun values
// (32: IQ2_XXS, IQ3_XXS, IQ3_S sub-blocks; 16: IQ2_XS, IQ2_S half sub-blocks),
// each y = db * (signed grid bytes). A layout provides, for run r of a block,
// Scale (db, computed as the oracle computes it) and Groups (the kRun/8 signed
// 8-byte groups).
template <class Layout>
HWY_INLINE void DequantizeGrid(const void* vx, float* HWY_RESTRICT y, int64_t n) {
  using Block = typename Layout::Block;
  constexpr int kRun = Layout::kRun;
  const auto* x = static_cast<const Block*>(vx);
  uint64_t q[kRun / 8];
  for (int64_t i = 0; i < n / 256; ++i) {
    const float d = F16BitsToF32(x[i].d);
    if (d != d) {  // NaN scale: the scalar oracle's sign handling (see the top)
      Layout::Ref(x + i, y, 256);
      y += 256;
      continue;
    }
    for (int r = 0; r < 256 / kRun; ++r, y += kRun) {
      const float db = Layout::Scale(x[i], d, r);
      Layout::Groups(x[i], r, q);
      StoreScaledGroups<Layout::kPairInRegisters>(DF(), q, kRun, db, y);
    }
  }
  ZeroUpperIQ();
}

struct IQ2XXSLayout {
  using Block = BlockIQ2XXS;
  static constexpr int kRun = 32;
  static constexpr bool kPairInRegisters = true;  // see StoreScaledGroups
  static void Ref(const void* x, float* y, int64_t n) { DequantizeIQ2XXSRef(x, y, n); }
  static float Scale(const Block& b, float d, int s) {
    return d * (0.5f + IQ2XXSScale(LoadIQ2XXSSubBlock(b, s).sign_word)) * 0.25f;
  }
  static void Groups(const Block& b, int s, uint64_t* q) {
    const IQ2XXSSubBlock sb = LoadIQ2XXSSubBlock(b, s);
    for (int l = 0; l < 4; ++l)
      q[l] = SignedGroup(iq_grids::kIQ2XXSGrid[IQ2XXSGridIndex(sb.grid_word, l)],
                         iq_grids::kKSignsIQ2XS[IQ2XXSSigns7(sb.sign_word, l)]);
  }
};

// IQ2_XS / IQ2_S: run r = 2s + h is half h of sub-block s, scale nibble h of
// scales[s], groups 2r and 2r+1.
inline float HalfScale(const uint8_t* scales, float d, int r) {
  const int sc = r % 2 == 0 ? LowNibble(scales[r / 2]) : HighNibble(scales[r / 2]);
  return d * (0.5f + sc) * 0.25f;
}

struct IQ2XSLayout {
  using Block = BlockIQ2XS;
  static constexpr int kRun = 16;
  static constexpr bool kPairInRegisters = true;  // see StoreScaledGroups
  static void Ref(const void* x, float* y, int64_t n) { DequantizeIQ2XSRef(x, y, n); }
  static float Scale(const Block& b, float d, int r) { return HalfScale(b.scales, d, r); }
  static void Groups(const Block& b, int r, uint64_t* q) {
    for (int l = 0; l < 2; ++l) {
      const uint16_t g = b.qs[2 * r + l];
      q[l] = SignedGroup(iq_grids::kIQ2XSGrid[IQ2XSGridIndex(g)], iq_grids::kKSignsIQ2XS[IQ2XSSigns7(g)]);
    }
  }
};

struct IQ2SLayout {
  using Block = BlockIQ2S;
  static constexpr int kRun = 16;
  static constexpr bool kPairInRegisters = true;  // see StoreScaledGroups
  static void Ref(const void* x, float* y, int64_t n) { DequantizeIQ2SRef(x, y, n); }
  static float Scale(const Block& b, float d, int r) { return HalfScale(b.scales, d, r); }
  static void Groups(const Block& b, int r, uint64_t* q) {
    for (int l = 0; l < 2; ++l) {
      const int g = 2 * r + l;
      q[l] = SignedGroup(iq_grids::kIQ2SGrid[IQ2SGridIndex(b, g)], b.signs[g]);
    }
  }
};

struct IQ3XXSLayout {
  using Block = BlockIQ3XXS;
  static constexpr int kRun = 32;
  static constexpr bool kPairInRegisters = false;  // see StoreScaledGroups
  static void Ref(const void* x, float* y, int64_t n) { DequantizeIQ3XXSRef(x, y, n); }
  static float Scale(const Block& b, float d, int s) {
    return d * (0.5f + IQ2XXSScale(LoadIQ3XXSSignWord(b, s))) * 0.5f;
  }
  static void Groups(const Block& b, int s, uint64_t* q) {
    const uint32_t w = LoadIQ3XXSSignWord(b, s);
    for (int l = 0; l < 4; ++l)
      q[l] = SignedGroup(Grid2x4(iq_grids::kIQ3XXSGrid[b.qs[8 * s + 2 * l]],
                                 iq_grids::kIQ3XXSGrid[b.qs[8 * s + 2 * l + 1]]),
                         iq_grids::kKSignsIQ2XS[IQ2XXSSigns7(w, l)]);
  }
};

struct IQ3SLayout {
  using Block = BlockIQ3S;
  static constexpr int kRun = 32;
  static constexpr bool kPairInRegisters = false;  // see StoreScaledGroups
  static void Ref(const void* x, float* y, int64_t n) { DequantizeIQ3SRef(x, y, n); }
  static float Scale(const Block& b, float d, int s) {
    const int sc = s % 2 == 0 ? LowNibble(b.scales[s / 2]) : HighNibble(b.scales[s / 2]);
    return d * (1 + 2 * sc);
  }
  static void Groups(const Block& b, int s, uint64_t* q) {
    for (int l = 0; l < 4; ++l)
      q[l] = SignedGroup(Grid2x4(iq_grids::kIQ3SGrid[IQ3SGridIndex(b, 8 * s + 2 * l)],
                                 iq_grids::kIQ3SGrid[IQ3SGridIndex(b, 8 * s + 2 * l + 1)]),
                         b.signs[4 * s + l]);
  }
};

void DequantizeIQ2XXSImpl(const void* x, float* HWY_RESTRICT y, int64_t n) { DequantizeGrid<IQ2XXSLayout>(x, y, n); }
void DequantizeIQ2XSImpl(const void* x, float* HWY_RESTRICT y, int64_t n) { DequantizeGrid<IQ2XSLayout>(x, y, n); }
void DequantizeIQ2SImpl(const void* x, float* HWY_RESTRICT y, int64_t n) { DequantizeGrid<IQ2SLayout>(x, y, n); }
void DequantizeIQ3XXSImpl(const void* x, float* HWY_RESTRICT y, int64_t n) { DequantizeGrid<IQ3XXSLayout>(x, y, n); }
void DequantizeIQ3SImpl(const void* x, float* HWY_RESTRICT y, int64_t n) { DequantizeGrid<IQ3SLayout>(x, y, n); }

void DequantizeIQ1SImpl(const void* vx, float* HWY_RESTRICT y, int64_t n) {
  const auto* x = static_cast<const BlockIQ1S*>(vx);
  for (int64_t i = 0; i < n / 256; ++i) {
    const float d = F16BitsToF32(x[i].d);
    for (int s = 0; s < 8; ++s) {
      const uint16_t h = x[i].qh[s];
      const float dl = d * (2 * IQ1SScale(h) + 1);
      const float delta = IQ1SDeltaNegative(h) ? -kIQ1Delta : kIQ1Delta;
      for (int l = 0; l < 4; ++l, y += 8)
        StoreIQ1Group(reinterpret_cast<const int8_t*>(iq_grids::kIQ1SGrid + IQ1SGridIndex(x[i], s, l)), dl, delta, y);
    }
  }
  ZeroUpperIQ();
}

void DequantizeIQ1MImpl(const void* vx, float* HWY_RESTRICT y, int64_t n) {
  const auto* x = static_cast<const BlockIQ1M*>(vx);
  for (int64_t i = 0; i < n / 256; ++i) {
    const float d = F16BitsToF32(IQ1MScaleBits(x[i]));
    for (int h = 0; h < 16; ++h) {
      const float dl = d * (2 * IQ1MScale(x[i], h) + 1);
      for (int k = 0; k < 2; ++k, y += 8) {
        const float delta = IQ1MDeltaNegative(x[i], h, k) ? -kIQ1Delta : kIQ1Delta;
        StoreIQ1Group(reinterpret_cast<const int8_t*>(iq_grids::kIQ1SGrid + IQ1MGridIndex(x[i], h, k)), dl, delta, y);
      }
    }
  }
  ZeroUpperIQ();
}

}  // namespace bitsmith::iq::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace bitsmith::iq {

HWY_EXPORT(DequantizeMXFP4Impl);
HWY_EXPORT(DequantizeIQ2XXSImpl);
HWY_EXPORT(DequantizeIQ2XSImpl);
HWY_EXPORT(DequantizeIQ2SImpl);
HWY_EXPORT(DequantizeIQ3XXSImpl);
HWY_EXPORT(DequantizeIQ3SImpl);
HWY_EXPORT(DequantizeIQ1SImpl);
HWY_EXPORT(DequantizeIQ1MImpl);

#define BITSMITH_IQ_DEQUANTIZE_SIMD(NAME)                            \
  void Dequantize##NAME##Simd(const void* x, float* y, int64_t n) { \
    HWY_DYNAMIC_DISPATCH(Dequantize##NAME##Impl)(x, y, n);          \
  }
BITSMITH_IQ_DEQUANTIZE_SIMD(MXFP4)
BITSMITH_IQ_DEQUANTIZE_SIMD(IQ2XXS)
BITSMITH_IQ_DEQUANTIZE_SIMD(IQ2XS)
BITSMITH_IQ_DEQUANTIZE_SIMD(IQ2S)
BITSMITH_IQ_DEQUANTIZE_SIMD(IQ3XXS)
BITSMITH_IQ_DEQUANTIZE_SIMD(IQ3S)
BITSMITH_IQ_DEQUANTIZE_SIMD(IQ1S)
BITSMITH_IQ_DEQUANTIZE_SIMD(IQ1M)
#undef BITSMITH_IQ_DEQUANTIZE_SIMD

}  // namespace bitsmith::iq
#endif  // HWY_ONCE
