#include "formats/element_format.h"

namespace bitsmith {

std::string_view ValueClassName(ValueClass c) {
  switch (c) {
    case ValueClass::kZero: return "zero";
    case ValueClass::kSubnormal: return "subnormal";
    case ValueClass::kNormal: return "normal";
    case ValueClass::kInfinity: return "inf";
    case ValueClass::kNaN: return "nan";
  }
  return "?";
}

const ElementFormat* FindElementFormat(std::string_view name) {
  for (const ElementFormat& f : kElementFormats)
    if (f.name == name || f.ml_dtypes == name) return &f;
  return nullptr;
}

}  // namespace bitsmith
