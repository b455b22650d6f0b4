// Element codecs: scalar oracle, Highway dispatch, validating entry points.
//
// Layout after hwy/examples/skeleton.cc: foreach_target.h re-includes this file
// once per target; the per-target kernels live in codecs/element-inl.h; the code
// under HWY_ONCE (compiled once) holds the scalar references, HWY_EXPORT tables
// and the public functions of codecs/element.h.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "codecs/element.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "codecs/element-inl.h"

#if HWY_ONCE

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>    // std::floor, std::isnan
#include <cstring>  // std::memcpy

#include "codecs/element.h"
#include "codecs/parallel.h"
#include "formats/half.h"

// A build that compiles a single Highway target (the CI sanitizer build, `make
// fuzz-ci`: HWY_COMPILE_ONLY_STATIC) names the one it expects, so that flags that
// select another fail the build instead of fuzzing the wrong kernels. Highway
// 1.0.3 takes the compiler for SSE4 or better only with AES and PCLMUL enabled
// too (detect_targets.h, HWY_CHECK_PCLMUL_AES): -march=x86-64-v3 alone gives
// SSSE3, which CMakeLists.txt disables, hence EMU128 (what fuzz-ci compiled until
// session 8).
#ifdef BITSMITH_EXPECT_STATIC_TARGET
static_assert(HWY_STATIC_TARGET == BITSMITH_EXPECT_STATIC_TARGET,
              "Highway's static target is not the one this build expects (BITSMITH_EXPECT_STATIC_TARGET)");
#endif

