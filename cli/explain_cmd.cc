// `bitsmith explain VALUE --format FMT [--json [FILE]]`: what a code means, or
// which code a number becomes.
// `bitsmith explain --format q4_k --block HEX|@FILE[:OFFSET] [--json [FILE]]`:
// one block of a block format, field by field (cli/block_text.h).
//
//   VALUE a code:   0x5B, 0b0_1011_011 -> fields, unbiased exponent, class, the
//                   exact value in decimal, the formula.
//   VALUE a number: 3.14, -1e-3, inf, nan -> the code it encodes to (both
//                   overflow modes), the value represented, absolute/relative
//                   error and the two neighbouring codes.
// Numbers are first rounded to float32 (what the encoders take), then encoded
// with the scalar oracle of codecs/element.h. Negative numbers may need `--`
// before them (`bitsmith explain --format e4m3fn -- -1e-3`) or are picked up
// as an unrecognised argument.
#include <cmath>
#include <cstdlib>  // std::strtod, std::strtof
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/block_text.h"
#include "cli/commands.h"
#include "cli/element_text.h"
#include "codecs/element.h"
#include "formats/dtype.h"
#include "formats/element_format.h"
#include "formats/half.h"

namespace bitsmith::cli {
namespace {

// The two finite codes bracketing x (strictly below / above when x is itself
// representable). nullopt at the ends of the range.
struct Neighbors {
  std::optional<uint32_t> below, above;
};

Neighbors FindNeighbors(const ElementFormat& f, double x) {
  Neighbors n;
  if (std::isnan(x)) return n;
  if (f.id == ElementFormatId::kF32) {
    const float xf = static_cast<float>(x);
    const float lo = std::nextafter(xf, -INFINITY), hi = std::nextafter(xf, INFINITY);
    if (std::isfinite(lo)) n.below = F32Bits(lo);
    if (std::isfinite(hi)) n.above = F32Bits(hi);
    return n;
  }
  // <= 16 bits: scan every finite code (65,536 at most).
  double best_lo = -INFINITY, best_hi = INFINITY;
  for (uint32_t c = 0; c < f.code_count(); ++c) {
    const double v = f.Value(c);
    if (!std::isfinite(v)) continue;
    if (v < x && (v > best_lo || (v == best_lo && !std::signbit(v)))) best_lo = v, n.below = c;
    if (v > x && (v < best_hi || (v == best_hi && !std::signbit(v)))) best_hi = v, n.above = c;
  }
  return n;
}

nlohmann::json CodeJson(const CodeFields& c) {
  auto opt = [](const std::optional<int64_t>& v) -> nlohmann::json {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
  };
  return {{"format", std::string(c.format->name)},
          {"code", c.hex},
          {"bits", c.bits},
          {"sign", c.sign},
          {"exponent_field", opt(c.exponent_field)},
          {"mantissa_field", opt(c.mantissa_field)},
          {"exponent", opt(c.exponent)},
          {"class", std::string(ValueClassName(c.cls))},
          {"value", c.value_text},
          {"formula", c.formula}};
}

void PrintCode(const CodeFields& c) {
  fmt::print("{} code {} = {}\n", c.format->name, c.hex, c.bits);
  if (c.format->is_signed) fmt::print("  sign      {} ({})\n", c.sign, c.sign ? "-" : "+");
  if (c.exponent_field)
    fmt::print("  exponent  field {}{}\n", *c.exponent_field,
               c.exponent ? fmt::format(", unbiased {}", *c.exponent) : std::string());
  if (c.mantissa_field) fmt::print("  mantissa  field {}\n", *c.mantissa_field);
  fmt::print("  class     {}\n", ValueClassName(c.cls));
  fmt::print("  value     {}\n", c.value_text);
  fmt::print("  formula   {}\n", c.formula);
}

std::string NumberText(double v) { return fmt::format("{}", v); }  // shortest round-trip

Runner Setup(CLI::App& sub) {
  auto value = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>();
  auto json = std::make_shared<JsonOut>();
  auto block = std::make_shared<std::string>();
  sub.add_option("VALUE", *value, "A code (0x5B, 0b0_1011_011) or a number (3.14, -1e-3, inf, nan)");
  sub.add_option("--format,-f", *format, "Element format (e4m3fn, e5m2, bf16, e2m1fn, int8, ...) or, with "
                                         "--block, a block format (q4_k, q8_0, mxfp8_e4m3, ...)")
      ->required();
  sub.add_option("--block", *block,
                 "One block of a block format: hex bytes (spaces allowed) or @FILE[:OFFSET] (byte offset)");
  json->Add(sub);
  sub.allow_extras();  // lets "-1e-3" through (CLI11 would take it for option -1)
  CLI::App* app = &sub;
  return [value, format, json, app, block]() -> int {
    std::string v = *value;
    std::vector<std::string> extras = app->remaining();
    // CLI11 passes the end-of-options marker through with allow_extras(): `explain -f e4m3fn
    // -- -1e-3` is the documented way to give a negative number, so "--" is not an argument.
    std::erase(extras, std::string("--"));
    if (!block->empty()) {
      // ---- A block ----
      if (!v.empty() || !extras.empty())
        return ReportError(MakeError(ErrorKind::kBadUsage, "explain: give either VALUE or --block, not both"));
      const auto t = FindDType(*format);
      if (!t || !GetDType(*t).is_block())
        return ReportError(MakeError(ErrorKind::kBadUsage,
                                     "--format {}: --block needs a block format (see `bitsmith formats`)", *format));
      auto bytes = ReadBlockArg(*t, *block);
      if (!bytes.ok()) return ReportError(bytes.error());
      auto d = DescribeBlock(*t, *bytes);
      if (!d.ok()) return ReportError(d.error());
      if (json->active()) {
        if (Status s = json->Write(BlockJson(*d)); !s.ok()) return ReportError(s.error());
        if (json->to_stdout()) return kExitOk;
      }
      PrintBlock(*d);
      return kExitOk;
    }
    if (v.empty() && extras.size() == 1) v = extras[0];
    else if (!extras.empty())
      return ReportError(MakeError(ErrorKind::kBadUsage, "explain: unexpected argument '{}'", extras[0]));
    if (v.empty()) return ReportError(MakeError(ErrorKind::kBadUsage, "explain: VALUE is required"));
    const ElementFormat* f = FindElementFormat(*format);
    if (f == nullptr) {
      if (auto t = FindDType(*format); t && GetDType(*t).is_block())
        return ReportError(MakeError(ErrorKind::kUnsupported,
                                     "explain: {} is a block format: explain one block with --block HEX "
                                     "or --block @FILE:OFFSET",
                                     *format));
      return ReportError(MakeError(ErrorKind::kBadUsage,
                                   "--format {}: unknown element format (see `bitsmith formats`)", *format));
    }
    nlohmann::json j;
    if (auto code = ParseCode(v)) {
      // ---- A code ----
      if (f->bits < 32 && *code >= f->code_count())
        return ReportError(MakeError(ErrorKind::kBadInput, "explain: code {} does not fit {} ({} bits: 0..0x{:X})",
                                     v, f->name, f->bits, f->code_mask()));
      if (*code > 0xFFFFFFFFull)
        return ReportError(MakeError(ErrorKind::kBadInput, "explain: code {} does not fit {} (32 bits)", v, f->name));
      const CodeFields c = DescribeCode(*f, static_cast<uint32_t>(*code));
      j = CodeJson(c);
      if (json->active()) {
        if (Status s = json->Write(j); !s.ok()) return ReportError(s.error());
        if (json->to_stdout()) return kExitOk;
      }
      PrintCode(c);
      return kExitOk;
    }
    // ---- A number ----
    char* end = nullptr;
    const double xd = std::strtod(v.c_str(), &end);
    if (end == v.c_str() || *end != '\0')
      return ReportError(MakeError(ErrorKind::kBadUsage,
                                   "explain: '{}' is neither a code (0x.., 0b..) nor a number", v));
    const float x = std::strtof(v.c_str(), nullptr);  // correctly rounded to f32
    const uint32_t code = EncodeF32Ref(f->id, x, Overflow::kNonSaturating);
    const uint32_t sat = EncodeF32Ref(f->id, x, Overflow::kSaturate);
    const CodeFields c = DescribeCode(*f, code);
    const double repr = f->id == ElementFormatId::kF32 ? static_cast<double>(F32FromBits(code)) : f->Value(code);
    const bool errors_defined = std::isfinite(repr) && std::isfinite(x);
    const double abs_err = errors_defined ? std::fabs(repr - static_cast<double>(x)) : NAN;
    const double rel_err = errors_defined && x != 0 ? abs_err / std::fabs(static_cast<double>(x)) : NAN;
    const Neighbors nb = FindNeighbors(*f, static_cast<double>(x));
    j = CodeJson(c);
    j["input"] = v;
    j["input_f32"] = ExactDecimal(static_cast<double>(x));
    j["abs_error"] = errors_defined ? nlohmann::json(abs_err) : nlohmann::json(nullptr);
    j["rel_error"] = std::isfinite(rel_err) ? nlohmann::json(rel_err) : nlohmann::json(nullptr);
    auto neighbor = [&](const std::optional<uint32_t>& n) -> nlohmann::json {
      if (!n) return nullptr;
      const CodeFields d = DescribeCode(*f, *n);
      return {{"code", d.hex}, {"value", d.value_text}};
    };
    j["neighbors"] = {neighbor(nb.below), neighbor(nb.above)};
    j["saturated_code"] = DescribeCode(*f, sat).hex;
    if (json->active()) {
      if (Status s = json->Write(j); !s.ok()) return ReportError(s.error());
      if (json->to_stdout()) return kExitOk;
    }
    fmt::print("{} <- {}\n", f->name, v);
    if (static_cast<double>(x) != xd || !std::isfinite(xd))
      fmt::print("  input     {} (as f32: {})\n", v, ExactDecimal(static_cast<double>(x)));
    else
      fmt::print("  input     {}\n", ExactDecimal(static_cast<double>(x)));
    if (sat != code)
      fmt::print("  code      {} = {}   (--saturate: {} = {})\n", c.hex, c.bits, DescribeCode(*f, sat).hex,
                 DescribeCode(*f, sat).value_text);
    else
      fmt::print("  code      {} = {}\n", c.hex, c.bits);
    fmt::print("  value     {}  ({})\n", c.value_text, ValueClassName(c.cls));
    if (errors_defined) {
      fmt::print("  abs error {}\n", NumberText(abs_err));
      fmt::print("  rel error {}\n", std::isfinite(rel_err) ? NumberText(rel_err) : std::string("-"));
    }
    auto side = [&](const std::optional<uint32_t>& n) {
      if (!n) return std::string("-");
      const CodeFields d = DescribeCode(*f, *n);
      return fmt::format("{} ({})", d.hex, d.value_text);
    };
    fmt::print("  neighbors {} < x < {}\n", side(nb.below), side(nb.above));
    fmt::print("  formula   {}\n", c.formula);
    return kExitOk;
  };
}

BITSMITH_COMMAND("explain", "Explain a code of an element format, or which code a number becomes", 40,
                 Setup);

}  // namespace
}  // namespace bitsmith::cli
