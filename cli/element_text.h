// Text for element codes, shared by `explain` and `table`: the fields of a
// code, its exact decimal value and its formula.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "formats/element_format.h"

namespace bitsmith::cli {

// The exact decimal expansion of a finite double (every value of every element
// format is a dyadic rational, so it terminates): "0.001953125", "-448",
// 2^-149 with all of its 149 decimals, never in exponent notation; "inf",
// "-inf", "nan", "-nan", "-0".
std::string ExactDecimal(double v);

struct CodeFields {
  const ElementFormat* format = nullptr;
  uint32_t code = 0;
  std::string hex;   // "0x5B" (digits for the format's width)
  std::string bits;  // "0b0_1011_011": sign _ exponent _ mantissa
  int sign = 0;
  std::optional<int64_t> exponent_field, mantissa_field;
  std::optional<int64_t> exponent;  // unbiased (normal and subnormal codes only)
  ValueClass cls = ValueClass::kZero;
  double value = 0;
  std::string value_text;  // ExactDecimal(value)
  std::string formula;     // "(-1)^0 × 2^(11-7) × 1.011b = 2^4 × 1.375 = 22"
};

CodeFields DescribeCode(const ElementFormat& f, uint32_t code);

}  // namespace bitsmith::cli
