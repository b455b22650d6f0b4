// Per-target building blocks of the SIMD k-quant quantizers (Highway; included
// by codecs/quant_k_*.cc once per target, after foreach_target.h).
//
// Why "one block per lane". ggml's quantizers are sequences of float operations
// whose order we must keep (every sum inside a block is sequential), so the
// float work cannot be spread over the elements of a block. It can be spread
// over blocks: a batch holds N = Lanes(d) super-blocks, lane b runs super-block
// b's scalar sequence, and a loop over elements i walks all N blocks at once.
// Each lane performs exactly the scalar operations of codecs/quant_search.h on
// its own data (IEEE add/mul/div/sqrt are lane-wise exact), branches become
// per-lane selects, and the result is bit-identical to the scalar oracle.
// To feed that, a batch is transposed: xt[e * N + b] = element e of block b.
//
// Everything element-wise and exact (requantization with a per-sub-block d,
// bit packing) runs in the natural layout, N elements of one block at a time.
//
// No FMA anywhere: Mul then Add, never MulAdd (-ffp-contract=off is global).

// Per-target include guard (Highway's toggle pattern).
#if defined(BITSMITH_CODECS_QUANT_K_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef BITSMITH_CODECS_QUANT_K_INL_H_
#undef BITSMITH_CODECS_QUANT_K_INL_H_
#else
#define BITSMITH_CODECS_QUANT_K_INL_H_
#endif

#include <cmath>
#include <cstdint>
#include <cstring>

#include <hwy/highway.h>

#include "codecs/quant_search.h"
#include "formats/blocks_k.h"

HWY_BEFORE_NAMESPACE();
namespace bitsmith::kquant::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using DI = hn::RebindToSigned<DF>;
using VF = hn::Vec<DF>;
using VI = hn::Vec<DI>;
using MF = hn::Mask<DF>;

// Lanes of the widest vector of this target: the batch size, in blocks.
inline constexpr size_t kMaxN = HWY_LANES(float);

// Clears the upper halves of the AVX registers before returning to the caller.
// GCC does not emit vzeroupper in functions compiled under Highway's target
// pragmas, and legacy-SSE code that runs afterwards (e.g. a library built
// without -mavx, such as ggml's quantizers) then pays the dirty-upper-state
// penalty on every instruction: measured here as a 10x slowdown of ggml's
// quantize_q4_K after one call of ours. Every exported kernel ends with this.
HWY_INLINE void ZeroUpper() {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  _mm256_zeroupper();
#endif
}

// ---------------------------------------------------------------------------
// Lane-wise scalar primitives
// ---------------------------------------------------------------------------

// quant::NearestInt on every lane, with the same bit trick (so out-of-range and
// NaN inputs give ggml's values too): bits(x + 1.5*2^23) & 0x7FFFFF - 2^22.
HWY_INLINE VI NearestIntV(DF d, VF x) {
  const DI di;
  const VI bits = hn::BitCast(di, hn::Add(x, hn::Set(d, 12582912.f)));
  return hn::Sub(hn::And(bits, hn::Set(di, 0x007FFFFF)), hn::Set(di, 0x00400000));
}
HWY_INLINE VI ClampI(VI v, int lo, int hi) {
  const DI di;
  return hn::Min(hn::Max(v, hn::Set(di, lo)), hn::Set(di, hi));
}
// Float of clamp(nearest(x), lo, hi): ggml's `int l = ...; l = MAX(lo, MIN(hi, l))`
// followed by the int->float conversion of its use in a product.
HWY_INLINE VF NearestClampF(DF d, VF x, int lo, int hi) {
  return hn::ConvertTo(d, ClampI(NearestIntV(d, x), lo, hi));
}
// C's (uint8_t) and (int8_t) truncations of an int.
HWY_INLINE VI WrapU8(VI v) { return hn::And(v, hn::Set(DI(), 0xFF)); }
HWY_INLINE VI WrapI8(VI v) {
  const DI di;
  return hn::Sub(hn::Xor(WrapU8(v), hn::Set(di, 0x80)), hn::Set(di, 0x80));
}
// `if (a > best) best = a` (strict; keeps the first of equals, and +0 over -0).
HWY_INLINE VF KeepGreater(VF best, VF a) { return hn::IfThenElse(hn::Gt(a, best), a, best); }
HWY_INLINE MF MaskFromI(hn::Mask<DI> m) { return hn::RebindMask(DF(), m); }

// ---------------------------------------------------------------------------
// Batches and transposition
// ---------------------------------------------------------------------------

