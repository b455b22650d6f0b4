// Command registry and the conventions every bitsmith command shares.
//
// Each command lives in its own cli/<name>.cc and registers itself with
// BITSMITH_COMMAND: a setup function adds its options to a CLI11 subcommand and
// returns the function that runs it. Conventions (the same in every command):
//  - format names are lower case (`e4m3fn`, `q4_k`);
//  - `--json [FILE]`: no FILE or `-` prints JSON on stdout instead of the human
//    output; a FILE gets the JSON and the human output still goes to stdout;
//  - exit codes: 0 ok, 1 the job failed, 2 bad usage or bad input;
//  - progress lines only when stderr is a terminal; shapes are row-major.
#pragma once

#include <array>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "formats/error.h"

namespace bitsmith::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitBadInput = 2;

using Runner = std::function<int()>;

struct CommandSpec {
  std::string name;
  std::string help;
  int order;  // position in --help
  std::function<Runner(CLI::App& sub)> setup;
};

bool RegisterCommand(CommandSpec spec);
int Main(int argc, char** argv);

#define BITSMITH_CLI_CONCAT_INNER_(a, b) a##b
#define BITSMITH_CLI_CONCAT_(a, b) BITSMITH_CLI_CONCAT_INNER_(a, b)
#define BITSMITH_COMMAND(NAME, HELP, ORDER, SETUP)                              \
  static const bool BITSMITH_CLI_CONCAT_(bitsmith_cmd_reg_, __LINE__) =         \
      ::bitsmith::cli::RegisterCommand({NAME, HELP, ORDER, SETUP})

// --json [FILE]. After parsing, `JsonOut::active()` says whether JSON was asked
// for and `to_stdout()` whether it replaces the human output.
class JsonOut {
 public:
  void Add(CLI::App& app);
  bool active() const { return opt_ != nullptr && opt_->count() > 0; }
  bool to_stdout() const { return active() && (dest_.empty() || dest_ == "-"); }
  // Writes `j` (pretty, 2 spaces) to stdout or atomically to the file.
  Status Write(const nlohmann::json& j) const;
  // Same destination, the text written by `write` piece by piece (for outputs too
  // large to build as one document, e.g. `info` of 100k tensors).
  Status WriteWith(const std::function<void(std::FILE*)>& write) const;

 private:
  CLI::Option* opt_ = nullptr;
  std::string dest_;
};

// Prints "bitsmith: error: <message>" to stderr and returns the exit code for it.
int ReportError(const Error& e);
// Prints "bitsmith: warning: <message>" unless -q was given.
void Warn(const std::string& message);
bool Quiet();
bool StderrIsTerminal();

// Parses "0x5B", "0b0_1011_011", "123" as an unsigned code; nullopt if not a code.
std::optional<uint64_t> ParseCode(const std::string& s);
// Parses a byte size: "200GiB", "180GB", "5G" (= GB), "123" bytes.
std::optional<uint64_t> ParseSize(const std::string& s);

// Human number formatting: thousands separators, binary units.
std::string WithSeparators(uint64_t n);
// The same into a caller's buffer, no allocation (tables of 46 k rows).
using SeparatedDigits = std::array<char, 27>;  // 20 digits + 6 commas, and room
std::string_view WithSeparators(uint64_t n, SeparatedDigits& buf);
std::string HumanBytes(uint64_t n);     // "1.23 GiB"
std::string HumanCount(uint64_t n);     // "671.0 B", "3.26 M"

}  // namespace bitsmith::cli
