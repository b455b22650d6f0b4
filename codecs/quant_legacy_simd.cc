// SIMD paths of the legacy block family (Highway, dynamic dispatch),
// byte-identical to the scalar references in codecs/quant_legacy_ref.cc.
//
// The plain quantizers (q4_0 q4_1 q5_0 q5_1 q8_0 q8_1 q8_k) are vectorised
// inside a block (q4_0..q5_1 take their scales from a transposed batch, one
// block per lane), which is exact for them: their only per-block reductions are a
// maximum / minimum (order-independent, with the ties ggml's sequential scans
// break by "first element wins" resolved by a find-first), the scale arithmetic
// runs in scalar code exactly as in the reference, and the per-element work
// (one multiply, one add, a truncation or rounding, integer packing) is
// lane-wise. q8_k's block sums are integer sums, exact in any order.
// Dequantizers are element-wise: scale factors in scalar code, broadcast, one
// product (and for q4_1/q5_1 one add) per element in ggml's order.
//
// Float -> integer conversions reproduce x86's cvttss2si semantics (see
// TruncToInt32X86 in codecs/quant_legacy.h) on every target, so degenerate
// blocks (a scale whose inverse overflows) give the reference's bytes too.
//
// The imatrix paths of q4_0/q5_0 (make_qx_quants) and q4_1/q5_1
// (make_qkx3_quants) are searches whose float sums must keep ggml's sequential
// order: they run one block per lane with the lane-wise searches of the k-quant
// quantizers (codecs/quant_k-inl.h: QxFitLanes, MinMaxFitLanes), as q6_k's and
// q4_k's imatrix paths do. iq4_nl/iq4_xs (plain and imatrix) run their
// 16-candidate search one 32-element sub-block per lane in the same way.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "codecs/quant_legacy_simd.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cmath>
#include <cstdint>
#include <cstring>  // std::memcpy, std::memset
#include <type_traits>  // std::conditional_t

#include "codecs/quant_k-inl.h"  // per-target lane-wise searches (bitsmith::kquant::HWY_NAMESPACE)
#include "codecs/quant_legacy.h"
#include "codecs/quant_search.h"
#include "formats/blocks_legacy.h"