// Scalar fp32 -> fp16 -> fp32 of each lane (ggml_fp32_to_fp16 is RNE; done with
// the scalar routine on every target so that no target's conversion can differ).
HWY_INLINE void ToF16Lanes(VF v, uint16_t* HWY_RESTRICT bits, float* HWY_RESTRICT back) {
  const DF d;
  HWY_ALIGN float tmp[kMaxN];
  hn::Store(v, d, tmp);
  for (size_t b = 0; b < hn::Lanes(d); ++b) {
    bits[b] = F32ToF16Bits(tmp[b]);
    back[b] = F16BitsToF32(bits[b]);
  }
}

// Runs batch(first_block, valid, x0, x_offsets, qw_offsets) over the
// super-blocks of a chunk (nrows rows of n_per_row, contiguous) in batches of
// N: `x0` is the first block's data, lane b handles block first_block + b
// (b < valid; padding lanes repeat the last block and are never stored),
// `x_offsets` / `qw_offsets` are the lane offsets (floats) of each block's data
// from x0 and of its columns in the imatrix.
template <class Fn>
HWY_INLINE void ForEachBatch(const float* src, int64_t nrows, int64_t n_per_row, Fn&& batch) {
  const int64_t N = static_cast<int64_t>(hn::Lanes(DF()));
  const int64_t nb_row = n_per_row / kQK_K;
  const int64_t nblocks = nrows * nb_row;
  HWY_ALIGN int32_t x_offs[kMaxN], qw_offs[kMaxN];
  for (int64_t b0 = 0; b0 < nblocks; b0 += N) {
    const int64_t valid = nblocks - b0 < N ? nblocks - b0 : N;
    for (int64_t b = 0; b < N; ++b) {
      const int64_t lane_block = b < valid ? b : valid - 1;
      x_offs[b] = static_cast<int32_t>(kQK_K * lane_block);
      qw_offs[b] = static_cast<int32_t>(kQK_K * ((b0 + lane_block) % nb_row));
    }
    batch(b0, static_cast<size_t>(valid), src + kQK_K * b0, x_offs, qw_offs);
  }
}

