// Reader for ggml's reference block vectors (tests/data/blocks, tests/data/iquants;
// originally ../shared/vectors/{blocks,iquants}, see tests/data/README.md):
// manifest.json + inputs.f32 + imatrix.f32 + <type>.bin, every blob checked
// against its FNV-1a 64 digest when loaded.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "formats/dtype.h"

namespace bitsmith::test {

struct BlockVectorCase {
  std::string id;            // "q4_K/gauss_0.02/plain"
  std::string type;          // ggml spelling ("q4_K")
  DType dtype;               // bitsmith's row
  int64_t n_per_row = 0;
  int64_t nrows = 0;
  std::string distribution;  // "gauss_0.02"
  std::vector<float> input;          // nrows * n_per_row
  std::vector<float> imatrix;        // n_per_row weights, or empty
  std::vector<uint8_t> quant;        // what ggml_quantize_chunk wrote
  std::vector<float> dequant;        // what to_float gave
};

// All cases of the manifest in `dir`; `type_filter` (ggml spelling or bitsmith
// name, case-insensitive) keeps only that type when non-empty. FAILs the current
// test when a file is missing, short, or its digest does not match.
std::vector<BlockVectorCase> LoadBlockVectors(const std::filesystem::path& dir,
                                              const std::string& type_filter = "");

uint64_t Fnv1a64(const void* data, size_t n);

}  // namespace bitsmith::test