HWY_BEFORE_NAMESPACE();
namespace bitsmith::legacy::HWY_NAMESPACE {

namespace hn = hwy::HWY_NAMESPACE;

// At most 16 float lanes: a 32-element block is then two vectors or more, and
// element j and j + 16 (the two nibbles of one byte) sit in the same lane of
// vectors k and k + 16/N.
using DF = hn::CappedTag<float, 16>;
using DI = hn::RebindToSigned<DF>;
using DU8 = hn::Rebind<uint8_t, DF>;  // N bytes
using DI8 = hn::Rebind<int8_t, DF>;
using VF = hn::Vec<DF>;
using VI = hn::Vec<DI>;

// See quant_k-inl.h: GCC emits no vzeroupper under Highway's target pragmas,
// and SSE code running afterwards (ggml's quantizers) would pay for the dirty
// upper state. Every exported kernel ends with this.
HWY_INLINE void ZeroUpper() {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  _mm256_zeroupper();
#endif
}

// x86 truncation per lane: NaN and |v| >= 2^31 give INT32_MIN (TruncToInt32X86).
// Out-of-range lanes are zeroed before ConvertTo: Highway's EMU128/SCALAR
// ConvertTo is a C cast, undefined for NaN and out-of-range values (UBSan
// finding of the ggml_diff fuzz target on the EMU128 target, a NaN row).
HWY_INLINE VI TruncX86(VF v) {
  const DF df;
  const DI di;
  const auto in_range =
      hn::And(hn::Ge(v, hn::Set(df, -2147483648.0f)), hn::Lt(v, hn::Set(df, 2147483648.0f)));
  return hn::IfThenElse(hn::RebindMask(di, in_range), hn::ConvertTo(di, hn::IfThenElseZero(in_range, v)),
                        hn::Set(di, INT32_MIN));
}
// The low byte of each lane, sign-extended: C++ `(int8_t)i`.
HWY_INLINE VI LowByteSigned(VI v) { return hn::ShiftRight<24>(hn::ShiftLeft<24>(v)); }
// roundf (ties away from zero), exact: |v - trunc(v)| is exact for finite v and
// NaN for inf (the comparison is then false and inf stays).
HWY_INLINE VF RoundHalfAway(VF v) {
  const DF df;
  const VF t = hn::Trunc(v);
  const auto up = hn::Ge(hn::Abs(hn::Sub(v, t)), hn::Set(df, 0.5f));
  return hn::IfThenElse(up, hn::Add(t, hn::CopySignToAbs(hn::Set(df, 1.0f), v)), t);
}
// N int32 lanes holding 0..255 (or any value, truncated first) -> N bytes.
HWY_INLINE void StoreBytes(VI v, uint8_t* HWY_RESTRICT p) {
  const DI di;
  hn::StoreU(hn::DemoteTo(DU8(), hn::And(v, hn::Set(di, 0xFF))), DU8(), p);
}
// N int32 lanes holding -128..127 -> N int8.
HWY_INLINE void StoreInt8(VI v, int8_t* HWY_RESTRICT p) {
  hn::StoreU(hn::DemoteTo(DI8(), v), DI8(), p);
}

// The block element of largest |x| with its sign, the first one on ties; +0 when
// all are zero (ggml: `if (amax < fabsf(v)) { amax = fabsf(v); max = v; }`).
// `n` is 32 or 256.
HWY_INLINE float SignedAbsMax(const float* HWY_RESTRICT x, int n) {
  const DF df;
  const int N = static_cast<int>(hn::Lanes(df));
  VF a = hn::Abs(hn::LoadU(df, x));
  for (int k = N; k < n; k += N) a = hn::Max(a, hn::Abs(hn::LoadU(df, x + k)));
  const VF amax = hn::MaxOfLanes(df, a);
  if (hn::GetLane(amax) == 0.0f) return 0.0f;
  for (int k = 0;; k += N) {  // the maximum is attained, so this terminates
    const intptr_t i = hn::FindFirstTrue(df, hn::Eq(hn::Abs(hn::LoadU(df, x + k)), amax));
    if (i >= 0) return x[k + i];
  }
}

// A block's extreme value as ggml's sequential `if (v < min) min = v` finds it:
// the value is the vector minimum; when it is zero its sign is that of the first
// element equal to zero (+0 and -0 compare equal, so the first one stays).
template <bool kMin>
HWY_INLINE float FirstExtreme(const float* HWY_RESTRICT x, VF extreme) {
  const DF df;
  const int N = static_cast<int>(hn::Lanes(df));
  const float e = hn::GetLane(extreme);
  if (e != 0.0f) return e;
  for (int k = 0;; k += N) {
    const intptr_t i = hn::FindFirstTrue(df, hn::Eq(hn::LoadU(df, x + k), extreme));
    if (i >= 0) return x[k + i];
  }
}

// Bit 4 of 32 int32 levels as the u32 qh (bit j = element j). `q` holds the
// 32/N vectors of one block in element order.
HWY_INLINE uint32_t HighBits(const VI* q) {
  const DI di;
  const int N = static_cast<int>(hn::Lanes(di));
  const VI bit4 = hn::Set(di, 0x10);
  uint32_t qh = 0;
  for (int k = 0; k < 32 / N; ++k) {
    uint8_t bits[8] = {0};
    hn::StoreMaskBits(di, hn::Ne(hn::And(q[k], bit4), hn::Zero(di)), bits);
    uint64_t b;
    std::memcpy(&b, bits, 8);
    const uint64_t lane_mask = N >= 64 ? ~0ull : ((1ull << N) - 1);
    qh |= static_cast<uint32_t>((b & lane_mask) << (k * N));
  }
  return qh;
}

// Packs 32 levels (32/N vectors) as nibble pairs (element j low, j + 16 high),
// ggml's `qs[j] = xi0 | (xi1 << 4)` on bytes: (lo & 0xFF) | ((hi << 4) & 0xFF).
// kMask4: mask both to 4 bits first (q5_0/q5_1: `(xi0 & 0x0F) | ((xi1 & 0x0F) << 4)`).
template <bool kMask4>
HWY_INLINE void PackNibbles(const VI* q, uint8_t* HWY_RESTRICT qs) {
  const DI di;
  const int N = static_cast<int>(hn::Lanes(di));
  const int half = 16 / N;
  for (int k = 0; k < half; ++k) {
    VI lo = q[k], hi = q[k + half];
    if constexpr (kMask4) {
      lo = hn::And(lo, hn::Set(di, 0x0F));
      hi = hn::And(hi, hn::Set(di, 0x0F));
    }
    StoreBytes(hn::Or(hn::And(lo, hn::Set(di, 0xFF)), hn::ShiftLeft<4>(hi)), qs + k * N);
  }
}

constexpr int kMaxVecs = 32;  // vectors per 32-element block (N >= 1)

// q4_0 (kNmax 8) / q5_0 (16), plain: quantize_row_q4_0_ref / q5_0_ref.
template <int kNmax>
HWY_INLINE void SymmetricLevels(const float* HWY_RESTRICT x, PackedF16* d_out, VI* q) {
  const DF df;
  const DI di;
  const int N = static_cast<int>(hn::Lanes(df));
  // 1.-2. Scale in scalar code, as in the reference.
  const float max = SignedAbsMax(x, kQK_Legacy);
  const float d = max / static_cast<float>(-kNmax);
  const float id = d != 0 ? 1.0f / d : 0.0f;
  d_out->set_f32(d);
  // 3. MIN(2*nmax-1, (int8_t)(x*id + nmax + 0.5)).
  const VF vid = hn::Set(df, id);
  const VF bias = hn::Set(df, static_cast<float>(kNmax) + 0.5f);
  const VI cap = hn::Set(di, 2 * kNmax - 1);
  for (int k = 0; k < kQK_Legacy / N; ++k) {
    const VF v = hn::Add(hn::Mul(hn::LoadU(df, x + k * N), vid), bias);
    q[k] = hn::Min(LowByteSigned(TruncX86(v)), cap);
  }
}

// q4_0 / q5_0 plain, a batch of blocks at a time: steps 1.-2. of
// SymmetricLevels (signed abs max, d = max / -nmax, id = 1/d) run one block per
// lane on the transposed batch (codecs/quant_k-inl.h Transpose), which replaces
// two horizontal reductions per block by lane-wise compares: `if (amax <
// |x|) { amax = |x|; max = x; }` in element order is a strict greater-than
// select per lane (first element wins ties, +0 stays when all are zero). Step 3
// then runs per block in the natural layout, as in SymmetricLevels.
namespace kq = bitsmith::kquant::HWY_NAMESPACE;

template <int kNmax>
HWY_INLINE void SymmetricScalesBatch(const float* HWY_RESTRICT x0, int64_t valid,
                                     float* HWY_RESTRICT d_out, float* HWY_RESTRICT id_out) {
  const kq::DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  HWY_ALIGN float xt[kQK_Legacy * kq::kMaxN];
  HWY_ALIGN int32_t offs[kq::kMaxN];
  for (int64_t b = 0; b < N; ++b) offs[b] = static_cast<int32_t>(kQK_Legacy * (b < valid ? b : valid - 1));
  kq::Transpose(x0, offs, kQK_Legacy, xt);
  kq::VF amax = hn::Zero(d), max = hn::Zero(d);
  for (int e = 0; e < kQK_Legacy; ++e) {
    const kq::VF x = hn::Load(d, xt + e * N);
    const auto gt = hn::Gt(hn::Abs(x), amax);
    amax = hn::IfThenElse(gt, hn::Abs(x), amax);
    max = hn::IfThenElse(gt, x, max);
  }
  const kq::VF vd = hn::Div(max, hn::Set(d, static_cast<float>(-kNmax)));
  const kq::VF vid = hn::IfThenZeroElse(hn::Eq(vd, hn::Zero(d)), hn::Div(hn::Set(d, 1.0f), vd));
  hn::Store(vd, d, d_out);
  hn::Store(vid, d, id_out);
}

// Step 3 of SymmetricLevels for a block whose id is known.
template <int kNmax>
HWY_INLINE void SymmetricLevelsWithScale(const float* HWY_RESTRICT x, float id, VI* q) {
  const DF df;
  const DI di;
  const int N = static_cast<int>(hn::Lanes(df));
  const VF vid = hn::Set(df, id);
  const VF bias = hn::Set(df, static_cast<float>(kNmax) + 0.5f);
  const VI cap = hn::Set(di, 2 * kNmax - 1);
  if (std::isfinite(id)) {
    // |x * id| <= |max * id| ~ nmax, so x*id + nmax + 0.5 is in [0, 2*nmax + 1]:
    // the x86 truncation is a plain conversion and the int8 wrap a no-op.
    for (int k = 0; k < kQK_Legacy / N; ++k) {
      const VF v = hn::Add(hn::Mul(hn::LoadU(df, x + k * N), vid), bias);
      q[k] = hn::Min(hn::ConvertTo(di, v), cap);
    }
    return;
  }
  for (int k = 0; k < kQK_Legacy / N; ++k) {  // id = inf (d subnormal): x*id may be NaN or inf
    const VF v = hn::Add(hn::Mul(hn::LoadU(df, x + k * N), vid), bias);
    q[k] = hn::Min(LowByteSigned(TruncX86(v)), cap);
  }
}

// q4_1 (kNmax 15) / q5_1 (31), plain: quantize_row_q4_1_ref / q5_1_ref.
template <int kNmax>
HWY_INLINE void AffineLevels(const float* HWY_RESTRICT x, PackedF16* d_out, PackedF16* m_out,
                             VI* q) {
  const DF df;
  const DI di;
  const int N = static_cast<int>(hn::Lanes(df));
  VF vmin = hn::LoadU(df, x), vmax = vmin;
  for (int k = 1; k < kQK_Legacy / N; ++k) {
    const VF v = hn::LoadU(df, x + k * N);
    vmin = hn::Min(vmin, v);
    vmax = hn::Max(vmax, v);
  }
  const float min = FirstExtreme<true>(x, hn::MinOfLanes(df, vmin));
  const float max = FirstExtreme<false>(x, hn::MaxOfLanes(df, vmax));
  const float d = (max - min) / static_cast<float>(kNmax);
  const float id = d != 0 ? 1.0f / d : 0.0f;
  d_out->set_f32(d);
  m_out->set_f32(min);
  const VF vid = hn::Set(df, id), vm = hn::Set(df, min), half = hn::Set(df, 0.5f);
  for (int k = 0; k < kQK_Legacy / N; ++k) {
    const VF v = hn::Add(hn::Mul(hn::Sub(hn::LoadU(df, x + k * N), vm), vid), half);
    if constexpr (kNmax == 15) q[k] = hn::Min(LowByteSigned(TruncX86(v)), hn::Set(di, 15));
    else q[k] = TruncX86(v);  // (uint8_t): the low byte, taken when packing
  }
}

// q4_1 / q5_1 plain, a batch of blocks at a time (as SymmetricScalesBatch):
// ggml's sequential `if (v < min) min = v; if (v > max) max = v;` from
// +-FLT_MAX is a strict select per lane on the transposed batch; then d =
// (max - min) / nmax and id = d ? 1/d : 0, lane-wise.
template <int kNmax>
HWY_INLINE void AffineScalesBatch(const float* HWY_RESTRICT x0, int64_t valid, float* HWY_RESTRICT d_out,
                                  float* HWY_RESTRICT id_out, float* HWY_RESTRICT min_out) {
  const kq::DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  HWY_ALIGN float xt[kQK_Legacy * kq::kMaxN];
  HWY_ALIGN int32_t offs[kq::kMaxN];
  for (int64_t b = 0; b < N; ++b) offs[b] = static_cast<int32_t>(kQK_Legacy * (b < valid ? b : valid - 1));
  kq::Transpose(x0, offs, kQK_Legacy, xt);
  kq::VF vmin = hn::Set(d, 3.40282347e+38f), vmax = hn::Set(d, -3.40282347e+38f);
  for (int e = 0; e < kQK_Legacy; ++e) {
    const kq::VF x = hn::Load(d, xt + e * N);
    vmin = hn::IfThenElse(hn::Lt(x, vmin), x, vmin);
    vmax = hn::IfThenElse(hn::Gt(x, vmax), x, vmax);
  }
  const kq::VF vd = hn::Div(hn::Sub(vmax, vmin), hn::Set(d, static_cast<float>(kNmax)));
  const kq::VF vid = hn::IfThenZeroElse(hn::Eq(vd, hn::Zero(d)), hn::Div(hn::Set(d, 1.0f), vd));
  hn::Store(vd, d, d_out);
  hn::Store(vid, d, id_out);
  hn::Store(vmin, d, min_out);
}

// Step 3 of AffineLevels for a block whose d, id and min are known.
template <int kNmax>
HWY_INLINE void AffineLevelsWithScale(const float* HWY_RESTRICT x, float dd, float id, float min, VI* q) {
  const DF df;
  const DI di;
  const int N = static_cast<int>(hn::Lanes(df));
  const VF vid = hn::Set(df, id), vm = hn::Set(df, min), half = hn::Set(df, 0.5f);
  if (std::isfinite(dd) && std::isfinite(id)) {
    // max - min finite: 0 <= (x - min) * id <= ~nmax, so the truncation is a
    // plain conversion and neither the int8 nor the uint8 wrap changes it.
    for (int k = 0; k < kQK_Legacy / N; ++k) {
      const VI l = hn::ConvertTo(di, hn::Add(hn::Mul(hn::Sub(hn::LoadU(df, x + k * N), vm), vid), half));
      q[k] = kNmax == 15 ? hn::Min(l, hn::Set(di, 15)) : l;
    }
    return;
  }
  for (int k = 0; k < kQK_Legacy / N; ++k) {
    const VF v = hn::Add(hn::Mul(hn::Sub(hn::LoadU(df, x + k * N), vm), vid), half);
    if constexpr (kNmax == 15) q[k] = hn::Min(LowByteSigned(TruncX86(v)), hn::Set(di, 15));
    else q[k] = TruncX86(v);  // (uint8_t): the low byte, taken when packing
  }
}

// q8_0 / q8_1: amax, d = amax/127, qs = roundf(x*id) as int8. Returns d.
HWY_INLINE float Q8Levels(const float* HWY_RESTRICT x, int8_t* HWY_RESTRICT qs, VI* sum) {
  const DF df;
  const int N = static_cast<int>(hn::Lanes(df));
  VF a = hn::Abs(hn::LoadU(df, x));
  for (int k = N; k < kQK_Legacy; k += N) a = hn::Max(a, hn::Abs(hn::LoadU(df, x + k)));
  const float amax = hn::GetLane(hn::MaxOfLanes(df, a));
  const float d = amax / 127.0f;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  const VF vid = hn::Set(df, id);
  for (int k = 0; k < kQK_Legacy; k += N) {
    const VI q = LowByteSigned(TruncX86(RoundHalfAway(hn::Mul(hn::LoadU(df, x + k), vid))));
    StoreInt8(q, qs + k);
    if (sum != nullptr) *sum = hn::Add(*sum, q);
  }
  return d;
}

// ===========================================================================
// q4_0 q5_0 q4_1 q5_1 as one row each: the level count of the plain and imatrix
// paths (nmax), affine (d and m: q4_1/q5_1) or symmetric (d only), and the
// fifth bit of q5_0/q5_1 in qh. One kernel per path serves all four; `if
// constexpr` picks each type's steps, so the float operations and their order
// are those of the type's own ggml function.
// ===========================================================================
enum class LegacyKind { kQ4_0, kQ5_0, kQ4_1, kQ5_1 };

template <LegacyKind kKind>
struct KindTraits {
  static constexpr bool kAffine = kKind == LegacyKind::kQ4_1 || kKind == LegacyKind::kQ5_1;
  static constexpr bool kFiveBit = kKind == LegacyKind::kQ5_0 || kKind == LegacyKind::kQ5_1;
  // q4_0 8, q5_0 16 (levels nmax + x/d, x/d in [-nmax, nmax)); q4_1 15, q5_1 31.
  static constexpr int kNmax = kAffine ? (kFiveBit ? 31 : 15) : (kFiveBit ? 16 : 8);
  using Block = std::conditional_t<kAffine, std::conditional_t<kFiveBit, BlockQ5_1, BlockQ4_1>,
                                   std::conditional_t<kFiveBit, BlockQ5_0, BlockQ4_0>>;
};

// ===========================================================================
// Imatrix paths: one 32-element block per lane.
//
// ggml (quantize_row_q4_0_impl ... q5_1_impl), per row:
//   1. sigma2 = sum(x^2) / n_per_row over the whole row, sequentially;
//   2. per block, weight[j] = qw[j] * sqrtf(sigma2 + x[j]^2);
//   3. q4_0/q5_0: d = make_qx_quants(32, nmax 8/16, rmse_type 1, weight), the
//      levels being the search's own; q4_1/q5_1: d = make_qkx3_quants(32, nmax
//      15/31, weight, rmin -0.9, rdelta 0.05, nstep 36), m = -the_min;
//   4. fp16 d (and m), levels packed as in the plain path.
// Steps 2-3 run lane-wise (each lane the scalar sequence of its block: IEEE
// mul/add/sqrt/div are exact per lane, no FMA); step 1 is a scalar sequential
// sum per row, computed once; step 4 is the scalar packers of formats/.
// ===========================================================================

// Step 1 (RowSigma2 of the reference: the same sequential float sum).
inline float RowSigma2Seq(const float* x, int64_t n_per_row) {
  float sum_x2 = 0;
  for (int64_t j = 0; j < n_per_row; ++j) sum_x2 += x[j] * x[j];
  return sum_x2 / static_cast<float>(n_per_row);
}

template <LegacyKind kKind>
void QuantizeImatrixLanes(const float* HWY_RESTRICT src, void* dst, int64_t nrows, int64_t n_per_row,
                          const float* HWY_RESTRICT imatrix) {
  using T = KindTraits<kKind>;
  constexpr bool kAffine = T::kAffine;
  constexpr int kNmax = T::kNmax;
  const kq::DF d;
  const kq::DI di;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const int64_t nb_row = n_per_row / kQK_Legacy;
  const int64_t nblocks = nrows * nb_row;
  HWY_ALIGN float xt[kQK_Legacy * kq::kMaxN], wt[kQK_Legacy * kq::kMaxN];
  HWY_ALIGN float scratch[2 * kQK_Legacy * kq::kMaxN];
  HWY_ALIGN float sigma[kq::kMaxN], scale_lanes[kq::kMaxN], min_lanes[kq::kMaxN];
  HWY_ALIGN int32_t x_offs[kq::kMaxN], qw_offs[kq::kMaxN], levels[kQK_Legacy * kq::kMaxN];
  int64_t sigma_row = -1;  // row whose sigma2 is cached (rows are visited in order)
  float sigma_value = 0;
  for (int64_t b0 = 0; b0 < nblocks; b0 += N) {
    const int64_t valid = nblocks - b0 < N ? nblocks - b0 : N;
    for (int64_t b = 0; b < N; ++b) {  // padding lanes repeat the last block
      const int64_t blk = b0 + (b < valid ? b : valid - 1);
      const int64_t row = blk / nb_row;
      if (row != sigma_row) {
        sigma_row = row;
        sigma_value = RowSigma2Seq(src + row * n_per_row, n_per_row);  // 1.
      }
      sigma[b] = sigma_value;
      x_offs[b] = static_cast<int32_t>(kQK_Legacy * (blk - b0));
      qw_offs[b] = static_cast<int32_t>(kQK_Legacy * (blk % nb_row));
    }
    kq::Transpose(src + kQK_Legacy * b0, x_offs, kQK_Legacy, xt);
    kq::Transpose(imatrix, qw_offs, kQK_Legacy, wt);
    // 2. weight = qw * sqrt(sigma2 + x*x), lane-wise.
    const kq::VF vsigma = hn::Load(d, sigma);
    for (int e = 0; e < kQK_Legacy; ++e) {
      const kq::VF x = hn::Load(d, xt + e * N);
      hn::Store(hn::Mul(hn::Load(d, wt + e * N), hn::Sqrt(hn::Add(vsigma, hn::Mul(x, x)))), d, wt + e * N);
    }
    // 3. The search, and its levels.
    if constexpr (kAffine) {
      const kq::MinMaxLanes fit = kq::MinMaxFitLanes<true, false>(
          kQK_Legacy, quant::ImatrixMinMaxSearch(kNmax), xt, wt, scratch);
      hn::Store(fit.scale, d, scale_lanes);
      hn::Store(hn::Neg(fit.the_min), d, min_lanes);  // m = -the_min
      for (int e = 0; e < kQK_Legacy; ++e) {
        const kq::VF x = hn::Load(d, xt + e * N);
        const kq::VI l = kq::ClampI(kq::NearestIntV(d, hn::Mul(fit.lev_iscale, hn::Sub(x, fit.lev_min))), 0, kNmax);
        hn::Store(l, di, levels + e * N);
      }
    } else {
      const kq::QxLanes fit = kq::QxFitLanes(kQK_Legacy, kNmax, xt, wt, scratch);
      hn::Store(fit.scale, d, scale_lanes);
      for (int e = 0; e < kQK_Legacy; ++e)
        hn::Store(kq::QxLevelsV(hn::Load(d, xt + e * N), fit.lev_iscale, kNmax), di, levels + e * N);
    }
    // 4. Store the valid lanes' blocks.
    for (int64_t b = 0; b < valid; ++b) {
      uint8_t L[kQK_Legacy];
      for (int j = 0; j < kQK_Legacy; ++j) L[j] = static_cast<uint8_t>(levels[j * N + b]);
      typename T::Block& blk = static_cast<typename T::Block*>(dst)[b0 + b];
      blk.d.set_f32(scale_lanes[b]);
      if constexpr (kAffine) blk.m.set_f32(min_lanes[b]);
      if constexpr (T::kFiveBit) PackQ5Levels(L, blk.qs, blk.qh);
      else PackNibbles32(L, blk.qs);
    }
  }
  ZeroUpper();
}

// ===========================================================================
// Exported kernels. The plain paths run over nrows * n_per_row values as one
// sequence of blocks; the imatrix paths row by row (sigma2 is per row).
// ===========================================================================

// The plain path of q4_0 / q5_0 / q4_1 / q5_1 (quantize_row_q4_0_ref ...
// q5_1_ref); with an imatrix, QuantizeImatrixLanes. Blocks are visited in
// order, N at a time: the batch's scales come from SymmetricScalesBatch /
// AffineScalesBatch, then each block stores its fp16 d (and m), computes its
// levels (step 3) and packs them: nibble pairs, plus the fifth bits in qh for
// q5_0/q5_1.
template <LegacyKind kKind>
void QuantizeLegacyLanes(const float* HWY_RESTRICT src, void* dst, int64_t nrows, int64_t n_per_row,
                         const float* imatrix) {
  using T = KindTraits<kKind>;
  if (imatrix != nullptr) return QuantizeImatrixLanes<kKind>(src, dst, nrows, n_per_row, imatrix);
  auto* y = static_cast<typename T::Block*>(dst);
  VI q[kMaxVecs];
  const int64_t nblocks = nrows * (n_per_row / kQK_Legacy);
  const int64_t N = static_cast<int64_t>(hn::Lanes(kq::DF()));
  HWY_ALIGN float dl[kq::kMaxN], idl[kq::kMaxN];
  [[maybe_unused]] HWY_ALIGN float minl[kq::kMaxN];  // affine kinds only
  for (int64_t b0 = 0; b0 < nblocks; b0 += N) {
    const int64_t valid = nblocks - b0 < N ? nblocks - b0 : N;
    if constexpr (T::kAffine) AffineScalesBatch<T::kNmax>(src + b0 * kQK_Legacy, valid, dl, idl, minl);
    else SymmetricScalesBatch<T::kNmax>(src + b0 * kQK_Legacy, valid, dl, idl);
    for (int64_t b = 0; b < valid; ++b) {
      const int64_t i = b0 + b;
      const float* x = src + i * kQK_Legacy;
      y[i].d.set_f32(dl[b]);
      if constexpr (T::kAffine) {
        y[i].m.set_f32(minl[b]);
        AffineLevelsWithScale<T::kNmax>(x, dl[b], idl[b], minl[b], q);
      } else {
        SymmetricLevelsWithScale<T::kNmax>(x, idl[b], q);
      }
      PackNibbles<T::kFiveBit>(q, y[i].qs);
      if constexpr (T::kFiveBit) {
        const uint32_t qh = HighBits(q);
        std::memcpy(y[i].qh, &qh, 4);  // little-endian host
      }
    }
  }
  ZeroUpper();
}

void QuantizeQ8_0Impl(const float* HWY_RESTRICT src, void* dst, int64_t nrows, int64_t n_per_row,
                      const float*) {
  auto* y = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < nrows * (n_per_row / kQK_Legacy); ++i)
    y[i].d.set_f32(Q8Levels(src + i * kQK_Legacy, y[i].qs, nullptr));
  ZeroUpper();
}

