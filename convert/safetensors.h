// safetensors: read and write single files and sharded checkpoints.
//
// The format (github.com/huggingface/safetensors, README "Format" and
// safetensors/src/tensor.rs):
//   8 bytes   N, little-endian u64: length of the header
//   N bytes   UTF-8 JSON object: {"__metadata__": {str: str}?,
//             "<name>": {"dtype": "F32", "shape": [d0, d1, ...],
//                        "data_offsets": [begin, end]}, ...}
//             padded with spaces to a multiple of 8 bytes by writers
//   rest      tensor data; offsets are relative to the start of this section
//             (byte 8 + N), little-endian, row-major ("C" order).
// The reference reader (tensor.rs, Metadata::validate) requires the tensors,
// sorted by offset, to cover the data section exactly: no gap, no overlap, no
// trailing bytes, byte length = elements x bits / 8 (a whole number of bytes).
// bitsmith enforces the same rules, so it accepts what Hugging Face accepts and
// everything it writes loads there.
//
// Sharded checkpoints (transformers' convention): `model.safetensors.index.json`
// = {"metadata": {"total_size": N, ...}, "weight_map": {"<tensor>": "<file>"}}
// beside the shards `model-00001-of-00003.safetensors`, ...
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "convert/file_io.h"
#include "convert/tensor_info.h"
#include "formats/error.h"

