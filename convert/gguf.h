// GGUF v3 (and v2): read, write, split.
//
// Layout (ggml/docs/gguf.md; ggml/src/gguf.cpp is the reference reader and
// writer), all little-endian:
//   "GGUF"  u32 version  u64 n_tensors  u64 n_kv
//   n_kv x  { string key, u32 type, value }             (metadata)
//   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type,
//                 u64 offset }                         (tensor infos)
//   zero padding to general.alignment (u32 KV, default 32)
//   data section: tensor i at data_start + offset_i, offsets multiples of the
//   alignment; ggml's writer puts the tensors back to back, each padded to the
//   alignment with zeros (gguf_add_tensor), and so does bitsmith.
// string = u64 length + bytes (no NUL). Value types: u8 i8 u16 i16 u32 i32 f32
// bool(1 byte) string array(u32 elem type, u64 count, elems) u64 i64 f64.
// v2 and v3 are identical in little-endian files (v3 added big-endian files,
// which bitsmith refuses); v1 used 32-bit counts and is refused, as ggml does.
//
// Values are kept as their raw bytes, so a file read and written again with
// nothing changed is byte-identical (NaN payloads, bool bytes, KV order, types,
// alignment and tensor order all survive).
//
// Validation (everything ggml checks, and more): magic, version, every count and
// length against the bytes left in the file *before* allocating, n_dims <= 4,
// ne >= 0 with an element count below 2^63, ggml type ids (removed ids refused),
// row length a multiple of the block size, alignment a power of two, each
// offset aligned and its data inside the file, no overlapping data, no
// duplicate keys or tensor names.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "convert/file_io.h"
#include "convert/tensor_info.h"
#include "formats/error.h"

namespace bitsmith {

enum class GgufType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};
inline constexpr uint32_t kGgufTypeCount = 13;
// ggml's short names: "u8", "i32", "f32", "bool", "str", "arr", ...
std::string_view GgufTypeName(GgufType t);
// Bytes of one element; 0 for string and array.
int GgufTypeSize(GgufType t);

inline constexpr uint32_t kGgufDefaultAlignment = 32;
// gguf.cpp's GGUF_MAX_ALIGNMENT: larger alignments are refused (a hostile one
// would turn padding into gigabytes).
inline constexpr uint32_t kGgufMaxAlignment = 1u << 20;
inline constexpr int kGgmlMaxDims = 4;
inline constexpr int kGgmlMaxName = 64;  // GGML_MAX_NAME: names must be shorter
inline constexpr int kGgufMaxArrayDepth = 8;  // arrays of arrays (ggml itself refuses any)

// A metadata value.
struct GgufValue {
  GgufType type = GgufType::kU8;
  GgufType elem_type = GgufType::kU8;  // arrays only
  std::vector<uint8_t> raw;            // numeric/bool scalar or array: the little-endian bytes
  std::vector<std::string> strings;    // kString: one entry; array of strings: every entry
  std::vector<GgufValue> arrays;       // array of arrays

  static GgufValue U8(uint8_t v);
  static GgufValue I8(int8_t v);
  static GgufValue U16(uint16_t v);
  static GgufValue I16(int16_t v);
  static GgufValue U32(uint32_t v);
  static GgufValue I32(int32_t v);
  static GgufValue U64(uint64_t v);
  static GgufValue I64(int64_t v);
  static GgufValue F32(float v);
  static GgufValue F64(double v);
  static GgufValue Bool(bool v);
  static GgufValue Str(std::string v);
  static GgufValue StrArray(std::vector<std::string> v);
  // Array of a numeric or bool type from its little-endian bytes.
  static GgufValue NumArray(GgufType elem, std::vector<uint8_t> bytes);

  bool is_array() const { return type == GgufType::kArray; }
  // Elements of an array (1 for a scalar).
  uint64_t count() const;
  // Integer scalars (any width, bool too) as u64/i64 when the value fits.
  std::optional<uint64_t> AsUInt() const;
  std::optional<int64_t> AsInt() const;
  // Numeric scalars as double.
  std::optional<double> AsDouble() const;
  const std::string* AsString() const { return type == GgufType::kString ? &strings[0] : nullptr; }
  bool operator==(const GgufValue&) const = default;
};

struct GgufKV {
  std::string key;
  GgufValue value;
  bool operator==(const GgufKV&) const = default;
};

// A tensor info as stored: ggml dimension order (ne[0] = row length).
struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> ne;
  int ggml_type = 0;
  uint64_t offset = 0;  // relative to the data section
  uint64_t nbytes = 0;
  bool operator==(const GgufTensorInfo&) const = default;
};

