// Element formats: what one code of a number format means.
//
// Each format is one constexpr row of kElementFormats (designated initializers),
// after LLVM's fltSemantics rows (llvm/lib/Support/APFloat.cpp) and ml_dtypes'
// float8.h traits. Everything else -- masks, max finite, min normal, min
// subnormal, NaN/inf codes, the inspector, the `bitsmith formats` command and the
// test lists -- is computed from the row, never typed twice.
//
// Specifications:
//  - e4m3fn, e5m2: "FP8 Formats for Deep Learning", arXiv 2209.05433, and the
//    OCP 8-bit Floating Point Specification (OFP8) rev 1.0.
//  - e4m3fnuz, e5m2fnuz, e4m3b11fnuz: Graphcore/AMD "8-bit Numerical Formats for
//    Deep Neural Networks", arXiv 2206.02915 (no inf, no -0; 0x80 is the NaN).
//  - e8m0fnu, e3m2fn, e2m3fn, e2m1fn: OCP Microscaling Formats (MX) v1.0.
//  - f16: IEEE 754 binary16; bf16: bfloat16 (f32 with 16 mantissa bits dropped).
// Names are the ones LLVM and ml_dtypes share: "fn" = finite (no inf) with NaN,
// "uz" = unsigned zero (no -0), "u" in e8m0fnu = unsigned.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

namespace bitsmith {

// How a float format spends its codes on non-finite values.
enum class NonFinite : uint8_t {
  kIeee,         // exponent all ones: inf (mantissa 0) or NaN (mantissa != 0)
  kNanAllOnes,   // no inf; only exponent+mantissa all ones is NaN (e4m3fn, e8m0fnu)
  kNanNegZero,   // no inf, no -0: the negative-zero code (sign bit alone) is NaN (fnuz)
  kFiniteOnly,   // every code is a finite number (FP6, FP4)
};

enum class ElementKind : uint8_t { kFloat, kInt };

enum class ElementFormatId : uint8_t {
  kF32,
  kF16,
  kBF16,
  kE4M3FN,
  kE5M2,
  kE4M3FNUZ,
  kE5M2FNUZ,
  kE4M3B11FNUZ,
  kE8M0FNU,
  kE3M2FN,
  kE2M3FN,
  kE2M1FN,
  kInt8,
  kUint8,
  kInt4,
  kUint4,
};
inline constexpr int kNumElementFormats = 16;

// The class of one code.
enum class ValueClass : uint8_t { kZero, kSubnormal, kNormal, kInfinity, kNaN };
std::string_view ValueClassName(ValueClass c);

struct ElementFormat {
  ElementFormatId id;
  std::string_view name;       // bitsmith/LLVM/ml_dtypes short name, lower case
  std::string_view ml_dtypes;  // ml_dtypes' type name ("float8_e4m3fn")
  std::string_view summary;    // one line for `bitsmith formats`
  std::string_view spec;       // where the format is defined
  ElementKind kind;
  int bits;           // bits of one code (codes of < 8 bits are stored one per byte)
  int exponent_bits;  // 0 for integers
  int mantissa_bits;  // stored fraction bits; for integers the magnitude bits
  int bias;           // exponent bias; 0 for integers
  bool is_signed;
  NonFinite nonfinite;
  bool has_subnormals;  // false only for e8m0fnu: exponent field 0 is 2^-bias, no zero

  // ---- Derived properties (never stored) ----
  constexpr uint32_t code_count() const { return bits >= 32 ? 0 : (1u << bits); }
  constexpr uint32_t code_mask() const { return bits >= 32 ? 0xFFFFFFFFu : (1u << bits) - 1; }
  constexpr uint32_t sign_mask() const { return is_signed ? (1u << (bits - 1)) : 0; }
  constexpr uint32_t mantissa_mask() const { return (1u << mantissa_bits) - 1; }
  constexpr uint32_t exponent_mask() const {
    return ((1u << exponent_bits) - 1) << mantissa_bits;
  }
  constexpr int max_exponent_field() const { return (1 << exponent_bits) - 1; }
  constexpr bool is_float() const { return kind == ElementKind::kFloat; }
  constexpr bool has_inf() const { return nonfinite == NonFinite::kIeee; }
  constexpr bool has_nan() const { return nonfinite != NonFinite::kFiniteOnly; }
  constexpr bool has_zero() const { return kind == ElementKind::kInt || has_subnormals; }
  constexpr bool has_negative_zero() const {
    return is_float() && is_signed && nonfinite != NonFinite::kNanNegZero;
  }