void QuantizeQ8_1Impl(const float* HWY_RESTRICT src, void* dst, int64_t nrows, int64_t n_per_row,
                      const float*) {
  const DI di;
  auto* y = static_cast<BlockQ8_1*>(dst);
  for (int64_t i = 0; i < nrows * (n_per_row / kQK_Legacy); ++i) {
    VI sum = hn::Zero(di);
    const float d = Q8Levels(src + i * kQK_Legacy, y[i].qs, &sum);
    y[i].d.set_f32(d);
    y[i].s.set_f32(static_cast<float>(hn::GetLane(hn::SumOfLanes(di, sum))) * d);
  }
  ZeroUpper();
}

// quantize_row_q8_K_ref: signed abs max, iscale = -127/max, qs = MIN(127,
// nearest_int(iscale*x)) (the 1.5*2^23 bit trick, lane-wise), int16 sums of 16,
// d = 1/iscale. All-zero blocks are all-zero bytes.
void QuantizeQ8KImpl(const float* HWY_RESTRICT src, void* dst, int64_t nrows, int64_t n_per_row,
                     const float*) {
  const DF df;
  const DI di;
  const int N = static_cast<int>(hn::Lanes(df));
  auto* y = static_cast<BlockQ8K*>(dst);
  const VF magic = hn::Set(df, 12582912.f);
  const VI mant = hn::Set(di, 0x007FFFFF), off = hn::Set(di, 0x00400000), cap = hn::Set(di, 127);
  for (int64_t i = 0; i < nrows * (n_per_row / kQK_K); ++i) {
    const float* x = src + i * kQK_K;
    BlockQ8K& b = y[i];
    const float max = SignedAbsMax(x, kQK_K);
    if (max == 0) {
      std::memset(&b, 0, sizeof b);
      continue;
    }
    const float iscale = -127.f / max;
    const VF vs = hn::Set(df, iscale);
    for (int g = 0; g < kQK_K / 16; ++g) {
      VI sum = hn::Zero(di);
      for (int k = 16 * g; k < 16 * g + 16; k += N) {
        const VF biased = hn::Add(hn::Mul(vs, hn::LoadU(df, x + k)), magic);
        const VI v = hn::Sub(hn::And(hn::BitCast(di, biased), mant), off);  // nearest_int
        const VI q = LowByteSigned(hn::Min(v, cap));                       // int8 store
        StoreInt8(q, b.qs + k);
        sum = hn::Add(sum, q);
      }
      StoreQ8KBsum(b.bsums, g, static_cast<int16_t>(hn::GetLane(hn::SumOfLanes(di, sum))));
    }
    StoreF32LE(b.d, 1 / iscale);
  }
  ZeroUpper();
}