// out[e * N + b] = base[offsets[b] + e] for e < n (a multiple of 16): element e
// of every lane's block, i.e. an N x n matrix transposed. x86 targets load N
// rows and transpose in registers (unpack + 128-bit shuffles: 4 shuffles per
// element row); other targets copy lane by lane.
HWY_INLINE void Transpose(const float* HWY_RESTRICT base, const int32_t* HWY_RESTRICT offsets,
                          int n, float* HWY_RESTRICT out) {
#if HWY_ARCH_X86 && (HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL)
  for (int e0 = 0; e0 < n; e0 += 16) {
    __m512 r[16], t[16];
    for (int b = 0; b < 16; ++b) r[b] = _mm512_loadu_ps(base + offsets[b] + e0);
    // 1. 2x2 blocks of floats, 2. 2x2 blocks of float pairs (within 128-bit lanes):
    //    r[4a + k] then holds, in its 128-bit block q, column 4q + k of rows 4a..4a+3.
    for (int i = 0; i < 8; ++i) {
      t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int a = 0; a < 4; ++a) {
      const __m512d t0 = _mm512_castps_pd(t[4 * a]), t1 = _mm512_castps_pd(t[4 * a + 1]);
      const __m512d t2 = _mm512_castps_pd(t[4 * a + 2]), t3 = _mm512_castps_pd(t[4 * a + 3]);
      r[4 * a + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
      r[4 * a + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
      r[4 * a + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
      r[4 * a + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
    }
    // 3. 4x4 transpose of the 128-bit blocks of r[k], r[4+k], r[8+k], r[12+k].
    for (int k = 0; k < 4; ++k) {
      const __m512 u0 = _mm512_shuffle_f32x4(r[k], r[4 + k], 0x44);
      const __m512 u1 = _mm512_shuffle_f32x4(r[k], r[4 + k], 0xEE);
      const __m512 u2 = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0x44);
      const __m512 u3 = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0xEE);
      _mm512_store_ps(out + (e0 + k) * 16, _mm512_shuffle_f32x4(u0, u2, 0x88));
      _mm512_store_ps(out + (e0 + 4 + k) * 16, _mm512_shuffle_f32x4(u0, u2, 0xDD));
      _mm512_store_ps(out + (e0 + 8 + k) * 16, _mm512_shuffle_f32x4(u1, u3, 0x88));
      _mm512_store_ps(out + (e0 + 12 + k) * 16, _mm512_shuffle_f32x4(u1, u3, 0xDD));
    }
  }
#elif HWY_ARCH_X86 && HWY_TARGET == HWY_AVX2
  for (int e0 = 0; e0 < n; e0 += 8) {
    __m256 r[8], t[8];
    for (int b = 0; b < 8; ++b) r[b] = _mm256_loadu_ps(base + offsets[b] + e0);
    for (int i = 0; i < 4; ++i) {
      t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int a = 0; a < 2; ++a) {
      r[4 * a + 0] = _mm256_shuffle_ps(t[4 * a], t[4 * a + 2], 0x44);
      r[4 * a + 1] = _mm256_shuffle_ps(t[4 * a], t[4 * a + 2], 0xEE);
      r[4 * a + 2] = _mm256_shuffle_ps(t[4 * a + 1], t[4 * a + 3], 0x44);
      r[4 * a + 3] = _mm256_shuffle_ps(t[4 * a + 1], t[4 * a + 3], 0xEE);
    }
    for (int k = 0; k < 4; ++k) {
      _mm256_store_ps(out + (e0 + k) * 8, _mm256_permute2f128_ps(r[k], r[4 + k], 0x20));
      _mm256_store_ps(out + (e0 + 4 + k) * 8, _mm256_permute2f128_ps(r[k], r[4 + k], 0x31));
    }
  }
#elif HWY_ARCH_X86 && HWY_TARGET == HWY_SSE4
  for (int e0 = 0; e0 < n; e0 += 4) {
    __m128 r0 = _mm_loadu_ps(base + offsets[0] + e0), r1 = _mm_loadu_ps(base + offsets[1] + e0);
    __m128 r2 = _mm_loadu_ps(base + offsets[2] + e0), r3 = _mm_loadu_ps(base + offsets[3] + e0);
    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
    _mm_store_ps(out + (e0 + 0) * 4, r0);
    _mm_store_ps(out + (e0 + 1) * 4, r1);
    _mm_store_ps(out + (e0 + 2) * 4, r2);
    _mm_store_ps(out + (e0 + 3) * 4, r3);
  }
#else
  const size_t N = hn::Lanes(DF());
  for (size_t b = 0; b < N; ++b)
    for (int e = 0; e < n; ++e) out[e * N + b] = base[offsets[b] + e];
#endif
}

// Requantizes n contiguous elements (a multiple of N) to
// clamp(nearest((x + m) / d), lo, hi) + bias, stored as bytes -- the element-wise
// step 3 of every k-quant (m = 0 for the symmetric types).
HWY_INLINE void RequantizeRun(const float* HWY_RESTRICT x, int n, float dd, float m, int lo, int hi,
                              int bias, bool add_m, uint8_t* HWY_RESTRICT L) {
  const DF d;
  const DI di;
  const hn::Rebind<uint8_t, DI> du8;
  const size_t N = hn::Lanes(d);
  const VF vd = hn::Set(d, dd), vm = hn::Set(d, m);
  for (int i = 0; i < n; i += static_cast<int>(N)) {
    VF v = hn::LoadU(d, x + i);
    if (add_m) v = hn::Add(v, vm);
    const VI l = hn::Add(ClampI(NearestIntV(d, hn::Div(v, vd)), lo, hi), hn::Set(di, bias));
    hn::StoreU(hn::DemoteTo(du8, l), du8, L + i);
  }
}

// ---------------------------------------------------------------------------
// Bit packing of 256 levels, SIMD over bytes. Each equals the scalar packer of
// formats/blocks_k.h named in its comment (exact integer ops; checked by the
// tests through whole-codec comparisons with the scalar reference).
// ---------------------------------------------------------------------------

using DU8 = hn::CappedTag<uint8_t, 32>;  // up to 32 byte lanes (one row of 32)

// Pack2BitLevels: qs[32n + l] = L[128n + l] | L[+32] << 2 | L[+64] << 4 | L[+96] << 6.
HWY_INLINE void Pack2BitLevelsV(const uint8_t* HWY_RESTRICT L, uint8_t* HWY_RESTRICT qs) {
  const DU8 du8;
  const size_t N8 = hn::Lanes(du8);
  for (int n = 0; n < 2; ++n)
    for (size_t l = 0; l < 32; l += N8) {
      const uint8_t* e = L + 128 * n + l;
      const auto v = hn::Or(hn::Or(hn::LoadU(du8, e), hn::ShiftLeft<2>(hn::LoadU(du8, e + 32))),
                            hn::Or(hn::ShiftLeft<4>(hn::LoadU(du8, e + 64)),
                                   hn::ShiftLeft<6>(hn::LoadU(du8, e + 96))));
      hn::StoreU(v, du8, qs + 32 * n + l);
    }
}

// PackQ3KHmask + Pack2BitLevels: levels 0..7; bit 2 of L[32k + m] -> bit k of
// hmask[m]; the low 2 bits (L & 3 = L - 4 when L > 3) -> qs.
HWY_INLINE void PackQ3KV(uint8_t* HWY_RESTRICT L, uint8_t* HWY_RESTRICT hmask,
                         uint8_t* HWY_RESTRICT qs) {
  const DU8 du8;
  const size_t N8 = hn::Lanes(du8);
  const auto one = hn::Set(du8, 1), three = hn::Set(du8, 3);
  for (size_t m = 0; m < 32; m += N8) {
    auto bit = [&](int k) {
      const auto v = hn::LoadU(du8, L + 32 * k + m);
      hn::StoreU(hn::And(v, three), du8, L + 32 * k + m);
      return hn::And(hn::ShiftRight<2>(v), one);
    };
    auto h = hn::Or(hn::Or(bit(0), hn::ShiftLeft<1>(bit(1))),
                    hn::Or(hn::ShiftLeft<2>(bit(2)), hn::ShiftLeft<3>(bit(3))));
    h = hn::Or(h, hn::Or(hn::Or(hn::ShiftLeft<4>(bit(4)), hn::ShiftLeft<5>(bit(5))),
                         hn::Or(hn::ShiftLeft<6>(bit(6)), hn::ShiftLeft<7>(bit(7)))));
    hn::StoreU(h, du8, hmask + m);
  }
  Pack2BitLevelsV(L, qs);
}

// PackQ4KNibbles: qs[32g + l] = L[64g + l] | L[64g + 32 + l] << 4.
HWY_INLINE void PackQ4KNibblesV(const uint8_t* HWY_RESTRICT L, uint8_t* HWY_RESTRICT qs) {
  const DU8 du8;
  const size_t N8 = hn::Lanes(du8);
  for (int g = 0; g < 4; ++g)
    for (size_t l = 0; l < 32; l += N8)
      hn::StoreU(hn::Or(hn::LoadU(du8, L + 64 * g + l),
                        hn::ShiftLeft<4>(hn::LoadU(du8, L + 64 * g + 32 + l))),
                 du8, qs + 32 * g + l);
}

// PackQ5KLevels: levels 0..31; low nibbles as q4_k, bit 4 of L[64g + 32h + l]
// -> bit 2g + h of qh[l].
HWY_INLINE void PackQ5KLevelsV(const uint8_t* HWY_RESTRICT L, uint8_t* HWY_RESTRICT qh,
                               uint8_t* HWY_RESTRICT qs) {
  const DU8 du8;
  const size_t N8 = hn::Lanes(du8);
  const auto low = hn::Set(du8, 15);
  for (size_t l = 0; l < 32; l += N8) {
    auto h = hn::Zero(du8);
    for (int g = 0; g < 4; ++g) {
      const auto a = hn::LoadU(du8, L + 64 * g + l), b = hn::LoadU(du8, L + 64 * g + 32 + l);
      hn::StoreU(hn::Or(hn::And(a, low), hn::ShiftLeft<4>(b)), du8, qs + 32 * g + l);
      // (a >> 4) is 0 or 1: shift it to bit 2g, (b >> 4) to bit 2g + 1.
      const auto hb = hn::Or(hn::ShiftRight<4>(a), hn::ShiftLeft<1>(hn::ShiftRight<4>(b)));
      h = hn::Or(h, g == 0 ? hb : g == 1 ? hn::ShiftLeft<2>(hb)
                                        : g == 2 ? hn::ShiftLeft<4>(hb) : hn::ShiftLeft<6>(hb));
    }
    hn::StoreU(h, du8, qh + l);
  }
}

// PackQ6KLevels: levels 0..63; ql = low nibbles of (e, e+64) and (e+32, e+96),
// qh = high 2 bits of e, e+32, e+64, e+96 at bits 0, 2, 4, 6.
HWY_INLINE void PackQ6KLevelsV(const uint8_t* HWY_RESTRICT L, uint8_t* HWY_RESTRICT ql,
                               uint8_t* HWY_RESTRICT qh) {
  const DU8 du8;
  const size_t N8 = hn::Lanes(du8);
  const auto low = hn::Set(du8, 15);
  for (int n = 0; n < 2; ++n)
    for (size_t l = 0; l < 32; l += N8) {
      const uint8_t* e = L + 128 * n + l;
      const auto v0 = hn::LoadU(du8, e), v1 = hn::LoadU(du8, e + 32);
      const auto v2 = hn::LoadU(du8, e + 64), v3 = hn::LoadU(du8, e + 96);
      hn::StoreU(hn::Or(hn::And(v0, low), hn::ShiftLeft<4>(v2)), du8, ql + 64 * n + l);
      hn::StoreU(hn::Or(hn::And(v1, low), hn::ShiftLeft<4>(v3)), du8, ql + 64 * n + 32 + l);
      const auto h = hn::Or(hn::Or(hn::ShiftRight<4>(v0), hn::ShiftLeft<2>(hn::ShiftRight<4>(v1))),
                            hn::Or(hn::ShiftLeft<4>(hn::ShiftRight<4>(v2)),
                                   hn::ShiftLeft<6>(hn::ShiftRight<4>(v3))));
      hn::StoreU(h, du8, qh + 32 * n + l);
    }
}

// ---------------------------------------------------------------------------
// make_qkx2_quants / make_qkx3_quants, one sub-block per lane
// ---------------------------------------------------------------------------

// The search result of one sub-block per lane. Its levels are not stored: they
// are regenerated (RegenerateMinMaxLevels) only for the rare sub-blocks whose
// requantization is skipped (d * sc == 0), as clamp(nearest(lev_iscale *
// (x - lev_min)), 0, nmax) -- exactly the Laux of the winning candidate.
struct MinMaxLanes {
  VF scale;       // returned scale
  VF the_min;     // *the_min (= -min >= 0 normally)
  VF lev_iscale;  // inverse scale that produced the kept levels (0: all levels 0)
  VF lev_min;     // min those levels were computed against
};

// quant::detail::MinMaxFit on every lane. xt, wt: n rows of N floats (x and the
// weights, transposed); scratch: n*N floats. kQkx3 selects make_qkx3_quants'
// degenerate test (max <= min) over make_qkx2_quants' (max == min).
// Note (as in ggml): once a candidate wins, `min` becomes its fitted min, and
// later candidates use the new min both in (max - min) and in x - min.
template <bool kQkx3, bool kMad>
HWY_INLINE MinMaxLanes MinMaxFitLanes(int n, const quant::MinMaxSearch& s,
                                      const float* HWY_RESTRICT xt, const float* HWY_RESTRICT wt,
                                      float* HWY_RESTRICT scratch) {
  const DF d;
  const size_t N = hn::Lanes(d);
  const int nmax = s.nmax;
  const VF zero = hn::Zero(d);
  float* HWY_RESTRICT laux = scratch;  // candidate levels
  auto diff_err = [](VF diff) { return kMad ? hn::Abs(diff) : hn::Mul(diff, diff); };
  // 1. min, max, sum_w, sum_x (element 0 first, then 1..n-1 in order).
  VF min = hn::Load(d, xt), max = min;
  VF sum_w = hn::Load(d, wt);
  VF sum_x = hn::Mul(sum_w, min);
  for (int i = 1; i < n; ++i) {
    const VF x = hn::Load(d, xt + i * N), w = hn::Load(d, wt + i * N);
    min = hn::IfThenElse(hn::Lt(x, min), x, min);
    max = hn::IfThenElse(hn::Gt(x, max), x, max);
    sum_w = hn::Add(sum_w, w);
    sum_x = hn::Add(sum_x, hn::Mul(w, x));
  }
  min = hn::IfThenElse(hn::Gt(min, zero), zero, min);
  // 2. Degenerate lanes are fixed up at the end (their arithmetic below is junk).
  const MF degenerate = kQkx3 ? hn::Le(max, min) : hn::Eq(max, min);
  const VF min0 = min;
  // 3. Start: iscale = nmax/(max-min), scale = 1/iscale and its error.
  const VF iscale0 = hn::Div(hn::Set(d, static_cast<float>(nmax)), hn::Sub(max, min));
  VF scale = hn::Div(hn::Set(d, 1.f), iscale0);
  VF best_error = zero;
  for (int i = 0; i < n; ++i) {
    const VF x = hn::Load(d, xt + i * N);
    const VF l = NearestClampF(d, hn::Mul(iscale0, hn::Sub(x, min)), 0, nmax);
    const VF diff = hn::Sub(hn::Add(hn::Mul(scale, l), min), x);
    best_error = hn::Add(best_error, hn::Mul(hn::Load(d, wt + i * N), diff_err(diff)));
  }
  VF lev_iscale = iscale0, lev_min = min;
  // 4. Candidates is = 0..nstep.
  for (int is = 0; is <= s.nstep; ++is) {
    const float numer = s.rmin + s.rdelta * static_cast<float>(is) + static_cast<float>(nmax);
    const VF iscale = hn::Div(hn::Set(d, numer), hn::Sub(max, min));
    VF sum_l = zero, sum_l2 = zero, sum_xl = zero;
    for (int i = 0; i < n; ++i) {
      const VF x = hn::Load(d, xt + i * N);
      const VF l = NearestClampF(d, hn::Mul(iscale, hn::Sub(x, min)), 0, nmax);
      hn::Store(l, d, laux + i * N);
      const VF wl = hn::Mul(hn::Load(d, wt + i * N), l);
      sum_l = hn::Add(sum_l, wl);
      sum_l2 = hn::Add(sum_l2, hn::Mul(wl, l));
      sum_xl = hn::Add(sum_xl, hn::Mul(wl, x));
    }
    const VF D = hn::Sub(hn::Mul(sum_w, sum_l2), hn::Mul(sum_l, sum_l));
    const MF positive = hn::Gt(D, zero);
    if (hn::AllFalse(d, positive)) continue;
    VF this_scale = hn::Div(hn::Sub(hn::Mul(sum_w, sum_xl), hn::Mul(sum_x, sum_l)), D);
    VF this_min = hn::Div(hn::Sub(hn::Mul(sum_l2, sum_x), hn::Mul(sum_l, sum_xl)), D);
    const MF min_pos = hn::Gt(this_min, zero);
    this_min = hn::IfThenElse(min_pos, zero, this_min);
    this_scale = hn::IfThenElse(min_pos, hn::Div(sum_xl, sum_l2), this_scale);
    VF cur_error = zero;
    for (int i = 0; i < n; ++i) {
      const VF diff = hn::Sub(hn::Add(hn::Mul(this_scale, hn::Load(d, laux + i * N)), this_min),
                              hn::Load(d, xt + i * N));
      cur_error = hn::Add(cur_error, hn::Mul(hn::Load(d, wt + i * N), diff_err(diff)));
    }
    const MF better = hn::And(positive, hn::Lt(cur_error, best_error));
    best_error = hn::IfThenElse(better, cur_error, best_error);
    scale = hn::IfThenElse(better, this_scale, scale);
    lev_iscale = hn::IfThenElse(better, iscale, lev_iscale);
    lev_min = hn::IfThenElse(better, min, lev_min);
    min = hn::IfThenElse(better, this_min, min);
  }
  // 5. Degenerate lanes: levels 0, scale 0, the_min = -min.
  MinMaxLanes out;
  out.scale = hn::IfThenElse(degenerate, zero, scale);
  out.the_min = hn::Neg(hn::IfThenElse(degenerate, min0, min));
  out.lev_iscale = hn::IfThenElse(degenerate, zero, lev_iscale);
  out.lev_min = hn::IfThenElse(degenerate, min0, lev_min);
  return out;
}

// The levels (0..nmax) a MinMax search left for `n` contiguous elements of one
// block: used where requantization is skipped.
inline void RegenerateMinMaxLevels(const float* x, int n, float lev_iscale, float lev_min, int nmax,
                                   uint8_t* L) {
  for (int i = 0; i < n; ++i) {
    const int l = quant::NearestInt(lev_iscale * (x[i] - lev_min));
    L[i] = static_cast<uint8_t>(l < 0 ? 0 : (l > nmax ? nmax : l));
  }
}

// ---------------------------------------------------------------------------
// make_qx_quants (rmse_type 1, 19-step search), one group per lane
// ---------------------------------------------------------------------------

struct QxLanes {
  VF scale;       // returned scale (0 for an all-zero group)
  VF lev_iscale;  // levels = nmax + clamp(nearest(lev_iscale*x)); NaN: all levels 0
};

// quant::MakeQxQuants({.nmax, kXSquared}, qw) on every lane. xt: n rows of N;
// wt: n rows of weights, or nullptr for w = x*x; scratch: 2*n*N floats.
HWY_INLINE QxLanes QxFitLanes(int n, int nmax, const float* HWY_RESTRICT xt,
                              const float* HWY_RESTRICT wt, float* HWY_RESTRICT scratch) {
  const DF d;
  const size_t N = hn::Lanes(d);
  const VF zero = hn::Zero(d);
  float* HWY_RESTRICT wv = scratch;           // w
  float* HWY_RESTRICT wxv = scratch + n * N;  // w*x (ggml's w*x[i]*l = (w*x)*l)
  // 1. max = the element of largest |x| (first on ties).
  VF amax = zero, max = zero;
  for (int i = 0; i < n; ++i) {
    const VF x = hn::Load(d, xt + i * N);
    const VF ax = hn::Abs(x);
    const MF gt = hn::Gt(ax, amax);
    amax = hn::IfThenElse(gt, ax, amax);
    max = hn::IfThenElse(gt, x, max);
    const VF w = wt != nullptr ? hn::Load(d, wt + i * N) : hn::Mul(x, x);
    hn::Store(w, d, wv + i * N);
    hn::Store(hn::Mul(w, x), d, wxv + i * N);
  }
  const MF all_zero = hn::Lt(amax, hn::Set(d, quant::kGroupMaxEps));
  // Sums for one candidate inverse scale.
  auto sums = [&](VF iscale, VF& sumlx, VF& suml2) {
    sumlx = zero;
    suml2 = zero;
    for (int i = 0; i < n; ++i) {
      const VF l = NearestClampF(d, hn::Mul(iscale, hn::Load(d, xt + i * N)), -nmax, nmax - 1);
      sumlx = hn::Add(sumlx, hn::Mul(hn::Load(d, wxv + i * N), l));
      suml2 = hn::Add(suml2, hn::Mul(hn::Mul(hn::Load(d, wv + i * N), l), l));
    }
  };
  // 2.-3. iscale = -nmax/max, its least-squares scale.
  const VF iscale0 = hn::Div(hn::Set(d, static_cast<float>(-nmax)), max);
  VF sumlx, suml2;
  sums(iscale0, sumlx, suml2);
  // C's `suml2 ? sumlx/suml2 : 0` is true for NaN; Highway's float Ne is ordered
  // on AVX2/AVX-512 (NaN != 0 is false there, true on SSE4), so: not (== 0).
  VF scale = hn::IfThenElseZero(hn::Not(hn::Eq(suml2, zero)), hn::Div(sumlx, suml2));
  VF best = hn::Mul(scale, sumlx);
  VF lev_iscale = iscale0;
  // 4. is = -9..9: keep a candidate when sumlx^2 > best*suml2.
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    const float numer = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is));
    const VF iscale = hn::Div(hn::Set(d, numer), max);
    sums(iscale, sumlx, suml2);
    const MF better =
        hn::And(hn::Gt(suml2, zero), hn::Gt(hn::Mul(sumlx, sumlx), hn::Mul(best, suml2)));
    const VF new_scale = hn::Div(sumlx, suml2);
    scale = hn::IfThenElse(better, new_scale, scale);
    best = hn::IfThenElse(better, hn::Mul(new_scale, sumlx), best);
    lev_iscale = hn::IfThenElse(better, iscale, lev_iscale);
  }
  QxLanes out;
  out.scale = hn::IfThenElseZero(hn::Not(all_zero), scale);
  out.lev_iscale = hn::IfThenElse(all_zero, hn::Set(d, NAN), lev_iscale);
  return out;
}

