#include "cli/element_text.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "formats/half.h"  // F32FromBits

namespace bitsmith::cli {

namespace {
// Unsigned big integer in base 1e9 limbs (little-endian), enough for 2^128 and
// 5^1074 alike.
struct BigDec {
  std::vector<uint32_t> limbs{0};
  explicit BigDec(uint64_t v) {
    limbs.clear();
    do {
      limbs.push_back(static_cast<uint32_t>(v % 1000000000u));
      v /= 1000000000u;
    } while (v != 0);
  }
  void Mul(uint32_t k) {
    uint64_t carry = 0;
    for (uint32_t& l : limbs) {
      const uint64_t t = static_cast<uint64_t>(l) * k + carry;
      l = static_cast<uint32_t>(t % 1000000000u);
      carry = t / 1000000000u;
    }
    while (carry != 0) {
      limbs.push_back(static_cast<uint32_t>(carry % 1000000000u));
      carry /= 1000000000u;
    }
  }
  std::string ToString() const {
    std::string s = std::to_string(limbs.back());
    for (size_t i = limbs.size() - 1; i-- > 0;) s += fmt::format("{:09d}", limbs[i]);
    return s;
  }
};

std::string Binary(uint32_t v, int width) {
  std::string s;
  for (int i = width - 1; i >= 0; --i) s += ((v >> i) & 1u) ? '1' : '0';
  return s;
}
}  // namespace

std::string ExactDecimal(double v) {
  if (std::isnan(v)) return std::signbit(v) ? "-nan" : "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  if (v == 0) return std::signbit(v) ? "-0" : "0";
  // |v| = mant * 2^e with mant odd.
  int e = 0;
  const double m = std::frexp(std::fabs(v), &e);
  uint64_t mant = static_cast<uint64_t>(std::ldexp(m, 53));
  e -= 53;
  while ((mant & 1u) == 0) mant >>= 1, ++e;
  BigDec d(mant);
  std::string digits;
  if (e >= 0) {
    for (int i = 0; i < e; ++i) d.Mul(2);
    digits = d.ToString();
  } else {
    // mant * 2^e = mant * 5^-e / 10^-e: the digits of mant * 5^-e, point -e from the right.
    for (int i = 0; i < -e; ++i) d.Mul(5);
    digits = d.ToString();
    const size_t frac = static_cast<size_t>(-e);
    if (digits.size() <= frac) digits.insert(0, frac - digits.size() + 1, '0');
    digits.insert(digits.size() - frac, ".");
  }
  return (v < 0 ? "-" : "") + digits;
}

CodeFields DescribeCode(const ElementFormat& f, uint32_t code) {
  CodeFields c;
  c.format = &f;
  code &= f.code_mask();
  c.code = code;
  c.hex = fmt::format("0x{:0{}X}", code, (f.bits + 3) / 4);
  c.cls = f.Classify(code);
  c.value = f.id == ElementFormatId::kF32 ? static_cast<double>(F32FromBits(code)) : f.Value(code);
  c.value_text = ExactDecimal(c.value);
  if (f.kind == ElementKind::kInt) {
    c.bits = "0b" + Binary(code, f.bits);
    c.sign = f.is_signed && (code & f.sign_mask()) ? 1 : 0;
    c.formula = f.is_signed ? fmt::format("two's complement {} bits = {}", f.bits, c.value_text)
                            : fmt::format("unsigned {} bits = {}", f.bits, c.value_text);
    return c;
  }
  const int m_bits = f.mantissa_bits;
  const uint32_t mag = code & ~f.sign_mask();
  const uint32_t e = mag >> m_bits, m = mag & f.mantissa_mask();
  c.sign = f.is_signed && (code & f.sign_mask()) ? 1 : 0;
  c.exponent_field = e;
  if (m_bits > 0) c.mantissa_field = m;
  c.bits = "0b" + (f.is_signed ? std::string(c.sign ? "1" : "0") + "_" : std::string()) +
           Binary(e, f.exponent_bits) + (m_bits > 0 ? "_" + Binary(m, m_bits) : std::string());
  const std::string s = fmt::format("(-1)^{} × ", c.sign);
  switch (c.cls) {
    case ValueClass::kNaN:
      c.formula = fmt::format("NaN ({})", f.nonfinite == NonFinite::kNanNegZero ? "the negative-zero code"
                                          : f.nonfinite == NonFinite::kNanAllOnes ? "all ones"
                                                                                 : "exponent all ones, mantissa != 0");
      break;
    case ValueClass::kInfinity:
      c.formula = s + "inf (exponent all ones, mantissa 0)";
      break;
    case ValueClass::kZero:
      c.formula = s + "0";
      break;
    case ValueClass::kSubnormal: {
      c.exponent = 1 - f.bias;
      c.formula = fmt::format("{}2^(1-{}) × 0.{}b = {}2^{} × {} = {}", s, f.bias, Binary(m, m_bits),
                              c.sign ? "-" : "", 1 - f.bias, ExactDecimal(std::ldexp(m, -m_bits)),
                              c.value_text);
      break;
    }
    case ValueClass::kNormal: {
      c.exponent = static_cast<int64_t>(e) - f.bias;
      if (m_bits == 0)  // e8m0fnu
        c.formula = fmt::format("2^({}-{}) = 2^{} = {}", e, f.bias, *c.exponent, c.value_text);
      else
        c.formula = fmt::format("{}2^({}-{}) × 1.{}b = {}2^{} × {} = {}", s, e, f.bias, Binary(m, m_bits),
                                c.sign ? "-" : "", *c.exponent, ExactDecimal(1.0 + std::ldexp(m, -m_bits)),
                                c.value_text);
      break;
    }
  }
  return c;
}

}  // namespace bitsmith::cli