// --- Dequantizers -----------------------------------------------------------

// N nibbles of a 16-byte nibble array: elements e..e+N-1 of the 32 (e a
// multiple of N), as int32 lanes.
HWY_INLINE VI LoadNibbles(const uint8_t* HWY_RESTRICT qs, int e) {
  const DI di;
  const VI b = hn::PromoteTo(di, hn::LoadU(DU8(), qs + (e & 15)));
  return e < 16 ? hn::And(b, hn::Set(di, 0x0F)) : hn::ShiftRight<4>(b);
}
// Bit 4 for elements e..e+N-1 from the u32 qh.
HWY_INLINE VI HighBit(uint32_t qh, int e) {
  const DI di;
  const hn::RebindToUnsigned<DI> du;
  const auto shifted = hn::Set(du, qh) >> hn::Iota(du, static_cast<uint32_t>(e));
  return hn::ShiftLeft<4>(hn::And(hn::BitCast(di, shifted), hn::Set(di, 1)));
}

// q4_0 / q5_0: y = float(q - nmax) * d (dequantize_row_q4_0 / q5_0);
// q4_1 / q5_1: y = float(q) * d + m (dequantize_row_q4_1 / q5_1). q is the
// nibble, with bit 4 from qh for q5_0/q5_1.
template <LegacyKind kKind>
void DequantizeLegacyLanes(const void* src, float* HWY_RESTRICT y, int64_t n) {
  using T = KindTraits<kKind>;
  const DF df;
  const DI di;
  const int N = static_cast<int>(hn::Lanes(df));
  const auto* x = static_cast<const typename T::Block*>(src);
  for (int64_t i = 0; i < n / kQK_Legacy; ++i, y += kQK_Legacy) {
    const VF d = hn::Set(df, x[i].d.f32());
    [[maybe_unused]] VF m = hn::Zero(df);
    if constexpr (T::kAffine) m = hn::Set(df, x[i].m.f32());
    [[maybe_unused]] uint32_t qh = 0;
    if constexpr (T::kFiveBit) qh = LoadQh(x[i].qh);
    for (int e = 0; e < kQK_Legacy; e += N) {
      VI q = LoadNibbles(x[i].qs, e);
      if constexpr (T::kFiveBit) q = hn::Or(q, HighBit(qh, e));
      if constexpr (T::kAffine) {
        // p + m, p's NaN when p is NaN (AffineLevel in quant_legacy_ref.cc: the
        // compiler may swap Add's operands, and x86 returns the first NaN).
        const VF p = hn::Mul(hn::ConvertTo(df, q), d);
        hn::StoreU(hn::IfThenElse(hn::IsNaN(p), p, hn::Add(p, m)), df, y + e);
      }
      else hn::StoreU(hn::Mul(hn::ConvertTo(df, hn::Sub(q, hn::Set(di, T::kNmax))), d), df, y + e);
    }
  }
  ZeroUpper();
}

