// `bitsmith formats [--json]`: the element-format and block-type tables.
#include <cmath>

#include <fmt/format.h>

#include "cli/commands.h"
#include "formats/dtype.h"
#include "formats/element_format.h"

namespace bitsmith::cli {
namespace {

std::string Num(double v) { return fmt::format("{:.9g}", v); }

std::string Specials(const ElementFormat& f) {
  if (!f.is_float()) return "-";
  std::string s;
  if (auto inf = f.inf_code()) s += fmt::format("inf 0x{:0{}X} ", *inf, (f.bits + 3) / 4);
  if (auto nan = f.nan_code()) s += fmt::format("nan 0x{:0{}X} ", *nan, (f.bits + 3) / 4);
  if (!f.has_negative_zero() && f.has_zero()) s += "no -0 ";
  if (!f.has_zero()) s += "no zero ";
  if (s.empty()) s = "finite only";
  if (s.back() == ' ') s.pop_back();
  return s;
}

nlohmann::json ElementJson(const ElementFormat& f) {
  nlohmann::json j = {{"name", f.name},
                      {"ml_dtypes", f.ml_dtypes},
                      {"kind", f.is_float() ? "float" : "int"},
                      {"bits", f.bits},
                      {"exponent_bits", f.exponent_bits},
                      {"mantissa_bits", f.mantissa_bits},
                      {"bias", f.bias},
                      {"signed", f.is_signed},
                      {"max", f.max_finite()},
                      {"lowest", f.lowest()},
                      {"has_inf", f.has_inf()},
                      {"has_nan", f.has_nan()},
                      {"has_negative_zero", f.has_negative_zero()},
                      {"summary", f.summary},
                      {"spec", f.spec}};
  if (f.is_float()) {
    j["min_normal"] = f.min_normal();
    j["min_subnormal"] = f.min_subnormal();
  }
  if (auto c = f.nan_code()) j["nan_code"] = *c;
  if (auto c = f.inf_code()) j["inf_code"] = *c;
  return j;
}

Runner Setup(CLI::App& sub) {
  auto json = std::make_shared<JsonOut>();
  json->Add(sub);
  return [json]() -> int {
    nlohmann::json j = {{"element_formats", nlohmann::json::array()},
                        {"block_formats", nlohmann::json::array()}};
    for (const ElementFormat& f : kElementFormats) j["element_formats"].push_back(ElementJson(f));
    for (const DTypeInfo& t : kDTypes) {
      if (!t.is_block()) continue;
      j["block_formats"].push_back({{"name", t.name},
                                    {"block_elems", t.block_elems},
                                    {"block_bytes", t.block_bytes},
                                    {"bpw", t.bits_per_weight()},
                                    {"ggml_type", t.ggml_type},
                                    {"requires_imatrix", t.requires_imatrix},
                                    {"summary", t.summary}});
    }
    if (json->active()) {
      if (Status s = json->Write(j); !s.ok()) return ReportError(s.error());
      if (json->to_stdout()) return kExitOk;
    }
    fmt::print("Element formats\n");
    fmt::print("{:<12} {:>4} {:>4} {:>4} {:>5}  {:>12} {:>12} {:>12}  {}\n", "name", "bits", "exp",
               "man", "bias", "max", "min normal", "min subnorm", "specials");
    for (const ElementFormat& f : kElementFormats) {
      if (f.is_float())
        fmt::print("{:<12} {:>4} {:>4} {:>4} {:>5}  {:>12} {:>12} {:>12}  {}\n", f.name, f.bits,
                   f.exponent_bits, f.mantissa_bits, f.bias, Num(f.max_finite()),
                   Num(f.min_normal()), Num(f.min_subnormal()), Specials(f));
      else
        fmt::print("{:<12} {:>4} {:>4} {:>4} {:>5}  {:>12} {:>12} {:>12}  range [{}, {}]\n", f.name,
                   f.bits, "-", "-", "-", Num(f.max_finite()), "-", "-", Num(f.lowest()),
                   Num(f.max_finite()));
    }
    fmt::print("\nBlock formats\n");
    fmt::print("{:<12} {:>6} {:>6} {:>8} {:>5}  {}\n", "name", "elems", "bytes", "bpw", "ggml",
               "layout");
    for (const DTypeInfo& t : kDTypes) {
      if (!t.is_block()) continue;
      fmt::print("{:<12} {:>6} {:>6} {:>8.4f} {:>5}  {}{}\n", t.name, t.block_elems, t.block_bytes,
                 t.bits_per_weight(), t.ggml_type >= 0 ? std::to_string(t.ggml_type) : "-",
                 t.summary, t.requires_imatrix ? " (imatrix required)" : "");
    }
    return kExitOk;
  };
}

BITSMITH_COMMAND("formats", "List every element format and block type with its limits", 50, Setup);

}  // namespace
}  // namespace bitsmith::cli