namespace bitsmith {

// ===========================================================================
// Scalar oracle
// ===========================================================================
namespace {

// sig >> s rounded to nearest, ties to even (sig < 2^24, 1 <= s <= 31).
constexpr uint32_t RoundShiftRightEven(uint32_t sig, int s) {
  const uint32_t kept = sig >> s;
  const uint32_t rem = sig & ((1u << s) - 1u);
  const uint32_t half = 1u << (s - 1);
  return kept + ((rem > half || (rem == half && (kept & 1u))) ? 1u : 0u);
}

// float32 bits -> code of a float format (element.h rules 1-6).
uint32_t EncodeFloatRef(const ElementFormat& f, uint32_t x, Overflow overflow) {
  const bool neg = (x >> 31) != 0;
  const uint32_t ax = x & 0x7FFFFFFFu;
  const bool saturate = overflow == Overflow::kSaturate;
  // 1. NaN: the canonical NaN keeping the sign where the format is signed;
  //    FP6/FP4 have none and take +0 (rule 5).
  if (ax > 0x7F800000u) return f.nan_code(neg).value_or(0u);
  // 2. e8m0fnu (unsigned, no zero): zero and negative inputs.
  if (!f.is_signed && (neg || ax == 0)) return saturate ? 0x00u : *f.nan_code();
  // 3. Round the magnitude. The f32 value is sig * 2^(e32 - 150), where
  //    e32 >= 1 is the exponent field (1 for subnormals, which lack the
  //    implicit bit).
  const int e32 = std::max<int>(static_cast<int>(ax >> 23), 1);
  const uint32_t sig = (ax & 0x7FFFFFu) | (ax >= 0x800000u ? 0x800000u : 0u);
  uint32_t mag;
  if (!f.has_subnormals) {
    // e8m0fnu: 2^(e32-127), one up when the mantissa is >= 0.5 (ties up:
    // ml_dtypes); f32 subnormals to the nearer of 2^-127 and 2^-126, the tie
    // 1.5 * 2^-127 going to the even code 0x00 (rule 6).
    if (ax < 0x800000u)
      mag = ax > 0x600000u ? 1u : 0u;
    else
      mag = (ax >> 23) + ((ax >> 22) & 1u);
  } else {
    // Quantum of the result: 2^(max(e, emin) - M). In units of it, the value is
    // sig >> s, s = 23 - M + max(0, emin - e); the code is the exponent field
    // times 2^M plus that count (a count of 2^(M+1) carries into the exponent,
    // and a subnormal count of 2^M is the smallest normal: no special cases).
    const int emin32 = 128 - f.bias;  // f32 exponent field of the format's min normal
    const int m = f.mantissa_bits;
    const int s = std::min(23 - m + std::max(0, emin32 - e32), 31);
    const uint32_t count = RoundShiftRightEven(sig, s);
    mag = (static_cast<uint32_t>(std::max(e32, emin32) - emin32) << m) + count;
  }
  // 4. Overflow of the rounded magnitude (inf lands here too).
  if (mag > f.max_finite_code()) {
    if (saturate || f.nonfinite == NonFinite::kFiniteOnly) {
      mag = f.max_finite_code();
    } else if (f.has_inf()) {
      return *f.inf_code(neg);
    } else {
      return *f.nan_code(neg);  // e4m3fn 0x7F/0xFF, fnuz 0x80, e8m0fnu 0xFF
    }
  }
  // 5. Sign; the fnuz formats have no -0.
  if (neg && f.is_signed && (mag != 0 || f.has_negative_zero())) mag |= f.sign_mask();
  return mag;
}

// float32 -> integer code: round to nearest even, saturate, NaN -> 0 (rule 7).
// Written with doubles (exact here) so it shares nothing with the SIMD path.
uint32_t EncodeIntRef(const ElementFormat& f, float x) {
  if (std::isnan(x)) return 0;
  const double d = x, lo = f.lowest(), hi = f.max_finite();
  double v;
  if (d <= lo) {
    v = lo;
  } else if (d >= hi) {
    v = hi;
  } else {
    const double fl = std::floor(d);
    const double frac = d - fl;  // exact
    if (frac > 0.5) v = fl + 1;
    else if (frac < 0.5) v = fl;
    else v = std::fmod(fl, 2.0) == 0 ? fl : fl + 1;  // tie: the even neighbour
  }
  return static_cast<uint32_t>(static_cast<int64_t>(v)) & f.code_mask();
}

// Code of a float format of <= 8 bits -> f32 bits (rule 8). Steps:
//  1. NaN / inf / zero; 2. e8m0fnu: 2^(c-127);
//  3. normal: rebias the exponent, left-align the mantissa;
//  4. subnormal m * 2^(1-bias-M): normalise m (its top bit becomes implicit).
uint32_t DecodeSmallFloatRef(const ElementFormat& f, uint32_t code) {
  code &= f.code_mask();
  const uint32_t sign = (f.is_signed && (code & f.sign_mask())) ? 0x80000000u : 0u;
  switch (f.Classify(code)) {  // 1.
    case ValueClass::kNaN: return sign | 0x7FC00000u;
    case ValueClass::kInfinity: return sign | 0x7F800000u;
    case ValueClass::kZero: return sign;
    default: break;
  }
  if (!f.has_subnormals) return code == 0 ? 0x00400000u : code << 23;  // 2. (2^-127 is an f32 subnormal)
  const int m_bits = f.mantissa_bits;
  const uint32_t mag = code & ~f.sign_mask();
  const uint32_t e = mag >> m_bits;
  uint32_t m = mag & f.mantissa_mask();
  if (e != 0)  // 3.
    return sign | ((e + 127u - f.bias) << 23) | (m << (23 - m_bits));
  int p = 0;  // 4. m = 2^p * 1.xxx
  while ((m >> (p + 1)) != 0) ++p;
  const uint32_t exp = static_cast<uint32_t>(p + 1 - f.bias - m_bits + 127);
  return sign | (exp << 23) | (((m - (1u << p)) << (23 - p)) & 0x7FFFFFu);
}

void EncodeF32RefLoop(ElementFormatId to, const float* in, void* out, size_t n, Overflow ov) {
  const size_t bytes = ElementBytes(to);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t c = EncodeF32Ref(to, in[i], ov);
    if (bytes == 1) static_cast<uint8_t*>(out)[i] = static_cast<uint8_t>(c);
    else if (bytes == 2) static_cast<uint16_t*>(out)[i] = static_cast<uint16_t>(c);
    else static_cast<uint32_t*>(out)[i] = c;
  }
}

uint32_t LoadCode(ElementFormatId f, const void* in, size_t i) {
  switch (ElementBytes(f)) {
    case 1: return static_cast<const uint8_t*>(in)[i];
    case 2: return static_cast<const uint16_t*>(in)[i];
    default: {
      uint32_t u;
      std::memcpy(&u, static_cast<const uint8_t*>(in) + 4 * i, 4);
      return u;
    }
  }
}

constexpr bool IsSmall(ElementFormatId f) { return GetElementFormat(f).bits <= 8; }

}  // namespace