// The exported kernels of the four kinds (named, for HWY_EXPORT).
#define BITSMITH_LEGACY_KIND_KERNELS(Name)                                                     \
  void Quantize##Name##Impl(const float* HWY_RESTRICT src, void* dst, int64_t nrows,          \
                            int64_t n_per_row, const float* imatrix) {                        \
    QuantizeLegacyLanes<LegacyKind::k##Name>(src, dst, nrows, n_per_row, imatrix);           \
  }                                                                                          \
  void Dequantize##Name##Impl(const void* src, float* HWY_RESTRICT y, int64_t n) {            \
    DequantizeLegacyLanes<LegacyKind::k##Name>(src, y, n);                                   \
  }
BITSMITH_LEGACY_KIND_KERNELS(Q4_0)
BITSMITH_LEGACY_KIND_KERNELS(Q5_0)
BITSMITH_LEGACY_KIND_KERNELS(Q4_1)
BITSMITH_LEGACY_KIND_KERNELS(Q5_1)
#undef BITSMITH_LEGACY_KIND_KERNELS

// y = float(qs) * d for q8_0 / q8_1 (kStride = block bytes, qs at kOffset).
template <int kStride, int kOffset>
HWY_INLINE void DequantizeQ8(const uint8_t* HWY_RESTRICT x, float* HWY_RESTRICT y, int64_t n) {
  const DF df;
  const DI di;
  const int N = static_cast<int>(hn::Lanes(df));
  for (int64_t i = 0; i < n / kQK_Legacy; ++i, x += kStride, y += kQK_Legacy) {
    PackedF16 dh;
    std::memcpy(&dh, x, 2);
    const VF d = hn::Set(df, dh.f32());
    const auto* qs = reinterpret_cast<const int8_t*>(x + kOffset);
    for (int e = 0; e < kQK_Legacy; e += N)
      hn::StoreU(hn::Mul(hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(DI8(), qs + e))), d), df,
                 y + e);
  }
}
void DequantizeQ8_0Impl(const void* src, float* HWY_RESTRICT y, int64_t n) {
  DequantizeQ8<sizeof(BlockQ8_0), 2>(static_cast<const uint8_t*>(src), y, n);
  ZeroUpper();
}
void DequantizeQ8_1Impl(const void* src, float* HWY_RESTRICT y, int64_t n) {
  DequantizeQ8<sizeof(BlockQ8_1), 4>(static_cast<const uint8_t*>(src), y, n);
  ZeroUpper();
}

