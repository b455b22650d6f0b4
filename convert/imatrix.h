// llama.cpp importance matrices (`--imatrix FILE`), both formats llama-quantize
// reads (common/imatrix-loader.cpp, tools/quantize/quantize.cpp load_imatrix):
//
//  - legacy .dat (llama-imatrix --output-format dat), little-endian:
//      i32 n_entries
//      n_entries x { i32 name_len, name bytes, i32 ncall, i32 nval, f32 sums[nval] }
//      optional: i32 chunk_count, i32 dataset_len, dataset bytes
//    importance = sums[i] / ncall (sums[i] itself when ncall <= 0).
//
//  - GGUF imatrix (the default since mid-2025): per tensor "<name>.in_sum2"
//    (F32, ne = [n_per_row, n_mat]) and "<name>.counts" (F32, ne = [1, n_mat]),
//    plus imatrix.datasets / imatrix.chunk_count / imatrix.chunk_size KVs.
//    importance[m][i] = in_sum2[m][i] / count[m] (count rounded to an integer
//    as llama.cpp does), 1 for every i when count[m] <= 0.
//
// Nothing in the file is trusted: every count and length is checked against the
// bytes left before anything is allocated; names must be unique; sums and counts
// must be finite and non-negative (they are sums of squares); a GGUF entry needs
// both tensors, F32, with matching sizes.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "convert/file_io.h"
#include "convert/tensor_info.h"
#include "formats/error.h"

namespace bitsmith {

struct Imatrix {
  std::string path;
  bool legacy = false;
  // Per tensor name: the importance weights llama-quantize would use,
  // n_per_row x n_mat values (one row of n_per_row per matrix of a 3-D tensor).
  std::map<std::string, std::vector<float>> values;
  std::vector<std::string> datasets;
  int64_t chunk_count = 0;

  const std::vector<float>* Find(const std::string& name) const {
    auto it = values.find(name);
    return it == values.end() ? nullptr : &it->second;
  }
};

// Reads either format (GGUF when the file starts with "GGUF", legacy otherwise).
Result<Imatrix> ReadImatrix(const ByteSource& src);
Result<Imatrix> ReadImatrixFile(const std::string& path);

// Checks that `values` fits tensor `t` (row length x number of matrices, where
// a 3-D [n_mat, rows, cols] tensor has n_mat matrices) and returns the number
// of matrices. Error (kBadInput) naming the tensor, the file and both sizes.
Result<uint64_t> ImatrixMatrices(const Imatrix& im, const TensorInfo& t, const std::vector<float>& values);

// Writers for tests and tools (the formats above, exactly as llama-imatrix writes them).
std::vector<uint8_t> WriteLegacyImatrix(const std::map<std::string, std::pair<int32_t, std::vector<float>>>& entries,
                                        int32_t chunk_count, const std::string& dataset);

}  // namespace bitsmith
