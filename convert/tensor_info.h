// TensorInfo: one tensor of a weight file, as a descriptor.
//
// Readers (convert/safetensors.h, convert/gguf.h, convert/checkpoint.h) turn
// headers into TensorInfos and never decode data; the converter, `info`, `plan`
// and the size table work from these descriptors alone (STYLE.md rule 5). Every
// field has been validated by the reader that made it: the byte range lies
// inside the file, `nbytes` equals what dtype and shape imply, the element count
// does not overflow 64 bits.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "formats/dtype.h"

namespace bitsmith {

// Which container a tensor came from.
enum class FileFormat : uint8_t { kSafetensors, kGguf };

struct TensorInfo {
  std::string name;
  // bitsmith's storage type, or nullopt when bitsmith has no row for the type
  // the file names (e.g. safetensors "F4" packed FP4, "C64"): the tensor can be
  // listed and copied, not decoded.
  std::optional<DType> dtype;
  // The type as the file spells it: the safetensors dtype string ("BF16",
  // "F8_E4M3", "F4") or ggml's type name ("q5_0", "bf16").
  std::string raw_dtype;
  // Row-major, outermost dimension first (PyTorch / safetensors order). A GGUF
  // tensor's ggml ne[] appears reversed here: ne = {64, 256} is shape {256, 64}.
  // An empty shape is a scalar (one element).
  std::vector<uint64_t> shape;
  std::string file;     // path of the file holding the data (as opened)
  uint64_t offset = 0;  // absolute byte offset of the data in `file`
  uint64_t nbytes = 0;  // byte length of the data
  int ggml_type = -1;   // GGUF only: the ggml_type id as stored; -1 for safetensors
  int file_index = 0;   // index of `file` in Checkpoint::files (0 for a single file)

  // Number of elements (product of the shape; 1 for a scalar). Readers have
  // checked that it fits in 64 bits.
  uint64_t elements() const {
    uint64_t n = 1;
    for (uint64_t d : shape) n *= d;
    return n;
  }
  // Elements per row (the innermost dimension; 1 for a scalar).
  uint64_t row_length() const { return shape.empty() ? 1 : shape.back(); }
  // Number of rows: elements / row_length (0 when a dimension is 0).
  uint64_t rows() const {
    uint64_t n = 1;
    for (size_t i = 0; i + 1 < shape.size(); ++i) n *= shape[i];
    return shape.empty() ? 1 : n;
  }
  int rank() const { return static_cast<int>(shape.size()); }
  // bitsmith's lower-case name ("bf16", "q4_k"), or the file's spelling for a
  // type bitsmith does not know.
  std::string dtype_name() const {
    return dtype ? std::string(GetDType(*dtype).name) : raw_dtype;
  }
  bool operator==(const TensorInfo&) const = default;
};

// "[256, 64]" (row-major, as stored in TensorInfo::shape).
std::string ShapeString(const std::vector<uint64_t>& shape);

// Overflow-checked arithmetic for sizes read from files: nullopt on overflow.
std::optional<uint64_t> CheckedMul(uint64_t a, uint64_t b);
std::optional<uint64_t> CheckedAdd(uint64_t a, uint64_t b);
// Product of the dimensions, nullopt when it exceeds 2^64 - 1.
std::optional<uint64_t> CheckedElements(const std::vector<uint64_t>& shape);

}  // namespace bitsmith
