// Fuzz target: `bitsmith explain VALUE --format FMT [--json]` input parsing.
//
// The parser lives in cli/ (ParseCode in cli/app.cc, the number path in
// cli/explain_cmd.cc, the text of a code in cli/element_text.cc), which is not a
// library: fuzz/CMakeLists.txt compiles those three files into this target, so
// the whole command runs through cli::Main exactly as the binary does.
//
// Input layout: byte 0 picks the format, byte 1 bit 0 adds --json, bit 1
// selects block mode; the rest, cut at the first NUL and to 96 bytes, is VALUE.
// Block mode (`explain --format <block type> --block ARG`): bit 2 of byte 1
// makes ARG the hex of one whole block taken from the rest (cycled), else the
// rest is ARG as text ('@' paths replaced: no file is read).
// Properties (block mode: 1 only, plus exit 0 for a whole hex block):
//  1. the command never crashes or throws; it exits 0 (a code or a number it
//     explained) or 2 (bad input), never 1;
//  2. VALUE that strtod reads completely (and is not a 0x/0b code) exits 0;
//  3. a 0x/0b code ParseCode accepts round-trips: ParseCode of its hex
//     spelling gives the same number;
//  4. for the code made of bytes 2..5 (masked to the format): the exact
//     decimal text of its value reads back (strtod) to the same double, and
//     DescribeCode's hex spelling parses back to the code.
// stdout goes to /dev/null (the explanations are not checked here; the CLI
// tests compare them with independent values).
#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/element_text.h"
#include "formats/dtype.h"
#include "formats/element_format.h"

namespace {

[[noreturn]] void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "explain_fuzz: property violated: %s: %s\n", what, detail.c_str());
  std::abort();
}

std::string Printable(const std::string& s) {
  std::string out;
  char buf[8];
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7F) out += static_cast<char>(c);
    else std::snprintf(buf, sizeof buf, "\\x%02x", c), out += buf;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bitsmith;
  static const bool quiet = [] {
    const int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, 1);
    return true;
  }();
  (void)quiet;
  if (size < 2) return 0;
  if (data[1] & 2) {
    static const std::vector<DType> blocks = [] {
      std::vector<DType> v;
      for (const DTypeInfo& info : kDTypes)
        if (info.is_block()) v.push_back(info.id);
      return v;
    }();
    const DTypeInfo& info = GetDType(blocks[data[0] % blocks.size()]);
    std::string arg;
    const bool whole = (data[1] & 4) && size > 2;
    if (whole) {
      char buf[4];
      for (int i = 0; i < info.block_bytes; ++i) {
        std::snprintf(buf, sizeof buf, "%02x", data[2 + i % (size - 2)]);
        arg += buf;
      }
    } else {
      arg.assign(reinterpret_cast<const char*>(data + 2), size - 2);
      arg = arg.substr(0, std::min<size_t>(arg.find('\0'), 1024));
      if (!arg.empty() && arg[0] == '@') arg[0] = 'x';
    }
    std::vector<std::string> args = {"bitsmith", "explain", "--format", std::string(info.name), "--block", arg};
    if (data[1] & 1) args.push_back("--json");
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int rc = cli::Main(static_cast<int>(args.size()), argv.data());
    if (rc != cli::kExitOk && rc != cli::kExitBadInput) Fail("exit code (block)", std::to_string(rc) + " for '" + Printable(arg) + "'");
    if (whole && rc != cli::kExitOk) Fail("a whole hex block is refused", std::string(info.name) + " " + arg);
    return 0;
  }
  const ElementFormat& f = kElementFormats[data[0] % kElementFormats.size()];
  const bool json = data[1] & 1;
  std::string value(reinterpret_cast<const char*>(data + 2), size - 2);
  value = value.substr(0, std::min<size_t>(value.find('\0'), 96));

  // 1-2. The command.
  // VALUE before --json (which takes an optional FILE). No `--` separator:
  // `explain ... -- VALUE` is refused ("unexpected argument '--'", reported),
  // so a VALUE starting with '-' is parsed as an option (exit 2, not checked).
  std::vector<std::string> args = {"bitsmith", "explain", "--format", std::string(f.name), value};
  if (json) args.push_back("--json");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int rc = cli::Main(static_cast<int>(args.size()), argv.data());
  if (rc != cli::kExitOk && rc != cli::kExitBadInput) Fail("exit code", std::to_string(rc) + " for '" + Printable(value) + "'");
  const auto code = cli::ParseCode(value);
  if (!code && !value.empty()) {
    char* end = nullptr;
    (void)std::strtod(value.c_str(), &end);
    if (end != value.c_str() && *end == '\0' && value[0] != '-' && rc != cli::kExitOk)
      Fail("a number strtod reads is refused", Printable(value));
  }
  // 3. Code spelling round trip.
  if (code) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "0x%llX", static_cast<unsigned long long>(*code));
    const auto again = cli::ParseCode(buf);
    if (!again || *again != *code) Fail("ParseCode round trip", Printable(value) + " -> " + buf);
  }
  // 4. The exact decimal of a code reads back exactly.
  if (size >= 6) {
    uint32_t c;
    std::memcpy(&c, data + 2, 4);
    c &= f.code_mask();
    const cli::CodeFields d = cli::DescribeCode(f, c);
    if (std::isfinite(d.value)) {
      const double back = std::strtod(d.value_text.c_str(), nullptr);
      if (back != d.value || std::signbit(back) != std::signbit(d.value))
        Fail("ExactDecimal does not read back", std::string(f.name) + " code " + d.hex + ": " + d.value_text);
    }
    const auto hex = cli::ParseCode(d.hex);
    if (!hex || *hex != c) Fail("DescribeCode hex does not parse back", std::string(f.name) + " " + d.hex);
  }
  return 0;
}