// The iq4 grid as floats, gathered by level.
alignas(64) constexpr float kIq4Float[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                              1,    13,   25,  38,  53,  69,  89,  113};

void DequantizeIq4NlImpl(const void* src, float* HWY_RESTRICT y, int64_t n) {
  const DF df;
  const int N = static_cast<int>(hn::Lanes(df));
  const auto* x = static_cast<const BlockIq4Nl*>(src);
  for (int64_t i = 0; i < n / kQK_Legacy; ++i, y += kQK_Legacy) {
    const VF d = hn::Set(df, x[i].d.f32());
    for (int e = 0; e < kQK_Legacy; e += N)
      hn::StoreU(hn::Mul(d, hn::GatherIndex(df, kIq4Float, LoadNibbles(x[i].qs, e))), df, y + e);
  }
  ZeroUpper();
}

void DequantizeIq4XsImpl(const void* src, float* HWY_RESTRICT y, int64_t n) {
  const DF df;
  const int N = static_cast<int>(hn::Lanes(df));
  const auto* x = static_cast<const BlockIq4Xs*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float d = x[i].d.f32();
    for (int ib = 0; ib < 8; ++ib, y += 32) {
      const int ls = UnpackIq4XsScale(x[i].scales_h, x[i].scales_l, ib);
      const VF dl = hn::Set(df, d * static_cast<float>(ls - 32));
      for (int e = 0; e < 32; e += N)
        hn::StoreU(hn::Mul(dl, hn::GatherIndex(df, kIq4Float, LoadNibbles(x[i].qs + 16 * ib, e))),
                   df, y + e);
    }
  }
  ZeroUpper();
}

void DequantizeQ8KImpl(const void* src, float* HWY_RESTRICT y, int64_t n) {
  const DF df;
  const DI di;
  const int N = static_cast<int>(hn::Lanes(df));
  const auto* x = static_cast<const BlockQ8K*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i, y += kQK_K) {
    const VF d = hn::Set(df, LoadF32LE(x[i].d));
    for (int e = 0; e < kQK_K; e += N)
      hn::StoreU(hn::Mul(d, hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(DI8(), x[i].qs + e)))),
                 df, y + e);
  }
  ZeroUpper();
}

