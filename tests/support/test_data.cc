#include "support/test_data.h"

#include <sys/wait.h>  // WEXITSTATUS

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>

#include <catch2/catch.hpp>

namespace bitsmith::test {

std::filesystem::path DataDir() { return BITSMITH_TEST_DATA_DIR; }
std::filesystem::path SharedDir() {
  if (const char* env = std::getenv("BITSMITH_SHARED")) return env;
  return std::filesystem::path(BITSMITH_SHARED_DIR);
}
std::filesystem::path SourceDir() { return BITSMITH_SOURCE_DIR; }
std::filesystem::path BinaryDir() { return BITSMITH_BINARY_DIR; }
std::filesystem::path BitsmithExe() { return BinaryDir() / "cli" / "bitsmith"; }

bool HaveShared(const std::string& what) {
  std::error_code ec;
  if (std::filesystem::is_directory(SharedDir() / "vectors", ec)) return true;
  std::cerr << "SKIPPED (needs ../shared, not found at " << SharedDir() << "): " << what << "\n";
  WARN("SKIPPED (needs ../shared): " << what);
  return false;
}

std::vector<uint8_t> ReadFile(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) FAIL("cannot read " << p);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

std::vector<uint8_t> ReadRange(const std::filesystem::path& p, uint64_t offset, uint64_t nbytes) {
  std::ifstream f(p, std::ios::binary);
  if (!f) FAIL("cannot read " << p);
  f.seekg(static_cast<std::streamoff>(offset));
  std::vector<uint8_t> out(nbytes);
  f.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(nbytes));
  if (static_cast<uint64_t>(f.gcount()) != nbytes) FAIL(p << " is shorter than " << offset + nbytes);
  return out;
}

TempDir::TempDir() {
  static std::atomic<unsigned> counter{0};
  std::random_device rd;
  auto base = std::filesystem::temp_directory_path();
  for (;;) {
    path_ = base / ("bitsmith-test-" + std::to_string(rd()) + "-" + std::to_string(counter++));
    if (std::filesystem::create_directory(path_)) break;
  }
}
TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

RunResult Run(const std::string& command_line) {
  TempDir tmp;
  auto out_path = tmp / "stdout";
  auto err_path = tmp / "stderr";
  std::string cmd = "(" + command_line + ") >" + out_path.string() + " 2>" + err_path.string() + " </dev/null";
  int raw = std::system(cmd.c_str());
  RunResult r;
  r.status = (raw != -1 && WIFEXITED(raw)) ? WEXITSTATUS(raw) : -1;
  auto slurp = [](const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  return r;
}

}  // namespace bitsmith::test
