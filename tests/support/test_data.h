// Where tests find their reference data.
//
// tests/data/ is committed (small reference vectors with their README and
// provenance); ../shared/ (beside the repository) holds the larger data sets.
// Tests that need ../shared call RequireShared(), which skips them with a visible
// notice when it is absent. CI always has it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace bitsmith::test {

std::filesystem::path DataDir();    // tests/data
std::filesystem::path SharedDir();  // ../shared (may not exist)
std::filesystem::path SourceDir();  // repository root
std::filesystem::path BinaryDir();  // build tree
std::filesystem::path BitsmithExe();  // the built `bitsmith` binary

// True when ../shared exists; otherwise prints "SKIPPED (needs ../shared): what"
// once per call, so a skipped test is never silent.
bool HaveShared(const std::string& what);

// Reads a whole file; fails the current test (Catch2 FAIL) when unreadable.
std::vector<uint8_t> ReadFile(const std::filesystem::path& p);
// Reads `nbytes` at `offset`; fails the test when the file is shorter.
std::vector<uint8_t> ReadRange(const std::filesystem::path& p, uint64_t offset, uint64_t nbytes);

// A fresh empty temporary directory, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Runs a shell command line; returns its exit status (0..255) and captures stdout
// and stderr (merged unless `stderr_out` is given).
struct RunResult {
  int status = -1;
  std::string out;
  std::string err;
};
RunResult Run(const std::string& command_line);

}  // namespace bitsmith::test