// Levels L = nmax + clamp(...) (0..2*nmax-1) of a QxFitLanes result, for n
// contiguous elements of one block.
inline void RegenerateQxLevels(const float* x, int n, float lev_iscale, int nmax, uint8_t* L) {
  if (std::isnan(lev_iscale)) {
    std::memset(L, 0, static_cast<size_t>(n));
    return;
  }
  for (int i = 0; i < n; ++i) {
    const int l = quant::NearestInt(lev_iscale * x[i]);
    L[i] = static_cast<uint8_t>(nmax + (l < -nmax ? -nmax : (l > nmax - 1 ? nmax - 1 : l)));
  }
}
// The same on lanes: levels of element row x for every lane (as int).
HWY_INLINE VI QxLevelsV(VF x, VF lev_iscale, int nmax) {
  const DF d;
  const DI di;
  const VI l = hn::Add(ClampI(NearestIntV(d, hn::Mul(lev_iscale, x)), -nmax, nmax - 1),
                       hn::Set(di, nmax));
  return hn::IfThenZeroElse(hn::RebindMask(di, hn::IsNaN(lev_iscale)), l);
}

// ---------------------------------------------------------------------------
// make_qp_quants, one group per lane
// ---------------------------------------------------------------------------

// quant::MakeQpQuants(n, nmax, x, L, w) on every lane: returns the scale and
// writes the levels (uint8 values, as int lanes) to L[i] (n vectors).
HWY_INLINE VF QpFitLanes(int n, int nmax, const float* HWY_RESTRICT xt,
                         const float* HWY_RESTRICT wt, VI* HWY_RESTRICT L) {
  const DF d;
  const DI di;
  const size_t N = hn::Lanes(d);
  const VF zero = hn::Zero(d);
  const VI nmax_i = hn::Set(di, nmax);
  // 1. max = largest x (ggml MAX(max, x): max > x ? max : x).
  VF max = zero;
  for (int i = 0; i < n; ++i) {
    const VF x = hn::Load(d, xt + i * N);
    max = hn::IfThenElse(hn::Gt(max, x), max, x);
  }
  const MF all_zero = hn::Lt(max, hn::Set(d, quant::kGroupMaxEps));
  // 2. Start: iscale = nmax/max, levels uint8(nearest), error.
  VF iscale = hn::Div(hn::Set(d, static_cast<float>(nmax)), max);
  {
    const VF scale = hn::Div(hn::Set(d, 1.f), iscale);
    VF best_mse = zero;
    for (int i = 0; i < n; ++i) {
      const VF x = hn::Load(d, xt + i * N);
      const VF l = hn::ConvertTo(d, WrapU8(NearestIntV(d, hn::Mul(iscale, x))));
      const VF diff = hn::Sub(x, hn::Mul(scale, l));
      best_mse = hn::Add(best_mse, hn::Mul(hn::Mul(hn::Load(d, wt + i * N), diff), diff));
    }
    // 3. is = -4..4.
    for (int is = -4; is <= 4; ++is) {
      if (is == 0) continue;
      const float numer = 0.1f * static_cast<float>(is) + static_cast<float>(nmax);
      const VF iscale_is = hn::Div(hn::Set(d, numer), max);
      const VF scale_is = hn::Div(hn::Set(d, 1.f), iscale_is);
      VF mse = zero;
      for (int i = 0; i < n; ++i) {
        const VF x = hn::Load(d, xt + i * N);
        const VF l = hn::ConvertTo(d, hn::Min(NearestIntV(d, hn::Mul(iscale_is, x)), nmax_i));
        const VF diff = hn::Sub(x, hn::Mul(scale_is, l));
        mse = hn::Add(mse, hn::Mul(hn::Mul(hn::Load(d, wt + i * N), diff), diff));
      }
      const MF better = hn::Lt(mse, best_mse);
      best_mse = hn::IfThenElse(better, mse, best_mse);
      iscale = hn::IfThenElse(better, iscale_is, iscale);
    }
  }
  // 4. Levels for the chosen iscale; sums use the int level, L keeps the uint8.
  VF sumlx = zero, suml2 = zero;
  for (int i = 0; i < n; ++i) {
    const VF x = hn::Load(d, xt + i * N), w = hn::Load(d, wt + i * N);
    const VI li = hn::Min(NearestIntV(d, hn::Mul(iscale, x)), nmax_i);
    L[i] = WrapU8(li);
    const VF l = hn::ConvertTo(d, li);
    sumlx = hn::Add(sumlx, hn::Mul(hn::Mul(w, x), l));
    suml2 = hn::Add(suml2, hn::Mul(hn::Mul(w, l), l));
  }
  //    Coordinate descent, up to 5 passes; a lane whose pass changed nothing is
  //    at a fixed point, so running it again (while other lanes continue) is a no-op.
  for (int itry = 0; itry < 5; ++itry) {
    MF changed = hn::FirstN(d, 0);  // all false
    for (int i = 0; i < n; ++i) {
      const VF x = hn::Load(d, xt + i * N), w = hn::Load(d, wt + i * N);
      const VF wx = hn::Mul(w, x);
      const VF li = hn::ConvertTo(d, L[i]);
      VF slx = hn::Sub(sumlx, hn::Mul(wx, li));
      VF sl2 = hn::Sub(suml2, hn::Mul(hn::Mul(w, li), li));
      const MF ok = hn::And(hn::Gt(slx, zero), hn::Gt(sl2, zero));
      const VI new_l = hn::Min(NearestIntV(d, hn::Div(hn::Mul(x, sl2), slx)), nmax_i);
      const MF differs = MaskFromI(hn::Ne(new_l, L[i]));
      const VF nl = hn::ConvertTo(d, new_l);
      slx = hn::Add(slx, hn::Mul(wx, nl));
      sl2 = hn::Add(sl2, hn::Mul(hn::Mul(w, nl), nl));
      const MF take = hn::And(hn::And(ok, differs),
                              hn::Gt(hn::Mul(hn::Mul(slx, slx), suml2),
                                     hn::Mul(hn::Mul(sumlx, sumlx), sl2)));
      L[i] = hn::IfThenElse(hn::RebindMask(di, take), WrapU8(new_l), L[i]);
      sumlx = hn::IfThenElse(take, slx, sumlx);
      suml2 = hn::IfThenElse(take, sl2, suml2);
      changed = hn::Or(changed, take);
    }
    if (hn::AllFalse(d, changed)) break;
  }
  // 5. scale; all-zero lanes: levels 0, scale 0.
  for (int i = 0; i < n; ++i) L[i] = hn::IfThenZeroElse(hn::RebindMask(di, all_zero), L[i]);
  const VF scale = hn::IfThenElseZero(hn::Gt(suml2, zero), hn::Div(sumlx, suml2));
  return hn::IfThenElseZero(hn::Not(all_zero), scale);
}

}  // namespace bitsmith::kquant::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // BITSMITH_CODECS_QUANT_K_INL_H_