// ===========================================================================
// iq4_nl / iq4_xs: ggml's quantize_row_iq4_nl_impl (ntry 7), as the reference
// Iq4NlImpl (codecs/quant_legacy_ref.cc) describes it. Step 2 -- the per
// 32-element sub-block search, 16 candidate scales with a nearest-value lookup
// per element -- runs one sub-block per lane (each lane the scalar sequence of
// its sub-block: same sums in the same order, no FMA); sigma2 (step 1) and the
// final requantization and packing (steps 3-4) run per super-block in scalar
// code, exactly as in the reference.
// ===========================================================================

// The table value best_index_int8 picks, on every lane. For val[0] < x <
// val[15] the binary search ends with val[ml] <= x < val[ml + 1] (ml the largest
// such index): found here by an ascending select chain, then ggml's tie rule
// `x - val[ml] < val[ml+1] - x ? ml : ml + 1`; x <= val[0] gives val[0], x >=
// val[15] and NaN give val[15] (NaN fails every comparison of the search).
HWY_INLINE kq::VF Iq4NearestValue(kq::VF x) {
  const kq::DF d;
  kq::VF lo = hn::Set(d, kIq4NlValues[0]), hi = hn::Set(d, kIq4NlValues[1]);
  for (int k = 1; k < 15; ++k) {
    const auto ge = hn::Ge(x, hn::Set(d, kIq4NlValues[k]));
    lo = hn::IfThenElse(ge, hn::Set(d, kIq4NlValues[k]), lo);
    hi = hn::IfThenElse(ge, hn::Set(d, kIq4NlValues[k + 1]), hi);
  }
  kq::VF v = hn::IfThenElse(hn::Lt(hn::Sub(x, lo), hn::Sub(hi, x)), lo, hi);
  v = hn::IfThenElse(hn::Le(x, hn::Set(d, kIq4NlValues[0])), hn::Set(d, kIq4NlValues[0]), v);
  return hn::IfThenElse(hn::Or(hn::Ge(x, hn::Set(d, kIq4NlValues[15])), hn::IsNaN(x)),
                        hn::Set(d, kIq4NlValues[15]), v);
}

// Step 2 on N sub-blocks (xt, wt: 32 rows of N, transposed): the scale of each
// lane's sub-block, 0 where amax < kGroupMaxEps.
HWY_INLINE kq::VF Iq4SearchLanes(const float* HWY_RESTRICT xt, const float* HWY_RESTRICT wt) {
  const kq::DF d;
  const size_t N = hn::Lanes(d);
  const kq::VF zero = hn::Zero(d);
  // Signed abs max, first on ties.
  kq::VF amax = zero, max = zero;
  for (int e = 0; e < kQK_Legacy; ++e) {
    const kq::VF x = hn::Load(d, xt + e * N);
    const auto gt = hn::Gt(hn::Abs(x), amax);
    amax = hn::IfThenElse(gt, hn::Abs(x), amax);
    max = hn::IfThenElse(gt, x, max);
  }
  // sumqx = sum (w*q)*x, sumq2 = sum (w*q)*q for the levels of inverse scale id.
  auto sums = [&](kq::VF id, kq::VF& sumqx, kq::VF& sumq2) {
    sumqx = zero;
    sumq2 = zero;
    for (int e = 0; e < kQK_Legacy; ++e) {
      const kq::VF x = hn::Load(d, xt + e * N);
      const kq::VF q = Iq4NearestValue(hn::Mul(id, x));
      const kq::VF wq = hn::Mul(hn::Load(d, wt + e * N), q);
      sumqx = hn::Add(sumqx, hn::Mul(wq, x));
      sumq2 = hn::Add(sumq2, hn::Mul(wq, q));
    }
  };
  // d = -max / values[0], id = 1/d; least-squares scale of its levels.
  const kq::VF d0 = hn::Div(hn::Neg(max), hn::Set(d, static_cast<float>(kIq4NlValues[0])));
  kq::VF sumqx, sumq2;
  sums(hn::Div(hn::Set(d, 1.0f), d0), sumqx, sumq2);
  kq::VF scale = hn::IfThenElseZero(hn::Gt(sumq2, zero), hn::Div(sumqx, sumq2));
  kq::VF best = hn::Mul(scale, sumqx);
  // Trials id = (itry + values[0]) / max, itry = -7..7.
  for (int itry = -7; itry <= 7; ++itry) {
    const kq::VF id = hn::Div(hn::Set(d, static_cast<float>(itry + kIq4NlValues[0])), max);
    sums(id, sumqx, sumq2);
    const auto better = hn::And(hn::Gt(sumq2, zero), hn::Gt(hn::Mul(sumqx, sumqx), hn::Mul(best, sumq2)));
    const kq::VF new_scale = hn::Div(sumqx, sumq2);
    scale = hn::IfThenElse(better, new_scale, scale);
    best = hn::IfThenElse(better, hn::Mul(new_scale, sumqx), best);
  }
  return hn::IfThenZeroElse(hn::Lt(amax, hn::Set(d, quant::kGroupMaxEps)), scale);
}

// Steps 3-4 for one super-block, given its sub-block scales (scalar, as in the
// reference).
inline void Iq4Finish(int super_size, const float* x, const float* scales, PackedF16* dh, uint8_t* q4,
                      uint8_t* scales_h, uint8_t* scales_l) {
  constexpr int kBlock = 32;
  uint8_t L[kQK_K];
  const int nsub = super_size / kBlock;
  if (nsub > 1) {  // iq4_xs
    float max_scale = 0, amax_scale = 0;
    for (int ib = 0; ib < nsub; ++ib) {
      const float abs_d = std::fabs(scales[ib]);
      if (abs_d > amax_scale) {
        amax_scale = abs_d;
        max_scale = scales[ib];
      }
    }
    const float d = -max_scale / 32;
    dh->set_f32(d);
    const float id = d != 0 ? 1 / d : 0.f;
    uint8_t ls[kQK_K / kBlock];
    for (int ib = 0; ib < nsub; ++ib) {
      int l = quant::NearestInt(id * scales[ib]);
      l = l < -32 ? -32 : (l > 31 ? 31 : l);
      const float dl = d * static_cast<float>(l);
      const float idl = dl != 0 ? 1 / dl : 0.f;
      for (int j = 0; j < kBlock; ++j)
        L[ib * kBlock + j] = static_cast<uint8_t>(legacy::BestIndexIq4(idl * x[ib * kBlock + j]));
      ls[ib] = static_cast<uint8_t>(l + 32);
    }
    PackIq4XsScales(ls, scales_h, scales_l);
  } else {  // iq4_nl
    dh->set_f32(scales[0]);
    const float id = scales[0] != 0 ? 1 / scales[0] : 0;
    for (int j = 0; j < super_size; ++j) L[j] = static_cast<uint8_t>(legacy::BestIndexIq4(id * x[j]));
  }
  for (int i = 0; i < super_size / 32; ++i) PackNibbles32(L + 32 * i, q4 + 16 * i);
}