uint32_t EncodeF32Ref(ElementFormatId to, float x, Overflow overflow) {
  const ElementFormat& f = GetElementFormat(to);
  if (to == ElementFormatId::kF32) return F32Bits(x);
  if (f.kind == ElementKind::kInt) return EncodeIntRef(f, x);
  return EncodeFloatRef(f, F32Bits(x), overflow);
}

uint32_t DecodeToF32BitsRef(ElementFormatId from, uint32_t code) {
  const ElementFormat& f = GetElementFormat(from);
  switch (from) {
    case ElementFormatId::kF32: return code;
    case ElementFormatId::kBF16: return (code & 0xFFFFu) << 16;
    case ElementFormatId::kF16: return F32Bits(F16BitsToF32(static_cast<uint16_t>(code)));
    default: break;
  }
  if (f.kind == ElementKind::kInt) return F32Bits(static_cast<float>(f.Value(code)));
  return DecodeSmallFloatRef(f, code);
}

}  // namespace bitsmith

// ===========================================================================
// Dynamic dispatch
// ===========================================================================
namespace bitsmith {
HWY_EXPORT(EncodeF32Simd);
HWY_EXPORT(EncodeDividedSimd);
HWY_EXPORT(DecodeToF32Simd);
HWY_EXPORT(DecodeToBF16Simd);
HWY_EXPORT(DecodeScaledSimd);
HWY_EXPORT(MaxAbsBitsSimd);

// ---------------------------------------------------------------------------
// Array kernels
// ---------------------------------------------------------------------------

void EncodeF32(ElementFormatId to, const float* in, void* out, size_t n, Overflow overflow,
               Impl impl) {
  if (n == 0) return;
  if (to == ElementFormatId::kF32) {
    std::memcpy(out, in, n * sizeof(float));
  } else if (impl == Impl::kReference) {
    EncodeF32RefLoop(to, in, out, n, overflow);
  } else {
    HWY_DYNAMIC_DISPATCH(EncodeF32Simd)(static_cast<int>(to), in, out, n,
                                        overflow == Overflow::kSaturate);
  }
}

void DecodeToF32(ElementFormatId from, const void* in, float* out, size_t n, Impl impl) {
  if (n == 0) return;
  if (from == ElementFormatId::kF32) {
    std::memcpy(out, in, n * sizeof(float));
  } else if (impl == Impl::kReference) {
    for (size_t i = 0; i < n; ++i)
      out[i] = F32FromBits(DecodeToF32BitsRef(from, LoadCode(from, in, i)));
  } else {
    HWY_DYNAMIC_DISPATCH(DecodeToF32Simd)(static_cast<int>(from), in, out, n);
  }
}

void DecodeToBF16(ElementFormatId from, const void* in, uint16_t* out, size_t n, Impl impl) {
  if (n == 0) return;
  if (from == ElementFormatId::kBF16) {
    std::memcpy(out, in, n * sizeof(uint16_t));
  } else if (from == ElementFormatId::kF32) {
    EncodeF32(ElementFormatId::kBF16, static_cast<const float*>(in), out, n,
              Overflow::kNonSaturating, impl);
  } else if (impl == Impl::kReference) {
    for (size_t i = 0; i < n; ++i)
      out[i] = F32ToBF16Bits(F32FromBits(DecodeToF32BitsRef(from, LoadCode(from, in, i))));
  } else {
    HWY_DYNAMIC_DISPATCH(DecodeToBF16Simd)(static_cast<int>(from), in, out, n);
  }
}

void EncodeF32ToE4M3FN(const float* in, uint8_t* out, size_t n, Overflow overflow) {
  EncodeF32(ElementFormatId::kE4M3FN, in, out, n, overflow);
}
void EncodeF32ToE5M2(const float* in, uint8_t* out, size_t n, Overflow overflow) {
  EncodeF32(ElementFormatId::kE5M2, in, out, n, overflow);
}
void EncodeF32ToBF16(const float* in, uint16_t* out, size_t n, Overflow overflow) {
  EncodeF32(ElementFormatId::kBF16, in, out, n, overflow);
}
void EncodeF32ToF16(const float* in, uint16_t* out, size_t n, Overflow overflow) {
  EncodeF32(ElementFormatId::kF16, in, out, n, overflow);
}
void DecodeE4M3FNToBF16(const uint8_t* in, uint16_t* out, size_t n) {
  DecodeToBF16(ElementFormatId::kE4M3FN, in, out, n);
}
void DecodeE4M3FNToF32(const uint8_t* in, float* out, size_t n) {
  DecodeToF32(ElementFormatId::kE4M3FN, in, out, n);
}
void DecodeE5M2ToBF16(const uint8_t* in, uint16_t* out, size_t n) {
  DecodeToBF16(ElementFormatId::kE5M2, in, out, n);
}
void DecodeE5M2ToF32(const uint8_t* in, float* out, size_t n) {
  DecodeToF32(ElementFormatId::kE5M2, in, out, n);
}
void DecodeBF16ToF32(const uint16_t* in, float* out, size_t n) {
  DecodeToF32(ElementFormatId::kBF16, in, out, n);
}
void DecodeF16ToF32(const uint16_t* in, float* out, size_t n) {
  DecodeToF32(ElementFormatId::kF16, in, out, n);
}

// ---------------------------------------------------------------------------
// Block-scaled FP8 kernels
// ---------------------------------------------------------------------------
namespace {
enum ScaledKind { kScaledF32 = 0, kScaledBF16 = 1, kScaledF16 = 2 };

void DecodeScaled(ElementFormatId from, const uint8_t* in, float scale, void* out, size_t n,
                  ScaledKind kind, Impl impl) {
  assert(IsSmall(from));
  if (n == 0) return;
  if (impl == Impl::kSimd) {
    HWY_DYNAMIC_DISPATCH(DecodeScaledSimd)(static_cast<int>(from), in, scale, out, n, kind);
    return;
  }
  for (size_t i = 0; i < n; ++i) {
    const float y = DecodeToF32Ref(from, in[i]) * scale;  // one f32 multiply
    switch (kind) {
      case kScaledF32: static_cast<float*>(out)[i] = y; break;
      case kScaledBF16: static_cast<uint16_t*>(out)[i] = F32ToBF16Bits(y); break;
      case kScaledF16: static_cast<uint16_t*>(out)[i] = F32ToF16Bits(y); break;
    }
  }
}
}  // namespace

void DecodeScaledToBF16(ElementFormatId from, const uint8_t* in, float scale, uint16_t* out,
                        size_t n, Impl impl) {
  DecodeScaled(from, in, scale, out, n, kScaledBF16, impl);
}
void DecodeScaledToF32(ElementFormatId from, const uint8_t* in, float scale, float* out, size_t n,
                       Impl impl) {
  DecodeScaled(from, in, scale, out, n, kScaledF32, impl);
}
void DecodeScaledToF16(ElementFormatId from, const uint8_t* in, float scale, uint16_t* out,
                       size_t n, Impl impl) {
  DecodeScaled(from, in, scale, out, n, kScaledF16, impl);
}

void EncodeDividedF32(ElementFormatId to, const float* in, float scale, uint8_t* out, size_t n,
                      Overflow overflow, Impl impl) {
  assert(IsSmall(to));
  if (n == 0) return;
  if (impl == Impl::kSimd) {
    HWY_DYNAMIC_DISPATCH(EncodeDividedSimd)(static_cast<int>(to), in, scale, out, n,
                                            overflow == Overflow::kSaturate);
    return;
  }
  for (size_t i = 0; i < n; ++i)
    out[i] = static_cast<uint8_t>(EncodeF32Ref(to, in[i] / scale, overflow));  // f32 division
}

float MaxAbs(const float* in, size_t n, Impl impl) {
  if (impl == Impl::kSimd) {
    const uint32_t bits = n == 0 ? 0u : HWY_DYNAMIC_DISPATCH(MaxAbsBitsSimd)(in, n);
    return bits > 0x7F800000u ? F32FromBits(0x7FC00000u) : F32FromBits(bits);
  }
  float m = 0.0f;
  for (size_t i = 0; i < n; ++i) {
    if (std::isnan(in[i])) return F32FromBits(0x7FC00000u);
    m = std::max(m, std::fabs(in[i]));
  }
  return m;
}

// ===========================================================================
// Entry points
// ===========================================================================
namespace {
// Elements per thread unit: large enough that a thread's start-up is noise,
// a multiple of every vector length.
constexpr size_t kGrain = size_t{1} << 16;
// f32 staging buffer (elements) for Convert's two-step paths: 16 KiB.
constexpr size_t kStage = 4096;

Status CheckCount(std::string_view what, ElementFormatId f, size_t bytes, size_t* count) {
  const size_t eb = ElementBytes(f);
  if (bytes % eb != 0)
    return MakeError(ErrorKind::kBadInput,
                     "{}: {} bytes of {} are not a whole number of {}-byte values", what, bytes,
                     GetElementFormat(f).name, eb);
  *count = bytes / eb;
  return Status::Ok();
}
}  // namespace

Status Encode(ElementFormatId to, std::span<const float> in, std::span<uint8_t> out_bytes,
              Overflow overflow, Impl impl, int threads) {
  const size_t want = in.size() * ElementBytes(to);
  if (out_bytes.size() != want)
    return MakeError(ErrorKind::kBadInput,
                     "encode to {}: output holds {} bytes, {} values need {}",
                     GetElementFormat(to).name, out_bytes.size(), in.size(), want);
  const size_t eb = ElementBytes(to);
  ParallelFor(in.size(), kGrain, threads, [&](size_t b, size_t e) {
    EncodeF32(to, in.data() + b, out_bytes.data() + b * eb, e - b, overflow, impl);
  });
  return Status::Ok();
}

Status Decode(ElementFormatId from, std::span<const uint8_t> in_bytes, std::span<float> out,
              Impl impl, int threads) {
  size_t n = 0;
  BITSMITH_RETURN_IF_ERROR(CheckCount("decode", from, in_bytes.size(), &n));
  if (out.size() != n)
    return MakeError(ErrorKind::kBadInput, "decode from {}: {} values need {} f32 outputs, got {}",
                     GetElementFormat(from).name, n, n, out.size());
  const size_t eb = ElementBytes(from);
  ParallelFor(n, kGrain, threads, [&](size_t b, size_t e) {
    DecodeToF32(from, in_bytes.data() + b * eb, out.data() + b, e - b, impl);
  });
  return Status::Ok();
}

Status Convert(ElementFormatId from, ElementFormatId to, std::span<const uint8_t> in_bytes,
               std::span<uint8_t> out_bytes, Overflow overflow, Impl impl, int threads) {
  size_t n = 0;
  BITSMITH_RETURN_IF_ERROR(CheckCount("convert", from, in_bytes.size(), &n));
  const size_t ib = ElementBytes(from), ob = ElementBytes(to);
  if (out_bytes.size() != n * ob)
    return MakeError(ErrorKind::kBadInput,
                     "convert {} -> {}: output holds {} bytes, {} values need {}",
                     GetElementFormat(from).name, GetElementFormat(to).name, out_bytes.size(), n,
                     n * ob);
  // DecodeToBF16 equals decode + non-saturating encode; with saturation it is
  // the same unless the source has infinities (which must become +-max).
  const bool bf16_direct = to == ElementFormatId::kBF16 &&
                           (overflow == Overflow::kNonSaturating || !GetElementFormat(from).has_inf());
  ParallelFor(n, kGrain, threads, [&](size_t b, size_t e) {
    const uint8_t* src = in_bytes.data() + b * ib;
    uint8_t* dst = out_bytes.data() + b * ob;
    const size_t len = e - b;
    if (from == to) {  // identity: a copy (NaN payloads kept)
      std::memcpy(dst, src, len * ib);
    } else if (from == ElementFormatId::kF32 && reinterpret_cast<uintptr_t>(src) % 4 == 0) {
      EncodeF32(to, reinterpret_cast<const float*>(src), dst, len, overflow, impl);
    } else if (to == ElementFormatId::kF32 && reinterpret_cast<uintptr_t>(dst) % 4 == 0) {
      DecodeToF32(from, src, reinterpret_cast<float*>(dst), len, impl);
    } else if (from == ElementFormatId::kF32) {
      float stage[kStage];  // unaligned floats: copy through an aligned buffer
      for (size_t i = 0; i < len; i += kStage) {
        const size_t k = std::min(kStage, len - i);
        std::memcpy(stage, src + 4 * i, 4 * k);
        EncodeF32(to, stage, dst + ob * i, k, overflow, impl);
      }
    } else if (to == ElementFormatId::kF32) {
      float stage[kStage];
      for (size_t i = 0; i < len; i += kStage) {
        const size_t k = std::min(kStage, len - i);
        DecodeToF32(from, src + ib * i, stage, k, impl);
        std::memcpy(dst + 4 * i, stage, 4 * k);
      }
    } else if (bf16_direct && reinterpret_cast<uintptr_t>(dst) % 2 == 0) {
      DecodeToBF16(from, src, reinterpret_cast<uint16_t*>(dst), len, impl);
    } else {
      float stage[kStage];
      for (size_t i = 0; i < len; i += kStage) {
        const size_t k = std::min(kStage, len - i);
        DecodeToF32(from, src + ib * i, stage, k, impl);
        EncodeF32(to, stage, dst + ob * i, k, overflow, impl);
      }
    }
  });
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// INT8 absmax
// ---------------------------------------------------------------------------
namespace {
Status CheckInt8Geometry(std::string_view what, int64_t rows, int64_t cols, int64_t block,
                         size_t values, size_t codes, size_t scales) {
  if (rows < 0 || cols < 0 || block <= 0)
    return MakeError(ErrorKind::kBadUsage, "{}: rows {} / cols {} / block {} must be >= 0, >= 0, > 0",
                     what, rows, cols, block);
  const uint64_t n = static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols);
  if (cols != 0 && n / static_cast<uint64_t>(cols) != static_cast<uint64_t>(rows))
    return MakeError(ErrorKind::kBadInput, "{}: {} x {} overflows", what, rows, cols);
  if (values != n || codes != n)
    return MakeError(ErrorKind::kBadInput, "{}: {} x {} needs {} values and codes, got {} and {}",
                     what, rows, cols, n, values, codes);
  const uint64_t ns = Int8AbsmaxScaleCount(rows, cols, block);
  if (scales != ns)
    return MakeError(ErrorKind::kBadInput, "{}: {} x {} in blocks of {} needs {} scales, got {}",
                     what, rows, cols, block, ns, scales);
  return Status::Ok();
}
}  // namespace

Status QuantizeInt8Absmax(std::span<const float> in, int64_t rows, int64_t cols, int64_t block,
                          std::span<int8_t> codes, std::span<float> scales, Impl impl,
                          int threads) {
  BITSMITH_RETURN_IF_ERROR(CheckInt8Geometry("int8 absmax quantize", rows, cols, block, in.size(),
                                             codes.size(), scales.size()));
  if (rows == 0 || cols == 0) return Status::Ok();
  const int64_t blocks_per_row = (cols + block - 1) / block;
  // Validate once: every input finite (the first offender is named).
  if (!std::isfinite(MaxAbs(in.data(), in.size(), impl))) {
    for (size_t i = 0; i < in.size(); ++i)
      if (!std::isfinite(in[i]))
        return MakeError(ErrorKind::kBadInput,
                         "int8 absmax quantize: value at row {} column {} is {} (must be finite)",
                         static_cast<int64_t>(i) / cols, static_cast<int64_t>(i) % cols, in[i]);
  }
  ParallelFor(static_cast<size_t>(rows), 1, threads, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      for (int64_t b = 0; b < blocks_per_row; ++b) {
        const size_t c0 = static_cast<size_t>(b * block);
        const size_t len = std::min<size_t>(static_cast<size_t>(block), static_cast<size_t>(cols) - c0);
        const float* x = in.data() + r * static_cast<size_t>(cols) + c0;
        int8_t* q = codes.data() + r * static_cast<size_t>(cols) + c0;
        const float amax = MaxAbs(x, len, impl);
        const float scale = amax / 127.0f;  // one f32 division
        scales[r * static_cast<size_t>(blocks_per_row) + static_cast<size_t>(b)] = scale;
        if (scale == 0.0f) {  // amax == 0 (or below 63.5 * 2^-149: the scale underflows)
          std::fill(q, q + len, int8_t{0});
          continue;
        }
        EncodeDividedF32(ElementFormatId::kInt8, x, scale, reinterpret_cast<uint8_t*>(q), len,
                         Overflow::kSaturate, impl);
        for (size_t i = 0; i < len; ++i) q[i] = std::max<int8_t>(q[i], -127);  // symmetric range
      }
    }
  });
  return Status::Ok();
}