namespace bitsmith {

// The reference reader's header limit (tensor.rs MAX_HEADER_SIZE).
inline constexpr uint64_t kSafetensorsMaxHeader = 100'000'000;
// Default shard size of transformers' save_pretrained (max_shard_size="5GB").
inline constexpr uint64_t kSafetensorsDefaultShardSize = 5'000'000'000;
inline constexpr std::string_view kSafetensorsIndexName = "model.safetensors.index.json";

// Every dtype string of the format (safetensors >= 0.6 Dtype enum): its size in
// bits and bitsmith's storage type when there is one. F4 (packed E2M1, two per
// byte), F6_E2M3 / F6_E3M2 (packed 6-bit) and C64 have sizes but no bitsmith
// row: such tensors are listed and copied, never decoded.
struct SafetensorsDType {
  std::string_view name;
  int bits;
  std::optional<DType> dtype;
};
std::span<const SafetensorsDType> SafetensorsDTypes();
const SafetensorsDType* FindSafetensorsDType(std::string_view name);
// The safetensors spelling of a bitsmith type, nullopt when the format has none
// (block types, FNUZ formats, one-code-per-byte FP6/FP4).
std::optional<std::string_view> SafetensorsDTypeName(DType t);

// A parsed, validated safetensors header.
struct SafetensorsFile {
  std::string path;
  uint64_t file_size = 0;
  uint64_t header_length = 0;  // N (JSON text including its padding)
  uint64_t data_offset = 0;    // 8 + N: where offset 0 of data_offsets is
  bool has_metadata = false;   // an "__metadata__" entry was present
  std::vector<std::pair<std::string, std::string>> metadata;  // in header order
  std::vector<TensorInfo> tensors;                             // sorted by data offset
};

namespace detail {
// Test hook: when true, ReadSafetensors and ParseSafetensorsIndex skip their
// fast scanners (plain headers / indexes) and parse everything with the
// validating nlohmann SAX parsers, so tests can check that both paths give
// the same results. Never set in normal use.
inline bool g_safetensors_slow_path = false;
}  // namespace detail

// Reads and validates the header of a safetensors file. Never reads tensor data;
// allocates at most the header (<= kSafetensorsMaxHeader and <= the file size).
// Errors (kBadInput, kUnsupported for an unknown dtype) name the file and tensor.
Result<SafetensorsFile> ReadSafetensors(const ByteSource& src);
Result<SafetensorsFile> ReadSafetensorsFile(const std::string& path);

// ---------------------------------------------------------------------------
// Writing.

// One tensor to write: safetensors dtype spelling, row-major shape.
struct SafetensorsTensorSpec {
  std::string name;
  std::string dtype;  // "BF16", "F8_E4M3", "F4", ...
  std::vector<uint64_t> shape;
};
// The spec for a bitsmith type (error if safetensors cannot store it).
Result<SafetensorsTensorSpec> SafetensorsSpec(std::string name, DType dtype,
                                              std::vector<uint64_t> shape);
// The spec that re-writes a tensor read from a safetensors file unchanged.
Result<SafetensorsTensorSpec> SafetensorsSpecOf(const TensorInfo& t);
// Bytes of a tensor of this dtype and shape (error: unknown dtype, overflow, or
// a sub-byte dtype whose element count is not a whole number of bytes).
Result<uint64_t> SafetensorsTensorBytes(std::string_view dtype, const std::vector<uint64_t>& shape,
                                        std::string_view name);

// Lays out one file: header JSON ("__metadata__" first when `metadata` is set,
// then the tensors in the given order, contiguous from offset 0), padded with
// spaces to a multiple of 8 bytes. Errors: duplicate or empty names, names
// that are not valid UTF-8, unknown dtypes, sizes that overflow.
Result<PlannedFile> PlanSafetensors(
    const std::string& path, std::span<const SafetensorsTensorSpec> tensors,
    const std::optional<std::vector<std::pair<std::string, std::string>>>& metadata);

// Groups units (tensors, or a weight with its scale: what must share a shard)
// of `unit_bytes` bytes each into shards of at most `max_shard_bytes`, in
// order, the way transformers' split_torch_state_dict_into_shards does: a new
// shard starts when the next unit would overflow the current one; a unit
// larger than the limit gets a shard of its own. Returns index ranges
// [begin, end) into `unit_bytes` (one empty range for no units).
std::vector<std::pair<size_t, size_t>> GroupIntoShards(std::span<const uint64_t> unit_bytes,
                                                       uint64_t max_shard_bytes);
// "model-00001-of-00003.safetensors" (1-based index).
std::string ShardFileName(std::string_view stem, size_t index, size_t count);

// A sharded (or single-file) output in a directory.
struct SafetensorsShardPlan {
  std::vector<PlannedFile> shards;
  std::string index_path;  // empty when there is a single "model.safetensors"
  std::string index_json;  // the index file's text (indent 2, sorted keys, '\n')
};
// `groups`: (file name, tensors) per shard, in order. With one group named
// "model.safetensors" no index is written (as transformers does). The index's
// metadata holds total_size (sum of tensor bytes) plus `index_metadata`
// (values are JSON texts, e.g. "\"v1\"" or "12").
Result<SafetensorsShardPlan> PlanSafetensorsShards(
    const std::string& out_dir,
    std::span<const std::pair<std::string, std::vector<SafetensorsTensorSpec>>> groups,
    const std::optional<std::vector<std::pair<std::string, std::string>>>& metadata,
    const std::vector<std::pair<std::string, std::string>>& index_metadata = {});
// GroupIntoShards + ShardFileName(stem): "model.safetensors" when it all fits
// in one shard, else "model-0000i-of-0000n.safetensors" + index.
Result<SafetensorsShardPlan> PlanSafetensorsSharded(
    const std::string& out_dir, std::span<const SafetensorsTensorSpec> tensors,
    const std::optional<std::vector<std::pair<std::string, std::string>>>& metadata,
    uint64_t max_shard_bytes = kSafetensorsDefaultShardSize, std::string_view stem = "model");

// ---------------------------------------------------------------------------
// The index of a sharded checkpoint.

struct SafetensorsIndex {
  // weight_map entries in file order: (tensor name, shard file name).
  std::vector<std::pair<std::string, std::string>> weight_map;
  // "metadata" entries in file order, each value as compact JSON text.
  std::vector<std::pair<std::string, std::string>> metadata;
  std::optional<uint64_t> total_size;  // metadata.total_size when an integer
  // Shard file names in order of first appearance.
  std::vector<std::string> files() const;
};
// Parses and validates index JSON (<= 256 MiB): an object with a "weight_map"
// object of string values; every file name must be a plain name inside the
// directory (no '/', '\\', "..", NUL, not empty), duplicate keys are errors.
Result<SafetensorsIndex> ParseSafetensorsIndex(std::string_view json, const std::string& name);
Result<SafetensorsIndex> ReadSafetensorsIndex(const std::string& path);

// The same index with its weight_map as views (OpenCheckpoint's cross-check:
// no string per entry, 92 k entries for DeepSeek-V3). The views point into
// `text` (the file's bytes) or, when the validating parser ran, into
// `index.weight_map`; both stay valid when the struct is moved. Same
// validation and errors as ReadSafetensorsIndex.
struct SafetensorsIndexView {
  std::vector<uint8_t> text;
  SafetensorsIndex index;  // metadata and total_size (weight_map: see above)
  std::vector<std::pair<std::string_view, std::string_view>> weight_map;  // (tensor, shard file), in file order
};
Result<SafetensorsIndexView> ReadSafetensorsIndexView(const std::string& path);

// True when `name` is a plain file name: not empty, not "." or "..", no '/',
// '\\' or NUL.
bool IsPlainFileName(std::string_view name);

}  // namespace bitsmith
