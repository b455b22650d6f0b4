#include <unistd.h>  // isatty

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.h"
#include "convert/json_text.h"

namespace bitsmith::cli {

namespace {
std::vector<CommandSpec>& Registry() {
  static std::vector<CommandSpec> r;
  return r;
}
bool g_quiet = false;
}  // namespace

bool RegisterCommand(CommandSpec spec) {
  Registry().push_back(std::move(spec));
  return true;
}

bool Quiet() { return g_quiet; }
bool StderrIsTerminal() { return ::isatty(STDERR_FILENO) == 1; }

int ReportError(const Error& e) {
  fmt::print(stderr, "bitsmith: error: {}\n", e.message);
  return ExitCodeFor(e.kind);
}

void Warn(const std::string& message) {
  if (!g_quiet) fmt::print(stderr, "bitsmith: warning: {}\n", message);
}

void JsonOut::Add(CLI::App& app) {
  opt_ = app.add_option("--json", dest_,
                        "Write JSON: to FILE, or to stdout instead of the human output "
                        "when FILE is omitted or '-'")
             ->expected(0, 1)
             ->type_name("[FILE]");
}

namespace {

// `j` with every string and key that is not valid UTF-8 replaced by its
// PrintableText rendering ("bad\xffname"), as `info` and `convert --json` show
// such names (GGUF tensor names are arbitrary bytes; nlohmann's dump throws).
nlohmann::json WithPrintableStrings(const nlohmann::json& j) {
  if (j.is_string()) return Utf8OrPrintable(j.get_ref<const std::string&>());
  if (j.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& v : j) out.push_back(WithPrintableStrings(v));
    return out;
  }
  if (j.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [k, v] : j.items()) out[Utf8OrPrintable(k)] = WithPrintableStrings(v);
    return out;
  }
  return j;
}

}  // namespace

Status JsonOut::Write(const nlohmann::json& j) const {
  std::string text;
  try {
    text = j.dump(2) + "\n";
  } catch (const nlohmann::json::type_error&) {  // a string that is not UTF-8
    text = WithPrintableStrings(j).dump(2) + "\n";
  }
  return WriteWith([&](std::FILE* f) { std::fwrite(text.data(), 1, text.size(), f); });
}

Status JsonOut::WriteWith(const std::function<void(std::FILE*)>& write) const {
  if (to_stdout()) {
    write(stdout);
    if (std::fflush(stdout) != 0 || std::ferror(stdout))
      return MakeError(ErrorKind::kIo, "stdout: write failed");
    return Status::Ok();
  }
  const std::string tmp = dest_ + ".tmp-bitsmith";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return MakeError(ErrorKind::kIo, "{}: cannot write JSON output", dest_);
  write(f);
  const bool failed = std::fflush(f) != 0 || std::ferror(f);
  if (std::fclose(f) != 0 || failed) {
    std::remove(tmp.c_str());
    return MakeError(ErrorKind::kIo, "{}: write failed", dest_);
  }
  if (std::rename(tmp.c_str(), dest_.c_str()) != 0) {
    std::remove(tmp.c_str());
    return MakeError(ErrorKind::kIo, "{}: cannot rename the JSON output into place", dest_);
  }
  return Status::Ok();
}

std::optional<uint64_t> ParseCode(const std::string& s) {
  std::string digits;
  int base = 10;
  size_t i = 0;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) base = 16, i = 2;
  else if (s.size() > 2 && s[0] == '0' && (s[1] == 'b' || s[1] == 'B')) base = 2, i = 2;
  else return std::nullopt;  // decimal numbers are values, not codes
  for (; i < s.size(); ++i) {
    if (s[i] == '_' || s[i] == '\'') continue;
    digits += s[i];
  }
  if (digits.empty() || digits.size() > 16) return std::nullopt;
  uint64_t v = 0;
  for (char c : digits) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return std::nullopt;
    if (d >= base) return std::nullopt;
    v = v * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
  }
  return v;
}

