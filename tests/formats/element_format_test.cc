// The format table against literal numbers and against ml_dtypes' formats.json.
#include <cmath>
#include <cstring>  // std::memcpy
#include <fstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "formats/dtype.h"
#include "formats/element_format.h"
#include "formats/half.h"
#include "support/test_data.h"

namespace bitsmith {
namespace {

TEST_CASE("element format limits are the literal numbers", "[formats]") {
  auto f = [](ElementFormatId id) -> const ElementFormat& { return GetElementFormat(id); };
  CHECK(f(ElementFormatId::kE4M3FN).max_finite() == 448.0);
  CHECK(f(ElementFormatId::kE4M3FN).min_normal() == 0.015625);
  CHECK(f(ElementFormatId::kE4M3FN).min_subnormal() == 0.001953125);
  CHECK(f(ElementFormatId::kE5M2).max_finite() == 57344.0);
  CHECK(f(ElementFormatId::kE5M2).min_subnormal() == std::ldexp(1.0, -16));
  CHECK(f(ElementFormatId::kE4M3FNUZ).max_finite() == 240.0);
  CHECK(f(ElementFormatId::kE5M2FNUZ).max_finite() == 57344.0);
  CHECK(f(ElementFormatId::kE4M3B11FNUZ).max_finite() == 30.0);
  CHECK(f(ElementFormatId::kE8M0FNU).max_finite() == std::ldexp(1.0, 127));
  CHECK(f(ElementFormatId::kE8M0FNU).min_subnormal() == std::ldexp(1.0, -127));
  CHECK(f(ElementFormatId::kE3M2FN).max_finite() == 28.0);
  CHECK(f(ElementFormatId::kE2M3FN).max_finite() == 7.5);
  CHECK(f(ElementFormatId::kE2M1FN).max_finite() == 6.0);
  CHECK(f(ElementFormatId::kF16).max_finite() == 65504.0);
  CHECK(f(ElementFormatId::kBF16).max_finite() == 3.3895313892515355e38);
  CHECK(f(ElementFormatId::kF32).max_finite() == 3.4028234663852886e38);
  CHECK(f(ElementFormatId::kInt8).lowest() == -128.0);
  CHECK(f(ElementFormatId::kUint4).max_finite() == 15.0);
  CHECK(*f(ElementFormatId::kE4M3FN).nan_code() == 0x7F);
  CHECK(*f(ElementFormatId::kE4M3FN).nan_code(true) == 0xFF);
  CHECK(*f(ElementFormatId::kE5M2).nan_code() == 0x7E);
  CHECK(*f(ElementFormatId::kE5M2).inf_code(true) == 0xFC);
  CHECK(*f(ElementFormatId::kE4M3FNUZ).nan_code(true) == 0x80);
  CHECK(*f(ElementFormatId::kE8M0FNU).nan_code() == 0xFF);
  CHECK(!f(ElementFormatId::kE2M1FN).nan_code().has_value());
}

// Every code's value against ml_dtypes' decode tables (tests/data/float).
TEST_CASE("every code decodes to ml_dtypes' value", "[formats]") {
  const auto dir = test::DataDir() / "float" / "decode";
  for (const ElementFormat& f : kElementFormats) {
    if (!f.is_float() || f.bits > 8) continue;
    auto bytes = test::ReadFile(dir / (std::string(f.ml_dtypes) + ".f32"));
    REQUIRE(bytes.size() == 4u * f.code_count());
    for (uint32_t code = 0; code < f.code_count(); ++code) {
      uint32_t want;
      std::memcpy(&want, bytes.data() + 4 * code, 4);
      const double v = f.Value(code);
      INFO(f.name << " code " << code);
      if (std::isnan(v)) {
        CHECK(f.Classify(code) == ValueClass::kNaN);
        CHECK(std::isnan(F32FromBits(want)));
        CHECK(std::signbit(v) == static_cast<bool>(want >> 31));
      } else {
        CHECK(F32Bits(static_cast<float>(v)) == want);
      }
    }
  }
}

TEST_CASE("formats.json parameters equal the table rows", "[formats]") {
  std::ifstream in(test::DataDir() / "float" / "formats.json");
  REQUIRE(in.good());
  auto j = nlohmann::json::parse(in);
  int checked = 0;
  for (auto& [name, spec] : j["formats"].items()) {
    const ElementFormat* f = FindElementFormat(name);
    INFO(name);
    REQUIRE(f != nullptr);
    if (spec.contains("exponent_bits")) CHECK(spec["exponent_bits"] == f->exponent_bits);
    if (spec.contains("mantissa_bits")) CHECK(spec["mantissa_bits"] == f->mantissa_bits);
    if (spec.contains("exponent_bias")) CHECK(spec["exponent_bias"] == f->bias);
    if (spec.contains("max_finite")) CHECK(spec["max_finite"].get<double>() == f->max_finite());
    if (spec.contains("min_positive")) CHECK(spec["min_positive"].get<double>() == f->min_subnormal());
    ++checked;
  }
  CHECK(checked >= 9);
}

TEST_CASE("dtype table lookups", "[formats]") {
  CHECK(FindDType("q4_k") == DType::kQ4_K);
  CHECK(FindDType("Q4_K") == DType::kQ4_K);
  CHECK(FindDType("float8_e4m3fn") == DType::kE4M3FN);
  CHECK(!FindDType("q9_k").has_value());
  CHECK(DTypeFromGgml(12) == DType::kQ4_K);
  CHECK(DTypeFromGgml(39) == DType::kMXFP4);
  CHECK(!DTypeFromGgml(4).has_value());
  CHECK(DTypeFromSafetensors("F8_E4M3") == DType::kE4M3FN);
  CHECK(RowBytes(DType::kQ4_K, 4096) == 4096u / 256 * 144);
  CHECK(!RowBytes(DType::kQ4_K, 4000).has_value());
  for (int id = 0; id < kGgmlTypeCount; ++id) {
    if (auto name = GgmlTypeName(id)) {
      INFO("ggml type " << id);
      auto t = DTypeFromGgml(id);
      REQUIRE(t.has_value());
      CHECK(*FindDType(*name) == *t);
    }
  }
}

// f16 conversion: exhaustive over all f16 codes (decode then re-encode).
TEST_CASE("f16 round trip over every code", "[formats]") {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = F16BitsToF32(static_cast<uint16_t>(h));
    const uint16_t back = F32ToF16Bits(f);
    INFO("f16 code " << h);
    if (std::isnan(f)) CHECK((back & 0x7FFF) == 0x7E00);
    else CHECK(back == h);
    CHECK((std::isnan(f) || f == static_cast<float>(GetElementFormat(ElementFormatId::kF16).Value(h))));
  }
}

}  // namespace
}  // namespace bitsmith