// Groups of whole super-blocks holding a multiple of N sub-blocks; each group's
// sub-blocks are searched N at a time, then its super-blocks finished.
template <int kSuper>
void QuantizeIq4Lanes(const float* HWY_RESTRICT src, void* dst, int64_t nrows, int64_t n_per_row,
                      const float* HWY_RESTRICT imatrix) {
  constexpr int kNsub = kSuper / kQK_Legacy;
  constexpr int kMaxGroup = kNsub > static_cast<int>(kq::kMaxN) ? kNsub : static_cast<int>(kq::kMaxN);
  const kq::DF d;
  const int N = static_cast<int>(hn::Lanes(d));
  const int group_subs = kNsub > N ? kNsub : N;
  const int group_supers = group_subs / kNsub;
  const int64_t subs_per_row = n_per_row / kQK_Legacy;
  const int64_t nsupers = nrows * (n_per_row / kSuper);
  HWY_ALIGN float xt[kQK_Legacy * kq::kMaxN], wt[kQK_Legacy * kq::kMaxN];
  HWY_ALIGN float sigma_lanes[kq::kMaxN];
  HWY_ALIGN int32_t x_offs[kq::kMaxN], qw_offs[kq::kMaxN];
  HWY_ALIGN float scales[kMaxGroup];
  float sigma2[kMaxGroup];
  for (int64_t s0 = 0; s0 < nsupers; s0 += group_supers) {
    const int valid_supers = static_cast<int>(nsupers - s0 < group_supers ? nsupers - s0 : group_supers);
    const int valid_subs = valid_supers * kNsub;
    const float* base = src + s0 * kSuper;
    // 1. sigma2 = 2 * sum x^2 / super_size, sequentially, per super-block.
    for (int s = 0; s < valid_supers; ++s) {
      float acc = 0;
      for (int j = 0; j < kSuper; ++j) acc += base[s * kSuper + j] * base[s * kSuper + j];
      acc *= 2.f / static_cast<float>(kSuper);
      sigma2[s] = acc;
    }
    for (int o = 0; o < group_subs; o += N) {
      for (int b = 0; b < N; ++b) {  // padding lanes repeat the last sub-block
        const int sub = o + b < valid_subs ? o + b : valid_subs - 1;
        x_offs[b] = kQK_Legacy * sub;
        qw_offs[b] = static_cast<int32_t>(kQK_Legacy * ((s0 * kNsub + sub) % subs_per_row));
        sigma_lanes[b] = sigma2[sub / kNsub];
      }
      kq::Transpose(base, x_offs, kQK_Legacy, xt);
      // 2. weights: qw * sqrt(sigma2 + x^2) with an imatrix, x^2 without.
      if (imatrix != nullptr) {
        kq::Transpose(imatrix, qw_offs, kQK_Legacy, wt);
        const kq::VF vs = hn::Load(d, sigma_lanes);
        for (int e = 0; e < kQK_Legacy; ++e) {
          const kq::VF x = hn::Load(d, xt + e * N);
          hn::Store(hn::Mul(hn::Load(d, wt + e * N), hn::Sqrt(hn::Add(vs, hn::Mul(x, x)))), d, wt + e * N);
        }
      } else {
        for (int e = 0; e < kQK_Legacy; ++e) {
          const kq::VF x = hn::Load(d, xt + e * N);
          hn::Store(hn::Mul(x, x), d, wt + e * N);
        }
      }
      hn::Store(Iq4SearchLanes(xt, wt), d, scales + o);
    }
    // 3.-4.
    for (int s = 0; s < valid_supers; ++s) {
      const int64_t sb = s0 + s;
      if constexpr (kSuper == kQK_Legacy) {
        BlockIq4Nl& y = static_cast<BlockIq4Nl*>(dst)[sb];
        Iq4Finish(kSuper, base + s * kSuper, scales + s * kNsub, &y.d, y.qs, nullptr, nullptr);
      } else {
        BlockIq4Xs& y = static_cast<BlockIq4Xs*>(dst)[sb];
        Iq4Finish(kSuper, base + s * kSuper, scales + s * kNsub, &y.d, y.qs, y.scales_h, y.scales_l);
      }
    }
  }
  ZeroUpper();
}

void QuantizeIq4NlImpl(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                       const float* imatrix) {
  QuantizeIq4Lanes<kQK_Legacy>(src, dst, nrows, n_per_row, imatrix);
}
void QuantizeIq4XsImpl(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                       const float* imatrix) {
  QuantizeIq4Lanes<kQK_K>(src, dst, nrows, n_per_row, imatrix);
}

}  // namespace bitsmith::legacy::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace bitsmith::legacy {

#define BITSMITH_LEGACY_DISPATCH(Name)                                                        \
  HWY_EXPORT(Quantize##Name##Impl);                                                          \
  HWY_EXPORT(Dequantize##Name##Impl);                                                        \
  void Quantize##Name##Simd(const float* src, void* dst, int64_t nrows, int64_t n_per_row,   \
                            const float* imatrix) {                                          \
    HWY_DYNAMIC_DISPATCH(Quantize##Name##Impl)(src, dst, nrows, n_per_row, imatrix);         \
  }                                                                                          \
  void Dequantize##Name##Simd(const void* src, float* dst, int64_t n) {                      \
    HWY_DYNAMIC_DISPATCH(Dequantize##Name##Impl)(src, dst, n);                               \
  }

BITSMITH_LEGACY_DISPATCH(Q4_0)
BITSMITH_LEGACY_DISPATCH(Q4_1)
BITSMITH_LEGACY_DISPATCH(Q5_0)
BITSMITH_LEGACY_DISPATCH(Q5_1)
BITSMITH_LEGACY_DISPATCH(Q8_0)
BITSMITH_LEGACY_DISPATCH(Q8_1)
BITSMITH_LEGACY_DISPATCH(Iq4Nl)
BITSMITH_LEGACY_DISPATCH(Iq4Xs)
BITSMITH_LEGACY_DISPATCH(Q8K)
#undef BITSMITH_LEGACY_DISPATCH

}  // namespace bitsmith::legacy
#endif  // HWY_ONCE