std::optional<uint64_t> ParseSize(const std::string& s) {
  size_t pos = 0;
  double v;
  try {
    v = std::stod(s, &pos);
  } catch (...) {
    return std::nullopt;
  }
  if (!(v >= 0) || std::isinf(v)) return std::nullopt;
  std::string unit = s.substr(pos);
  unit.erase(std::remove(unit.begin(), unit.end(), ' '), unit.end());
  std::transform(unit.begin(), unit.end(), unit.begin(), [](unsigned char c) { return std::tolower(c); });
  double mult = 1;
  static const std::pair<const char*, double> kUnits[] = {
      {"", 1}, {"b", 1}, {"k", 1e3}, {"kb", 1e3}, {"m", 1e6}, {"mb", 1e6}, {"g", 1e9}, {"gb", 1e9},
      {"t", 1e12}, {"tb", 1e12}, {"kib", 1024.0}, {"mib", 1048576.0}, {"gib", 1073741824.0},
      {"tib", 1099511627776.0}};
  bool found = false;
  for (auto& [name, m] : kUnits)
    if (unit == name) mult = m, found = true;
  if (!found) return std::nullopt;
  const double bytes = std::floor(v * mult);
  if (bytes > 1.8e19) return std::nullopt;
  return static_cast<uint64_t>(bytes);
}

std::string_view WithSeparators(uint64_t n, SeparatedDigits& buf) {
  char digits[20];
  size_t k = 0;
  do digits[k++] = static_cast<char>('0' + n % 10), n /= 10;
  while (n);
  size_t len = 0;
  for (size_t i = k; i-- > 0;) {
    buf[len++] = digits[i];
    if (i > 0 && i % 3 == 0) buf[len++] = ',';
  }
  return std::string_view(buf.data(), len);
}

std::string WithSeparators(uint64_t n) {
  SeparatedDigits buf;
  return std::string(WithSeparators(n, buf));
}

std::string HumanBytes(uint64_t n) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 5) v /= 1024, ++u;
  return u == 0 ? fmt::format("{} B", n) : fmt::format("{:.2f} {}", v, kUnits[u]);
}

std::string HumanCount(uint64_t n) {
  static const char* kUnits[] = {"", "K", "M", "B", "T"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1000 && u < 4) v /= 1000, ++u;
  return u == 0 ? std::to_string(n) : fmt::format("{:.1f} {}", v, kUnits[u]);
}

int Main(int argc, char** argv) {
  CLI::App app{
      "bitsmith: bit-exact number formats and weight conversion for neural-network weights.\n"
      "Exit codes: 0 ok, 1 the job failed, 2 bad usage or bad input."};
  app.name("bitsmith");
  app.require_subcommand(1);
  app.add_flag("-q,--quiet", g_quiet, "Silence warnings");
  app.set_version_flag("--version", "bitsmith 0.1.0");
  auto& specs = Registry();
  std::sort(specs.begin(), specs.end(),
            [](const CommandSpec& a, const CommandSpec& b) { return a.order < b.order; });
  std::vector<std::pair<CLI::App*, Runner>> runners;
  for (const CommandSpec& spec : specs) {
    CLI::App* sub = app.add_subcommand(spec.name, spec.help);
    sub->add_flag("-q,--quiet", g_quiet, "Silence warnings");
    runners.emplace_back(sub, spec.setup(*sub));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitBadInput;
  }
  for (auto& [sub, run] : runners) {
    if (sub->parsed()) {
      try {
        return run();
      } catch (const std::bad_alloc&) {
        fmt::print(stderr, "bitsmith: error: out of memory\n");
        return kExitFailed;
      } catch (const std::exception& e) {
        fmt::print(stderr, "bitsmith: error: {}\n", e.what());
        return kExitFailed;
      }
    }
  }
  return kExitBadInput;
}

}  // namespace bitsmith::cli