Status DequantizeInt8Absmax(std::span<const int8_t> codes, std::span<const float> scales,
                            int64_t rows, int64_t cols, int64_t block, std::span<float> out,
                            Impl impl, int threads) {
  BITSMITH_RETURN_IF_ERROR(CheckInt8Geometry("int8 absmax dequantize", rows, cols, block,
                                             out.size(), codes.size(), scales.size()));
  if (rows == 0 || cols == 0) return Status::Ok();
  const int64_t blocks_per_row = (cols + block - 1) / block;
  ParallelFor(static_cast<size_t>(rows), 1, threads, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      for (int64_t b = 0; b < blocks_per_row; ++b) {
        const size_t c0 = static_cast<size_t>(b * block);
        const size_t len = std::min<size_t>(static_cast<size_t>(block), static_cast<size_t>(cols) - c0);
        const size_t off = r * static_cast<size_t>(cols) + c0;
        DecodeScaledToF32(ElementFormatId::kInt8, reinterpret_cast<const uint8_t*>(codes.data() + off),
                          scales[r * static_cast<size_t>(blocks_per_row) + static_cast<size_t>(b)],
                          out.data() + off, len, impl);
      }
    }
  });
  return Status::Ok();
}

}  // namespace bitsmith

#endif  // HWY_ONCE