struct GgufFile {
  std::string path;
  uint64_t file_size = 0;
  uint32_t version = 3;
  std::vector<GgufKV> kv;                // file order
  std::vector<GgufTensorInfo> tensors;   // file order
  uint32_t alignment = kGgufDefaultAlignment;
  uint64_t data_offset = 0;              // absolute start of the data section
  // True when the tensors are laid out as ggml writes them: back to back in
  // info order, each padded to the alignment (what llama.cpp requires).
  bool canonical_layout = true;

  const GgufValue* Find(std::string_view key) const;
  // Descriptors: row-major shapes (ne reversed), absolute offsets, `file` = path.
  std::vector<TensorInfo> Tensors(int file_index = 0) const;
};

// Reads and validates a GGUF header (metadata and tensor infos; never the
// tensor data). Memory is bounded by a small multiple of the file size whatever
// the counts claim. Errors (kBadInput / kUnsupported) name the file, the key or
// tensor, the value found and the allowed range.
Result<GgufFile> ReadGguf(const ByteSource& src);
Result<GgufFile> ReadGgufFile(const std::string& path);

// ---------------------------------------------------------------------------
// Split files (llama.cpp gguf-split): "<prefix>-00001-of-00003.gguf", each with
// split.no (u16, 0-based), split.count (u16), split.tensors.count (i32); the
// first split carries all other metadata.

inline constexpr std::string_view kGgufSplitNo = "split.no";
inline constexpr std::string_view kGgufSplitCount = "split.count";
inline constexpr std::string_view kGgufSplitTensorsCount = "split.tensors.count";

// "<prefix>-00002-of-00003.gguf" for index 1 (0-based, as llama_split_path).
std::string GgufSplitPath(std::string_view prefix, int index, int count);
// When `path` names a split ("...-00002-of-00003.gguf"): its prefix, 0-based
// index and count.
struct GgufSplitName {
  std::string prefix;
  int index = 0;
  int count = 0;
};
std::optional<GgufSplitName> ParseGgufSplitPath(std::string_view path);

// Opens every split of the set `path` belongs to (or just `path` when it is not
// a split name) and checks the split keys: numbering, count, that the total of
// tensors matches split.tensors.count and that no name is in two splits.
Result<std::vector<GgufFile>> ReadGgufSplits(const std::string& path);

// ---------------------------------------------------------------------------
// Writing.

struct GgufTensorSpec {
  std::string name;
  std::vector<uint64_t> ne;  // ggml order, written as given (n_dims = ne.size())
  int ggml_type = 0;
};
GgufTensorSpec GgufSpecOf(const GgufTensorInfo& t);
// Bytes of a tensor of this ggml type and ne (error: unknown type, row length
// not a multiple of the block size, overflow).
Result<uint64_t> GgufTensorBytes(int ggml_type, const std::vector<uint64_t>& ne, std::string_view name);

// Lays out one GGUF file exactly as ggml's gguf_write does: header, KVs and
// tensor infos in the given order, zero padding to the alignment (from the
// general.alignment KV, default 32), tensors back to back each padded to the
// alignment. Re-planning a GgufFile's own KVs and tensors reproduces its bytes
// when its layout is canonical. Errors: empty/duplicate keys or names, names of
// 64 bytes or more (ggml cannot load them), n_dims > 4, unknown types, a bad
// general.alignment.
Result<PlannedFile> PlanGguf(const std::string& path, uint32_t version, std::span<const GgufKV> kv,
                             std::span<const GgufTensorSpec> tensors);

// Splits like `llama-gguf-split --split-max-size`: tensors in order, a new split
// when the next tensor's padded data would push the current split's tensor data
// over `max_split_bytes` (a tensor larger than that gets a split of its own).
// Split 0 gets `kv` (minus any split.* keys) followed by split.no, split.count,
// split.tensors.count; the others get only the split keys (plus
// general.alignment when it is not 32). `path` "out.gguf" gives
// "out-00001-of-0000N.gguf".
Result<std::vector<PlannedFile>> PlanGgufSplit(const std::string& path, uint32_t version,
                                               std::span<const GgufKV> kv,
                                               std::span<const GgufTensorSpec> tensors,
                                               uint64_t max_split_bytes);

// ---------------------------------------------------------------------------
// Display.

// One line for `info`: strings as is (clipped to max_chars), short arrays as
// "[1, 2, 3]", long ones as "[151,936 strings]" / "[64 u32]".
std::string GgufValueSummary(const GgufValue& v, size_t max_chars = 60);
// JSON for `info --json`: scalars as numbers/strings/bools; arrays of at most
// `max_array` elements in full, longer ones as {"type": "array", "element_type":
// "str", "count": N}.
nlohmann::json GgufValueJson(const GgufValue& v, size_t max_array = 1024);

}  // namespace bitsmith
