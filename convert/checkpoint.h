// A model checkpoint as one list of tensors, whatever its files look like.
//
// OpenCheckpoint(path) accepts:
//   - a .safetensors file;
//   - a directory with model.safetensors.index.json (or one other
//     *.safetensors.index.json) and its shards -- the shards may be symlinks to
//     regular files anywhere (the Hugging Face hub cache layout);
//   - a directory with model.safetensors, or with exactly one .safetensors file,
//     or with one GGUF model (single or split);
//   - an index .json file given directly;
//   - a .gguf file, including one split of a set ("-00002-of-00003.gguf"): the
//     whole set is opened and read as one model;
//   - OUT.gguf that does not exist when OUT-00001-of-NNNNN.gguf does (what
//     `convert ... OUT.gguf --split-max-size` writes): that split set.
// The result lists every tensor (validated descriptors, never data), the
// format's metadata, the non-weight files of a directory (config.json,
// tokenizer files, ...) that a converter copies, and warnings (inconsistencies
// that do not stop a conversion). Library code never prints: the caller shows
// the warnings.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "convert/gguf.h"
#include "convert/name_index.h"
#include "convert/safetensors.h"
#include "convert/tensor_info.h"
#include "formats/error.h"

namespace bitsmith {

struct Checkpoint {

  FileFormat format = FileFormat::kSafetensors;
  std::string path;                 // as given to OpenCheckpoint
  std::string dir;                  // directory of the weight files
  std::vector<std::string> files;   // weight files (shards / splits) in order; TensorInfo::file_index
  std::vector<uint64_t> file_sizes; // bytes on disk of each
  std::vector<TensorInfo> tensors;  // file by file; within a file in data order (safetensors) or
                                    // tensor-info order (GGUF)

  // safetensors: each shard's header (its `tensors` moved into `tensors` above)
  // and the index of a sharded checkpoint: its metadata and total_size; the
  // weight_map is checked against the shards' headers and then released
  // (empty here).
  std::vector<SafetensorsFile> shards;
  std::optional<SafetensorsIndex> index;
  std::string index_path;

  // GGUF: each split's header (metadata, tensor infos, alignment). The model's
  // metadata is gguf[0].kv.
  std::vector<GgufFile> gguf;

  std::vector<std::string> extra_files;  // full paths, sorted by name
  std::vector<std::string> warnings;

  const TensorInfo* Find(std::string_view name) const;
  uint64_t params() const;        // sum of elements
  uint64_t tensor_bytes() const;  // sum of tensor data bytes
  uint64_t disk_bytes() const;    // sum of file sizes (headers and padding included)
  // Shown metadata: safetensors __metadata__ of the first shard (plus "index."
  // keys from a sharded index's metadata); GGUF key-value pairs. Values are
  // compact JSON texts for safetensors index entries, display strings otherwise.
  std::vector<std::pair<std::string, std::string>> MetadataSummary(size_t max_chars = 60) const;

  // Builds the name -> tensor map used by Find (OpenCheckpoint calls it).
  // Call it again after changing `tensors`. Returns the index of the first
  // tensor whose name an earlier tensor already has (the map keeps the
  // earlier one), or -1 when the names are unique.
  long BuildIndex();
  // That map (for MatchFp8 and other lookups over `tensors`).
  const NameIndex& names() const { return names_; }

 private:
  NameIndex names_;  // positions, not views: copies and moves keep it valid
};

Result<Checkpoint> OpenCheckpoint(const std::string& path);

// True for file names a converter must not copy as "extra files": weights in
// any format (.safetensors, .gguf, .bin, .pt, .pth, .ckpt, .h5, .msgpack, .onnx)
// and weight indexes (*.index.json).
bool IsWeightFileName(std::string_view name);

}  // namespace bitsmith