  // Largest finite magnitude's code (positive sign).
  constexpr uint32_t max_finite_code() const {
    if (kind == ElementKind::kInt) return is_signed ? sign_mask() - 1 : code_mask();
    const uint32_t all_e = exponent_mask();
    const uint32_t all_m = mantissa_mask();
    switch (nonfinite) {
      case NonFinite::kIeee:
        return (all_e - (1u << mantissa_bits)) | all_m;  // exponent all-ones minus one
      case NonFinite::kNanAllOnes:
        return (all_e | all_m) - 1;  // all ones is NaN: e4m3fn 0x7E, e8m0fnu 0xFE
      default:
        return all_e | all_m;
    }
  }
  // The canonical NaN code this format produces for a NaN input of the given sign
  // (what ml_dtypes produces); nullopt when the format has no NaN.
  constexpr std::optional<uint32_t> nan_code(bool negative = false) const {
    const uint32_t s = (negative && is_signed) ? sign_mask() : 0;
    switch (nonfinite) {
      case NonFinite::kIeee:  // quiet NaN: top mantissa bit set
        return s | exponent_mask() | (1u << (mantissa_bits - 1));
      case NonFinite::kNanAllOnes:
        return s | exponent_mask() | mantissa_mask();
      case NonFinite::kNanNegZero:
        return sign_mask();
      default:
        return std::nullopt;
    }
  }
  constexpr std::optional<uint32_t> inf_code(bool negative = false) const {
    if (!has_inf()) return std::nullopt;
    return (negative ? sign_mask() : 0) | exponent_mask();
  }

  // The exact value of a code, as a double (every code of every format here is
  // exactly representable). NaN codes give a quiet NaN with the code's sign.
  constexpr double Value(uint32_t code) const;
  constexpr ValueClass Classify(uint32_t code) const;

