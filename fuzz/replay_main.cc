// A main for fuzz targets built without libFuzzer (e.g. under gcc in the test
// build), after fmt's test/fuzzing/main.cc. It replays every file named on the
// command line (directories recursively, in sorted order) and then
// BITSMITH_FUZZ_RANDOM (default 2000) deterministic pseudo-random inputs of
// 0..4096 bytes, so the target is exercised even with an empty corpus.
// A failing property aborts inside the target, which fails the ctest.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {
void RunFile(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::vector<uint8_t> bytes(std::istreambuf_iterator<char>(f), {});
  LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
}
}  // namespace

int main(int argc, char** argv) {
  size_t files = 0;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path arg(argv[i]);
    std::error_code ec;
    if (std::filesystem::is_directory(arg, ec)) {
      std::vector<std::filesystem::path> all;
      for (auto& e : std::filesystem::recursive_directory_iterator(arg))
        if (e.is_regular_file()) all.push_back(e.path());
      std::sort(all.begin(), all.end());
      for (auto& p : all) RunFile(p), ++files;
    } else if (std::filesystem::is_regular_file(arg, ec)) {
      RunFile(arg), ++files;
    }
  }
  long n_random = 2000;
  if (const char* env = std::getenv("BITSMITH_FUZZ_RANDOM")) n_random = std::atol(env);
  std::mt19937_64 rng(20261123);
  std::vector<uint8_t> buf;
  for (long i = 0; i < n_random; ++i) {
    buf.resize(rng() % 4097);
    for (auto& b : buf) b = static_cast<uint8_t>(rng());
    LLVMFuzzerTestOneInput(buf.data(), buf.size());
  }
  std::printf("replayed %zu corpus files and %ld random inputs\n", files, n_random);
  return 0;
}