  double max_finite() const { return Value(max_finite_code()); }
  double lowest() const {  // most negative finite value
    if (kind == ElementKind::kInt) return is_signed ? -static_cast<double>(sign_mask()) : 0.0;
    return is_signed ? -max_finite() : Value(0);
  }
  // Smallest positive normal: 2^(1-bias) (2^-bias for e8m0fnu, which has no subnormals).
  double min_normal() const {
    return std::ldexp(1.0, (has_subnormals ? 1 : 0) - bias);
  }
  // Smallest positive value: 2^(1-bias-mantissa_bits).
  double min_subnormal() const {
    return has_subnormals ? std::ldexp(1.0, 1 - bias - mantissa_bits) : min_normal();
  }
};

constexpr ValueClass ElementFormat::Classify(uint32_t code) const {
  code &= code_mask();
  if (kind == ElementKind::kInt) return code == 0 ? ValueClass::kZero : ValueClass::kNormal;
  const uint32_t mag = code & ~sign_mask();
  const uint32_t e = (mag & exponent_mask()) >> mantissa_bits;
  const uint32_t m = mag & mantissa_mask();
  switch (nonfinite) {
    case NonFinite::kIeee:
      if (e == static_cast<uint32_t>(max_exponent_field()))
        return m == 0 ? ValueClass::kInfinity : ValueClass::kNaN;
      break;
    case NonFinite::kNanAllOnes:
      if (mag == (exponent_mask() | mantissa_mask())) return ValueClass::kNaN;
      break;
    case NonFinite::kNanNegZero:
      if (code == sign_mask()) return ValueClass::kNaN;
      break;
    case NonFinite::kFiniteOnly:
      break;
  }
  if (!has_subnormals) return ValueClass::kNormal;
  if (e == 0) return m == 0 ? ValueClass::kZero : ValueClass::kSubnormal;
  return ValueClass::kNormal;
}

namespace detail {
// constexpr 2^k for |k| < 1100 (std::ldexp is not constexpr in C++20).
constexpr double Pow2(int k) {
  double r = 1.0;
  if (k >= 0) {
    for (int i = 0; i < k; ++i) r *= 2.0;
  } else {
    for (int i = 0; i < -k; ++i) r *= 0.5;
  }
  return r;
}
}  // namespace detail

constexpr double ElementFormat::Value(uint32_t code) const {
  code &= code_mask();
  if (kind == ElementKind::kInt) {
    if (is_signed && (code & sign_mask())) return static_cast<double>(code) - code_count();
    return static_cast<double>(code);
  }
  const bool neg = is_signed && (code & sign_mask());
  const double sign = neg ? -1.0 : 1.0;
  switch (Classify(code)) {
    case ValueClass::kNaN:
      return neg ? -std::numeric_limits<double>::quiet_NaN()
                 : std::numeric_limits<double>::quiet_NaN();
    case ValueClass::kInfinity:
      return sign * std::numeric_limits<double>::infinity();
    case ValueClass::kZero:
      return sign * 0.0;
    default:
      break;
  }
  const uint32_t mag = code & ~sign_mask();
  const int e = static_cast<int>((mag & exponent_mask()) >> mantissa_bits);
  const double m = static_cast<double>(mag & mantissa_mask());
  const double frac_scale = detail::Pow2(-mantissa_bits);
  if (e == 0 && has_subnormals)  // (-1)^s * 2^(1-bias) * 0.m
    return sign * detail::Pow2(1 - bias) * (m * frac_scale);
  return sign * detail::Pow2(e - bias) * (1.0 + m * frac_scale);  // (-1)^s * 2^(e-bias) * 1.m
}

// The table. Row order = ElementFormatId order (checked by static_assert below).
inline constexpr std::array<ElementFormat, kNumElementFormats> kElementFormats = {{
    {.id = ElementFormatId::kF32, .name = "f32", .ml_dtypes = "float32",
     .summary = "IEEE 754 binary32", .spec = "IEEE 754-2019",
     .kind = ElementKind::kFloat, .bits = 32, .exponent_bits = 8, .mantissa_bits = 23,
     .bias = 127, .is_signed = true, .nonfinite = NonFinite::kIeee, .has_subnormals = true},
    {.id = ElementFormatId::kF16, .name = "f16", .ml_dtypes = "float16",
     .summary = "IEEE 754 binary16", .spec = "IEEE 754-2019",
     .kind = ElementKind::kFloat, .bits = 16, .exponent_bits = 5, .mantissa_bits = 10,
     .bias = 15, .is_signed = true, .nonfinite = NonFinite::kIeee, .has_subnormals = true},
    {.id = ElementFormatId::kBF16, .name = "bf16", .ml_dtypes = "bfloat16",
     .summary = "bfloat16: f32 with 7 mantissa bits", .spec = "Google Brain bfloat16",
     .kind = ElementKind::kFloat, .bits = 16, .exponent_bits = 8, .mantissa_bits = 7,
     .bias = 127, .is_signed = true, .nonfinite = NonFinite::kIeee, .has_subnormals = true},
    {.id = ElementFormatId::kE4M3FN, .name = "e4m3fn", .ml_dtypes = "float8_e4m3fn",
     .summary = "FP8 E4M3: no inf, NaN = S.1111.111, max 448", .spec = "OCP OFP8 v1.0; arXiv 2209.05433",
     .kind = ElementKind::kFloat, .bits = 8, .exponent_bits = 4, .mantissa_bits = 3,
     .bias = 7, .is_signed = true, .nonfinite = NonFinite::kNanAllOnes, .has_subnormals = true},
    {.id = ElementFormatId::kE5M2, .name = "e5m2", .ml_dtypes = "float8_e5m2",
     .summary = "FP8 E5M2: IEEE-like with inf and NaN, max 57344", .spec = "OCP OFP8 v1.0; arXiv 2209.05433",
     .kind = ElementKind::kFloat, .bits = 8, .exponent_bits = 5, .mantissa_bits = 2,
     .bias = 15, .is_signed = true, .nonfinite = NonFinite::kIeee, .has_subnormals = true},
    {.id = ElementFormatId::kE4M3FNUZ, .name = "e4m3fnuz", .ml_dtypes = "float8_e4m3fnuz",
     .summary = "FP8 E4M3, bias 8: no inf, no -0, NaN = 0x80, max 240", .spec = "arXiv 2206.02915",
     .kind = ElementKind::kFloat, .bits = 8, .exponent_bits = 4, .mantissa_bits = 3,
     .bias = 8, .is_signed = true, .nonfinite = NonFinite::kNanNegZero, .has_subnormals = true},
    {.id = ElementFormatId::kE5M2FNUZ, .name = "e5m2fnuz", .ml_dtypes = "float8_e5m2fnuz",
     .summary = "FP8 E5M2, bias 16: no inf, no -0, NaN = 0x80, max 57344", .spec = "arXiv 2206.02915",
     .kind = ElementKind::kFloat, .bits = 8, .exponent_bits = 5, .mantissa_bits = 2,
     .bias = 16, .is_signed = true, .nonfinite = NonFinite::kNanNegZero, .has_subnormals = true},
    {.id = ElementFormatId::kE4M3B11FNUZ, .name = "e4m3b11fnuz", .ml_dtypes = "float8_e4m3b11fnuz",
     .summary = "FP8 E4M3, bias 11: no inf, no -0, NaN = 0x80, max 30", .spec = "arXiv 2206.02915 (Graphcore)",
     .kind = ElementKind::kFloat, .bits = 8, .exponent_bits = 4, .mantissa_bits = 3,
     .bias = 11, .is_signed = true, .nonfinite = NonFinite::kNanNegZero, .has_subnormals = true},
    {.id = ElementFormatId::kE8M0FNU, .name = "e8m0fnu", .ml_dtypes = "float8_e8m0fnu",
     .summary = "MX scale: unsigned power of two 2^(c-127), NaN = 0xFF, no zero", .spec = "OCP MX v1.0 (E8M0)",
     .kind = ElementKind::kFloat, .bits = 8, .exponent_bits = 8, .mantissa_bits = 0,
     .bias = 127, .is_signed = false, .nonfinite = NonFinite::kNanAllOnes, .has_subnormals = false},
    {.id = ElementFormatId::kE3M2FN, .name = "e3m2fn", .ml_dtypes = "float6_e3m2fn",
     .summary = "FP6 E3M2: finite only, max 28", .spec = "OCP MX v1.0 (FP6 E3M2)",
     .kind = ElementKind::kFloat, .bits = 6, .exponent_bits = 3, .mantissa_bits = 2,
     .bias = 3, .is_signed = true, .nonfinite = NonFinite::kFiniteOnly, .has_subnormals = true},
    {.id = ElementFormatId::kE2M3FN, .name = "e2m3fn", .ml_dtypes = "float6_e2m3fn",
     .summary = "FP6 E2M3: finite only, max 7.5", .spec = "OCP MX v1.0 (FP6 E2M3)",
     .kind = ElementKind::kFloat, .bits = 6, .exponent_bits = 2, .mantissa_bits = 3,
     .bias = 1, .is_signed = true, .nonfinite = NonFinite::kFiniteOnly, .has_subnormals = true},
    {.id = ElementFormatId::kE2M1FN, .name = "e2m1fn", .ml_dtypes = "float4_e2m1fn",
     .summary = "FP4 E2M1: finite only, max 6", .spec = "OCP MX v1.0 (FP4 E2M1)",
     .kind = ElementKind::kFloat, .bits = 4, .exponent_bits = 2, .mantissa_bits = 1,
     .bias = 1, .is_signed = true, .nonfinite = NonFinite::kFiniteOnly, .has_subnormals = true},
    {.id = ElementFormatId::kInt8, .name = "int8", .ml_dtypes = "int8",
     .summary = "two's complement [-128, 127]", .spec = "",
     .kind = ElementKind::kInt, .bits = 8, .exponent_bits = 0, .mantissa_bits = 7,
     .bias = 0, .is_signed = true, .nonfinite = NonFinite::kFiniteOnly, .has_subnormals = false},
    {.id = ElementFormatId::kUint8, .name = "uint8", .ml_dtypes = "uint8",
     .summary = "unsigned [0, 255]", .spec = "",
     .kind = ElementKind::kInt, .bits = 8, .exponent_bits = 0, .mantissa_bits = 8,
     .bias = 0, .is_signed = false, .nonfinite = NonFinite::kFiniteOnly, .has_subnormals = false},
    {.id = ElementFormatId::kInt4, .name = "int4", .ml_dtypes = "int4",
     .summary = "two's complement [-8, 7], one per byte (low nibble)", .spec = "",
     .kind = ElementKind::kInt, .bits = 4, .exponent_bits = 0, .mantissa_bits = 3,
     .bias = 0, .is_signed = true, .nonfinite = NonFinite::kFiniteOnly, .has_subnormals = false},
    {.id = ElementFormatId::kUint4, .name = "uint4", .ml_dtypes = "uint4",
     .summary = "unsigned [0, 15], one per byte (low nibble)", .spec = "",
     .kind = ElementKind::kInt, .bits = 4, .exponent_bits = 0, .mantissa_bits = 4,
     .bias = 0, .is_signed = false, .nonfinite = NonFinite::kFiniteOnly, .has_subnormals = false},
}};

namespace detail {
constexpr bool TableInOrder() {
  for (int i = 0; i < kNumElementFormats; ++i)
    if (static_cast<int>(kElementFormats[i].id) != i) return false;
  return true;
}
}  // namespace detail
static_assert(detail::TableInOrder(), "kElementFormats rows must follow ElementFormatId order");

constexpr const ElementFormat& GetElementFormat(ElementFormatId id) {
  return kElementFormats[static_cast<int>(id)];
}

// Literal checks of derived limits (mxfloat_test.cc style: max() of e2m1 is 6.0).
static_assert(GetElementFormat(ElementFormatId::kE4M3FN).max_finite_code() == 0b0'1111'110);  // = 448
static_assert(GetElementFormat(ElementFormatId::kE4M3FN).Value(0b0'1111'110) == 448.0);
static_assert(GetElementFormat(ElementFormatId::kE5M2).max_finite_code() == 0b0'11110'11);  // = 57344
static_assert(GetElementFormat(ElementFormatId::kE5M2).Value(0b0'11110'11) == 57344.0);
static_assert(GetElementFormat(ElementFormatId::kE4M3FNUZ).Value(0b0'1111'111) == 240.0);
static_assert(GetElementFormat(ElementFormatId::kE4M3B11FNUZ).Value(0b0'1111'111) == 30.0);
static_assert(GetElementFormat(ElementFormatId::kE8M0FNU).max_finite_code() == 0b1111'1110);  // = 2^127
static_assert(GetElementFormat(ElementFormatId::kE8M0FNU).Value(0) == 1.0 / 170141183460469231731687303715884105728.0);
static_assert(GetElementFormat(ElementFormatId::kE3M2FN).Value(0b0'111'11) == 28.0);
static_assert(GetElementFormat(ElementFormatId::kE2M3FN).Value(0b0'11'111) == 7.5);
static_assert(GetElementFormat(ElementFormatId::kE2M1FN).Value(0b0'11'1) == 6.0);
static_assert(GetElementFormat(ElementFormatId::kE2M1FN).Value(0b0'00'1) == 0.5);  // subnormal
static_assert(GetElementFormat(ElementFormatId::kBF16).max_finite_code() == 0x7F7F);
static_assert(GetElementFormat(ElementFormatId::kF16).Value(0x7BFF) == 65504.0);
static_assert(GetElementFormat(ElementFormatId::kInt4).Value(0b1000) == -8.0);

// Looks a format up by its bitsmith name ("e4m3fn") or its ml_dtypes name
// ("float8_e4m3fn"); case-sensitive (names are lower case). nullptr if unknown.
const ElementFormat* FindElementFormat(std::string_view name);

}  // namespace bitsmith
